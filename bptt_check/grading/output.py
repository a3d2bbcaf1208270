"""Result files: JSON lines, CSV and Gradescope's ``results.json``, written as results come, resumable.

Every result is appended and flushed the moment it is known, so a killed run
loses nothing. Opening an existing output reads the results already there
(:attr:`Output.previous`); the batch then grades only the other ids. A record
cut short by a kill (the last line without its newline) is dropped and
truncated away before appending, so it is graded again.

* ``jsonl``: one :meth:`GradeResult.to_dict` object per line.
* ``csv``: columns ``id, verdict, score, max_score, diagnoses`` (codes joined
  by ``;``), ``message``.
* ``gradescope``: Gradescope's autograder ``results.json`` — one document
  ``{"score", "execution_time", "output", "tests": [...]}`` with one test per
  answer (``name``, ``score``, ``max_score``, ``status``, ``output``,
  ``visibility``, and the full result under ``extra_data``). Since it is one
  JSON document, results go first to a journal ``<stem>.partial.jsonl``
  beside it; ``results.json`` is (re)written from the journal when a run
  ends, resumed or not.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Literal

from ..errors import FileFormatError
from .result import GradeResult, Summary

Format = Literal["gradescope", "jsonl", "csv"]
FORMATS: tuple[Format, ...] = ("gradescope", "jsonl", "csv")
CSV_COLUMNS = ("id", "verdict", "score", "max_score", "diagnoses", "message")
Warn = Callable[[str], None]


def format_for(path: Path | None, requested: str | None) -> Format:
    """The output format: the one asked for, else by extension (.json → gradescope, .csv → csv), else jsonl."""
    if requested is not None:
        if requested not in FORMATS:
            raise FileFormatError(f"unknown output format {requested!r}", hint="use gradescope, jsonl or csv")
        return requested  # type: ignore[return-value]
    suffix = path.suffix.lower() if path is not None else ""
    return {".json": "gradescope", ".csv": "csv"}.get(suffix, "jsonl")  # type: ignore[return-value]


def open_output(
    fmt: Format, path: Path | None, *, question: str, restart: bool = False, warn: Warn | None = None
) -> "Output":
    """Open (or resume) an output; ``path=None`` writes to standard output (no resuming)."""
    report: Warn = warn or (lambda message: print(f"bptt-check: warning: {message}", file=sys.stderr))
    if fmt == "gradescope":
        return GradescopeOutput(path or Path("results.json"), question=question, restart=restart, warn=report)
    if fmt == "csv":
        return CsvOutput(path, restart=restart, warn=report)
    return JsonlOutput(path, restart=restart, warn=report)


class Output:
    """Where results go. ``previous`` holds the results found there when it was opened."""

    previous: list[GradeResult]

    def write(self, result: GradeResult) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def finish(self, summary: Summary, order: Iterable[str] = ()) -> None:
        """End of the run (completed): write what is written at the end."""

    def close(self) -> None:
        """Release the file (also after an interruption)."""

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Appending(Output):
    """An append-only text file of records (or standard output), resumed by reading its records back."""

    def __init__(self, path: Path | None, *, restart: bool, warn: Warn) -> None:
        self.path = path
        self.warn = warn
        self.previous = []
        self._stream: IO[str]
        if path is None:
            self._stream = sys.stdout
            self._owned = False
            self._start_stdout()
            return
        if path.exists() and not restart:
            try:
                raw = path.read_bytes()
            except OSError as err:
                raise FileFormatError(f"cannot read {path}: {err.strerror or err}") from None
            keep = self._resume(raw)
            if keep < len(raw):
                warn(f"{path}: dropped an incomplete last record (the run was cut short); it will be graded again")
                with open(path, "r+b") as f:
                    f.truncate(keep)
            self._stream = open(path, "a", encoding="utf-8", newline="")
            if keep == 0:
                self._start_file()
        else:
            if path.parent != Path(""):
                path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = open(path, "w", encoding="utf-8", newline="")
            self._start_file()
        self._owned = True

    def _resume(self, raw: bytes) -> int:
        """Read the records in ``raw`` into ``previous``; the number of bytes to keep."""
        raise NotImplementedError  # pragma: no cover

    def _start_file(self) -> None:
        """Write what a new file begins with."""

    def _start_stdout(self) -> None:
        self._start_file()

    def _emit(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()

    def close(self) -> None:
        if self._owned and not self._stream.closed:
            self._stream.close()


class JsonlOutput(_Appending):
    """One JSON object per line (:meth:`GradeResult.to_dict`)."""

    def write(self, result: GradeResult) -> None:
        self._emit(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")

    def _resume(self, raw: bytes) -> int:
        results, end = read_jsonl(raw, self.path, self.warn)
        self.previous.extend(results)
        return end


def read_jsonl(raw: bytes, path: Path | None, warn: Warn) -> tuple[list[GradeResult], int]:
    """The results in a JSON-lines file's bytes, and how many bytes hold complete lines.

    A last line without its newline was cut short and is not read. A first
    line that is not a result means the file is not ours (an error); a later
    one is reported and skipped.
    """
    end = raw.rfind(b"\n") + 1
    results: list[GradeResult] = []
    for number, line in enumerate(raw[:end].split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            results.append(GradeResult.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError):
            if number == 1:
                raise FileFormatError(
                    f"{path} exists and is not a bptt-check results file (line 1)",
                    hint="pass --restart to overwrite it, or choose another --out",
                ) from None
            warn(f"{path} line {number}: not a result record: ignored (its answer will be graded again)")
    return results, end


class CsvOutput(_Appending):
    """Columns id, verdict, score, max_score, diagnoses (codes joined by ';'), message."""

    def _start_file(self) -> None:
        self._emit(_csv_line(CSV_COLUMNS))

    def write(self, result: GradeResult) -> None:
        self._emit(
            _csv_line(
                (
                    result.id,
                    result.verdict,
                    _number(result.score),
                    _number(result.max_score),
                    ";".join(result.codes),
                    result.message,
                )
            )
        )

    def _resume(self, raw: bytes) -> int:
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            return 0
        consumed = 0  # characters csv.reader has pulled (it reads whole physical lines, record by record)

        def lines() -> Iterator[str]:
            nonlocal consumed
            for line in io.StringIO(text, newline=""):
                consumed += len(line)
                yield line

        def at_line_end() -> bool:
            return consumed > 0 and text[consumed - 1] in "\r\n"

        reader = csv.reader(lines(), strict=True)
        try:
            header = tuple(next(reader))
        except (StopIteration, csv.Error):
            header = ()
        if header != CSV_COLUMNS or not at_line_end():
            raise FileFormatError(
                f"{self.path} exists and is not a bptt-check results CSV (its header is not {','.join(CSV_COLUMNS)})",
                hint="pass --restart to overwrite it, or choose another --out",
            )
        kept = consumed
        while True:
            try:
                row = next(reader)
            except (StopIteration, csv.Error):  # the end, or a record cut short inside its quotes
                break
            if not at_line_end():
                break  # the last record, cut short
            try:
                self.previous.append(_from_csv_row(row))
            except (ValueError, KeyError, TypeError):
                self.warn(f"{self.path} line {reader.line_num}: not a result row: ignored")
            kept = consumed
        return len(text[:kept].encode("utf-8"))


class GradescopeOutput(Output):
    """Gradescope's ``results.json``, with a JSON-lines journal beside it for resuming."""

    def __init__(self, path: Path, *, question: str, restart: bool, warn: Warn) -> None:
        self.path = path
        self.question = question
        self.journal_path = path.with_name(path.stem + ".partial.jsonl")
        imported: list[GradeResult] = []
        if not restart and not self.journal_path.exists() and path.exists():
            imported = _read_gradescope(path)
        self.journal = JsonlOutput(self.journal_path, restart=restart, warn=warn)
        for result in imported:  # results.json without its journal: carry its results over
            self.journal.write(result)
        self.previous = self.journal.previous + imported

    def write(self, result: GradeResult) -> None:
        self.journal.write(result)

    def finish(self, summary: Summary, order: Iterable[str] = ()) -> None:
        self.journal.close()
        results, _ = read_jsonl(self.journal_path.read_bytes(), self.journal_path, lambda _message: None)
        latest: dict[str, GradeResult] = {}
        for r in results:
            latest[r.id] = r
        rank = {id_: i for i, id_ in enumerate(order)}
        ordered = sorted(latest.values(), key=lambda r: rank.get(r.id, len(rank)))
        document = gradescope_document(ordered, question=self.question, summary=summary)
        _write_atomic(self.path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self.journal.close()


def gradescope_document(
    results: Iterable[GradeResult], *, question: str, summary: Summary | None = None
) -> dict[str, Any]:
    """Gradescope's autograder ``results.json`` with one test per answer."""
    tests: list[dict[str, Any]] = [
        {
            "name": f"{question} [{r.id}]",
            "score": r.score,
            "max_score": r.max_score,
            "status": "passed" if r.full_credit else "failed",
            "output": r.message,
            "visibility": "visible",
            "extra_data": {"bptt_check": r.to_dict()},
        }
        for r in results
    ]
    document: dict[str, Any] = {
        "score": round(sum(t["score"] for t in tests), 9),
        "execution_time": round(summary.seconds) if summary is not None else 0,
        "output": str(summary) if summary is not None else "",
        "tests": tests,
    }
    return document


# -- helpers ------------------------------------------------------------------------


def _csv_line(fields: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(list(fields))
    return buffer.getvalue()


def _number(x: float) -> str:
    return f"{x:.9g}"


def _from_csv_row(row: list[str]) -> GradeResult:
    if len(row) != len(CSV_COLUMNS):
        raise ValueError(f"{len(row)} fields")
    id_, verdict, score, max_score, codes, message = row
    return GradeResult.from_dict(
        {
            "id": id_,
            "verdict": verdict,
            "score": score,
            "max_score": max_score,
            "diagnoses": [c for c in codes.split(";") if c],
            "message": message,
        }
    )


def _read_gradescope(path: Path) -> list[GradeResult]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        tests = document["tests"]
        return [GradeResult.from_dict(t["extra_data"]["bptt_check"]) for t in tests]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FileFormatError(
            f"{path} exists and is not a results.json written by bptt-check ({type(err).__name__})",
            hint="pass --restart to overwrite it, or choose another --out",
        ) from None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "CsvOutput",
    "Format",
    "GradescopeOutput",
    "JsonlOutput",
    "Output",
    "format_for",
    "gradescope_document",
    "open_output",
]
