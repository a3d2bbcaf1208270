"""Worker processes that check answers one at a time under a hard time budget.

Each worker is a fresh Python interpreter (started with :mod:`subprocess`,
like multiprocessing's ``spawn`` — never ``fork``, which is unsafe once jax
has started its threads — but without re-importing the caller's
``__main__``). It builds its own :class:`~bptt_check.grading.Grader` once
(see :mod:`bptt_check.grading.worker`), then answers one message per answer
over a pipe. The parent sends an answer only to an idle worker and waits
for all of them at once with a timeout:

* workers are added one at a time while it pays (see :class:`Pool`);
* a worker still busy at the question's wall-clock budget is killed and
  replaced; the answer is ``invalid`` with the code ``time_budget`` and the
  reason "time budget of N s exceeded". This is a backstop for hostile input
  only: a check's own limit is counted work (:mod:`bptt_check.budget`), the
  same on any machine, and the default wall-clock budget (120 s) is far above
  what the default work budget takes, so load never turns a correct answer
  into ``time_budget``;
* a worker that dies (a crash, the out-of-memory killer) costs only the
  answer it was checking (``invalid``, "the grading process died …");
* a worker that cannot start (it reports why) is retried; the third failure
  in a row ends the batch with an :class:`InternalError`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import ConfigError, InternalError
from .result import GradeResult

if TYPE_CHECKING:  # pragma: no cover
    from .grader import CacheKey, Grader
    from .question import Question

_now = time.monotonic
"""The pool's clock (one name, so that a test can stand a fake clock in for it)."""

STARTUP_TIMEOUT = 600.0
"""Seconds a worker may take to build its truth before it counts as failed."""
MAX_START_FAILURES = 3

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from bptt_check.grading.worker import main; main(int(sys.argv[2]), int(sys.argv[3]))"
)


@dataclass(frozen=True)
class Task:
    """One distinct answer to check."""

    key: "CacheKey"
    answer: str
    syntax: str


@dataclass(frozen=True)
class Done:
    """A finished check: the result template (no id), whether its message cites columns, and its time."""

    task: Task
    template: GradeResult
    positional: bool
    seconds: float


