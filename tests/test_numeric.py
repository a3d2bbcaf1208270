"""The jax truth: against finite differences, against hand-written BPTTs, the two readings, and the model options."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bptt_check import RNN, ConfigError, Ref
from bptt_check.model import L_TOTAL, squeeze_shape
from bptt_check.numeric import DEFAULT_FD_STEP, NumericRNN, finite_differences
from bptt_check.sampling import numpy_forward, sample_points
from bptt_check.selfcheck import default_configs, fd_difference

FD_RTOL = 1e-6
LONGER = RNN(steps=4, hidden_size=3, biases=True)
"""Most fixed tests use RNN() or this shape, so that jax compiles twice for them (compilation is per shape)."""


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max(1e-12, max|b|)."""
    assert a.shape == b.shape
    return float(np.abs(a - b).max() / max(1e-12, np.abs(b).max()))


# -- a hand-written BPTT for the row convention ------------------------------------


def bptt(model: RNN, v: dict) -> dict[Ref, np.ndarray]:
    """dL/d(every parameter, x_t, y_t, h_t, a_t, z_t) by the textbook recursion, from forward values v.

    δz_t = yhat_t − y_t (loss steps, either loss), δh_t = δz_t W_hyᵀ + δa_{t+1} W_hhᵀ,
    δa_t = δh_t ⊙ act'(a_t) (1 − h_t², h_t(1 − h_t) or [a_t > 0]);
    dW_hy = Σ h_tᵀ δz_t, dW_xh = Σ x_tᵀ δa_t, dW_hh = Σ h_{t−1}ᵀ δa_t, dx_t = δa_t W_xhᵀ, dh_0 = δa_1 W_hhᵀ,
    dy_t = −log yhat_t (cross-entropy) or y_t − yhat_t (squared error).
    """
    T = lambda m: np.swapaxes(m, 1, 2)  # noqa: E731 - batched transpose
    W_xh, W_hh, W_hy = v[Ref("W_xh")], v[Ref("W_hh")], v[Ref("W_hy")]
    g = {Ref(n): np.zeros_like(v[Ref(n)]) for n in ("W_xh", "W_hh", "W_hy")}
    if model.biases:
        g[Ref("b_h")] = np.zeros_like(v[Ref("b_h")])
        g[Ref("b_y")] = np.zeros_like(v[Ref("b_y")])
    da_next = np.zeros_like(v[Ref("h", 1)])
    for t in reversed(model.steps_range()):
        on = 1.0 if t in model.loss_steps else 0.0
        dz = on * (v[Ref("yhat", t)] - v[Ref("y", t)])
        dh = dz @ T(W_hy) + da_next @ T(W_hh)
        h, a = v[Ref("h", t)], v[Ref("a", t)]
        da = dh * {"tanh": 1 - h**2, "sigmoid": h * (1 - h), "relu": (a > 0) * 1.0}[model.activation]
        g[Ref("z", t)], g[Ref("h", t)], g[Ref("a", t)] = dz, dh, da
        if model.loss == "cross_entropy":
            g[Ref("y", t)] = -on * np.log(v[Ref("yhat", t)])
        else:
            g[Ref("y", t)] = -dz
        g[Ref("W_hy")] += T(v[Ref("h", t)]) @ dz
        g[Ref("W_xh")] += T(v[Ref("x", t)]) @ da
        g[Ref("W_hh")] += T(v[Ref("h", t - 1)]) @ da
        g[Ref("x", t)] = da @ T(W_xh)
        if model.biases:
            g[Ref("b_h")] += da
            g[Ref("b_y")] += dz
        da_next = da
    g[Ref("h", 0)] = da_next @ T(W_hh)
    return g


