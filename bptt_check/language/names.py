"""Names of the model: canonical spellings, notation aliases, steps and suggestions.

A name as written is read by the lexer into a :class:`NameSpec`: its *parts*
(the base and each subscript, braces and styling removed: ``W_{hy}`` →
``("W", "hy")``, ``\\hat{y}_{t-1}`` → ``("yhat", "t-1")``, ``h^{(t)}`` →
``("h", "(t)")``, a step superscript keeping its parentheses) and an optional
element index (``W_{hy}^{00}``). This module turns parts into a
:class:`~bptt_check.model.Ref`:

1. the whole spelling (``"_".join(parts)``) as a parameter (``W_hy``), a
   parameter alias of the notation (``U`` → ``W_xh``) or the total loss
   (``L``, ``L_total``; an alias of ``L`` without a step, such as the seed's
   ``c``, is the total loss too);
2. otherwise all parts but the last as a family (``h``, ``yhat``/``y_hat``,
   ``L``, ``a``, ``z``, ``x``, ``y``, or a family alias such as ``t`` → ``h``)
   and the last part as its step: a number, ``T`` (= the model's steps), a
   summation index bound by an enclosing sum, or index ± number (``t-1``);
3. otherwise the name is unknown, and the error suggests the nearest names.

A parameter with a step superscript, ``W^{(t)}``, is Goodfellow's copy of the
parameter used at step t: it resolves to the parameter (:meth:`Names.copy_step`
gives its step). Built-in notations (:data:`BUILTIN_NOTATIONS`) are chosen by
name: :meth:`Notation.named`, or ``use = "textbook"`` in a ``[notation]`` table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Mapping

from ..errors import ConfigError, FileFormatError, UnknownNameError
from ..model import L_TOTAL, PARAMETERS, RNN, Ref
from ..vocabulary import suggest
from .ast import FUNCTIONS
from .limits import MAX_NAME_LENGTH

CANONICAL_FAMILIES: tuple[str, ...] = ("h", "yhat", "L", "a", "z", "x", "y")
"""The step families a notation alias may stand for."""

FAMILY_SPELLINGS: dict[str, str] = {f: f for f in CANONICAL_FAMILIES} | {"y_hat": "yhat"}
"""Built-in spellings of the step families (``y_hat`` is accepted for ``yhat``)."""

TOTAL_LOSS_SPELLINGS = frozenset({"L", "L_total"})

CONVENTION_ALIASES: dict[str, dict[str, str]] = {
    "column": {"W_hx": "W_xh", "W_yh": "W_hy", "W_qh": "W_hy"},
    "row": {"W_hq": "W_hy"},
}
"""Parameter names each convention's own literature uses, built in: column vectors name a weight
output-first (``W_hx`` multiplies x into h, ``W_yh``, d2l's ``W_qh``), row vectors input-first
(d2l's ``W_hq``). A notation table may still give these words another meaning."""

USE_KEY = "use"
"""The key of a ``[notation]`` table that starts from built-in notations: ``use = "textbook"``."""

RESERVED = frozenset(FUNCTIONS) | {"ln", "ReLU", "sum", "d", "T", "yhat", "y_hat", "L_total", USE_KEY}
"""Words an alias may not take: functions, the partial's ``d``, the step count ``T``, and ``use``
(the key of a ``[notation]`` table that names a built-in notation)."""

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*\Z")
_TRAILING_STEP = re.compile(r"_([0-9]{1,4})$")
_STEP = re.compile(r"(?:(?P<num>[0-9]{1,6})|(?P<var>[A-Za-z])(?:(?P<sign>[+-])(?P<off>[0-9]{1,6}))?)\Z")


# ---------------------------------------------------------------------------
# Notation tables
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Notation:
    """A table of aliases: ``alias -> canonical family or parameter name``.

    Family aliases take a step (the seed's ``t_1`` is ``h_1``, ``s_2`` is
    ``yhat_2``, ``c_1`` is ``L_1``); parameter aliases stand alone (the
    textbook's ``U`` is ``W_xh``). Build one with :meth:`from_table` (a TOML
    ``[notation]`` table) or use :attr:`SEED` / :attr:`TEXTBOOK`; combine two
    with ``a | b`` (``b`` wins).
    """

    entries: tuple[tuple[str, str], ...] = ()

    SEED: ClassVar["Notation"]
    TEXTBOOK: ClassVar["Notation"]
    MINCHAR: ClassVar["Notation"]

    def __post_init__(self) -> None:
        table = dict(self.entries)
        for alias, value in table.items():
            problem = _alias_problem(alias, value)
            if problem:
                raise ConfigError(f"notation alias {alias!r}: {problem[0]}", hint=problem[1])
        object.__setattr__(self, "entries", tuple(sorted(table.items())))

    @classmethod
    def named(cls, name: str) -> "Notation":
        """A built-in notation by name: ``seed``, ``textbook`` (also ``goodfellow``) or ``min-char-rnn``
        (also ``minchar``); case, ``_`` and ``-`` do not matter. Unknown names are a :class:`ConfigError`."""
        key = _builtin_key(name)
        if key is None:
            shown = name if isinstance(name, str) else type(name).__name__
            close = suggest(str(name).strip().lower(), BUILTIN_SPELLINGS, n=1, cutoff=0.5)
            guess = f"did you mean {BUILTIN_SPELLINGS[close[0]]!r}? " if close else ""
            raise ConfigError(
                f"{shown!r} is not a built-in notation",
                hint=f"{guess}the built-in notations are {', '.join(BUILTIN_NAMES)}",
            )
        return BUILTIN_NOTATIONS[key]

    @classmethod
    def from_table(cls, table: Mapping[str, object], *, source: str = "") -> "Notation":
        """Validate a ``[notation]`` table (alias = canonical name).

        ``use = "textbook"`` (or a list, ``use = ["seed", "textbook"]``, later
        ones winning) starts from built-in notations (:meth:`named`); the
        table's own aliases are added on top and win. Raises
        :class:`FileFormatError` naming ``source`` and the key when a source
        is given, else :class:`ConfigError`.
        """
        where = f"{source}: " if source else ""
        if not isinstance(table, Mapping):
            message = f"{where}[notation] must be a table of alias = name"
            raise FileFormatError(message) if source else ConfigError(message)
        base = cls()
        if USE_KEY in table:
            used = table[USE_KEY]
            names = [used] if isinstance(used, str) else used
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                message = f"{where}[notation] use = {used!r} must name a built-in notation or a list of them"
                hint = f'e.g. use = "textbook"; the built-in notations are {", ".join(BUILTIN_NAMES)}'
                raise FileFormatError(message, hint=hint) if source else ConfigError(message, hint=hint)
            for name in names:
                try:
                    base = base | cls.named(name)
                except ConfigError as err:
                    message = f"{where}[notation] use: {err.message}"
                    raise FileFormatError(message, hint=err.hint) if source else ConfigError(message, hint=err.hint)
        entries: list[tuple[str, str]] = []
        for alias, value in table.items():
            if alias == USE_KEY:
                continue
            problem = _alias_problem(alias, value)
            if problem:
                message = f"{where}[notation] {alias!s}: {problem[0]}"
                if source:
                    raise FileFormatError(message, hint=problem[1])
                raise ConfigError(message, hint=problem[1])
            entries.append((alias, value))  # type: ignore[arg-type]
        return base | cls(tuple(entries)) if base else cls(tuple(entries))

    @property
    def aliases(self) -> dict[str, str]:
        """The table as a fresh dict."""
        return dict(self.entries)

    def get(self, alias: str) -> str | None:
        for key, value in self.entries:
            if key == alias:
                return value
        return None

    def __or__(self, other: "Notation") -> "Notation":
        return Notation(tuple((self.aliases | other.aliases).items()))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def _alias_problem(alias: object, value: object) -> tuple[str, str] | None:
    """Why ``alias = value`` is not a valid notation entry, as (message, hint), or None."""
    targets = CANONICAL_FAMILIES + PARAMETERS
    if not isinstance(alias, str) or not _IDENTIFIER.match(alias):
        return ("an alias must be an identifier", "letters and digits, parts joined by _ (t, s, U, W_in)")
    if not isinstance(value, str):
        return (f"the value must be a name, not {type(value).__name__}", f"one of {', '.join(targets)}")
    if value not in targets:
        close = suggest(value, targets, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(targets)}"
        return (f"{value!r} is not a canonical family or parameter", hint)
    if alias in RESERVED:
        return ("this word is reserved", "functions, sum, d (of dA/dB), T and use cannot be aliases")
    if (alias in FAMILY_SPELLINGS and FAMILY_SPELLINGS[alias] != value) or (
        alias in PARAMETERS and alias != value
    ):
        return (f"{alias} is already a canonical name", f"{alias} cannot stand for {value}")
    return None


Notation.SEED = Notation((("t", "h"), ("s", "yhat"), ("c", "L")))
"""The seed homework's names: ``t`` tanh output (h), ``s`` softmax output (yhat), ``c`` cross-entropy (L)."""

Notation.TEXTBOOK = Notation(
    (("U", "W_xh"), ("W", "W_hh"), ("V", "W_hy"), ("b", "b_h"), ("c", "b_y"), ("o", "z"))
)
"""Goodfellow et al., *Deep Learning* §10.2: U, W, V, b, c and the logits o_t."""

Notation.MINCHAR = Notation(
    (
        ("Wxh", "W_xh"),
        ("Whh", "W_hh"),
        ("Why", "W_hy"),
        ("bh", "b_h"),
        ("by", "b_y"),
        ("xs", "x"),
        ("hs", "h"),
        ("ys", "z"),
        ("ps", "yhat"),
    )
)
"""Karpathy's min-char-rnn: ``Wxh Whh Why bh by``; its per-step arrays ``xs[t]``, ``hs[t]``, ``ys[t]``
(the logits, not the targets) and ``ps[t]`` (the softmax) are written with a subscript step:
``hs_t``, ``ys_2``, ``ps_{t}`` (``[ ]`` holds an element index)."""

BUILTIN_NOTATIONS: dict[str, Notation] = {
    "seed": Notation.SEED,
    "textbook": Notation.TEXTBOOK,
    "min-char-rnn": Notation.MINCHAR,
}
"""The built-in notations by name (``--notation textbook``, ``[notation] use = "textbook"``)."""
BUILTIN_NAMES: tuple[str, ...] = tuple(BUILTIN_NOTATIONS)
BUILTIN_SPELLINGS: dict[str, str] = {
    "seed": "seed",
    "textbook": "textbook",
    "goodfellow": "textbook",
    "min-char-rnn": "min-char-rnn",
    "minchar": "min-char-rnn",
    "minchar-rnn": "min-char-rnn",
    "min-char": "min-char-rnn",
    "karpathy": "min-char-rnn",
}
"""Accepted spellings (lower case, ``_`` read as ``-``) of the built-in notations' names."""


def _builtin_key(name: object) -> str | None:
    """The built-in notation a name means (``"Min_Char_RNN"`` → ``"min-char-rnn"``), or None."""
    if not isinstance(name, str):
        return None
    return BUILTIN_SPELLINGS.get(name.strip().lower().replace("_", "-"))


def is_builtin_notation(name: str) -> bool:
    """Whether ``name`` names a built-in notation (for the CLI's ``--notation FILE|NAME``)."""
    return _builtin_key(name) is not None


# ---------------------------------------------------------------------------
# Names as written
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NameSpec:
    """A name as written: its parts, an optional element index, and where it is in the text."""

    parts: tuple[str, ...]
    index: tuple[int, ...] | None
    start: int
    end: int

    @property
    def spelling(self) -> str:
        """The normalized spelling (``W_{hy}`` → ``W_hy``, ``h_{t - 1}`` → ``h_{t-1}``, ``h^{(t)}`` as written), used in messages and lookups."""
        text = ""
        for i, p in enumerate(self.parts):
            if i and is_step_superscript(p):
                text += "^{" + p + "}"
            else:
                text += ("_" if i else "") + (p if p.isascii() and p.isalnum() else "{" + p + "}")
        return text

    @property
    def plain(self) -> str:
        """The spelling with a step superscript as a subscript (``h^{(t)}`` → ``h_t``), for suggestions."""
        return "_".join(p.strip("()") for p in self.parts)

    @property
    def copy(self) -> bool:
        """Whether the name ends in a step superscript (``W^{(t)}``: Goodfellow's copy of W at step t)."""
        return len(self.parts) >= 2 and is_step_superscript(self.parts[-1])

    @property
    def display(self) -> str:
        if self.index is None:
            return self.spelling
        return f"{self.spelling}[{','.join(map(str, self.index))}]"


def is_step_superscript(part: str) -> bool:
    """A name part read from a step superscript, ``(t)`` of ``h^{(t)}`` (the lexer keeps the parentheses)."""
    return part.startswith("(") and part.endswith(")")


# ---------------------------------------------------------------------------
# Resolution
# ---------------------------------------------------------------------------


class Names:
    """Resolves the names of one text against a model and a notation table."""

    def __init__(self, model: RNN, notation: Notation, text: str) -> None:
        self.model = model
        self.notation = notation
        self.text = text
        self._cache: dict[tuple[object, ...], Ref | None] = {}
        self._families = dict(FAMILY_SPELLINGS)
        self._parameters = {p: p for p in PARAMETERS} | CONVENTION_ALIASES[model.convention]
        for alias, value in notation.entries:
            if value in CANONICAL_FAMILIES:
                self._families[alias] = value
            else:
                self._parameters[alias] = value

    def is_base(self, word: str) -> bool:
        """Whether ``word`` alone is a family, a parameter or an alias (used to read ``delta_1/dW``)."""
        return word in self._families or word in self._parameters or word in TOTAL_LOSS_SPELLINGS

    def check(self, spec: NameSpec) -> None:
        """Check what can be checked without knowing the summation indices (the lexer calls this)."""
        self.resolve(spec, None)

    def resolve(self, spec: NameSpec, env: Mapping[str, int] | None) -> Ref | None:
        """The Ref a name stands for.

        ``env`` maps the summation indices in scope to their current values.
        With ``env=None`` (a static check) a name whose step uses an index is
        checked as far as possible and None is returned.
        """
        key: tuple[object, ...] = (spec.parts, None if env is None else tuple(sorted(env.items())))
        if key in self._cache:
            return self._cache[key]
        ref = self._resolve(spec, env)
        self._cache[key] = ref
        return ref

    def _resolve(self, spec: NameSpec, env: Mapping[str, int] | None) -> Ref | None:
        parts = spec.parts
        full = spec.spelling
        family_of_total = self._families.get(full)
        if full in TOTAL_LOSS_SPELLINGS or family_of_total == "L":
            return L_TOTAL
        copy_of = "_".join(parts[:-1]) if spec.copy else None
        if copy_of in self._parameters:
            assert copy_of is not None
            self.copy_step(spec, env)  # the step must exist
            full = copy_of
        if full in self._parameters:
            ref = Ref(self._parameters[full])
            if ref not in self.model:
                raise UnknownNameError(
                    f"{full} is not a name of this model: it has no biases"
                    + (f" ({full} = {ref})" if full != str(ref) else ""),
                    text=self.text,
                    position=spec.start,
                    hint="enable biases: --biases on the command line, biases = true in [model], RNN(biases=True) in Python",
                )
            return ref
        if len(parts) >= 2:
            family_text = "_".join(parts[:-1])
            family = self._families.get(family_text)
            if family is not None:
                step = self._step(spec, family_text, parts[-1].strip("()"), env)
                if step is None:
                    return None
                ref = Ref(family, step)
                if ref not in self.model:
                    raise self._out_of_range(spec, family_text, family, step, env)
                return ref
        if len(parts) == 1 and parts[0] in self._families:
            family = self._families[parts[0]]
            low = 0 if family == "h" else 1
            raise UnknownNameError(
                f"{full} needs a step",
                text=self.text,
                position=spec.start,
                hint=f"write {full}_{low} … {full}_{self.model.steps}, or {full}_t inside a sum over t"
                + (f"; [ ] holds an element index, so code's {full}[t] is {full}_t" if self.text[spec.end : spec.end + 1] == "[" else ""),
            )
        if env is not None and len(parts) == 1 and parts[0] in env:
            raise UnknownNameError(
                f"{full} is the index of a sum, not a value",
                text=self.text,
                position=spec.start,
                hint=f"use it as a step in a subscript, e.g. h_{full}",
            )
        raise self._unknown(spec)

    def copy_step(self, spec: NameSpec, env: Mapping[str, int] | None) -> int | None:
        """The step of a parameter's copy, ``W^{(t)}`` (Goodfellow §10.2.2: the W used at step t), or None.

        None when ``spec`` is not a copy of a parameter (or its step is a sum's
        index and ``env`` is None). A step outside 1..T is an error.
        """
        if not spec.copy or "_".join(spec.parts[:-1]) not in self._parameters:
            return None
        step = self._step(spec, spec.parts[0], spec.parts[-1].strip("()"), env)
        if step is not None and not 1 <= step <= self.model.steps:
            base = spec.spelling.rsplit("^", 1)[0]
            raise UnknownNameError(
                f"{spec.spelling} is not a copy of {base} in this model: the copies are "
                f"{base}^{{(1)}} … {base}^{{({self.model.steps})}} (T={self.model.steps})",
                text=self.text,
                position=spec.start,
                hint=f"{base}^{{(t)}} is the {base} used at step t",
            )
        return step

    # -- steps -------------------------------------------------------------

    def _step(self, spec: NameSpec, family_text: str, text: str, env: Mapping[str, int] | None) -> int | None:
        m = _STEP.match(text)
        if m is None:
            raise UnknownNameError(
                f"{clip(spec.spelling)}: {clip(text)!r} is not a step",
                text=self.text,
                position=spec.start,
                hint=f"a step is a number 1..{self.model.steps}, T, or a sum's index (h_t, h_{{t-1}})",
            )
        if m.group("num") is not None:
            return int(m.group("num"))
        var = m.group("var")
        offset = int(m.group("off") or 0) * (-1 if m.group("sign") == "-" else 1)
        if env is not None and var in env:
            return env[var] + offset
        if var == "T":
            return self.model.steps + offset
        if env is None:
            return None
        raise UnknownNameError(
            f"{spec.spelling}: the step {var} is not bound here",
            text=self.text,
            position=spec.start,
            hint=f"write a step 1..{self.model.steps}, or use {spec.spelling} inside sum_{{{var}=1}}^{{T}} (...)",
        )

    def _out_of_range(
        self, spec: NameSpec, family_text: str, family: str, step: int, env: Mapping[str, int] | None
    ) -> UnknownNameError:
        T = self.model.steps
        low = 0 if family == "h" else 1
        shown = f"{family_text}_{step}"
        alias = f" (= {family}_{step})" if family_text != family else ""
        where = ""
        if shown != spec.spelling:
            bound = ", ".join(f"{k} = {v}" for k, v in sorted((env or {}).items()))
            where = f" ({spec.spelling}{' with ' + bound if bound else ''})"
        return UnknownNameError(
            f"{shown}{alias}{where} is not a step of this model: {family_text} has steps {low}..{T} "
            f"({family_text}_{low} … {family_text}_{T}, T={T})",
            text=self.text,
            position=spec.start,
            hint="only h has a step 0 (h_0, the initial state)" if step == 0 else f"the model has T={T} steps",
        )

    # -- unknown names -------------------------------------------------------

    def _unknown(self, spec: NameSpec) -> UnknownNameError:
        word = spec.spelling
        plain = spec.plain
        if len(word) > MAX_NAME_LENGTH:
            return UnknownNameError(
                f"unknown name {word[:MAX_NAME_LENGTH]}… ({len(word)} characters)",
                text=self.text,
                position=spec.start,
                hint="names are short: W_hy, h_1, yhat_t, L",
            )
        close = suggest(plain, _candidates(self.model, self.notation, _step_hint(plain)))
        if close:
            hint = f"did you mean {close[0]}?"
            if len(close) > 1:
                hint += f" (also close: {', '.join(close[1:])})"
        else:
            hint = (
                "known names: W_xh W_hh W_hy, x_t y_t h_t a_t z_t yhat_t L_t (t = 1..T), h_0, L"
                + (", and the notation's aliases " + " ".join(a for a, _ in self.notation.entries) if self.notation else "")
            )
        other = "row" if self.model.convention == "column" else "column"
        if word in CONVENTION_ALIASES[other]:
            hint = (
                f"{word} is the {other} convention's name for {CONVENTION_ALIASES[other][word]}; this model uses "
                f"{self.model.convention} vectors (write {CONVENTION_ALIASES[other][word]}, or use --convention {other})"
            )
        if word in _FUNCTION_HINTS and self.text[spec.end :].lstrip().startswith("("):
            hint = _FUNCTION_HINTS[word]
        if word.startswith("d") and len(word) > 1 and self.is_base(spec.parts[0][1:]):
            rest = word[1:]
            if rest in self._parameters:  # code's dWhy is the gradient dL/dWhy
                hint = f"a partial is written with both d's: dL/d{rest} (the gradient code calls d{rest})"
            else:
                hint = f"a partial is written with both d's: d{rest}/dW_hy, or d({rest})/d(W_hy)"
        return UnknownNameError(f"unknown name {word}", text=self.text, position=spec.start, hint=hint)


_FUNCTION_HINTS = {
    "max": "for max(u, 0) write relu(u)",
    "maximum": "for max(u, 0) write relu(u)",
    "heaviside": "for the Heaviside step (relu's derivative) write step(u): 1 where u > 0, else 0",
    "H": "for the Heaviside step (relu's derivative) write step(u): 1 where u > 0, else 0",
}
"""Function names people reach for that the language spells otherwise."""


def clip(text: str, limit: int = MAX_NAME_LENGTH) -> str:
    """``text`` shortened for a message."""
    return text if len(text) <= limit else text[:limit] + "…"


def _step_hint(word: str) -> int | None:
    m = _TRAILING_STEP.search(word)
    return int(m.group(1)) if m else None


@lru_cache(maxsize=64)
def _candidates(model: RNN, notation: Notation, step_hint: int | None) -> tuple[str, ...]:
    """Every concrete name worth suggesting: the model's names, the aliases at their steps, functions."""
    T = model.steps
    steps = set(range(0, min(T, 6) + 1)) | set(range(max(0, T - 2), T + 1))
    if step_hint is not None and 0 <= step_hint <= T:
        steps.add(step_hint)
    out: list[str] = [str(r) for r in model.refs() if r.step is None or r.step in steps]
    out.append("L_total")
    for alias, value in notation.entries:
        if value in CANONICAL_FAMILIES:
            low = 0 if value == "h" else 1
            out += [f"{alias}_{s}" for s in sorted(steps) if s >= low]
        elif Ref(value) in model:
            out.append(alias)
    out += list(FUNCTIONS)
    return tuple(dict.fromkeys(out))
