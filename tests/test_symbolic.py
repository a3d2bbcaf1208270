"""Tests of :mod:`bptt_check.symbolic`: reverse mode against sympy.diff of the expanded loss.

The reference here is built independently of the module under test: the
model is written out with sympy down to leaf symbols (``log yhat_k`` as
``z_k - log sum exp z``), optionally with perturbation symbols added to a node
(for ∂/∂h_t, ∂/∂a_t, evaluated at 0) and with hidden states *frozen* (their
consumers see constant symbols instead: the immediate reading). sympy.diff
differentiates it; a small memoised evaluator over the expression DAG gives
its float value at each point. Points come from a local sampler with every
y_t on the simplex. No jax.

sympy.diff of the expanded loss grows about ×H per step, so the suite
differentiates every entry only for the seed's model and one random entry per
leaf family elsewhere (keeping the file well under a minute).
"""

from __future__ import annotations

import functools
import math
import random
from fractions import Fraction
from typing import Mapping

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bptt_check.errors import ConfigError
from bptt_check.model import L_TOTAL, RNN, Ref
from bptt_check.symbolic import Jacobian, SymbolicRNN

RTOL = 1e-10


# ---------------------------------------------------------------------------
# the independent reference
# ---------------------------------------------------------------------------


def sample_leaves(model: RNN, points: int, seed: int) -> dict[Ref, np.ndarray]:
    """Random float points: parameters ~ N(0, 0.6²), x ~ N(0, 1), h_0 ~ N(0, 0.5²), y_t ~ Dirichlet(1)."""
    rng = np.random.default_rng(seed)
    out: dict[Ref, np.ndarray] = {}
    for ref in model.leaves():
        shape = (points, *model.shape(ref))
        if ref.family == "y":
            out[ref] = rng.dirichlet(np.ones(model.output_size), size=points)[:, None, :]
        elif ref.family == "x":
            out[ref] = rng.normal(size=shape)
        elif ref.family == "h":
            out[ref] = 0.5 * rng.normal(size=shape)
        else:
            out[ref] = 0.6 * rng.normal(size=shape)
    return out


def numpy_forward(model: RNN, leaves: Mapping[Ref, np.ndarray]) -> dict[Ref, np.ndarray]:
    """A plain numpy forward pass (no shared code with the module)."""
    v = dict(leaves)
    P = next(iter(leaves.values())).shape[0]
    h = v[Ref("h", 0)] if model.h0 == "input" else np.zeros((P, 1, model.hidden_size))
    v[Ref("h", 0)] = h
    total = np.zeros((P, 1, 1))
    for t in model.steps_range():
        a = v[Ref("x", t)] @ v[Ref("W_xh")] + h @ v[Ref("W_hh")]
        if model.biases:
            a = a + v[Ref("b_h")]
        h = np.tanh(a)
        z = h @ v[Ref("W_hy")]
        if model.biases:
            z = z + v[Ref("b_y")]
        yhat = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
        loss = -(v[Ref("y", t)] * np.log(yhat)).sum(axis=-1, keepdims=True)
        v.update({Ref("a", t): a, Ref("h", t): h, Ref("z", t): z, Ref("yhat", t): yhat, Ref("L", t): loss})
        if t in model.loss_steps:
            total = total + loss
    v[L_TOTAL] = total
    return v


def _matrix(rows: int, cols: int, name: str) -> sympy.Matrix:
    return sympy.Matrix(rows, cols, lambda i, j: sympy.Symbol(f"{name}_{i}_{j}", real=True))


def _tanh(u: sympy.Expr) -> sympy.Expr:
    return sympy.tanh(u, evaluate=False)  # (sympy's automatic simplification attempts are slow on deep arguments)


def _exp(u: sympy.Expr) -> sympy.Expr:
    return sympy.exp(u, evaluate=False)


def _log(u: sympy.Expr) -> sympy.Expr:
    return sympy.log(u, evaluate=False)


