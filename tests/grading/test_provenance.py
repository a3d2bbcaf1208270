"""Results keyed by what produced them (issue 18 item 1): resume reuses only what still holds; every row once."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bptt_check.errors import FileFormatError
from bptt_check.grading import Question, run_grade
from bptt_check.grading.provenance import NO_KEY, QuestionKey, why_not_reused

RIGHT = "h_0.T @ (dL/dh_1 * (1 - h_1**2)) + h_1.T @ (dL/dh_2 * (1 - h_2**2))"
SIGN = "h_0.T @ (dL/dh_1 * (1 - h_1**2)) - h_1.T @ (dL/dh_2 * (1 - h_2**2))"


def _question(path: Path, sign_flip: float = 0.5, target: str = "dL/dW_hh", steps: int = 2) -> Path:
    path.write_text(
        f'target = "{target}"\n[model]\nsteps = {steps}\n[rubric]\nmax_score = 4\n'
        f"[rubric.diagnoses]\nsign_flip = {sign_flip}\n"
    )
    return path


def _class(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "answer"])
        w.writerows(rows)
    return path


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_resume_reuses_only_results_whose_key_still_holds(tmp_path: Path):
    q = _question(tmp_path / "q.toml")
    subs = _class(tmp_path / "class.csv", [("a", RIGHT), ("b", SIGN), ("c", RIGHT + " ")])
    out = tmp_path / "out.csv"
    first = run_grade(q, subs, out=out, jobs=1, warn=lambda m: None)
    assert (first.graded, first.resumed) == (3, 0)
    assert {r["id"]: float(r["score"]) for r in _rows(out)} == {"a": 4, "b": 2, "c": 4}
    assert all(r["question"] == "dL/dW_hh" and r["key"].startswith("q=") for r in _rows(out))

    said: list[str] = []
    same = run_grade(q, subs, out=out, jobs=1, warn=said.append)
    assert (same.graded, same.resumed, dict(same.regraded)) == (0, 3, {})
    assert "reusing 3 of 3 results" in said[-1]

    _question(q, sign_flip=0.9)  # the rubric changed: every result is re-graded, the sign flip's score moves
    changed = run_grade(q, subs, out=out, jobs=1, warn=lambda m: None)
    assert (changed.graded, changed.resumed, dict(changed.regraded)) == (3, 0, {"the rubric changed": 3})
    assert "3 re-graded (3 because the rubric changed)" in str(changed)
    rows = _rows(out)
    assert [r["id"] for r in rows] == ["a", "b", "c"]  # one row per id, in submission order
    assert {r["id"]: float(r["score"]) for r in rows} == {"a": 4, "b": 3.6, "c": 4}

    _class(subs, [("a", RIGHT), ("b", RIGHT), ("c", RIGHT + " ")])  # b resubmitted
    answer = run_grade(q, subs, out=out, jobs=1, warn=lambda m: None)
    assert (answer.graded, answer.resumed, dict(answer.regraded)) == (1, 2, {"the answer changed": 1})
    assert {r["id"]: float(r["score"]) for r in _rows(out)} == {"a": 4, "b": 4, "c": 4}

    _question(q, sign_flip=0.9, steps=3)  # the model changed
    model = run_grade(q, subs, out=out, jobs=1, warn=lambda m: None)
    assert dict(model.regraded) == {"the model changed": 3}
    assert {r["id"]: r["verdict"] for r in _rows(out)} == dict.fromkeys("abc", "not_equivalent")


def test_key_parts_name_the_reason():
    q = Question("dL/dW_hh")
    key = QuestionKey.of(q)
    a = key.for_answer(RIGHT)
    assert why_not_reused(a, a) is None
    assert why_not_reused(a, key.for_answer(RIGHT, "plain")) == "the answer changed"
    assert why_not_reused(a, QuestionKey.of(q.with_budget(3)).for_answer(RIGHT)) == "the rubric changed"
    assert why_not_reused(a, QuestionKey.of(Question("dL/dW_hh", title="HW")).for_answer(RIGHT)) == (
        "the question file changed")
    assert why_not_reused(a, QuestionKey.of(q, file_text="# a comment").for_answer(RIGHT)) == (
        "the question file changed")
    newer = a.replace(f"v={key.version}", "v=9.9")
    assert why_not_reused(a, newer) == "bptt-check's version changed"
    assert why_not_reused("", a) == NO_KEY and why_not_reused("q=1 r=2", a) == NO_KEY


@pytest.mark.parametrize("fmt,name", [("csv", "out.csv"), ("jsonl", "out.jsonl"), ("gradescope", "results.json")])
def test_another_questions_file_is_refused_and_left_alone(tmp_path: Path, fmt: str, name: str):
    subs = _class(tmp_path / "class.csv", [("a", RIGHT)])
    out = tmp_path / name
    run_grade(_question(tmp_path / "q.toml"), subs, out=out, fmt=fmt, jobs=1, warn=lambda m: None)
    before = out.read_bytes()
    other = _question(tmp_path / "q2.toml", target="dL/dW_hy")
    with pytest.raises(FileFormatError) as err:
        run_grade(other, subs, out=out, fmt=fmt, jobs=1, warn=lambda m: None)
    assert "holds results for another question ('dL/dW_hh', not 'dL/dW_hy')" in err.value.message
    assert "--out" in (err.value.hint or "") and "--restart" in (err.value.hint or "")
    assert out.read_bytes() == before
    fresh = run_grade(other, subs, out=out, fmt=fmt, jobs=1, restart=True, warn=lambda m: None)
    assert (fresh.graded, fresh.resumed) == (1, 0)


def test_every_row_gets_exactly_one_result_whatever_is_wrong_with_it(tmp_path: Path):
    subs = tmp_path / "class.csv"
    subs.write_bytes(
        b"id,answer,syntax\n"
        b"a,\"" + RIGHT.encode() + b"\"\n"
        b"b,h_0 \xff\xfe,plain\n"  # not UTF-8
        b"c,h_0,tex\n"  # a bad syntax value
        b"d,\n"  # an empty answer
        b"e,   \n"  # a blank one
        b"f,\"" + RIGHT.encode() + b"\"\n"  # a real duplicate answer, checked once
        b"\xff,h_0\n"  # an id that is not UTF-8
        b",h_0\n"  # no id
    )
    out = tmp_path / "out.jsonl"
    said: list[str] = []
    summary = run_grade(_question(tmp_path / "q.toml"), subs, out=out, jobs=1, warn=said.append)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c", "d", "e", "f", "\ufffd", "<line 9>"]
    verdicts = {r["id"]: (r["verdict"], [d["code"] for d in r["diagnoses"]]) for r in rows}
    assert verdicts["a"] == verdicts["f"] == ("equivalent", [])
    assert verdicts["b"] == verdicts["c"] == verdicts["\ufffd"] == verdicts["<line 9>"] == ("invalid", ["bad_row"])
    assert verdicts["d"] == verdicts["e"] == ("invalid", ["empty"])
    reasons = {r["id"]: r["diagnoses"][0]["message"] for r in rows if r["verdict"] == "invalid"}
    assert reasons["b"] == "not UTF-8 text (byte 0xff at column 5)"
    assert reasons["c"] == "syntax 'tex' is not one of auto, plain, latex"
    assert summary.total == 8 and summary.bad_rows == 4 and summary.refused == 6
    assert summary.duplicates == 1  # f only: rejected answers are not "duplicates graded once"
    assert "1 duplicate graded once" in str(summary) and "malformed: 4 rows" in str(summary)
    assert sum("graded as invalid" in m for m in said) == 4


def test_an_empty_submissions_file_is_a_clear_error(tmp_path: Path):
    q = _question(tmp_path / "q.toml")
    for name, data in (("empty.csv", b""), ("header.csv", b"id,answer\n"), ("blank.jsonl", b"\n\n")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(FileFormatError) as err:
            run_grade(q, tmp_path / name, out=tmp_path / "out.csv", jobs=1)
        assert "empty" in err.value.message or "no submissions" in err.value.message
    assert not (tmp_path / "out.csv").exists()


def test_results_written_without_a_key_are_graded_again(tmp_path: Path):
    out = tmp_path / "out.csv"
    out.write_text(f'id,verdict,score,max_score,diagnoses,message\na,equivalent,4,4,,"old"\n')
    subs = _class(tmp_path / "class.csv", [("a", SIGN)])
    summary = run_grade(_question(tmp_path / "q.toml"), subs, out=out, jobs=1, warn=lambda m: None)
    assert dict(summary.regraded) == {NO_KEY: 1}
    assert [(r["id"], r["verdict"]) for r in _rows(out)] == [("a", "not_equivalent")]


def test_a_class_results_json_keeps_the_class_summary_for_the_ta(tmp_path: Path):
    subs = _class(tmp_path / "class.csv", [("a", RIGHT), ("b", SIGN)])
    out = tmp_path / "results.json"
    run_grade(_question(tmp_path / "q.toml"), subs, out=out, jobs=1, warn=lambda m: None)
    doc = json.loads(out.read_text())
    assert doc["output"] == "" and "sign_flip" not in json.dumps([t["output"] for t in doc["tests"] if "[a]" in t["name"]])
    report = (tmp_path / "results.report.txt").read_text()
    assert "verdicts:" in report and "most common mistakes" in report


@pytest.mark.slow
def test_the_command_line_refuses_another_questions_file_and_reports_reuse(tmp_path: Path):
    subs = _class(tmp_path / "class.csv", [("a", RIGHT), ("b", SIGN)])
    q, other, out = _question(tmp_path / "q.toml"), _question(tmp_path / "o.toml", target="dL/dW_hy"), tmp_path / "o.csv"

    def grade(*args: Path | str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bptt_check", "grade", *map(str, args), "--jobs", "1"],
                              capture_output=True, text=True, timeout=300)

    assert grade("--question", q, subs, "--out", out).returncode == 0
    _question(q, sign_flip=0.25)
    again = grade("--question", q, subs, "--out", out)
    assert again.returncode == 0 and "2 re-graded (2 because the rubric changed)" in again.stdout
    assert {r["id"]: float(r["score"]) for r in _rows(out)} == {"a": 4, "b": 1}
    refused = grade("--question", other, subs, "--out", out)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "holds results for another question" in refused.stderr and "--restart" in refused.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    nothing = grade("--question", q, empty)
    assert nothing.returncode == 2 and "the submissions file is empty" in nothing.stderr
