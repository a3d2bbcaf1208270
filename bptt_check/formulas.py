"""The true gradients in matrix form, as expression trees: per step and per path.

Row convention. For the loss ``L_s`` of one step, the gradient
reaching the hidden state ``h_k`` (k ≤ s) along the only path
``h_k → h_{k+1} → … → h_s → z_s → L_s`` is

    g_s^{(s)} = (yhat_s - y_s) @ W_hy.T
    g_k^{(s)} = (g_{k+1}^{(s)} * f'_{k+1}) @ W_hh.T        (k < s)

where ``f'_k`` is the activation's derivative written in the nodes: ``1 - h_k**2``
(tanh), ``h_k * (1 - h_k)`` (sigmoid), ``step(a_k)`` (relu). With
``d_k^{(s)} = g_k^{(s)} * f'_k`` (the gradient at a_k) every gradient is a sum
of one term per (loss step s, step k):

    dL/dW_hh = Σ_s Σ_{k≤s} h_{k-1}.T @ d_k^{(s)}     dL/dW_xh = Σ_s Σ_{k≤s} x_k.T @ d_k^{(s)}
    dL/dW_hy = Σ_s h_s.T @ (yhat_s - y_s)            dL/dh_k  = Σ_{s≥k} g_k^{(s)}
    dL/dx_k  = Σ_{s≥k} d_k^{(s)} @ W_xh.T            dL/dh_0  = Σ_s d_1^{(s)} @ W_hh.T

``dL_s/dz_s = yhat_s - y_s`` for both losses (softmax with cross-entropy, or
the linear output with squared error); only ``dL_s/dyhat_s`` differs
(``-y_s / yhat_s`` against ``yhat_s - y_s``).

**Column convention.** Every value is the transpose of its row value, so a
column formula is the transpose of the row formula with each leaf read as the
transpose of its column value (:func:`to_convention`); the transposes are then
pushed down to the leaves, ``(AB)ᵀ = BᵀAᵀ``, and the formulas read like the
textbook's: ``dL/dW_hy = Σ_s (yhat_s - y_s) @ h_s.T``.

These terms are the decomposition the diagnosis works with, and their sum
is what ``derive`` prints (checked against the sympy truth in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterable, Iterator

from .language.ast import (
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
    Transpose,
    bottom_up,
)
from .model import L_TOTAL, RNN, Ref, jacobian_shape, squeeze_shape


@dataclass(frozen=True)
class Term:
    """One path's contribution to a gradient.

    ``loss_step`` is s (the L_s the path starts from), ``step`` is k (where the
    path reaches the parameter or input). ``kind`` says how the path is named:
    ``"path"`` (L_s back through h_{s-1} … h_k, or direct), ``"to_h"`` (a path
    that ends at the hidden state h_k itself), ``"output"`` (L_s at step s,
    no hidden state) or ``"loss"`` (L_s itself). The names and ``through`` are
    computed on demand: a gradient at T steps has T²/2 paths, and naming
    each eagerly would cost O(T³).
    """

    expr: Expr
    loss_step: int
    step: int
    kind: str = "path"

    @property
    def recurrent(self) -> bool:
        """Whether the path runs back through earlier hidden states (k < s)."""
        return self.step < self.loss_step

    @property
    def through(self) -> tuple[Ref, ...]:
        """The hidden states the path passes on the way back: h_{s-1} … h_k (none for an output path)."""
        if self.kind in ("output", "loss"):
            return ()
        return tuple(Ref("h", j) for j in range(self.loss_step - 1, self.step - 1, -1))

    @property
    def description(self) -> str:
        s, k = self.loss_step, self.step
        if self.kind == "output":
            return f"L_{s} at step {s}"
        if self.kind == "loss":
            return f"L_{s}"
        if self.kind == "to_h" and s > k:
            inner = [f"h_{j}" for j in range(s - 1, k, -1)] or [f"h_{s}"]
            return f"L_{s} back through {', '.join(inner)}"
        return _describe(s, k)


class Builder:
    """Builds shaped expression trees for one model (in its own convention: shapes from ``model.shape``)."""

    def __init__(self, model: RNN) -> None:
        self.model = model

    def name(self, ref: Ref) -> Name:
        return Name(ref, self.model.shape(ref))

    def matmul(self, a: Expr, b: Expr) -> Expr:
        return Binary("@", a, b, (a.shape[0], b.shape[1]))

    def mul(self, a: Expr, b: Expr) -> Expr:
        return Binary("*", a, b, a.shape if a.shape != (1, 1) else b.shape)

    def add(self, a: Expr, b: Expr) -> Expr:
        return Binary("+", a, b, a.shape if a.shape != (1, 1) else b.shape)

    def sub(self, a: Expr, b: Expr) -> Expr:
        return Binary("-", a, b, a.shape if a.shape != (1, 1) else b.shape)

    def div(self, a: Expr, b: Expr) -> Expr:
        return Binary("/", a, b, a.shape if a.shape != (1, 1) else b.shape)

    def neg(self, a: Expr) -> Expr:
        return Neg(a, a.shape)

    def T(self, a: Expr) -> Expr:
        return Transpose(a, a.shape[::-1])

    def number(self, q: int | Fraction) -> Number:
        return Number(Fraction(q))

    def square(self, a: Expr) -> Expr:
        return Power(a, Fraction(2), False, a.shape)

    def one_minus_square(self, a: Expr) -> Expr:
        """``1 - a**2``: tanh' written in terms of tanh."""
        return self.sub(self.number(1), self.square(a))

    def act_derivative(self, k: int, activation: str | None = None) -> Expr:
        """The activation's derivative at step k, written in the nodes (the model's activation by default):

        tanh ``1 - h_k**2``, sigmoid ``h_k * (1 - h_k)``, relu ``step(a_k)`` (1 where a_k > 0, else 0).
        """
        act = activation or self.model.activation
        h = self.name(Ref("h", k))
        if act == "tanh":
            return self.one_minus_square(h)
        if act == "sigmoid":
            return self.mul(h, self.sub(self.number(1), h))
        if act == "relu":
            a = self.name(Ref("a", k))
            return Call("step", (a,), a.shape)
        raise ValueError(f"no derivative for the activation {act!r}")

    def partial(self, num: Ref, den: Ref) -> Partial:
        ns, ds = self.model.shape(num), self.model.shape(den)
        return Partial(num, den, jacobian_shape(ns, ds), squeeze_shape(ns) + squeeze_shape(ds))

    def total(self, terms: list[Expr]) -> Expr:
        out = terms[0]
        for t in terms[1:]:
            out = self.add(out, t)
        return out


