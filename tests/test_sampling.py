"""Sample points: shapes, reproducibility, targets, and well-conditioned points, for every model option."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bptt_check import RNN, ConfigError, Ref
from bptt_check.model import L_TOTAL
from bptt_check.sampling import (
    A_MAX,
    RELU_FALLBACK_MARGINS,
    RELU_MARGIN,
    TARGET_OFF_SIMPLEX,
    W_HH_ASYMMETRY,
    describe_point,
    numpy_forward,
    region_point,
    relu_pattern,
    sample_points,
)


@st.composite
def models(draw: st.DrawFn) -> RNN:
    loss = draw(st.sampled_from(["cross_entropy", "squared_error"]))
    return RNN(
        steps=draw(st.integers(1, 7)),
        input_size=draw(st.integers(1, 4)),
        hidden_size=draw(st.integers(1, 5)),
        output_size=draw(st.integers(2 if loss == "cross_entropy" else 1, 5)),
        loss_at=draw(st.sampled_from(["all", "last"])),
        h0=draw(st.sampled_from(["input", "zeros"])),
        biases=draw(st.booleans()),
        convention=draw(st.sampled_from(["row", "column"])),
        activation=draw(st.sampled_from(["tanh", "sigmoid", "relu"])),
        loss=loss,
    )


def as_row(model: RNN, values: dict) -> tuple[RNN, dict]:
    """The row-convention twin of a model and its values (every value transposed)."""
    if not model.column:
        return model, values
    return model.replace(convention="row"), {r: np.swapaxes(v, 1, 2) for r, v in values.items()}


def pre_activations(model: RNN, values: dict) -> np.ndarray:
    """a_t of every step, (P, T, H) (either convention)."""
    return np.stack([values[Ref("a", t)].reshape(-1, model.hidden_size) for t in model.steps_range()], axis=1)


def _families(model: RNN) -> dict[str, list[Ref]]:
    """The stacks that are stratified together (every x_t is one stack)."""
    fams: dict[str, list[Ref]] = {}
    for ref in model.leaves():
        if ref.family == "y" or (ref == Ref("h", 0) and model.h0 == "zeros"):
            continue
        fams.setdefault(ref.family, []).append(ref)
    return fams


def _parameter_gradients(model: RNN, values: dict) -> dict[Ref, np.ndarray]:
    """dL/dW for W_xh, W_hh, W_hy by BPTT, one (P, r, c) array each (row convention; independent of sampling).

    δa_t = δh_t ⊙ act'(a_t); dL_t/dz_t = yhat_t - y_t for both losses.
    """
    P = values[L_TOTAL].shape[0]
    grads = {Ref(n): np.zeros_like(values[Ref(n)]) for n in ("W_xh", "W_hh", "W_hy")}
    da_next = np.zeros((P, 1, model.hidden_size))
    for t in reversed(model.steps_range()):
        dz = values[Ref("yhat", t)] - values[Ref("y", t)]
        if t not in model.loss_steps:
            dz = np.zeros_like(dz)
        dh = dz @ np.swapaxes(values[Ref("W_hy")], 1, 2) + da_next @ np.swapaxes(values[Ref("W_hh")], 1, 2)
        h, a = values[Ref("h", t)], values[Ref("a", t)]
        slope = {"tanh": 1 - h**2, "sigmoid": h * (1 - h), "relu": (a > 0).astype(float)}[model.activation]
        da = dh * slope
        grads[Ref("W_hy")] += np.swapaxes(values[Ref("h", t)], 1, 2) @ dz
        grads[Ref("W_xh")] += np.swapaxes(values[Ref("x", t)], 1, 2) @ da
        grads[Ref("W_hh")] += np.swapaxes(values[Ref("h", t - 1)], 1, 2) @ da
        da_next = da
    return grads


def check_point_properties(model: RNN, points: dict, n: int, targets: str = "mixed") -> None:
    D, H, O = model.sizes
    # shapes and dtype, in the model's convention: every leaf, plus h_0 (zeros) when it is not an input
    expected = set(model.leaves()) | {Ref("h", 0)}
    assert set(points) == expected
    for ref, arr in points.items():
        assert arr.dtype == np.float64
        assert arr.shape == (n, *model.shape(ref))
        assert np.all(np.isfinite(arr))
    if model.h0 == "zeros":
        assert not points[Ref("h", 0)].any()
    values = numpy_forward(model, points)
    model, points = as_row(model, points)
    _, values = as_row(model, values)

    # targets: on the simplex (one-hot / soft as asked) for cross-entropy, real vectors for squared error
    floor = min(0.05, 0.5 / O)
    for t in model.steps_range():
        y = points[Ref("y", t)][:, 0, :]
        if model.loss == "squared_error":
            assert (np.abs(y.sum(axis=1) - 1.0) >= TARGET_OFF_SIMPLEX).all()
            assert not np.isin(y, (0.0, 1.0)).all(axis=1).any()  # never one-hot
            continue
        assert np.allclose(y.sum(axis=1), 1.0, rtol=0, atol=1e-15)
        assert (y >= 0).all()
        for i in range(n):
            onehot = targets == "onehot" or (targets == "mixed" and i % 2 == 0)
            if onehot:
                assert sorted(y[i]) == [0.0] * (O - 1) + [1.0]
            else:
                assert y[i].min() >= floor - 1e-12

    for t in model.steps_range():
        # never saturated
        assert np.abs(values[Ref("a", t)]).max() <= A_MAX
        # predictions never too close to the targets
        gap = np.abs(values[Ref("yhat", t)] - values[Ref("y", t)]).max(axis=(1, 2))
        assert (gap >= min(0.05, 0.5 / O) - 1e-15).all()
    if model.activation == "relu":
        check_relu(model, values, n, RELU_MARGIN)

    for i in range(n):
        # entries bounded away from zero and pairwise distinct within each stack
        for fam, refs in _families(model).items():
            mags = np.sort(np.concatenate([np.abs(points[r][i]).ravel() for r in refs]))
            assert mags[0] >= 0.1 * mags[-1], fam
            if len(mags) > 1:
                assert np.diff(mags).min() > 0.05 * mags[-1] / len(mags), fam
        # and distinct across the stacks
        every = np.sort(np.concatenate([np.abs(points[r][i]).ravel() for rs in _families(model).values() for r in rs]))
        assert len(every) < 2 or np.diff(every).min() > 0
        # W_hh never symmetric
        W = points[Ref("W_hh")][i]
        if H >= 2:
            assert np.linalg.norm(W - W.T) >= W_HH_ASYMMETRY * np.linalg.norm(W)


def check_relu(model: RNN, values: dict, n: int, margin: float) -> None:
    """|a_t[j]| ≥ margin everywhere; each point has the activation pattern it aims for (relu_pattern), or,
    when that is out of reach, the weaker rule: H ≥ 2: an inactive entry and an active unit at every step;
    H = 1: even points active at every step, odd points with an inactive step."""
    a = pre_activations(model, values)
    assert np.abs(a).min() >= margin
    for i in range(n):
        if np.array_equal(a[i] > 0, relu_pattern(model, i, n)):
            continue
        if model.hidden_size >= 2:
            assert (a[i] < 0).any(), i
            assert (a[i] > 0).any(axis=1).all(), i
        elif i % 2 == 0:
            assert (a[i] > 0).all(), i
        else:
            assert (a[i] < 0).any(), i
    if n >= 2:  # across the points, both regimes
        assert (a > 0).any() and (a < 0).any()


def every_unit_in_both_states(model: RNN, values: dict) -> bool:
    a = pre_activations(model, values)
    return bool((a > 0).any(axis=0).all() and (a < 0).any(axis=0).all())


def test_default_model_points():
    model = RNN()
    points = sample_points(model, 6, seed=3)
    check_point_properties(model, points, 6)
    grads = _parameter_gradients(model, numpy_forward(model, points))
    for ref, g in grads.items():  # every parameter of the seed's model is square: its gradient must not be symmetric
        for i in range(6):
            assert np.abs(g[i] - g[i].T).max() >= 0.05 * np.abs(g[i]).max(), ref


@pytest.mark.parametrize("targets", ["onehot", "soft", "mixed"])
def test_target_kinds(targets):
    model = RNN(steps=4, output_size=4, biases=True)
    check_point_properties(model, sample_points(model, 5, seed=1, targets=targets), 5, targets)


def test_reproducible_from_the_seed():
    model = RNN(steps=3, hidden_size=3, biases=True)
    a, b = sample_points(model, 4, seed=7), sample_points(model, 4, seed=7)
    c = sample_points(model, 4, seed=8)
    assert all(np.array_equal(a[r], b[r]) for r in a)
    assert not np.array_equal(a[Ref("W_hh")], c[Ref("W_hh")])
    # points differ from one another
    assert not np.array_equal(a[Ref("W_hh")][0], a[Ref("W_hh")][1])


def test_h0_zeros_is_given_as_zeros():
    model = RNN(h0="zeros")
    points = sample_points(model, 2, seed=0)
    assert Ref("h", 0) in points and not points[Ref("h", 0)].any()


def test_large_model_stays_unsaturated():
    model = RNN(steps=30, input_size=16, hidden_size=32, output_size=12, biases=True)
    check_point_properties(model, sample_points(model, 3, seed=2), 3)


def test_describe_point_is_json():
    model = RNN(biases=True)
    points = sample_points(model, 3, seed=0)
    d = describe_point(points, 1)
    json.dumps(d)
    assert set(d) == {str(r) for r in points}
    assert d["W_hh"] == points[Ref("W_hh")][1].tolist()
    assert d["x_2"] == points[Ref("x", 2)][1].tolist()
    assert list(d)[:3] == ["W_xh", "W_hh", "W_hy"]


def test_describe_point_exact_values():
    from fractions import Fraction

    points = {Ref("x", 1): np.array([[[Fraction(1, 3), 2]]], dtype=object)}
    assert describe_point(points, 0) == {"x_1": [["1/3", 2]]}


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_invalid_count(n):
    with pytest.raises(ConfigError):
        sample_points(RNN(), n, seed=0)


def test_invalid_targets():
    with pytest.raises(ConfigError):
        sample_points(RNN(), 2, seed=0, targets="uniform")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    model=models(),
    n=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    targets=st.sampled_from(["mixed", "onehot", "soft"]),
)
def test_points_are_well_conditioned(model, n, seed, targets):
    check_point_properties(model, sample_points(model, n, seed, targets=targets), n, targets)


# -- the model options ------------------------------------------------------------------


def test_column_points_are_the_transposed_row_points():
    row = RNN(steps=3, input_size=2, hidden_size=3, output_size=4, biases=True)
    col = row.replace(convention="column")
    r, c = sample_points(row, 3, seed=4), sample_points(col, 3, seed=4)
    assert set(r) == set(c)
    for ref in r:
        assert c[ref].shape == (3, *col.shape(ref))
        assert np.array_equal(c[ref], np.swapaxes(r[ref], 1, 2)), ref
    assert c[Ref("W_xh")].shape == (3, 3, 2) and c[Ref("x", 1)].shape == (3, 2, 1) and c[Ref("b_y")].shape == (3, 4, 1)
    check_point_properties(col, c, 3)


def test_column_forward_is_the_transposed_row_forward():
    row = RNN(steps=3, hidden_size=3, biases=True, activation="sigmoid", loss="squared_error")
    col = row.replace(convention="column")
    points = sample_points(row, 2, seed=0)
    want = numpy_forward(row, points)
    got = numpy_forward(col, {ref: np.swapaxes(v, 1, 2) for ref, v in points.items()})
    assert set(got) == set(want)
    for ref in want:
        assert got[ref].shape == (2, *col.shape(ref))
        assert np.array_equal(got[ref], np.swapaxes(want[ref], 1, 2)), ref


def test_numpy_forward_formulas_for_the_options():
    """One step by hand: W_xh H×D acts on a column x, sigmoid, linear output, L = 1/2 ||z - y||²."""
    model = RNN(steps=1, input_size=2, hidden_size=2, output_size=1, convention="column", activation="sigmoid",
                loss="squared_error", biases=True)
    leaves = {
        Ref("W_xh"): np.array([[[0.5, -1.0], [2.0, 0.25]]]),
        Ref("W_hh"): np.array([[[0.1, 0.2], [-0.3, 0.4]]]),
        Ref("W_hy"): np.array([[[1.5, -2.0]]]),
        Ref("b_h"): np.array([[[0.1], [-0.2]]]),
        Ref("b_y"): np.array([[[0.3]]]),
        Ref("x", 1): np.array([[[1.0], [2.0]]]),
        Ref("y", 1): np.array([[[-0.7]]]),
        Ref("h", 0): np.array([[[0.5], [-0.5]]]),
    }
    v = numpy_forward(model, leaves)
    a = np.array([0.5 - 2.0 + 0.05 - 0.1 + 0.1, 2.0 + 0.5 - 0.15 - 0.2 - 0.2])
    h = 1 / (1 + np.exp(-a))
    z = 1.5 * h[0] - 2.0 * h[1] + 0.3
    assert np.allclose(v[Ref("a", 1)].ravel(), a, rtol=0, atol=1e-15)
    assert np.allclose(v[Ref("h", 1)].ravel(), h, rtol=0, atol=1e-15)
    assert v[Ref("yhat", 1)].item() == v[Ref("z", 1)].item() == pytest.approx(z, abs=1e-15)
    assert v[L_TOTAL].item() == pytest.approx(0.5 * (z + 0.7) ** 2, abs=1e-15)
    relu = numpy_forward(model.replace(activation="relu"), leaves)
    assert np.array_equal(relu[Ref("h", 1)].ravel(), np.maximum(a, 0)) and (relu[Ref("h", 1)] == 0).any()


@pytest.mark.parametrize("convention", ["row", "column"])
def test_squared_error_targets_are_real_vectors(convention):
    model = RNN(steps=5, output_size=3, loss="squared_error", convention=convention)
    for targets in ("mixed", "onehot", "soft"):
        points = sample_points(model, 6, seed=2, targets=targets)
        check_point_properties(model, points, 6, targets)
        y = np.concatenate([points[Ref("y", t)].reshape(6, 3) for t in model.steps_range()])
        assert (y < 0).any() and (np.abs(y) > 1).any()  # normal draws: negative entries, entries beyond 1
    scalar = RNN(output_size=1, loss="squared_error")
    check_point_properties(scalar, sample_points(scalar, 4, seed=0), 4)


@pytest.mark.parametrize("hidden", [1, 2, 4])
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_relu_points_keep_away_from_the_kink(steps, hidden):
    model = RNN(steps=steps, input_size=1, hidden_size=hidden, activation="relu", h0="zeros")
    points = sample_points(model, 6, seed=steps + hidden)
    check_point_properties(model, points, 6)
    a = pre_activations(model, numpy_forward(model, points))
    assert np.abs(a).min() >= RELU_MARGIN


def test_relu_points_let_the_gradient_through_every_step():
    """Every step keeps an active unit (H ≥ 2), so dL/dx_1 never vanishes through a dead step."""
    model = RNN(steps=6, hidden_size=3, loss_at="last", activation="relu")
    points = sample_points(model, 8, seed=1)
    values = numpy_forward(model, points)
    assert (pre_activations(model, values) > 0).any(axis=2).all()
    assert every_unit_in_both_states(model, values)


@pytest.mark.parametrize("loss_at", ["all", "last"])
@pytest.mark.parametrize("hidden", [1, 2, 3])
@pytest.mark.parametrize("steps", [1, 2, 3, 4])
@pytest.mark.parametrize("inputs", [1, 3])
def test_relu_points_reach_their_activation_patterns(inputs, steps, hidden, loss_at):
    """Each unit of each step is inactive at a point of its own, every other unit active there (T·H ≤ 4).

    So with one hidden unit a point has a_1 < 0 while the later steps carry the gradient: a dropped
    step(a_1) shows numerically.
    """
    model = RNN(steps=steps, input_size=inputs, hidden_size=hidden, loss_at=loss_at, activation="relu")
    if steps * hidden > 4:
        model = model.replace(steps=4 // hidden or 1)
    values = numpy_forward(model, sample_points(model, 5, seed=steps))
    a = pre_activations(model, values)
    for i in range(5):
        assert np.array_equal(a[i] > 0, relu_pattern(model, i, 5)), i
    assert every_unit_in_both_states(model, values)
    assert (a[1:] < 0).sum(axis=(1, 2)).max() == 1  # each point one inactive unit at most


@pytest.mark.parametrize("convention", ["row", "column"])
def test_a_region_point_has_the_asked_signs(convention):
    model = RNN(steps=4, input_size=2, hidden_size=2, activation="relu", convention=convention, h0="zeros")
    active = np.array([[False, True], [True, False], [False, False], [True, True]])
    leaves = region_point(model, active, seed=3)
    assert leaves is not None and leaves[Ref("x", 1)].shape[0] == 1
    a = pre_activations(model, numpy_forward(model, leaves))[0]
    assert np.array_equal(a > 0, active) and np.abs(a).min() >= RELU_MARGIN


def test_relu_patterns_cover_both_states():
    for n in (2, 3, 5, 8):
        for steps, hidden in ((1, 1), (3, 1), (2, 2), (6, 3), (50, 1)):
            model = RNN(steps=steps, hidden_size=hidden, activation="relu")
            pats = np.stack([relu_pattern(model, i, n) for i in range(n)])
            assert pats.any(axis=0).all() and (~pats).any(axis=0).all()
            if hidden >= 2:
                assert pats.any(axis=2).all()  # every step keeps an active unit at every point
    assert relu_pattern(RNN(), 0, 5) is None


def test_large_relu_model_falls_back_to_a_smaller_margin():
    model = RNN(steps=30, input_size=16, hidden_size=32, output_size=12, biases=True, activation="relu")
    points = sample_points(model, 2, seed=0)
    values = numpy_forward(model, points)
    a = pre_activations(model, values)
    assert np.abs(a).min() >= RELU_FALLBACK_MARGINS[-1] and np.abs(a).max() <= A_MAX
    assert np.abs(a).min() < RELU_MARGIN  # 960 entries per point: 0.1 is out of reach, the fallback is used
    check_relu(model, values, 2, RELU_FALLBACK_MARGINS[-1])


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("convention", ["row", "column"])
def test_gradients_of_square_parameters_are_asymmetric(activation, convention):
    model = RNN(steps=3, hidden_size=2, activation=activation, convention=convention, loss="squared_error")
    points = sample_points(model, 6, seed=5)
    row, values = as_row(model, numpy_forward(model, points))
    for ref, g in _parameter_gradients(row, values).items():
        for i in range(6):
            peak = np.abs(g[i]).max()
            assert peak == 0 or np.abs(g[i] - g[i].T).max() >= 0.05 * peak, (ref, i)
