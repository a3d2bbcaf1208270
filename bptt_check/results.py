"""The frozen results of a check: verdict, evidence, counterexample, diagnoses, readings.

``str(result)`` is exactly what the CLI prints; ``result.to_dict()`` is the
``--json`` object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from .vocabulary import VERDICTS, Verdict  # noqa: F401 (re-exported: results name their verdicts)


_STEP = re.compile(r"^(.*?)_(\d+)$")


def step_range(names: Iterable[str], conj: str = "or") -> str:
    """Names with steps, summarized in numeric order: ``h_2 … h_49`` for a run of three or more.

    ``["h_10", "h_2", "h_3", "h_4", "h_7"]`` → ``"h_2 … h_4, h_7 or h_10"``; names without a
    step keep their first-seen order after the stepped ones. ``conj`` joins the last two parts.
    """
    stepped: dict[str, set[int]] = {}
    plain: list[str] = []
    for name in names:
        m = _STEP.match(name)
        if m:
            stepped.setdefault(m.group(1), set()).add(int(m.group(2)))
        elif name not in plain:
            plain.append(name)
    parts: list[str] = []
    for family, steps in stepped.items():
        ordered = sorted(steps)
        start = prev = ordered[0]
        for k in ordered[1:] + [None]:
            if k is not None and k == prev + 1:
                prev = k
                continue
            if prev - start >= 2:
                parts.append(f"{family}_{start} … {family}_{prev}")
            else:
                parts += [f"{family}_{j}" for j in range(start, prev + 1)]
            if k is not None:
                start = prev = k
    parts += plain
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + f" {conj} " + parts[-1]


# A step subscript as the printers write it: ``h_10`` (plain) or ``h_{10}``, ``\hat{y}_{3}`` (LaTeX).
_SUBSCRIPT = re.compile(r"(?<=[A-Za-z}])_(?:\{(\d+)\}|(\d+)(?!\d))")


def _step_template(step: int, text: str) -> str:
    """``text`` with each step subscript written relative to ``step``: at step 5, ``h_4`` → ``h_{t-1}``, ``h_5`` → ``h_t``."""

    def relative(m: re.Match[str]) -> str:
        braced = m.group(1) is not None
        k = int(m.group(1) if braced else m.group(2)) - step
        name = "t" if k == 0 else f"t{k:+d}"
        return f"_{{{name}}}" if braced or k else f"_{name}"

    return _SUBSCRIPT.sub(relative, text)


def fold_steps(rows: Iterable[tuple[int, str]], least: int = 8) -> list[tuple[int, int, str]]:
    """Consecutive rows that differ only in their step, written once in ``t``: ``(first, last, text)``.

    ``rows`` are ``(step, text)`` in the order shown (steps rising or falling by one). A run of
    at least ``least`` rows whose texts are equal with every step subscript written relative
    to the row's step (``h_{t-1}``, ``h_t``, ``h_{t+1}``) becomes one row ``(first, last,
    template)``; any other row stays ``(step, step, text)``. So the 256 lines of a T = 256
    recursion fold to the general line and the last step's, and short models print as they are.
    """
    rows = list(rows)
    templates = [_step_template(step, text) for step, text in rows]
    out: list[tuple[int, int, str]] = []
    i = 0
    while i < len(rows):
        j = i + 1
        direction = rows[j][0] - rows[i][0] if j < len(rows) else 0
        while (j < len(rows) and abs(direction) == 1 and templates[j] == templates[i]
               and rows[j][0] - rows[j - 1][0] == direction):
            j += 1
        if j - i >= least:
            out.append((rows[i][0], rows[j - 1][0], templates[i]))
        else:
            out += [(step, step, text) for step, text in rows[i:j]]
        i = j
    return out


@dataclass(frozen=True)
class Diagnosis:
    """One finding about an answer: a stable ``code`` and a sentence for the student."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Counterexample:
    """Where an answer and the truth part: the point, the worst entry and the three values."""

    point_index: int
    entry: tuple[int, ...]
    answer: float
    sympy: float
    jax: float
    tolerance: float
    point: dict[str, Any] = field(compare=False, default_factory=dict)

    def __str__(self) -> str:
        entry = ",".join(str(i) for i in self.entry)
        diff = abs(self.answer - self.sympy)
        lines = [
            f"counterexample at sample point {self.point_index}, entry [{entry}]:",
            f"  answer {self.answer:.10g}, truth {self.sympy:.10g} (sympy) / "
            + (f"{self.jax:.10g} (jax);" if self.jax == self.jax else "jax not installed here;")
            + f" |answer - truth| = {diff:.3g} > tolerance {self.tolerance:.3g}",
        ]
        if self.point:
            shown = "; ".join(f"{k} = {v}" for k, v in self.point_values())
            lines.append(f"  point: {shown}")
        return "\n".join(lines)

    def point_values(self) -> list[tuple[str, str]]:
        """The sample point's values, each name with its value rounded to 4 significant digits."""
        return [(str(k), _fmt(v)) for k, v in self.point.items()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "point_index": self.point_index,
            "entry": list(self.entry),
            "answer": self.answer,
            "expected_sympy": self.sympy,
            "expected_jax": self.jax if self.jax == self.jax else None,
            "tolerance": self.tolerance,
            "point": self.point,
        }


