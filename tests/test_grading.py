"""Grading at scale (issue 7): question files, rubric, Grader, batches in workers, result files, resume, CLI."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bptt_check.errors import ConfigError, FileFormatError, InternalError, ParseError
from bptt_check.grading import Grader, GradeResult, Question, Rubric, Submission, Summary, read_submissions, run_grade
from bptt_check.grading.output import CSV_COLUMNS, gradescope_document, open_output
from bptt_check.language import Notation
from bptt_check.model import RNN
from bptt_check.results import CheckResult, Diagnosis

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "grading"

# -- the T=2 dL/dW_hh class ----------------------------------------------------------------

PLAIN = "h_0.T @ (dL/dh_1 * (1 - h_1**2)) + h_1.T @ (dL/dh_2 * (1 - h_2**2))"
WRITTEN = (
    "h_1.T @ ((yhat_2 - y_2) @ W_hy.T * (1 - h_2**2)) + h_0.T @ (((yhat_1 - y_1) @ W_hy.T"
    " + ((yhat_2 - y_2) @ W_hy.T * (1 - h_2**2)) @ W_hh.T) * (1 - h_1**2))"
)

CORRECT = [
    PLAIN,
    "h_1.T @ (dL/dh_2 * (1 - h_2**2)) + h_0.T @ (dL/dh_1 * (1 - h_1**2))",
    WRITTEN,
    "sum_{t=1}^{2} h_{t-1}.T @ (dL/dh_t * (1 - h_t**2))",
    "dL/dW_hh = " + PLAIN,
    "h_0.T @ dL/da_1 + h_1.T @ dL/da_2",
    "h_0.T @ (dL/dh_1 * (1 - tanh(a_1)**2)) + h_1.T @ (dL/dh_2 * (1 - tanh(a_2)**2))",
    r"\sum_{t=1}^{2} h_{t-1}^T \left(\frac{\partial L}{\partial h_t} \odot (1 - h_t^2)\right)",
    r"h_0^\top \left(\frac{\partial L}{\partial h_1} \odot (1 - h_1^2)\right)"
    r" + h_1^\top \left(\frac{\partial L}{\partial h_2} \odot (1 - h_2^2)\right)",
]
TRANSPOSED = [
    "(dL/dh_1 * (1 - h_1**2)).T @ h_0 + (dL/dh_2 * (1 - h_2**2)).T @ h_1",
    "(" + PLAIN + ").T",
]
WRONG = [
    "h_1.T @ (dL/dh_2 * (1 - h_2**2))",  # the t=1 term dropped
    "h_0.T @ (dL/dh_1 * (1 - h_1**2))",  # the t=2 term dropped
    "h_0.T @ (dL/dh_1 * (1 - h_1**2)) - h_1.T @ (dL/dh_2 * (1 - h_2**2))",  # a sign flipped
    WRITTEN.replace("(yhat_1 - y_1)", "(y_1 - yhat_1)").replace("(yhat_2 - y_2)", "(y_2 - yhat_2)"),  # y - yhat
    "h_0.T @ (dL/dh_1 * (1 - h_1)) + h_1.T @ (dL/dh_2 * (1 - h_2))",  # wrong tanh derivative
    "h_1.T @ (dL/dh_1 * (1 - h_1**2)) + h_2.T @ (dL/dh_2 * (1 - h_2**2))",  # off by one step
    # no recurrent path: dL/dh_1 without the part that comes back from step 2
    "h_1.T @ ((yhat_2 - y_2) @ W_hy.T * (1 - h_2**2)) + h_0.T @ ((yhat_1 - y_1) @ W_hy.T * (1 - h_1**2))",
]
INVALID = [
    "",
    "hello",
    "W_hu",
    "h_0.T @ (dL/dh_1 * (1 - h_1**2)",
    "h_0 @ h_1",
    "h_0.T @ dL/dh_1 * (1 - h_1**2)",
    "dL/dW_hh[0,0]",
    "dL_2/dh_2 * dh_2/dW_hh + dL_1/dh_1 * dh_1/dW_hh",  # cites ∂h_t/∂W_hh: only state gradients by default
]
HOSTILE = [
    "h_0 " * 250_000,  # a megabyte of text
    "(" * 100_000 + "h_0" + ")" * 100_000,  # 100 000 parentheses
    "(" * 5_000 + "h_0" + ")" * 5_000,
    "__import__('os').system('echo pwned')",
    "9**9**9**9",
    "sum_{t=1}^{999999999} h_t",
    "\x00\x01\x02 h_0",
]

MAX = 2.0
EXPECTED = {"correct": ("equivalent", MAX), "transposed": ("transposed", MAX / 2),
            "wrong": ("not_equivalent", 0.0), "invalid": ("invalid", 0.0), "hostile": ("invalid", 0.0)}


def _respace(text: str, rng: random.Random) -> str:
    """The same answer typed differently: spaces around operators removed or doubled, a line break."""
    out = text
    for op in (" @ ", " + ", " * ", " - "):
        choice = rng.choice((op, op.strip(), "  " + op.strip() + "  "))
        out = out.replace(op, choice)
    if rng.random() < 0.3 and " " in out:
        i = out.index(" ")
        out = out[:i] + "\n" + out[i + 1 :]
    return out


def _rewrite(text: str, rng: random.Random, kind: str) -> str:
    """A meaning-preserving rewrite of a plain answer (the verdict stays the same)."""
    if "\\" in text or "=" in text or kind in ("invalid", "hostile"):
        return _respace(text, rng) if kind != "hostile" else text
    moves = [
        lambda t: "(" + t + ")",
        lambda t: "(" + t + ").T.T",
        lambda t: t + " + 0 * W_hh",
        lambda t: "2 * (" + t + ") / 2",
        lambda t: "1 * (" + t + ")",
    ]
    out = text
    for move in rng.sample(moves, rng.randint(0, 2)):
        out = move(out)
    return _respace(out, rng)


def make_class(size: int, *, seed: int = 7) -> list[tuple[str, str, str]]:
    """``size`` answers (id, answer, kind): many forms of each base answer and many exact duplicates."""
    rng = random.Random(seed)
    bases = [(t, "correct") for t in CORRECT] + [(t, "transposed") for t in TRANSPOSED]
    bases += [(t, "wrong") for t in WRONG] + [(t, "invalid") for t in INVALID]
    answers: list[tuple[str, str]] = [(t, k) for t, k in bases] + [(t, "hostile") for t in HOSTILE]
    while len(answers) < size:
        text, kind = rng.choice(bases)
        if rng.random() < 0.5 and answers:  # a duplicate of an answer already handed in
            answers.append(rng.choice(answers[: len(bases)]))
        else:
            answers.append((_rewrite(text, rng, kind), kind))
    rng.shuffle(answers)
    return [(f"s{i:04d}", text, kind) for i, (text, kind) in enumerate(answers[:size])]


@pytest.fixture(scope="module")
def question() -> Question:
    rubric = Rubric(max_score=MAX, partial_credit=False, budget=10)
    return Question("dL/dW_hh", model=RNN(), rubric=rubric, title="dL/dW_hh, T=2")


@pytest.fixture(scope="module")
def grader(question: Question) -> Grader:
    return Grader(question)


# -- question files ---------------------------------------------------------------------------


def test_the_example_question_file_loads():
    q = Question.from_file(EXAMPLES / "hw2_dW_hh.toml")
    assert q.target == "dL/dW_hh" and q.model == RNN(steps=2, loss_at="all")
    assert q.rubric.max_score == 4 and q.rubric.transposed == 0.5 and q.rubric.diagnoses == {"sign_flip": 0.5}
    assert q.name.startswith("HW2")


@pytest.mark.parametrize(
    "text, key",
    [
        ('title = "x"', "target"),
        ('target = "dL/dW_hh"\ncolour = "red"', "colour"),
        ('target = 3', "target"),
        ('target = "dL/dW_hh"\n[rubric]\ntransposed = "half"', "rubric.transposed"),
        ('target = "dL/dW_hh"\n[rubric]\ntransposed = 1.5', "rubric.transposed"),
        ('target = "dL/dW_hh"\n[rubric]\nreadings = "total"', "rubric.readings"),
        ('target = "dL/dW_hh"\n[rubric]\nreading = "both"', "rubric.reading"),
        ('target = "dL/dW_hh"\n[rubric]\npoints = 2.5', "rubric.points"),
        ('target = "dL/dW_hh"\n[rubric]\nbudget = 0', "rubric.budget"),
        ('target = "dL/dW_hh"\n[rubric]\nwork = 0', "rubric.work"),
        ('target = "dL/dW_hh"\n[rubric]\ncite = "states"', "rubric.cite"),
        ('target = "dL/dW_hh"\n[rubric]\nmax_score = true', "rubric.max_score"),
        ('target = "dL/dW_hh"\n[rubric]\npartial_credit = "yes"', "rubric.partial_credit"),
        ('target = "dL/dW_hh"\n[rubric.diagnoses]\nsign_flip = "half"', "rubric.diagnoses.sign_flip"),
        ('target = "dL/dW_hh"\n[model]\nsteps = "two"', "model.steps"),
        ('target = "dL/dW_hh"\n[model]\nlayers = 2', "model.layers"),
        ('target = "dL/dW_hh"\n[model]\nsizes = { input = 2, hiden = 3 }', "model.sizes.hiden"),
        ('target = "dL/dW_hh"\n[model]\nloss_at = "first"', "model.loss_at"),
        ('target = "dL/dW_hu"', "target"),
        ('target = "dL/dW_hh"\nmodel = 3', "model"),
        ('target = "dL/dW_hh"\n[rubric\n', "TOML"),
    ],
)
def test_a_bad_question_file_names_the_file_and_the_key(tmp_path: Path, text: str, key: str):
    path = tmp_path / "q.toml"
    path.write_text(text)
    with pytest.raises(FileFormatError) as err:
        Question.from_file(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_questions_and_rubrics_are_checked_in_python_too():
    with pytest.raises(ConfigError, match="rubric.transposed"):
        Rubric(transposed=2)
    with pytest.raises(ConfigError, match="target"):
        Question("")
    assert Question("dL/dW_hh").with_budget(0.5).rubric.budget == 0.5


def test_a_question_says_which_true_partials_an_answer_may_cite():
    # Issue 14, finding 8: citing the target's own pieces earned full marks with no derivation.
    loophole = "dL_1/dW_hh + dL_2/dW_hh"
    strict = Grader(Question("dL/dW_hh"))  # the grading default: state gradients only
    assert Rubric().cite == "state_gradients"
    refused = strict.grade(loophole)
    assert (refused.verdict, refused.codes, refused.score) == ("invalid", ("cited_partial",), 0.0)
    assert "the answer cites ∂L_1/∂W_hh, a gradient with respect to a parameter, not a state" in refused.message
    assert strict.grade(CORRECT[0]).verdict == "equivalent"  # dL/dh_t may be cited
    anything = Grader(Question.from_toml('target = "dL/dW_hh"\n[rubric]\ncite = "any"'))
    assert anything.grade(loophole).verdict == "equivalent"
    closed = Grader(Question.from_toml('target = "dL/dW_hh"\n[rubric]\ncite = "none"'))
    assert closed.grade(CORRECT[0]).codes == ("cited_partial",)
    assert closed.grade(WRITTEN).verdict == "equivalent"
    itself = Grader(Question("L_2", rubric=Rubric(cite="any"))).grade("L_2")
    assert (itself.verdict, itself.codes) == ("invalid", ("circular",))


# -- the rubric ---------------------------------------------------------------------------------


def _result(verdict: str, score: float = 0.0, *codes: str) -> CheckResult:
    return CheckResult(verdict=verdict, target="dL/dW_hh", answer="", score=score, message="m",  # type: ignore[arg-type]
                       diagnoses=tuple(Diagnosis(c, c) for c in codes))


def test_the_rubric_scores_verdicts_diagnoses_and_partial_credit():
    r = Rubric(max_score=4)
    assert r.score(_result("equivalent", 1.0)) == 4
    assert r.score(_result("equivalent_numerically", 1.0)) == 4
    assert r.score(_result("transposed", 0.5, "transposed")) == 2
    assert r.score(_result("not_equivalent", 0.0)) == 0
    assert r.score(_result("not_equivalent", 0.5, "missing_term")) == 2  # the engine's partial credit
    assert r.score(_result("invalid", 0.0, "parse_error")) == 0
    assert Rubric(max_score=4, partial_credit=False).score(_result("not_equivalent", 0.5, "missing_term")) == 0
    assert Rubric(transposed=0).score(_result("transposed", 0.5, "transposed")) == 0  # the instructor's word
    overrides = Rubric(max_score=4, diagnoses={"sign_flip": 0.75, "missing_term": 0.25})
    assert overrides.score(_result("not_equivalent", 0.5, "sign_flip")) == 3
    assert overrides.score(_result("not_equivalent", 0.5, "missing_term", "sign_flip")) == 3  # the best override
    assert overrides.score(_result("not_equivalent", 0.5, "missing_term")) == 1
    assert Rubric(not_equivalent=0.25).score(_result("not_equivalent", 0.1, "extra_term")) == 0.25


# -- one grader, in process ------------------------------------------------------------------------


def test_grade_one_answer_in_process(grader: Grader):
    r = grader.grade(PLAIN, id="alice")
    assert (r.id, r.verdict, r.score, r.max_score) == ("alice", "equivalent", MAX, MAX)
    assert r.message.splitlines()[0] == f"dL/dW_hh: equivalent ({MAX:g}/{MAX:g} points)"
    assert json.loads(json.dumps(r.to_dict()))["verdict"] == "equivalent"
    assert GradeResult.from_dict(r.to_dict()) == dataclasses.replace(r, seconds=round(r.seconds, 6))
    assert str(r).startswith("[alice] 2/2")
    t = grader.grade(TRANSPOSED[0])
    assert (t.verdict, t.score) == ("transposed", MAX / 2)
    bad = grader.grade("h_0.T @ (dL/dh_1", id="b")
    assert bad.verdict == "invalid" and bad.score == 0 and "^" in bad.message


def test_partial_credit_and_diagnosis_overrides_apply_to_real_checks(grader: Grader):
    rubric = Rubric(max_score=4, diagnoses={"sign_flip": 0.5})
    partial = Grader(Question("dL/dW_hh", rubric=rubric))
    partial._checker = grader.checker  # the same truth: only the rubric differs
    dropped = partial.grade(WRONG[0])
    engine = grader.checker.check(WRONG[0])
    assert dropped.verdict == "not_equivalent" and "missing_term" in dropped.codes
    assert dropped.score == pytest.approx(4 * engine.score) and 0 < dropped.score < 4
    assert grader.grade(WRONG[0]).score == 0  # partial_credit = false
    flipped = partial.grade(WRONG[3])
    assert "sign_flip" in flipped.codes and flipped.score == 2
    assert flipped.message.splitlines()[0] == "dL/dW_hh: not_equivalent (2/4 points)"


def test_identical_answers_are_checked_once(grader: Grader):
    first = grader.grade(WRONG[0], id="a")
    size = len(grader._cache)
    checker = grader.check_text
    grader.check_text = lambda *args: pytest.fail("an identical answer was checked again")  # type: ignore[method-assign]
    again = grader.grade("  " + WRONG[0].replace(" @ ", "   @\n ") + "\n", id="b")
    grader.check_text = checker  # type: ignore[method-assign]
    assert len(grader._cache) == size
    assert (again.verdict, again.score, again.message) == (first.verdict, first.score, first.message)
    assert grader.grade(WRONG[0], syntax="latex").verdict == "invalid" or len(grader._cache) == size + 1
    # an invalid answer's message points at a column: spacing changes it, so it is not shared
    a = grader.grade("h_0.T @ @ h_1")
    b = grader.grade("h_0.T  @ @ h_1")
    assert a.message != b.message


# -- a class of several hundred, in worker processes ---------------------------------------------------


def test_a_class_of_several_hundred_gets_the_known_scores(question: Question):
    klass = make_class(400)
    grader = Grader(question)
    start = time.perf_counter()
    results = grader.grade_many([(i, a) for i, a, _ in klass], jobs=2)
    elapsed = time.perf_counter() - start
    assert [r.id for r in results] == [i for i, _, _ in klass]
    wrong = [(r.id, kind, answer[:80], r.verdict, r.score, r.message[:200])
             for (i, answer, kind), r in zip(klass, results, strict=True) if (r.verdict, r.score) != EXPECTED[kind]]
    assert not wrong, wrong[:5]
    kinds = {kind for _, _, kind in klass}
    assert kinds == set(EXPECTED)
    assert not any(r.internal_error for r in results)
    hostile = [r for (_, _, kind), r in zip(klass, results, strict=True) if kind == "hostile"]
    assert len(hostile) >= len(HOSTILE) and all(r.diagnoses and r.message for r in hostile)
    # Refused before anything is evaluated, so they never slow the batch (its timing is in benchmarks/).
    assert {r.codes for r in hostile} <= {("too_long",), ("limit",), ("parse_error",)}
    assert {r.codes for r in hostile} >= {("too_long",)}
    summary = Summary.of(results, question=question.name, max_score=MAX, graded=len(results),
                         unique=len(grader._cache), seconds=elapsed)
    assert summary.total == 400 and sum(summary.by_verdict.values()) == 400
    assert summary.by_verdict["equivalent"] == sum(k == "correct" for _, _, k in klass)
    assert "verdicts:" in str(summary) and summary.to_dict()["total"] == 400


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


def test_errors_inside_a_check_become_invalid_results(question: Question):
    grader = Grader(question)

    class Failing:
        target = "dL/dW_hh"

        def __init__(self, error: BaseException) -> None:
            self.error = error

        def check(self, text: str, *, syntax: str) -> CheckResult:
            raise self.error

    cases = [
        (InternalError("the truths disagree on dL/dh_1"), "internal_error", True),
        (ValueError("a bug\nwith a second line"), "internal_error", True),
        (RecursionError(), "limit", False),
        (ParseError("cannot read this"), "invalid", False),
    ]
    results = []
    for error, code, internal in cases:
        grader._checker = Failing(error)  # type: ignore[assignment]
        result, _ = grader.check_text("h_0", "auto")
        assert (result.verdict, result.codes, result.internal_error, result.score) == ("invalid", (code,), internal, 0)
        assert "\n" not in result.message.splitlines()[1]
        results.append(dataclasses.replace(result, id=code + str(len(results))))
    summary = Summary.of(results, question="q", max_score=MAX, graded=4, unique=4, seconds=1)
    assert summary.internal_errors == ("internal_error0", "internal_error1")
    assert "INTERNAL ERROR" in str(summary) and "not the students'" in str(summary)


def test_the_summary_line_counts_only_checks_in_its_rate():
    def results(n: int, code: str) -> list[GradeResult]:
        return [GradeResult(id=f"{code}{i}", verdict="invalid", score=0.0, max_score=MAX,
                            diagnoses=(Diagnosis(code, "x"),), message="x") for i in range(n)]

    refused = Summary.of(results(2, "empty"), question="q", max_score=MAX, graded=2, unique=0, refused=2, seconds=1.5)
    head = str(refused).splitlines()[0]
    assert "none needed a check" in head and "answers/s" not in head and "duplicate" not in head
    slow = Summary.of(results(9, "parse_error"), question="q", max_score=MAX, graded=9, unique=9, seconds=7.0)
    assert "(1.3 answers/s)" in str(slow).splitlines()[0]
    fast = Summary.of(results(300, "parse_error"), question="q", max_score=MAX, graded=300, unique=100, seconds=2.0)
    assert "(150 answers/s; 200 duplicates graded once)" in str(fast).splitlines()[0]


def test_in_process_batches(grader: Grader):
    subs = [("a", PLAIN), ("b", WRONG[0]), ("c", PLAIN + "  "), Submission("d", TRANSPOSED[0], "plain"),
            {"id": "e", "answer": CORRECT[8], "syntax": "latex"}]
    seen: list[str] = []
    results = grader.grade_many(subs, isolate=False, on_result=lambda r: seen.append(r.id))
    assert [r.verdict for r in results] == ["equivalent", "not_equivalent", "equivalent", "transposed", "equivalent"]
    assert sorted(seen) == ["a", "b", "c", "d", "e"]
    with pytest.raises(ConfigError, match="duplicate"):
        grader.grade_many([("a", PLAIN), ("a", PLAIN)], isolate=False)
    with pytest.raises(ConfigError, match="syntax"):
        grader.grade_many([("a", PLAIN, "tex")], isolate=False)


# -- submissions files ---------------------------------------------------------------------------


def test_malformed_rows_are_reported_with_line_numbers_and_kept_as_invalid(tmp_path: Path):
    path = tmp_path / "class.csv"
    path.write_text(
        "id,answer,syntax\n"
        "a,h_0\n"
        ",h_1\n"  # line 3: no id
        "b\n"  # line 4: no answer
        "c,W_hy[0,0]\n"  # line 5: an unquoted comma
        'd,"multi\nline"\n'  # lines 6-7
        "e,h_0,tex\n"  # line 8: unknown syntax
        "a,again\n"  # line 9: duplicate id
        'f,"W_hy[0,0]",plain\n'
    )
    warnings: list[str] = []
    subs = read_submissions(path, warn=warnings.append)
    assert [(s.id, s.line, bool(s.problem)) for s in subs] == [
        ("a", 2, False), ("<line 3>", 3, True), ("b", 4, True), ("c", 5, True), ("d", 6, False),
        ("e", 8, True), ("a <line 9>", 9, True), ("f", 10, False)]
    good = [s for s in subs if not s.problem]
    assert good[1].answer == "multi\nline" and good[2].syntax == "plain"
    assert [s.problem for s in subs if s.problem] == [
        "missing id", "missing answer",
        "syntax '0]' is not one of auto, plain, latex",
        "syntax 'tex' is not one of auto, plain, latex", "duplicate id 'a' (first on line 2)"]
    lines = [int(m.group(1)) for w in warnings for m in [re.search(r" line (\d+):", w)] if m]
    assert lines == [3, 4, 5, 8, 9]
    assert "duplicate id 'a' (first on line 2)" in warnings[-1] and "graded as invalid" in warnings[-1]

    jsonl = tmp_path / "class.jsonl"
    jsonl.write_text('{"id": 1, "answer": "h_0"}\n{oops\n\n[1]\n{"id": "2"}\n'
                     '{"id": "3", "answer": 4}\n{"id": "1", "answer": "x"}\n')
    warnings.clear()
    subs = read_submissions(jsonl, warn=warnings.append)
    assert [(s.id, s.answer) for s in subs if not s.problem] == [("1", "h_0")]
    assert [s.id for s in subs] == ["1", "<line 2>", "<line 4>", "2", "3", "1 <line 7>"]
    assert [int(re.search(r" line (\d+):", w).group(1)) for w in warnings] == [2, 4, 5, 6, 7]


def test_unusable_submission_files_are_errors(tmp_path: Path):
    (tmp_path / "a.txt").write_text("id,answer\n")
    (tmp_path / "b.csv").write_text("student,response\nx,y\n")
    (tmp_path / "c.csv").write_bytes(b"")
    (tmp_path / "d.csv").write_bytes(b"id,answer\n\n")
    (tmp_path / "e.jsonl").write_bytes(b"\n  \n")
    for name in ("a.txt", "b.csv", "c.csv", "d.csv", "e.jsonl", "missing.csv"):
        with pytest.raises(FileFormatError):
            read_submissions(tmp_path / name)


# -- result files, resuming -------------------------------------------------------------------------


def _results(n: int) -> list[GradeResult]:
    return [GradeResult(f"r{i}", "not_equivalent", 0.5, 1.0, (Diagnosis("sign_flip", "y - yhat"),),
                        f"line one\nline, \"two\" {i}", 0.01) for i in range(n)]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "gradescope"])
def test_outputs_resume_and_drop_a_record_cut_short(tmp_path: Path, fmt: str):
    path = tmp_path / {"jsonl": "out.jsonl", "csv": "out.csv", "gradescope": "results.json"}[fmt]
    first, second = _results(3), _results(5)[3:]
    with open_output(fmt, path, question="q") as out:  # type: ignore[arg-type]
        for r in first:
            out.write(r)
    written = path if fmt != "gradescope" else tmp_path / "results.partial.jsonl"
    with open(written, "ab") as f:
        f.write(b'r9,not_eq' if fmt == "csv" else b'{"id": "r9", "verd')  # a kill in mid-write
    warnings: list[str] = []
    with open_output(fmt, path, question="q", warn=warnings.append) as out:  # type: ignore[arg-type]
        assert [r.id for r in out.previous] == ["r0", "r1", "r2"]
        for r in second:
            out.write(r)
        summary = Summary.of(out.previous + second, question="q", max_score=1, graded=2, unique=2, seconds=1)
        out.finish(summary, order=[f"r{i}" for i in range(5)])
    assert any("cut short" in w for w in warnings)
    with open_output(fmt, path, question="q") as out:  # type: ignore[arg-type]
        ids = [r.id for r in out.previous]
    assert ids == ["r0", "r1", "r2", "r3", "r4"]
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(path.read_text(), newline="")))
        assert tuple(rows[0]) == CSV_COLUMNS and rows[1][:5] == ["r0", "not_equivalent", "0.5", "1", "sign_flip"]
        assert rows[1][5] == 'line one\nline, "two" 0'
    if fmt == "jsonl":
        assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ids
    if fmt == "gradescope":
        _assert_gradescope(json.loads(path.read_text()), 5)


def test_an_unrelated_output_file_is_not_appended_to(tmp_path: Path):
    (tmp_path / "notes.csv").write_text("name,grade\nx,1\n")
    (tmp_path / "notes.jsonl").write_text('{"hello": 1}\n')
    for name, fmt in (("notes.csv", "csv"), ("notes.jsonl", "jsonl")):
        with pytest.raises(FileFormatError, match="--restart"):
            open_output(fmt, tmp_path / name, question="q")  # type: ignore[arg-type]
        with open_output(fmt, tmp_path / name, question="q", restart=True) as out:  # type: ignore[arg-type]
            assert out.previous == []


GRADESCOPE_TOP = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
                  "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
GRADESCOPE_TEST = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format",
                   "tags", "visibility", "extra_data"}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def _assert_gradescope(doc: dict, n: int) -> None:
    """Gradescope's autograder results.json specification: the fields, their types and values."""
    assert set(doc) <= GRADESCOPE_TOP and isinstance(doc["tests"], list) and len(doc["tests"]) == n
    assert isinstance(doc["score"], (int, float)) and isinstance(doc["execution_time"], (int, float))
    assert isinstance(doc["output"], str)
    for test in doc["tests"]:
        assert set(test) <= GRADESCOPE_TEST
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] == ("passed" if test["score"] >= test["max_score"] else "failed")
        assert test["visibility"] in VISIBILITY and test["visibility"] == "visible"
        assert isinstance(test.get("extra_data", {}), dict)
    assert doc["score"] == pytest.approx(sum(t["score"] for t in doc["tests"]))
    assert len({t["name"] for t in doc["tests"]}) == n