class Reference:
    """The model written out with sympy down to leaf symbols ``ref_<name>_i_j``.

    A node denominator gets a perturbation ``+ eps_i_j`` (evaluated at 0);
    frozen hidden states are seen by their consumers as constant symbols
    ``C_<name>_i_j`` (evaluated at the true value of the state).
    """

    def __init__(self, model: RNN, den: Ref, freeze: tuple[Ref, ...] = ()) -> None:
        self.model = model
        self.den = den
        self.leaf = {ref: _matrix(*model.shape(ref), f"ref_{ref}") for ref in model.leaves()}
        self.leaf_den = den in self.leaf
        self.symbols = self.leaf[den] if self.leaf_den else _matrix(*model.shape(den), "eps")
        self.const = {ref: _matrix(*model.shape(ref), f"C_{ref}") for ref in freeze}
        self.node: dict[Ref, sympy.Matrix] = {}
        S = self.leaf
        h = S[Ref("h", 0)] if model.h0 == "input" else sympy.zeros(1, model.hidden_size)
        h = self._hook(Ref("h", 0), h)
        total = sympy.S.Zero
        for t in model.steps_range():
            a = S[Ref("x", t)] * S[Ref("W_xh")] + h * S[Ref("W_hh")]
            if model.biases:
                a = a + S[Ref("b_h")]
            a = self._hook(Ref("a", t), a)
            h = self._hook(Ref("h", t), a.applyfunc(_tanh))
            z = h * S[Ref("W_hy")]
            if model.biases:
                z = z + S[Ref("b_y")]
            z = self._hook(Ref("z", t), z)
            y = S[Ref("y", t)]
            e = z.applyfunc(_exp)
            yhat = self._hook(Ref("yhat", t), e / sympy.Add(*e))
            if den == Ref("yhat", t):
                loss = -sympy.Add(*[y[k] * _log(yhat[k]) for k in range(model.output_size)])
            else:  # log yhat_k = z_k - log sum exp z
                lse = _log(sympy.Add(*e))
                loss = -sympy.Add(*[y[k] * (z[k] - lse) for k in range(model.output_size)])
            self.node[Ref("L", t)] = sympy.Matrix([[loss]])
            if t in model.loss_steps:
                total = total + loss
        self.node[L_TOTAL] = sympy.Matrix([[total]])

    def _hook(self, ref: Ref, value: sympy.Matrix) -> sympy.Matrix:
        if ref == self.den and not self.leaf_den:
            value = value + self.symbols
        self.node[ref] = value
        return self.const.get(ref, value)

    def env(self, values: Mapping[Ref, np.ndarray], p: int) -> dict[sympy.Symbol, float]:
        """Symbol values at point p: the leaves, eps = 0, frozen constants = the true values."""
        env: dict[sympy.Symbol, float] = {}
        for group in (self.leaf, self.const):
            for ref, mat in group.items():
                env.update({s: float(v) for s, v in zip(mat, values[ref][p].reshape(-1))})
        if not self.leaf_den:
            env.update({s: 0.0 for s in self.symbols})
        return env


@functools.lru_cache(maxsize=64)
def reference(model: RNN, den: Ref, freeze: tuple[Ref, ...] = ()) -> Reference:
    return Reference(model, den, freeze)


@functools.lru_cache(maxsize=4096)
def reference_diff(model: RNN, num: Ref, den: Ref, freeze: tuple[Ref, ...], k: int) -> tuple[sympy.Expr, ...]:
    """sympy.diff of every entry of num w.r.t. den's entry k (cached across tests)."""
    ref = reference(model, den, freeze)
    return tuple(o.diff(ref.symbols[k]) for o in ref.node[num])


def fnum(expr: sympy.Expr, env: Mapping[sympy.Symbol, float], memo: dict | None = None) -> float:
    """A float value of a sympy expression, memoised over its DAG (Add Mul Pow tanh exp log)."""
    memo = {} if memo is None else memo
    if expr in memo:
        return memo[expr]
    if expr.is_Symbol:
        val = env[expr]
    elif expr.is_Number:
        val = float(expr)
    else:
        args = [fnum(a, env, memo) for a in expr.args]
        if expr.is_Add:
            val = math.fsum(args)
        elif expr.is_Mul:
            val = math.prod(args)
        elif expr.is_Pow:
            val = args[0] ** args[1]
        elif isinstance(expr, sympy.tanh):
            val = math.tanh(args[0])
        elif isinstance(expr, sympy.exp):
            val = math.exp(args[0])
        elif isinstance(expr, sympy.log):
            val = math.log(args[0])
        else:
            raise TypeError(f"fnum: {type(expr).__name__}")
    memo[expr] = val
    return val


def entries_of(arr: sympy.Array) -> list[sympy.Expr]:
    """The entries of a sympy Array in row-major order (a rank-0 array has one)."""
    return [arr[idx] for idx in np.ndindex(*arr.shape)]


def rel_diff(ours: np.ndarray, ref: np.ndarray) -> float:
    """max|ours - ref| / max|ref| (absolute when the reference is 0)."""
    scale = float(np.max(np.abs(ref)))
    return float(np.max(np.abs(ours - ref))) / (scale if scale > 0 else 1.0)


def reference_jacobian(
    model: RNN,
    num: Ref,
    den: Ref,
    values: Mapping[Ref, np.ndarray],
    entries: list[int] | None = None,
    freeze: tuple[Ref, ...] = (),
) -> np.ndarray:
    """sympy.diff of num w.r.t. den's (selected) entries, at every point: (P, n_num, n_selected)."""
    P = next(iter(values.values())).shape[0]
    rows, cols = model.shape(den)
    picked = list(range(rows * cols)) if entries is None else entries
    diffs = [reference_diff(model, num, den, freeze, k) for k in picked]
    ref = reference(model, den, freeze)
    res = np.empty((P, len(diffs[0]), len(picked)))
    for p in range(P):
        env, memo = ref.env(values, p), {}
        for j, column in enumerate(diffs):
            for i, d in enumerate(column):
                res[p, i, j] = fnum(d, env, memo)
    return res