class Worker:
    """One worker process and the parent's ends of its two pipes.

    Started without a question, the interpreter loads sympy, jax and the
    parser while the caller is still reading its files; :meth:`assign` then
    sends the question, and the worker builds its truth.
    """

    def __init__(self, question: Question | None = None) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.log = tempfile.TemporaryFile()  # the worker's stderr, read only to say why it failed
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-c", _BOOT, _PACKAGE_ROOT, str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.log,
                close_fds=True,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.send_end = Connection(to_child_w, readable=False)
        self.conn = Connection(from_child_r, writable=False)
        self.ready = False
        self.task: Task | None = None
        self.sent_at = 0.0
        self.started = _now()
        self.deadline = self.started + STARTUP_TIMEOUT
        if question is not None:
            self.assign(question)

    def assign(self, question: Question) -> None:
        """Send the question: the worker builds its grader and says ``ready``."""
        self.deadline = _now() + STARTUP_TIMEOUT
        self.send_end.send(question)

    def send(self, task: Task, seconds: float) -> None:
        self.task = task
        self.sent_at = _now()
        self.deadline = self.sent_at + seconds
        self.send_end.send((task.answer, task.syntax))

    def kill(self) -> None:
        """End the worker now (it holds nothing worth a graceful exit) and reap it."""
        try:
            self.process.kill()
        except OSError:  # pragma: no cover - already gone
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable
            pass
        self._close_pipes()

    def last_words(self) -> str:
        """The last line the worker wrote on stderr (a traceback's last line says what went wrong)."""
        try:
            self.log.seek(0)
            lines = self.log.read()[-4000:].decode("utf-8", errors="replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return lines[-1] if lines else ""

    def _close_pipes(self) -> None:
        for end in (self.send_end, self.conn):
            if not end.closed:
                end.close()
        self.log.close()


def prestart(jobs: int) -> list[Worker]:
    """Start ``jobs`` workers before the question is known (see :class:`Worker`)."""
    return [Worker() for _ in range(jobs)]


class Pool:
    """Up to ``jobs`` workers for one question.

    It starts with one worker (``spare`` ones started by :func:`prestart` are
    used first, the others ended) and adds one at a time, up to ``jobs``,
    while the distinct answers waiting would take one worker longer than
    starting another does (both measured as the batch goes). Starting a
    worker costs seconds of CPU (imports, the truth), checking an answer
    milliseconds: on two cores, two workers starting together slow each
    other and the parent down, and a class of a few hundred answers is
    checked by one worker before a second would be ready.
    """

    def __init__(self, grader: "Grader", jobs: int, *, spare: Iterable[Worker] = ()) -> None:
        if jobs < 1:
            raise ConfigError(f"jobs = {jobs} must be at least 1")
        self.grader = grader  # builds the results of answers that no worker finished
        self.jobs = jobs
        self.question = grader.question
        self.budget = self.question.rubric.budget
        self.hard_budget = self.question.rubric.hard_budget
        self.queue: deque[Task] = deque()
        self.done: deque[Done] = deque()
        self.start_failures = 0
        self._startup = 0.0  # seconds the last worker took from its start to ready
        self._checked = 0
        self._check_seconds = 0.0
        self.workers: list[Worker] = []
        for w in spare:
            if self.workers:
                w.kill()
                continue
            try:
                w.assign(self.question)
            except (OSError, ValueError):  # it died meanwhile: the loop will say why
                pass
            self.workers.append(w)
        if not self.workers:
            self.workers.append(Worker(self.question))

    @property
    def pending(self) -> int:
        """Tasks submitted and not yet returned by :meth:`next`."""
        return len(self.queue) + len(self.done) + sum(w.task is not None for w in self.workers)

    def submit(self, task: Task) -> None:
        self.queue.append(task)

    def next(self) -> Done:
        """The next finished check (blocks; there must be one pending)."""
        while not self.done:
            self._step()
        return self.done.popleft()

    def close(self) -> None:
        for w in self.workers:
            w.kill()
        self.workers = []

    # -- the loop --------------------------------------------------------------------------

    def _grow(self) -> None:
        """Start one more worker if the answers waiting would take longer than its start-up."""
        if len(self.workers) >= self.jobs or not self._startup or self._checked < 3:
            return
        if any(not w.ready for w in self.workers):
            return  # one is starting already
        waiting = len(self.queue) * self._check_seconds / self._checked / len(self.workers)
        if waiting > self._startup:
            self.workers.append(Worker(self.question))

    def _step(self) -> None:
        self._grow()
        for w in self.workers:
            if w.ready and w.task is None and self.queue:
                try:
                    w.send(self.queue.popleft(), self.hard_budget)
                except (OSError, ValueError):
                    self._died(w)
        timeout = max(0.0, min(w.deadline for w in self.workers) - _now())
        by_conn = {id(w.conn): w for w in self.workers}
        for conn in wait([w.conn for w in self.workers], timeout):
            worker = by_conn[id(conn)]
            if worker not in self.workers:  # replaced meanwhile
                continue
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                self._died(worker)
                continue
            self._receive(worker, message)
        now = _now()
        for w in list(self.workers):
            if w.deadline <= now:
                if w.task is not None:
                    self._finish_invalid(w, "time_budget", f"time budget of {self.budget:g} s exceeded")
                elif not w.ready:
                    self._replace(w)
                    self._start_failed(f"a grading worker took longer than {STARTUP_TIMEOUT:g} s to start")

    def _receive(self, w: Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            w.ready = True
            w.deadline = float("inf")
            self.start_failures = 0
            self._startup = _now() - w.started
        elif kind == "failed":
            self._replace(w)
            self._start_failed(f"a grading worker could not build the truth: {message[1]}")
        elif kind == "done" and w.task is not None:
            _, template, positional, seconds = message
            self.done.append(Done(w.task, template, positional, seconds))
            self._checked += 1
            self._check_seconds += seconds
            w.task = None
            w.deadline = float("inf")

    def _died(self, w: Worker) -> None:
        try:
            code = w.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - the pipe broke but it lives
            code = None
        if w.task is not None:
            reason = f"the grading process died while checking this answer (exit code {code})"
            self._finish_invalid(w, "crashed", reason)
        else:
            when = "unexpectedly" if w.ready else "while starting"
            words = w.last_words()
            self._replace(w)
            self._start_failed(f"a grading worker exited {when} (exit code {code}){': ' + words if words else ''}")

    def _finish_invalid(self, w: Worker, code: str, reason: str) -> None:
        task = w.task
        assert task is not None
        seconds = _now() - w.sent_at
        self.done.append(Done(task, self.grader.invalid(code, reason, seconds=seconds), False, seconds))
        self._replace(w)

    def _replace(self, w: Worker) -> None:
        w.kill()
        self.workers[self.workers.index(w)] = Worker(self.question)

    def _start_failed(self, reason: str) -> None:
        self.start_failures += 1
        if self.start_failures >= MAX_START_FAILURES:
            self.close()
            raise InternalError(reason, hint="run `bptt-check check` on one answer to see the error")
