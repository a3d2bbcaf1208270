"""Derivation files and ``bptt-check verify``.

A derivation file is TOML, read with :mod:`tomllib`::

    title = "HW2 problem 3(a): outputs at both steps"

    [model]                      # optional; the seed's model by default
    steps = 2
    loss_at = "all"              # "last" for 3(b)
    sizes = { input = 2, hidden = 2, output = 2 }
    h0 = "input"                 # or "zeros"
    biases = false
    convention = "row"           # or "column" (Goodfellow's, min-char-rnn's: a_t = W_xh x_t + W_hh h_{t-1})
    activation = "tanh"          # or "sigmoid", "relu"
    loss = "cross-entropy"       # or "squared-error" (a linear output); dashes or underscores

    [notation]                   # optional: alias = canonical name
    use = "textbook"             # optional: start from built-in notations (seed, textbook, min-char-rnn)
    t = "h"

    [[claim]]
    name = "3a, the update of W_hy as the seed writes it"
    target = "dL/dW_hy"          # optional when the text is 'lhs = rhs'
    expr = "dL_1/dc_1 * dc_1/ds_1 * ds_1/dW_hy + dL_2/dc_2 * dc_2/ds_2 * ds_2/dW_hy"
    expect = "equivalent"        # a verdict name
    diagnosis = "missing_term"   # optional: a code that must be among the result's diagnoses
    reading = "total"            # optional: total | immediate | either (which reading earns credit)
    note = "..."                 # optional free text
    source = "seed, Problem 3(a)"  # optional: where the claim comes from

``latex = "..."`` stands in place of ``expr`` (and forces the LaTeX syntax);
a claim has exactly one of the two.

``verify`` may override every file's ``[model]`` with the command line's
model options (``--steps 4 --biases``): the changes are applied to each
file's model before its claims are read (:func:`verify`'s ``model_changes``).

A claim is *ok* when the verdict the tool gives is its ``expect`` and, when a
``diagnosis`` is given, that code is among the result's diagnosis codes.

Nothing in a file stops the others from running: a problem is reported as a
:class:`ClaimOutcome` with status ``"error"`` naming the file, the claim
(its 1-based index and name) and the key. A problem with the file as a whole
(it cannot be read, is not TOML, or its ``[model]``/``[notation]`` is
unusable) is *fatal* for that file: none of its claims can run.

Exit codes of ``verify``: 0 when every claim is ok; 1 when a claim's verdict
(or expected diagnosis) differs or a claim is broken; 2 when a path or file
cannot be used at all (missing, unreadable, not TOML, bad ``[model]`` or
``[notation]``) or no derivation file was found; 3 when the engine reports an
internal error (the two truths disagree), as everywhere in ``bptt-check``.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import sys
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence

from .errors import BpttCheckError, ConfigError, ExpressionError, FileFormatError, InternalError
from .model import RNN, SIZE_KEYS, Target
from .results import VERDICTS, CheckResult, Verdict
from .vocabulary import ReadingPolicy, Syntax, diagnosis_code, did_you_mean, reading_policy

if TYPE_CHECKING:  # pragma: no cover
    from .compare import Checker, Settings
    from .language import Notation

Status = Literal["ok", "failed", "error"]

FILE_KEYS: tuple[str, ...] = ("title", "model", "notation", "claim")
CLAIM_KEYS: tuple[str, ...] = ("name", "target", "expr", "latex", "expect", "diagnosis", "reading", "note", "source")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3

_TABLE_WIDTH = 180
"""Width of the table when the output is not a terminal (files, pipes, tests)."""


# -- data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One checked statement of a derivation file."""

    file: str
    """The path of the file it comes from, as given."""
    index: int
    """1-based position among the file's ``[[claim]]`` tables."""
    name: str
    text: str
    """The expression (``expr``) or the LaTeX (``latex``)."""
    syntax: Syntax
    """``"auto"`` for ``expr``, ``"latex"`` for ``latex``."""
    target: Target | None
    """None only when the text is ``lhs = rhs`` but cannot be parsed (the check then reports why)."""
    target_text: str
    """The target as written in the file, or as read from the left-hand side."""
    expect: Verdict
    model: RNN
    notation: Notation | None = None
    diagnosis: str | None = None
    reading: ReadingPolicy = "total"
    note: str = ""
    source: str = ""

    @property
    def label(self) -> str:
        """``file#index name`` for messages."""
        return f"{self.file}: claim {self.index} ({self.name!r})"

    def expected_text(self) -> str:
        """The expected verdict, the expected diagnosis code and a reading policy other than the default."""
        text = self.expect + (f" / {self.diagnosis}" if self.diagnosis else "")
        return text + (f" ({self.reading} reading)" if self.reading != "total" else "")


