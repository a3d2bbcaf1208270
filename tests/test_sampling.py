"""Sample points: shapes, reproducibility, the simplex, and well-conditioned points (SPEC §2, §5)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bptt_check import RNN, ConfigError, Ref
from bptt_check.model import L_TOTAL
from bptt_check.sampling import (
    A_MAX,
    W_HH_ASYMMETRY,
    describe_point,
    numpy_forward,
    sample_points,
)

models = st.builds(
    RNN,
    steps=st.integers(1, 7),
    input_size=st.integers(1, 4),
    hidden_size=st.integers(1, 5),
    output_size=st.integers(2, 5),
    loss_at=st.sampled_from(["all", "last"]),
    h0=st.sampled_from(["input", "zeros"]),
    biases=st.booleans(),
)


def _families(model: RNN) -> dict[str, list[Ref]]:
    """The stacks that are stratified together (every x_t is one stack)."""
    fams: dict[str, list[Ref]] = {}
    for ref in model.leaves():
        if ref.family == "y" or (ref == Ref("h", 0) and model.h0 == "zeros"):
            continue
        fams.setdefault(ref.family, []).append(ref)
    return fams


def _parameter_gradients(model: RNN, values: dict) -> dict[Ref, np.ndarray]:
    """dL/dW for W_xh, W_hh, W_hy by BPTT, one (P, r, c) array each (written here, independent of sampling)."""
    P = values[L_TOTAL].shape[0]
    grads = {Ref(n): np.zeros_like(values[Ref(n)]) for n in ("W_xh", "W_hh", "W_hy")}
    da_next = np.zeros((P, 1, model.hidden_size))
    for t in reversed(model.steps_range()):
        dz = values[Ref("yhat", t)] - values[Ref("y", t)]
        if t not in model.loss_steps:
            dz = np.zeros_like(dz)
        dh = dz @ np.swapaxes(values[Ref("W_hy")], 1, 2) + da_next @ np.swapaxes(values[Ref("W_hh")], 1, 2)
        da = dh * (1 - values[Ref("h", t)] ** 2)
        grads[Ref("W_hy")] += np.swapaxes(values[Ref("h", t)], 1, 2) @ dz
        grads[Ref("W_xh")] += np.swapaxes(values[Ref("x", t)], 1, 2) @ da
        grads[Ref("W_hh")] += np.swapaxes(values[Ref("h", t - 1)], 1, 2) @ da
        da_next = da
    return grads


def check_point_properties(model: RNN, points: dict, n: int, targets: str = "mixed") -> None:
    D, H, O = model.sizes
    # shapes and dtype: every leaf, plus h_0 (zeros) when it is not an input
    expected = set(model.leaves()) | {Ref("h", 0)}
    assert set(points) == expected
    for ref, arr in points.items():
        assert arr.dtype == np.float64
        assert arr.shape == (n, *model.shape(ref))
        assert np.all(np.isfinite(arr))
    if model.h0 == "zeros":
        assert not points[Ref("h", 0)].any()

    # targets on the simplex, one-hot / soft as asked
    floor = min(0.05, 0.5 / O)
    for t in model.steps_range():
        y = points[Ref("y", t)][:, 0, :]
        assert np.allclose(y.sum(axis=1), 1.0, rtol=0, atol=1e-15)
        assert (y >= 0).all()
        for i in range(n):
            onehot = targets == "onehot" or (targets == "mixed" and i % 2 == 0)
            if onehot:
                assert sorted(y[i]) == [0.0] * (O - 1) + [1.0]
            else:
                assert y[i].min() >= floor - 1e-12

    values = numpy_forward(model, points)
    for t in model.steps_range():
        # never saturated
        assert np.abs(values[Ref("a", t)]).max() <= A_MAX
        # predictions never too close to the targets
        gap = np.abs(values[Ref("yhat", t)] - values[Ref("y", t)]).max(axis=(1, 2))
        assert (gap >= min(0.05, 0.5 / O) - 1e-15).all()

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
@given(model=models, n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), targets=st.sampled_from(["mixed", "onehot", "soft"]))
def test_points_are_well_conditioned(model, n, seed, targets):
    check_point_properties(model, sample_points(model, n, seed, targets=targets), n, targets)
