"""PrairieLearn: ``parse(data)`` / ``grade(data)`` for a question's ``server.py``, and an external grader.

In a question's ``server.py``::

    from bptt_check import prairielearn

    def parse(data):
        prairielearn.parse(data)

    def grade(data):
        prairielearn.grade(data)

The questions are read from ``assignment.toml`` (or one ``question.toml``,
named by its ``name`` key or ``answer``) in the question's folder
(``data["options"]["question_path"]``, else the working directory), or
passed as ``questions=`` (an :class:`~bptt_check.grading.assignment.Assignment`,
a path, or a mapping of answer name to :class:`~bptt_check.grading.Question`).
Each question's answer is ``data["submitted_answers"][name]`` (e.g. from a
``<pl-string-input answers-name="dW_hh">``).

* ``parse`` sets ``data["format_errors"][name]`` for an answer that is
  missing, empty, or that cannot be read (a parse error, with its column):
  PrairieLearn then shows the message and does not count the attempt.
* ``grade`` sets ``data["partial_scores"][name] = {"score": s, "weight": points,
  "feedback": text}`` (``s`` in [0, 1], the text cut to the question's
  ``feedback`` setting) and ``data["score"]``, the points-weighted mean.

``bptt-check prairielearn-grade /grade`` is an external grader: it reads
``/grade/data/data.json`` (answers in ``submitted_answers``) and the
student's files in ``/grade/student`` (labelled like Gradescope's, see
:func:`~bptt_check.grading.assignment.read_answers`), the assignment in
``/grade/tests``, and writes ``/grade/results/results.json``: ``gradable``,
``score`` in [0, 1], ``message``, ``format_errors`` and one test per
question with ``points`` and ``max_points``. A submission with no answer
at all is not gradable (a format error: the attempt does not count); an
internal error writes a results file that says so.

Without jax (PrairieLearn's question runtime has sympy and numpy, not jax)
the sympy truth stands alone: compiled to float64 for the numeric check and
evaluated exactly for the proof, it gives both verdicts; the jax cross-check
of the truth is skipped and reports say "sympy only" (see
:mod:`bptt_check.truth`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Mapping, MutableMapping, Sequence, Union

from .errors import BpttCheckError, FileFormatError

QuestionsLike = Union["Any", str, Path, Mapping[str, Any], None]
_GRADERS: dict[tuple[str, str], Any] = {}  # (question key, name) -> Grader, kept for the process's life


def _assignment(questions: QuestionsLike, data: Mapping[str, Any] | None = None) -> Any:
    from .grading.assignment import ASSIGNMENT_FILE, Assignment, Item
    from .grading.question import Question

    if isinstance(questions, Assignment):
        return questions
    if isinstance(questions, Mapping):
        items = []
        for name, q in questions.items():
            q = q if isinstance(q, Question) else Question.from_file(q)
            items.append(Item(str(name), q))
        return Assignment(title="questions", items=tuple(items))
    if questions is None:
        options = (data or {}).get("options") or {}
        folder = Path(options.get("question_path") or os.getcwd())
        if (folder / ASSIGNMENT_FILE).is_file():
            return Assignment.load(folder / ASSIGNMENT_FILE)
        if (folder / "question.toml").is_file():
            return _single(folder / "question.toml")
        raise FileFormatError(
            f"{folder}: no {ASSIGNMENT_FILE} or question.toml for bptt_check.prairielearn",
            hint="put the question file beside server.py, or pass questions=",
        )
    path = Path(questions)
    if path.is_file() and path.name != ASSIGNMENT_FILE:
        try:
            return Assignment.load(path)
        except FileFormatError:
            return _single(path)
    return Assignment.load(path)


def _single(path: Path) -> Any:
    from .grading.assignment import Assignment, Item
    from .grading.question import Question

    return Assignment(title=path.stem, items=(Item("answer", Question.from_file(path)),), source=str(path))


def _graders(spec: Any) -> dict[str, Any]:
    from .grading.grader import Grader
    from .grading.provenance import QuestionKey

    out = {}
    for item in spec:
        key = (QuestionKey.of(item.question, item.text).for_answer(""), item.name)
        if key not in _GRADERS:
            _GRADERS[key] = Grader(item.question)
        out[item.name] = _GRADERS[key]
    return out


def parse(data: MutableMapping[str, Any], questions: QuestionsLike = None) -> MutableMapping[str, Any]:
    """Set ``data["format_errors"]`` for answers that are missing, empty or unreadable (see the module docstring)."""
    from .grading.assignment import derivation_steps
    from .language import parse as parse_expression

    spec = _assignment(questions, data)
    errors = data.setdefault("format_errors", {})
    submitted = data.get("submitted_answers") or {}
    for item in spec:
        text = submitted.get(item.name)
        if not isinstance(text, str) or not text.strip():
            errors[item.name] = "Enter an answer (an expression in plain or LaTeX syntax)."
            continue
        grader = _graders(spec)[item.name]
        steps = derivation_steps(text)
        try:
            for step in steps if len(steps) > 2 else [text]:
                parse_expression(step, grader.question.model, notation=grader.question.build_notation())
        except BpttCheckError as err:
            errors[item.name] = str(err)
        except Exception:  # noqa: BLE001 - reading is the grader's job; a surprise here is not a format error
            pass
    return data


def grade(data: MutableMapping[str, Any], questions: QuestionsLike = None) -> MutableMapping[str, Any]:
    """Set ``data["partial_scores"]`` and ``data["score"]`` (see the module docstring)."""
    from .grading.assignment import Answer, grade_answer

    spec = _assignment(questions, data)
    graders = _graders(spec)
    submitted = data.get("submitted_answers") or {}
    errors = data.get("format_errors") or {}
    partial = data.setdefault("partial_scores", {})
    earned = 0.0
    for item in spec:
        text = submitted.get(item.name)
        if item.name in errors or not isinstance(text, str):
            result = graders[item.name].invalid("missing", str(errors.get(item.name, "no answer")))
        else:
            result = grade_answer(graders[item.name], Answer(text))
        fraction = result.score / result.max_score if result.max_score else 0.0
        partial[item.name] = {"score": fraction, "weight": item.points, "feedback": item.student_message(result)}
        earned += result.score
    data["score"] = earned / spec.max_score if spec.max_score else 0.0
    return data


# -- external grader -------------------------------------------------------------------------


def external_grade(root: str | Path = "/grade") -> dict[str, Any]:
    """Grade ``root/data/data.json`` and ``root/student`` into ``root/results/results.json``; the document. Never raises."""
    root = Path(root)
    try:
        document = _external(root)
    except Exception as err:  # noqa: BLE001 - PrairieLearn must get a results file whatever happened
        traceback.print_exc()
        what = err.message if isinstance(err, BpttCheckError) else f"{type(err).__name__}: {err}"
        document = {
            "gradable": False,
            "score": 0.0,
            "message": f"The grader hit an internal error; this is not your mistake. Please tell the course staff. ({what})",
            "format_errors": {},
            "tests": [],
        }
    out = root / "results" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return document


def _external(root: Path) -> dict[str, Any]:
    from .gradescope import SUBMISSION_HINT
    from .grading.assignment import SUBMISSION_SUFFIXES, Answer, read_answers

    tests_dir = root / "tests"
    spec = _assignment(tests_dir if (tests_dir / "assignment.toml").is_file() else tests_dir / "question.toml")
    data_path = root / "data" / "data.json"
    data = json.loads(data_path.read_text(encoding="utf-8")) if data_path.is_file() else {}
    answers: dict[str, Answer] = {}
    notes: list[str] = []
    for name, text in (data.get("submitted_answers") or {}).items():
        if isinstance(text, str) and text.strip():
            answers[name] = Answer(text)
    student = root / "student"
    files = sorted(p for p in student.rglob("*") if p.is_file() and p.suffix.lower() in SUBMISSION_SUFFIXES) if student.is_dir() else []
    format_errors: dict[str, str] = {}
    for path in files:
        rel = path.relative_to(student).as_posix()
        try:
            found, said = read_answers(path, spec.names)
        except BpttCheckError as err:
            format_errors[rel] = err.message
            continue
        notes += [f"{rel}: {n}" for n in said]
        answers.update(found)
    if not answers:
        format_errors.setdefault("submission", f"no answers found. {SUBMISSION_HINT}")
        return {"gradable": False, "score": 0.0, "message": "\n".join(notes), "format_errors": format_errors, "tests": []}
    results = spec.grade(answers, graders=_graders(spec))
    tests = []
    for item, result in zip(spec, results):
        tests.append(
            {
                "name": f"{item.name}: {item.question.name}",
                "description": item.question.target,
                "points": result.score,
                "max_points": result.max_score,
                "message": result.verdict,
                "output": item.student_message(result),
            }
        )
    score = sum(t["points"] for t in tests) / spec.max_score if spec.max_score else 0.0
    return {
        "gradable": True,
        "score": min(1.0, max(0.0, round(score, 9))),
        "message": "\n".join(notes),
        "format_errors": format_errors,
        "tests": tests,
    }


def add_prairielearn_command(subparsers: Any) -> None:
    """Add ``prairielearn-grade`` to the ``bptt-check`` sub-commands."""
    p = subparsers.add_parser(
        "prairielearn-grade",
        help="PrairieLearn external grader: ROOT/data/data.json and ROOT/student in, ROOT/results/results.json out",
    )
    p.add_argument("root", type=Path, nargs="?", default=Path("/grade"), metavar="ROOT")
    p.set_defaults(run=_cmd_external)


def _cmd_external(args: argparse.Namespace) -> int:
    document = external_grade(args.root)
    print(f"gradable {document['gradable']}, score {document['score']:g}: {args.root / 'results' / 'results.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bptt_check.prairielearn [ROOT]``."""
    parser = argparse.ArgumentParser(prog="python -m bptt_check.prairielearn")
    parser.add_argument("root", type=Path, nargs="?", default=Path("/grade"))
    args = parser.parse_args(argv)
    return _cmd_external(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["add_prairielearn_command", "external_grade", "grade", "parse"]