# -- the column convention: a transposition functor ---------------------------------------

_ELEMENTWISE_CALLS = ("tanh", "sigmoid", "exp", "log", "sech", "step", "relu", "softmax")
"""Calls that commute with the transpose: f(Aᵀ) = f(A)ᵀ (softmax acts on every entry of a vector)."""


def transpose(e: Expr) -> Expr:
    """``eᵀ`` with the transpose pushed down to the leaves.

    (AB)ᵀ = BᵀAᵀ; (A ± B)ᵀ, (A * B)ᵀ, (A / B)ᵀ elementwise; (−A)ᵀ = −Aᵀ; (Aᵀ)ᵀ = A;
    numbers and 1×1 values are their own transpose; elementwise calls, node
    functions and powers pass it through; diag(v)ᵀ = diag(vᵀ), outer(u, v)ᵀ = outer(v, u).
    ``e`` is expected to have its transposes at the leaves already. Children
    before parents, without recursion, each shared subtree once.
    """
    return bottom_up(e, _transposed_kids, _transpose_node)


def _transposed_kids(e: Expr) -> tuple[Expr, ...]:
    """The children whose transposes :func:`_transpose_node` uses."""
    if e.shape == (1, 1) and not isinstance(e, (Partial, Chain)):
        return ()
    if isinstance(e, Binary):
        return (e.left, e.right)
    if isinstance(e, Neg):
        return (e.operand,)
    if isinstance(e, Power):
        return (e.base,)
    if isinstance(e, Apply) and e.node.family in ("h", "yhat"):
        return (e.arg,)
    if isinstance(e, Call) and (e.func in _ELEMENTWISE_CALLS or (e.func == "diag" and 1 in e.args[0].shape)):
        return tuple(e.args)
    return ()