def ours_flat(jac: Jacobian, values: Mapping[Ref, np.ndarray], n_num: int, entries: list[int] | None) -> np.ndarray:
    out = jac.evaluate(values)
    flat = out.reshape(out.shape[0], n_num, -1)
    return flat if entries is None else flat[:, :, entries]


def check(
    model: RNN,
    num: Ref,
    den: Ref,
    *,
    reading: str = "total",
    freeze: tuple[Ref, ...] = (),
    entries: list[int] | None = None,
    seed: int = 0,
    points: int = 2,
) -> None:
    """Our ∂num/∂den (at float points) equals sympy.diff of the reference: relative difference ≤ 1e-10."""
    sym = SymbolicRNN(model)
    values = sym.forward_values(sample_leaves(model, points, seed))
    n_num = len(sym.symbols(num))
    expected = reference_jacobian(model, num, den, values, entries, freeze)
    got = ours_flat(sym.partial(num, den, reading), values, n_num, entries)  # type: ignore[arg-type]
    assert got.shape == expected.shape
    assert rel_diff(got, expected) <= RTOL, (model.describe(), num, den, reading, got, expected)


def one_entry_per_family(model: RNN, seed: int) -> list[tuple[Ref, list[int]]]:
    """Every leaf of the model with one random entry."""
    rnd = random.Random(seed)
    out = []
    for ref in model.leaves():
        rows, cols = model.shape(ref)
        out.append((ref, [rnd.randrange(rows * cols)]))
    return out


# ---------------------------------------------------------------------------
# gradients against sympy.diff of the expanded loss
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("loss_at", ["all", "last"])
def test_full_gradient_default_model(loss_at: str) -> None:
    """Every entry of every parameter and input gradient of the seed's model (T=2, D=H=O=2)."""
    model = RNN(loss_at=loss_at)  # type: ignore[arg-type]
    for den in model.leaves():
        check(model, L_TOTAL, den)


CONFIGS = [
    # every pair of (loss_at, h0, biases) values occurs, at T = 1, 2, 3 and sizes 2/2/2, 1/3/2, 2/2/3
    (2, 2, 2, 2, "all", "zeros", True),
    (2, 2, 2, 2, "last", "zeros", True),
    (2, 1, 3, 2, "all", "input", True),
    (2, 1, 3, 2, "last", "zeros", False),
    (3, 2, 2, 2, "all", "input", False),
    (3, 2, 2, 2, "last", "input", True),
    (3, 1, 3, 2, "last", "zeros", True),
    (1, 2, 2, 3, "all", "zeros", False),
]


@pytest.mark.parametrize("T,D,H,O,loss_at,h0,biases", CONFIGS)
def test_gradients_over_configurations(T: int, D: int, H: int, O: int, loss_at: str, h0: str, biases: bool) -> None:
    """Each parameter and input gradient (one random entry per family) in every flag combination."""
    model = RNN(steps=T, input_size=D, hidden_size=H, output_size=O, loss_at=loss_at, h0=h0, biases=biases)  # type: ignore[arg-type]
    for den, entries in one_entry_per_family(model, seed=T * 100 + D * 10 + H):
        check(model, L_TOTAL, den, entries=entries, seed=T + H)


def test_step_losses_and_node_gradients() -> None:
    """∂L_t/∂(leaf) per step, and ∂L/∂h_1, ∂L/∂a_1, ∂L/∂z_2 through perturbation symbols."""
    model = RNN(steps=2, biases=True)
    check(model, Ref("L", 1), Ref("W_hh"))
    check(model, Ref("L", 2), Ref("x", 1))
    check(model, Ref("L", 1), Ref("x", 2))  # not upstream: zeros
    for den in (Ref("h", 1), Ref("a", 1), Ref("h", 2), Ref("z", 2), Ref("yhat", 1)):
        check(model, L_TOTAL, den)
    check(RNN(steps=3, hidden_size=3, input_size=1), L_TOTAL, Ref("h", 1))


def test_h0_zeros_still_differentiable() -> None:
    """With h_0 = 0, ∂L/∂h_0 is the gradient at h_0 = 0 (perturbation of the zero state)."""
    model = RNN(steps=2, h0="zeros")
    sym = SymbolicRNN(model)
    check(model, L_TOTAL, Ref("h", 0))
    values = sym.forward_values(sample_leaves(model, 2, 1))
    assert np.all(values[Ref("h", 0)] == 0)
    assert Ref("W_hh") not in {p for path in sym.paths(Ref("a", 1), Ref("W_hh")) for p in path}
    assert np.all(sym.partial(Ref("a", 1), Ref("W_hh")).evaluate(values) == 0)


