"""Batch grading: duplicates checked once, every check isolated in a worker under a hard time budget.

How a batch runs (:func:`grade_stream`):

1. Each answer is looked up in the grader's cache (identical answers after
   normalising whitespace, in the same syntax); empty answers and answers
   longer than :data:`~bptt_check.grading.grader.MAX_ANSWER_CHARS` are
   ``invalid`` without being read. The remaining answers are grouped by
   cache key, and each group is checked once.
2. With ``isolate=True`` (the default) the checks run in up to ``jobs``
   worker processes (:mod:`bptt_check.grading.pool`), each building its own
   truth once, one answer at a time, under the wall-clock backstop. Workers are
   started only when there is something to check: one first, more while the
   answers waiting would take longer than starting another.
3. With ``isolate=False`` the checks run in this process, one after the
   other, under the work budget but with no wall-clock backstop. Use it
   for trusted answers only.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Union, cast

from ..errors import ConfigError
from ..vocabulary import SYNTAXES, Syntax
from .keys import CacheKey, cache_key
from .pool import Done, Pool, Task
from .result import GradeResult

if TYPE_CHECKING:  # pragma: no cover
    from .grader import Grader


@dataclass(frozen=True)
class Submission:
    """One answer to grade: its id, its text, its syntax, and where it was read (line 0: unknown).

    ``problem`` non-empty: the row could not be read as an answer (why); it is
    graded ``invalid`` (code ``bad_row``) with that reason, unchecked.
    """

    id: str
    answer: str
    syntax: Syntax = "auto"
    line: int = 0
    problem: str = ""


SubmissionLike = Union[Submission, tuple[str, str], tuple[str, str, str], Mapping[str, Any]]


def as_submission(item: SubmissionLike) -> Submission:
    """Accept a :class:`Submission`, an ``(id, answer[, syntax])`` tuple or a mapping with those keys."""
    if isinstance(item, Submission):
        sub = item
    elif isinstance(item, Mapping):
        sub = Submission(str(item["id"]), item["answer"], cast(Syntax, item.get("syntax") or "auto"))
    elif isinstance(item, tuple) and len(item) in (2, 3):
        syntax = item[2] if len(item) == 3 else "auto"  # type: ignore[misc]
        sub = Submission(str(item[0]), item[1], cast(Syntax, syntax or "auto"))
    else:
        raise ConfigError(f"{item!r} is not a submission", hint="pass (id, answer) or (id, answer, syntax)")
    if sub.problem:
        return sub
    if not isinstance(sub.answer, str):
        raise ConfigError(f"submission {sub.id!r}: the answer must be a string, not {type(sub.answer).__name__}")
    if sub.syntax not in SYNTAXES:
        raise ConfigError(f"submission {sub.id!r}: syntax {sub.syntax!r} is not one of auto, plain, latex")
    return sub


def default_jobs() -> int:
    """One worker per core (2 on the reference machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class BatchStats:
    """Counters of one run of :func:`grade_stream` (updated as it goes)."""

    graded: int = 0
    unique: int = 0
    refused: int = 0
    """Of ``graded``: answers given a result without a check (a bad row, empty, too long)."""


def grade_stream(
    grader: Grader,
    submissions: Iterable[SubmissionLike],
    *,
    jobs: int | None = None,
    isolate: bool = True,
    stats: BatchStats | None = None,
) -> Iterator[GradeResult]:
    """Grade ``submissions``, yielding each result as soon as it is known (see the module docstring)."""
    stats = stats if stats is not None else BatchStats()
    subs = [as_submission(s) for s in submissions]
    seen: set[str] = set()
    for sub in subs:
        if sub.id in seen:
            raise ConfigError(f"duplicate submission id {sub.id!r}", hint="every answer needs its own id")
        seen.add(sub.id)
    groups: dict[CacheKey, list[Submission]] = {}
    for sub in subs:
        start = time.perf_counter()
        refused = grader.invalid("bad_row", sub.problem) if sub.problem else grader.refuse(sub.answer)
        if refused is not None:
            stats.graded += 1
            stats.refused += 1
            yield dataclasses.replace(refused, id=sub.id, seconds=time.perf_counter() - start)
            continue
        template = grader.cached(sub.answer, sub.syntax)
        if template is not None:
            stats.graded += 1
            yield dataclasses.replace(template, id=sub.id, seconds=time.perf_counter() - start)
            continue
        groups.setdefault(cache_key(sub.answer, sub.syntax), []).append(sub)
    if not groups:
        return

    with _runner(grader, jobs or default_jobs(), isolate=isolate) as runner:
        for key, members in groups.items():
            runner.submit(Task(key, members[0].answer, members[0].syntax))
        while runner.pending:
            done = runner.next()
            stats.unique += 1
            grader.remember(done.task.answer, done.task.syntax, done.template, done.positional)
            members = groups.pop(done.task.key)
            # Answers equal to the one checked share its result; an invalid result citing a
            # column is shared only by the byte-identical ones, the others are checked apart.
            again: dict[CacheKey, list[Submission]] = {}
            for i, sub in enumerate(members):
                if done.positional and sub.answer != done.task.answer:
                    again.setdefault(("=", sub.syntax, sub.answer), []).append(sub)
                    continue
                stats.graded += 1
                yield dataclasses.replace(done.template, id=sub.id, seconds=done.seconds if i == 0 else 0.0)
            for key, rest in again.items():
                groups[key] = rest
                runner.submit(Task(key, rest[0].answer, rest[0].syntax))


# -- runners ------------------------------------------------------------------------


@contextmanager
def _runner(grader: Grader, jobs: int, *, isolate: bool) -> Iterator["_InProcess | Pool"]:
    """The runner of one batch: in process, a fresh pool, or the grader's kept pool.

    A kept pool survives a batch that ends normally; after an error or an
    abandoned batch (results still in flight) it is closed, never reused.
    """
    if not isolate:
        yield _InProcess(grader)
        return
    pool: Pool | None = grader._pool
    if pool is not None and pool.jobs != jobs:
        grader._pool = None
        pool.close()
        pool = None
    if pool is None:
        spare, grader._spare = grader._spare, []
        pool = Pool(grader, jobs, spare=spare)
        if grader._keep_workers:
            grader._pool = pool
    clean = False
    try:
        yield pool
        clean = pool.pending == 0
    finally:
        if not (clean and grader._pool is pool):
            if grader._pool is pool:
                grader._pool = None
            pool.close()


class _InProcess:
    """Checks in this process, in submission order (the checker's own deadline only)."""

    def __init__(self, grader: Grader) -> None:
        self.grader = grader
        self.queue: deque[Task] = deque()

    @property
    def pending(self) -> int:
        return len(self.queue)

    def submit(self, task: Task) -> None:
        self.queue.append(task)

    def next(self) -> Done:
        task = self.queue.popleft()
        start = time.perf_counter()
        template, positional = self.grader.check_text(task.answer, task.syntax)
        return Done(task, template, positional, time.perf_counter() - start)