def _transpose_node(e: Expr, t: Callable[[Expr], Expr]) -> Expr:
    """``eᵀ`` given ``t``, the transposes of its children."""
    shape = e.shape[::-1]
    if e.shape == (1, 1) and not isinstance(e, (Partial, Chain)):
        return e
    if isinstance(e, Transpose):
        return e.operand
    if isinstance(e, Binary):
        if e.op == "@":
            return Binary("@", t(e.right), t(e.left), shape)
        return Binary(e.op, t(e.left), t(e.right), shape)
    if isinstance(e, Neg):
        return Neg(t(e.operand), shape)
    if isinstance(e, Power):
        return Power(t(e.base), e.exponent, e.matrix, shape)
    if isinstance(e, Apply) and e.node.family in ("h", "yhat"):
        return Apply(e.node, t(e.arg), shape)
    if isinstance(e, Call):
        if e.func in _ELEMENTWISE_CALLS or (e.func == "diag" and 1 in e.args[0].shape):
            return Call(e.func, tuple(t(a) for a in e.args), shape)
        if e.func == "outer":
            return Call("outer", e.args[::-1], shape)
    return Transpose(e, shape)


Memo = dict[int, tuple[Expr, Expr]]
"""Conversions already made, by node identity (each entry keeps its node alive)."""


def _column_partial(p: Partial, model: RNN) -> Partial:
    """The same partial on the column model (indices swap with the layout)."""
    ns, ds = model.shape(p.num), model.shape(p.den)
    ni = p.num_index[::-1] if p.num_index is not None else None
    di = p.den_index[::-1] if p.den_index is not None else None
    ns2 = (1, 1) if ni is not None else ns
    ds2 = (1, 1) if di is not None else ds
    return Partial(p.num, p.den, jacobian_shape(ns2, ds2), squeeze_shape(ns2) + squeeze_shape(ds2), ni, di)


def _is_gradient_like(tensor_shape: tuple[int, ...], num_axes: int) -> bool:
    """A scalar over anything, or anything over a scalar: its value is laid out like the non-scalar side."""
    return num_axes == 0 or num_axes == len(tensor_shape)


def _column(e: Expr, model: RNN, memo: Memo | None = None) -> Expr:
    """An expression on the column model whose value is the row expression ``e``'s value, transposed.

    ``memo`` (by node identity) keeps a subtree shared by several terms shared
    in the result, so that the evaluator computes it once. Children are
    converted before their parents without recursion (a tree is as deep as a
    long recursion over the steps).
    """
    memo = {} if memo is None else memo
    # _column_node reads its children's conversions from the memo, by calling _column on them
    return bottom_up(e, _column_kids, lambda node, _: _column_node(node, model, memo), memo=memo)


def _column_kids(e: Expr) -> tuple[Expr, ...]:
    """The children :func:`_column_node` converts."""
    if isinstance(e, Binary):
        return (e.left, e.right)
    if isinstance(e, (Transpose, Neg, Element)):
        return (e.operand,)
    if isinstance(e, Power):
        return (e.base,)
    if isinstance(e, Apply):
        return (e.arg,)
    if isinstance(e, Call) and e.func != "ones":
        return tuple(e.args)
    return ()


