r"""The tokenizer of both surface syntaxes: text → the token vocabulary of ``expression.lark``.

One hand-written scanner, with a ``latex`` flag for the few places where the
syntaxes differ. It does the context-dependent reading a regular-expression
lexer cannot do cleanly, so that the grammar stays small and conflict-free:

* **names** with their subscripts and styling become one ``NAME`` token:
  ``W_hy``, ``W_{hy}``, ``\mathbf{W}_{hy}``, ``h_{t-1}``, ``\hat{y}_t``,
  ``\hat y_{t}``, ``L_{total}``, Goodfellow's ``h^{(t)}`` (``\tau`` in a step is
  the last step T; ``h^{(t-1)\top}`` is the name and a ``TRANSPOSE``), and
  ``W_{hy}^{00}`` (a two-digit superscript on a name is an element index). A name directly
  followed by ``(`` is a ``NAME_CALL`` (``t_1(u)``: a node function applied, or
  a product — the resolver decides by shape);
* **partials** are one ``PARTIAL`` token (``dA/dB`` is a unit, so
  ``dL_1/dc_1 * dc_1/ds_1`` is never a quotient of products): ``dA/dB``,
  ``∂A/∂B``, ``d(A)/d(B)``, ``\frac{\partial A}{\partial B}``,
  ``\frac{dA}{dB}``, ``\nabla_{B} A``; numerator and denominator are names,
  optionally indexed (``dL/dW_hy[0,0]``, ``\partial W_{hy}^{00}``);
* **sums** ``sum_{t=1}^{T}``, ``\sum_{t=1}^{2}``, ``sum_t`` are one ``SUM``;
* **superscripts**: ``^T``, ``^{T}``, ``^\top``, ``.T`` are ``TRANSPOSE``;
  ``^{\circ k}`` is an elementwise power ``HPOW``; other ``^`` is ``CARET``;
* LaTeX **noise** is skipped: spacing (``\,`` ``\;`` ``\!`` ``\quad``),
  ``&``, ``$``, ``\displaystyle``, ``\left.``, ``\begin{..}``/``\end{..}``,
  ``\\`` at either end of the text, and the ``=`` that starts an align
  continuation line (``&= rhs``).

The syntaxes differ in: ``*`` (plain: elementwise; LaTeX: the ordinary,
matrix product), ``[`` (plain: always an index; LaTeX: an index when it holds
one or two numbers, else a bracket), and unbraced superscripts (LaTeX ``^23``
is ``^{2}3``). Every token keeps its position in the original text.

Nothing here evaluates anything: numbers stay digit strings until the
resolver turns them into :class:`fractions.Fraction`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

from ..errors import LimitError, ParseError
from .limits import MAX_EXPONENT_DIGITS, MAX_NUMBER_DIGITS, MAX_NUMBER_EXPONENT
from .names import NameSpec, clip

# ---------------------------------------------------------------------------
# Tokens and payloads
# ---------------------------------------------------------------------------

Bound = tuple[str, int]
"""A sum bound: ("", n) is the number n, ("T", k) is T + k, (v, k) is an enclosing sum's index v plus k."""


@dataclass(frozen=True, slots=True)
class PartialSpec:
    """∂num/∂den as written."""

    num: NameSpec
    den: NameSpec
    start: int
    end: int

    @property
    def display(self) -> str:
        return f"∂{self.num.display}/∂{self.den.display}"


@dataclass(frozen=True, slots=True)
class SumSpec:
    """The head of a step sum: index variable and bounds."""

    var: str
    low: Bound
    high: Bound
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Tok:
    """A token: type (a terminal of ``expression.lark``), source text, span and payload."""

    type: str
    text: str
    start: int
    end: int
    payload: object = None


OPENERS = {"LPAR": "RPAR", "LBRACK": "RBRACK", "LBRACE": "RBRACE"}
CLOSERS = {v: k for k, v in OPENERS.items()}

FUNCTION_WORDS = {
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "relu": "relu",
    "ReLU": "relu",
    "step": "step",
    "exp": "exp",
    "log": "log",
    "ln": "log",
    "sech": "sech",
    "softmax": "softmax",
    "diag": "diag",
    "sum": "sum",
    "outer": "outer",
    "ones": "ones",
}
"""Function spellings (plain words, ``\\word`` and ``\\operatorname{word}``) → whitelisted function."""

LATEX_FUNCTIONS = FUNCTION_WORDS | {"sigma": "sigmoid"}

_STYLE = {"mathbf", "boldsymbol", "bm", "mathit", "mathcal", "vec", "mathrm", "mathsf", "textbf", "textit", "text", "textrm", "mathbb"}
_HAT = {"hat", "widehat"}
_OPERATOR_WRAPPERS = {"operatorname", "mathrm", "text", "textrm", "mathop", "mathsf", "textit", "mathit"}
_SPACING = {",", ";", ":", "!", " ", "quad", "qquad", "displaystyle", "textstyle", "limits", "nolimits", "[", "]", "(", ")", "enspace", "thinspace"}
_SIZING = {
    "left", "right", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "Biggl", "Biggr",
    "big", "Big", "bigg", "Bigg", "bigm", "Bigm",
}
_MAT_MUL = {"cdot", "times", "ast"}
_HADAMARD = {"odot", "circ"}
_TRANSPOSE_WORDS = {"T", "\u22a4", r"\top", r"\intercal", r"\mathsfT", r"\mathrmT", r"\textT", r"\mathbfT", r"\rmT"}
r"""Superscripts that mean a transpose, with spaces and braces removed (``^{\mathsf{T}}`` → ``\mathsfT``)."""