@pytest.mark.parametrize(
    "model",
    [
        RNN(),
        RNN(loss_at="last"),
        LONGER.replace(h0="zeros"),
        LONGER.replace(loss_at="last"),
        RNN(activation="sigmoid"),
        RNN(activation="relu", loss="squared_error", loss_at="last"),
        LONGER.replace(activation="relu"),
        LONGER.replace(loss="squared_error", h0="zeros"),
    ],
    ids=lambda m: m.describe(),
)
def test_jax_matches_hand_written_bptt(model):
    points = sample_points(model, 5, seed=11)
    num = NumericRNN(model)
    values = num.forward(points)
    grads = num.gradients(points)
    expected = bptt(model, values)
    for ref, g in expected.items():
        assert rel(grads[ref], g) <= 1e-12, ref


def test_forward_matches_numpy():
    model = LONGER
    points = sample_points(model, 4, seed=0)
    got, want = NumericRNN(model).forward(points), numpy_forward(model, points)
    assert set(got) == set(model.refs())
    for ref in model.refs():
        assert got[ref].shape == (4, *model.shape(ref))
        assert rel(got[ref], want[ref]) <= 1e-14, ref


# jax compiles once per shape (T, sizes, biases), activation and loss, about a second each,
# so the random models draw these from a fixed list of edge cases (T = 1, D = 1, H = 1, H > O,
# O > H, O = 1, every activation and loss, ...) and everything else (loss_at, h0, the
# convention, the points) freely.
SHAPES = [
    (1, (2, 2, 2), False, "tanh", "cross_entropy"),
    (1, (1, 1, 3), True, "relu", "squared_error"),
    (2, (3, 1, 2), False, "sigmoid", "cross_entropy"),
    (3, (1, 3, 1), True, "tanh", "squared_error"),
    (3, (2, 2, 3), False, "relu", "cross_entropy"),
    (4, (2, 3, 2), True, "sigmoid", "squared_error"),
    (5, (3, 2, 4), False, "tanh", "cross_entropy"),
    (6, (1, 2, 2), True, "sigmoid", "cross_entropy"),
]
models = st.builds(
    lambda shape, loss_at, h0, convention: RNN(
        steps=shape[0],
        input_size=shape[1][0],
        hidden_size=shape[1][1],
        output_size=shape[1][2],
        biases=shape[2],
        activation=shape[3],
        loss=shape[4],
        loss_at=loss_at,
        h0=h0,
        convention=convention,
    ),
    st.sampled_from(SHAPES),
    st.sampled_from(["all", "last"]),
    st.sampled_from(["input", "zeros"]),
    st.sampled_from(["row", "column"]),
)


@settings(max_examples=20, deadline=None)
@given(model=models, seed=st.integers(0, 2**16))
@example(  # a vanishing sigmoid gradient (|dL/dx_1| ~ 1e-5): relative to itself its FD error is 2e-6
    model=RNN(steps=6, input_size=1, hidden_size=2, loss_at="last", h0="zeros", biases=True, activation="sigmoid"),
    seed=4613,
)
def test_every_gradient_of_L_matches_finite_differences(model, seed):
    points = sample_points(model, 3, seed)
    num = NumericRNN(model)
    grads = num.gradients(points)
    loss = float(np.abs(num.forward(points)[L_TOTAL]).max())
    wrt = model.leaves() + (Ref("h", 0),) + tuple(r for r in model.nodes() if r.family != "L")
    for ref in wrt:
        fd = finite_differences(model, L_TOTAL, ref, points)
        # selfcheck's rule: central differences err by ~1e-10·|L|, so a vanishing gradient is measured against L
        assert fd_difference(fd, grads[ref].reshape(fd.shape), loss) <= FD_RTOL, ref
        assert fd_difference(fd, num.partial(L_TOTAL, ref, points), loss) <= FD_RTOL, ref


def test_every_partial_of_the_default_model_matches_finite_differences():
    model = RNN()
    points = sample_points(model, 3, seed=5)
    num = NumericRNN(model)
    for n in model.nodes():
        for d in model.refs():
            jac = num.partial(n, d, points)
            assert jac.shape == (3, *squeeze_shape(model.shape(n)), *squeeze_shape(model.shape(d)))
            fd = finite_differences(model, n, d, points)
            assert np.abs(jac - fd).max() <= FD_RTOL * max(1.0, np.abs(fd).max()), (n, d)