def _column_node(e: Expr, model: RNN, memo: Memo) -> Expr:
    shape = e.shape[::-1] if len(e.shape) == 2 else e.shape
    if isinstance(e, Number):
        return e
    if isinstance(e, Name):
        return Name(e.ref, shape)
    if isinstance(e, Transpose):
        return transpose(_column(e.operand, model, memo))
    if isinstance(e, Binary):
        left, right = _column(e.left, model, memo), _column(e.right, model, memo)
        if e.op == "@":
            return Binary("@", right, left, shape)
        return Binary(e.op, left, right, shape)
    if isinstance(e, Neg):
        return Neg(_column(e.operand, model, memo), shape)
    if isinstance(e, Power):
        return Power(_column(e.base, model, memo), e.exponent, e.matrix, shape)
    if isinstance(e, Element):
        inner = _column(e.operand, model, memo)
        if isinstance(inner, Transpose):  # Xᵀ[j, i] = X[i, j]
            return Element(inner.operand, e.index, e.shape)
        return Element(inner, e.index[::-1], e.shape)
    if isinstance(e, Apply):
        return Apply(e.node, _column(e.arg, model, memo), shape)
    if isinstance(e, Call):
        if e.func == "outer":
            u, v = (_column(a, model, memo) for a in e.args)
            return Call("outer", (v, u), shape)
        if e.func == "ones":
            return Call("ones", (Number(Fraction(shape[0])), Number(Fraction(shape[1]))), shape)
        if e.func == "diag" and 1 not in e.args[0].shape:  # the diagonal of a matrix, as a row
            inner = Call("diag", (_column(e.args[0], model, memo),), e.shape)
            return transpose(inner)
        return Call(e.func, tuple(_column(a, model, memo) for a in e.args), shape)
    if isinstance(e, (Partial, Chain)):
        factors = (e,) if isinstance(e, Partial) else e.factors
        new = tuple(_column_partial(f, model) for f in factors)
        out: Partial | Chain
        if isinstance(e, Partial):
            out = new[0]
        else:
            first, last = new[0], new[-1]
            ns = squeeze_shape(model.shape(first.num)) if first.num_index is None else ()
            ds = squeeze_shape(model.shape(last.den)) if last.den_index is None else ()
            nsh = model.shape(first.num) if first.num_index is None else (1, 1)
            dsh = model.shape(last.den) if last.den_index is None else (1, 1)
            out = Chain(new, jacobian_shape(nsh, dsh), ns + ds)
        num_axes = len(squeeze_shape(model.shape(factors[0].num))) if factors[0].num_index is None else 0
        if len(out.tensor_shape) != 2 or _is_gradient_like(out.tensor_shape, num_axes):
            return out  # a gradient is laid out like its variable; a tensor has one layout
        return Transpose(out, out.shape[::-1])  # a Jacobian [i, j] = ∂A_i/∂B_j is the same in both conventions
    raise TypeError(f"cannot convert {type(e).__name__} to the column convention")


def to_convention(expr: Expr, model: RNN, memo: Memo | None = None) -> Expr:
    """A row-convention expression rewritten for ``model``'s convention (unchanged for a row model).

    For a column model: every leaf ``X`` is read as ``X_colᵀ``, the whole is
    transposed (a column value is the transpose of the row value), and the
    transposes are pushed down to the leaves: ``h_t.T @ (yhat_t - y_t)`` becomes
    ``(yhat_t - y_t) @ h_t.T``. Vector-by-vector Jacobians are the same in
    both conventions and gradients of a scalar follow their variable's layout.
    Pass the same ``memo`` to convert many trees that share subtrees (mistake
    variants of one truth) at the cost of their changed parts only.
    """
    if not model.column:
        return expr
    return _column(expr, model, memo)


def _row(model: RNN) -> RNN:
    return model.replace(convention="row") if model.column else model


# -- the formulas (built on the row model, converted at the end) ---------------------------


def _losses(model: RNN, of: Ref) -> tuple[int, ...]:
    if of == L_TOTAL:
        return model.loss_steps
    if of.family == "L" and of.step is not None:
        return (of.step,)
    raise ValueError(f"formulas cover gradients of L or of one L_t, not of {of}")


def output_error(b: Builder, s: int) -> Expr:
    """dL_s/dz_s = yhat_s - y_s (softmax with cross-entropy, targets summing to 1; or squared error, linear output)."""
    return b.sub(b.name(Ref("yhat", s)), b.name(Ref("y", s)))


def output_gradient(b: Builder, s: int) -> Expr:
    """dL_s/dyhat_s: ``-y_s / yhat_s`` (cross-entropy) or ``yhat_s - y_s`` (squared error)."""
    if b.model.loss == "squared_error":
        return output_error(b, s)
    return b.neg(b.div(b.name(Ref("y", s)), b.name(Ref("yhat", s))))


def hidden_gradients(b: Builder, s: int) -> dict[int, Expr]:
    """g_k^{(s)} for k = s down to 1: the gradient of L_s at h_k along its only path (row convention)."""
    g: dict[int, Expr] = {s: b.matmul(output_error(b, s), b.T(b.name(Ref("W_hy"))))}
    for k in range(s - 1, 0, -1):
        d_next = b.mul(g[k + 1], b.act_derivative(k + 1))
        g[k] = b.matmul(d_next, b.T(b.name(Ref("W_hh"))))
    return g