@dataclass(frozen=True)
class Reading:
    """How an ambiguous partial was read, and whether the answer is right under each reading."""

    partial: str
    total_right: bool
    immediate_right: bool
    message: str
    through: tuple[str, ...] = field(default=(), compare=False)
    """The hidden states whose paths the two readings of the partial disagree on."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "partial": self.partial,
            "right_if_total": self.total_right,
            "right_if_immediate": self.immediate_right,
            "message": self.message,
        }


@dataclass(frozen=True)
class Evidence:
    """The numbers behind a verdict, each with the rule that produced it."""

    numeric_points: int = 0
    rtol: float = 0.0
    atol: float = 0.0
    max_abs_error: float | None = None
    exact: str | None = None
    """``"proved"``, ``"no exact form: …"`` or ``None`` when not attempted."""
    exact_points: int = 0
    false_positive_bound: float | None = None
    truths_agree: float | None = None
    """Largest relative difference between the sympy and jax truths."""

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.exact == "proved":
            out.append(
                f"exact:   identical rational functions at {self.exact_points} random points mod 2^61-1"
                f" (false-positive probability ≤ {self.false_positive_bound:.1e})"
            )
        elif self.exact:
            out.append(f"exact:   {self.exact}")
        if self.numeric_points:
            err = "" if self.max_abs_error is None else f"max |answer - truth| = {self.max_abs_error:.2e}; "
            out.append(
                f"numeric: {self.numeric_points} float64 points; {err}"
                f"rule |answer - truth| ≤ atol + rtol·|truth| with atol = {self.atol:g}, rtol = {self.rtol:g}"
            )
        if self.truths_agree is not None and self.truths_agree != self.truths_agree:  # NaN: jax absent
            out.append("truths:  sympy only (jax is not installed here: no cross-check)")
        elif self.truths_agree is not None:
            out.append(f"truths:  sympy and jax agree (max relative difference {self.truths_agree:.1e})")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric_points": self.numeric_points,
            "rtol": self.rtol,
            "atol": self.atol,
            "max_abs_error": self.max_abs_error,
            "exact": self.exact,
            "exact_points": self.exact_points,
            "false_positive_bound": self.false_positive_bound,
            "truths_max_relative_difference": self.truths_agree if self.truths_agree == self.truths_agree else None,
        }


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one answer against one target."""

    verdict: Verdict
    target: str
    answer: str
    score: float
    message: str
    diagnoses: tuple[Diagnosis, ...] = ()
    counterexample: Counterexample | None = None
    readings: tuple[Reading, ...] = ()
    evidence: Evidence = field(default_factory=Evidence)
    caret: str = ""
    model: str = ""
    notes: tuple[str, ...] = ()
    """How the answer was read where the text allows two readings (a node name before brackets)."""

    @property
    def ok(self) -> bool:
        """True for the two verdicts that mean the answer is the gradient."""
        return self.verdict in ("equivalent", "equivalent_numerically")

    def _repr_html_(self) -> str:
        """A self-contained HTML display for notebooks (user text escaped; no scripts, no CDN)."""
        from .display import check_result_html

        return check_result_html(self)

    def _repr_markdown_(self) -> str:
        """A Markdown display for notebooks (math as ``$…$`` where the target is one of the package's spellings)."""
        from .display import check_result_markdown

        return check_result_markdown(self)

    def _repr_latex_(self) -> str | None:
        """The headline as LaTeX math (target and verdict), or ``None`` when the target is not one of the package's spellings."""
        from .display import check_result_latex

        return check_result_latex(self)

    def reading_messages(self) -> list[str]:
        """The readings as printed: one line each, or one line per kind past a few (:func:`reading_lines`)."""
        return reading_lines(self.readings)

    def __str__(self) -> str:
        head = f"{self.target}: {self.verdict}"
        if self.verdict != "invalid":
            head += f" (score {self.score:g})"
        lines = [head, f"  {self.message}"]
        if self.caret:
            lines.append(self.caret)
        for d in self.diagnoses:
            lines.append(f"  diagnosis {d.code}: {d.message}")
        for message in self.reading_messages():
            lines.append(f"  reading: {message}")
        for note in self.notes:
            lines.append(f"  note:    {note}")
        if self.counterexample is not None:
            lines += ["  " + line for line in str(self.counterexample).splitlines()]
        lines += ["  " + line for line in self.evidence.lines()]
        if self.model:
            lines.append(f"  model:   {self.model}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": self.verdict,
            "target": self.target,
            "answer": self.answer,
            "score": self.score,
            "diagnoses": [d.to_dict() for d in self.diagnoses],
            "counterexample": None if self.counterexample is None else self.counterexample.to_dict(),
            "message": self.message,
            "evidence": self.evidence.to_dict(),
            "model": self.model,
        }
        if self.readings:
            out["readings"] = [r.to_dict() for r in self.readings]
        if self.notes:
            out["notes"] = list(self.notes)
        return out