def test_step_loss_gradients():
    model = LONGER
    points = sample_points(model, 2, seed=1)
    num = NumericRNN(model)
    g = num.gradients(points, of=Ref("L", 2))
    assert not g[Ref("x", 3)].any() and not g[Ref("h", 4)].any() and not g[Ref("L", 1)].any()
    assert np.array_equal(g[Ref("L", 2)], np.ones((2, 1, 1)))
    fd = finite_differences(model, Ref("L", 2), Ref("W_hh"), points)
    assert rel(g[Ref("W_hh")], fd) <= FD_RTOL


# -- special partials ---------------------------------------------------------------


def test_identity_zeros_and_layouts():
    model = LONGER  # D = 2, H = 3, O = 2
    points = sample_points(model, 2, seed=0)
    num = NumericRNN(model)
    eye = num.partial(Ref("h", 1), Ref("h", 1), points)
    assert np.array_equal(eye, np.broadcast_to(np.eye(3), (2, 3, 3)))
    w = num.partial(Ref("W_hy"), Ref("W_hy"), points)
    assert w.shape == (2, 3, 2, 3, 2) and w[0, 2, 1, 2, 1] == 1 and w.sum() == 2 * 6
    assert not num.partial(Ref("h", 1), Ref("h", 2), points).any()  # downstream
    assert not num.partial(Ref("h", 1), Ref("x", 2), points).any()
    assert not num.partial(Ref("W_xh"), Ref("W_hh"), points).any()  # a leaf numerator
    assert num.partial(Ref("yhat", 1), Ref("W_hy"), points).shape == (2, 2, 3, 2)
    assert num.partial(Ref("h", 2), Ref("b_h"), points).shape == (2, 3, 3)
    assert num.partial(L_TOTAL, Ref("x", 1), points).shape == (2, 2)
    assert num.partial(Ref("L", 1), L_TOTAL, points).shape == (2,)
    assert np.array_equal(num.partial(L_TOTAL, Ref("L", 2), points), np.ones(2))
    # [i, j] = ∂h_2[i]/∂h_1[j] = (1 - h_2[i]²) W_hh[j, i]
    v = num.forward(points)
    want = (1 - v[Ref("h", 2)][:, 0, :, None] ** 2) * np.swapaxes(points[Ref("W_hh")], 1, 2)
    assert rel(num.partial(Ref("h", 2), Ref("h", 1), points), want) <= 1e-14


def test_h0_zeros_may_be_omitted():
    model = RNN(h0="zeros")
    points = sample_points(model, 2, seed=0)
    without = {r: a for r, a in points.items() if r != Ref("h", 0)}
    num = NumericRNN(model)
    assert np.array_equal(num.gradients(points)[Ref("h", 0)], num.gradients(without)[Ref("h", 0)])
    assert rel(num.partial(L_TOTAL, Ref("h", 0), without), finite_differences(model, L_TOTAL, Ref("h", 0), without)) <= FD_RTOL


# -- readings -----------------------------------------------------------------------


def test_immediate_dh2_dWhh_holds_h1_fixed():
    model = RNN()
    points = sample_points(model, 3, seed=2)
    num = NumericRNN(model)
    v = num.forward(points)
    h1, h2 = v[Ref("h", 1)][:, 0], v[Ref("h", 2)][:, 0]
    # ∂⁺h_2[i]/∂W_hh[j,k] = (1 - h_2[i]²) h_1[j] δ_ik
    direct = np.einsum("pi,pj,ik->pijk", 1 - h2**2, h1, np.eye(2))
    assert rel(num.partial(Ref("h", 2), Ref("W_hh"), points, "immediate"), direct) <= 1e-14
    total = num.partial(Ref("h", 2), Ref("W_hh"), points)
    assert rel(total, direct) > 1e-3  # the path through h_1 matters
    assert rel(total, finite_differences(model, Ref("h", 2), Ref("W_hh"), points)) <= FD_RTOL