def preactivation_gradient(b: Builder, g_k: Expr, k: int) -> Expr:
    """d_k = g_k * f'_k: the gradient at a_k (f'_k = 1 - h_k**2 for tanh)."""
    return b.mul(g_k, b.act_derivative(k))


def _describe(s: int, k: int) -> str:
    if k == s:
        return f"L_{s} at step {s} (direct)"
    back = ", ".join(f"h_{j}" for j in range(s - 1, k - 1, -1))
    return f"L_{s} back through {back}"


def terms(model: RNN, of: Ref, wrt: Ref) -> tuple[Term, ...]:
    """Every path's term of ∂of/∂wrt, fully unrolled (``of`` is L or one L_t), in the model's convention.

    There are O(T²) terms sharing their subtrees (the gradient g_k^{(s)} of
    one loss is built once for all k); the column conversion keeps that sharing.
    """
    row = _row_terms(_row(model), of, wrt)
    if not model.column:
        return row
    memo: Memo = {}
    return tuple(Term(to_convention(t.expr, model, memo), t.loss_step, t.step, t.kind) for t in row)


def paths(model: RNN, of: Ref, wrt: Ref) -> tuple[tuple[int, int, str], ...]:
    """``(s, k, kind)`` of every term of :func:`terms`, in the same order, without building the trees."""
    return tuple(_paths(model, of, wrt))


def _paths(model: RNN, of: Ref, wrt: Ref) -> Iterator[tuple[int, int, str]]:
    fam, step = wrt.family, wrt.step
    for s in _losses(model, of):
        if fam in ("W_hy", "b_y", "z", "yhat"):
            if fam in ("z", "yhat") and step != s:
                continue
            yield s, s, "output"
            continue
        if fam == "L":
            if step is None or step == s:
                yield s, s, "loss"
            continue
        if fam in ("W_hh", "W_xh", "b_h"):
            for k in range(1, s + 1):
                yield s, k, "path"
        elif fam == "h":
            if step == 0:
                yield s, 1, "path"
            elif step is not None and 1 <= step <= s:
                yield s, step, "to_h"
        elif fam in ("a", "x"):
            if step is not None and 1 <= step <= s:
                yield s, step, "path"
        else:
            raise ValueError(f"no formula for the gradient with respect to {wrt}")


def terms_of(model: RNN, of: Ref, wrt: Ref, chosen: Iterable[tuple[int, int, str]]) -> tuple[Term, ...]:
    """The terms of the chosen paths (from :func:`paths`) only, in the model's convention."""
    row = _row_terms(_row(model), of, wrt, chosen)
    if not model.column:
        return row
    memo: Memo = {}
    return tuple(Term(to_convention(t.expr, model, memo), t.loss_step, t.step, t.kind) for t in row)


def _row_terms(
    model: RNN, of: Ref, wrt: Ref, chosen: Iterable[tuple[int, int, str]] | None = None
) -> tuple[Term, ...]:
    b = Builder(model)
    out: list[Term] = []
    fam, step = wrt.family, wrt.step
    g: dict[int, Expr] = {}
    g_of = None
    for s, k, kind in _paths(model, of, wrt) if chosen is None else chosen:
        if kind == "output":
            e = output_error(b, s)
            if fam == "W_hy":
                e = b.matmul(b.T(b.name(Ref("h", s))), e)
            elif fam == "yhat":
                e = output_gradient(b, s)
            out.append(Term(e, s, s, kind))
            continue
        if kind == "loss":
            out.append(Term(b.number(1), s, s, kind))
            continue
        if g_of != s:
            g, g_of = hidden_gradients(b, s), s
        d = preactivation_gradient(b, g[k], k)
        if fam == "W_hh":
            e = b.matmul(b.T(b.name(Ref("h", k - 1))), d)
        elif fam == "W_xh":
            e = b.matmul(b.T(b.name(Ref("x", k))), d)
        elif fam in ("b_h", "a"):
            e = d
        elif fam == "h":
            e = b.matmul(d, b.T(b.name(Ref("W_hh")))) if step == 0 else g[k]
        else:  # x
            e = b.matmul(d, b.T(b.name(Ref("W_xh"))))
        out.append(Term(e, s, k, kind))
    return tuple(out)