def test_vector_numerators() -> None:
    """Jacobians of vector nodes: ∂h_2/∂h_1, ∂yhat_1/∂W_hy (layout num + den), ∂h_2/∂W_xh, ∂yhat_2/∂z_2."""
    model = RNN(steps=2, hidden_size=3)
    check(model, Ref("h", 2), Ref("h", 1))
    check(model, Ref("yhat", 2), Ref("z", 2))
    check(model, Ref("h", 2), Ref("W_xh"))
    sym = SymbolicRNN(model)
    assert sym.partial(Ref("yhat", 1), Ref("W_hy")).shape == (2, 3, 2)
    assert sym.partial(Ref("h", 2), Ref("h", 1)).shape == (3, 3)
    assert sym.partial(L_TOTAL, Ref("W_hh")).shape == (3, 3)
    assert sym.partial(L_TOTAL, Ref("h", 1)).shape == (3,)


def test_loss_in_leaves_and_forward_values() -> None:
    model = RNN(steps=2, biases=True, loss_at="last")
    sym = SymbolicRNN(model)
    leaves = sample_leaves(model, 3, 7)
    values = sym.forward_values(leaves)
    plain = numpy_forward(model, leaves)
    for ref in model.refs():
        assert values[ref].dtype == np.float64 and values[ref].shape == (3, *model.shape(ref))
        np.testing.assert_allclose(values[ref], plain[ref], rtol=1e-12, atol=1e-14)
    loss = sym.loss_in_leaves()
    subs = {s: sympy.Float(float(leaves[r][0].reshape(-1)[k]), 30) for r in model.leaves() for k, s in enumerate(sym.symbols(r))}
    assert abs(float(loss.xreplace(subs)) - values[L_TOTAL][0, 0, 0]) < 1e-12
    # the definitions, evaluated at the node values, give the node values
    for ref in model.nodes():
        d = sym.definition(ref)
        env = {s: sympy.Float(float(values[r][0].reshape(-1)[k]), 30) for r in model.refs() for k, s in enumerate(sym.symbols(r))}
        got = np.array(d.xreplace(env).evalf(), dtype=float).reshape(values[ref][0].shape)
        np.testing.assert_allclose(got, values[ref][0], rtol=1e-12, atol=1e-14)
    leaves[Ref("x", 1)] = leaves[Ref("x", 1)] * 2  # forward_values copies its input
    assert not np.allclose(values[Ref("x", 1)], leaves[Ref("x", 1)])


def test_in_leaves_matches_diff() -> None:
    model = RNN(steps=2)
    sym = SymbolicRNN(model)
    leaves = sample_leaves(model, 1, 3)
    values = sym.forward_values(leaves)
    jac = sym.partial(L_TOTAL, Ref("W_hh"))
    expanded = jac.in_leaves()
    env = {s: float(values[r][0].reshape(-1)[k]) for r in model.leaves() for k, s in enumerate(sym.symbols(r))}
    got = np.array([fnum(e, env) for e in entries_of(expanded)]).reshape(jac.shape)
    np.testing.assert_allclose(got, jac.evaluate(values)[0], rtol=1e-11)


# ---------------------------------------------------------------------------
# readings
# ---------------------------------------------------------------------------


def test_reading_examples_ambiguity() -> None:
    sym = SymbolicRNN(RNN(steps=2))
    assert sym.is_ambiguous(Ref("h", 2), Ref("W_hh"))
    assert sym.is_ambiguous(L_TOTAL, Ref("h", 1))
    assert not sym.is_ambiguous(Ref("L", 2), Ref("h", 1))
    assert not sym.is_ambiguous(L_TOTAL, Ref("W_hy"))
    assert not sym.is_ambiguous(Ref("yhat", 2), Ref("W_hy"))
    assert sym.is_ambiguous(Ref("h", 2), Ref("W_xh"))
    assert sym.is_ambiguous(L_TOTAL, Ref("W_hh"))
    assert not sym.is_ambiguous(Ref("h", 2), Ref("h", 1))
    # unambiguous partials share the total's Jacobian
    imm, tot = sym.partial(L_TOTAL, Ref("W_hy"), "immediate"), sym.partial(L_TOTAL, Ref("W_hy"))
    assert imm.reading == "immediate" and imm._core is tot._core


def test_immediate_h2_wrt_W_hh_is_the_direct_term() -> None:
    """∂⁺h_2/∂W_hh holds h_1 fixed: [j, (i, k)] = δ_jk h_1[i] (1 - h_2[j]²)."""
    model = RNN(steps=2)
    check(model, Ref("h", 2), Ref("W_hh"), reading="immediate", freeze=(Ref("h", 1),))
    check(model, Ref("h", 2), Ref("W_hh"))
    sym = SymbolicRNN(model)
    h1, h2 = sym.symbols(Ref("h", 1)), sym.symbols(Ref("h", 2))
    expected = sympy.Array(
        [[[h1[i] * (1 - h2[j] ** 2) if j == k else 0 for k in range(2)] for i in range(2)] for j in range(2)]
    )
    got = sym.partial(Ref("h", 2), Ref("W_hh"), "immediate").in_nodes()
    assert all(sympy.expand(g - e) == 0 for g, e in zip(entries_of(got), entries_of(expected)))