def test_immediate_dL_dh1_is_the_step_loss_path():
    model = RNN()
    points = sample_points(model, 3, seed=2)
    num = NumericRNN(model)
    immediate = num.partial(L_TOTAL, Ref("h", 1), points, "immediate")
    assert rel(immediate, num.partial(Ref("L", 1), Ref("h", 1), points)) <= 1e-15
    assert rel(num.partial(L_TOTAL, Ref("h", 1), points), immediate) > 1e-3


def test_unambiguous_partial_is_the_same_under_both_readings():
    model = RNN()
    points = sample_points(model, 3, seed=2)
    num = NumericRNN(model)
    for n, d in [(Ref("L", 2), Ref("h", 1)), (L_TOTAL, Ref("W_hy")), (Ref("h", 2), Ref("x", 2))]:
        assert np.array_equal(num.partial(n, d, points, "immediate"), num.partial(n, d, points))


def test_immediate_blocks_middle_states_for_longer_sequences():
    model = LONGER.replace(loss_at="last")
    points = sample_points(model, 2, seed=0)
    num = NumericRNN(model)
    # every path from x_1 to L = L_4 passes h_2 and h_3
    assert not num.partial(L_TOTAL, Ref("x", 1), points, "immediate").any()
    # ∂⁺h_4/∂h_3 = ∂h_4/∂h_3 (adjacent steps); ∂⁺h_4/∂h_2 = 0
    assert np.array_equal(
        num.partial(Ref("h", 4), Ref("h", 3), points, "immediate"), num.partial(Ref("h", 4), Ref("h", 3), points)
    )
    assert not num.partial(Ref("h", 4), Ref("h", 2), points, "immediate").any()


# -- errors and finite differences ----------------------------------------------


def test_errors():
    model = RNN()
    points = sample_points(model, 2, seed=0)
    num = NumericRNN(model)
    with pytest.raises(ConfigError):
        num.partial(Ref("h", 3), Ref("W_hh"), points)
    with pytest.raises(ConfigError):
        num.partial(L_TOTAL, Ref("b_h"), points)  # no biases
    with pytest.raises(ConfigError):
        num.partial(L_TOTAL, Ref("W_hh"), points, "direct")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        num.gradients(points, of=Ref("h", 1))
    with pytest.raises(ConfigError):
        num.forward({r: a for r, a in points.items() if r != Ref("x", 1)})
    with pytest.raises(ConfigError):
        num.forward({**points, Ref("W_hh"): points[Ref("W_hh")][:1]})
    with pytest.raises(ConfigError):
        finite_differences(model, L_TOTAL, Ref("W_hh"), points, step=0.0)


def test_default_step_is_cube_root_of_eps():
    assert DEFAULT_FD_STEP == pytest.approx(np.finfo(np.float64).eps ** (1 / 3))
    model = RNN()
    points = sample_points(model, 2, seed=0)
    exact = NumericRNN(model).partial(L_TOTAL, Ref("W_hh"), points)
    # the default step is far more accurate than a naive one
    assert rel(finite_differences(model, L_TOTAL, Ref("W_hh"), points), exact) < 1e-8
    assert rel(finite_differences(model, L_TOTAL, Ref("W_hh"), points, step=1e-3), exact) > 1e-8


# -- the model options -------------------------------------------------------------


