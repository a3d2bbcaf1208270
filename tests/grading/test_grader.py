"""The Grader (bptt_check.grading.grader): one answer in process, overrides, deduplication, errors as invalid results."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bptt_check.errors import InternalError, ParseError
from bptt_check.grading import Grader, GradeResult, Question, Rubric, Summary
from bptt_check.results import CheckResult

from .conftest import MAX, PLAIN, TRANSPOSED, WRONG


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
