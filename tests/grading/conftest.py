"""Shared questions, classes, the course example and helpers of the grading tests (bptt_check.grading, gradescope, prairielearn)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bptt_check.grading import Grader, Question, Rubric
from bptt_check.model import RNN


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


# -- the course example (examples/course) ------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent.parent
COURSE = ROOT / "examples" / "course"
SUBS = COURSE / "submissions"
NAMES = ("dW_hh", "dW_hy", "dh_1")

# The five submissions of the issue, with the points each question earns (dW_hh 4, dW_hy 2, dh_1 4).
FIVE = {
    "right": ("right.tex", {"dW_hh": 4, "dW_hy": 2, "dh_1": 4}),
    "one_wrong": ("one_wrong.md", {"dW_hh": 4, "dW_hy": 0, "dh_1": 4}),
    "garbage": ("garbage.txt", {"dW_hh": 0, "dW_hy": 0, "dh_1": 0}),
    "missing": ("missing_one.txt", {"dW_hh": 2, "dW_hy": 0, "dh_1": 2}),
    "empty": ("empty.tex", {"dW_hh": 0, "dW_hy": 0, "dh_1": 0}),
}
