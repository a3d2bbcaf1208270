"""Result files (bptt_check.grading.output): resume, records cut short, foreign files, the Gradescope document."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from bptt_check.errors import FileFormatError
from bptt_check.grading import GradeResult, Summary
from bptt_check.grading.output import CSV_COLUMNS, gradescope_document, open_output
from bptt_check.results import Diagnosis

from .conftest import _assert_gradescope


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


def test_the_gradescope_document_follows_the_specification():
    results = [GradeResult("a", "equivalent", 4, 4, (), "ok"), GradeResult("b", "transposed", 2, 4, (), "half")]
    doc = gradescope_document(results, question="dL/dW_hh")
    _assert_gradescope(doc, 2)
    assert [t["status"] for t in doc["tests"]] == ["passed", "failed"] and doc["score"] == 6
