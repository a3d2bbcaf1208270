"""Reading submissions: CSV with a header ``id,answer[,syntax]``, or JSON lines with the same keys.

The format follows the extension: ``.csv``; ``.jsonl``; ``.json`` (JSON
lines, or one JSON array of objects). Other columns or keys (a name, an
email) are ignored. Every row becomes exactly one :class:`Submission`: a
malformed row — not UTF-8, no id, no answer, an unquoted comma that splits
the answer, bad JSON, an unknown syntax, an id seen before — is reported with
its line number through ``warn`` and becomes a submission whose ``problem``
says why (graded ``invalid`` with that reason, never skipped). A row without
an id gets the id ``<line N>`` (``<item N>`` in a JSON array); a repeated id
gets ``ID <line N>``. A file that cannot be used at all (unreadable, empty,
a CSV without ``id`` and ``answer`` columns) is a :class:`FileFormatError`.
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
    # Bytes that are not UTF-8 become lone surrogates, so that only the rows holding them are invalid.
    text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
    if not text.strip():
        raise FileFormatError(
            f"{path}: the submissions file is empty",
            hint="expected a header line id,answer[,syntax] and one row per answer",
        )
    rows = _csv_rows(path, text, report) if suffix == ".csv" else _json_rows(path, text, report)
    out: list[Submission] = []
    first_line: dict[str, int] = {}
    used: set[str] = set()
    # A huge answer is the grader's to refuse (as too long), not a malformed row: lift csv's
    # field size limit (128 KiB by default; process-wide, so it is restored after reading).
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))
    try:
        for line, id_, answer, syntax, problem in rows:
            where = f"{path} line {line}" if line > 0 else f"{path} item {-line}"
            place = f"<line {line}>" if line > 0 else f"<item {-line}>"
            if not id_:
                id_ = place
            elif id_ in first_line:
                first = first_line[id_]
                problem = problem or f"duplicate id {id_!r} (first on {'line' if first > 0 else 'item'} {abs(first)})"
                report(f"{where}: duplicate id {id_!r} (first on line {abs(first)}): graded as invalid")
                id_ = f"{id_} {place}"
            while id_ in used:  # a made-up id that a real row already holds
                id_ += "'"
            first_line.setdefault(id_, line)
            used.add(id_)
            out.append(Submission(id_, answer, syntax, line, problem))  # type: ignore[arg-type]
    finally:
        csv.field_size_limit(limit)
    if not out:
        raise FileFormatError(
            f"{path}: no submissions in the file (only {'a header' if suffix == '.csv' else 'blank lines'})",
            hint="add one row per answer: id,answer[,syntax]",
        )
    return out


Row = tuple[int, str, str, str, str]
"""(line, id or "", answer, syntax, problem or "")."""


def _bad_bytes(text: str) -> str:
    """A description of the first byte that was not UTF-8 in ``text`` (decoded with surrogateescape), or ""."""
    for column, ch in enumerate(text, start=1):
        if "\udc80" <= ch <= "\udcff":
            return f"not UTF-8 text (byte 0x{ord(ch) - 0xDC00:02x} at column {column})"
    return ""


def _clean(text: str) -> str:
    """Undecodable bytes shown as U+FFFD (for ids and answers written to results)."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _check_row(line: int, where: str, id_: Any, answer: Any, syntax: Any, report: Warn, problem: str = "") -> Row:
    """The row, with ``problem`` saying why it cannot be graded ("" when it can); bad rows are reported."""
    if isinstance(id_, bool) or not isinstance(id_, (str, int)):
        problem = problem or ("missing id" if id_ is None else f"id {id_!r} is not a string")
        id_ = ""
    id_ = _clean(str(id_).strip())
    if not id_:
        problem = problem or "missing id"
    if not problem:
        if answer is None:
            problem = "missing answer"
        elif not isinstance(answer, str):
            problem = "the answer is not a string"
        else:
            problem = _bad_bytes(answer)
    if not problem and syntax not in (None, "") and syntax not in SYNTAXES:
        problem = f"syntax {_clean(str(syntax))!r} is not one of auto, plain, latex"
    text = _clean(answer) if isinstance(answer, str) else ""
    if problem:
        report(f"{where}: {problem}{f' for id {id_!r}' if id_ else ''}: graded as invalid")
        return line, id_, text, "auto", problem
    return line, id_, text, syntax or "auto", ""


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
            yield _check_row(line, f"{path} line {line}", None, None, None, report, f"unreadable CSV row ({err})")
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{path} line {line}"
        id_, answer, syntax = (row[i] if i is not None and i < len(row) else None for i in (i_id, i_answer, i_syntax))
        problem = _bad_bytes(id_ or "")
        if len(row) > len(header):
            problem = problem or (
                f"{len(row)} fields but the header has {len(header)} (an answer with a comma must be in double quotes)"
            )
        yield _check_row(line, where, id_, answer, syntax, report, problem)


def _json_rows(path: Path, text: str, report: Warn) -> Iterator[Row]:
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        bad = _bad_bytes(text)
        if bad:
            line = text[: text.index(next(c for c in text if "\udc80" <= c <= "\udcff"))].count("\n") + 1
            raise FileFormatError(f"{path} line {line}: {bad}", hint="save the file as UTF-8")
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{path} line {err.lineno}: not valid JSON: {err.msg}") from None
        if not isinstance(items, list):
            raise FileFormatError(f"{path}: not a JSON array of submissions")
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
            yield _check_row(number, where, None, None, None, report,
                             _bad_bytes(raw) or f"not valid JSON ({err.msg} at column {err.colno})")
            continue
        yield from _json_item(where, number, item, report)


def _json_item(where: str, line: int, item: Any, report: Warn) -> Iterator[Row]:
    if not isinstance(item, dict):
        yield _check_row(line, where, None, None, None, report, "not a JSON object with keys id and answer")
        return
    id_ = item.get("id")
    yield _check_row(line, where, id_, item.get("answer"), item.get("syntax"), report,
                     _bad_bytes(id_) if isinstance(id_, str) else "")
