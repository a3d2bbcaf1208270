r"""AST → text, in either syntax, with minimal but safe parentheses.

The contract: for any tree the parser produces, ``parse(to_plain(e), model)``
and ``parse(to_latex(e), model, syntax="latex")`` give back an equal tree
(same model, no notation). Printing uses canonical names only.

Choices that keep the round trip exact:

* plain ``*`` is elementwise and ``@`` the matrix product; in LaTeX a product
  with a 1×1 side prints as ``\cdot`` (scalar), other elementwise products as
  ``\odot``, matrix products as ``\cdot``;
* LaTeX ``^k`` is the matrix power on a square matrix, so an elementwise power
  of a square matrix prints as ``^{\circ k}`` (the Hadamard power);
* a base that is a name gets braces before a two-digit exponent
  (``{W_{hh}}^{10}``), because ``W_{hh}^{10}`` reads as the element [1,0];
* division prints as ``\frac{a}{b}`` in LaTeX (an atom: no precedence issues);
* postfix operators on a partial parenthesize it: ``(dL/dh_1).T``, since
  ``dL/dh_1[0]`` indexes the denominator;
* chains print as their factors joined by ``*`` (plain) or juxtaposed (LaTeX);
  an elementwise product of two partials prints as ``⊙`` / ``\odot`` (``*``
  would chain them), and a product's left operand that ends in a partial is
  parenthesized when a partial follows (``(x * dL/dh_1) * dh_1/dW`` is not
  the chain ``x * (dL/dh_1 * dh_1/dW)``);
* a node function applied to an argument that does not hold what the node's input is
  computed from (not a parser's tree: code builds such) is parenthesized before a postfix operator: ``(yhat_1(ones(1, 2)))[0,0]``,
  since ``yhat_1(ones(1, 2))[0,0]`` reads as the product ``yhat_1 · ones(1, 2)[0,0]``;
* numbers print as exact decimals (``0.5``), in scientific notation when long.
"""

from __future__ import annotations

from fractions import Fraction

from ..model import Ref
from .ast import Apply, Binary, Call, Chain, Element, Expr, Name, Neg, Number, Partial, Power, Transpose, postorder
from .limits import MAX_RUN
from .resolve import _holds_input

_ADD, _MUL, _UNARY, _POW, _POSTFIX, _ATOM = range(1, 7)

_LATEX_FAMILY = {"yhat": r"\hat{y}"}
_LATEX_FUNC = {"tanh": r"\tanh", "exp": r"\exp", "log": r"\log"}


def _partial_like(e: Expr) -> bool:
    return isinstance(e, (Partial, Chain))


def _unsigned(e: Expr) -> Expr:
    """``e`` without its leading run of signs (a Neg of a Neg prints as ``- -x``)."""
    while isinstance(e, Neg):
        e = e.operand
    return e


def to_plain(expr: Expr) -> str:
    """The plain (numpy-like) spelling of an expression."""
    return _Printer(latex=False).text(expr)


def to_latex(expr: Expr) -> str:
    """The LaTeX spelling of an expression."""
    return _Printer(latex=True).text(expr)


def partial_text(num: Ref, den: Ref, *, latex: bool = False) -> str:
    """``dL/dh_2`` or ``\\frac{\\partial L}{\\partial h_{2}}``: a whole partial, spelled as the printers spell it."""
    printer = _Printer(latex=latex)
    num_text, den_text = printer.name(num), printer.name(den)
    return rf"\frac{{\partial {num_text}}}{{\partial {den_text}}}" if latex else f"d{num_text}/d{den_text}"


def format_number(value: Fraction) -> str:
    """An exact decimal for a terminating fraction (``0.5``, ``1.25``, ``1e-40``); else ``p/q`` (not re-parsable as one number)."""
    if value < 0:
        return "-" + format_number(-value)
    num, den = value.numerator, value.denominator
    twos = fives = 0
    d = den
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return f"{num}/{den}"
    scale = max(twos, fives)
    digits = num * 10**scale // den  # value = digits / 10**scale, exactly
    exp10 = -scale
    while digits % 10 == 0 and digits != 0 and exp10 < 0:
        digits //= 10
        exp10 += 1
    if digits == 0:
        return "0"
    text = str(digits)
    if exp10 == 0:
        if len(text) <= 30:
            return text
        stripped = text.rstrip("0")
        return f"{stripped}e{len(text) - len(stripped)}"
    if len(text) + max(0, -exp10 - len(text) + 1) <= 30:
        if -exp10 >= len(text):
            return "0." + "0" * (-exp10 - len(text)) + text
        return text[:exp10] + "." + text[exp10:]
    return f"{text}e{exp10}"