_NUMBER = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?")
_PLAIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_LATEX_WORD = re.compile(r"[A-Za-z]+")
_PLAIN_SUB = re.compile(r"[0-9]+|[A-Za-z][A-Za-z0-9]*")
_LATEX_SUB = re.compile(r"[0-9]+|[A-Za-z]+")
_SUB_CONTENT = re.compile(r"[A-Za-z0-9]+(?:[+-][0-9]+)?\Z")
_INDEX = re.compile(r"\[\s*([0-9]{1,6})\s*(?:,\s*([0-9]{1,6})\s*)?\]")
_COMMAND = re.compile(r"\\([A-Za-z]+|.)", re.DOTALL)
_BOUND = re.compile(r"(?:([0-9]{1,6})|([A-Za-z])(?:([+-])([0-9]{1,6}))?)\Z")
_BRACE_SCAN = re.compile(r"\\.|[{}]", re.DOTALL)
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_SPACES = re.compile(r"\s+|\\[,;!:]")
_STEP_SUPERSCRIPT = re.compile(r"\(([^()]+)\)(.*)")
_TAU = re.compile(r"\\tau(?![A-Za-z])")
"""Goodfellow's τ, the last step: ``h^{(\tau)}`` is ``h_T``."""
_INDEX_SUPERSCRIPT = re.compile(r"([0-9])([0-9])|([0-9]{1,6}),([0-9]{1,6})")
_SUM_INDEX = re.compile(r"([A-Za-z])(?:=(.+))?")
_PLAIN_SCRIPT = re.compile(r"[0-9]+|[A-Za-z]")
_HADAMARD_POWER = re.compile(r"([+-]?)([0-9]{1,3})")
_UNWRAP = re.compile(r"\\(?:text|mathrm|textrm|mathit|mathbf|rm|it|bf|mathsf)\b|[{}\s]|\\[,;:! ]")

_SUBSCRIPTS = dict(zip("\u2080\u2081\u2082\u2083\u2084\u2085\u2086\u2087\u2088\u2089\u208a\u208b", "0123456789+-")) | dict(
    zip("\u2090\u2091\u2092\u2093\u2095\u2096\u2097\u2098\u2099\u209a\u209b\u209c", "aeoxhklmnpst")
)
"""Unicode subscript characters (``h₁``, ``Wₕₕ``, ``hₜ₋₁``) → the ASCII subscript they spell."""
_NORM_OPEN = frozenset({"|", "Vert", "lVert"})
_NORM_CLOSE = frozenset({"|", "Vert", "rVert"})
_NORM_SCRIPT = re.compile(r"_(?:\{\s*(?:2|F)\s*\}|2|F)")
_SQUARE = re.compile(r"\^\s*(?:\{\s*2\s*\}|2)")
_PRIME_AFTER = frozenset({"NAME", "RPAR", "RBRACK", "RBRACE", "INDEX", "TRANSPOSE", "PARTIAL"})
"""Tokens after which ``'`` is a transpose (``h_1'``, ``W_{hh}'``, ``(…)'``)."""

_MINUS_SIGNS = frozenset("-\u2212\u2013")  # a set: "" (past the end) is not a member
_DIGITS = frozenset("0123456789")