def column_sigmoid_squared_error(model: RNN, p: dict) -> tuple[dict, dict]:
    """Forward values and dL/d(leaves, a_t, h_t, z_t) of a column/sigmoid/squared-error model with biases, by hand.

    a_t = W_xh x_t + W_hh h_{t-1} + b_h, h_t = σ(a_t), z_t = W_hy h_t + b_y, L_t = 1/2 ||z_t - y_t||²;
    δz_t = z_t - y_t, δh_t = W_hyᵀ δz_t + W_hhᵀ δa_{t+1}, δa_t = δh_t ⊙ h_t (1 - h_t);
    dW_hy = Σ δz_t h_tᵀ, dW_xh = Σ δa_t x_tᵀ, dW_hh = Σ δa_t h_{t-1}ᵀ, db_h = Σ δa_t, db_y = Σ δz_t,
    dx_t = W_xhᵀ δa_t, dy_t = -δz_t, dh_0 = W_hhᵀ δa_1. One point at a time, plain loops.
    """
    P, T = p[Ref("W_hh")].shape[0], model.steps
    fwd: dict = {}
    grads: dict = {}
    for i in range(P):
        W_xh, W_hh, W_hy = (p[Ref(n)][i] for n in ("W_xh", "W_hh", "W_hy"))
        b_h, b_y = p[Ref("b_h")][i], p[Ref("b_y")][i]
        h = {0: p[Ref("h", 0)][i]}
        a, z = {}, {}
        for t in range(1, T + 1):
            a[t] = W_xh @ p[Ref("x", t)][i] + W_hh @ h[t - 1] + b_h
            h[t] = 1 / (1 + np.exp(-a[t]))
            z[t] = W_hy @ h[t] + b_y
        losses = {t: 0.5 * float(np.sum((z[t] - p[Ref("y", t)][i]) ** 2)) for t in range(1, T + 1)}
        g = {Ref(n): np.zeros_like(p[Ref(n)][i]) for n in ("W_xh", "W_hh", "W_hy", "b_h", "b_y")}
        da_next = np.zeros_like(b_h)
        for t in range(T, 0, -1):
            dz = (z[t] - p[Ref("y", t)][i]) * (t in model.loss_steps)
            dh = W_hy.T @ dz + W_hh.T @ da_next
            da = dh * h[t] * (1 - h[t])
            g[Ref("W_hy")] += dz @ h[t].T
            g[Ref("W_xh")] += da @ p[Ref("x", t)][i].T
            g[Ref("W_hh")] += da @ h[t - 1].T
            g[Ref("b_h")] += da
            g[Ref("b_y")] += dz
            g[Ref("x", t)], g[Ref("y", t)] = W_xh.T @ da, -dz
            g[Ref("a", t)], g[Ref("h", t)], g[Ref("z", t)] = da, dh, dz
            da_next = da
        g[Ref("h", 0)] = W_hh.T @ da_next
        values = {Ref(k, t): d[t] for k, d in (("a", a), ("h", h), ("z", z), ("yhat", z)) for t in d}
        values.update({Ref("L", t): np.array([[losses[t]]]) for t in losses})
        values[L_TOTAL] = np.array([[sum(losses[t] for t in model.loss_steps)]])
        for store, items in ((fwd, values), (grads, g)):
            for ref, val in items.items():
                store.setdefault(ref, []).append(val)
    return {r: np.stack(v) for r, v in fwd.items()}, {r: np.stack(v) for r, v in grads.items()}


@pytest.mark.parametrize("loss_at", ["all", "last"])
def test_jax_matches_a_hand_written_column_sigmoid_squared_error_rnn(loss_at):
    model = RNN(steps=4, input_size=2, hidden_size=3, output_size=2, biases=True, convention="column",
                activation="sigmoid", loss="squared_error", loss_at=loss_at)
    points = sample_points(model, 4, seed=9)
    num = NumericRNN(model)
    want_values, want_grads = column_sigmoid_squared_error(model, points)
    values, grads = num.forward(points), num.gradients(points)
    assert values[Ref("a", 1)].shape == (4, 3, 1) and grads[Ref("W_xh")].shape == (4, 3, 2)
    for ref, want in want_values.items():
        assert values[ref].shape == want.shape and rel(values[ref], want) <= 1e-14, ref
    for ref, want in want_grads.items():
        assert grads[ref].shape == want.shape and rel(grads[ref], want) <= 1e-12, ref


