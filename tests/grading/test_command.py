"""The grade command (bptt_check.grading.command): resume after a kill, bad files, run_grade, model options."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bptt_check.errors import FileFormatError
from bptt_check.grading import Question, run_grade
from bptt_check.language import Notation
from bptt_check.model import RNN

from .conftest import _assert_gradescope, EXPECTED, make_class, MAX, PLAIN, TRANSPOSED, WRONG


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
