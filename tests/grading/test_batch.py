"""Batches (bptt_check.grading.batch): a whole class with known scores, in-process batches, the summary line."""

from __future__ import annotations

import time

import pytest

from bptt_check.errors import ConfigError
from bptt_check.grading import Grader, GradeResult, Question, Submission, Summary
from bptt_check.results import Diagnosis

from .conftest import CORRECT, EXPECTED, HOSTILE, make_class, MAX, PLAIN, TRANSPOSED, WRONG


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
