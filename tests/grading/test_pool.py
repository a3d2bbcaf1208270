"""The worker pool (bptt_check.grading.pool): workers that overrun, die or cannot start; growing only while it pays."""

from __future__ import annotations

import threading
import time

import pytest

from bptt_check.errors import InternalError
from bptt_check.grading import Grader, Question, Rubric

from .conftest import PLAIN


# Worker processes whose check of an answer starting with "SLEEP" never ends (an injected delay, in the
# child, before the answer is read): what the pool does with them depends on no machine's speed.
_SLEEPY_BOOT = (
    "import sys, time; sys.path.insert(0, sys.argv[1]); "
    "from bptt_check.grading.grader import Grader; "
    "check = Grader.check_text; "
    "Grader.check_text = lambda self, a, s: time.sleep(3600) if a.startswith('SLEEP') else check(self, a, s); "
    "from bptt_check.grading.worker import main; main(int(sys.argv[2]), int(sys.argv[3]))"
)
RIGHT_W_HH = "h_0.T @ (dL/dh_1 * (1 - h_1**2)) + h_1.T @ (dL/dh_2 * (1 - h_2**2))"


def test_workers_that_overrun_or_die_cost_only_their_answer(monkeypatch: pytest.MonkeyPatch):
    from bptt_check.grading import pool as pool_module

    monkeypatch.setattr(pool_module, "_BOOT", _SLEEPY_BOOT)
    grader: Grader

    def clock() -> float:
        # A fake clock: an hour later whenever a worker is checking a "SLEEP overrun" answer (sent, so its
        # deadline is set). The real budget (10 minutes) is never reached by the other answers, however
        # slow or busy the machine.
        pool = grader._pool
        overrun = pool is not None and any(
            w.task is not None and w.task.answer.startswith("SLEEP overrun") and w.deadline != float("inf")
            for w in pool.workers
        )
        return time.monotonic() + (3600.0 if overrun else 0.0)

    monkeypatch.setattr(pool_module, "_now", clock)
    q = Question("dL/dW_hh", rubric=Rubric(budget=600))
    with Grader(q) as grader:  # the workers are kept between batches
        batch = [("slow", "SLEEP overrun"), ("ok", RIGHT_W_HH), ("shape", "h_0 @ h_1"), ("slow2", "SLEEP  overrun")]
        results = grader.grade_many(batch, jobs=1)
        kept = grader._pool
        assert results[0].verdict == "invalid" and results[0].codes == ("time_budget",)
        assert "time budget of 600 s exceeded" in results[0].message and results[0].seconds >= 600
        assert results[1].verdict in ("equivalent", "equivalent_numerically")  # graded by the replacement
        assert (results[2].verdict, results[2].codes) == ("invalid", ("shape_error",))
        assert results[3].codes == ("time_budget",) and results[3].seconds == 0.0  # the same text: not rerun

        # A worker that dies while checking (a crash, the out-of-memory killer) costs only that answer.
        victim = "SLEEP until killed"

        def kill_the_worker_checking_the_victim() -> None:
            while True:  # the victim's check never ends, so its worker is found busy
                pool = grader._pool
                busy = [w for w in pool.workers if w.task is not None and w.task.answer == victim] if pool else []
                if busy:
                    busy[0].process.kill()
                    return
                time.sleep(0.001)

        killer = threading.Thread(target=kill_the_worker_checking_the_victim, daemon=True)
        killer.start()
        after = grader.grade_many([("victim", victim), ("next", f"({RIGHT_W_HH})")], jobs=1)
        killer.join()
        assert after[0].verdict == "invalid" and after[0].codes == ("crashed",)
        assert "the grading process died while checking this answer (exit code -9)" in after[0].message
        assert after[1].verdict in ("equivalent", "equivalent_numerically")
        assert grader._pool is kept is not None
    assert grader._pool is None and kept.workers == []  # stopped on leaving ``with``


def test_the_pool_adds_workers_only_while_it_pays(question: Question, monkeypatch: pytest.MonkeyPatch):
    from bptt_check.grading import pool

    class FakeWorker:
        def __init__(self, question: Question | None = None) -> None:
            self.ready, self.task, self.deadline = False, None, float("inf")

        def assign(self, question: Question) -> None:
            pass

        def kill(self) -> None:
            pass

    monkeypatch.setattr(pool, "Worker", FakeWorker)
    p = pool.Pool(Grader(question), 3, spare=[FakeWorker(), FakeWorker()])
    assert len(p.workers) == 1  # one spare used, the other ended
    p.workers[0].ready = True
    p._startup, p._checked, p._check_seconds = 4.0, 10, 0.1  # 4 s to start a worker, 10 ms a check
    p.queue.extend([None] * 300)  # type: ignore[list-item]  # 3 s of checks: done before a second is up
    p._grow()
    assert len(p.workers) == 1
    p.queue.extend([None] * 300)  # type: ignore[list-item]  # 6 s
    p._grow()
    assert len(p.workers) == 2
    p._grow()
    assert len(p.workers) == 2  # the second is still starting
    p.workers[1].ready = True
    p.queue.extend([None] * 1000)  # type: ignore[list-item]  # 16 s of checks over two workers
    p._grow()
    p.workers[2].ready = True
    p._grow()
    assert len(p.workers) == 3  # jobs = 3 at most


def test_workers_that_cannot_start_end_the_batch_with_the_reason(question: Question, monkeypatch: pytest.MonkeyPatch):
    from bptt_check.grading import pool

    monkeypatch.setattr(pool, "_BOOT", "import sys; sys.stderr.write('ImportError: no jax here\\n'); sys.exit(3)")
    with pytest.raises(InternalError, match=r"exit code 3\): ImportError: no jax here"):
        Grader(question).grade_many([("a", PLAIN)], jobs=1)