def test_the_gradescope_document_follows_the_specification():
    results = [GradeResult("a", "equivalent", 4, 4, (), "ok"), GradeResult("b", "transposed", 2, 4, (), "half")]
    doc = gradescope_document(results, question="dL/dW_hh")
    _assert_gradescope(doc, 2)
    assert [t["status"] for t in doc["tests"]] == ["passed", "failed"] and doc["score"] == 6


# -- the command line -------------------------------------------------------------------------------

def _cli(*args: str | Path) -> list[str]:
    """``bptt-check ARGS`` in a fresh interpreter."""
    return [sys.executable, "-m", "bptt_check", *map(str, args)]


def _write_class(path: Path, klass: list[tuple[str, str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "answer"])
        for i, a, _ in klass:
            w.writerow([i, a])


def _question_file(tmp_path: Path, **rubric: object) -> Path:
    path = tmp_path / "q.toml"
    lines = ['title = "dW_hh"', 'target = "dL/dW_hh"', "[model]", "steps = 2", "[rubric]", "partial_credit = false",
             f"max_score = {MAX:g}"] + [f"{k} = {json.dumps(v)}" for k, v in rubric.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_resumes_after_a_kill_and_grades_every_answer_once(tmp_path: Path):
    klass = [(i, a, k) for i, a, k in make_class(160, seed=11) if k != "hostile"]
    subs = tmp_path / "class.csv"
    _write_class(subs, klass)
    q = _question_file(tmp_path)
    out = tmp_path / "results.json"
    journal = tmp_path / "results.partial.jsonl"
    proc = subprocess.Popen(_cli("grade", "--question", q, subs, "--out", out, "--jobs", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_text().count("\n") >= 20:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [json.loads(line)["id"] for line in journal.read_text().splitlines() if line.endswith("}")]
    assert 20 <= len(before) < len(klass) and not out.exists()

    done = subprocess.run(_cli("grade", "--question", q, subs, "--out", out, "--jobs", "1"),
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stderr and f"{len(before)} of {len(klass)}" in done.stderr
    journal_ids = [json.loads(line)["id"] for line in journal.read_text().splitlines()]
    assert sorted(journal_ids) == sorted(i for i, _, _ in klass)  # every id exactly once
    doc = json.loads(out.read_text())
    _assert_gradescope(doc, len(klass))
    by_id = {t["extra_data"]["bptt_check"]["id"]: t for t in doc["tests"]}
    for i, _, kind in klass:
        verdict, score = EXPECTED[kind]
        assert (by_id[i]["extra_data"]["bptt_check"]["verdict"], by_id[i]["score"]) == (verdict, score), i
    assert f"graded {len(klass) - len(before)} answers" in done.stdout and "verdicts:" in done.stdout

    again = subprocess.run(_cli("grade", "--question", q, subs, "--out", out),
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert again.returncode == 0 and "graded 0 answers" in again.stdout
    assert json.loads(out.read_text())["tests"] == doc["tests"]


def test_cli_reports_malformed_rows_and_exits_2_for_bad_files(tmp_path: Path):
    q = _question_file(tmp_path, transposed=0.25)
    subs = tmp_path / "class.jsonl"
    subs.write_text(
        json.dumps({"id": "a", "answer": PLAIN}) + "\n"
        + "{not json\n"
        + json.dumps({"id": "b", "answer": TRANSPOSED[0]}) + "\n"
        + json.dumps({"id": "a", "answer": "dup"}) + "\n"
        + json.dumps({"id": "c", "answer": "h_0 @"}) + "\n"
    )
    run = subprocess.run(_cli("grade", "--question", q, subs, "--format", "jsonl", "--jobs", "1"),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "line 2: not valid JSON" in run.stderr and "line 4: duplicate id 'a' (first on line 1)" in run.stderr
    rows = sorted((json.loads(line) for line in run.stdout.splitlines()), key=lambda r: r["id"])
    assert [(r["id"], r["verdict"], r["score"]) for r in rows] == [
        ("<line 2>", "invalid", 0.0), ("a", "equivalent", MAX), ("a <line 4>", "invalid", 0.0),
        ("b", "transposed", MAX / 4), ("c", "invalid", 0.0)]
    assert "malformed: 2 rows graded invalid" in run.stderr and "verdicts:" in run.stderr  # results on stdout

    bad_q = tmp_path / "bad.toml"
    bad_q.write_text('target = "dL/dW_hh"\n[rubric]\ntransposed = "half"\n')
    for args in (("--question", bad_q, subs), ("--question", q, tmp_path / "nope.csv"),
                 ("--question", tmp_path / "nope.toml", subs), ("--question", q, subs, "--budget", "-1")):
        r = subprocess.run(_cli("grade", *args), capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "rubric.transposed" in subprocess.run(_cli("grade", "--question", bad_q, subs), capture_output=True,
                                                 text=True, timeout=60).stderr


def test_run_grade_in_the_library_writes_and_summarises(tmp_path: Path, question: Question):
    subs = tmp_path / "class.csv"
    _write_class(subs, [("a", PLAIN, "correct"), ("b", PLAIN, "correct"), ("c", WRONG[2], "wrong")])
    out = tmp_path / "out.jsonl"
    summary = run_grade(question, subs, out=out, jobs=1)
    assert (summary.total, summary.graded, summary.unique, summary.resumed) == (3, 3, 2, 0)
    assert summary.by_verdict["equivalent"] == 2 and summary.mean_score == pytest.approx(2 * MAX / 3)
    assert "1 duplicate graded once" in str(summary)
    again = run_grade(question, subs, out=out, jobs=1)
    assert (again.total, again.graded, again.resumed) == (3, 0, 3)


# -- model options in question files and on the command line (issue 8) ---------------------------------

COLUMN_QUESTION = '''
title = "dL/dW in the textbook's names"
target = '\\nabla_{W} L'

[model]
steps = 3
convention = "column"
biases = true
activation = "tanh"
loss = "cross-entropy"

[notation]
use = "textbook"
'''

COLUMN_RIGHT = r"\sum_t \operatorname{diag}\left(1 - \left(h^{(t)}\right)^2\right) \left(\nabla_{h^{(t)}} L\right) h^{(t-1)\top}"
COLUMN_ROW_LAYOUT = "sum_{t=1}^{T} h_{t-1} @ (dL/dh_t * (1 - h_t**2)).T"


def test_a_question_in_the_column_convention_grades_column_answers():
    q = Question.from_toml(COLUMN_QUESTION, source="col.toml")
    assert q.model == RNN(steps=3, convention="column", biases=True)
    assert q.notation == {"use": "textbook"}
    g = Grader(q)
    try:
        right = g.grade(COLUMN_RIGHT, id="book")
        assert (right.verdict, right.score) == ("equivalent", 1.0), right.message
        row = g.grade(COLUMN_ROW_LAYOUT, id="row")  # the row convention's layout: the transpose
        assert row.verdict == "transposed", row.message
        tanh_dropped = g.grade(r"\sum_t \left(\nabla_{h^{(t)}} L\right) h^{(t-1)\top}", id="slip")
        assert tanh_dropped.verdict == "not_equivalent"
        assert "missing_activation_derivative" in tanh_dropped.codes
    finally:
        g.close()


@pytest.mark.parametrize(
    "model, key",
    [
        ('convention = "col"', "model.convention"),
        ('activation = "swish"', "model.activation"),
        ('loss = "mse"', "model.loss"),
    ],
)
def test_a_bad_model_option_in_a_question_names_the_key(tmp_path: Path, model: str, key: str):
    path = tmp_path / "q.toml"
    path.write_text(f'target = "dL/dW_hh"\n[model]\n{model}\n')
    with pytest.raises(FileFormatError) as err:
        Question.from_file(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_command_line_model_options_override_the_question(tmp_path: Path):
    path = tmp_path / "q.toml"
    path.write_text('target = "dL/dW"\n[model]\nsteps = 2\n[notation]\nW = "W_hh"\n')
    q = Question.from_file(path, model_changes={"convention": "column", "activation": "relu"})
    assert q.model == RNN(steps=2, convention="column", activation="relu")
    assert q.notation == {"W": "W_hh"}
    q2 = Question.from_file(path, notation={"use": "textbook"})
    assert q2.notation == {"use": "textbook"} and q2.build_notation() == Notation.TEXTBOOK
    with pytest.raises(FileFormatError, match="command line's model options"):
        Question.from_file(path, model_changes={"loss": "squared_error", "output_size": 0})
    with pytest.raises(FileFormatError, match="target"):  # the new notation must still name the target
        Question.from_file(path, notation={"use": "seed"})


def test_cli_grade_with_a_column_override(tmp_path: Path):
    q = tmp_path / "q.toml"
    q.write_text('target = "dL/dV"\n[model]\nsteps = 2\n')
    subs = tmp_path / "class.jsonl"
    subs.write_text(
        json.dumps({"id": "col", "answer": r"\sum_t \left(\hat{y}^{(t)} - y^{(t)}\right) h^{(t)\top}"}) + "\n"
        + json.dumps({"id": "row", "answer": "sum_{t=1}^{T} h_t.T @ (yhat_t - y_t)"}) + "\n"
    )
    run = subprocess.run(_cli("grade", "--question", q, subs, "--format", "jsonl", "--jobs", "1",
                              "--convention", "column", "--notation", "textbook"),
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    rows = {r["id"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert rows["col"]["verdict"] == "equivalent" and rows["row"]["verdict"] == "invalid"
    bad = subprocess.run(_cli("grade", "--question", q, subs, "--activation", "tan"),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "'tan' is not a known activation: did you mean tanh?" in bad.stderr and "Traceback" not in bad.stderr
