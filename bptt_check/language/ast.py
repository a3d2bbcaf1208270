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

from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any, Callable, Literal, Sequence, TypeVar, Union

from ..model import Ref

Shape = tuple[int, ...]
BinaryOp = Literal["+", "-", "*", "/", "@"]
FUNCTIONS = ("tanh", "sigmoid", "relu", "step", "exp", "log", "sech", "softmax", "diag", "sum", "outer", "ones")
"""The whitelist of functions an expression may call."""


class _Node:
    """Structural equality, hashing and repr of the frozen nodes, without recursion.

    Trees are as deep as the answer is long (a sum of T terms is a left-deep
    chain of T ``+``), so the dataclass-generated ``__eq__``/``__hash__``/
    ``__repr__``, which recurse once per level, would hit Python's recursion
    limit. Here each walks the tree with an explicit stack: a node's hash is
    computed once from its own fields and its children's (cached) hashes, and
    equality compares each pair of nodes once (shared subtrees included).
    """

    __slots__ = ()

    def __hash__(self) -> int:
        cached = self.__dict__.get("_hash")
        return cached if cached is not None else _hash_tree(self)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, _Node):
            return NotImplemented
        return _equal_trees(self, other)

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __repr__(self) -> str:
        return _repr_tree(self)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # Pickled (and deep-copied) as a flat list, children first: the default would recurse once per
        # level, and would carry the cached hash, which depends on the process's string-hash seed.
        return _unflatten, (_flatten(self),)

    def __copy__(self) -> "_Node":
        return self  # immutable


@dataclass(frozen=True, eq=False, repr=False)
class Number(_Node):
    """A literal, kept exact: ``0.5`` is Fraction(1, 2)."""

    value: Fraction
    shape: Shape = (1, 1)


@dataclass(frozen=True, eq=False, repr=False)
class Name(_Node):
    """A named value of the model: parameter, input or node (``W_hh``, ``h_1``, ``L``)."""

    ref: Ref
    shape: Shape


@dataclass(frozen=True, eq=False, repr=False)
class Element(_Node):
    """One entry of an ordinary value: ``W_hy[0,0]``, ``h_1[1]`` (= [0,1] on a row vector)."""

    operand: "Expr"
    index: tuple[int, int]
    shape: Shape = (1, 1)


@dataclass(frozen=True, eq=False, repr=False)
class Neg(_Node):
    operand: "Expr"
    shape: Shape


@dataclass(frozen=True, eq=False, repr=False)
class Binary(_Node):
    """``+ - * /`` are elementwise (a 1×1 operand broadcasts); ``@`` is the matrix product."""

    op: BinaryOp
    left: "Expr"
    right: "Expr"
    shape: Shape


@dataclass(frozen=True, eq=False, repr=False)
class Power(_Node):
    """``base ** exponent``: elementwise, or the matrix power when ``matrix`` (square base, integer exponent)."""

    base: "Expr"
    exponent: Fraction
    matrix: bool
    shape: Shape


@dataclass(frozen=True, eq=False, repr=False)
class Transpose(_Node):
    operand: "Expr"
    shape: Shape


@dataclass(frozen=True, eq=False, repr=False)
class Call(_Node):
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