def test_immediate_loss_wrt_h1_keeps_only_L1() -> None:
    """∂⁺L/∂h_1 = (yhat_1 - y_1) W_hy^T: h_2 is frozen."""
    model = RNN(steps=2)
    check(model, L_TOTAL, Ref("h", 1), reading="immediate", freeze=(Ref("h", 2),))
    sym = SymbolicRNN(model)
    g = sym.partial(L_TOTAL, Ref("h", 1), "immediate").in_nodes()
    W, yhat, y = sym.symbols(Ref("W_hy")), sym.symbols(Ref("yhat", 1)), sym.symbols(Ref("y", 1))
    expected = ((yhat - y) * W.T)[0, :]
    assert all(sympy.expand(g[i] - expected[i]) == 0 for i in range(2))


@pytest.mark.parametrize(
    "num,den,frozen",
    [
        (Ref("h", 2), Ref("W_xh"), (Ref("h", 1),)),
        (L_TOTAL, Ref("W_hh"), (Ref("h", 1), Ref("h", 2), Ref("h", 3))),
        (Ref("L", 3), Ref("W_hh"), (Ref("h", 1), Ref("h", 2))),
        (Ref("L", 3), Ref("h", 1), (Ref("h", 2),)),
        (L_TOTAL, Ref("x", 2), (Ref("h", 1), Ref("h", 3))),
        (Ref("h", 3), Ref("W_hh"), (Ref("h", 1), Ref("h", 2))),
    ],
)
def test_immediate_against_frozen_reference(num: Ref, den: Ref, frozen: tuple[Ref, ...]) -> None:
    model = RNN(steps=3)
    check(model, num, den, reading="immediate", freeze=frozen, points=2)


def test_immediate_loss_wrt_W_hh_is_zero() -> None:
    """Every path from W_hh to L passes some h_t (no step of its own): ∂⁺L/∂W_hh = 0, ∂⁺L_2/∂W_hh keeps a_2 → h_2."""
    model = RNN(steps=2)
    sym = SymbolicRNN(model)
    values = sym.forward_values(sample_leaves(model, 2, 0))
    assert np.all(sym.partial(L_TOTAL, Ref("W_hh"), "immediate").evaluate(values) == 0)
    check(model, Ref("L", 2), Ref("W_hh"), reading="immediate", freeze=(Ref("h", 1),))


# ---------------------------------------------------------------------------
# exactness, identities, paths, errors
# ---------------------------------------------------------------------------


def random_fraction_values(model: RNN, sym: SymbolicRNN, points: int, seed: int) -> dict[Ref, np.ndarray]:
    """Independent rational values for every ref (y_t's last entry = 1 - the others), as dtype=object arrays."""
    rnd = random.Random(seed)
    out: dict[Ref, np.ndarray] = {}
    for ref in model.refs():
        rows, cols = model.shape(ref)
        arr = np.empty((points, rows, cols), dtype=object)
        for p in range(points):
            for i in range(rows):
                for j in range(cols):
                    arr[p, i, j] = Fraction(rnd.randint(-40, 40) or 1, rnd.randint(1, 17))
            if ref.family == "y":
                arr[p, 0, -1] = 1 - sum(arr[p, 0, :-1])
            if ref == Ref("h", 0) and model.h0 == "zeros":
                arr[p] = 0
        out[ref] = arr
    return out


EXACT_CASES = [
    (L_TOTAL, Ref("W_hh"), "total"),
    (L_TOTAL, Ref("W_xh"), "total"),
    (L_TOTAL, Ref("b_h"), "total"),
    (L_TOTAL, Ref("y", 1), "total"),
    (L_TOTAL, Ref("h", 0), "total"),
    (L_TOTAL, Ref("h", 1), "immediate"),
    (Ref("h", 2), Ref("W_hh"), "immediate"),
    (Ref("yhat", 2), Ref("z", 2), "total"),
    (Ref("L", 2), Ref("yhat", 2), "total"),
    (Ref("yhat", 1), Ref("W_hy"), "total"),
]