@dataclass(frozen=True)
class ClaimOutcome:
    """What verifying one claim gave: its check result and whether it matched, or why it could not run.

    ``claim`` is None when the claim (or the whole file) could not be read;
    ``file``, ``index`` and ``name`` then say which one, and ``key`` the
    offending key when there is one. ``fatal`` marks a problem with the file
    as a whole (no claim of it ran); ``internal`` an internal error of the engine.
    """

    file: str
    index: int | None
    name: str
    claim: Claim | None = None
    result: CheckResult | None = None
    ok: bool = False
    error: str = ""
    key: str | None = None
    fatal: bool = False
    internal: bool = False
    seconds: float = 0.0

    @property
    def status(self) -> Status:
        if self.error:
            return "error"
        return "ok" if self.ok else "failed"

    @property
    def expect(self) -> str | None:
        return None if self.claim is None else self.claim.expect

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object: the result's ``to_dict()`` plus the claim's ``name``, ``expect``, ``file``, ``ok``."""
        out: dict[str, Any] = self.result.to_dict() if self.result is not None else {"verdict": None}
        claim = self.claim
        out.update(
            name=self.name,
            expect=self.expect,
            file=self.file,
            ok=self.ok,
            claim=self.index,
            status=self.status,
        )
        if claim is not None:
            out.update(
                expect_diagnosis=claim.diagnosis,
                reading=claim.reading,
                syntax=claim.syntax,
            )
            if claim.source:
                out["source"] = claim.source
            if claim.note:
                out["note"] = claim.note
            if self.result is None:
                out.update(target=claim.target_text, answer=claim.text)
        if self.error:
            out["error"] = self.error
            if self.key is not None:
                out["key"] = self.key
        return out


@dataclass(frozen=True)
class DerivationFile:
    """A derivation file as loaded: its claims, and the problems found in it (as error outcomes)."""

    path: str
    title: str = ""
    model: RNN = field(default_factory=RNN)
    notation: Notation | None = None
    claims: tuple[Claim, ...] = ()
    problems: tuple[ClaimOutcome, ...] = ()

    @property
    def fatal(self) -> bool:
        """Whether the file as a whole is unusable."""
        return any(p.fatal for p in self.problems)


@dataclass(frozen=True)
class Totals:
    """Counts over a report."""

    files: int
    claims: int
    ok: int
    failed: int
    errors: int
    verdicts: dict[str, int]
    seconds: float

    def __str__(self) -> str:
        kinds = ", ".join(f"{v} {n}" for v, n in self.verdicts.items() if n)
        line = (
            f"{_plural(self.claims, 'claim')} in {_plural(self.files, 'file')}: {self.ok} ok, {self.failed} failed,"
            f" {_plural(self.errors, 'error')} ({self.seconds:.1f} s)"
        )
        return line + (f"\nverdicts: {kinds}" if kinds else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "claims": self.claims,
            "ok": self.ok,
            "failed": self.failed,
            "errors": self.errors,
            "verdicts": dict(self.verdicts),
            "seconds": self.seconds,
        }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class VerifyReport:
    """The outcomes of verifying derivation files, in file and claim order."""

    outcomes: tuple[ClaimOutcome, ...]
    files: tuple[str, ...] = ()
    titles: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Every claim ran and matched (and there was at least one file)."""
        return bool(self.files) and all(o.ok for o in self.outcomes)

    @property
    def totals(self) -> Totals:
        counts: dict[str, int] = {v: 0 for v in VERDICTS}
        for o in self.outcomes:
            if o.result is not None:
                counts[o.result.verdict] += 1
        claims = [o for o in self.outcomes if not o.fatal]
        return Totals(
            files=len(self.files),
            claims=len(claims),
            ok=sum(o.status == "ok" for o in self.outcomes),
            failed=sum(o.status == "failed" for o in self.outcomes),
            errors=sum(o.status == "error" for o in self.outcomes),
            verdicts=counts,
            seconds=self.seconds,
        )

    @property
    def exit_code(self) -> int:
        """0 all ok; 1 a mismatch or broken claim; 2 an unusable path or file, or no files; 3 an internal error."""
        if any(o.internal for o in self.outcomes):
            return EXIT_INTERNAL
        if not self.files or any(o.fatal for o in self.outcomes):
            return EXIT_USAGE
        return EXIT_OK if self.ok else EXIT_FAILED

    # -- output ---------------------------------------------------------------

    def to_list(self) -> list[dict[str, Any]]:
        """The ``verify --json`` list: one object per claim."""
        return [o.to_dict() for o in self.outcomes]

    def to_dict(self) -> dict[str, Any]:
        """The list of :meth:`to_list` under ``"claims"``, with the ``"totals"``."""
        return {"claims": self.to_list(), "totals": self.totals.to_dict()}

    def to_json(self, *, indent: int | None = 2) -> str:
        """The ``verify --json`` output: the JSON list of :meth:`to_list`."""
        return json.dumps(self.to_list(), indent=indent, ensure_ascii=False)

    def _repr_html_(self) -> str:
        """A self-contained HTML display for notebooks (user text escaped; no scripts, no CDN)."""
        from .display import verify_report_html

        return verify_report_html(self)

    def _repr_markdown_(self) -> str:
        """A Markdown display for notebooks (math as ``$…$`` where the target is one of the package's spellings)."""
        from .display import verify_report_markdown

        return verify_report_markdown(self)

    def __str__(self) -> str:
        return self.render()

    def render(self, *, color: bool = False, width: int | None = None, details: bool = True) -> str:
        """The table (claim, target, verdict, diagnosis, expected, ok), then the totals.

        ``details`` appends the full result of every claim that did not match.
        """
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        buffer = io.StringIO()
        console = Console(
            file=buffer,
            width=width or _TABLE_WIDTH,
            color_system="standard" if color else None,
            force_terminal=color,
            no_color=not color,
            highlight=False,
            soft_wrap=False,
        )
        table = Table(expand=True, header_style="bold" if color else "")
        table.add_column("claim", overflow="fold", ratio=2, min_width=20)
        table.add_column("target", overflow="fold", max_width=24)
        table.add_column("verdict", no_wrap=True)
        table.add_column("diagnosis", overflow="fold", ratio=3, min_width=24)
        table.add_column("expected", overflow="fold", max_width=30)
        table.add_column("ok", no_wrap=True)
        current: str | None = None
        for o in self.outcomes:
            if o.file != current:
                if current is not None:
                    table.add_section()
                current = o.file
                title = self.titles.get(o.file, "")
                head = Text(f"{o.file}" + (f" — {title}" if title else ""), style="bold" if color else "")
                table.add_row(head, "", "", "", "", "")
            table.add_row(*_row(o, color))
        console.print(table)
        console.print(Text(str(self.totals)))
        if details:
            bad = [o for o in self.outcomes if not o.ok]
            if bad:
                console.print(Text("\nclaims that did not match:"))
                for o in bad:
                    where = f"{o.file}" + (f": claim {o.index} ({o.name!r})" if o.index is not None else "")
                    console.print(Text(f"\n{where}"))
                    if o.error:
                        console.print(Text(f"  error: {o.error}"))
                    elif o.result is not None and o.claim is not None:
                        exp = o.claim.expect + (f" with diagnosis {o.claim.diagnosis}" if o.claim.diagnosis else "")
                        console.print(Text(f"  expected {exp}; got:"))
                        console.print(Text("\n".join("  " + line for line in str(o.result).splitlines())))
        return buffer.getvalue().rstrip("\n")


