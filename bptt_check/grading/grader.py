"""The :class:`Grader`: one question's truth computed once, many answers graded against it."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from ..errors import BpttCheckError, ConfigError, InternalError
from ..vocabulary import SYNTAXES, Syntax
from ..results import CheckResult, Diagnosis
from .keys import CacheKey, cache_key, effective_syntax, normalize  # noqa: F401 (re-exported)
from .question import Question
from .result import GradeResult

if TYPE_CHECKING:  # pragma: no cover
    from ..compare import Checker
    from .batch import SubmissionLike
    from .pool import Pool, Worker


MAX_ANSWER_CHARS = 20_000
"""Longer answers are ``invalid`` without being read (a full T=2 answer is ~200 characters)."""

@dataclass(frozen=True)
class _Entry:
    """A cached check: the result template (no id), the exact text checked, and whether its message cites positions."""

    template: GradeResult
    text: str
    positional: bool


class Grader:
    """Grades answers to one :class:`Question`.

    The :class:`~bptt_check.compare.Checker` (and with it the truth: the
    sample points, both truths and their cross-check) is built once, on the
    first answer graded in this process. Identical answers — equal after
    :func:`normalize` and in the same syntax — are checked once and share the
    result (an ``invalid`` result whose message points at a column is shared
    only by byte-identical answers).

    Every check is limited by counted work (``rubric.work``: the same answer
    gets the same verdict on any machine). :meth:`grade` checks in this
    process, with no clock. :meth:`grade_many` and :meth:`grade_iter` run the
    checks in worker processes by default, under the rubric's wall-clock
    ``budget`` as a backstop for hostile input: a worker that overruns it is
    killed and the answer is ``invalid`` (``time_budget``). See :mod:`bptt_check.grading.batch`.
    The workers last one batch; used as a context manager (``with
    Grader(q) as g:``) the grader keeps them between batches.
    """

    def __init__(self, question: Question | str | os.PathLike[str]) -> None:
        if isinstance(question, Question):
            question.validate()
        else:
            question = Question.from_file(Path(question))
        self.question = question
        self._checker: Checker | None = None
        self._cache: dict[CacheKey, _Entry] = {}
        self._keep_workers = False
        self._pool: Pool | None = None  # kept between batches inside ``with``
        self._spare: list[Worker] = []  # started early by run_grade, used by the first batch

    def __enter__(self) -> "Grader":
        self._keep_workers = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes this grader holds (kept between batches, or started early)."""
        self._keep_workers = False
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        spare, self._spare = self._spare, []
        for worker in spare:
            worker.kill()

    # -- the truth -----------------------------------------------------------------

    @property
    def checker(self) -> "Checker":
        """The question's checker, built on first use (the truth is computed once)."""
        if self._checker is None:
            from ..compare import Checker

            q = self.question
            self._checker = Checker(
                q.target, model=q.model, notation=q.build_notation(), settings=q.rubric.settings()
            )
        return self._checker

    def warm_up(self) -> None:
        """Build the checker, and load what checking needs, so that no answer pays a start-up cost.

        It checks the target's own name as an answer (it denotes the truth:
        the evaluator, the exact step and the jax cross-check load), and
        evaluates one Jacobian of a hidden state, whose jax program (a vector
        numerator) differs from the loss's. A first use of either costs time
        (seconds while jax's on-disk cache is cold) that would otherwise fall
        on some answer's time budget.
        """
        from ..model import Ref

        checker = self.checker
        model = self.question.model
        try:
            checker.check(str(checker.target), syntax="plain")
            checker.truth.jacobian(Ref("h", model.steps), Ref("W_hh"))
        except (BpttCheckError, InternalError):
            pass  # warming only: grading the answer that meets it again reports it

    # -- grading -----------------------------------------------------------------------

    def grade(self, answer: str, *, id: str = "", syntax: Syntax = "auto") -> GradeResult:
        """Grade one answer in this process (its work budget only, no clock; see the class docstring)."""
        _check_syntax(syntax)
        _ = self.checker  # the truth is built once, and not on this answer's clock
        start = time.perf_counter()
        hit = self.cached(answer, syntax)
        if hit is None:
            template, positional = self.check_text(answer, syntax)
            self.remember(answer, syntax, template, positional)
            hit = template
        return dataclasses.replace(hit, id=id, seconds=time.perf_counter() - start)

    def grade_iter(
        self,
        submissions: Iterable["SubmissionLike"],
        *,
        jobs: int | None = None,
        isolate: bool = True,
    ) -> Iterator[GradeResult]:
        """Grade many answers, yielding each result as soon as it is known (not in input order).

        ``submissions`` are :class:`~bptt_check.grading.Submission` objects,
        ``(id, answer)`` or ``(id, answer, syntax)`` tuples, or mappings with
        those keys. With ``isolate`` (the default) the checks run in up to
        ``jobs`` worker processes (default: one per core; see
        :class:`~bptt_check.grading.pool.Pool`) under the hard time budget;
        ``isolate=False`` checks in this process, for trusted input.
        """
        from .batch import grade_stream

        return grade_stream(self, submissions, jobs=jobs, isolate=isolate)

    def grade_many(
        self,
        submissions: Iterable["SubmissionLike"],
        *,
        jobs: int | None = None,
        isolate: bool = True,
        on_result: Callable[[GradeResult], None] | None = None,
    ) -> list[GradeResult]:
        """Grade a batch and return the results in input order (``on_result`` sees each as it is graded)."""
        from .batch import as_submission

        subs = [as_submission(s) for s in submissions]
        by_id: dict[str, GradeResult] = {}
        for result in self.grade_iter(subs, jobs=jobs, isolate=isolate):
            by_id[result.id] = result
            if on_result is not None:
                on_result(result)
        return [by_id[s.id] for s in subs if s.id in by_id]

    # -- the pieces (shared with the worker processes) -----------------------------------

    def cached(self, answer: str, syntax: str) -> GradeResult | None:
        """The cached result template for this answer, if any."""
        if len(answer) > MAX_ANSWER_CHARS:
            return None
        key = cache_key(answer, syntax)
        entry = self._cache.get(key)
        if entry is not None and (not entry.positional or entry.text == answer):
            return entry.template
        exact = self._cache.get(_exact_key(answer, syntax))
        return exact.template if exact is not None else None

    def remember(self, answer: str, syntax: str, template: GradeResult, positional: bool) -> None:
        """Cache a check's result template."""
        if len(answer) > MAX_ANSWER_CHARS:
            return
        key = cache_key(answer, syntax)
        if key in self._cache and positional:
            key = _exact_key(answer, syntax)
        self._cache.setdefault(key, _Entry(template, answer, positional))

    def check_text(self, answer: str, syntax: str) -> tuple[GradeResult, bool]:
        """Check one answer (no cache): the result template (id ``""``) and whether its message cites positions.

        Never raises for a bad answer: every exception raised while checking
        it becomes an ``invalid`` result (an :class:`InternalError` or an
        unexpected exception is also marked ``internal_error``).
        """
        refused = self.refuse(answer)
        if refused is not None:
            return refused, False
        checker = self.checker  # errors building the truth are not the answer's fault: they propagate
        start = time.perf_counter()
        internal = False
        try:
            result = checker.check(answer, syntax=syntax)  # type: ignore[arg-type]
        except InternalError as err:
            result, internal = self._invalid_check("internal_error", _one_line(str(err))), True
        except BpttCheckError as err:
            result = self._invalid_check("invalid", _one_line(str(err)))
        except RecursionError:
            result = self._invalid_check("limit", "the answer is nested too deeply to read")
        except MemoryError:
            result = self._invalid_check("limit", "the answer needs too much memory to evaluate")
        except Exception as err:  # a bug in bptt_check: say so, never crash the batch
            result = self._invalid_check("internal_error", f"{type(err).__name__}: {_one_line(str(err))}")
            internal = True
        positional = result.verdict == "invalid" and (bool(result.caret) or " at column " in result.message)
        template = self.from_check(result, seconds=time.perf_counter() - start, internal=internal)
        return template, positional

    def refuse(self, answer: str) -> GradeResult | None:
        """The result of an answer refused unread (too long, or empty), else None. No truth is needed."""
        if len(answer) > MAX_ANSWER_CHARS:
            reason = f"the answer is too long to read ({len(answer)} characters; the limit is {MAX_ANSWER_CHARS})"
            return self.invalid("too_long", reason)
        if not answer.strip():
            return self.invalid("empty", "the answer is empty")
        return None

    def from_check(
        self, result: CheckResult, *, id: str = "", seconds: float = 0.0, internal: bool = False
    ) -> GradeResult:
        """A :class:`GradeResult` from a check result, scored by the rubric."""
        rubric = self.question.rubric
        score = rubric.score(result)
        return GradeResult(
            id=id,
            verdict=result.verdict,
            score=score,
            max_score=rubric.max_score,
            diagnoses=tuple(result.diagnoses),
            message=_student_message(result, score, rubric.max_score),
            seconds=seconds,
            internal_error=internal,
        )

    def invalid(
        self, code: str, reason: str, *, id: str = "", seconds: float = 0.0, internal: bool = False
    ) -> GradeResult:
        """An ``invalid`` result that no check produced (too long, empty, over the time budget, a crash)."""
        return self.from_check(self._invalid_check(code, reason), id=id, seconds=seconds, internal=internal)

    def _invalid_check(self, code: str, reason: str) -> CheckResult:
        target = str(self._checker.target) if self._checker is not None else self.question.target
        return CheckResult(
            verdict="invalid",
            target=target,
            answer="",
            score=0.0,
            message=reason,
            diagnoses=(Diagnosis(code, reason),),
            model=self.question.model.describe(),
        )


def _exact_key(answer: str, syntax: str) -> CacheKey:
    return ("=", effective_syntax(answer, syntax), answer)


def _check_syntax(syntax: str) -> None:
    if syntax not in SYNTAXES:
        raise ConfigError(f"syntax {syntax!r} is not one of auto, plain, latex")


def _one_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line if len(line) <= 300 else line[:299] + "…"


def _student_message(result: CheckResult, score: float, max_score: float) -> str:
    """The check's human report, its first line saying the points earned instead of the engine's score."""
    lines = str(result).splitlines()
    head = f"{result.target}: {result.verdict}"
    if lines and lines[0].startswith(head):
        lines[0] = f"{head} ({score:g}/{max_score:g} points)"
    else:  # pragma: no cover - the report's layout changed; keep it whole
        lines.insert(0, f"{head} ({score:g}/{max_score:g} points)")
    # A reason repeated as its own diagnosis line says nothing new.
    if result.verdict == "invalid" and len(result.diagnoses) == 1 and result.diagnoses[0].message == result.message:
        lines = [ln for ln in lines if ln != f"  diagnosis {result.diagnoses[0].code}: {result.message}"]
    return "\n".join(lines)