@pytest.mark.parametrize("num,den,reading", EXACT_CASES)
def test_exact_evaluation_matches_in_nodes(num: Ref, den: Ref, reading: str) -> None:
    """On Fraction object arrays, evaluate() is exactly the rational value of in_nodes(); on floats, its float value."""
    model = RNN(steps=2, biases=True, output_size=3)
    sym = SymbolicRNN(model)
    jac = sym.partial(num, den, reading)  # type: ignore[arg-type]
    values = random_fraction_values(model, sym, 2, seed=len(EXACT_CASES) * len(str(num)) + len(str(den)))
    got = jac.evaluate(values)
    assert got.dtype == object and got.shape == (2, *jac.shape)
    exprs = entries_of(jac.in_nodes())
    floats = {r: v.astype(np.float64) for r, v in values.items()}
    got_float = jac.evaluate(floats)
    assert got_float.dtype == np.float64
    for p in range(2):
        subs = {
            s: sympy.Rational(values[r][p].reshape(-1)[k].numerator, values[r][p].reshape(-1)[k].denominator)
            for r in model.refs()
            for k, s in enumerate(sym.symbols(r))
        }
        for e, g, gf in zip(exprs, got[p].reshape(-1), got_float[p].reshape(-1)):
            want = e.xreplace(subs)
            assert want.is_Rational
            assert isinstance(g, (Fraction, int))
            assert Fraction(int(want.p), int(want.q)) == g
            assert math.isclose(gf, float(want), rel_tol=1e-9, abs_tol=1e-12)


def test_in_nodes_simplified_with_simplex_constraint() -> None:
    sym = SymbolicRNN(RNN(steps=2))
    g = sym.partial(Ref("L", 1), Ref("z", 1)).in_nodes()
    yhat, y = sym.symbols(Ref("yhat", 1)), sym.symbols(Ref("y", 1))
    assert entries_of(g) == [yhat[0] - y[0], yhat[1] - y[1]]
    g = sym.partial(L_TOTAL, Ref("W_hy")).in_nodes()
    h1, h2 = sym.symbols(Ref("h", 1)), sym.symbols(Ref("h", 2))
    yhat2, y2 = sym.symbols(Ref("yhat", 2)), sym.symbols(Ref("y", 2))
    assert sympy.expand(g[0, 1] - (h1[0] * (yhat[1] - y[1]) + h2[0] * (yhat2[1] - y2[1]))) == 0
    dh = sym.partial(Ref("h", 1), Ref("a", 1)).in_nodes()
    h1 = sym.symbols(Ref("h", 1))
    assert dh[0, 0] == 1 - h1[0] ** 2 and dh[0, 1] == 0
    dy = sym.partial(Ref("L", 1), Ref("yhat", 1)).in_nodes()
    assert dy[0] == -y[0] / yhat[0]
    rational = [sym.partial(L_TOTAL, r).in_nodes() for r in sym.model.refs()]
    for arr in rational:
        for e in entries_of(arr):
            assert not e.has(sympy.tanh, sympy.exp, sympy.log)


def test_identities_and_zeros() -> None:
    model = RNN(steps=2, hidden_size=3)
    sym = SymbolicRNN(model)
    values = sym.forward_values(sample_leaves(model, 2, 5))
    eye = sym.partial(Ref("W_hh"), Ref("W_hh")).evaluate(values)
    assert eye.shape == (2, 3, 3, 3, 3)
    np.testing.assert_array_equal(eye[0], np.eye(9).reshape(3, 3, 3, 3))
    assert np.all(sym.partial(Ref("x", 1), Ref("W_hh")).evaluate(values) == 0)
    one = sym.partial(Ref("L", 1), Ref("L", 1))
    assert one.shape == () and np.all(one.evaluate(values) == 1) and one.evaluate(values).shape == (2,)
    assert np.all(sym.partial(Ref("h", 1), Ref("h", 2)).evaluate(values) == 0)
    assert np.all(sym.partial(Ref("L", 1), Ref("x", 2)).evaluate(values) == 0)
    np.testing.assert_array_equal(sym.partial(Ref("h", 2), Ref("h", 2)).evaluate(values)[1], np.eye(3))
    assert sym.partial(L_TOTAL, Ref("L", 2)).evaluate(values).tolist() == [1.0, 1.0]
    last = SymbolicRNN(RNN(steps=2, loss_at="last"))
    assert last.partial(L_TOTAL, Ref("L", 1)).evaluate(values).tolist() == [0.0, 0.0]
    assert last.paths(L_TOTAL, Ref("z", 1)) == ()


def test_paths_of_dL_dW_hh() -> None:
    sym = SymbolicRNN(RNN(steps=2))
    W, L = Ref("W_hh"), L_TOTAL
    a1, h1, z1, s1, c1 = Ref("a", 1), Ref("h", 1), Ref("z", 1), Ref("yhat", 1), Ref("L", 1)
    a2, h2, z2, s2, c2 = Ref("a", 2), Ref("h", 2), Ref("z", 2), Ref("yhat", 2), Ref("L", 2)
    assert set(sym.paths(L, W)) == {
        (W, a1, h1, z1, s1, c1, L),
        (W, a2, h2, z2, s2, c2, L),
        (W, a1, h1, a2, h2, z2, s2, c2, L),
    }
    assert sym.paths(h1, h1) == ((h1,),)
    assert sym.paths(Ref("L", 2), h1) == ((h1, a2, h2, z2, s2, c2),)
    assert len(SymbolicRNN(RNN(steps=3)).paths(L, W)) == 6  # pairs s ≤ t of entry and exit steps