def _row(o: ClaimOutcome, color: bool) -> tuple[Any, ...]:
    """One table row; every cell is a rich ``Text`` so that brackets in names are never read as markup."""
    from rich.text import Text

    def cell(text: str, style: str = "") -> Text:
        return Text(text, style=style if color else "")

    name = f"{o.index}. {o.name}" if o.index is not None else "(file)"
    if o.error:
        target = o.claim.target_text if o.claim is not None else ""
        expected = o.claim.expected_text() if o.claim is not None else ""
        key = f"[{o.key}] " if o.key else ""
        return (cell(name), cell(target), cell("error", "bold red"), cell(f"{key}{o.error}"), cell(expected),
                cell("ERROR", "bold red"))
    assert o.result is not None and o.claim is not None
    r = o.result
    lines = [line for d in r.diagnoses for line in _diagnosis_lines(d.code, d.message)]
    lines += [f"reading: {rd.message}" for rd in r.readings]
    verdict_style = "green" if r.ok else ("yellow" if r.verdict == "transposed" else "red")
    return (
        cell(name),
        cell(r.target if r.target != "?" else o.claim.target_text),
        cell(r.verdict, verdict_style),
        cell("\n".join(lines)),
        cell(o.claim.expected_text()),
        cell("ok", "green") if o.ok else cell("FAIL", "bold red"),
    )