def _mixes_products(parent: Binary, child: Expr) -> bool:
    """An elementwise product inside a matrix product, or the converse (``*`` and ``@`` bind alike)."""
    products = ("*", "@")
    return (
        parent.op in products and isinstance(child, Binary) and child.op in products and child.op != parent.op
        and child.shape != (1, 1) and parent.left.shape != (1, 1) and parent.right.shape != (1, 1)
    )


class _Printer:
    """Prints children before parents (no recursion), each distinct node once.

    A node's text depends only on the node, so it is memoized by identity: a
    DAG of shared subtrees costs one visit per node, and :meth:`expr` is a
    lookup of a child's finished text.
    """

    def __init__(self, *, latex: bool) -> None:
        self.latex = latex
        self.memo: dict[int, str] = {}
        self.sign_run: dict[int, int] = {}  # id of a Neg printed as a run of signs → their number

    def text(self, root: Expr) -> str:
        for node in postorder(root):
            self.memo[id(node)] = self.node(node)
        return self.memo[id(root)]

    def expr(self, e: Expr) -> str:
        """The text of a node already printed (every child is, before its parent)."""
        return self.memo[id(e)]

    # -- precedence ------------------------------------------------------------

    def prec(self, e: Expr) -> int:
        if isinstance(e, Binary):
            if e.op in "+-":
                return _ADD
            if e.op == "/" and self.latex:
                return _ATOM  # \frac{a}{b}
            return _MUL
        if isinstance(e, Chain):
            return _MUL
        if isinstance(e, Neg):
            return _UNARY
        if isinstance(e, Power):
            return _POW
        if isinstance(e, (Transpose, Element)):
            return _POSTFIX
        if isinstance(e, Number) and e.value < 0:
            return _UNARY
        return _ATOM

    def wrap(self, e: Expr, need: int) -> str:
        text = self.expr(e)
        if self.prec(e) >= need:
            return text
        return rf"\left({text}\right)" if self.latex else f"({text})"

    def paren(self, text: str) -> str:
        return rf"\left({text}\right)" if self.latex else f"({text})"

    # -- nodes -------------------------------------------------------------------

    def node(self, e: Expr) -> str:
        if isinstance(e, Number):
            return self.number(e.value)
        if isinstance(e, Name):
            return self.name(e.ref)
        if isinstance(e, Partial):
            return self.partial(e)
        if isinstance(e, Chain):
            return (" " if self.latex else " * ").join(self.partial(f) for f in e.factors)
        if isinstance(e, Binary):
            return self.binary(e)
        if isinstance(e, Neg):
            inner = e.operand
            if isinstance(inner, Neg):
                # - -x: a run of signs adds no nesting, but a run is at most MAX_RUN long; then -(…)
                run = self.sign_run.get(id(inner), 1)
                if run < MAX_RUN:
                    self.sign_run[id(e)] = run + 1
                    return "- " + self.expr(inner)
                return "-" + self.paren(self.expr(inner))
            if self.prec(inner) < _UNARY:
                return "-" + self.paren(self.expr(inner))
            return "-" + self.expr(inner)
        if isinstance(e, Power):
            return self.power(e)
        if isinstance(e, Transpose):
            return self.postfix_base(e.operand) + (r"^{\top}" if self.latex else ".T")
        if isinstance(e, Element):
            i, j = e.index
            return self.postfix_base(e.operand) + f"[{i},{j}]"
        if isinstance(e, Call):
            return self.call(e)
        if isinstance(e, Apply):
            return self.name(e.node) + self.paren(self.expr(e.arg))
        raise TypeError(f"not an expression node: {e!r}")

    def number(self, value: Fraction) -> str:
        text = format_number(value)
        if "/" in text:  # not produced by the parser; keep it unambiguous
            num, den = text.split("/")
            return rf"\left(\frac{{{num}}}{{{den}}}\right)" if self.latex else f"({text})"
        return text

    def name(self, ref: Ref) -> str:
        if not self.latex:
            return str(ref)
        family = _LATEX_FAMILY.get(ref.family)
        if family is None:
            base, _, sub = ref.family.partition("_")
            family = f"{base}_{{{sub}}}" if sub else base
        return family if ref.step is None else f"{family}_{{{ref.step}}}"

    def partial_name(self, ref: Ref, index: tuple[int, int] | None) -> str:
        text = self.name(ref)
        return text if index is None else f"{text}[{index[0]},{index[1]}]"

    def partial(self, p: Partial) -> str:
        num = self.partial_name(p.num, p.num_index)
        den = self.partial_name(p.den, p.den_index)
        if self.latex:
            return rf"\frac{{\partial {num}}}{{\partial {den}}}"
        if p.num_index is not None:
            num = f"({num})"
        return f"d{num}/d{den}"

    def postfix_base(self, e: Expr) -> str:
        if isinstance(e, (Partial, Chain)):
            return self.paren(self.expr(e))
        if isinstance(e, Apply) and _holds_input(e.node, e.arg) is not None:
            # yhat_1(ones(1, 2))[0,0] reads as the product yhat_1 · ones(1, 2)[0,0]: the parser takes
            # name(arg) as a node function only when arg holds what the node's input is computed from.
            return self.paren(self.expr(e))
        return self.wrap(e, _POSTFIX)

    def binary(self, e: Binary) -> str:
        if e.op == "/" and self.latex:
            return rf"\frac{{{self.expr(e.left)}}}{{{self.expr(e.right)}}}"
        level = _ADD if e.op in "+-" else _MUL
        left = self.wrap(e.left, level)
        if _mixes_products(e, e.left):  # (a * b) @ c: equal precedence, but readers expect the brackets
            left = self.paren(self.expr(e.left))
        if isinstance(e.right, Neg) or (isinstance(e.right, Number) and e.right.value < 0):
            right = self.paren(self.expr(e.right))
        else:
            right = self.wrap(e.right, level + 1)
        both_partial = _partial_like(e.left) and _partial_like(e.right)
        if self.latex:
            if e.op == "*":
                scalar = e.left.shape == (1, 1) or e.right.shape == (1, 1)
                sym = r"\cdot" if scalar and not both_partial else r"\odot"
            elif e.op == "@":
                sym = r"\cdot"
            else:
                sym = e.op
            chains = sym == r"\cdot"
        else:
            sym = "\u2299" if e.op == "*" and both_partial else e.op  # ⊙: plain * between partials would chain
            chains = sym in ("*", "@")
        if chains and _partial_like(e.right) and self._ends_in_partial(e.left):
            left = self.paren(self.expr(e.left))  # else the partials would be read as one chain
        return f"{left} {sym} {right}"

    def _ends_in_partial(self, e: Expr) -> bool:
        """Whether ``e``, printed unparenthesized as a product's left operand, ends in a partial factor
        (or starts with a sign that would be read as the sign of a chain)."""
        if isinstance(e, Neg):
            return _partial_like(_unsigned(e))
        if isinstance(e, Binary) and e.op in "*@/" and not (self.latex and e.op == "/"):
            return _partial_like(e.right) or (isinstance(e.left, Neg) and _partial_like(_unsigned(e.left)))
        return False

    def power(self, e: Power) -> str:
        k = e.exponent
        base = e.base
        base_text = self.postfix_base(base)
        if k.denominator == 1:
            k_text = str(k.numerator)
        else:
            k_text = rf"\frac{{{k.numerator}}}{{{k.denominator}}}" if self.latex else f"({k.numerator}/{k.denominator})"
        if not self.latex:
            if k < 0 and k.denominator == 1:
                k_text = f"({k_text})"
            return f"{base_text}{'^' if e.matrix else '**'}{k_text}"
        rows, cols = base.shape[0], base.shape[1]
        square = rows == cols and rows > 1
        if square and not e.matrix:
            return f"{base_text}^{{\\circ {k_text}}}" if k.denominator == 1 else f"{base_text} ** ({k.numerator}/{k.denominator})"
        if isinstance(base, (Name, Element)) and len(k_text) == 2 and k_text.isdigit():
            base_text = "{" + base_text + "}"
        return f"{base_text}^{{{k_text}}}"

    def call(self, e: Call) -> str:
        args = ", ".join(self.expr(a) for a in e.args)
        if not self.latex:
            return f"{e.func}({args})"
        head = _LATEX_FUNC.get(e.func, rf"\operatorname{{{e.func}}}")
        return head + self.paren(args)
