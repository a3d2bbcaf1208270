"""Result files: JSON lines, CSV and Gradescope's ``results.json``, written as results come, resumable.

Every result is appended and flushed the moment it is known, so a killed run
loses nothing. Opening an existing output reads the results already there
(:attr:`Output.previous`, and what produced each: :attr:`Output.keys`, see
:mod:`bptt_check.grading.provenance`); the batch then grades the answers
without a result it may reuse. A record cut short by a kill (the last line
without its newline) is dropped and truncated away before appending, so it
is graded again. A file whose results belong to another question is refused
(:class:`FileFormatError`), and left untouched. When a run completes, the
file is rewritten with one record per id (the latest), in submission order.

* ``jsonl``: one :meth:`GradeResult.to_dict` object per line, with
  ``question`` and ``key``.
* ``csv``: columns ``id, verdict, score, max_score, diagnoses`` (codes joined
  by ``;``), ``message, question, key``.
* ``gradescope``: one results.json document for a whole class (not for
  Gradescope's own autograder, which grades one student per run: see
  :mod:`bptt_check.gradescope`) — ``{"score", "execution_time", "output",
  "tests": [...]}`` with one test per answer, the full result under
  ``extra_data``. Since it is one JSON document, results go first to a
  journal ``<stem>.partial.jsonl`` beside it; ``results.json`` is
  (re)written from the journal when a run ends, and the class summary goes
  to ``<stem>.report.txt`` for the TA (not into ``output``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Literal, Mapping

from ..errors import FileFormatError
from .result import GradeResult, Summary

Format = Literal["gradescope", "jsonl", "csv"]
FORMATS: tuple[Format, ...] = ("gradescope", "jsonl", "csv")
CSV_COLUMNS = ("id", "verdict", "score", "max_score", "diagnoses", "message", "question", "key")
_OLD_CSV_COLUMNS = CSV_COLUMNS[:6]  # before results carried their key: read, never reused
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
        return CsvOutput(path, question=question, restart=restart, warn=report)
    return JsonlOutput(path, question=question, restart=restart, warn=report)


class Output:
    """Where results go.

    ``previous`` holds the results found there when it was opened (the
    latest per id), ``keys`` their keys by id ("" when written without one).
    """

    previous: list[GradeResult]
    keys: dict[str, str]

    def write(self, result: GradeResult, key: str = "") -> None:  # pragma: no cover - interface
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

    def __init__(self, path: Path | None, *, question: str = "", restart: bool, warn: Warn) -> None:
        self.path = path
        self.question = question
        self.warn = warn
        self.previous = []
        self.keys = {}
        self._records: dict[str, dict[str, Any]] = {}  # the latest record per id, for the final rewrite
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
            self._adopt()
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
        """Read the records in ``raw`` into ``_records``; the number of bytes to keep."""
        raise NotImplementedError  # pragma: no cover

    def _adopt(self) -> None:
        """``previous`` and ``keys`` from the records read; refuse a file of another question's results."""
        others = {r.get("question") for r in self._records.values()} - {None, "", self.question}
        if others and self.question:
            raise FileFormatError(
                f"{self.path} holds results for another question ({sorted(others)[0]!r}, not {self.question!r})",
                hint="choose another --out for this question, or pass --restart to replace those results",
            )
        for id_, record in self._records.items():
            self.previous.append(GradeResult.from_dict(record))
            self.keys[id_] = str(record.get("key") or "")

    def write(self, result: GradeResult, key: str = "") -> None:
        record = {**result.to_dict(), "question": self.question, "key": key}
        self._records.pop(result.id, None)
        self._records[result.id] = record
        self._emit(self._format(record))

    def _format(self, record: Mapping[str, Any]) -> str:
        raise NotImplementedError  # pragma: no cover

    def finish(self, summary: Summary, order: Iterable[str] = ()) -> None:
        """Rewrite the file with one record per id (the latest), in ``order`` (others after)."""
        if not self._owned or self.path is None:
            return
        rank = {id_: i for i, id_ in enumerate(order)}
        records = sorted(self._records.values(), key=lambda r: rank.get(r["id"], len(rank)))
        self._stream.close()
        buffer = io.StringIO()
        self._stream = buffer
        self._start_file()
        for record in records:
            buffer.write(self._format(record))
        _write_atomic(self.path, buffer.getvalue())

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
    """One JSON object per line (:meth:`GradeResult.to_dict`, with ``question`` and ``key``)."""

    def _format(self, record: Mapping[str, Any]) -> str:
        return json.dumps(record, ensure_ascii=False) + "\n"

    def _resume(self, raw: bytes) -> int:
        records, end = read_jsonl_records(raw, self.path, self.warn)
        for record in records:
            self._records.pop(record["id"], None)
            self._records[record["id"]] = record
        return end


def read_jsonl(raw: bytes, path: Path | None, warn: Warn) -> tuple[list[GradeResult], int]:
    """The results in a JSON-lines file's bytes, and how many bytes hold complete lines (see :func:`read_jsonl_records`)."""
    records, end = read_jsonl_records(raw, path, warn)
    return [GradeResult.from_dict(r) for r in records], end