def _diagnosis_lines(code: str, message: str) -> list[str]:
    """``code: message``, with a trailing ``(hint: …)`` on a line of its own so that it is not cut."""
    head, sep, hint = message.partition(" (hint: ")
    if sep and hint.endswith(")"):
        return [f"{code}: {head}", f"hint: {hint[:-1]}"]
    return [f"{code}: {message}"]


# -- loading ------------------------------------------------------------------------


def find_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[ClaimOutcome]]:
    """The derivation files under ``paths`` (files as given, folders searched recursively for ``*.toml``).

    Returns the files (sorted within each folder, duplicates dropped) and a
    fatal outcome for every path that does not exist.
    """
    files: list[Path] = []
    problems: list[ClaimOutcome] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.toml") if p.is_file())
        elif path.exists():
            found = [path]
        else:
            problems.append(ClaimOutcome(str(path), None, "", error=f"{path}: no such file or folder", fatal=True))
            continue
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                files.append(p)
    return files, problems


def load_file(path: str | Path, *, model_changes: Mapping[str, Any] | None = None) -> DerivationFile:
    """Read a derivation file; never raises for bad content (problems become error outcomes)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        return _fatal(str(path), f"cannot read {path}: {err.strerror or err}")
    except UnicodeDecodeError:
        return _fatal(str(path), f"{path}: not UTF-8 text")
    return load_text(text, source=str(path), model_changes=model_changes)


def load_text(
    text: str, *, source: str = "<derivation>", model_changes: Mapping[str, Any] | None = None
) -> DerivationFile:
    """Parse the text of a derivation file (see the module docstring)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        return _fatal(source, f"{source}: not valid TOML: {err}")
    return load_data(data, source=source, model_changes=model_changes)


