"""Reading submissions: CSV with a header ``id,answer[,syntax]``, or JSON lines with the same keys.

The format follows the extension: ``.csv``; ``.jsonl``; ``.json`` (JSON
lines, or one JSON array of objects). Other columns or keys (a name, an
email) are ignored. A malformed row — no id, no answer, an unquoted comma
that splits the answer, bad JSON, an unknown syntax, an id seen before — is
reported with its line number through ``warn`` and skipped; it never stops
the batch. A file that cannot be used at all (unreadable, not UTF-8, a CSV
without ``id`` and ``answer`` columns) is a :class:`FileFormatError`.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import FileFormatError
from .batch import Submission
from .grader import SYNTAXES

Warn = Callable[[str], None]


def read_submissions(path: str | Path, *, warn: Warn | None = None) -> list[Submission]:
    """The well-formed submissions of a file, in file order (malformed rows reported and skipped)."""
    path = Path(path)
    report: Warn = warn or (lambda message: print(f"bptt-check: warning: {message}", file=sys.stderr))
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise FileFormatError(
            f"{path}: unknown submissions format {suffix or '(no extension)'!r}",
            hint="use a .csv file with columns id,answer[,syntax] or a .jsonl file with those keys",
        )
    try:
        data = path.read_bytes()
    except OSError as err:
        raise FileFormatError(f"cannot read submissions file {path}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise FileFormatError(f"{path} line {line}: not UTF-8 text", hint="save the file as UTF-8") from None
    rows = _csv_rows(path, text, report) if suffix == ".csv" else _json_rows(path, text, report)
    out: list[Submission] = []
    first_line: dict[str, int] = {}
    # A huge answer is the grader's to refuse (as too long), not a malformed row: lift csv's
    # field size limit (128 KiB by default; process-wide, so it is restored after reading).
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))
    try:
        for line, id_, answer, syntax in rows:
            where = f"{path} line {line}" if line > 0 else f"{path} item {-line}"
            if id_ in first_line:
                report(f"{where}: duplicate id {id_!r} (first on line {first_line[id_]}): row skipped")
                continue
            first_line[id_] = line
            out.append(Submission(id_, answer, syntax, line))  # type: ignore[arg-type]
    finally:
        csv.field_size_limit(limit)
    return out


Row = tuple[int, str, str, str]


def _check_row(where: str, id_: Any, answer: Any, syntax: Any, report: Warn) -> tuple[str, str, str] | None:
    if isinstance(id_, bool) or not isinstance(id_, (str, int)):
        problem = "missing id" if id_ is None else f"id {id_!r} is not a string"
        report(f"{where}: {problem}: row skipped")
        return None
    id_ = str(id_).strip()
    if not id_:
        report(f"{where}: missing id: row skipped")
        return None
    if answer is None:
        report(f"{where}: missing answer for id {id_!r}: row skipped")
        return None
    if not isinstance(answer, str):
        report(f"{where}: the answer for id {id_!r} is not a string: row skipped")
        return None
    syntax = "auto" if syntax in (None, "") else syntax
    if syntax not in SYNTAXES:
        report(f"{where}: syntax {syntax!r} for id {id_!r} is not one of auto, plain, latex: row skipped")
        return None
    return id_, answer, syntax


def _csv_rows(path: Path, text: str, report: Warn) -> Iterator[Row]:
    # Lines end only at \n, \r or \r\n (not at U+2028 and the like, which may sit inside an answer).
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as err:
        raise FileFormatError(f"{path} line 1: unreadable CSV header: {err}") from None
    columns = [h.strip().lower() for h in header]
    if "id" not in columns or "answer" not in columns:
        raise FileFormatError(
            f"{path} line 1: the header must name the columns id and answer (found {', '.join(header) or 'nothing'})",
            hint="first line e.g. id,answer or id,answer,syntax",
        )
    i_id, i_answer = columns.index("id"), columns.index("answer")
    i_syntax = columns.index("syntax") if "syntax" in columns else None
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            report(f"{path} line {line}: unreadable CSV row ({err}): row skipped")
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{path} line {line}"
        if len(row) > len(header):
            report(
                f"{where}: {len(row)} fields but the header has {len(header)}"
                " (an answer with a comma must be in double quotes): row skipped"
            )
            continue
        id_, answer, syntax = (row[i] if i is not None and i < len(row) else None for i in (i_id, i_answer, i_syntax))
        checked = _check_row(where, id_, answer, syntax, report)
        if checked is not None:
            yield (line, *checked)


def _json_rows(path: Path, text: str, report: Warn) -> Iterator[Row]:
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{path} line {err.lineno}: not valid JSON: {err.msg}") from None
        for n, item in enumerate(items, start=1):
            yield from _json_item(f"{path} item {n}", -n, item, report)
        return
    for number, raw in enumerate(text.split("\n"), start=1):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        where = f"{path} line {number}"
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as err:
            report(f"{where}: not valid JSON ({err.msg} at column {err.colno}): row skipped")
            continue
        yield from _json_item(where, number, item, report)


def _json_item(where: str, line: int, item: Any, report: Warn) -> Iterator[Row]:
    if not isinstance(item, dict):
        report(f"{where}: not a JSON object with keys id and answer: row skipped")
        return
    checked = _check_row(where, item.get("id"), item.get("answer"), item.get("syntax"), report)
    if checked is not None:
        yield (line, *checked)