def test_symbols_and_definitions() -> None:
    sym = SymbolicRNN(RNN(steps=2, h0="zeros", biases=True))
    assert str(sym.symbols(Ref("h", 1))[0, 1]) == "h_1[0,1]"
    assert str(sym.symbols(Ref("W_hh"))[1, 0]) == "W_hh[1,0]"
    assert sym.symbols(Ref("L", 1)).shape == (1, 1)
    assert sym.definition(Ref("h", 0)) == sympy.zeros(1, 2)
    a1 = sym.definition(Ref("a", 1))
    assert not a1.has(*sym.symbols(Ref("W_hh")))
    assert sym.definition(Ref("a", 2)).has(sym.symbols(Ref("W_hh"))[0, 0], sym.symbols(Ref("b_h"))[0, 1])
    with pytest.raises(ConfigError):
        sym.definition(Ref("W_hh"))
    with pytest.raises(ConfigError):
        sym.partial(L_TOTAL, Ref("h", 3))
    with pytest.raises(ConfigError):
        sym.partial(L_TOTAL, Ref("W_hh"), "sideways")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        sym.loss_in_leaves(Ref("h", 1))


def test_programs_grow_linearly_in_T() -> None:
    """One sweep of ∂L/∂· binds a fixed number of intermediate symbols per step."""
    sizes = {}
    for T in (4, 8, 16):
        sym = SymbolicRNN(RNN(steps=T, hidden_size=3, input_size=2, output_size=3))
        for den in (Ref("W_hh"), Ref("x", 1), Ref("h", 1)):
            sym.partial(L_TOTAL, den)
        sizes[T] = (len(sym._tape), sym.partial(L_TOTAL, Ref("W_hh")).program_size)
    assert sizes[16][0] - sizes[8][0] == 2 * (sizes[8][0] - sizes[4][0])
    assert sizes[16][1] <= 2.2 * sizes[8][1] <= 4.4 * sizes[4][1]
    # ∂L/∂h_T needs only the last step's share of the program
    sym = SymbolicRNN(RNN(steps=16))
    assert sym.partial(L_TOTAL, Ref("h", 16)).program_size * 8 < sym.partial(L_TOTAL, Ref("h", 1)).program_size


# ---------------------------------------------------------------------------
# property: random configurations
# ---------------------------------------------------------------------------


@st.composite
def configurations(draw: st.DrawFn) -> tuple[RNN, Ref, Ref, int]:
    T = draw(st.integers(1, 4))
    H = draw(st.integers(1, 3 if T <= 3 else 2))
    D = draw(st.integers(1, 3))
    O = draw(st.integers(2, 3))
    model = RNN(
        steps=T,
        input_size=D,
        hidden_size=H,
        output_size=O,
        loss_at=draw(st.sampled_from(["all", "last"])),
        h0=draw(st.sampled_from(["input", "zeros"])),
        biases=draw(st.booleans()),
    )
    num = draw(st.sampled_from([L_TOTAL] + [Ref("L", t) for t in model.steps_range()]))
    den = draw(st.sampled_from(list(model.leaves())))
    rows, cols = model.shape(den)
    return model, num, den, draw(st.integers(0, rows * cols - 1))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations(), st.integers(0, 2**16))
def test_property_reverse_mode_matches_diff(case: tuple[RNN, Ref, Ref, int], seed: int) -> None:
    model, num, den, entry = case
    check(model, num, den, entries=[entry], seed=seed, points=2)


# ---------------------------------------------------------------------------
# model options: convention, activation, loss (against central differences of
# the numpy forward pass, which is independent of the reverse sweep)
# ---------------------------------------------------------------------------


def _option_leaves(model: RNN, rng: np.random.Generator) -> dict[Ref, np.ndarray]:
    leaves = {r: rng.normal(size=(1, *model.shape(r))) * 0.7 for r in model.leaves()}
    if model.loss == "cross_entropy":
        for t in model.steps_range():
            leaves[Ref("y", t)] = rng.dirichlet(np.ones(model.output_size)).reshape(1, *model.shape(Ref("y", t)))
    return leaves


def _central_difference(sym: SymbolicRNN, leaves: Mapping[Ref, np.ndarray], den: Ref, eps: float = 1e-6) -> np.ndarray:
    out = np.zeros(sym.model.shape(den))
    for idx in np.ndindex(*out.shape):
        plus = {k: v.copy() for k, v in leaves.items()}
        minus = {k: v.copy() for k, v in leaves.items()}
        plus[den][(0, *idx)] += eps
        minus[den][(0, *idx)] -= eps
        out[idx] = (sym.forward_values(plus)[L_TOTAL][0, 0, 0] - sym.forward_values(minus)[L_TOTAL][0, 0, 0]) / (2 * eps)
    return out


