"""The words bptt_check's inputs and outputs share, each defined once.

* **verdicts** (:data:`VERDICTS`), **syntaxes** (:data:`SYNTAXES`),
  **reading policies** (:data:`READING_POLICIES`) and **cited-partials
  policies** (:data:`CITE_POLICIES`), each validated by one function;
* **diagnosis codes** (:data:`DIAGNOSES`): every code a result, a rubric or a
  derivation file may name, with one line of meaning (``docs/diagnoses.md``
  lists them); a new diagnosis is registered here before it is emitted;
* **did you mean** (:func:`suggest`, :func:`did_you_mean`): the one way a
  mistyped word gets a suggestion, for names in expressions and keys in files alike.

This module imports nothing else of bptt_check but :mod:`bptt_check.errors`,
so every other module may use it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Literal, Mapping

from .errors import ConfigError

__all__ = [
    "Verdict",
    "VERDICTS",
    "Syntax",
    "SYNTAXES",
    "ReadingPolicy",
    "READING_POLICIES",
    "reading_policy",
    "CitePolicy",
    "CITE_POLICIES",
    "cite_policy",
    "normalize_choice",
    "DiagnosisKind",
    "DiagnosisCode",
    "DIAGNOSES",
    "diagnosis_code",
    "diagnoses_markdown",
    "suggest",
    "did_you_mean",
]

Verdict = Literal["equivalent", "equivalent_numerically", "transposed", "not_equivalent", "invalid"]
VERDICTS: tuple[Verdict, ...] = ("equivalent", "equivalent_numerically", "transposed", "not_equivalent", "invalid")
"""Every verdict of a check, best first."""

Syntax = Literal["auto", "plain", "latex"]
SYNTAXES: tuple[Syntax, ...] = ("auto", "plain", "latex")
"""How an answer is read: ``auto`` picks LaTeX when the text has a backslash, braces or ``^``."""

ReadingPolicy = Literal["total", "immediate", "either"]
READING_POLICIES: tuple[ReadingPolicy, ...] = ("total", "immediate", "either")
"""Which reading of an answer's ambiguous partials earns credit (``either``: any of them, the textbook one included)."""


CitePolicy = Literal["none", "state_gradients", "any"]
CITE_POLICIES: tuple[CitePolicy, ...] = ("none", "state_gradients", "any")
"""Which true partials an answer may cite: none at all; only the loss's gradients with respect to the
states (``dL/dh_t``, ``dL_2/da_1``, ``dL/dz_t``, …, each with respect to another node than the target's
own); or any partial but the target itself."""


def normalize_choice(value: object) -> object:
    """``" Cross-Entropy"`` → ``"cross_entropy"``: choices may be written with capitals, spaces and dashes (CLI, TOML)."""
    return value.strip().lower().replace("-", "_") if isinstance(value, str) else value


def _one_of(value: object, allowed: tuple[str, ...], what: str, where: str) -> str:
    """``value`` normalized if it is one of ``allowed``, else a :class:`ConfigError` naming ``where``
    and the nearest choice."""
    word = normalize_choice(value)
    if word in allowed:
        return word  # type: ignore[return-value]
    guess = did_you_mean(word, allowed, cutoff=0.5) if isinstance(word, str) else ""
    raise ConfigError(
        f"{where} = {value!r} is not {what}",
        hint=(f"{guess} " if guess else "") + "use " + ", ".join(repr(c) for c in allowed),
    )


def reading_policy(value: object, where: str = "reading") -> ReadingPolicy:
    """``value`` as a reading policy, else a :class:`ConfigError` naming ``where`` with the nearest
    policy. Every entry point (API, CLI, files) validates through here."""
    return _one_of(value, READING_POLICIES, "a reading policy", where)  # type: ignore[return-value]


def cite_policy(value: object, where: str = "cite") -> CitePolicy:
    """``value`` as a cited-partials policy, else a :class:`ConfigError` naming ``where`` with the nearest policy."""
    return _one_of(value, CITE_POLICIES, "a cited-partials policy", where)  # type: ignore[return-value]


DiagnosisKind = Literal["invalid", "reading", "mistake"]
"""``invalid``: why an answer was not checked (its verdict is ``invalid``); ``reading``: how a
checked answer reads its partials or lays out its matrix; ``mistake``: what is wrong with a wrong answer."""


@dataclass(frozen=True)
class DiagnosisCode:
    """One diagnosis code: its name, its kind and one line of meaning."""

    code: str
    kind: DiagnosisKind
    meaning: str