class Lexer:
    """Reads one text into tokens, lazily (errors come in text order).

    ``check_name`` is called on every name as it is read (the static part of
    name resolution, so that an unknown name is reported before a later
    syntax error); ``is_base`` tells whether a word is a known name base (so
    that an alias starting with ``d`` is not read as a partial).
    """

    def __init__(
        self,
        text: str,
        *,
        latex: bool,
        check_name: Callable[[NameSpec], None] | None = None,
        is_base: Callable[[str], bool] | None = None,
    ) -> None:
        self.text = text
        self.n = len(text)
        self.latex = latex
        self.check_name = check_name or (lambda spec: None)
        self.is_base = is_base or (lambda word: False)
        self._emitted = 0
        self._last_type: str | None = None
        self._brace_ends: dict[int, int] | None = None
        self._paren_braces: set[int] = set()
        """Positions of ``}`` that close a bracket opened as a parenthesis (``e^{z}`` is ``exp(z)``)."""
        self._norm: int | None = None
        """Where an open norm ``\\|…`` started, until its closing ``\\|^2``."""
        self._transpose: tuple[int, int] | None = None
        """The span of a transpose read with a name's step superscript (``h^{(t)\top}``), until emitted."""

    # -- helpers -------------------------------------------------------------

    def _error(self, message: str, pos: int, hint: str | None = None) -> ParseError:
        return ParseError(message, text=self.text, position=min(pos, self.n), hint=hint)

    def _at(self, i: int) -> str:
        return self.text[i] if i < self.n else ""

    def _command(self, i: int) -> tuple[str, int] | None:
        """The LaTeX command at ``i`` (without the backslash) and the position after it."""
        if self._at(i) != "\\":
            return None
        m = _COMMAND.match(self.text, i)
        if m is None:
            return None
        return m.group(1), m.end()

    def _skip(self, i: int) -> int:
        """Skip whitespace and (in LaTeX) harmless noise; return the next significant position."""
        t, n = self.text, self.n
        while i < n:
            c = t[i]
            if c.isspace() or c in _ZERO_WIDTH:
                i += 1
                continue
            if not self.latex:
                return i
            if c in "&$~":
                i += 1
                continue
            if c != "\\":
                return i
            cmd = self._command(i)
            if cmd is None:
                return i
            name, j = cmd
            if name in _SPACING:
                i = j
            elif name in ("left", "right", "bigl", "bigr", "Bigl", "Bigr") and self._at(j) == ".":
                i = j + 1
            elif name in ("begin", "end"):
                k = self._skip_simple(j)
                if self._at(k) == "{":
                    k = self._match_brace(k)
                i = k
            elif name == "\\":
                if self._emitted == 0 or self._only_noise_after(j):
                    i = j
                else:
                    raise self._error(
                        r"a line break \\ inside an expression",
                        i,
                        "check one equation at a time (a \\\\ may only end the text)",
                    )
            else:
                return i
        return i

    def _skip_simple(self, i: int) -> int:
        while i < self.n and (self.text[i].isspace() or self.text[i] in _ZERO_WIDTH):
            i += 1
        return i

    def _only_noise_after(self, i: int) -> bool:
        saved = self._emitted
        self._emitted = 0  # a further \\ is then noise as well
        try:
            return self._skip(i) >= self.n
        except ParseError:
            return False
        finally:
            self._emitted = saved

    def _match_brace(self, i: int) -> int:
        """``text[i] == '{'``: the position after its matching ``}`` (``\\{`` and ``\\}`` are not braces)."""
        if self._brace_ends is None:
            # every brace pair at once, in one linear pass (nested scans would be quadratic)
            ends: dict[int, int] = {}
            stack: list[int] = []
            for m in _BRACE_SCAN.finditer(self.text):
                c = m.group(0)
                if c == "{":
                    stack.append(m.start())
                elif c == "}" and stack:
                    ends[stack.pop()] = m.end()
            self._brace_ends = ends
        end = self._brace_ends.get(i)
        if end is not None:
            return end
        raise self._error("{ is never closed", i, "add the matching }")

    def _opens_paren(self, i: int) -> bool:
        """Whether a parenthesis (``(``, ``\\left(``, ``\\bigl(`` …) opens at the next significant position."""
        j = self._skip(i)
        if self._at(j) == "(":
            return True
        cmd = self._command(j)
        if cmd and cmd[0] in _SIZING:
            return self._at(self._skip_simple(cmd[1])) == "("
        return False

    # -- the token stream ----------------------------------------------------

    def tokens(self) -> Iterator[Tok]:
        i = 0
        while True:
            i = self._skip(i)
            if i >= self.n:
                if self._norm is not None:
                    raise self._error(r"a norm \| is never closed", self._norm, r"write the squared norm as \|v\|^2")
                return
            toks, i = self._next(i)
            if self.latex and self._emitted == 0 and toks and toks[0].type == "EQUALS":
                toks = toks[1:]  # an align continuation line: "&= rhs"
            for tok in toks:
                self._emitted += 1
                self._last_type = tok.type
                yield tok

    def _tok(self, type_: str, start: int, end: int, payload: object = None) -> Tok:
        return Tok(type_, self.text[start:end], start, end, payload)

    def _next(self, i: int) -> tuple[list[Tok], int]:
        t = self.text
        c = t[i]
        if c in _DIGITS or (c == "." and self._at(i + 1) in _DIGITS):
            return self._number(i)
        if c.isascii() and c.isalpha():
            return self._word(i)
        if c == "\\":
            return self._latex_command(i)
        simple = {
            "+": "PLUS", "/": "DIV", "\u00f7": "DIV", "@": "MAT_MUL", "\u00b7": "MAT_MUL", "\u00d7": "MAT_MUL",
            "\u22c5": "MAT_MUL", "\u22a4": "TRANSPOSE",
            "\u2299": "HADAMARD", "\u2218": "HADAMARD", ",": "COMMA", "(": "LPAR", ")": "RPAR",
            "]": "RBRACK", "{": "LBRACE", "}": "RBRACE", "\u1d40": "TRANSPOSE",
        }
        if c == "}" and i in self._paren_braces:
            return [self._tok("RPAR", i, i + 1)], i + 1
        if c in simple:
            return [self._tok(simple[c], i, i + 1)], i + 1
        if c in _MINUS_SIGNS:
            return [self._tok("MINUS", i, i + 1)], i + 1
        if c == "*":
            if self._at(i + 1) == "*":
                return [self._tok("POW", i, i + 2)], i + 2
            return [self._tok("MAT_MUL" if self.latex else "ELEM_MUL", i, i + 1)], i + 1
        if c == "=":
            if self._at(i + 1) == "=":
                raise self._error("== is not an operator", i, "write one = between the two sides (lhs = rhs)")
            return [self._tok("EQUALS", i, i + 1)], i + 1
        if c == "[":
            return self._bracket(i)
        if c == "^":
            return self._caret(i)
        if c == ".":
            if self._at(i + 1) == "T" and not _continues_word(self._at(i + 2)):
                return [self._tok("TRANSPOSE", i, i + 2)], i + 2
            if self.latex and self._only_noise_after(i + 1):
                return [], self.n
            raise self._error("unexpected .", i, "a transpose is .T; a decimal number needs digits (0.5)")
        if c == "\u2202":  # ∂
            got = self._partial_form(i, i + 1, required=True)
            assert got is not None  # required: it raises rather than return None
            return got
        if c == "\u2207":  # ∇
            return self._nabla(i, i + 1)
        if c in "\u2211\u03a3":  # ∑ Σ
            return self._sum(i, i + 1)
        if c == "\u0177":  # ŷ
            return self._name_token(i)
        if c in "\u00b2\u00b3":  # ² ³
            return [self._tok("CARET", i, i), Tok("NUMBER", "2" if c == "\u00b2" else "3", i, i + 1)], i + 1
        if c == "'" or c == "\u2032":
            if self._last_type in _PRIME_AFTER and self._emitted:
                return [self._tok("TRANSPOSE", i, i + 1)], i + 1
            if self._last_type in ("FUNC_CALL", "FUNC_BARE"):
                raise self._error(
                    "a prime (derivative) is not supported",
                    i,
                    "write the derivative out, e.g. 1 - tanh(a_1)**2 or sech(a_1)**2",
                )
            raise self._error(
                "' is not a transpose",
                i,
                "use ^T or ^\\top for a transpose" if self.latex else "use .T or ^T for a transpose",
            )
        if c == "_":
            raise self._error("a subscript _ must follow a name", i, "write names like h_1, W_hy, h_{t-1}")
        if c == "|":
            raise self._error(
                "absolute values and norms are not supported",
                i,
                r"the squared norm is \|v\|^2 in LaTeX; in plain syntax write sum(v**2)",
            )
        if c == "$" and not self.latex:
            raise self._error("unexpected $", i, "LaTeX input? use syntax='latex' (or auto)")
        if c in "\u2026\u22ef":
            raise self._error("… is not supported", i, "write the terms out, or use sum_{t=1}^{T} (...)")
        code = f"U+{ord(c):04X}"
        shown = repr(c) if c.isprintable() else "?"
        control = ord(c) < 32 or 127 <= ord(c) < 160
        raise self._error(
            f"unexpected control character {code}" if control else f"unexpected character {shown} ({code})", i
        )

    # -- numbers ---------------------------------------------------------------

    def _number(self, i: int) -> tuple[list[Tok], int]:
        m = _NUMBER.match(self.text, i)
        assert m is not None
        mantissa, exponent = m.group(1), m.group(2)
        digits = sum(ch in _DIGITS for ch in mantissa)
        if digits > MAX_NUMBER_DIGITS:
            raise LimitError(
                f"a number with {digits} digits",
                text=self.text,
                position=i,
                hint=f"numbers may have at most {MAX_NUMBER_DIGITS} digits",
            )
        if exponent is not None:
            ed = exponent.lstrip("+-")
            if len(ed) > MAX_EXPONENT_DIGITS or int(ed) > MAX_NUMBER_EXPONENT:
                raise LimitError(
                    f"the number {m.group(0)} is too large or too small",
                    text=self.text,
                    position=i,
                    hint=f"a number's decimal exponent must lie within ±{MAX_NUMBER_EXPONENT}",
                )
        return [self._tok("NUMBER", i, m.end())], m.end()

    # -- words: partials, sums, functions, names -------------------------------

    def _word(self, i: int) -> tuple[list[Tok], int]:
        t = self.text
        word_re = _LATEX_WORD if self.latex else _PLAIN_WORD
        m = word_re.match(t, i)
        assert m is not None
        word = m.group(0)
        if t[i] == "d" and not self.is_base(word):
            got = self._partial_form(i, i + 1, required=False)
            if got is not None:
                return got
            if word == "d" and self._opens_paren(i + 1):
                raise self._error(
                    "the numerator of a partial must be a name",
                    i,
                    "write d(A)/d(B) with names A and B, optionally indexed: d(yhat_1[0])/d(z_1)",
                )
        after = self._at(m.end())
        if word == "e" and not self.is_base(word):
            got = self._euler(i, m.end())
            if got is not None:
                return got
        if word == "sum" and after in "_^" and after:
            return self._sum(i, m.end())
        if word in FUNCTION_WORDS and after != "_":
            return self._function(FUNCTION_WORDS[word], i, m.end())
        return self._name_token(i)

    def _euler(self, i: int, j: int) -> tuple[list[Tok], int] | None:
        """``e^{u}`` (LaTeX), ``e^(u)`` or ``e**(u)``: Euler's number to a power, read as ``exp(u)``."""
        k = self._skip_simple(j)
        if self.text.startswith("**", k):
            k = self._skip_simple(k + 2)
        elif self._at(k) == "^":
            k = self._skip_simple(k + 1)
        else:
            return None
        if self._at(k) == "(":
            return [self._tok("FUNC_CALL", i, k, "exp")], k
        if self._at(k) == "{" and self.latex:
            end = self._match_brace(k)
            self._paren_braces.add(end - 1)
            return [self._tok("FUNC_CALL", i, k, "exp"), self._tok("LPAR", k, k + 1)], k + 1
        raise self._error(
            "e^… needs its exponent in braces or parentheses",
            i,
            r"write e^{z_t} (read as \exp(z_t))" if self.latex else "write exp(z_t) or e**(z_t)",
        )

    def _function(self, func: str, start: int, end: int) -> tuple[list[Tok], int]:
        """A function word; FUNC_CALL when parentheses follow (after an optional power), else FUNC_BARE."""
        j = self._skip(end)
        if self._at(j) == "^":
            j = self._past_superscript(j)
        if self._opens_paren(j):
            return [self._tok("FUNC_CALL", start, end, func)], end
        if self.latex and func not in ("outer", "ones"):
            return [self._tok("FUNC_BARE", start, end, func)], end
        raise self._error(f"{func} needs parentheses", start, f"write {func}(...)")

    def _past_superscript(self, j: int) -> int:
        k = self._skip_simple(j + 1)
        while self._at(k) in _MINUS_SIGNS:  # signs before the exponent (tanh^-2), in a loop: any number of them
            k = self._skip_simple(k + 1)
        if self._at(k) == "{":
            return self._match_brace(k)
        m = _NUMBER.match(self.text, k) if not self.latex else None
        if m:
            return m.end()
        return k + 1 if k < self.n else k

    def _name_token(self, i: int) -> tuple[list[Tok], int]:
        self._transpose = None
        got = self._scan_name(i)
        if got is None:
            raise self._error("a name was expected here", i)
        spec, j = got
        if spec.parts == ("I",) and spec.index is None and not self.is_base("I"):
            # the identity matrix, sized by what it multiplies or is added to
            self._transpose = None
            return [self._tok("NUMBER", i, j, "identity")], j
        self.check_name(spec)
        transpose, self._transpose = self._transpose, None
        if transpose is not None:  # h^{(t)\top} or W^\top_{hh}: a name and its transpose
            start, end = transpose
            return [self._tok("NAME", i, start, spec), self._tok("TRANSPOSE", start, max(end, j))], max(end, j)
        kind = "NAME_CALL" if self._opens_paren(j) else "NAME"
        return [self._tok(kind, i, j, spec)], j

    def _no_transpose(self, what: str) -> None:
        """Refuse a step superscript with a transpose (``h^{(t)\top}``) where only a name may stand."""
        transpose, self._transpose = self._transpose, None
        if transpose is not None:
            raise self._error(
                f"a transpose inside {what}",
                transpose[0],
                r"a partial's names carry no transpose: transpose the partial, (\nabla_{h^{(t)}} L)^\top",
            )

    # -- names -------------------------------------------------------------

    def _scan_name(self, i: int, *, allow_index: bool = False) -> tuple[NameSpec, int] | None:
        """A name at ``i`` (base, subscripts, step superscript, index superscript), or None."""
        base = self._scan_base(i)
        if base is None:
            return None
        parts, index, j = base
        while j < self.n:
            c = self.text[j]
            if c == "_":
                sub, j = self._subscript(j)
                parts.append(sub)
                continue
            if c in _SUBSCRIPTS:  # h₁, Wₕₕ, hₜ₋₁
                k = j
                while k < self.n and self.text[k] in _SUBSCRIPTS:
                    k += 1
                parts.append("".join(_SUBSCRIPTS[ch] for ch in self.text[j:k]))
                j = k
                continue
            if c == "^" and self._transpose is None and (k := self._transpose_before_subscript(j)) is not None:
                self._transpose = (j, k)  # W^\top_{hh}: the transpose, then the rest of the name
                j = k
                continue
            if c == "^" and self._transpose is None:
                got = self._name_superscript(j)
                if got is not None:
                    kind, value, k = got
                    if kind in ("step", "step_transpose"):
                        parts.append(f"({value})")  # a step written as Goodfellow's superscript
                        if kind == "step_transpose":
                            self._transpose = (j, k)
                            j = k
                            break
                        j = k
                        continue
                    if index is None:
                        index = value  # type: ignore[assignment]
                        j = k
                        continue
            break
        if allow_index and index is None:
            m = _INDEX.match(self.text, self._skip(j))
            if m:
                index = (int(m.group(1)),) if m.group(2) is None else (int(m.group(1)), int(m.group(2)))
                j = m.end()
        return NameSpec(tuple(parts), index, i, j), j

    def _transpose_before_subscript(self, j: int) -> int | None:
        r"""``text[j] == '^'``: the end of a transpose superscript that a subscript follows (``W^\top_{hh}``,
        ``\mathbf{h}^\top_t``, ``W^T_hh``), else None."""
        k = self._skip_simple(j + 1)
        end: int | None = None
        if self._at(k) == "{":
            close = self._match_brace(k)
            if _SPACES.sub("", self.text[k + 1 : close - 1]).replace("{", "").replace("}", "") in _TRANSPOSE_WORDS:
                end = close
        elif self._at(k) in ("T", "\u22a4"):
            end = k + 1
        else:
            cmd = self._command(k)
            if cmd is not None and cmd[0] in ("top", "intercal"):
                end = cmd[1]
        if end is None or self._at(self._skip_simple(end)) not in ("_",) + tuple(_SUBSCRIPTS):
            return None
        return self._skip_simple(end)

    def _scan_base(self, i: int) -> tuple[list[str], tuple[int, ...] | None, int] | None:
        t = self.text
        hats = 0
        while True:  # a run of commands (\hat\mathbf{y}) is read in a loop: it may be thousands long
            c = self._at(i)
            if c.isascii() and c.isalpha():
                m = (_LATEX_WORD if self.latex else _PLAIN_WORD).match(t, i)
                assert m is not None
                parts, index, end = [m.group(0)], None, m.end()
                break
            if c == "\u0177":
                parts, index, end = ["yhat"], None, i + 1
                break
            cmd = self._command(i)
            if cmd is None:
                return None
            name, j = cmd
            if name not in _HAT and name not in _STYLE:
                return None
            hats += name in _HAT
            k = self._skip_simple(j)
            if self._at(k) == "{":
                end = self._match_brace(k)
                inner = self._scan_name(self._skip(k + 1))  # recursion only per brace: nesting ≤ MAX_NESTING
                if inner is None or self._skip(inner[1]) != end - 1:
                    return None
                parts = list(inner[0].parts)
                index = inner[0].index
                break
            if self._at(k).isascii() and self._at(k).isalpha():
                parts, index, end = [self._at(k)], None, k + 1
                break
            i = k
        parts[0] = parts[0] + "hat" * hats
        return parts, index, end

    def _subscript(self, j: int) -> tuple[str, int]:
        """``text[j] == '_'``: the subscript text (normalized) and the position after it."""
        k = self._skip_simple(j + 1)
        if self._at(k) == "{":
            end = self._match_brace(k)
            content = _TAU.sub("T", _UNWRAP.sub("", self.text[k + 1 : end - 1]))
            if not _SUB_CONTENT.match(content):
                raise self._error(
                    f"_{{{clip(self.text[k + 1:end - 1].strip(), 40)}}} is not a subscript of a name",
                    j,
                    "a subscript is a step or part of a name: h_1, h_{t-1}, W_{hy}, L_{total}",
                )
            return content, end
        m = (_LATEX_SUB if self.latex else _PLAIN_SUB).match(self.text, k)
        if m is None:
            tau = _TAU.match(self.text, k) if self.latex else None
            if tau is not None:
                return "T", tau.end()
            raise self._error("a subscript must follow _", j, "write h_1, W_hy, h_{t-1}")
        return m.group(0), m.end()

    def _name_superscript(self, j: int) -> tuple[str, object, int] | None:
        """A superscript on a name: ``^{(t)}`` (a step, Goodfellow's h^{(t)}; ``^{(t)\top}`` a step and a
        transpose, his h^{(t-1)\top}) or ``^{00}`` / ``^{0,1}`` (an element index)."""
        k = self._skip_simple(j + 1)
        if self._at(k) != "{":
            return None
        end = self._match_brace(k)
        content = _SPACES.sub("", self.text[k + 1 : end - 1])
        m = _STEP_SUPERSCRIPT.fullmatch(content)
        if m:
            step = _TAU.sub("T", _UNWRAP.sub("", m.group(1)))
            if not _SUB_CONTENT.match(step):
                return None
            rest = m.group(2).replace("{", "").replace("}", "")
            if not rest:
                return "step", step, end
            if rest.removeprefix("^") in _TRANSPOSE_WORDS:
                return "step_transpose", step, end
            return None
        m = _INDEX_SUPERSCRIPT.fullmatch(content)
        if m:
            a, b = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            return "index", (int(a), int(b)), end
        return None

    # -- partials ---------------------------------------------------------------

    def _d_symbol(self, i: int) -> int | None:
        """The end of a differential symbol at ``i`` (``d``, ``∂``, ``\\partial``, ``\\mathrm{d}``), or None."""
        c = self._at(i)
        if c == "\u2202":
            return i + 1
        if c == "d":
            nxt = self._at(i + 1)
            if _is_letter(nxt) or nxt in " \t\n(\\" or nxt == "\u0177":
                return i + 1
            return None
        cmd = self._command(i)
        if cmd is None:
            return None
        name, j = cmd
        if name == "partial":
            return j
        if name in _OPERATOR_WRAPPERS:
            k = self._skip_simple(j)
            if self.text.startswith("{d}", k):
                return k + 3
        return None

    def _partial_operand(self, j: int, *, required: bool = True) -> tuple[NameSpec, int] | None:
        """A partial's numerator or denominator: a name (optionally indexed), or one in parentheses."""
        close = None
        if self._at(j) == "(":
            close, j = ")", self._skip(j + 1)
        else:
            cmd = self._command(j)
            if cmd and cmd[0] == "left" and self._at(self._skip_simple(cmd[1])) == "(":
                close, j = "right", self._skip(self._skip_simple(cmd[1]) + 1)
        got = self._scan_name(j, allow_index=True)
        if required:
            self._no_transpose("a partial")
        elif self._transpose is not None:
            self._transpose = None
            return None
        if got is None:
            return None
        spec, k = got
        if close is not None:
            k = self._skip(k)
            if close == ")" and self._at(k) == ")":
                k += 1
            elif close == "right" and self._command(k) and self._command(k)[0] == "right":  # type: ignore[index]
                k2 = self._skip_simple(self._command(k)[1])  # type: ignore[index]
                if self._at(k2) != ")":
                    return None
                k = k2 + 1
            else:
                return None
        return spec, k

    def _partial_form(self, start: int, sym_end: int, *, required: bool) -> tuple[list[Tok], int] | None:
        """``dA/dB``, ``∂A/∂B``, ``d(A)/d(B)``, ``\\partial A / \\partial B`` as one PARTIAL token."""

        def fail(message: str, pos: int) -> None:
            if required:
                raise self._error(
                    message,
                    pos,
                    "a partial is ∂A/∂B or dA/dB with names A and B, optionally indexed "
                    "(dL/dW_hy[0,0], d(yhat_1[0])/d(z_1))",
                )

        num = self._partial_operand(self._skip(sym_end), required=required)
        if num is None:
            fail("the numerator of a partial must be a name", self._skip(sym_end))
            return None
        j = self._skip(num[1])
        if self._at(j) != "/":
            fail("a partial needs / between numerator and denominator", j)
            return None
        j = self._skip(j + 1)
        sym2 = self._d_symbol(j)
        if sym2 is None:
            fail("the denominator of a partial must start with ∂ (or d)", j)
            return None
        den = self._partial_operand(self._skip(sym2), required=required)
        if den is None:
            fail("the denominator of a partial must be a name", self._skip(sym2))
            return None
        return self._partial_token(start, den[1], num[0], den[0])

    def _partial_token(self, start: int, end: int, num: NameSpec, den: NameSpec) -> tuple[list[Tok], int]:
        self.check_name(num)
        self.check_name(den)
        spec = PartialSpec(num, den, start, end)
        return [self._tok("PARTIAL", start, end, spec)], end

    def _braced_partial_part(self, k: int, end: int, *, strict: bool) -> NameSpec | None:
        """Inside ``{…}`` (``text[k] == '{'``, ``end`` after its ``}``): a differential symbol and a name filling it."""
        j = self._skip(k + 1)
        sym = self._d_symbol(j)
        if sym is None:
            return None
        after = self._skip(sym)
        if strict and self._at(after) == "^":
            raise self._error("higher derivatives are not supported", after, "write first partials and chain them")
        if strict and after >= end - 1:
            raise self._error(
                "an empty partial (operator form) is not supported",
                j,
                r"put the name inside: \frac{\partial L}{\partial W_{hy}}",
            )
        got = self._partial_operand(after, required=strict)
        if got is None or self._skip(got[1]) != end - 1:
            if strict:
                raise self._error(
                    "a partial's numerator and denominator must be names",
                    after,
                    r"write \frac{\partial A}{\partial B} with names A and B, optionally indexed "
                    r"(\partial W_{hy}^{00}); differentiate an expression by naming its node",
                )
            return None
        return got[0]

    def _frac(self, i: int, j: int) -> tuple[list[Tok], int]:
        """``\\frac{..}{..}``: a PARTIAL when it is one, else a FRAC (division)."""
        k1 = self._skip(j)
        if self._at(k1) != "{":
            raise self._error(r"\frac needs two braced arguments", i, r"write \frac{a}{b}")
        e1 = self._match_brace(k1)
        k2 = self._skip(e1)
        if self._at(k2) != "{":
            raise self._error(r"\frac needs two braced arguments", i, r"write \frac{a}{b}")
        e2 = self._match_brace(k2)
        first = self._skip(k1 + 1)
        cmd = self._command(first)
        strict = self._at(first) == "\u2202" or (cmd is not None and cmd[0] == "partial")
        num = self._braced_partial_part(k1, e1, strict=strict)
        if num is not None:
            den = self._braced_partial_part(k2, e2, strict=strict)
            if den is not None:
                return self._partial_token(i, e2, num, den)
            if strict:
                raise self._error(
                    "the denominator of a partial must be ∂ and a name",
                    self._skip(k2 + 1),
                    r"write \frac{\partial A}{\partial B}",
                )
        return [self._tok("FRAC", i, j)], j

    def _nabla(self, i: int, j: int) -> tuple[list[Tok], int]:
        r"""``\nabla_{B} A`` = ∂A/∂B (the textbook's gradient notation)."""
        hint = r"write \nabla_{h_t} L: the gradient of L with respect to h_t"
        k = self._skip(j)
        if self._at(k) != "_":
            raise self._error(r"\nabla needs a subscript", i, hint)
        k = self._skip_simple(k + 1)
        if self._at(k) == "{":
            end = self._match_brace(k)
            got = self._scan_name(self._skip(k + 1), allow_index=True)
            self._no_transpose(r"the subscript of \nabla")
            if got is None or self._skip(got[1]) != end - 1:
                raise self._error(r"the subscript of \nabla must be a name", k, hint)
            den = got[0]
        else:
            got = self._scan_name(k, allow_index=True)
            self._no_transpose(r"the subscript of \nabla")
            if got is None:
                raise self._error(r"the subscript of \nabla must be a name", k, hint)
            den, end = got
        got = self._partial_operand(self._skip(end))
        if got is None:
            raise self._error(r"\nabla_{…} must be followed by the name it differentiates", self._skip(end), hint)
        return self._partial_token(i, got[1], got[0], den)

    # -- sums -------------------------------------------------------------------

    def _sum(self, i: int, j: int) -> tuple[list[Tok], int]:
        hint = "a step sum is sum_{t=1}^{T} (...) or sum_t (...); for the sum of entries use sum(...)"
        var: str | None = None
        low: Bound = ("", 1)
        high: Bound = ("T", 0)
        seen: set[str] = set()
        k = j
        while True:
            k = self._skip(k)
            c = self._at(k)
            if c not in ("_", "^") or c in seen:
                break
            seen.add(c)
            content, k = self._script(k)
            if c == "_":
                m = _SUM_INDEX.fullmatch(content)
                if m is None:
                    raise self._error(
                        f"a step sum needs its index: _{{{clip(content, 40)}}}",
                        i,
                        "name the index, e.g. \\sum_{t=1}^{2} L_t" if content.isascii() and content.isdigit() else hint,
                    )
                var = m.group(1)
                if m.group(2) is not None:
                    low = self._bound(m.group(2), i)
            else:
                high = self._bound(content, i)
        if var is None:
            raise self._error("a step sum needs its index", i, hint)
        spec = SumSpec(var, low, high, i, k)
        return [self._tok("SUM", i, k, spec)], k

    def _script(self, k: int) -> tuple[str, int]:
        """The content of a sub/superscript at ``text[k]`` (``_`` or ``^``), spaces removed."""
        j = self._skip_simple(k + 1)
        if self._at(j) == "{":
            end = self._match_brace(j)
            content = _UNWRAP.sub("", self.text[j + 1 : end - 1])
            return (_TAU.sub("T", content) if self.latex else content), end
        if self.latex:
            if j >= self.n:
                raise self._error("a script is missing", k)
            tau = _TAU.match(self.text, j)
            if tau is not None:
                return "T", tau.end()
            return self.text[j], j + 1
        m = _PLAIN_SCRIPT.match(self.text, j)
        if m is None:
            raise self._error("a script is missing", k)
        return m.group(0), m.end()

    def _bound(self, text: str, pos: int) -> Bound:
        m = _BOUND.match(text)
        if m is None:
            raise self._error(
                f"{clip(text, 40)!r} is not a sum bound",
                pos,
                "bounds are numbers, T, T-1, or an enclosing sum's index (sum_{k=1}^{t})",
            )
        if m.group(1) is not None:
            return ("", int(m.group(1)))
        return (m.group(2), int(m.group(4) or 0) * (-1 if m.group(3) == "-" else 1))

    # -- superscripts, brackets, LaTeX commands ----------------------------------

    def _caret(self, i: int) -> tuple[list[Tok], int]:
        t = self.text
        k = self._skip_simple(i + 1)
        c = self._at(k)
        if c == "{":
            end = self._match_brace(k)
            raw = t[k + 1 : end - 1]
            content = _SPACES.sub("", raw)
            if content.replace("{", "").replace("}", "") in _TRANSPOSE_WORDS:
                return [self._tok("TRANSPOSE", i, end)], end
            if content.startswith("\\circ"):
                rest = content[len("\\circ") :].strip("{}")
                m = _HADAMARD_POWER.fullmatch(rest)
                if m is None:
                    raise self._error(r"^{\circ k} needs a whole number k", i, r"e.g. W_{hh}^{\circ 2}")
                return [self._tok("HPOW", i, end, int(m.group(2)) * (-1 if m.group(1) == "-" else 1))], end
            if content.startswith("(") and (content.endswith(")") or _STEP_SUPERSCRIPT.fullmatch(content)):
                raise self._error("a step superscript ^{(t)} must follow a name", i, "write h^{(t)} or h_t")
            if content in ("\\prime", "'"):
                raise self._error("' is not a transpose", i, r"use ^T or ^\top for a transpose")
            return [self._tok("CARET", i, i + 1)], i + 1
        cmd = self._command(k)
        if cmd is not None and cmd[0] in ("top", "intercal"):
            return [self._tok("TRANSPOSE", i, cmd[1])], cmd[1]
        if cmd is not None and cmd[0] == "prime":
            raise self._error("' is not a transpose", i, r"use ^T or ^\top for a transpose")
        if c == "\u22a4":
            return [self._tok("TRANSPOSE", i, k + 1)], k + 1
        if c == "T" and (self.latex or not _continues_word(self._at(k + 1))):
            return [self._tok("TRANSPOSE", i, k + 1)], k + 1
        if c == "'":
            raise self._error("' is not a transpose", k, "use ^T for a transpose")
        if self.latex and c in _DIGITS:
            return [self._tok("CARET", i, i + 1), self._tok("NUMBER", k, k + 1)], k + 1
        return [self._tok("CARET", i, i + 1)], i + 1

    def _bracket(self, i: int) -> tuple[list[Tok], int]:
        m = _INDEX.match(self.text, i)
        if m:
            index = (int(m.group(1)),) if m.group(2) is None else (int(m.group(1)), int(m.group(2)))
            return [self._tok("INDEX", i, m.end(), index)], m.end()
        if self.latex:
            return [self._tok("LBRACK", i, i + 1)], i + 1
        close = self.text.find("]", i)
        inside = self.text[i + 1 : close] if close > i else ""
        hint = "an index is one or two whole numbers, 0-based: W_hy[0,0], h_1[1]"
        if ":" in inside:
            hint = "slices are not supported; " + hint
        raise self._error("[ must hold an index", i, hint)

    def _latex_command(self, i: int) -> tuple[list[Tok], int]:
        if not self.latex:
            raise self._error("unexpected \\ in plain syntax", i, "this looks like LaTeX: use syntax='latex' (or auto)")
        cmd = self._command(i)
        if cmd is None:
            raise self._error("a lone \\ at the end", i)
        name, j = cmd
        if name in ("frac", "dfrac", "tfrac"):
            return self._frac(i, j)
        if name == "partial":
            got = self._partial_form(i, j, required=True)
            assert got is not None
            return got
        if name == "nabla":
            return self._nabla(i, j)
        if name == "sum":
            return self._sum(i, j)
        if name in _SIZING:
            return self._sized_delimiter(i, j)
        if name in LATEX_FUNCTIONS:
            return self._function(LATEX_FUNCTIONS[name], i, j)
        if name in _MAT_MUL:
            return [self._tok("MAT_MUL", i, j)], j
        if name in _HADAMARD:
            return [self._tok("HADAMARD", i, j)], j
        if name == "div":
            return [self._tok("DIV", i, j)], j
        if name == "{":
            return [self._tok("LBRACE", i, j)], j
        if name == "}":
            return [self._tok("RBRACE", i, j)], j
        if name in _OPERATOR_WRAPPERS or name in _STYLE or name in _HAT:
            k = self._skip_simple(j)
            if self._at(k) == "{":
                end = self._match_brace(k)
                word = self.text[k + 1 : end - 1].strip()
                if word in LATEX_FUNCTIONS and name in _OPERATOR_WRAPPERS | {"mathbf"}:
                    return self._function(LATEX_FUNCTIONS[word], i, end)
                if word == "1" and name in _STYLE - _OPERATOR_WRAPPERS | {"mathbb"}:
                    # \mathbf{1}: the all-ones vector, sized by what it multiplies or is added to
                    return [self._tok("NUMBER", i, end, "ones")], end
            base = self._scan_base(i)
            self._transpose = None
            if base is not None:
                return self._name_token(i)
            if name in _HAT:
                raise self._error(f"\\{name} must be over a letter", i, r"write \hat{y}_t")
            if name == "operatorname":
                raise self._error("unknown operator", i, "functions: " + ", ".join(sorted(set(FUNCTION_WORDS.values()))))
            return [], j  # a style around an expression: transparent, its braces group
        if name in ("top", "intercal"):
            raise self._error(f"\\{name} must follow ^", i, r"write h_t^\top")
        if name == "prime":
            raise self._error("' is not a transpose", i, r"use ^T or ^\top for a transpose")
        if name in ("cdots", "ldots", "dots", "dotsb", "dotsc", "vdots"):
            raise self._error(f"\\{name} is not supported", i, r"write the terms out, or use \sum_{t=1}^{T}")
        if name == "max":
            raise self._error(r"\max is not supported", i, r"for max(u, 0) write \operatorname{relu}(u)")
        if name in ("prod", "int", "lim", "min", "sqrt"):
            raise self._error(f"\\{name} is not supported", i)
        if name == "\\":
            raise self._error(r"a line break \\ inside an expression", i, "check one equation at a time")
        if name in _NORM_OPEN | _NORM_CLOSE:
            return self._norm_bar(name, i, j)
        if name in ("vert", "lvert", "rvert"):
            raise self._error("absolute values are not supported", i)
        raise self._error(
            f"unknown LaTeX command \\{name}",
            i,
            r"supported: \frac \partial \nabla \sum \hat \cdot \times \odot \circ \tanh \exp \log "
            r"\operatorname{…} \left( \right) \mathbf{…} ^\top",
        )

    def _norm_bar(self, name: str, i: int, j: int) -> tuple[list[Tok], int]:
        r"""``\|v\|^2`` (also ``\lVert``/``\rVert``, ``\Vert``, ``\left\|``, a subscript ``_2`` or ``_F``):
        the squared norm, read as ``sum((v)^{∘2})``, the sum of the squared entries."""
        hint = r"only the squared norm is supported: \|v\|^2 (the sum of the squared entries)"
        if self._norm is None:
            if name not in _NORM_OPEN:
                raise self._error(r"a closing \rVert without an opening \lVert", i, hint)
            self._norm = i
            return [self._tok("FUNC_CALL", i, j, "sum"), self._tok("LPAR", i, j), self._tok("LPAR", j, j)], j
        if name not in _NORM_CLOSE:
            raise self._error("a norm inside a norm", i, hint)
        self._norm = None
        k = self._skip_simple(j)
        script = _NORM_SCRIPT.match(self.text, k)
        if script is not None:
            k = self._skip_simple(script.end())
        square = _SQUARE.match(self.text, k)
        if square is None:
            raise self._error("a norm must be squared here", i, hint)
        end = square.end()
        return [self._tok("RPAR", i, j), self._tok("HPOW", k, end, 2), self._tok("RPAR", end, end)], end

    def _sized_delimiter(self, i: int, j: int) -> tuple[list[Tok], int]:
        k = self._skip_simple(j)
        c = self._at(k)
        kinds = {"(": "LPAR", ")": "RPAR", "[": "LBRACK", "]": "RBRACK"}
        if c in kinds:
            return [self._tok(kinds[c], i, k + 1)], k + 1
        if c == ".":
            return [], k + 1
        cmd = self._command(k)
        if cmd and cmd[0] in ("{", "}"):
            return [self._tok("LBRACE" if cmd[0] == "{" else "RBRACE", i, cmd[1])], cmd[1]
        if cmd and cmd[0] in _NORM_OPEN | _NORM_CLOSE:
            return self._norm_bar(cmd[0], i, cmd[1])
        if c == "|" or (cmd and cmd[0] in ("vert", "lvert", "rvert")):
            raise self._error("absolute values are not supported", i, r"the squared norm is \|v\|^2")
        raise self._error("a delimiter must follow \\left / \\right", i, r"use \left( … \right) or \left[ … \right]")


def _continues_word(c: str) -> bool:
    return bool(c) and c.isascii() and (c.isalnum() or c == "_")


def _is_letter(c: str) -> bool:
    return bool(c) and c.isascii() and c.isalpha()
