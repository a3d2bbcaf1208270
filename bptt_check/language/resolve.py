"""Raw parse tree → the typed, shaped AST (:mod:`bptt_check.language.ast`).

The one tree-building layer shared by both syntaxes. It

* resolves names (with the summation indices in scope) and unrolls sums;
* gives every node its shape and checks every operator (no broadcasting but a
  1×1 operand; for ``@`` and juxtaposition a 1×1 side is a scalar product);
* decides function application of a node name (``t_1(u)``) by shape;
* groups adjacent partials into chains and checks that they link;
* refuses Jacobians without a matrix form outside a chain;
* enforces the node limit and the limit on nesting as written (the tree's
  depth after unrolling is not limited: no consumer recurses over it).

Products are resolved as a flat list (``f0 op f1 op f2 …``): maximal runs of
adjacent partials joined by a chain product (``*`` ``@`` ``\\cdot``
``\\times`` or juxtaposition; not ``/`` nor ``\\odot``) become one
:class:`~bptt_check.language.ast.Chain`, then the list is folded from the left.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Sequence

from lark import Token, Tree

from ..errors import ChainError, ExpressionError, LimitError, ParseError, ShapeError, UnknownNameError
from ..model import NODE_FAMILIES, RNN, Ref, jacobian_shape, squeeze_shape
from .ast import (
    Apply,
    Binary,
    Call,
    Chain,
    Element,
    Expr,
    Name,
    Neg,
    Number,
    Partial,
    Power,
    Shape,
    Transpose,
    children,
)
from .lexer import Bound, PartialSpec, SumSpec
from .limits import MAX_DEPTH, MAX_NODES, MAX_POWER
from .names import Names, NameSpec
from .parser import RawTree

_ADD_OPS = ("PLUS", "MINUS")
_MUL_OPS = ("ELEM_MUL", "HADAMARD", "MAT_MUL", "DIV")
_CHAIN_OPS = ("ELEM_MUL", "MAT_MUL")  # and juxtaposition
_ORDINARY_STARS = ("*", "\\ast")
"""LaTeX's ordinary product signs: a matrix product when the inner sizes agree, else elementwise on equal shapes."""
_POSTFIX = ("element", "transpose", "power", "hpower")
_ELEMENTWISE_FUNCS = ("tanh", "sigmoid", "relu", "step", "exp", "log", "sech")
_NODE_INPUT = {"h": "a", "yhat": "z", "L": "yhat"}
"""The node whose shape a node function's argument must have: h_t = tanh(a_t), yhat_t = softmax(z_t), L_t = CE(yhat_t)."""


_FEEDS = {
    "h": frozenset({"x", "W_xh", "W_hh", "b_h", "h", "a"}),
    "yhat": frozenset({"x", "W_xh", "W_hh", "b_h", "h", "a", "W_hy", "b_y", "z"}),
    "L": frozenset({"x", "W_xh", "W_hh", "b_h", "h", "a", "W_hy", "b_y", "z", "yhat", "y"}),
}
"""The families a node's input is computed from (h_t's a_t from x, W_xh, W_hh, b_h, h_{t-1}, …)."""


def _downstream(node: Ref, ref: Ref) -> bool:
    """Whether ``ref`` is ``node`` itself or computed from it (h_2, a_2, z_1, yhat_1, L_1, L from h_1)."""
    if ref == node or ref.family == "L" and ref.step is None:
        return True
    t, s = node.step, ref.step
    assert t is not None
    if s is None:
        return False
    if node.family == "h":
        return (ref.family in ("h", "a") and s > t) or (ref.family in ("z", "yhat", "L") and s >= t)
    if node.family == "yhat":
        return ref.family == "L" and s == t
    return False


def _holds_input(node: Ref, expr: Expr) -> str | None:
    """Why the brackets of ``node(expr)`` do not hold the node's input, or None when they do: a value of
    a family the input is computed from (at any step: a wrong step is a slip, still an application) and
    nothing computed from the node (nor the node itself), no partial.

    ``t_1(x_1 W_xh + h_0 W_hh)`` holds h_1's input; ``h_1 (1 - h_1)`` holds h_1 itself,
    ``h_2 (yhat_2 - y_2)^T`` yhat_2, which is computed from h_2.
    """
    found = False
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, (Partial, Chain)):
            return "a partial"
        if isinstance(e, Call) and e.func == "softmax" and node.family == "L":
            found = True
        if isinstance(e, (Name, Apply)):
            ref = e.ref if isinstance(e, Name) else e.node
            if _downstream(node, ref):
                return f"{ref} itself" if ref == node else f"{ref}, which is computed from {node}"
            found = found or ref.family in _FEEDS[node.family]
            if isinstance(e, Apply):
                continue  # what an applied node holds was judged when it was read
        stack.extend(children(e))
    return None if found else f"nothing {node}'s input is computed from"


def _can_multiply(a: Sequence[int], b: Sequence[int]) -> bool:
    """Whether ``a @ b`` (or a scalar times anything) has a shape."""
    return tuple(a) == (1, 1) or tuple(b) == (1, 1) or a[1] == b[0]