@dataclass(frozen=True, eq=False, repr=False)
class Apply(_Node):
    """The function that produces a node, applied to an argument.

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


@dataclass(frozen=True, eq=False, repr=False)
class Partial(_Node):
    """∂num/∂den, the true value (total or immediate reading; see docs/ARCHITECTURE.md).

    ``num_index``/``den_index`` select one entry ((row, col), unsqueezed).
    ``shape`` follows :func:`bptt_check.model.jacobian_shape` of the (indexed)
    shapes; ``tensor_shape`` is always ``squeeze(num) + squeeze(den)``.
    ``reading`` is set when the spelling itself fixes it: ``∂h^{(t)}/∂W^{(t)}``,
    the copy of W used at step t only, is the immediate partial by definition;
    ``None`` leaves it to the answer's reading policy.
    """

    num: Ref
    den: Ref
    shape: Shape
    tensor_shape: Shape
    num_index: tuple[int, int] | None = None
    den_index: tuple[int, int] | None = None
    reading: Literal["total", "immediate"] | None = None


@dataclass(frozen=True, eq=False, repr=False)
class Chain(_Node):
    """A product of linked partials, contracted over each shared node.

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
    ambiguous: tuple[Any, ...] = field(default=(), compare=False)
    """Node names before brackets that read both as the node's function applied and as a product
    (:class:`~bptt_check.language.resolve.Ambiguity`, each with the reading the rule took)."""
    other: "Parsed | None" = field(default=None, compare=False)
    """The same text with each of those read the other way (None when there are none)."""
    repairs: tuple[tuple[str, str, "Parsed"], ...] = field(default=(), compare=False)
    """(diagnosis code, message, the text repaired): slips the language can name, for a checker to test
    when the answer is wrong (a Jacobian times a gradient, ``∂h_2/∂h_1 ∂L/∂h_2``, missing its transpose)."""

    @property
    def partials(self) -> tuple[Partial, ...]:
        return tuple(p for p in walk(self.expr) if isinstance(p, Partial))


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {
    Number: (),
    Name: (),
    Element: ("operand",),
    Neg: ("operand",),
    Binary: ("left", "right"),
    Power: ("base",),
    Transpose: ("operand",),
    Call: ("args",),
    Apply: ("arg",),
    Partial: (),
    Chain: ("factors",),
}
"""Per node class, the fields that hold subexpressions (an Expr, or a tuple of them for ``args``/``factors``)."""

_ATOM_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls) if f.name not in kids) for cls, kids in _CHILD_FIELDS.items()
}
"""Per node class, every other field (names, numbers, shapes, indices): compared and hashed as values."""


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


def _atoms(node: _Node) -> tuple[object, ...]:
    return tuple(getattr(node, name) for name in _ATOM_FIELDS[type(node)])


def _hash_tree(root: _Node) -> int:
    """Hash every not-yet-hashed node under ``root``, children first, and cache each one's hash."""
    stack: list[_Node] = [root]
    while stack:
        node = stack[-1]
        if "_hash" in node.__dict__:
            stack.pop()
            continue
        kids = children(node)  # type: ignore[arg-type]
        pending = [k for k in kids if "_hash" not in k.__dict__]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        value = hash((type(node).__name__, _atoms(node), tuple(k.__dict__["_hash"] for k in kids)))
        node.__dict__["_hash"] = value  # frozen for users; the cache is invisible to eq, repr and pickling
    return root.__dict__["_hash"]  # type: ignore[no-any-return]


def _equal_trees(a: _Node, b: _Node) -> bool:
    """Structural equality, pair by pair from an explicit stack; each pair of nodes is compared once."""
    stack: list[tuple[_Node, _Node]] = [(a, b)]
    seen: set[tuple[int, int]] = set()
    while stack:
        x, y = stack.pop()
        if x is y:
            continue
        if type(x) is not type(y):
            return False
        hx, hy = x.__dict__.get("_hash"), y.__dict__.get("_hash")
        if hx is not None and hy is not None and hx != hy:
            return False
        key = (id(x), id(y))
        if key in seen:
            continue
        seen.add(key)
        if _atoms(x) != _atoms(y):
            return False
        kx, ky = children(x), children(y)  # type: ignore[arg-type]
        if len(kx) != len(ky):
            return False
        stack.extend(zip(kx, ky))
    return True


_REPR_LIMIT = 20_000
"""Characters of a repr: a DAG's unfolded repr can be exponentially long (a failing test prints it)."""