def gradient(model: RNN, of: Ref, wrt: Ref) -> Expr:
    """The whole gradient ∂of/∂wrt in matrix form: the sum of :func:`terms` (zeros if there are none)."""
    parts = terms(model, of, wrt)
    b = Builder(model)
    if not parts:
        shape = model.shape(wrt)
        return b.mul(b.number(0), b.name(wrt)) if shape != (1, 1) else b.number(0)
    return b.total([t.expr for t in parts])


def per_step(model: RNN, of: Ref, wrt: Ref) -> tuple[tuple[str, Expr], ...]:
    """The BPTT form: one term per step in the named nodes, with ``dL/dh_t`` left as a partial.

    For W_hh: ``h_{t-1}.T @ (dL/dh_t * f'_t)`` for t = 1..T (column:
    ``(dL/dh_t * f'_t) @ h_{t-1}.T``); for W_xh the same with x_t; for W_hy
    ``h_t.T @ (yhat_t - y_t)`` over the loss steps.
    """
    row = _row_per_step(_row(model), of, wrt)
    return tuple((label, to_convention(e, model)) for label, e in row)


def _row_per_step(model: RNN, of: Ref, wrt: Ref) -> tuple[tuple[str, Expr], ...]:
    b = Builder(model)
    fam = wrt.family
    out: list[tuple[str, Expr]] = []
    losses = _losses(model, of)
    if fam in ("W_hh", "W_xh", "b_h"):
        for t in model.steps_range():
            if t > max(losses):
                continue
            d = preactivation_gradient(b, b.partial(of, Ref("h", t)), t)
            left = {"W_hh": Ref("h", t - 1), "W_xh": Ref("x", t)}.get(fam)
            out.append((f"step {t}", b.matmul(b.T(b.name(left)), d) if left else d))
        return tuple(out)
    if fam in ("W_hy", "b_y"):
        for s in losses:
            e = output_error(b, s)
            out.append((f"step {s}", b.matmul(b.T(b.name(Ref("h", s))), e) if fam == "W_hy" else e))
        return tuple(out)
    if fam == "h" and wrt.step is not None:
        k = wrt.step
        if k == 0:
            return (("step 1", b.matmul(preactivation_gradient(b, b.partial(of, Ref("h", 1)), 1), b.T(b.name(Ref("W_hh"))))),)
        if k in losses:
            out.append((f"L_{k} at step {k}", b.matmul(output_error(b, k), b.T(b.name(Ref("W_hy"))))))
        if k < max(losses):
            later = preactivation_gradient(b, b.partial(of, Ref("h", k + 1)), k + 1)
            out.append((f"from step {k + 1}", b.matmul(later, b.T(b.name(Ref("W_hh"))))))
        return tuple(out)
    if fam == "x" and wrt.step is not None:
        k = wrt.step
        d = preactivation_gradient(b, b.partial(of, Ref("h", k)), k)
        return ((f"step {k}", b.matmul(d, b.T(b.name(Ref("W_xh"))))),)
    return tuple((t.description, t.expr) for t in _row_terms(model, of, wrt))


def hidden_recursion(model: RNN, of: Ref) -> tuple[tuple[Ref, Expr], ...]:
    """``dL/dh_t`` for t = T..1 in terms of ``dL/dh_{t+1}`` (the BPTT recursion), for the loss steps present."""
    b = Builder(model)
    losses = _losses(model, of)
    out = []
    for t in range(max(losses), 0, -1):
        out.append((Ref("h", t), b.total([e for _, e in per_step(model, of, Ref("h", t))])))
    return tuple(out)


def forward(model: RNN, ref: Ref) -> Expr:
    """A node unrolled down to the leaves, each step's function applied by name.

    ``L_2`` at T = 2 is ``L_2(yhat_2(h_2(h_1(x_1 @ W_xh + h_0 @ W_hh) @ W_hh + x_2 @ W_xh) @ W_hy))``
    (the seed's ``c_2(s_2(t_2(t_1(…) W_hh + x_2 W_xh) W_hy))``); column:
    ``L_2(yhat_2(W_hy @ h_2(W_hh @ h_1(…) + W_xh @ x_2)))``. The functions are
    the model's (:meth:`RNN.node_function`).
    """
    return to_convention(_row_forward(_row(model), ref), model)