_ENTRIES: tuple[tuple[str, DiagnosisKind, str], ...] = (
    # why an answer was not checked (verdict invalid); errors.py's classes carry these codes
    ("invalid", "invalid", "the answer cannot be checked (e.g. no target given, or a bad value)"),
    ("parse_error", "invalid", "the text does not follow the grammar (plain or LaTeX)"),
    ("unknown_name", "invalid", "a name that is neither the model's nor the notation's"),
    ("shape_error", "invalid", "operands whose shapes do not fit the operator, or an answer of the wrong shape"),
    ("chain_break", "invalid", "a product of partials whose factors do not link (∂a/∂b · ∂c/∂d with b ≠ c)"),
    ("circular", "invalid", "the answer cites the very partial (or, for a value such as L_2, the very node) it is asked for"),
    ("cited_partial", "invalid",
     "the answer cites a true partial the question does not allow (rubric.cite: none, state_gradients, any)"),
    ("limit", "invalid", "the answer is beyond a safety limit (length, nesting, number size, memory)"),
    ("time_budget", "invalid",
     "grading: the worker checking the answer ran past the wall-clock backstop (rubric.budget); not a verdict on it"),
    ("too_long", "invalid", "grading: the answer is longer than the grader reads"),
    ("empty", "invalid", "grading: the answer is empty"),
    ("bad_row", "invalid", "grading: the submission's row cannot be used (a missing id or answer, a bad value)"),
    ("missing", "invalid", "grading: no answer to this question was found in the student's submission"),
    ("crashed", "invalid", "grading: the process checking the answer died"),
    ("internal_error", "invalid", "a bug in bptt_check while checking the answer, never the student's fault"),
    # how a checked answer is read
    ("transposed", "reading", "the answer's transpose is right (a layout slip)"),
    ("wrong_reading", "reading", "right only under another reading of its ambiguous partials than the one required"),
    ("zero_partial", "reading", "a cited partial is zero: its numerator does not depend on its denominator"),
    # what is wrong with a wrong answer
    ("zero_answer", "mistake", "the answer is zero where the gradient is not"),
    ("sign_flip", "mistake", "the answer, or one of its terms, has the opposite sign (e.g. y - yhat for yhat - y)"),
    ("extra_factor", "mistake", "a stray constant factor in every term (e.g. 2 · (yhat - y))"),
    ("extra_term", "mistake", "a term that is not part of the gradient, or one counted more than once"),
    ("missing_term", "mistake", "a term is missing: a step of the sum over t, or a loss step's contribution"),
    ("missing_path", "mistake", "a path back through the recurrence is dropped"),
    ("missing_activation_derivative", "mistake", "the activation's derivative (e.g. 1 - h_t**2) is dropped at some step"),
    ("wrong_activation_derivative", "mistake",
     "another expression (1 - h_t, h_t, another activation's derivative) stands for the activation's derivative"),
    ("missing_activation", "mistake", "a forward value uses a_t where h_t = act(a_t) belongs"),
    ("off_by_one", "mistake", "a quantity of the neighbouring step (h_t for h_{t-1}, x_{t+1} for x_t, …)"),
    ("wrong_output_error", "mistake", "something other than the output error yhat_t - y_t stands for it"),
    ("missing_transpose", "mistake", "a weight matrix W where W.T belongs in the backward pass"),
    ("transposed_factor", "mistake", "an outer product written the wrong way round (δ.T @ h for h.T @ δ)"),
    ("wrong_input", "mistake", "h_{t-1} where the input x_t belongs"),
    ("wrong_weight", "mistake", "another weight matrix where this one belongs"),
    ("swapped_weights", "mistake", "W_xh and W_hh swapped"),
    ("swapped_index", "mistake", "an entry target answered with the entry whose row and column are swapped"),
    ("wrong_entry", "mistake", "an entry target answered with another entry of the gradient"),
)
"""(code, kind, meaning) of every diagnosis code (a test checks that no code appears twice)."""

DIAGNOSES: Mapping[str, DiagnosisCode] = MappingProxyType(
    {code: DiagnosisCode(code, kind, meaning) for code, kind, meaning in _ENTRIES}
)
"""Every diagnosis code, in the order of the docs (``docs/diagnoses.md`` is :func:`diagnoses_markdown`)."""