def _transposed_partial(model: RNN, num: Ref, den: Ref, jac: np.ndarray) -> np.ndarray:
    """A row model's ∂num/∂den in the column model's layout: only a weight-matrix denominator's axes swap."""
    return np.swapaxes(jac, -1, -2) if den.family in ("W_xh", "W_hh", "W_hy") else jac


@pytest.mark.parametrize(
    "row",
    [RNN(), RNN(activation="sigmoid"), RNN(activation="relu", loss="squared_error", loss_at="last"), LONGER],
    ids=lambda m: m.describe(),
)
def test_column_model_is_the_transposed_row_model(row):
    col = row.replace(convention="column")
    points = sample_points(row, 3, seed=3)
    cpoints = sample_points(col, 3, seed=3)
    assert all(np.array_equal(cpoints[r], np.swapaxes(points[r], 1, 2)) for r in points)
    nr, nc = NumericRNN(row), NumericRNN(col)
    fr, fc = nr.forward(points), nc.forward(cpoints)
    gr, gc = nr.gradients(points), nc.gradients(cpoints)
    for ref in row.refs():
        assert fc[ref].shape == gc[ref].shape == (3, *col.shape(ref)), ref
        assert np.array_equal(fc[ref], np.swapaxes(fr[ref], 1, 2)), ref
        assert np.array_equal(gc[ref], np.swapaxes(gr[ref], 1, 2)), ref
    for num in (Ref("h", 2), Ref("yhat", 1), Ref("L", 2)):
        for den in row.refs():
            jac = nc.partial(num, den, cpoints)
            assert jac.shape == (3, *squeeze_shape(col.shape(num)), *squeeze_shape(col.shape(den)))
            assert np.array_equal(jac, _transposed_partial(row, num, den, nr.partial(num, den, points))), (num, den)
            imm = nc.partial(num, den, cpoints, "immediate")
            assert np.array_equal(imm, _transposed_partial(row, num, den, nr.partial(num, den, points, "immediate")))


def test_column_layouts():
    model = LONGER.replace(convention="column")  # D = 2, H = 3, O = 2
    points = sample_points(model, 2, seed=0)
    num = NumericRNN(model)
    assert num.partial(Ref("yhat", 1), Ref("W_hy"), points).shape == (2, 2, 2, 3)
    assert num.partial(L_TOTAL, Ref("W_xh"), points).shape == (2, 3, 2)
    w = num.partial(Ref("W_hy"), Ref("W_hy"), points)
    assert w.shape == (2, 2, 3, 2, 3) and w[0, 1, 2, 1, 2] == 1 and w.sum() == 2 * 6
    # [i, j] = ∂h_2[i]/∂h_1[j] = (1 - h_2[i]²) W_hh[i, j] with column vectors
    v = num.forward(points)
    want = (1 - v[Ref("h", 2)][:, :, 0, None] ** 2) * points[Ref("W_hh")]
    assert rel(num.partial(Ref("h", 2), Ref("h", 1), points), want) <= 1e-14
    # ∂z_1[i]/∂W_hy[j, k] = δ_ij h_1[k]
    want = np.einsum("ij,pk->pijk", np.eye(2), v[Ref("h", 1)][:, :, 0])
    assert np.array_equal(num.partial(Ref("z", 1), Ref("W_hy"), points), want)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_activation_derivatives(activation):
    model = RNN(activation=activation, loss="squared_error")
    points = sample_points(model, 4, seed=1)
    num = NumericRNN(model)
    v = num.forward(points)
    for t in model.steps_range():
        a, h = v[Ref("a", t)][:, 0], v[Ref("h", t)][:, 0]
        want = {"tanh": 1 - h**2, "sigmoid": h * (1 - h), "relu": (a > 0) * 1.0}[activation]
        jac = num.partial(Ref("h", t), Ref("a", t), points)
        assert rel(jac, np.einsum("pi,ij->pij", want, np.eye(2))) <= 1e-15
        act = {"tanh": np.tanh(a), "sigmoid": 1 / (1 + np.exp(-a)), "relu": np.maximum(a, 0)}[activation]
        assert rel(h, act) <= 1e-15
    if activation == "relu":  # the kink is avoided, and both regimes occur
        a = np.concatenate([v[Ref("a", t)] for t in model.steps_range()])
        assert np.abs(a).min() >= 0.1 and (a > 0).any() and (a < 0).any()