def fmt_shape(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


@dataclass(frozen=True, slots=True)
class Ambiguity:
    """A node name before brackets that reads both as its function applied and as a product."""

    position: int
    bracket: int
    """Where its opening bracket is (the key :attr:`Resolver.flip` uses)."""
    text: str
    """The name and its brackets as written (spaces collapsed)."""
    node: str
    func: str
    applied: bool
    """The rule's reading: the function applied (True) or the product."""

    def reading(self, applied: bool) -> str:
        """The reading, in words: ``h_1 (1 - h_1) as sigmoid(…)`` or ``… as the product h_1 · (…)``."""
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "…"
        return f"{shown} as {self.func}(…)" if applied else f"{shown} as the product {self.node} · (…)"


@dataclass(frozen=True, slots=True)
class _Open:
    """A constant whose size its context fixes: the all-ones vector or the identity matrix, with what
    has been done to it so far (``build(shape)`` makes the sized value)."""

    kind: str
    """"vec" (a bare all-ones vector: a column, or a row beside a row), "col", "row" (oriented by a
    transpose) or "eye" (the identity)."""
    what: str
    """As written, for messages."""
    build: Callable[[tuple[int, int]], Expr]
    scalar: bool = False
    """Whether it met a 1×1 value (not a literal number): with nothing else to size it, it is then 1×1."""


@dataclass(frozen=True, slots=True)
class _R:
    """A resolved subexpression and where it came from."""

    expr: Expr
    start: int
    end: int
    links: tuple[tuple[str, str], ...] = ()
    """For a Partial or Chain: (numerator, denominator) as the user spelled them, per factor."""
    open: "_Open | None" = None
    """A constant sized by its context (``\\mathbf{1}``, ``I``) not yet sized; ``expr`` is a placeholder."""

    def moved(self, start: int, end: int) -> "_R":
        """The same value, spanning ``start..end`` (a group's brackets, a sign)."""
        return _R(self.expr, start, end, self.links, self.open)

    @property
    def shape(self) -> Shape:
        return self.expr.shape


def _kids(tree: RawTree) -> list[Any]:
    """A tree's children. lark types them as ``Tree | Token``; the grammar fixes which each one is."""
    return tree.children


def _start(tok: Token) -> int:
    return tok.start_pos or 0


def _end(tok: Token) -> int:
    return tok.end_pos or 0


def _first_token(node: RawTree | Token) -> Token:
    while isinstance(node, Tree):
        node = _kids(node)[0]
    return node


def _last_token(node: RawTree | Token) -> Token:
    while isinstance(node, Tree):
        node = _kids(node)[-1]
    return node


def _factors(expr: Expr) -> tuple[Partial, ...]:
    if isinstance(expr, Chain):
        return expr.factors
    assert isinstance(expr, Partial)
    return (expr,)


def _partial_display(links: tuple[tuple[str, str], ...]) -> str:
    return f"∂{links[0][0]}/∂{links[-1][1]}"


class Resolver:
    """Builds the AST of one parse. Not reusable across texts."""

    def __init__(
        self,
        model: RNN,
        names: Names,
        text: str,
        latex: bool,
        payloads: dict[tuple[str, int], object],
        flip: frozenset[int] = frozenset(),
        transpose_reversed: bool = False,
    ) -> None:
        self.model = model
        self.names = names
        self.text = text
        self.latex = latex
        self.payloads = payloads
        self.env: dict[str, int] = {}
        self._shapes: dict[Ref, tuple[int, int]] = {}
        self.flip: frozenset[int] = flip
        self.transpose_reversed = transpose_reversed
        self.reversed: list[tuple[str, str]] = []
        """Adjacent partials that link right to left, read as a matrix product (∂h_2/∂h_1 · ∂L/∂h_2)."""
        self.ambiguous: list[Ambiguity] = []
        """Node names before brackets that read both ways (in text order), with the rule's reading."""
        self._ambiguous_seen: set[int] = set()
        self.count = 0
        self.depth = 0

    # -- entry --------------------------------------------------------------

    def top(self, tree: RawTree, *, allow_tensor: bool = False) -> tuple[Expr, Expr | None]:
        """The expression (and the left side of ``lhs = rhs``)."""
        if tree.data == "equation":
            left_tree, eq, right_tree = _kids(tree)
            left = self._ordinary(self._r(left_tree))
            right = self._ordinary(self._r(right_tree))
            if left.shape != right.shape:
                raise ShapeError(
                    f"the two sides of = have different shapes: {fmt_shape(left.shape)} and {fmt_shape(right.shape)}",
                    text=self.text,
                    position=_start(eq),
                    hint="check the left side names what the right side computes",
                )
            return right.expr, left.expr
        result = self._r(_kids(tree)[0])
        if not (allow_tensor and isinstance(result.expr, Partial)):
            result = self._ordinary(result)
        return result.expr, None

    # -- plumbing ------------------------------------------------------------

    def _r(self, node: RawTree) -> _R:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise LimitError(
                    "the expression nests too deeply",
                    text=self.text,
                    position=_start(_first_token(node)),
                    hint=f"at most {MAX_DEPTH} levels of operators and brackets",
                )
            handler: Callable[[RawTree], _R] = getattr(self, "_rule_" + str(node.data))
            return handler(node)
        finally:
            self.depth -= 1

    def _node(self, cls: type, *args: object) -> Expr:
        self.count += 1
        if self.count > MAX_NODES:
            raise LimitError(
                f"the expression has more than {MAX_NODES} nodes (sums unrolled)",
                text=self.text,
                position=None,
                hint="shorten the expression, or use a model with fewer steps",
            )
        return cls(*args)  # type: ignore[no-any-return]

    def _shape(self, ref: Ref) -> tuple[int, int]:
        shape = self._shapes.get(ref)
        if shape is None:
            shape = self._shapes[ref] = self.model.shape(ref)
        return shape

    def _payload(self, tok: Token) -> object:
        return self.payloads.get((tok.type, _start(tok)))

    def _snippet(self, r: _R) -> str:
        raw = " ".join(self.text[r.start : r.end].split())
        if len(raw) > 24:
            return "…"
        simple = isinstance(r.expr, (Name, Number, Element, Call, Apply, Partial, Transpose))
        return raw if simple or raw.startswith("(") else f"({raw})"

    def _ordinary(self, r: _R, *, open_ok: bool = False) -> _R:
        """``r`` used as an ordinary value: a Jacobian without matrix form is an error here, and so is a
        constant its context has not sized (unless ``open_ok``: a product or sum will size it)."""
        if r.open is not None and not open_ok:
            if not r.open.scalar:
                raise self._unsized(r)
            r = _R(r.open.build((1, 1)), r.start, r.end)  # only 1×1 values around it (one hidden unit)
        if isinstance(r.expr, (Partial, Chain)) and len(r.expr.shape) > 2:
            shown = _partial_display(r.links) if r.links else "this partial"
            axes = len(r.expr.shape)
            raise ShapeError(
                f"{shown} is a {axes}-axis Jacobian ({fmt_shape(r.expr.shape)}); use it inside a chain of partials",
                text=self.text,
                position=r.start,
                hint="chain it with partials that link, down to a scalar: ∂L_1/∂yhat_1 · ∂yhat_1/∂W_hy",
            )
        return r

    def _unsized(self, r: _R) -> ShapeError:
        assert r.open is not None
        eye = r.open.kind == "eye"
        return ShapeError(
            f"the size of {r.open.what} is not fixed here",
            text=self.text,
            position=r.start,
            hint=f"{r.open.what} takes its size from what it multiplies or is added to"
            + (" (I·W, I - A)" if eye else r" (\mathbf{1}^\top v, v - \mathbf{1})")
            + "; or write "
            + ("diag(ones(1, n))" if eye else "ones(n, 1) or ones(1, n)"),
        )

    def _size(self, r: _R, other: _R, shape: tuple[int, int]) -> _R:
        """The open constant ``r`` at ``shape``, checked against the operand that fixed it."""
        assert r.open is not None
        if shape == (1, 1) and other.shape != (1, 1):
            raise ShapeError(
                f"{r.open.what} would be 1×1 here, beside a {fmt_shape(other.shape)} operand",
                text=self.text,
                position=r.start,
                hint=r"check the orientation: \mathbf{1}^\top v needs a column v, v \mathbf{1} a row v",
            )
        return _R(r.open.build(shape), r.start, r.end)

    def _open_elementwise(self, r: _R, other: _R) -> _R:
        """An open constant sized for an elementwise operation with ``other`` (not 1×1)."""
        assert r.open is not None
        rows, cols = other.shape
        kind = r.open.kind
        if (
            (kind == "eye" and rows == cols)
            or (kind == "vec" and 1 in (rows, cols))
            or (kind == "col" and cols == 1)
            or (kind == "row" and rows == 1)
        ):
            return self._size(r, other, (rows, cols))
        described = {"vec": "a vector of ones", "col": "a column of ones", "row": "a row of ones", "eye": "square"}
        raise ShapeError(
            f"{r.open.what} ({described[kind]}) cannot match a {fmt_shape(other.shape)} operand elementwise",
            text=self.text,
            position=r.start,
            hint="the identity is square" if kind == "eye" else "transpose one side",
        )

    def _open_matmul(self, left: _R, right: _R) -> tuple[_R, _R]:
        """Size the open side(s) of a matrix product by the other side (neither side 1×1)."""
        if left.open is not None and right.open is not None:
            raise self._unsized(left)
        if left.open is not None:
            k, rows = left.open.kind, right.shape[0]
            if k in ("vec", "col"):  # a column times anything is an outer product: its size is not fixed
                raise self._unsized(left)
            return self._size(left, right, (1, rows) if k == "row" else (rows, rows)), right
        assert right.open is not None
        k, cols = right.open.kind, left.shape[1]
        if k == "row":
            raise self._unsized(right)
        return left, self._size(right, left, (cols, 1) if k in ("vec", "col") else (cols, cols))

    def _open_scaled(self, r: _R, scalar: _R, sym: str, left: bool) -> _R:
        """An open constant with a 1×1 value on one side of ``sym``: still open, the value applied when sized."""
        o = r.open
        assert o is not None

        def build(shape: tuple[int, int]) -> Expr:
            inner = o.build(shape)
            first, second = (inner, scalar.expr) if left else (scalar.expr, inner)
            return self._node(Binary, sym, first, second, shape)

        scalar_value = o.scalar or not isinstance(scalar.expr, Number)
        return _R(r.expr, min(r.start, scalar.start), max(r.end, scalar.end), (), _Open(o.kind, o.what, build, scalar_value))

    # -- sums and additive chains ----------------------------------------------

    def _rule_binop(self, tree: RawTree) -> _R:
        if _kids(tree)[1].type in _ADD_OPS:
            return self._additive(tree)
        return self._product(tree)

    def _rule_juxt(self, tree: RawTree) -> _R:
        return self._product(tree)

    def _additive(self, tree: RawTree) -> _R:
        terms: list[tuple[Token, RawTree]] = []
        node: RawTree = tree
        while isinstance(node, Tree) and node.data == "binop" and _kids(node)[1].type in _ADD_OPS:
            terms.append((_kids(node)[1], _kids(node)[2]))
            node = _kids(node)[0]
        terms.reverse()
        acc = self._ordinary(self._r(node), open_ok=True)
        for op, term in terms:
            right = self._ordinary(self._r(term), open_ok=True)
            acc = self._elementwise("+" if op.type == "PLUS" else "-", acc, right, op)
        return acc

    def _rule_sum(self, tree: RawTree) -> _R:
        tok, body = _kids(tree)
        spec = self._payload(tok)
        assert isinstance(spec, SumSpec)
        T = self.model.steps
        low, high = self._bound(spec.low, tok), self._bound(spec.high, tok)
        # An index may run over 0..T-1 with h_{t+1} in the body: each name in the body must still be a
        # step of the model, which resolving it checks.
        if not (0 <= low <= T and 0 <= high <= T):
            raise LimitError(
                f"the sum runs over {low}..{high}, beyond the model's steps 0..{T}",
                text=self.text,
                position=_start(tok),
                hint=f"sum bounds lie within 0..T (T={T}): sum_{{{spec.var}=1}}^{{T}}, or sum_{{{spec.var}=0}}^{{T-1}} over h_{{{spec.var}+1}}",
            )
        if low > high:
            raise ParseError(
                f"the sum over {low}..{high} is empty",
                text=self.text,
                position=_start(tok),
                hint="the lower bound must not exceed the upper bound",
            )
        missing = object()
        saved = self.env.get(spec.var, missing)
        acc: _R | None = None
        try:
            for step in range(low, high + 1):
                self.env[spec.var] = step
                term = self._ordinary(self._r(body))
                acc = term if acc is None else self._elementwise("+", acc, term, tok)
        finally:
            if saved is missing:
                self.env.pop(spec.var, None)
            else:
                self.env[spec.var] = saved  # type: ignore[assignment]
        assert acc is not None
        return _R(acc.expr, _start(tok), acc.end)

    def _bound(self, bound: Bound, tok: Token) -> int:
        kind, offset = bound
        if kind == "":
            return offset
        if kind in self.env:
            return self.env[kind] + offset
        if kind == "T":
            return self.model.steps + offset
        raise UnknownNameError(
            f"the sum bound {kind} is not bound here",
            text=self.text,
            position=_start(tok),
            hint="a bound is a number, T, or the index of an enclosing sum (sum_t sum_{k=1}^{t} …)",
        )

    # -- products and chains -------------------------------------------------

    def _product(self, tree: RawTree) -> _R:
        items: list[tuple[Token | None, RawTree]] = []
        node: RawTree = tree
        while isinstance(node, Tree) and (
            node.data == "juxt" or (node.data == "binop" and _kids(node)[1].type in _MUL_OPS)
        ):
            if node.data == "juxt":
                items.append((None, _kids(node)[1]))
            else:
                items.append((_kids(node)[1], _kids(node)[2]))
            node = _kids(node)[0]
        items.reverse()
        # A leading sign belongs to the chain it starts: -dA/dB * dB/dC is -(∂A/∂B · ∂B/∂C).
        signs: list[Token] = []
        first_tree = node
        while isinstance(first_tree, Tree) and first_tree.data in ("neg", "pos"):
            signs.append(_kids(first_tree)[0])
            first_tree = _kids(first_tree)[1]
        first = self._r(first_tree)
        second = self._r(items[0][1]) if items else None  # resolved in order: errors come in text order
        if signs:
            chains_first = (
                second is not None
                and (items[0][0] is None or items[0][0].type in _CHAIN_OPS)
                and isinstance(first.expr, (Partial, Chain))
                and isinstance(second.expr, (Partial, Chain))
            )
            if not chains_first:
                first = self._signed(first, signs)
                signs = []
        operands = [first]
        ops: list[Token | None] = []
        for position, (op, item) in enumerate(items):
            right = second if position == 0 else self._r(item)
            assert right is not None
            left = operands[-1]
            chains = op is None or op.type in _CHAIN_OPS
            if chains and isinstance(left.expr, (Partial, Chain)) and isinstance(right.expr, (Partial, Chain)):
                if not self._reversed(left, right):
                    operands[-1] = self._link(left, right, op)
                    continue
                # ∂h_2/∂h_1 ∂L/∂h_2 links right to left: a Jacobian times a gradient, an ordinary product
                # (right for scalars; for column vectors the chain rule wants the Jacobian transposed).
                shown = (_partial_display(left.links), _partial_display(right.links))
                if shown not in self.reversed:
                    self.reversed.append(shown)
                if self.transpose_reversed:
                    left = self._ordinary(left)
                    operands[-1] = _R(self._node(Transpose, left.expr, left.shape[::-1]), left.start, left.end)
                operands.append(right)
                ops.append(op)
            else:
                operands.append(right)
                ops.append(op)
        if len(operands) == 1:
            acc = operands[0]
        else:
            acc = self._fold(operands, ops)
        return self._signed(acc, signs) if signs else acc

    def _fold(self, operands: list[_R], ops: list[Token | None]) -> _R:
        """Multiply from the left. ``a / b c`` is ``(a / b) c``; when that has no shape, ``a / (b c)``
        (an inline fraction whose denominator runs on: ``\\exp(z) / \\mathbf{1}^\\top \\exp(z)``)."""
        factors = [self._ordinary(r, open_ok=True) for r in operands]
        acc = factors[0]
        k = 0
        while k < len(ops):
            op = ops[k]
            if op is not None and op.type == "DIV" and k + 1 < len(ops) and ops[k + 1] is None:
                end = k + 1
                while end < len(ops) and ops[end] is None:
                    end += 1
                run = factors[k + 2 : end + 1]  # the juxtaposed factors after the divisor
                try:
                    value = self._multiply(op, acc, factors[k + 1])
                    for f in run:
                        value = self._multiply(None, value, f)
                except ShapeError as err:
                    try:
                        den = factors[k + 1]
                        for f in run:
                            den = self._multiply(None, den, f)
                        value = self._multiply(op, acc, den)
                    except ShapeError:
                        raise err from None
                acc, k = value, end
                continue
            acc = self._multiply(op, acc, factors[k + 1])
            k += 1
        return acc

    def _signed(self, r: _R, signs: list[Token]) -> _R:
        """Apply prefix signs (innermost last in ``signs``) to a resolved value."""
        for sign in reversed(signs):
            if sign.type == "MINUS" and r.open is not None:
                o = r.open
                opened = _Open(o.kind, o.what, lambda shape, o=o: self._node(Neg, o.build(shape), shape), o.scalar)
                r = _R(r.expr, _start(sign), r.end, (), opened)
            elif sign.type == "MINUS":
                r = self._ordinary(r)
                r = _R(self._node(Neg, r.expr, r.shape), _start(sign), r.end)
            else:
                r = r.moved(_start(sign), r.end)
        return r

    def _reversed(self, left: _R, right: _R) -> bool:
        """Whether two adjacent partials link right to left only (∂B/∂C · ∂A/∂B) and multiply as matrices."""
        lf, rf = _factors(left.expr), _factors(right.expr)
        if (lf[-1].den, lf[-1].den_index) == (rf[0].num, rf[0].num_index):
            return False
        if (rf[-1].den, rf[-1].den_index) != (lf[0].num, lf[0].num_index):
            return False
        if len(left.shape) != 2 or len(right.shape) != 2:
            return False
        return _can_multiply(left.shape, right.shape)

    def _link(self, left: _R, right: _R, op: Token | None) -> _R:
        lf = _factors(left.expr)
        rf = _factors(right.expr)
        a, b = lf[-1], rf[0]
        if (a.den, a.den_index) != (b.num, b.num_index):
            la, rb = left.links[-1], right.links[0]
            raise ChainError(
                f"chain breaks between ∂{la[0]}/∂{la[1]} and ∂{rb[0]}/∂{rb[1]}: {la[1]} is not {rb[0]}",
                text=self.text,
                position=_start(op) if op is not None else right.start,
                hint="in a chain of partials each denominator must be the next numerator",
            )
        factors = lf + rf
        first, last = factors[0], factors[-1]
        num_shape = (1, 1) if first.num_index is not None else self._shape(first.num)
        den_shape = (1, 1) if last.den_index is not None else self._shape(last.den)
        chain = self._node(
            Chain,
            factors,
            jacobian_shape(num_shape, den_shape),
            squeeze_shape(num_shape) + squeeze_shape(den_shape),
        )
        return _R(chain, left.start, right.end, left.links + right.links)

    def _multiply(self, op: Token | None, left: _R, right: _R) -> _R:
        if (
            op is not None
            and op.type == "MAT_MUL"
            and str(op) in _ORDINARY_STARS
            and left.shape == right.shape
            and left.open is None
            and right.open is None
        ):
            if not _can_multiply(left.shape, right.shape):  # LaTeX's * between two 1×H rows: elementwise
                return self._elementwise("*", left, right, op)
        if op is None or op.type == "MAT_MUL":
            return self._matmul(op, left, right)
        return self._elementwise("/" if op.type == "DIV" else "*", left, right, op)

    def _op_desc(self, op: Token | None) -> tuple[str, str, int | None]:
        """(description, symbol, position) of an operator token (None: juxtaposition)."""
        if op is None:
            return "juxtaposition (matrix product)", "·", None
        text = str(op)
        if op.type == "MAT_MUL":
            return f"{text} (matrix product)", text, _start(op)
        if op.type in ("ELEM_MUL", "HADAMARD"):
            return f"{text} (elementwise)", text, _start(op)
        if op.type == "DIV":
            return f"{text} (elementwise division)", text, _start(op)
        if op.type == "FRAC":
            return r"\frac (elementwise division)", "/", _start(op)
        if op.type == "SUM":
            return "a sum over steps", "+", _start(op)
        return text, text, _start(op)

    def _elementwise(self, sym: str, left: _R, right: _R, op: Token) -> _R:
        if left.open is not None or right.open is not None:
            if left.open is not None and right.open is not None:
                raise self._unsized(left)
            opened, other = (left, right) if left.open is not None else (right, left)
            if other.shape == (1, 1):
                return self._open_scaled(opened, other, sym, left=opened is left)
            sized = self._open_elementwise(opened, other)
            left, right = (sized, right) if opened is left else (left, sized)
        sa, sb = left.shape, right.shape
        if sa == sb or sb == (1, 1):
            shape = sa
        elif sa == (1, 1):
            shape = sb
        else:
            desc, shown, pos = self._op_desc(op)
            hints = []
            if sym == "*" and sa[1] == sb[0]:
                hints.append(r"did you mean \cdot (matrix product)?" if self.latex else "did you mean @ (matrix product)?")
            if sa == (sb[1], sb[0]):
                t = "^T" if self.latex else ".T"
                hints.append(f"transpose one side ({self._snippet(right)}{t})")
            if not hints:
                hints.append("the shapes must be equal, or one side 1×1: there is no broadcasting")
            raise ShapeError(
                f"shape mismatch in {desc}: {fmt_shape(sa)} {shown} {fmt_shape(sb)}",
                text=self.text,
                position=pos,
                hint="; ".join(hints),
            )
        node = self._node(Binary, sym, left.expr, right.expr, shape)
        return _R(node, left.start, right.end)

    def _matmul(self, op: Token | None, left: _R, right: _R, *, extra_hint: str = "") -> _R:
        if left.open is not None or right.open is not None:
            opened, other = (left, right) if left.open is not None else (right, left)
            if other.open is None and other.shape == (1, 1):
                return self._open_scaled(opened, other, "*", left=opened is left)
            left, right = self._open_matmul(left, right)
        sa, sb = left.shape, right.shape
        if sa == (1, 1) or sb == (1, 1):
            node = self._node(Binary, "*", left.expr, right.expr, sb if sa == (1, 1) else sa)
        elif sa[1] == sb[0]:
            node = self._node(Binary, "@", left.expr, right.expr, (sa[0], sb[1]))
        else:
            desc, shown, pos = self._op_desc(op)
            if pos is None:
                pos = right.start
            raise ShapeError(
                f"shape mismatch in {desc}: {fmt_shape(sa)} {shown} {fmt_shape(sb)}",
                text=self.text,
                position=pos,
                hint=extra_hint + self._matmul_hint(left, right),
            )
        return _R(node, left.start, right.end)

    def _matmul_hint(self, left: _R, right: _R) -> str:
        sa, sb = left.shape, right.shape
        t = "^T" if self.latex else ".T"
        at = r"\cdot" if self.latex else "@"
        star = r"\odot" if self.latex else "*"
        lt, rt = self._snippet(left), self._snippet(right)
        left_ok, right_ok = sa[0] == sb[0], sa[1] == sb[1]
        if left_ok and isinstance(left.expr, Transpose):
            hint = "drop the transpose of the left side"
        elif right_ok and isinstance(right.expr, Transpose):
            hint = "drop the transpose of the right side"
        elif left_ok and right_ok:
            hint = f"transpose one side ({lt}{t} {at} … or … {at} {rt}{t})"
        elif left_ok:
            hint = f"transpose the left side ({lt}{t} {at} …)"
        elif right_ok:
            hint = f"transpose the right side (… {at} {rt}{t})"
        else:
            hint = f"the inner sizes differ: {fmt_shape(sa)} has {sa[1]} columns, {fmt_shape(sb)} has {sb[0]} rows"
        if sa == sb:
            hint += f" or use {star} for elementwise"
        return hint

    # -- unary, postfix, powers ----------------------------------------------

    def _rule_neg(self, tree: RawTree) -> _R:
        signs: list[Token] = []  # a run of signs (-+-+…) is one level, not one per sign
        node: RawTree = tree
        while isinstance(node, Tree) and node.data in ("neg", "pos"):
            signs.append(_kids(node)[0])
            node = _kids(node)[1]
        return self._signed(self._r(node), signs)

    _rule_pos = _rule_neg

    def _rule_element(self, tree: RawTree) -> _R:
        return self._postfix_chain(tree)

    _rule_transpose = _rule_element
    _rule_power = _rule_element
    _rule_hpower = _rule_element
    _rule_name_call = _rule_element

    def _postfix_chain(self, tree: RawTree) -> _R:
        """Postfix operators, powers and node-function calls.

        Iterative over a run of postfix operators. When the base is ``name(arg)``
        read as a product (not a node function), the postfix operators belong to
        the parenthesized argument: ``W_hh (a + b)^T`` is ``W_hh · (a + b)^T``.
        """
        ops: list[RawTree] = []
        node: RawTree = tree
        while isinstance(node, Tree) and node.data in _POSTFIX:
            ops.append(node)
            node = _kids(node)[0]
        ops.reverse()
        if node.data == "name_call":
            name_r, arg_r, applied = self._name_call(node, ops)
            if applied is not None:
                return self._apply_ops(applied, ops)
            return self._call_as_product(name_r, self._apply_ops(arg_r, ops))
        return self._apply_ops(self._r(node), ops)

    def _apply_ops(self, r: _R, ops: list[RawTree]) -> _R:
        for op in ops:
            if r.open is not None and op.data == "transpose":  # \mathbf{1}^\top: a row of ones
                o = r.open
                kind = {"vec": "row", "col": "row", "row": "col", "eye": "eye"}[o.kind]
                build: Callable[[tuple[int, int]], Expr] = (
                    lambda shape, o=o: self._node(Transpose, o.build((shape[1], shape[0])), shape)
                )
                r = _R(r.expr, r.start, _end(_kids(op)[1]), (), _Open(kind, o.what + "^T", build, o.scalar))
                continue
            r = self._ordinary(r)
            if op.data == "element":
                tok = _kids(op)[1]
                index = self._payload(tok)
                assert isinstance(index, tuple)
                idx = self._index(index, r.shape, _start(tok), self._snippet(r))
                r = _R(self._node(Element, r.expr, idx, (1, 1)), r.start, _end(tok))
            elif op.data == "transpose":
                tok = _kids(op)[1]
                rows, cols = r.shape
                r = _R(self._node(Transpose, r.expr, (cols, rows)), r.start, _end(tok))
            elif op.data == "hpower":
                tok = _kids(op)[1]
                k = self._payload(tok)
                assert isinstance(k, int)
                self._check_power(Fraction(k), _start(tok))
                r = _R(self._node(Power, r.expr, Fraction(k), False, r.shape), r.start, _end(tok))
            else:  # power
                _, tok, exponent_tree = _kids(op)
                k = self._exponent(exponent_tree)
                end = _end(_last_token(exponent_tree))
                rows, cols = r.shape
                matrix = tok.type == "CARET" and rows == cols and rows > 1
                if matrix and k.denominator != 1:
                    raise ShapeError(
                        f"a matrix power needs a whole-number exponent, not {k}",
                        text=self.text,
                        position=_start(tok),
                        hint=f"^ on a square matrix is the matrix power; for an elementwise power use "
                        + (r"^{\circ k}" if self.latex else "**"),
                    )
                r = _R(self._node(Power, r.expr, k, matrix, r.shape), r.start, end)
        return r

    def _exponent(self, tree: RawTree) -> Fraction:
        """A power's exponent: a literal (signed, parenthesized, or a fraction of literals)."""

        def literal(node: RawTree) -> Fraction | None:
            sign = 1
            while isinstance(node, Tree):
                if node.data == "neg":
                    sign, node = -sign, _kids(node)[1]
                elif node.data == "pos":
                    node = _kids(node)[1]
                elif node.data == "group":
                    node = _kids(node)[1]
                elif node.data == "number":
                    return sign * Fraction(str(_kids(node)[0]))
                else:
                    break
            if isinstance(node, Tree) and node.data in ("frac", "binop"):
                parts = (
                    (_kids(node)[2], _kids(node)[5])
                    if node.data == "frac"
                    else ((_kids(node)[0], _kids(node)[2]) if _kids(node)[1].type == "DIV" else None)
                )
                if parts is not None:
                    num, den = simple(parts[0]), simple(parts[1])
                    if num is not None and den:
                        return sign * num / den
            return None

        def simple(node: RawTree) -> Fraction | None:
            sign = 1
            while isinstance(node, Tree):
                if node.data == "neg":
                    sign, node = -sign, _kids(node)[1]
                elif node.data in ("pos", "group"):
                    node = _kids(node)[1]
                elif node.data == "number":
                    return sign * Fraction(str(_kids(node)[0]))
                else:
                    return None
            return None

        k = literal(tree)
        pos = _start(_first_token(tree))
        if k is None:
            raise ParseError(
                "the exponent must be a number",
                text=self.text,
                position=pos,
                hint=f"write a literal exponent such as h_1**2, W_hh^{{-1}} or x**(1/2) (|k| ≤ {MAX_POWER}); "
                "powers of powers like 9**9**9 are refused",
            )
        self._check_power(k, pos)
        return k

    def _check_power(self, k: Fraction, pos: int) -> None:
        if abs(k) > MAX_POWER:
            raise LimitError(
                f"the exponent {k} is too large",
                text=self.text,
                position=pos,
                hint=f"exponents are at most {MAX_POWER} in size",
            )

    def _index(self, index: tuple[int, ...], shape: Shape, pos: int, what: str) -> tuple[int, int]:
        rows, cols = shape[0], shape[1]
        if len(index) == 1:
            if rows == 1:
                idx = (0, index[0])
            elif cols == 1:
                idx = (index[0], 0)
            else:
                raise ShapeError(
                    f"{what} is {fmt_shape(shape)}: one index is not enough",
                    text=self.text,
                    position=pos,
                    hint=f"give row and column: {what}[i,j]",
                )
        else:
            idx = (index[0], index[1])
        if not (0 <= idx[0] < rows and 0 <= idx[1] < cols):
            raise ShapeError(
                f"index [{','.join(map(str, index))}] is out of range for {what} ({fmt_shape(shape)})",
                text=self.text,
                position=pos,
                hint=f"indices are 0-based: rows 0..{rows - 1}, columns 0..{cols - 1}",
            )
        return idx

    # -- atoms ----------------------------------------------------------------

    def _rule_number(self, tree: RawTree) -> _R:
        tok = _kids(tree)[0]
        kind = self._payload(tok)
        if kind in ("ones", "identity"):
            what = " ".join(self.text[_start(tok) : _end(tok)].split())
            build = self._ones if kind == "ones" else self._identity
            return _R(Number(Fraction(1)), _start(tok), _end(tok), (), _Open("vec" if kind == "ones" else "eye", what, build))
        return _R(self._node(Number, Fraction(str(tok))), _start(tok), _end(tok))

    def _ones(self, shape: tuple[int, int]) -> Expr:
        dims = tuple(self._node(Number, Fraction(d)) for d in shape)
        return self._node(Call, "ones", dims, shape)

    def _identity(self, shape: tuple[int, int]) -> Expr:
        return self._node(Call, "diag", (self._ones((1, shape[0])),), shape)

    def _rule_name(self, tree: RawTree) -> _R:
        return self._name_r(_kids(tree)[0])

    def _name_r(self, tok: Token) -> _R:
        spec = self._payload(tok)
        assert isinstance(spec, NameSpec)
        ref = self.names.resolve(spec, self.env)
        assert ref is not None
        shape = self._shape(ref)
        expr: Expr = self._node(Name, ref, shape)
        if spec.index is not None:
            idx = self._index(spec.index, shape, spec.start, spec.spelling)
            expr = self._node(Element, expr, idx, (1, 1))
        return _R(expr, spec.start, spec.end)

    def _rule_partial(self, tree: RawTree) -> _R:
        tok = _kids(tree)[0]
        spec = self._payload(tok)
        assert isinstance(spec, PartialSpec)
        num = self.names.resolve(spec.num, self.env)
        den = self.names.resolve(spec.den, self.env)
        assert num is not None and den is not None
        copy = self._check_copy(spec, num)
        num_shape, den_shape = self._shape(num), self._shape(den)
        num_index = den_index = None
        if spec.num.index is not None:
            num_index = self._index(spec.num.index, num_shape, spec.num.start, spec.num.spelling)
            num_shape = (1, 1)
        if spec.den.index is not None:
            den_index = self._index(spec.den.index, den_shape, spec.den.start, spec.den.spelling)
            den_shape = (1, 1)
        node = self._node(
            Partial,
            num,
            den,
            jacobian_shape(num_shape, den_shape),
            squeeze_shape(num_shape) + squeeze_shape(den_shape),
            num_index,
            den_index,
            "immediate" if copy else None,
        )
        return _R(node, spec.start, spec.end, ((spec.num.display, spec.den.display),))

    def _check_copy(self, spec: PartialSpec, num: Ref) -> bool:
        """``∂h^{(t)}/∂W^{(t)}``: a partial with respect to the copy of a parameter used at step t
        (Goodfellow §10.2.2) is only read for a numerator of that step, where it is ∂h_t/∂W with the
        earlier states held fixed (the immediate reading). True when the denominator is such a copy."""
        step = self.names.copy_step(spec.den, self.env)
        if step is None:
            return False
        if num.step == step:
            return True
        base = spec.den.spelling.rsplit("^", 1)[0]
        raise ParseError(
            f"∂{spec.num.display}/∂{spec.den.display}: {spec.den.spelling} is the copy of {base} used at step {step},"
            f" and {num} is not a node of step {step}",
            text=self.text,
            position=spec.den.start,
            hint=f"differentiate a node of step {step} (∂h^{{({step})}}/∂{base}^{{({step})}}), or write {base}"
            " without a step for the whole parameter",
        )

    def _rule_group(self, tree: RawTree) -> _R:
        open_, inner, close = _kids(tree)
        r = self._r(inner)
        return r.moved(_start(open_), _end(close))

    def _rule_frac(self, tree: RawTree) -> _R:
        frac, _, num, _, _, den, close = _kids(tree)
        left = self._ordinary(self._r(num), open_ok=True)
        right = self._ordinary(self._r(den), open_ok=True)
        r = self._elementwise("/", left, right, frac)
        return _R(r.expr, _start(frac), _end(close))

    # -- functions and node functions -------------------------------------------

    def _rule_call(self, tree: RawTree) -> _R:
        func_tok, _, args, close = _kids(tree)
        return self._function(func_tok, self._args(args), None, _end(close))

    def _rule_call_pow(self, tree: RawTree) -> _R:
        func_tok, caret, exponent, _, args, close = _kids(tree)
        return self._function(func_tok, self._args(args), (caret, exponent), _end(close))

    def _rule_call_bare(self, tree: RawTree) -> _R:
        func_tok, operand = _kids(tree)
        r = self._r(operand)
        return self._function(func_tok, [r], None, r.end)

    def _rule_call_bare_pow(self, tree: RawTree) -> _R:
        func_tok, caret, exponent, operand = _kids(tree)
        r = self._r(operand)
        return self._function(func_tok, [r], (caret, exponent), r.end)

    def _args(self, tree: RawTree) -> list[_R]:
        return [self._r(child) for child in _kids(tree) if isinstance(child, Tree)]

    def _function(self, tok: Token, args: list[_R], power: tuple[Token, RawTree] | None, end: int) -> _R:
        func = self._payload(tok)
        assert isinstance(func, str)
        pos = _start(tok)
        args = [self._ordinary(a) for a in args]
        arity = {"outer": (2,), "ones": (1, 2)}.get(func, (1,))
        if len(args) not in arity:
            want = " or ".join(map(str, arity))
            usage = {"outer": "outer(u, v)", "ones": "ones(r, c) or ones(n)"}.get(func, f"{func}(x)")
            raise ParseError(
                f"{func} takes {want} argument{'s' if arity != (1,) else ''}, not {len(args)}",
                text=self.text,
                position=pos,
                hint=f"write {usage}",
            )
        shapes = [a.shape for a in args]

        def need(cond: bool, message: str, hint: str) -> None:
            if not cond:
                raise ShapeError(message, text=self.text, position=pos, hint=hint)

        def is_vector(s: Shape) -> bool:
            return s[0] == 1 or s[1] == 1

        if func in _ELEMENTWISE_FUNCS:
            shape = shapes[0]
        elif func == "softmax":
            need(is_vector(shapes[0]), f"softmax of a {fmt_shape(shapes[0])} matrix", "softmax takes a vector (1×n or n×1)")
            shape = shapes[0]
        elif func == "diag":
            s = shapes[0]
            if s[0] == 1:
                shape = (s[1], s[1])
            elif s[1] == 1:
                shape = (s[0], s[0])
            else:
                need(s[0] == s[1], f"diag of a {fmt_shape(s)} matrix", "diag takes a vector (→ a diagonal matrix) or a square matrix (→ its diagonal)")
                shape = (1, s[0])
        elif func == "sum":
            shape = (1, 1)
        elif func == "outer":
            u, v = shapes
            need(
                is_vector(u) and is_vector(v),
                f"outer of {fmt_shape(u)} and {fmt_shape(v)}",
                "outer(u, v) takes two vectors and gives the matrix u_i v_j",
            )
            shape = (max(u), max(v))
        else:  # ones
            dims: list[int] = []
            for a in args:
                ok = isinstance(a.expr, Number) and a.expr.value.denominator == 1 and 1 <= a.expr.value <= 64
                if not ok:
                    raise ParseError(
                        "ones takes whole numbers 1..64",
                        text=self.text,
                        position=a.start,
                        hint="write ones(2, 3) or ones(3) (= 1×3)",
                    )
                dims.append(int(a.expr.value))  # type: ignore[union-attr]
            shape = (dims[0], dims[1]) if len(dims) == 2 else (1, dims[0])
        expr: Expr = self._node(Call, func, tuple(a.expr for a in args), shape)
        if power is not None:
            caret, exponent = power
            k = self._exponent(exponent)
            if k < 0:
                raise ParseError(
                    f"{func}^{{{k}}} would be an inverse function, which is not supported",
                    text=self.text,
                    position=_start(caret),
                    hint=f"for a reciprocal write 1/{func}(x)",
                )
            expr = self._node(Power, expr, k, False, shape)
        return _R(expr, pos, end)

    def _name_call(self, node: RawTree, ops: Sequence[RawTree] = ()) -> tuple[_R, _R, _R | None]:
        """``name(arg)``: (name, argument, the Apply when it is a node function applied).

        The rule (see the language README): the node's function is applied when the brackets have the
        shape of the node's input and hold what that input is computed from (``t_1(x_1 W_xh + h_0
        W_hh)``); otherwise it is a product (``h_1 (1 - h_1)``). When only one reading has a shape, that
        one (and an application whose brackets hold something else is refused). When both have a
        shape, and the same one, the rule's reading is taken and the other is recorded (:attr:`Resolver.ambiguous`), so
        that a checker can try both; ``flip`` (the brackets' positions) takes the other reading.
        """
        tok, open_, inner, close = _kids(node)
        name_r = self._name_r(tok)
        arg = self._r(inner)
        arg = arg.moved(_start(open_), _end(close))
        expected = self._node_input_shape(name_r.expr)
        if expected is None or not isinstance(name_r.expr, Name) or arg.shape != expected:
            return name_r, arg, None
        arg = self._ordinary(arg)
        ref = name_r.expr.ref
        why_not = _holds_input(ref, arg.expr)
        product = self._product_shape(name_r, arg, ops)
        fits = product is not None
        apply = why_not is None
        if fits and product == self._applied_shape(ref, arg, ops):
            key = _start(open_)
            if key not in self._ambiguous_seen:
                self._ambiguous_seen.add(key)
                self.ambiguous.append(
                    Ambiguity(
                        name_r.start,
                        key,
                        " ".join(self.text[name_r.start : _end(close)].split()),
                        str(ref),
                        self.model.node_function(ref.family).replace("_", "-"),
                        apply,
                    )
                )
            if key in self.flip:
                apply = not apply
        elif not fits and not apply:
            spelled = " ".join(self.text[name_r.start : name_r.end].split())
            func = self.model.node_function(ref.family).replace("_", "-")
            raise ShapeError(
                f"{spelled}(…) is neither {func} applied nor a product: its brackets hold {why_not} (so they are "
                f"not {_NODE_INPUT[ref.family]}_{ref.step}, {ref}'s input), and "
                f"{fmt_shape(name_r.shape)} · {fmt_shape(arg.shape)} has no shape",
                text=self.text,
                position=_start(open_),
                hint=(r"for the elementwise product write \odot" if self.latex else "for the elementwise product write *")
                + f"; to apply {func}, write it: "
                + (f"\\{func}(…)" if self.latex and func in ("tanh", "sigmoid") else f"{func}(…)"),
            )
        if apply:
            applied = self._node(Apply, ref, arg.expr, self._shape(ref))
            return name_r, arg, _R(applied, name_r.start, _end(close))
        return name_r, arg, None

    def _product_shape(self, name_r: _R, arg: _R, ops: Sequence[RawTree]) -> Shape | None:
        """The shape of ``name · (arg)ops``, or None when it has none."""
        try:
            right = self._apply_ops(arg, list(ops))
        except ExpressionError:
            return None
        a, b = name_r.shape, right.shape
        if not _can_multiply(a, b):
            return None
        return b if tuple(a) == (1, 1) else a if tuple(b) == (1, 1) else (a[0], b[1])

    def _applied_shape(self, ref: Ref, arg: _R, ops: Sequence[RawTree]) -> Shape | None:
        """The shape of ``node(arg)ops``, or None when it has none."""
        try:
            return self._apply_ops(_R(Apply(ref, arg.expr, self._shape(ref)), arg.start, arg.end), list(ops)).shape
        except ExpressionError:
            return None

    def _node_input_shape(self, expr: Expr) -> Shape | None:
        if not isinstance(expr, Name):
            return None
        ref = expr.ref
        if ref.family not in NODE_FAMILIES or ref.step is None or (ref.family == "h" and ref.step == 0):
            return None
        return self._shape(Ref(_NODE_INPUT[ref.family], ref.step))

    def _call_as_product(self, name_r: _R, arg: _R) -> _R:
        arg = self._ordinary(arg)
        extra = ""
        expected = self._node_input_shape(name_r.expr)
        if expected is not None:
            assert isinstance(name_r.expr, Name)
            ref = name_r.expr.ref
            func = self.model.node_function(ref.family).replace("_", "-")
            spelled = " ".join(self.text[name_r.start : name_r.end].split())
            extra = (
                f"{spelled}(…) applies {func} to a {fmt_shape(expected)} argument "
                f"(the shape of {_NODE_INPUT[ref.family]}_{ref.step}), but this one is {fmt_shape(arg.shape)}; "
                "as a product: "
            )
        return self._matmul(None, name_r, arg, extra_hint=extra)
