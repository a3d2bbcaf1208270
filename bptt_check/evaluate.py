"""Evaluation of a parsed expression at a batch of points, in floats or exactly.

One evaluator, two backends that share its code path:

* :class:`FloatBackend` — float64 arrays ``(P, rows, cols)``;
* :class:`ExactBackend` — object arrays of :class:`bptt_check.exact.Exact`,
  where transcendental functions are rewritten through the table of known
  logarithms (and raise :class:`~bptt_check.exact.NoExactForm` otherwise).

Partials are the true values, supplied by the backend (``partial(num, den,
reading)`` → the Jacobian tensor ``(P, *squeeze(num) + squeeze(den))``).
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Callable, Literal, Mapping, Protocol

import numpy as np

from .errors import BudgetExceeded
from .exact import Exact, ExactPoints, Gated, NoExactForm, matmul, reciprocal
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
    postorder,
)
from .model import RNN, Reading, Ref, squeeze_shape

PartialSource = Callable[[Ref, Ref, Reading], np.ndarray]
Mode = Literal["total", "immediate", "mixed"]
"""How an answer's partials are read: every one total, every one immediate, or
``mixed`` — the textbook convention: partials with respect to a parameter
immediate (∂a_t/∂W_hh holds h_{t-1} fixed), all others total (∇_{h_t} L)."""


def reading_of(mode: Mode, den: Ref) -> Reading:
    """The reading of one partial ∂·/∂den under an evaluation mode."""
    if mode == "mixed":
        return "immediate" if den.is_parameter else "total"
    return mode


class Backend(Protocol):
    """Values of names, true partials, constants and elementwise functions at P points."""

    values: Mapping[Ref, np.ndarray]
    model: RNN

    def partial(self, num: Ref, den: Ref, reading: Reading) -> np.ndarray: ...
    def const(self, q: Fraction) -> object: ...
    def exp(self, x: np.ndarray) -> np.ndarray: ...
    def log(self, x: np.ndarray) -> np.ndarray: ...
    def relu(self, x: np.ndarray) -> np.ndarray: ...
    def step(self, x: np.ndarray) -> np.ndarray: ...
    def power(self, x: np.ndarray, k: Fraction) -> np.ndarray: ...
    def inverse(self, m: np.ndarray) -> np.ndarray: ...


class FloatBackend:
    """float64 evaluation."""

    def __init__(self, values: Mapping[Ref, np.ndarray], partial: PartialSource, model: RNN | None = None) -> None:
        self.values = values
        self.model = model or RNN()
        self._partial = partial

    def partial(self, num: Ref, den: Ref, reading: Reading) -> np.ndarray:
        return self._partial(num, den, reading)

    def const(self, q: Fraction) -> float:
        return float(q)

    def exp(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(x)

    def log(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    def relu(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0.0)

    def step(self, x: np.ndarray) -> np.ndarray:
        return (x > 0).astype(np.float64)

    def power(self, x: np.ndarray, k: Fraction) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.power(x, float(k))

    def inverse(self, m: np.ndarray) -> np.ndarray:
        try:
            return np.linalg.inv(m)
        except np.linalg.LinAlgError:
            return np.full_like(m, np.nan)


class ExactBackend:
    """Exact evaluation modulo p over the atoms of :mod:`bptt_check.exact`."""

    def __init__(self, points: ExactPoints, partial: PartialSource, model: RNN | None = None) -> None:
        self.points = points
        self.values = points.values
        self.model = model or RNN()
        self._partial = partial

    def partial(self, num: Ref, den: Ref, reading: Reading) -> np.ndarray:
        return self._partial(num, den, reading)

    def const(self, q: Fraction) -> Exact:
        return Exact.lift(q)

    def exp(self, x: np.ndarray) -> np.ndarray:
        return self.points.exp(x)

    def log(self, x: np.ndarray) -> np.ndarray:
        return self.points.log(x)

    def relu(self, x: np.ndarray) -> np.ndarray:
        return self.points.relu(x)

    def step(self, x: np.ndarray) -> np.ndarray:
        return self.points.step(x)

    def power(self, x: np.ndarray, k: Fraction) -> np.ndarray:
        if k.denominator != 1:
            raise NoExactForm("a fractional power has no exact form")
        n = k.numerator
        out = np.empty(x.shape, dtype=object)
        for idx, e in np.ndenumerate(x):
            out[idx] = (e if isinstance(e, Gated) else Exact.lift(e)) ** n
        return out

    def inverse(self, m: np.ndarray) -> np.ndarray:
        raise NoExactForm("matrix inverse is only checked numerically")


class Deadline:
    """A wall-clock budget checked between evaluation steps."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds

    def check(self, what: str) -> None:
        if self.end is not None and time.monotonic() > self.end:
            raise BudgetExceeded(f"{what} ran past its budget of {self.seconds:g} s", hint="simplify the expression")