def _repr_tree(root: _Node) -> str:
    """The dataclass-style repr (``Binary(op='+', left=..., ...)``), written out from an explicit
    stack and cut after :data:`_REPR_LIMIT` characters."""
    out: list[str] = []
    size = 0
    stack: list[str | _Node] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            size += len(item)
            if size > _REPR_LIMIT:
                return "".join(out)[:_REPR_LIMIT] + "…"
            continue
        kids = _CHILD_FIELDS[type(item)]
        pieces: list[str | _Node] = [f"{type(item).__name__}("]
        for i, f in enumerate(fields(item)):  # type: ignore[arg-type]
            value = getattr(item, f.name)
            pieces.append(f"{', ' if i else ''}{f.name}=")
            if f.name not in kids:
                pieces.append(repr(value))
            elif isinstance(value, tuple):
                pieces.append("(")
                for j, v in enumerate(value):
                    pieces.extend([", "] if j else [])
                    pieces.append(v)
                pieces.append(",)" if len(value) == 1 else ")")
            else:
                pieces.append(value)
        pieces.append(")")
        stack.extend(reversed(pieces))
    return "".join(out)


def _flatten(root: _Node) -> list[tuple[type, tuple[object, ...]]]:
    """Every distinct node, children first, as (class, field values) with children as list positions."""
    order = postorder(root)  # type: ignore[arg-type]
    index = {id(n): i for i, n in enumerate(order)}
    flat = []
    for n in order:
        kids = _CHILD_FIELDS[type(n)]
        values = []
        for f in fields(n):
            v = getattr(n, f.name)
            if f.name in kids:
                v = tuple(index[id(k)] for k in v) if isinstance(v, tuple) else index[id(v)]
            values.append(v)
        flat.append((type(n), tuple(values)))
    return flat


def _unflatten(flat: list[tuple[type, tuple[object, ...]]]) -> _Node:
    """The inverse of :func:`_flatten` (shared nodes stay shared)."""
    built: list[_Node] = []
    for cls, values in flat:
        kids = _CHILD_FIELDS[cls]
        args = [
            (tuple(built[i] for i in v) if isinstance(v, tuple) else built[v]) if f.name in kids else v  # type: ignore[index,union-attr]
            for f, v in zip(fields(cls), values)
        ]
        built.append(cls(*args))
    return built[-1]


def postorder(root: Expr) -> list[Expr]:
    """Every distinct node under ``root`` (by identity: a shared subtree once), children before parents.

    The order to compute anything bottom-up in one pass without recursion, in
    time linear in the size of the DAG rather than of its unfolded tree.
    """
    order: list[Expr] = []
    done: set[int] = set()
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((k, False) for k in reversed(children(node)) if id(k) not in done)
    return order


_V = TypeVar("_V")


def bottom_up(
    root: Expr,
    kids: Callable[[Expr], Sequence[Expr]],
    combine: Callable[[Expr, Callable[[Expr], _V]], _V],
    *,
    stop: Callable[[Expr], _V | None] | None = None,
    memo: dict[int, tuple[Expr, _V]] | None = None,
) -> _V:
    """A value computed children first, each distinct node (by identity) once, without recursion.

    ``kids(node)`` lists the children whose values ``combine(node, value_of)``
    reads through ``value_of(child)``. ``stop(node)``, when given and not None,
    is the node's value and its children are not visited. ``memo`` (id → (node,
    value); the node is kept so its id stays its own) may be shared across
    calls, so that a subtree shared by several roots is computed once.
    """
    memo = {} if memo is None else memo
    stack = [root]
    while stack:
        cur = stack[-1]
        if id(cur) in memo:
            stack.pop()
            continue
        hit = stop(cur) if stop is not None else None
        if hit is not None:
            memo[id(cur)] = (cur, hit)
            stack.pop()
            continue
        todo = [k for k in kids(cur) if id(k) not in memo]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        memo[id(cur)] = (cur, combine(cur, lambda k: memo[id(k)][1]))
    return memo[id(root)][1]


def walk(node: Expr):
    """Every node of the tree, depth first, parents before children."""
    stack = [node]
    while stack:
        cur = stack.pop()
        yield cur
        stack.extend(reversed(children(cur)))