def load_data(
    data: Mapping[str, Any], *, source: str = "<derivation>", model_changes: Mapping[str, Any] | None = None
) -> DerivationFile:
    """Build a :class:`DerivationFile` from a parsed TOML document.

    ``model_changes`` (RNN fields, e.g. ``{"steps": 4}``) override the file's ``[model]``.
    """
    from .language import Notation

    for key in data:
        if key not in FILE_KEYS:
            return _fatal(source, f"{source}: unknown key {key!r}{_did_you_mean(key, FILE_KEYS)}", key=key)
    title = data.get("title", "")
    if not isinstance(title, str):
        return _fatal(source, f"{source}: title = {title!r} must be a string", key="title")
    model_table = data.get("model", {})
    if not isinstance(model_table, Mapping):
        return _fatal(source, f"{source}: model must be a table (write [model] on its own line)", key="model")
    try:
        model = RNN.from_table(model_table)
    except ConfigError as err:
        return _fatal(source, f"{source}: {err}", key=_key_of(err, "model"))
    if model_changes:
        try:
            model = model.replace(**model_changes)
        except ConfigError as err:
            return _fatal(source, f"{source}: with the command line's model options: {err}", key="model")
    notation: Notation | None = None
    table = data.get("notation")
    if table is not None:
        try:
            notation = Notation.from_table(table, source=source)
        except (FileFormatError, ConfigError) as err:
            return _fatal(source, str(err) if str(err).startswith(source) else f"{source}: {err}", key="notation")
    raw_claims = data.get("claim", [])
    if isinstance(raw_claims, Mapping):
        raw_claims = [raw_claims]
    if not isinstance(raw_claims, list) or not raw_claims:
        return _fatal(source, f"{source}: no claims (add [[claim]] tables with name, target, expr and expect)",
                      key="claim")
    base = DerivationFile(path=source, title=title, model=model, notation=notation)
    claims: list[Claim] = []
    problems: list[ClaimOutcome] = []
    for i, raw in enumerate(raw_claims, start=1):
        item = _load_claim(base, i, raw)
        if isinstance(item, Claim):
            claims.append(item)
        else:
            problems.append(item)
    return replace(base, claims=tuple(claims), problems=tuple(problems))


def _load_claim(f: DerivationFile, index: int, raw: Any) -> Claim | ClaimOutcome:
    from .language import parse, parse_target, target_of

    name = raw.get("name") if isinstance(raw, Mapping) else None
    shown = name if isinstance(name, str) and name.strip() else f"claim {index}"
    where = f"{f.path}: claim {index} ({shown!r})"

    def problem(message: str, key: str | None) -> ClaimOutcome:
        return ClaimOutcome(f.path, index, shown, error=f"{where}: {message}", key=key)

    if not isinstance(raw, Mapping):
        return problem("a claim must be a table ([[claim]])", None)
    for key in raw:
        if key not in CLAIM_KEYS:
            return problem(f"unknown key {key!r}{_did_you_mean(key, CLAIM_KEYS)}", key)
    for key in ("name", "target", "expr", "latex", "expect", "diagnosis", "reading", "note", "source"):
        if key in raw and not isinstance(raw[key], str):
            return problem(f"{key} = {raw[key]!r} must be a string", key)
    if not isinstance(name, str) or not name.strip():
        return problem("missing key 'name'", "name")
    has_expr, has_latex = "expr" in raw, "latex" in raw
    if has_expr and has_latex:
        return problem("has both 'expr' and 'latex' (give exactly one)", "latex")
    if not has_expr and not has_latex:
        return problem("missing key 'expr' (or 'latex')", "expr")
    text: str = raw["expr"] if has_expr else raw["latex"]
    if not text.strip():
        return problem(f"{'expr' if has_expr else 'latex'} is empty", "expr" if has_expr else "latex")
    syntax: Syntax = "auto" if has_expr else "latex"
    if "expect" not in raw:
        return problem("missing key 'expect'", "expect")
    expect = raw["expect"]
    if expect not in VERDICTS:
        return problem(f"expect = {expect!r} is not a verdict{_did_you_mean(expect, VERDICTS)}"
                       f" (one of {', '.join(VERDICTS)})", "expect")
    diagnosis = raw.get("diagnosis")
    if diagnosis is not None:
        try:
            diagnosis_code(diagnosis, "diagnosis =")
        except ConfigError as err:
            return problem(str(err), "diagnosis")
    try:
        reading = reading_policy(raw.get("reading", "total"))
    except ConfigError as err:
        return problem(str(err), "reading")

    target: Target | None = None
    target_text = raw.get("target", "")
    if target_text:
        try:
            target = parse_target(target_text, f.model, notation=f.notation)
        except BpttCheckError as err:
            return problem(f"target = {target_text!r}: {err}", "target")
    else:
        if "=" not in text:
            return problem("missing key 'target' (needed unless the expression is 'lhs = rhs')", "target")
        try:
            parsed = parse(text, f.model, notation=f.notation, syntax=syntax)
        except ExpressionError:
            parsed = None  # an equation that cannot be read: the check says why (an invalid verdict)
        if parsed is not None:
            if parsed.lhs is None:
                return problem("missing key 'target' (needed unless the expression is 'lhs = rhs')", "target")
            target = target_of(parsed.lhs)
            if target is None:
                return problem("missing key 'target': the left-hand side names no target", "target")
        target_text = str(target) if target is not None else "?"
    return Claim(
        file=f.path,
        index=index,
        name=name,
        text=text,
        syntax=syntax,
        target=target,
        target_text=target_text,
        expect=expect,
        model=f.model,
        notation=f.notation,
        diagnosis=diagnosis,
        reading=reading,
        note=raw.get("note", ""),
        source=raw.get("source", ""),
    )