READINGS_LISTED = 3
"""Readings of the same kind listed one by one; more are summarized in one line."""


def reading_lines(readings: Iterable[Reading]) -> list[str]:
    """One line per reading, or, past :data:`READINGS_LISTED` of one kind, one line for the kind.

    A kind is the pair (right if total, right if immediate); the summary names
    the partials and the hidden states in numeric order: ``∂L/∂h_1 … ∂L/∂h_49``.
    """
    kinds: dict[tuple[bool, bool], list[Reading]] = {}
    order: list[tuple[bool, bool] | Reading] = []
    for r in readings:
        if not r.through and r.total_right == r.immediate_right == False:  # noqa: E712 (a note, e.g. textbook)
            order.append(r)
            continue
        key = (r.total_right, r.immediate_right)
        if key not in kinds:
            kinds[key] = []
            order.append(key)
        kinds[key].append(r)
    out: list[str] = []
    for item in order:
        if isinstance(item, Reading):
            out.append(item.message)
            continue
        group = kinds[item]
        if len(group) <= READINGS_LISTED:
            out += [r.message for r in group]
            continue
        names = step_range([r.partial for r in group], conj="and")
        through = step_range([h for r in group for h in r.through]) or "other steps"
        t_ok, i_ok = item
        if t_ok and not i_ok:
            out.append(f"right if each of {names} is the total derivative;"
                       f" with the immediate reading they miss the paths through {through}")
        elif i_ok and not t_ok:
            out.append(f"right if each of {names} is the immediate derivative (paths through {through} held fixed);"
                       " with the total reading they count them twice or wrongly")
        else:
            out.append(f"right under either reading of {names}")
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