@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
def test_output_and_loss_derivatives(loss):
    model = RNN(activation="sigmoid", loss=loss)
    points = sample_points(model, 3, seed=2)
    num = NumericRNN(model)
    v = num.forward(points)
    for t in model.steps_range():
        yhat, y, z = v[Ref("yhat", t)][:, 0], v[Ref("y", t)][:, 0], v[Ref("z", t)][:, 0]
        # dL_t/dz_t = yhat_t - y_t with either loss
        assert rel(num.partial(Ref("L", t), Ref("z", t), points), yhat - y) <= 1e-13
        if loss == "squared_error":
            assert np.array_equal(yhat, z)
            eye = np.broadcast_to(np.eye(2), (3, 2, 2))
            assert np.array_equal(num.partial(Ref("yhat", t), Ref("z", t), points), eye)
            assert rel(num.partial(Ref("L", t), Ref("yhat", t), points), yhat - y) <= 1e-15
            assert rel(v[Ref("L", t)][:, 0, 0], 0.5 * ((yhat - y) ** 2).sum(axis=1)) <= 1e-15
        else:
            assert rel(num.partial(Ref("L", t), Ref("yhat", t), points), -y / yhat) <= 1e-15


def test_the_compiled_program_is_keyed_by_activation_and_loss():
    """Models of one shape that differ in activation or loss each get their own program (never another's)."""
    base = RNN(steps=3, input_size=1, hidden_size=2, output_size=3)
    for activation in ("tanh", "relu", "sigmoid"):
        for loss in ("cross_entropy", "squared_error"):
            model = base.replace(activation=activation, loss=loss)
            points = sample_points(model, 2, seed=0)
            got = NumericRNN(model).forward(points)
            want = numpy_forward(model, points)
            assert rel(got[L_TOTAL], want[L_TOTAL]) <= 1e-14, model.describe()
            assert rel(got[Ref("h", 3)], want[Ref("h", 3)]) <= 1e-14, model.describe()


GROUP_MODELS = [default_configs()[4 * g + g % 4] for g in range(12)]
"""One model of each of the selfcheck grid's twelve groups (each (biases, activation, loss) once, both conventions):
the compiled programs are the grid's."""


@pytest.mark.parametrize("model", GROUP_MODELS, ids=lambda m: m.describe())
def test_finite_differences_for_every_option(model):
    points = sample_points(model, 2, seed=7)
    num = NumericRNN(model)
    grads = num.gradients(points)
    for ref in model.leaves() + (Ref("h", 0),) + tuple(r for r in model.nodes() if r.family != "L"):
        fd = finite_differences(model, L_TOTAL, ref, points)
        assert fd.shape == (2, *squeeze_shape(model.shape(ref))), ref
        assert np.abs(grads[ref].reshape(fd.shape) - fd).max() <= FD_RTOL * max(1.0, np.abs(fd).max()), ref
    T = model.steps
    for n in (Ref("h", T), Ref("yhat", 1), Ref("a", T)):
        for d in model.refs():
            jac = num.partial(n, d, points)
            fd = finite_differences(model, n, d, points)
            assert np.abs(jac - fd).max() <= FD_RTOL * max(1.0, np.abs(fd).max()), (n, d)