def read_jsonl_records(raw: bytes, path: Path | None, warn: Warn) -> tuple[list[dict[str, Any]], int]:
    """The result records in a JSON-lines file's bytes (``id`` a string), and how many bytes hold complete lines.

    A last line without its newline was cut short and is not read. A first
    line that is not a result means the file is not ours (an error); a later
    one is reported and skipped.
    """
    end = raw.rfind(b"\n") + 1
    results: list[dict[str, Any]] = []
    for number, line in enumerate(raw[:end].split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            GradeResult.from_dict(record)
            record["id"] = str(record["id"])
            results.append(record)
        except (ValueError, KeyError, TypeError, AttributeError):
            if number == 1:
                raise FileFormatError(
                    f"{path} exists and is not a bptt-check results file (line 1)",
                    hint="pass --restart to overwrite it, or choose another --out",
                ) from None
            warn(f"{path} line {number}: not a result record: ignored (its answer will be graded again)")
    return results, end


class CsvOutput(_Appending):
    """Columns id, verdict, score, max_score, diagnoses (codes joined by ';'), message, question, key."""

    def _start_file(self) -> None:
        self._emit(_csv_line(CSV_COLUMNS))

    def _format(self, record: Mapping[str, Any]) -> str:
        return _csv_line(
            (
                record["id"],
                record["verdict"],
                _number(record["score"]),
                _number(record["max_score"]),
                ";".join(d["code"] if isinstance(d, dict) else str(d) for d in record.get("diagnoses", ())),
                record.get("message", ""),
                record.get("question", ""),
                record.get("key", ""),
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
        if header not in (CSV_COLUMNS, _OLD_CSV_COLUMNS) or not at_line_end():
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
                record = _from_csv_row(row, len(header))
                self._records.pop(record["id"], None)
                self._records[record["id"]] = record
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
        imported: list[dict[str, Any]] = []
        if not restart and not self.journal_path.exists() and path.exists():
            imported = _read_gradescope(path)
            others = {r.get("question") for r in imported} - {None, "", question}
            if others:
                raise FileFormatError(
                    f"{path} holds results for another question ({sorted(others)[0]!r}, not {question!r})",
                    hint="choose another --out for this question, or pass --restart to replace those results",
                )
        self.journal = JsonlOutput(self.journal_path, question=question, restart=restart, warn=warn)
        for record in imported:  # results.json without its journal: carry its results over
            self.journal.write(GradeResult.from_dict(record), str(record.get("key") or ""))
        self.previous = self.journal.previous + [GradeResult.from_dict(r) for r in imported]
        self.keys = {**self.journal.keys, **{str(r["id"]): str(r.get("key") or "") for r in imported}}

    def write(self, result: GradeResult, key: str = "") -> None:
        self.journal.write(result, key)

    def finish(self, summary: Summary, order: Iterable[str] = ()) -> None:
        self.journal.finish(summary, order)
        self.journal.close()
        records = list(self.journal._records.values())
        rank = {id_: i for i, id_ in enumerate(order)}
        records.sort(key=lambda r: rank.get(r["id"], len(rank)))
        document = gradescope_document(
            [GradeResult.from_dict(r) for r in records], question=self.question, summary=summary,
            keys=[str(r.get("key") or "") for r in records],
        )
        _write_atomic(self.path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        _write_atomic(self.report_path, str(summary) + "\n")

    @property
    def report_path(self) -> Path:
        """The TA's class summary beside results.json (``<stem>.report.txt``)."""
        return self.path.with_name(self.path.stem + ".report.txt")

    def close(self) -> None:
        self.journal.close()


def gradescope_document(
    results: Iterable[GradeResult], *, question: str, summary: Summary | None = None, keys: Iterable[str] = ()
) -> dict[str, Any]:
    """A class's results in Gradescope's ``results.json`` layout, one test per answer."""
    rows = list(results)
    key_list = list(keys) or [""] * len(rows)
    tests: list[dict[str, Any]] = [
        {
            "name": f"{question} [{r.id}]",
            "score": r.score,
            "max_score": r.max_score,
            "status": "passed" if r.full_credit else "failed",
            "output": r.message,
            "visibility": "visible",
            "extra_data": {"bptt_check": {**r.to_dict(), "question": question, "key": key}},
        }
        for r, key in zip(rows, key_list)
    ]
    # The class summary is not in "output": every student would see it. It goes to the TA's report.
    document: dict[str, Any] = {
        "score": round(sum(t["score"] for t in tests), 9),
        "execution_time": round(summary.seconds) if summary is not None else 0,
        "output": "",
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


def _from_csv_row(row: list[str], width: int = len(CSV_COLUMNS)) -> dict[str, Any]:
    if len(row) != width:
        raise ValueError(f"{len(row)} fields")
    id_, verdict, score, max_score, codes, message = row[:6]
    question, key = row[6:] if width == len(CSV_COLUMNS) else ("", "")
    record = {
        "id": id_,
        "verdict": verdict,
        "score": float(score),
        "max_score": float(max_score),
        "diagnoses": [{"code": c, "message": ""} for c in codes.split(";") if c],
        "message": message,
        "question": question,
        "key": key,
    }
    GradeResult.from_dict(record)
    return record


def _read_gradescope(path: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        tests = document["tests"]
        records = [dict(t["extra_data"]["bptt_check"]) for t in tests]
        for record in records:
            GradeResult.from_dict(record)
            record["id"] = str(record["id"])
        return records
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
