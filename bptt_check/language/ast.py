"""The typed, shaped expression tree that both surface syntaxes parse into.

Every node is a frozen dataclass with a ``shape``: a 2-tuple (rows, cols) for
ordinary values, scalars being (1, 1). A :class:`Partial` or :class:`Chain`
whose Jacobian has no matrix form carries a 3- or 4-axis tensor shape
(``squeeze(num) + squeeze(den)``) and is only allowed as a chain factor.

Sums over steps are unrolled at parse time (``sum_{t=1}^{T}`` becomes a chain
of ``+``), so the tree holds only concrete names. Evaluation lives in
:mod:`bptt_check.evaluate`, printing in :mod:`bptt_check.language.printer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal, Union

from ..model import Ref

Shape = tuple[int, ...]
BinaryOp = Literal["+", "-", "*", "/", "@"]
FUNCTIONS = ("tanh", "sigmoid", "relu", "step", "exp", "log", "sech", "softmax", "diag", "sum", "outer", "ones")
"""The whitelist of functions an expression may call (SPEC §4)."""


@dataclass(frozen=True)
class Number:
    """A literal, kept exact: ``0.5`` is Fraction(1, 2)."""

    value: Fraction
    shape: Shape = (1, 1)


@dataclass(frozen=True)
class Name:
    """A named value of the model: parameter, input or node (``W_hh``, ``h_1``, ``L``)."""

    ref: Ref
    shape: Shape


@dataclass(frozen=True)
class Element:
    """One entry of an ordinary value: ``W_hy[0,0]``, ``h_1[1]`` (= [0,1] on a row vector)."""

    operand: "Expr"
    index: tuple[int, int]
    shape: Shape = (1, 1)


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    shape: Shape


@dataclass(frozen=True)
class Binary:
    """``+ - * /`` are elementwise (a 1×1 operand broadcasts); ``@`` is the matrix product."""

    op: BinaryOp
    left: "Expr"
    right: "Expr"
    shape: Shape


@dataclass(frozen=True)
class Power:
    """``base ** exponent``: elementwise, or the matrix power when ``matrix`` (square base, integer exponent)."""

    base: "Expr"
    exponent: Fraction
    matrix: bool
    shape: Shape


@dataclass(frozen=True)
class Transpose:
    operand: "Expr"
    shape: Shape


@dataclass(frozen=True)
class Call:
    """A whitelisted function (see :data:`FUNCTIONS`).

    Elementwise: tanh sigmoid relu step exp log sech; ``relu(u)`` is max(u, 0)
    and ``step(u)`` the Heaviside step (1 where u > 0, else 0: relu's
    derivative). ``softmax`` acts on a vector.
    ``diag`` of a vector is the diagonal matrix, of a square matrix its diagonal
    as a row. ``sum`` adds every entry (1×1). ``outer(u, v)`` is the n×m matrix
    ``u_i v_j`` of two vectors. ``ones(r, c)`` (or ``ones(n)`` = 1×n) takes
    Number arguments.
    """

    func: str
    args: tuple["Expr", ...]
    shape: Shape


@dataclass(frozen=True)
class Apply:
    """The function that produces a node, applied to an argument (SPEC §3).

    The function is the model's (:meth:`bptt_check.model.RNN.node_function`):
    with the seed's model, ``t_1(u)`` with ``t`` aliased to ``h`` is
    ``tanh(u)``, ``s_2(v)`` is ``softmax(v)`` and ``c_2(p)`` is the
    cross-entropy ``-sum(y_2 * log(p))`` of step 2's target against ``p``;
    a sigmoid or relu model's ``h_1(u)`` is that activation, and a
    squared-error model's ``yhat_2(v)`` is ``v`` and ``L_2(p)`` is
    ``1/2 sum((p - y_2)**2)``. ``node`` is the node's Ref.
    """

    node: Ref
    arg: "Expr"
    shape: Shape


@dataclass(frozen=True)
class Partial:
    """∂num/∂den, the true value (total or immediate reading; see SPEC §4).

    ``num_index``/``den_index`` select one entry ((row, col), unsqueezed).
    ``shape`` follows :func:`bptt_check.model.jacobian_shape` of the (indexed)
    shapes; ``tensor_shape`` is always ``squeeze(num) + squeeze(den)``.
    """

    num: Ref
    den: Ref
    shape: Shape
    tensor_shape: Shape
    num_index: tuple[int, int] | None = None
    den_index: tuple[int, int] | None = None


@dataclass(frozen=True)
class Chain:
    """A product of linked partials, contracted over each shared node (SPEC §4).

    ``factors[i].den == factors[i+1].num`` (same Ref, same index). The value is
    the contraction of the factors' tensors; ``shape`` is that of
    ∂(first num)/∂(last den).
    """

    factors: tuple[Partial, ...]
    shape: Shape
    tensor_shape: Shape


Expr = Union[Number, Name, Element, Neg, Binary, Power, Transpose, Call, Apply, Partial, Chain]


@dataclass(frozen=True)
class Parsed:
    """What a text parses into: an expression, and the left side when the text was ``lhs = rhs``.

    ``syntax`` is the surface syntax actually used ("plain" or "latex").
    ``partials`` lists every partial in the expression (inside chains too), in order.
    """

    expr: Expr
    lhs: Expr | None = None
    syntax: Literal["plain", "latex"] = "plain"
    text: str = field(default="", compare=False)

    @property
    def partials(self) -> tuple[Partial, ...]:
        return tuple(p for p in walk(self.expr) if isinstance(p, Partial))


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct subexpressions of a node."""
    if isinstance(node, (Element, Neg, Transpose)):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Power):
        return (node.base,)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Apply):
        return (node.arg,)
    if isinstance(node, Chain):
        return node.factors
    return ()


def walk(node: Expr):
    """Every node of the tree, depth first, parents before children."""
    stack = [node]
    while stack:
        cur = stack.pop()
        yield cur
        stack.extend(reversed(children(cur)))