def evaluate(expr: Expr, backend: Backend, reading: Mode = "total", deadline: Deadline | None = None) -> np.ndarray:
    """The value of ``expr`` at every point: an array ``(P, *expr.shape)``."""
    return _Evaluator(backend, reading, deadline or Deadline(None)).value(expr)


class _Evaluator:
    def __init__(self, backend: Backend, reading: Mode, deadline: Deadline) -> None:
        self.b = backend
        self.reading = reading
        self.deadline = deadline
        self.memo: dict[int, np.ndarray] = {}  # by id: the tree being evaluated keeps its nodes alive

    def value(self, root: Expr) -> np.ndarray:
        """Evaluate children before parents (no recursion: trees are as deep as sums are long),
        each distinct node once (a shared subtree is evaluated once)."""
        for node in postorder(root):
            if id(node) in self.memo or (isinstance(node, Partial) and node is not root):
                continue  # a partial is read when used: a chain's factors are contracted, not evaluated alone
            self.deadline.check("evaluating the answer")
            self.memo[id(node)] = self._eval(node)
        return self.memo[id(root)]

    def _v(self, node: Expr) -> np.ndarray:
        """The value of a child: computed already, or a partial (a leaf) computed now."""
        hit = self.memo.get(id(node))
        if hit is None:
            hit = self.memo[id(node)] = self._eval(node)
        return hit

    def _eval(self, node: Expr) -> np.ndarray:  # noqa: C901 - one case per node kind
        b = self.b
        if isinstance(node, Number):
            return self._fill((1, 1), b.const(node.value))
        if isinstance(node, Name):
            return b.values[node.ref]
        if isinstance(node, Element):
            v = self._v(node.operand)
            r, c = node.index
            return v[:, r : r + 1, c : c + 1]
        if isinstance(node, Neg):
            return -self._v(node.operand)
        if isinstance(node, Transpose):
            return np.swapaxes(self._v(node.operand), 1, 2)
        if isinstance(node, Binary):
            return self._binary(node)
        if isinstance(node, Power):
            base = self._v(node.base)
            if node.matrix:
                return self._matrix_power(base, node.exponent)
            if node.exponent.denominator == 1 and 0 <= node.exponent <= 16:
                out = self._fill(base.shape[1:], b.const(Fraction(1)))
                for _ in range(node.exponent.numerator):
                    out = out * base
                return out
            return b.power(base, node.exponent)
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Apply):
            return self._apply(node)
        if isinstance(node, Partial):
            return self._tensor(node).reshape((-1, *node.shape))
        if isinstance(node, Chain):
            return self._chain(node).reshape((-1, *node.shape))
        raise TypeError(f"cannot evaluate {type(node).__name__}")

    # -- helpers -------------------------------------------------------------

    def _points(self) -> int:
        first = next(iter(self.b.values.values()))
        return first.shape[0]

    def _fill(self, shape: tuple[int, ...], value: object) -> np.ndarray:
        if isinstance(value, float):
            return np.full((self._points(), *shape), value)
        out = np.empty((self._points(), *shape), dtype=object)
        out[...] = value
        return out

    def _binary(self, node: Binary) -> np.ndarray:
        left, right = self._v(node.left), self._v(node.right)
        if node.op == "@":
            return matmul(left, right)
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if node.op == "/":
            if right.dtype == object:
                return left * reciprocal(right)
            with np.errstate(divide="ignore", invalid="ignore"):
                return left / right
        raise TypeError(f"unknown operator {node.op}")

    def _matrix_power(self, base: np.ndarray, k: Fraction) -> np.ndarray:
        if k.denominator != 1:
            raise NoExactForm("a fractional matrix power has no exact form")
        n = k.numerator
        if n < 0:
            base, n = self.b.inverse(base), -n
        eye = np.zeros(base.shape[1:], dtype=int) + np.eye(base.shape[1], dtype=int)
        out = self._fill(base.shape[1:], self.b.const(Fraction(0))) + eye
        for _ in range(n):
            out = matmul(out, base)
        return out

    def _tanh(self, x: np.ndarray) -> np.ndarray:
        if x.dtype != object:
            return np.tanh(x)
        e2 = self.b.exp(x) ** 2
        return (e2 - 1) * reciprocal(e2 + 1)

    def _sigmoid(self, x: np.ndarray) -> np.ndarray:
        if x.dtype != object:
            return 1.0 / (1.0 + np.exp(-x))
        e = self.b.exp(x)
        return e * reciprocal(e + 1)

    def _sech(self, x: np.ndarray) -> np.ndarray:
        if x.dtype != object:
            return 1.0 / np.cosh(x)
        e = self.b.exp(x)
        return 2 * e * reciprocal(e * e + 1)

    def _softmax(self, x: np.ndarray) -> np.ndarray:
        if x.dtype != object:
            e = np.exp(x - x.max(axis=(1, 2), keepdims=True))
            return e / e.sum(axis=(1, 2), keepdims=True)
        e = self.b.exp(x)
        return e * reciprocal(e.sum(axis=(1, 2), keepdims=True))

    def _call(self, node: Call) -> np.ndarray:
        f = node.func
        if f == "ones":
            return self._fill(node.shape, self.b.const(Fraction(1)))
        args = [self._v(a) for a in node.args]
        x = args[0]
        if f == "tanh":
            return self._tanh(x)
        if f == "sigmoid":
            return self._sigmoid(x)
        if f == "sech":
            return self._sech(x)
        if f == "relu":
            return self.b.relu(x)
        if f == "step":
            return self.b.step(x)
        if f == "exp":
            return self.b.exp(x)
        if f == "log":
            return self.b.log(x)
        if f == "softmax":
            return self._softmax(x)
        if f == "sum":
            return x.sum(axis=(1, 2), keepdims=True)
        if f == "diag":
            n = max(x.shape[1], x.shape[2])
            if x.shape[1] == 1 or x.shape[2] == 1:  # vector → diagonal matrix
                vec = x.reshape(x.shape[0], n)
                out = self._fill((n, n), self.b.const(Fraction(0)))
                for i in range(n):
                    out[:, i, i] = vec[:, i]
                return out
            return np.stack([x[:, i, i] for i in range(x.shape[1])], axis=1).reshape(x.shape[0], 1, -1)
        if f == "outer":
            u = args[0].reshape(x.shape[0], -1, 1)
            v = args[1].reshape(x.shape[0], 1, -1)
            return matmul(u, v)
        raise TypeError(f"unknown function {f}")

    def _apply(self, node: Apply) -> np.ndarray:
        """The model's own node function: its activation, softmax or identity, cross-entropy or squared error."""
        x = self._v(node.arg)
        func = self.b.model.node_function(node.node.family)
        if func == "tanh":
            return self._tanh(x)
        if func == "sigmoid":
            return self._sigmoid(x)
        if func == "relu":
            return self.b.relu(x)
        if func == "softmax":
            return self._softmax(x)
        if func == "identity":
            return x
        y = self.b.values[Ref("y", node.node.step)]
        if func == "squared_error":
            d = x - y
            return (d * d).sum(axis=(1, 2), keepdims=True) * self.b.const(Fraction(1, 2))
        return -(y * self.b.log(x)).sum(axis=(1, 2), keepdims=True)

    def _tensor(self, node: Partial) -> np.ndarray:
        """The Jacobian tensor of a partial, its indexed axes selected: (P, *sq(num') + sq(den'))."""
        t = self.b.partial(node.num, node.den, node.reading or reading_of(self.reading, node.den))
        num_shape = self._ref_shape(node.num)
        den_shape = self._ref_shape(node.den)
        sn, sd = squeeze_shape(num_shape), squeeze_shape(den_shape)
        if node.num_index is not None:
            t = t[(slice(None), *_squeezed_index(num_shape, node.num_index))]
            sn = ()
        if node.den_index is not None:
            t = t[(slice(None),) + (slice(None),) * len(sn) + _squeezed_index(den_shape, node.den_index)]
        return t

    def _ref_shape(self, ref: Ref) -> tuple[int, ...]:
        return self.b.values[ref].shape[1:]

    def _chain(self, node: Chain) -> np.ndarray:
        """Contract linked Jacobians over each shared node: (A,B)·(B,C) → (A,C)."""
        P = self._points()
        acc = self._tensor(node.factors[0])
        lead = _axes_of(node.factors[0], self, num=True)
        for factor in node.factors[1:]:
            nxt = self._tensor(factor)
            shared = _axes_of(factor, self, num=True)
            tail = nxt.shape[1 + len(shared) :]
            a = acc.reshape(P, int(np.prod(lead, dtype=int)), int(np.prod(shared, dtype=int)))
            bmat = nxt.reshape(P, int(np.prod(shared, dtype=int)), int(np.prod(tail, dtype=int)))
            acc = matmul(a, bmat).reshape((P, *lead, *tail))
        return acc


def _axes_of(p: Partial, ev: _Evaluator, *, num: bool) -> tuple[int, ...]:
    """The squeezed axes of a partial's numerator (after indexing)."""
    if p.num_index is not None:
        return ()
    return squeeze_shape(ev._ref_shape(p.num))


def _squeezed_index(shape: tuple[int, ...], index: tuple[int, int]) -> tuple[int, ...]:
    """Map a (row, col) index on an unsqueezed shape to the squeezed axes."""
    return tuple(i for i, d in zip(index, shape) if d != 1)