@pytest.mark.parametrize("convention", ["row", "column"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
def test_options_gradients_match_central_differences(convention: str, activation: str, loss: str) -> None:
    model = RNN(steps=3, input_size=2, hidden_size=3, output_size=2, biases=True,
                convention=convention, activation=activation, loss=loss)  # type: ignore[arg-type]
    sym = SymbolicRNN(model)
    leaves = _option_leaves(model, np.random.default_rng(7))
    a = sym.forward_values(leaves)
    assert min(np.min(np.abs(a[Ref("a", t)])) for t in model.steps_range()) > 1e-3  # away from relu's kink
    dens = list(model.parameters()) + [Ref("x", 1), Ref("h", 0)]
    if loss == "squared_error":
        dens.append(Ref("y", 2))  # a cross-entropy y_t has no free direction off the simplex
    for den in dens:
        got = sym.partial(L_TOTAL, den).evaluate(a)[0].reshape(model.shape(den))
        np.testing.assert_allclose(got, _central_difference(sym, leaves, den), rtol=1e-6, atol=1e-7, err_msg=str(den))


def test_column_values_are_transposes_of_row_values() -> None:
    row = RNN(steps=2, input_size=2, hidden_size=3, output_size=2, biases=True)
    col = row.replace(convention="column")
    leaves = _option_leaves(row, np.random.default_rng(3))
    r = SymbolicRNN(row)
    c = SymbolicRNN(col)
    rv = r.forward_values(leaves)
    cv = c.forward_values({ref: np.swapaxes(v, 1, 2) for ref, v in leaves.items()})
    for ref in row.nodes():
        np.testing.assert_allclose(np.swapaxes(cv[ref], 1, 2), rv[ref], rtol=1e-13)
    g_row = r.partial(L_TOTAL, Ref("W_xh")).evaluate(rv)
    g_col = c.partial(L_TOTAL, Ref("W_xh")).evaluate(cv)
    assert g_col.shape == (1, 3, 2)
    np.testing.assert_allclose(np.swapaxes(g_col, 1, 2), g_row, rtol=1e-12)
    # a vector-by-vector Jacobian is the same matrix in both conventions
    np.testing.assert_allclose(c.partial(Ref("h", 2), Ref("h", 1)).evaluate(cv), r.partial(Ref("h", 2), Ref("h", 1)).evaluate(rv), rtol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_activation_derivatives_are_written_in_h(activation: str) -> None:
    from bptt_check.symbolic import step

    sym = SymbolicRNN(RNN(steps=1, input_size=1, hidden_size=1, activation=activation))  # type: ignore[arg-type]
    h = sym.symbols(Ref("h", 1))[0, 0]
    expected = {"tanh": 1 - h**2, "sigmoid": h * (1 - h), "relu": step(h)}[activation]
    assert sympy.expand(sym.partial(Ref("h", 1), Ref("a", 1)).in_nodes()[()] - expected) == 0


def test_squared_error_definitions() -> None:
    sym = SymbolicRNN(RNN(steps=1, output_size=1, loss="squared_error"))
    z, y = sym.symbols(Ref("z", 1))[0, 0], sym.symbols(Ref("y", 1))[0, 0]
    assert sym.definition(Ref("yhat", 1))[0, 0] == z
    yhat = sym.symbols(Ref("yhat", 1))[0, 0]
    assert sympy.expand(sym.definition(Ref("L", 1))[0, 0] - (yhat - y) ** 2 / 2) == 0
    assert str(sym.partial(Ref("L", 1), Ref("z", 1)).in_nodes()).replace(" ", "") in ("-y_1+yhat_1", "yhat_1-y_1")


@pytest.mark.parametrize("model", [RNN(steps=4, hidden_size=3), RNN(steps=3, h0="zeros", loss_at="last", convention="column")])
def test_one_direct_sweep_gives_each_immediate_hidden_gradient(model: RNN) -> None:
    """The shared sweep over h, z, yhat, L equals the sweep restricted to each (L, h_t)'s immediate paths."""
    from bptt_check.symbolic import _Core

    sym = SymbolicRNN(model)
    leaves = _option_leaves(model, np.random.default_rng(0))
    values = sym.forward_values(leaves)
    for t in range(0, model.steps + 1):
        h = Ref("h", t)
        got = sym.partial(L_TOTAL, h, "immediate").evaluate(values)
        active = sym._between(L_TOTAL, h, sym._blocked(L_TOTAL, h))
        if not active:
            assert np.all(got == 0)
            continue
        sweep = sym._sweep(L_TOTAL, 0, active)
        core = _Core(sym, list(sweep.adjoints.get(h, [sympy.S.Zero] * got[0].size)), [sweep])
        expected = Jacobian(L_TOTAL, h, "immediate", got.shape[1:], core).evaluate(values)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
