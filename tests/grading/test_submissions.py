"""Submission files (bptt_check.grading.submissions): malformed rows and unusable files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bptt_check.errors import FileFormatError
from bptt_check.grading import read_submissions


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
