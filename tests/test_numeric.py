"""The jax truth: against finite differences, against a hand-written BPTT, and the two readings."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bptt_check import RNN, ConfigError, Ref
from bptt_check.model import L_TOTAL, squeeze_shape
from bptt_check.numeric import DEFAULT_FD_STEP, NumericRNN, finite_differences
from bptt_check.sampling import numpy_forward, sample_points

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

    δz_t = yhat_t − y_t (loss steps), δh_t = δz_t W_hyᵀ + δa_{t+1} W_hhᵀ,
    δa_t = δh_t ⊙ (1 − h_t²); dW_hy = Σ h_tᵀ δz_t, dW_xh = Σ x_tᵀ δa_t,
    dW_hh = Σ h_{t−1}ᵀ δa_t, dx_t = δa_t W_xhᵀ, dh_0 = δa_1 W_hhᵀ, dy_t = −log yhat_t.
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
        da = dh * (1 - v[Ref("h", t)] ** 2)
        g[Ref("z", t)], g[Ref("h", t)], g[Ref("a", t)] = dz, dh, da
        g[Ref("y", t)] = -on * np.log(v[Ref("yhat", t)])
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


@pytest.mark.parametrize("model", [RNN(), RNN(loss_at="last"), LONGER.replace(h0="zeros"), LONGER.replace(loss_at="last")])
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


# jax compiles once per shape (T, sizes, biases), about a second each, so the
# random models draw their shape from a fixed list of edge cases (T = 1, D = 1,
# H = 1, H > O, O > H, ...) and everything else (loss_at, h0, the points) freely.
SHAPES = [
    (1, (2, 2, 2), False),
    (1, (1, 1, 3), True),
    (2, (3, 1, 2), False),
    (3, (1, 3, 2), True),
    (3, (2, 2, 3), False),
    (4, (2, 3, 2), True),
    (5, (3, 2, 4), False),
    (6, (1, 2, 2), True),
]
models = st.builds(
    lambda shape, loss_at, h0: RNN(
        steps=shape[0],
        input_size=shape[1][0],
        hidden_size=shape[1][1],
        output_size=shape[1][2],
        biases=shape[2],
        loss_at=loss_at,
        h0=h0,
    ),
    st.sampled_from(SHAPES),
    st.sampled_from(["all", "last"]),
    st.sampled_from(["input", "zeros"]),
)


@settings(max_examples=20, deadline=None)
@given(model=models, seed=st.integers(0, 2**16))
def test_every_gradient_of_L_matches_finite_differences(model, seed):
    points = sample_points(model, 3, seed)
    num = NumericRNN(model)
    grads = num.gradients(points)
    wrt = model.leaves() + (Ref("h", 0),) + tuple(r for r in model.nodes() if r.family != "L")
    for ref in wrt:
        fd = finite_differences(model, L_TOTAL, ref, points)
        assert rel(grads[ref].reshape(fd.shape), fd) <= FD_RTOL, ref
        assert rel(num.partial(L_TOTAL, ref, points), fd) <= FD_RTOL, ref


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