def _fatal(source: str, message: str, *, key: str | None = None) -> DerivationFile:
    return DerivationFile(path=source, problems=(ClaimOutcome(source, None, "", error=message, key=key, fatal=True),))


def _key_of(err: BpttCheckError, default: str) -> str:
    """The ``[model]`` key an error is about: ``model.step`` (unknown), ``model.sizes.hidden`` (hidden_size = 0)."""
    m = re.search(r"\bmodel\.([a-z_]+(?:\.[a-z_]+)?)", err.message)
    if m:
        return f"model.{m.group(1)}"
    fields = {f: f for f in ("steps", "loss_at", "h0", "biases", "convention", "activation", "loss")}
    fields |= {f: f"sizes.{name}" for name, f in SIZE_KEYS.items()}
    m = re.search(r"\bmodel (\w+) = ", err.message)
    if m and m.group(1) in fields:
        return f"model.{fields[m.group(1)]}"
    return default


def _did_you_mean(word: object, known: Sequence[str]) -> str:
    guess = did_you_mean(word, known)
    return f" ({guess})" if guess else ""


# -- verifying ----------------------------------------------------------------------


class Verifier:
    """Runs claims, reusing one :class:`~bptt_check.compare.Checker` per (model, notation, target, reading)."""

    def __init__(self, settings: Settings | None = None) -> None:
        from .compare import Settings

        self.settings = settings or Settings()
        self._checkers: dict[tuple[RNN, Notation | None, Target, ReadingPolicy], Checker] = {}

    def checker(self, claim: Claim) -> Checker:
        from .compare import Checker

        assert claim.target is not None
        key = (claim.model, claim.notation, claim.target, claim.reading)
        if key not in self._checkers:
            settings = replace(self.settings, reading=claim.reading)
            self._checkers[key] = Checker(claim.target, model=claim.model, notation=claim.notation, settings=settings)
        return self._checkers[key]

    def run(self, claim: Claim) -> ClaimOutcome:
        """Check one claim and compare the verdict (and diagnosis) with what it expects."""
        from .compare import check

        start = time.perf_counter()

        def outcome(**kw: Any) -> ClaimOutcome:
            return ClaimOutcome(claim.file, claim.index, claim.name, claim=claim,
                                seconds=time.perf_counter() - start, **kw)

        try:
            if claim.target is None:
                settings = replace(self.settings, reading=claim.reading)
                result = check(claim.text, None, model=claim.model, notation=claim.notation,
                               syntax=claim.syntax, settings=settings)
            else:
                result = self.checker(claim).check(claim.text, syntax=claim.syntax)
        except InternalError as err:
            return outcome(error=f"{claim.label}: internal error: {err}", internal=True)
        except BpttCheckError as err:
            return outcome(error=f"{claim.label}: {err}")
        codes = {d.code for d in result.diagnoses}
        ok = result.verdict == claim.expect and (claim.diagnosis is None or claim.diagnosis in codes)
        return outcome(result=result, ok=ok)

    def run_file(self, f: DerivationFile) -> list[ClaimOutcome]:
        """Every claim of a file (and its problems) in claim order."""
        outcomes = list(f.problems) + [self.run(c) for c in f.claims]
        return sorted(outcomes, key=lambda o: o.index or 0)


