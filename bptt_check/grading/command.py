"""``bptt-check grade``: grade a class's answers to one question.

Register it in ``cli.build_parser`` with ``add_grade_command(sub)``. Exit
codes: 0 when grading completed (whatever the scores, timeouts and internal
errors included — the summary flags those), 2 for a bad question or
submissions file or option (raised as :class:`BpttCheckError` and turned into
one line by ``cli.main``), 130 when interrupted (what was graded is kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .batch import BatchStats, Submission, default_jobs, grade_stream
from .grader import Grader
from .output import FORMATS, format_for, open_output
from .pool import prestart
from .provenance import QuestionKey, reasons_line, why_not_reused
from .question import Question
from .result import GradeResult, Summary
from .submissions import read_submissions

EXIT_OK = 0


def add_grade_command(subparsers: Any) -> None:
    """Add ``grade``, ``gradescope`` and ``prairielearn-grade`` to the ``bptt-check`` sub-commands (an ``argparse`` subparsers object)."""
    from ..options import add_model_options, positive_int

    g = subparsers.add_parser(
        "grade",
        help="grade many answers to one question (CSV or JSONL in; Gradescope, JSONL or CSV out)",
        description=(
            "Grade every answer in SUBMISSIONS (a CSV with columns id,answer[,syntax], or JSON lines with"
            " those keys) against the question in Q.toml. Every row gets one result (a malformed row an"
            " invalid one, with the reason). Results are written as they are graded; rerunning with the same"
            " --out reuses a result only when the answer, the question file, its rubric and model and"
            " bptt-check's version are all unchanged, and re-grades the rest."
        ),
    )
    g.add_argument("submissions", type=Path, metavar="SUBMISSIONS", help="a .csv, .jsonl or .json file")
    g.add_argument("--question", type=Path, required=True, metavar="Q.toml",
                   help="question file: target, [model], [notation], [rubric]")
    g.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="results file (default: standard output; results.json for gradescope)")
    g.add_argument("--format", choices=FORMATS, default=None,
                   help="results format (default: by --out's extension: .json gradescope, .csv csv, else jsonl)")
    g.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help=f"at most N worker processes, started as they pay (default: one per core: {default_jobs()})")
    g.add_argument("--budget", type=_positive_seconds, default=None, metavar="S",
                   help="wall-clock seconds per answer, a backstop for hostile input (default: the rubric's budget, 120);"
                        " checks are limited by counted work (rubric.work), not by time")
    g.add_argument("--restart", action="store_true",
                   help="discard the results already in --out (even another question's) and grade everything again")
    add_model_options(g, overrides="question's [model]; --notation replaces its [notation]")
    g.set_defaults(run=cmd_grade)
    # The course platforms' commands live beside ``grade`` (one registration point in cli.py).
    from ..gradescope import add_gradescope_command
    from ..prairielearn import add_prairielearn_command

    add_gradescope_command(subparsers)
    add_prairielearn_command(subparsers)


def cmd_grade(args: argparse.Namespace) -> int:
    """Run ``bptt-check grade``; print the summary; return the exit code."""
    from ..options import model_changes, notation_table

    summary = run_grade(
        args.question,
        args.submissions,
        out=args.out,
        fmt=args.format,
        jobs=args.jobs,
        budget=args.budget,
        restart=args.restart,
        progress=sys.stderr.isatty(),
        model_changes=model_changes(args),
        notation=notation_table(args),
    )
    to = sys.stdout if args.out is not None or format_for(None, args.format) == "gradescope" else sys.stderr
    print(summary, file=to)
    return EXIT_OK


def run_grade(
    question: Question | str | Path,
    submissions: str | Path,
    *,
    out: Path | None = None,
    fmt: str | None = None,
    jobs: int | None = None,
    budget: float | None = None,
    restart: bool = False,
    progress: bool = False,
    warn: Callable[[str], None] | None = None,
    model_changes: Mapping[str, Any] | None = None,
    notation: Mapping[str, Any] | None = None,
) -> Summary:
    """Grade a submissions file into ``out`` (resuming it), and return the summary of all its results.

    ``question`` is a :class:`Question` or the path of a question file;
    ``budget`` (seconds) replaces the rubric's. The first worker process is
    started first, so that it loads sympy and jax while this process reads
    the question, the submissions and the results already in ``out``; up to
    ``jobs`` workers (default: one per core) are used, started as they pay.
    ``model_changes`` (RNN fields) override the question's model and
    ``notation`` (a ``[notation]`` table) replaces its notation.
    """
    start = time.perf_counter()
    jobs = jobs or default_jobs()
    grader: Grader | None = None
    spare = prestart(1)
    try:
        if not isinstance(question, Question):
            question = Question.from_file(question, model_changes=model_changes, notation=notation)
        elif model_changes or notation is not None:
            question = dataclasses.replace(
                question,
                model=question.model.replace(**(model_changes or {})),
                notation=dict(notation) if notation is not None else question.notation,
            )
            question.validate()
        if budget is not None:
            question = question.with_budget(budget)
        grader = Grader(question)
        grader._spare, spare = spare, []
        return _grade_file(grader, submissions, out=out, fmt=fmt, jobs=jobs, restart=restart, progress=progress,
                           warn=warn, start=start)
    finally:
        for worker in spare:
            worker.kill()
        if grader is not None:
            grader.close()


def _grade_file(
    grader: Grader,
    submissions: str | Path,
    *,
    out: Path | None,
    fmt: str | None,
    jobs: int,
    restart: bool,
    progress: bool,
    warn: Callable[[str], None] | None,
    start: float,
) -> Summary:
    question = grader.question
    bad_rows = 0
    say = warn or (lambda message: print(f"bptt-check: warning: {message}", file=sys.stderr))

    def count(message: str) -> None:
        nonlocal bad_rows
        bad_rows += 1
        say(message)

    subs = read_submissions(submissions, warn=count)
    qkey = QuestionKey.of(question)
    keys = {s.id: qkey.for_answer(s.answer if not s.problem else "\0" + s.problem, s.syntax) for s in subs}
    form = format_for(out, fmt)
    with open_output(form, out, question=question.name, restart=restart, warn=say) as output:
        previous: dict[str, GradeResult] = {r.id: r for r in output.previous}
        reused: list[GradeResult] = []
        reasons: Counter[str] = Counter()
        todo: list[Submission] = []
        for sub in subs:
            old = previous.get(sub.id)
            why = why_not_reused(output.keys.get(sub.id, ""), keys[sub.id]) if old is not None else "new"
            if why is None:
                reused.append(old)  # type: ignore[arg-type]
            else:
                todo.append(sub)
                if why != "new":
                    reasons[why] += 1
        listed = {s.id for s in subs}
        others = [r for r in output.previous if r.id not in listed]
        if previous:
            say(
                f"resuming {getattr(output, 'path', out)}: reusing {len(reused)} of {len(subs)} results"
                + (f"; re-grading {sum(reasons.values())} ({reasons_line(reasons)})" if reasons else "")
            )
        stats = BatchStats()
        new: list[GradeResult] = []
        with _progress_bar(len(todo), enabled=progress) as advance:
            for result in grade_stream(grader, todo, jobs=jobs, stats=stats):
                output.write(result, keys[result.id])
                new.append(result)
                advance()
        summary = Summary.of(
            [*reused, *new, *others],
            question=question.name,
            max_score=question.rubric.max_score,
            graded=stats.graded,
            unique=stats.unique,
            refused=stats.refused,
            seconds=time.perf_counter() - start,
            bad_rows=bad_rows,
            regraded=dict(reasons),
            kept_others=len(others),
        )
        output.finish(summary, order=[s.id for s in subs])
    return summary


@contextmanager
def _progress_bar(total: int, *, enabled: bool) -> Iterator[Callable[[], None]]:
    """A rich progress bar on standard error (only when asked, i.e. on a terminal)."""
    if not enabled or total == 0:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("grading", total=total)
        yield lambda: bar.advance(task)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 and at most 3600 seconds")
    return value