def _row_forward(model: RNN, ref: Ref) -> Expr:
    """The row-model forward expression, built from step 1 up (no recursion; h_t shared by the later steps)."""
    b = Builder(model)
    if ref in model.leaves() or (ref.family == "h" and ref.step == 0):
        return b.name(ref)
    if ref != L_TOTAL and (ref.step is None or ref.family not in ("a", "h", "z", "yhat", "L")):
        raise ValueError(f"no forward formula for {ref}")
    last = model.steps if ref == L_TOTAL else ref.step
    assert last is not None
    h: dict[int, Expr] = {0: b.name(Ref("h", 0))}

    def pre(t: int) -> Expr:
        a = b.add(b.matmul(b.name(Ref("x", t)), b.name(Ref("W_xh"))), b.matmul(h[t - 1], b.name(Ref("W_hh"))))
        return b.add(a, b.name(Ref("b_h"))) if model.biases else a

    def loss(t: int) -> Expr:
        z = b.matmul(h[t], b.name(Ref("W_hy")))
        z = b.add(z, b.name(Ref("b_y"))) if model.biases else z
        if ref.family == "z" and ref.step == t:
            return z
        yhat = Apply(Ref("yhat", t), z, model.shape(Ref("yhat", t)))
        if ref.family == "yhat" and ref.step == t:
            return yhat
        return Apply(Ref("L", t), yhat, (1, 1))

    for t in range(1, last + 1):
        if ref.family == "a" and t == last:
            return pre(t)
        h[t] = Apply(Ref("h", t), pre(t), model.shape(Ref("h", t)))
    if ref == L_TOTAL:
        return b.total([loss(s) for s in model.loss_steps])
    if ref.family == "h":
        return h[last]
    return loss(last)


def chains(
    model: RNN, of: Ref, wrt: Ref, chosen: Iterable[tuple[int, int, str]] | None = None
) -> tuple[tuple[str, Expr], ...]:
    """Each path of ∂of/∂wrt as a chain of partials between adjacent nodes.

    ``dL/dL_2 * dL_2/dz_2 * dz_2/dh_2 * dh_2/da_2 * da_2/dh_1 * dh_1/da_1 * da_1/dW_hh``
    is the path from L_2 back through h_1. The last factor of a recurrent
    parameter (``da_2/dW_hh``) is ambiguous: the chains are right with each
    partial read as the immediate derivative (∂⁺), the textbook reading.
    Chains are contracted over shared nodes whatever the layout, so they are
    built on the model itself, in either convention. ``chosen`` (from
    :func:`paths`) limits them to those paths.
    """
    b = Builder(model)
    out: list[tuple[str, Expr]] = []
    for s, k, kind in _paths(model, of, wrt) if chosen is None else chosen:
        term = Term(b.number(0), s, k, kind)  # only its name is needed
        nodes: list[Ref] = ([of] if of == L_TOTAL else []) + [Ref("L", s), Ref("z", s)]
        if wrt.family in ("W_hy", "b_y"):
            nodes.append(wrt)
        else:
            nodes += [Ref("h", s), Ref("a", s)]
            for j in range(s - 1, k - 1, -1):
                nodes += [Ref("h", j), Ref("a", j)]
            if wrt.family == "h":
                nodes = nodes[: nodes.index(wrt) + 1] if wrt in nodes else nodes + [wrt]
            elif wrt != nodes[-1]:
                nodes.append(wrt)
        factors = tuple(b.partial(num, den) for num, den in zip(nodes, nodes[1:]))
        if len(factors) == 1:
            out.append((term.description, factors[0]))
            continue
        first, last = factors[0], factors[-1]
        ns, ds = model.shape(first.num), model.shape(last.den)
        out.append((term.description, Chain(factors, jacobian_shape(ns, ds), squeeze_shape(ns) + squeeze_shape(ds))))
    return tuple(out)