def verify(
    paths: Iterable[str | Path],
    *,
    settings: Settings | None = None,
    model_changes: Mapping[str, Any] | None = None,
) -> VerifyReport:
    """Verify derivation files and folders of them (``*.toml``, recursively).

    ``model_changes`` (RNN fields, e.g. ``{"steps": 4, "biases": True}``) override every file's ``[model]``.
    """
    start = time.perf_counter()
    files, missing = find_files(paths)
    verifier = Verifier(settings)
    outcomes: list[ClaimOutcome] = list(missing)
    titles: dict[str, str] = {}
    for path in files:
        f = load_file(path, model_changes=model_changes)
        titles[f.path] = f.title
        outcomes += verifier.run_file(f)
    return VerifyReport(
        outcomes=tuple(outcomes),
        files=tuple(str(p) for p in files),
        titles=titles,
        seconds=time.perf_counter() - start,
    )


# -- the command ----------------------------------------------------------------------


def add_verify_command(subparsers: Any) -> None:
    """Add ``verify`` to the ``bptt-check`` sub-commands (an ``argparse`` subparsers object)."""
    v = subparsers.add_parser(
        "verify",
        help="run derivation files (or folders of them) and check each claim's verdict",
        description=(
            "Check every [[claim]] of the derivation files given (folders are searched recursively for *.toml)"
            " and compare each verdict with the claim's expect. Exit 0 when all match, 1 when one does not,"
            " 2 when a path or file cannot be used."
        ),
    )
    v.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="derivation files or folders")
    v.add_argument("--json", action="store_true", help="print a JSON list, one object per claim")
    v.add_argument("--seed", type=int, default=0, help="seed of the sample points")
    v.add_argument("--no-details", action="store_true", help="do not print the full result of claims that fail")
    from .options import add_model_options

    add_model_options(v, notation=False, overrides="[model] table of every file")
    v.set_defaults(run=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    """Run ``bptt-check verify``: print the table (or JSON); return the exit code."""
    from .compare import Settings

    from .options import model_changes

    report = verify(args.paths, settings=Settings(seed=args.seed), model_changes=model_changes(args))
    if args.json:
        print(report.to_json())
    elif report.files:
        tty = sys.stdout.isatty()
        width = max(shutil.get_terminal_size((_TABLE_WIDTH, 24)).columns, 100) if tty else _TABLE_WIDTH
        print(report.render(color=tty, width=width, details=not args.no_details))
    if not report.files:
        for o in report.outcomes:
            print(f"bptt-check: error: {o.error}", file=sys.stderr)
        if not report.outcomes:
            print("bptt-check: error: no derivation files (*.toml) in " + ", ".join(map(str, args.paths))
                  + " (hint: give .toml files or folders that hold them)", file=sys.stderr)
    return report.exit_code