_KIND_TITLES: dict[DiagnosisKind, str] = {
    "invalid": "Why an answer was not checked (verdict `invalid`)",
    "reading": "How a checked answer reads its partials or lays out its matrix",
    "mistake": "What is wrong with a wrong answer (verdict `not_equivalent`)",
}


def diagnoses_markdown() -> str:
    """The text of ``docs/diagnoses.md``: every code with its meaning, by kind (a test keeps the file in step)."""
    lines = [
        "# Diagnosis codes",
        "",
        "Every result lists diagnoses, each a stable code and a sentence for the student.",
        "A rubric's `[rubric.diagnoses]` and a derivation claim's `diagnosis` name these codes;",
        "an unknown code is an error with a suggestion. The registry is `bptt_check/vocabulary.py`;",
        "this file is its `diagnoses_markdown()`.",
    ]
    for kind, title in _KIND_TITLES.items():
        lines += ["", f"## {title}", "", "| code | meaning |", "| --- | --- |"]
        lines += [f"| `{d.code}` | {d.meaning} |" for d in DIAGNOSES.values() if d.kind == kind]
    return "\n".join(lines) + "\n"


def diagnosis_code(code: object, where: str = "diagnosis") -> str:
    """``code`` if it is a registered diagnosis code, else a :class:`ConfigError` naming ``where`` with a suggestion."""
    if isinstance(code, str) and code in DIAGNOSES:
        return code
    shown = code if isinstance(code, str) else type(code).__name__
    if isinstance(code, str) and code in VERDICTS:
        hint = f"{code} is a verdict, not a diagnosis: give its credit as a verdict key"
    else:
        guess = did_you_mean(str(code), DIAGNOSES, quote=False) if isinstance(code, str) else ""
        hint = (guess + " " if guess else "") + "the codes are listed in docs/diagnoses.md"
    raise ConfigError(f"{where} {shown!r} is not a diagnosis code", hint=hint)


# -- did you mean ------------------------------------------------------------------

_KEYBOARD = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_POS = {ch: (r, c + 0.5 * r) for r, row in enumerate(_KEYBOARD) for c, ch in enumerate(row)}


def _keyboard_bonus(a: str, b: str) -> float:
    """How likely typing ``a`` for ``b`` is a slip of the finger: same-row neighbours most, then diagonal ones."""
    pa, pb = _KEY_POS.get(a.lower()), _KEY_POS.get(b.lower())
    if pa is None or pb is None:
        return 0.0
    if pa[0] == pb[0] and abs(pa[1] - pb[1]) == 1:
        return 0.05
    if abs(pa[0] - pb[0]) == 1 and abs(pa[1] - pb[1]) <= 1.0:
        return 0.03
    return 0.0


def suggest(word: str, candidates: Iterable[str], n: int = 3, *, cutoff: float = 0.6) -> list[str]:
    """The candidates nearest to ``word`` (similarity at least ``cutoff``), best first.

    difflib's similarity ratio, with two tie-breakers a typist would expect: a
    difference only in letter case ranks first, and a single substituted
    letter that sits next to the intended one on a QWERTY keyboard ranks above
    other single substitutions, a same-row neighbour (``W_hu`` for ``W_hy``)
    above a diagonal one (``W_hh``). Equal similarities rank the candidate of
    the nearer length first (``hh`` suggests ``h`` before ``W_hh``).
    """
    scored: list[tuple[float, int, str]] = []
    for cand in dict.fromkeys(candidates):
        ratio = difflib.SequenceMatcher(None, word, cand).ratio()
        if word.lower() == cand.lower():
            ratio += 0.3
        elif len(word) == len(cand):
            diffs = [(x, y) for x, y in zip(word, cand) if x != y]
            if len(diffs) == 1:
                ratio += _keyboard_bonus(*diffs[0])
        if ratio >= cutoff:
            scored.append((-ratio, abs(len(cand) - len(word)), cand))
    scored.sort()
    return [c for _, _, c in scored[:n]]


def did_you_mean(word: object, candidates: Iterable[str], *, quote: bool = True, cutoff: float = 0.6) -> str:
    """``did you mean 'x'?`` for the candidate nearest to ``word`` (see :func:`suggest`), or ``""`` when none is near.

    ``quote=False`` shows the candidate bare: ``did you mean sign_flip?``.
    """
    close = suggest(str(word), [str(c) for c in candidates], n=1, cutoff=cutoff)
    if not close:
        return ""
    return f"did you mean {close[0]!r}?" if quote else f"did you mean {close[0]}?"