@pytest.mark.parametrize("model", [RNN(steps=4, hidden_size=3), RNN(steps=3, convention="column", activation="sigmoid", loss="squared_error", biases=True)])
def test_cut_recurrence_gives_every_immediate_hidden_gradient(model: RNN) -> None:
    """gradients(recurrent=False) at h_t equals the immediate ∂L/∂h_t that a per-t block mask gives."""
    leaves = sample_points(model, 3, seed=1)
    net = NumericRNN(model)
    cut = net.gradients(leaves, L_TOTAL, recurrent=False)
    full = net.gradients(leaves, L_TOTAL)
    for t in model.steps_range():  # h_0 is an input: its edge to a_1 is not cut
        h = Ref("h", t)
        immediate = net.partial(L_TOTAL, h, leaves, "immediate").reshape(cut[h].shape)
        np.testing.assert_allclose(cut[h], immediate, rtol=1e-12, atol=1e-15)
    assert not np.allclose(cut[Ref("h", 1)], full[Ref("h", 1)])  # the recurrent paths were cut


# -- no global jax setting ----------------------------------------------------------


def test_the_truth_is_float64_while_jax_stays_in_its_default_float32() -> None:
    import jax
    import jax.numpy as jnp

    import bptt_check.testing  # noqa: F401 - importing the helpers must not switch jax either

    assert jax.config.jax_enable_x64 is False
    model = RNN()
    leaves = sample_points(model, 2, seed=3)
    grads = NumericRNN(model).gradients(leaves)
    assert all(g.dtype == np.float64 for g in grads.values())
    # float32 would be off by ~1e-7 relative; float64 agrees with central differences to ~1e-10
    fd = finite_differences(model, L_TOTAL, Ref("W_hh"), leaves)
    assert rel(grads[Ref("W_hh")].reshape(fd.shape), fd) < 1e-8
    assert jax.config.jax_enable_x64 is False
    assert jnp.ones(2).dtype == jnp.float32  # the user's own jax code is untouched


def test_importing_and_checking_change_no_global_jax_setting() -> None:
    import jax

    from bptt_check import check

    before = {name: getattr(jax.config, name) for name in ("jax_enable_x64", "jax_compilation_cache_dir")}
    assert check("h_1.T @ (yhat_1 - y_1) + h_2.T @ (yhat_2 - y_2)", "dL/dW_hy").verdict == "equivalent"
    after = {name: getattr(jax.config, name) for name in before}
    assert after == before
    assert after["jax_enable_x64"] is False


def test_the_local_float64_context_compiles_once_per_shape() -> None:
    from bptt_check.numeric import _vjp_fn

    model = RNN(steps=3, input_size=3, hidden_size=2, output_size=2)
    leaves = sample_points(model, 2, seed=1)
    NumericRNN(model).gradients(leaves)
    compiled = _vjp_fn._cache_size()
    for seed in (2, 3):  # new points, a new NumericRNN, another reading: data, not a new program
        other = sample_points(model, 3, seed=seed)
        NumericRNN(model).gradients(other)
        NumericRNN(model).partial(Ref("h", 3), Ref("W_hh"), other, reading="immediate")
    assert _vjp_fn._cache_size() == compiled


def test_the_disk_cache_is_opt_in(tmp_path, monkeypatch) -> None:
    import jax

    from bptt_check import numeric

    for off in (None, "", "off", "0", "no", "OFF"):
        if off is None:
            monkeypatch.delenv(numeric.CACHE_ENV, raising=False)
        else:
            monkeypatch.setenv(numeric.CACHE_ENV, off)
        assert numeric.enable_compilation_cache() is None
    saved = jax.config.jax_compilation_cache_dir
    try:
        where = numeric.enable_compilation_cache(tmp_path / "jax")
        assert where == tmp_path / "jax" and where.is_dir()
        assert jax.config.jax_compilation_cache_dir == str(where)
    finally:
        jax.config.update("jax_compilation_cache_dir", saved)
