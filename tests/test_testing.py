"""bptt_check.testing: the strategies, assert_gradients_match and its adapters, the step check, the pytest plugin."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from bptt_check import RNN, ConfigError, Ref
from bptt_check.model import L_TOTAL
from bptt_check.sampling import A_MAX, numpy_forward
from bptt_check.testing import (
    MIN_CHAR_RNN_NAMES,
    RELU_MARGIN,
    TEXTBOOK_NAMES,
    Case,
    InvalidArgumentError,
    assert_backward_match,
    assert_gradients_match,
    assert_step_gradients_match,
    cases,
    models,
    parameters,
    sequences,
)

pytest_plugins = ["pytester"]
example_ok = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "user_rnn"
sys.path.insert(0, str(EXAMPLE))
import rnn_impls  # noqa: E402

MIN_CHAR = {"Wxh": "W_xh", "Whh": "W_hh", "Why": "W_hy", "bh": "b_h", "by": "b_y"}
FAST = dict(max_examples=15, seed=0)


# -- reference implementations in the row layout (canonical names) ------------------------


def row_bptt(params, xs, ys, h0, *, tanh_grad=lambda h: 1 - h**2, prev_offset=1, transpose_whh=False, loss_at="all"):
    """Row-vector BPTT over canonical names; keyword switches introduce one mistake each."""
    W_xh, W_hh, W_hy = params["W_xh"], params["W_hh"], params["W_hy"]
    b_h, b_y = params.get("b_h", 0.0), params.get("b_y", 0.0)
    T = len(xs)
    hs = {0: h0}
    ps, loss = {}, 0.0
    steps = range(1, T + 1) if loss_at == "all" else [T]
    for t in range(1, T + 1):
        hs[t] = np.tanh(xs[t - 1] @ W_xh + hs[t - 1] @ W_hh + b_h)
        z = hs[t] @ W_hy + b_y
        e = np.exp(z - z.max())
        ps[t] = e / e.sum()
        if t in steps:
            loss -= float(ys[t - 1] @ np.log(ps[t]))
    g = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next = np.zeros_like(h0)
    for t in range(T, 0, -1):
        dz = ps[t] - ys[t - 1] if t in steps else np.zeros_like(ps[t])
        g["W_hy"] += np.outer(hs[t], dz)
        if "b_y" in g:
            g["b_y"] += dz
        da = (dz @ W_hy.T + dh_next) * tanh_grad(hs[t])
        g["W_xh"] += np.outer(xs[t - 1], da)
        g["W_hh"] += np.outer(hs[t - prev_offset], da)
        if "b_h" in g:
            g["b_h"] += da
        dh_next = da @ W_hh.T
    if transpose_whh:
        g["W_hh"] = g["W_hh"].T
    return loss, g


def row_bptt_with_inputs(params, xs, ys, h0):
    """The same, also returning dh0 and dx (recomputed here by a second, per-step pass)."""
    loss, g = row_bptt(params, xs, ys, h0)
    W_xh, W_hh, W_hy = params["W_xh"], params["W_hh"], params["W_hy"]
    hs = [h0]
    for x in xs:
        hs.append(np.tanh(x @ W_xh + hs[-1] @ W_hh))
    dxs, dh_next = np.zeros_like(xs), np.zeros_like(h0)
    for t in range(len(xs), 0, -1):
        z = hs[t] @ W_hy
        p = np.exp(z - z.max())
        p /= p.sum()
        da = ((p - ys[t - 1]) @ W_hy.T + dh_next) * (1 - hs[t] ** 2)
        dxs[t - 1] = da @ W_xh.T
        dh_next = da @ W_hh.T
    return loss, {**{f"d{k}": v for k, v in g.items()}, "dh0": dh_next, "dx": dxs}


ACT = {"tanh": np.tanh, "sigmoid": lambda a: 1 / (1 + np.exp(-a)), "relu": lambda a: np.maximum(a, 0.0)}
ACT_GRAD = {"tanh": lambda a, h: 1 - h**2, "sigmoid": lambda a, h: h * (1 - h), "relu": lambda a, h: (a > 0) * 1.0}


def any_bptt(params, xs, ys, h0, *, act="tanh", loss="cross_entropy", loss_at="all", bug=None, inputs=False):
    """BPTT for either convention (column inputs are transposed to rows and back), any activation and loss.

    ``bug`` introduces one mistake: ``"no_act_grad"`` (the activation derivative dropped),
    ``"tanh_grad"`` (tanh's 1 - h**2 whatever the activation), ``"softmax"`` (a softmax
    output under squared error), ``"no_half"`` (squared error without its 1/2),
    ``"transposed_why"`` (dW_hy's outer product the wrong way round), ``"dx"`` (dx 1.5 times too large).
    ``inputs`` also returns ``dh0`` and ``dx``.
    """
    column = np.ndim(xs) == 3
    if column:  # (T, D, 1) and (n, 1) → rows; weights transposed
        params = {k: (v.T if k.startswith("W") else v.reshape(-1)) for k, v in params.items()}
        xs, ys, h0 = xs[..., 0], ys[..., 0], h0.reshape(-1)
    W_xh, W_hh, W_hy = params["W_xh"], params["W_hh"], params["W_hy"]
    b_h, b_y = params.get("b_h", 0.0), params.get("b_y", 0.0)
    T = len(xs)
    steps = range(1, T + 1) if loss_at == "all" else [T]
    hs, As, outs, total = {0: h0}, {}, {}, 0.0
    for t in range(1, T + 1):
        As[t] = xs[t - 1] @ W_xh + hs[t - 1] @ W_hh + b_h
        hs[t] = ACT[act](As[t])
        z = hs[t] @ W_hy + b_y
        if loss == "squared_error" and bug != "softmax":
            outs[t] = z
            if t in steps:
                total += 0.5 * float(np.sum((z - ys[t - 1]) ** 2))
        else:
            e = np.exp(z - z.max())
            outs[t] = e / e.sum()
            if t in steps:
                total -= float(ys[t - 1] @ np.log(outs[t]))
    g = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next, dxs = np.zeros_like(h0), np.zeros_like(xs)
    act_grad = {"no_act_grad": lambda a, h: 1.0, "tanh_grad": ACT_GRAD["tanh"]}.get(bug, ACT_GRAD[act])
    for t in range(T, 0, -1):
        dz = outs[t] - ys[t - 1] if t in steps else np.zeros_like(outs[t])
        if bug == "no_half":
            dz = 2 * dz
        g["W_hy"] += np.outer(hs[t], dz)
        if "b_y" in g:
            g["b_y"] += dz
        da = (dz @ W_hy.T + dh_next) * act_grad(As[t], hs[t])
        g["W_xh"] += np.outer(xs[t - 1], da)
        g["W_hh"] += np.outer(hs[t - 1], da)
        if "b_h" in g:
            g["b_h"] += da
        dxs[t - 1] = da @ W_xh.T
        dh_next = da @ W_hh.T
    if inputs:
        g["h0"], g["x"] = dh_next, dxs * (1.5 if bug == "dx" else 1.0)
    if column:
        g = {k: (v.T if k.startswith("W") else v.reshape(-1, 1) if k != "x" else v[..., None]) for k, v in g.items()}
    if bug == "transposed_why":
        g["W_hy"] = g["W_hy"].T
    return total, g


def forward_rows(case):
    """The pre-activations a_t and logits z_t (T, H), (T, O) of a case, computed here in rows (independent of bptt_check)."""
    m = case.model
    p = {k: (v.T if m.column and v.ndim == 2 else v) for k, v in case.params.items()}
    h, As, Zs = case.h0, [], []
    for x in case.xs:
        a = x @ p["W_xh"] + h @ p["W_hh"] + p.get("b_h", 0.0)
        h = ACT[m.activation](a)
        As.append(a)
        Zs.append(h @ p["W_hy"] + p.get("b_y", 0.0))
    return np.array(As), np.array(Zs)


NO_BIAS = models(biases=False, loss_at="all")
WITH_BIAS = models(biases=True, loss_at="all")


# -- strategies -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(models(max_steps=5, max_size=4))
def test_models_are_bounded(model):
    assert 1 <= model.steps <= 5
    assert 1 <= model.input_size <= 4 and 1 <= model.hidden_size <= 4
    assert 2 <= model.output_size <= 4


@settings(max_examples=30, deadline=None)
@given(models(loss_at="last", h0="zeros", biases=True))
def test_models_respect_fixed_options(model):
    assert (model.loss_at, model.h0, model.biases) == ("last", "zeros", True)


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(max_steps=0), "max_steps = 0"),
        (dict(max_steps=100), "max_steps = 100"),
        (dict(max_size=1), "max_size = 1"),
        (dict(max_size=2.5), "max_size = 2.5"),
        (dict(loss_at="first"), "loss_at = 'first'"),
        (dict(h0=0), "h0 = 0"),
        (dict(biases="yes"), "biases = 'yes'"),
    ],
)
def test_models_validate_their_arguments(kwargs, text):
    with pytest.raises(InvalidArgumentError, match=re.escape(text)) as info:
        models(**kwargs)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, InvalidArgument)


def test_strategies_take_keyword_arguments_only():
    with pytest.raises(TypeError):
        models(3)  # type: ignore[misc]
    with pytest.raises(TypeError):
        sequences(RNN(), "soft")  # type: ignore[misc]


def test_strategies_reject_a_non_model():
    for strategy in (parameters, sequences):
        with pytest.raises(InvalidArgumentError, match="must be a bptt_check.RNN"):
            strategy("T=2")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="targets"):
        sequences(RNN(), targets="hard")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(st.data(), models(max_steps=3))
def test_parameters_have_the_model_shapes_and_bounded_nonzero_entries(data, model):
    params = data.draw(parameters(model))
    D, H, O = model.sizes
    want = {"W_xh": (D, H), "W_hh": (H, H), "W_hy": (H, O)}
    if model.biases:
        want |= {"b_h": (H,), "b_y": (O,)}
    assert {k: v.shape for k, v in params.items()} == want
    bounds = {"W_xh": 0.5 / D, "W_hh": 0.5 / H, "W_hy": 1.5 / H, "b_h": 0.5, "b_y": 0.5}
    for name, value in params.items():
        assert np.all(np.abs(value) >= 0.1 * bounds[name] - 1e-15)
        assert np.all(np.abs(value) <= bounds[name] + 1e-15)


@settings(max_examples=40, deadline=None)
@given(st.data(), models(), st.sampled_from(["any", "onehot", "soft"]))
def test_sequences_put_targets_on_the_simplex(data, model, targets):
    seq = data.draw(sequences(model, targets=targets))
    T, (D, H, O) = model.steps, model.sizes
    assert seq.xs.shape == (T, D) and seq.ys.shape == (T, O) and seq.h0.shape == (H,)
    assert np.all(seq.ys >= 0) and np.all(seq.ys.sum(axis=1) == 1.0)
    onehot = np.all(np.isin(seq.ys, (0.0, 1.0)))
    if targets == "onehot":
        assert onehot
    if targets == "soft":
        assert np.all(seq.ys > 0)
    assert np.all(np.abs(seq.xs) >= 0.1)
    if model.h0 == "zeros":
        assert not seq.h0.any()
    else:
        assert np.all((np.abs(seq.h0) >= 0.09 - 1e-15) & (np.abs(seq.h0) <= 0.9))


@settings(max_examples=80, deadline=None)
@given(cases(models(max_steps=6, max_size=5)))
def test_cases_are_well_conditioned(case):
    values = numpy_forward(case.model, case.leaves())
    for t in case.model.steps_range():
        assert np.abs(values[Ref("a", t)]).max() <= A_MAX + 1e-12  # tanh' ≥ 0.18
        assert np.abs(values[Ref("z", t)]).max() <= 2.0 + 1e-12  # no saturated softmax
        assert values[Ref("yhat", t)].min() > 0.005
    assert np.isfinite(values[L_TOTAL]).all()


def _drawn(strategy, n=120):
    """Every value ``strategy`` draws in ``n`` examples (a seeded hypothesis run)."""
    seen = []

    @seed(0)
    @settings(max_examples=n, deadline=None, database=None)
    @given(strategy)
    def collect(value):
        seen.append(value)

    collect()
    return seen


def test_models_default_to_the_seeds_options():
    drawn = _drawn(models(), 60)
    assert {(m.convention, m.activation, m.loss) for m in drawn} == {("row", "tanh", "cross_entropy")}


def test_models_draw_conventions_activations_and_losses_when_asked():
    drawn = _drawn(models(convention=("row", "column"), activation=None, loss=None, max_size=2), 200)
    assert {m.convention for m in drawn} == {"row", "column"}
    assert {m.activation for m in drawn} == {"tanh", "sigmoid", "relu"}
    assert {m.loss for m in drawn} == {"cross_entropy", "squared_error"}
    assert {m.output_size for m in drawn if m.loss == "squared_error"} == {1, 2}  # one output is enough for squared error
    assert min(m.output_size for m in drawn if m.loss == "cross_entropy") == 2
    fixed = _drawn(models(convention="column", activation="relu", loss="squared-error"), 20)
    assert {(m.convention, m.activation, m.loss) for m in fixed} == {("column", "relu", "squared_error")}


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(activation="softplus"), "activation = 'softplus'"),
        (dict(activation=("tanh", "elu")), "activation = ('tanh', 'elu')"),
        (dict(loss=()), "loss = () is empty"),
        (dict(convention="col"), "convention = 'col'"),
        (dict(biases=(True, "no")), "biases = (True, 'no')"),
    ],
)
def test_models_validate_the_new_options(kwargs, text):
    with pytest.raises(InvalidArgumentError, match=re.escape(text)):
        models(**kwargs)


ALL_OPTIONS = models(max_steps=6, max_size=5, convention=None, activation=None, loss=None)
BOTH_CONVENTIONS = models(max_steps=6, max_size=5, convention=("row", "column"), activation=None, loss=None)


@settings(max_examples=60, deadline=None)
@given(st.data(), BOTH_CONVENTIONS)
def test_parameters_have_the_model_shapes_for_every_option(data, model):
    params = data.draw(parameters(model))
    for ref in model.parameters():
        want = (max(model.shape(ref)),) if ref.family.startswith("b_") else model.shape(ref)
        assert params[ref.family].shape == want
    D, H, _ = model.sizes
    relu = model.activation == "relu"
    bounds = {"W_xh": 0.5 / D, "W_hh": (0.25 if relu else 0.5) / H, "W_hy": (1.0 if relu else 1.5) / H, "b_h": 0.5, "b_y": 0.5}
    for name, value in params.items():
        assert np.all(np.abs(value) >= 0.1 * bounds[name] - 1e-15)
        assert np.all(np.abs(value) <= bounds[name] + 1e-15)


@settings(max_examples=100, deadline=None)
@given(cases(BOTH_CONVENTIONS))
def test_cases_are_well_conditioned_for_every_option(case):
    m = case.model
    As, Zs = forward_rows(case)
    assert np.abs(As).max() <= A_MAX + 1e-12  # tanh' ≥ 0.18, sigmoid' ≥ 0.14, relu's h ≤ 1.5
    assert np.abs(Zs).max() <= 2.0 + 1e-12  # no saturated softmax
    if m.activation == "relu":
        assert np.abs(As).min() >= RELU_MARGIN  # away from the kink
    if m.loss == "squared_error":
        assert np.all(case.ys != 0) and np.abs(case.ys).max() <= 1.0  # real targets ±k/10
    else:
        assert np.all(case.ys >= 0) and np.all(case.ys.sum(axis=1) == 1.0)
    leaves = case.leaves()
    for ref in m.leaves():
        assert leaves[ref].shape == (1, *m.shape(ref))


def test_relu_cases_keep_off_the_kink_without_getting_stuck():
    drawn = _drawn(cases(models(max_steps=12, max_size=8, activation="relu", convention=("row", "column"))), 60)
    assert len(drawn) == 60  # no health check failed (filter_too_much)
    for case in drawn:
        assert np.abs(forward_rows(case)[0]).min() >= RELU_MARGIN
    assert any((forward_rows(case)[0] < 0).any() for case in drawn)  # inactive units too: the step function matters


@settings(max_examples=30, deadline=None)
@given(st.data(), models(loss="squared_error", activation="relu"))
def test_sequences_for_given_parameters(data, model):
    params = data.draw(parameters(model))
    seq = data.draw(sequences(model, params=params))
    case = Case(model, params, seq.xs, seq.ys, seq.h0)
    assert np.abs(forward_rows(case)[0]).min() >= RELU_MARGIN
    onehot = data.draw(sequences(model, targets="onehot"))
    assert np.all(onehot.ys.sum(axis=1) == 1.0)


def test_squared_error_targets_are_real_vectors():
    model = RNN(steps=3, output_size=3, loss="squared_error")
    ys = np.concatenate([seq.ys for seq in _drawn(sequences(model), 30)])
    assert (ys < 0).any() and not np.allclose(ys.sum(axis=1), 1.0)
    with pytest.raises(InvalidArgumentError, match="targets = 'real' needs a squared-error model"):
        sequences(RNN(), targets="real")
    with pytest.raises(InvalidArgumentError, match=re.escape("params['W_xh'] must be an array of shape (2, 2)")):
        sequences(RNN(), params={"W_xh": np.zeros((3, 2))})


@example_ok
def test_cases_are_frozen_and_readable():
    case = cases(RNN(steps=2, biases=True)).example()
    assert isinstance(case, Case)
    with pytest.raises(ValueError):
        case.xs[0, 0] = 1.0
    with pytest.raises(TypeError):
        case.params["W_xh"] = np.zeros((2, 2))  # type: ignore[index]
    text = repr(case)
    assert text.startswith(f"Case({case.model.describe()}\n")
    for name in ("W_xh = [[", "W_hh = ", "W_hy = ", "b_h = [", "b_y = ", "xs = ", "ys = ", "h0 = "):
        assert name in text
    assert list(case.params) == ["W_xh", "W_hh", "W_hy", "b_h", "b_y"]


@example_ok
def test_case_arguments_in_the_column_layout():
    model = RNN(steps=3, input_size=2, hidden_size=4, output_size=5, biases=True, convention="column")
    case = cases(model).example()
    assert case.params["W_xh"].shape == (4, 2) and case.params["b_h"].shape == (4,)  # the model's shapes, flat vectors
    for layout in (None, "column"):
        params, xs, ys, h0 = case.arguments(MIN_CHAR, layout=layout)
        assert {k: v.shape for k, v in params.items()} == {
            "Wxh": (4, 2), "Whh": (4, 4), "Why": (5, 4), "bh": (4, 1), "by": (5, 1)
        }
        assert xs.shape == (3, 2, 1) and ys.shape == (3, 5, 1) and h0.shape == (4, 1)
        np.testing.assert_array_equal(params["Whh"], case.params["W_hh"])
    params["Wxh"][0, 0] = 99.0  # a copy: the case is untouched
    assert case.params["W_xh"][0, 0] != 99.0
    params_row, xs_row, _, h0_row = cases(model.replace(convention="row")).example().arguments()
    assert params_row["b_h"].shape == (4,) and params_row["W_xh"].shape == (2, 4)
    assert xs_row.shape == (3, 2) and h0_row.shape == (4,)


@example_ok
def test_case_arguments_refuse_a_layout_that_contradicts_the_model():
    case = cases(RNN()).example()
    with pytest.raises(InvalidArgumentError, match=re.escape("layout = 'column' contradicts the model's convention 'row'")) as info:
        case.arguments(layout="column")
    assert "convention='column'" in info.value.hint


# -- the truths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [RNN(steps=3, input_size=2, hidden_size=3, output_size=2, loss_at="last", h0="zeros"),
     RNN(steps=2, input_size=1, hidden_size=2, output_size=3, biases=True),
     RNN(steps=3, input_size=2, hidden_size=3, output_size=2, biases=True, convention="column", activation="sigmoid"),
     RNN(steps=3, input_size=3, hidden_size=2, output_size=1, loss_at="last", activation="relu", loss="squared_error"),
     RNN(steps=5, input_size=2, hidden_size=3, output_size=2, h0="zeros", biases=True, convention="column", loss="squared_error")],
    ids=["last-zeros", "biases", "column-sigmoid", "relu-squared-last", "column-squared-T5"],
)
def test_the_padded_jax_truth_equals_the_plain_one(model):
    from bptt_check.numeric import NumericRNN
    from bptt_check.sampling import sample_points
    from bptt_check.testing import _jax_gradients, _jax_loss

    leaves = sample_points(model, 3, seed=5)
    plain = NumericRNN(model).gradients(leaves)
    names = [r.family for r in model.parameters()] + ["h_0", "x"]
    padded = _jax_gradients(model, leaves, names)
    for ref in model.parameters():
        np.testing.assert_allclose(padded[ref.family], plain[ref], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(padded["h_0"], plain[Ref("h", 0)], rtol=1e-13, atol=1e-15)
    xs = np.concatenate([plain[Ref("x", t)].reshape(3, 1, -1) for t in model.steps_range()], axis=1)  # (P, T, D)
    np.testing.assert_allclose(padded["x"], xs, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(_jax_loss(model, leaves), numpy_forward(model, leaves)[L_TOTAL].reshape(-1), rtol=1e-13)


# -- correct implementations pass -------------------------------------------------------------


def test_correct_row_implementation_passes_with_canonical_names():
    assert_gradients_match(row_bptt, NO_BIAS, **FAST)
    assert_gradients_match(row_bptt, WITH_BIAS, **FAST)


def test_correct_column_implementation_passes_with_names_and_d_prefix():
    assert_gradients_match(rnn_impls.lossFun, WITH_BIAS, names=MIN_CHAR, layout="column", **FAST)


@pytest.mark.slow
def test_correct_implementation_passes_200_examples():
    # How long 200 examples take is measured in benchmarks/bench_testing.py, not asserted here.
    assert_gradients_match(rnn_impls.lossFun, WITH_BIAS, names=MIN_CHAR, layout="column", max_examples=200, seed=1)


def test_loss_at_last_step_and_fixed_model():
    def last(params, xs, ys, h0):
        return row_bptt(params, xs, ys, h0, loss_at="last")

    assert_gradients_match(last, models(loss_at="last"), **FAST)
    assert_gradients_match(last, RNN(steps=4, input_size=3, hidden_size=2, output_size=3, loss_at="last"), **FAST)


# -- the model options: convention, activation, loss --------------------------------------------

COLUMN = models(convention="column", biases=True, loss_at="all")


def test_min_char_rnn_passes_with_a_column_model_and_no_layout():
    assert_gradients_match(rnn_impls.lossFun, COLUMN, names="min-char-rnn", **FAST)
    assert_gradients_match(rnn_impls.lossFun, COLUMN, names=MIN_CHAR, layout="column", **FAST)  # an agreeing layout
    fixed = RNN(steps=3, input_size=2, hidden_size=3, output_size=4, biases=True, convention="column")
    assert_gradients_match(rnn_impls.lossFun, fixed, names="min-char-rnn", **FAST)


def test_sigmoid_and_squared_error_variants_of_min_char_rnn_pass():
    sigmoid = models(convention="column", biases=True, loss_at="all", activation="sigmoid")
    assert_gradients_match(rnn_impls.lossFun_sigmoid, sigmoid, names="min-char-rnn", **FAST)
    squared = models(convention="column", biases=True, loss_at="all", loss="squared_error")
    assert_gradients_match(rnn_impls.lossFun_squared_error, squared, names="min-char-rnn", **FAST)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
def test_correct_implementations_pass_for_every_option(act, loss):
    """Either convention in one run (fn reads it from the shapes), with or without biases, h_0 and loss steps drawn."""
    strategy = models(convention=("row", "column"), activation=act, loss=loss, loss_at="all")

    def fn(*args):
        return any_bptt(*args, act=act, loss=loss)

    assert_gradients_match(fn, strategy, max_examples=12, seed=0)


@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
def test_gradients_of_the_inputs_in_the_column_convention(loss):
    strategy = models(convention="column", activation="relu", loss=loss, loss_at="all")

    def fn(params, xs, ys, h0, bug=None):
        out = any_bptt(params, xs, ys, h0, act="relu", inputs=True, loss=loss, bug=bug)
        assert out[1]["x"].shape == xs.shape == (len(xs), params["W_xh"].shape[1], 1) and out[1]["h0"].shape == h0.shape
        return out

    assert_gradients_match(fn, strategy, **FAST)
    with pytest.raises(AssertionError, match=r"(?s)^x does not match.*worst entry x\[0, 0, 0\].*x is 1\.5 × the true gradient.*\[wrong_factor\].*column vectors, relu"):
        assert_gradients_match(lambda *a: fn(*a, bug="dx"), strategy, **FAST)


def test_fn_that_takes_the_model_serves_every_option_in_one_run():
    seen = set()

    def fn(params, xs, ys, h0, model):
        seen.add((model.convention, model.activation, model.loss, model.loss_at))
        return any_bptt(params, xs, ys, h0, act=model.activation, loss=model.loss, loss_at=model.loss_at)

    everything = models(convention=("row", "column"), activation=None, loss=None)
    assert_gradients_match(fn, everything, max_examples=40, seed=0)
    for axis, values in enumerate([{"row", "column"}, {"tanh", "sigmoid", "relu"}, {"cross_entropy", "squared_error"}]):
        assert {combination[axis] for combination in seen} == values
    with pytest.raises(AssertionError, match=r"(?s)drops the (sigmoid|relu|tanh) derivative"):
        assert_gradients_match(lambda *a, model: any_bptt(*a, act=model.activation, bug="no_act_grad"),
                               models(activation=None), max_examples=40, seed=0)


def test_relu_and_squared_error_with_a_loss_at_the_last_step_only():
    def fn(*args):
        return any_bptt(*args, act="relu", loss="squared_error", loss_at="last")

    model = RNN(steps=5, input_size=3, hidden_size=4, output_size=1, loss_at="last", activation="relu", loss="squared_error")
    assert_gradients_match(fn, model, **FAST)


def test_textbook_names_in_the_column_convention():
    """Goodfellow et al.'s U, W, V, b, c: a = b + W h + U x, o = c + V h."""
    to_ours = dict(TEXTBOOK_NAMES)

    def fn(params, xs, ys, h0):
        assert set(params) == {"U", "W", "V", "b", "c"} and params["U"].shape[1] == xs.shape[1]
        loss, g = any_bptt({to_ours[k]: v for k, v in params.items()}, xs, ys, h0)
        mine = {ours: mine for mine, ours in TEXTBOOK_NAMES.items()}
        return loss, {f"d{mine[k]}": v for k, v in g.items()}

    assert_gradients_match(fn, COLUMN, names="textbook", **FAST)
    assert_gradients_match(fn, COLUMN, names=TEXTBOOK_NAMES, **FAST)


def test_models_without_a_convention_follow_the_layout():
    """Older calls: models() with layout="column" draws column models (models(...) alone draws row ones)."""
    shapes = set()

    def fn(params, xs, ys, h0):
        shapes.add((xs.ndim, h0.shape[-1] == 1))
        return rnn_impls.lossFun(params, xs, ys, h0)

    assert_gradients_match(fn, WITH_BIAS, names=MIN_CHAR, layout="column", **FAST)
    assert shapes == {(3, True)}


def test_a_layout_that_contradicts_the_model_is_refused():
    with pytest.raises(InvalidArgumentError, match=re.escape("layout = 'column' contradicts the model's convention 'row'")) as info:
        assert_gradients_match(rnn_impls.lossFun, RNN(biases=True), names=MIN_CHAR, layout="column")
    assert "RNN(..., convention='column')" in info.value.hint
    with pytest.raises(InvalidArgumentError, match=re.escape("layout = 'row' contradicts the model's convention 'column'")):
        assert_gradients_match(row_bptt, models(convention="column"), layout="row", **FAST)
    with pytest.raises(InvalidArgumentError, match="layout = 'row' contradicts"):
        assert_gradients_match(row_bptt, st.just(RNN(convention="column")), layout="row", **FAST)


def test_name_presets():
    assert dict(MIN_CHAR_RNN_NAMES) == MIN_CHAR
    with pytest.raises(InvalidArgumentError, match=re.escape("names = 'karpathy' is not a known set of names")) as info:
        assert_gradients_match(rnn_impls.lossFun, COLUMN, names="karpathy")
    assert "'min-char-rnn'" in info.value.hint and "'textbook'" in info.value.hint


@pytest.mark.parametrize(
    "wrap",
    [
        lambda out: out[1],  # gradients only
        lambda out: (out[1], out[0]),  # (grads, loss)
        lambda out: {**out[1], "loss": out[0]},  # a "loss" key
    ],
    ids=["grads-only", "grads-then-loss", "loss-key"],
)
def test_the_loss_may_be_returned_or_not(wrap):
    assert_gradients_match(lambda *a: wrap(row_bptt(*a)), NO_BIAS, **FAST)


def test_gradients_of_the_inputs_are_checked_too():
    assert_gradients_match(row_bptt_with_inputs, NO_BIAS, **FAST)

    def wrong_dx(*args):
        loss, g = row_bptt_with_inputs(*args)
        g["dx"] = g["dx"] * 1.5
        return loss, g

    with pytest.raises(AssertionError, match=r"(?s)^dx does not match.*dx is 1\.5 × the true gradient: a constant factor is wrong \[wrong_factor\]"):
        assert_gradients_match(wrong_dx, NO_BIAS, **FAST)


# -- buggy implementations fail, with the parameter and the mistake ----------------------------


def _failure(fn, model=WITH_BIAS, **kwargs):
    with pytest.raises(AssertionError) as info:
        assert_gradients_match(fn, model, **{**FAST, **kwargs})
    return str(info.value)


def test_forgetting_dhnext_is_a_missing_recurrent_path():
    msg = _failure(rnn_impls.lossFun_forgets_dhnext, names=MIN_CHAR, layout="column")
    assert "does not match the true gradient" in msg
    assert re.search(r"dWxh drops the path from L_2 back through h_1 \(where the gradient reaches step 1\) \[missing_path\]", msg)
    assert "T=2" in msg  # shrunk to the smallest model where the path exists
    assert re.search(r"worst entry dWxh\[\d, \d\]: yours = \S+, jax = \S+, sympy = \S+", msg)
    assert "tolerance rule: |yours - jax| <= atol + rtol*|jax|" in msg


def test_one_minus_h_is_a_wrong_activation_derivative():
    msg = _failure(rnn_impls.lossFun_tanh_derivative, names=MIN_CHAR, layout="column")
    assert msg.startswith("dWxh (dL/dW_xh) does not match the true gradient")
    assert "dWxh uses 1 - h_1 where the tanh derivative 1 - h_1**2 belongs (step 1) [wrong_activation_derivative]" in msg
    assert "Case(T=1, D=1, H=1, O=2" in msg  # the smallest model


def test_sign_flip_is_reported():
    msg = _failure(rnn_impls.lossFun_sign_flip, names=MIN_CHAR, layout="column")
    assert msg.startswith("dWxh (dL/dW_xh) does not match the true gradient")
    for key in ("dWxh", "dWhh", "dWhy", "dbh", "dby"):  # every gradient, each with the same diagnosis
        assert f"{key} has the opposite sign of the gradient: y - yhat where yhat - y belongs [sign_flip]" in msg


def test_off_by_one_hidden_state():
    msg = _failure(lambda *a: row_bptt(*a, prev_offset=0), NO_BIAS)
    assert "W_hh does not match the true gradient" in msg
    assert re.search(r"W_hh uses h_\S+ where h_\S+ belongs .*\[off_by_one\]", msg)


def test_transposed_gradient():
    msg = _failure(lambda *a: row_bptt(*a, transpose_whh=True), models(loss_at="all", max_size=2))
    assert "W_hh does not match the true gradient" in msg
    assert "[transposed" in msg or "wrong way round" in msg


def test_forgetting_the_sigmoid_derivative_is_named():
    msg = _failure(rnn_impls.lossFun_sigmoid_forgets_derivative, models(convention="column", biases=True, activation="sigmoid"), names="min-char-rnn")
    assert msg.startswith("dWxh (dL/dW_xh) does not match the true gradient")
    assert "dWxh drops the sigmoid derivative h_1 * (1 - h_1) at step 1 [missing_activation_derivative]" in msg
    assert "Case(T=1, D=1, H=1, O=2, loss at every step, biases, column vectors, sigmoid" in msg  # the smallest model
    assert "tanh" not in msg


def test_tanh_derivative_in_a_sigmoid_model_is_named():
    msg = _failure(lambda *a: any_bptt(*a, act="sigmoid", bug="tanh_grad"), models(activation="sigmoid", biases=False))
    assert msg.startswith("W_xh does not match the true gradient")
    assert "W_xh uses the tanh's derivative 1 - h_1**2 where sigmoid's h_1 * (1 - h_1) belongs (step 1) [wrong_activation_derivative]" in msg
    assert "Case(T=1, D=1, H=1, O=2, loss at every step, sigmoid" in msg


def test_forgetting_the_relu_derivative_is_named():
    msg = _failure(lambda *a: any_bptt(*a, act="relu", bug="no_act_grad"), models(activation="relu", biases=False, convention="column"))
    assert "W_xh does not match the true gradient" in msg
    assert re.search(r"W_xh drops the relu derivative step\([ah]_1\) at step 1 \[missing_activation_derivative\]", msg)
    assert re.search(r"Case\(T=1, D=1, H=1, O=2, .*column vectors, relu", msg)
    assert "tanh" not in msg and "sigmoid" not in msg


def test_squared_error_without_its_half_is_a_factor_of_two():
    msg = _failure(lambda *a: any_bptt(*a, loss="squared_error", bug="no_half"), models(loss="squared_error", biases=False))
    assert msg.startswith("W_xh does not match the true gradient")
    assert re.search(r"likely mistake: W_xh .*2 .*the 1/2 of L_t = 1/2 sum \(yhat_t - y_t\)\*\*2.*\[extra_factor\]", msg)
    assert "Case(T=1, D=1, H=1, O=1, loss at every step, squared error" in msg  # one output is the smallest


def test_transposed_dwhy_in_the_column_layout():
    """(h_t dz_t.T where dz_t h_t.T belongs): a wrong value when H = O, a shape error with a hint when not."""

    def transposed(*args):
        return any_bptt(*args, bug="transposed_why")

    msg = _failure(transposed, models(convention="column", biases=True))
    assert msg.startswith("W_hy does not match the true gradient")
    assert "W_hy writes the outer product with h_1 the wrong way round" in msg
    assert "Case(T=1, D=1, H=2, O=2, " in msg  # with H = 1 it is a vector, and right: H = O = 2 is the smallest failure
    msg = _failure(transposed, RNN(steps=2, input_size=2, hidden_size=2, output_size=3, convention="column"))
    assert msg.startswith(
        "fn returned 'W_hy' of shape (2, 3), expected (3, 2) (W_hy in the column layout); it has the transposed shape:"
        " an outer product the wrong way round? (in the column layout dW_hy is sum_t dz_t @ h_t.T)"
    )


def test_the_loss_value_is_checked():
    def wrong_loss(params, xs, ys, h0):
        loss, g = row_bptt(params, xs, ys, h0)
        return 2 * loss, g

    msg = _failure(wrong_loss, NO_BIAS)
    assert msg.startswith("the loss does not match")
    assert re.search(r"worst entry loss: yours = \S+, jax = \S+, sympy = \S+", msg)
    assert_gradients_match(wrong_loss, NO_BIAS, loss=False, **FAST)  # loss=False: not checked


def test_loss_true_requires_a_loss():
    msg = _failure(lambda *a: row_bptt(*a)[1], NO_BIAS, loss=True)
    assert "fn returned no loss, but loss=True" in msg


def test_a_missing_parameter_is_named():
    def no_whh(*args):
        loss, g = rnn_impls.lossFun(*args)
        del g["dWhh"]
        return loss, g

    msg = _failure(no_whh, names=MIN_CHAR, layout="column")
    assert msg.startswith("fn returned no gradient for W_hh (as 'dWhh')")
    assert "'dWxh'" in msg  # what it did return
    assert "smallest failing case" in msg


def test_an_unknown_gradient_is_named():
    def typo(*args):
        loss, g = rnn_impls.lossFun(*args)
        g["dWhx"] = g.pop("dWhh")
        return loss, g

    msg = _failure(typo, names=MIN_CHAR, layout="column")
    assert "fn returned a gradient 'dWhx' that names no parameter of this model" in msg


def test_a_wrong_shape_is_named():
    def transposed(*args):
        loss, g = row_bptt(*args)
        g["W_xh"] = g["W_xh"].T
        return loss, g

    msg = _failure(transposed, RNN(input_size=2, hidden_size=3))
    assert msg.startswith("fn returned 'W_xh' of shape (3, 2), expected (2, 3) (W_xh in the row layout)")


def test_a_bad_return_value_is_reported():
    assert "fn returned float: expected a dict of gradients" in _failure(lambda *a: 1.0, NO_BIAS)


def test_exceptions_of_fn_propagate():
    def broken(params, xs, ys, h0):
        raise ZeroDivisionError("oops")

    with pytest.raises(ZeroDivisionError):
        assert_gradients_match(broken, NO_BIAS, **FAST)


def test_a_seed_makes_the_report_reproducible():
    fn = rnn_impls.lossFun_tanh_derivative
    first = _failure(fn, names=MIN_CHAR, layout="column", seed=3)
    assert _failure(fn, names=MIN_CHAR, layout="column", seed=3) == first


# -- argument validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(names={"Wxh": "Wxh"}), "not one of our names"),
        (dict(names={"Wxh": "W_xh", "U": "W_xh"}), "maps both 'Wxh' and 'U' to 'W_xh'"),
        (dict(names=["Wxh"]), "names must be a dict"),
        (dict(layout="col"), "layout = 'col'"),
        (dict(loss="yes"), "loss = 'yes'"),
        (dict(max_examples=0), "max_examples = 0"),
        (dict(rtol=-1.0), "rtol = -1.0"),
        (dict(rtol=0.0, atol=0.0), "both 0"),
        (dict(seed="x"), "seed = 'x'"),
    ],
)
def test_assert_gradients_match_validates_its_arguments(kwargs, text):
    with pytest.raises(InvalidArgumentError, match=re.escape(text)):
        assert_gradients_match(row_bptt, NO_BIAS, **kwargs)


def test_names_suggest_the_nearest_canonical_name():
    with pytest.raises(InvalidArgumentError, match=r"did you mean 'W_hy'"):
        assert_gradients_match(row_bptt, NO_BIAS, names={"V": "W_hu"})


# -- one step (CS231n) ---------------------------------------------------------------------


def cs231n_step(dnext_h, x, prev_h, Wx, Wh, next_h):
    return rnn_impls.rnn_step_backward(dnext_h, (x, prev_h, Wx, Wh, next_h))


def test_correct_step_backward_passes():
    assert_step_gradients_match(cs231n_step, models(biases=True), **FAST)
    assert_step_gradients_match(lambda *a: cs231n_step(*a)[:4], RNN(input_size=3, hidden_size=2), **FAST)


def test_step_backward_with_one_minus_h():
    def buggy(dnext_h, x, prev_h, Wx, Wh, next_h):
        da = dnext_h * (1 - next_h)
        return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)

    with pytest.raises(AssertionError) as info:
        assert_step_gradients_match(buggy, models(biases=True), **FAST)
    msg = str(info.value)
    assert msg.startswith("dx does not match the true gradient")
    assert "uses 1 - h_1 where the tanh derivative 1 - h_1**2 belongs" in msg
    assert "read h_1 as next_h" in msg


def test_step_backward_dividing_db_by_the_minibatch_size_is_named():
    def buggy(dnext_h, x, prev_h, Wx, Wh, next_h):
        da = dnext_h * (1 - next_h**2)
        return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0) / len(x)

    with pytest.raises(AssertionError) as info:
        assert_step_gradients_match(buggy, models(biases=True), **FAST)
    msg = str(info.value)
    assert msg.startswith("db does not match the true gradient")
    assert "db is the mean over the minibatch of 2 where dnext_h already carries the loss's reduction" in msg
    assert "a stray division by 2 [reduction]" in msg


def test_step_backward_missing_transpose():
    def buggy(dnext_h, x, prev_h, Wx, Wh, next_h):
        dx, dprev_h, dWx, dWh, db = cs231n_step(dnext_h, x, prev_h, Wx, Wh, next_h)
        da = dnext_h * (1 - next_h**2)
        return dx, da @ Wh, dWx, dWh, db

    with pytest.raises(AssertionError) as info:
        assert_step_gradients_match(buggy, models(biases=True, max_size=3), **FAST)
    msg = str(info.value)
    assert msg.startswith("dprev_h does not match the true gradient")
    assert "multiplies by W_hh where W_hh.T belongs" in msg


def test_step_backward_must_return_four_or_five_arrays():
    with pytest.raises(AssertionError, match=r"step_fn must return \(dx, dprev_h, dWx, dWh\)"):
        assert_step_gradients_match(lambda *a: cs231n_step(*a)[:3], RNN(), **FAST)


# -- the pytest plugin -----------------------------------------------------------------------

PLUGIN_TEST = """
import numpy as np
import rnn_impls

NAMES = {"Wxh": "W_xh", "Whh": "W_hh", "Why": "W_hy", "bh": "b_h", "by": "b_y"}

def test_fixture(bptt_gradients):
    assert "max_examples=3" in repr(bptt_gradients)
    model = bptt_gradients.models(biases=True, loss_at="all")
    bptt_gradients.assert_gradients_match(rnn_impls.lossFun, model, names=NAMES, layout="column", max_examples=500)
    assert isinstance(bptt_gradients.cases(bptt_gradients.RNN()).example().xs, np.ndarray)
    assert dict(bptt_gradients.MIN_CHAR_RNN_NAMES) == NAMES and bptt_gradients.TEXTBOOK_NAMES["V"] == "W_hy"
"""


@pytest.fixture
def plugin_env(pytester, monkeypatch):
    """A pytester dir with the example implementations, and plugin autoloading off (the plugin comes from -p)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    shutil.copy(EXAMPLE / "rnn_impls.py", pytester.path / "rnn_impls.py")
    return pytester


def test_plugin_provides_the_fixture(plugin_env):
    plugin_env.makepyfile(test_plugin=PLUGIN_TEST)
    result = plugin_env.runpytest("-p", "bptt_check.pytest_plugin", "--bptt-max-examples", "3", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_plugin_lists_the_fixture_and_options(plugin_env):
    result = plugin_env.runpytest("-p", "bptt_check.pytest_plugin", "--fixtures")
    result.stdout.fnmatch_lines(["*bptt_gradients*", "*assert_gradients_match*"])
    result = plugin_env.runpytest("-p", "bptt_check.pytest_plugin", "--help")
    result.stdout.fnmatch_lines(["*--bptt-max-examples*", "*--bptt-seed*"])


def test_without_the_plugin_there_is_no_fixture(plugin_env):
    plugin_env.makepyfile(test_plugin=PLUGIN_TEST)
    result = plugin_env.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'bptt_gradients' not found*"])


def test_the_documented_example_runs_with_the_fixture(plugin_env):
    shutil.copy(EXAMPLE / "test_user_rnn.py", plugin_env.path / "test_user_rnn.py")
    result = plugin_env.runpytest("-p", "bptt_check.pytest_plugin", "--bptt-max-examples", "5", "--bptt-seed", "0", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)


def _entry_point_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.value == "bptt_check.pytest_plugin" for ep in entry_points(group="pytest11"))


@pytest.mark.skipif(not _entry_point_installed(), reason="the pytest11 entry point is not installed (pip install -e .)")
def test_the_installed_entry_point_loads_the_plugin(pytester, monkeypatch):
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    shutil.copy(EXAMPLE / "rnn_impls.py", pytester.path / "rnn_impls.py")
    pytester.makepyfile(test_plugin=PLUGIN_TEST)
    result = pytester.runpytest_subprocess("--bptt-max-examples", "3", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


# -- code as people write it: class targets, batches, reductions, truncation, float32 (issue 19) --


def class_bptt(params, xs, ys, h0, **kwargs):
    """any_bptt for integer class targets ys (T,): its one-hot rows are the distribution targets."""
    O = params["W_hy"].shape[0 if np.ndim(xs) == 3 else 1]
    onehot = np.eye(O)[ys]
    return any_bptt(params, xs, onehot[..., None] if np.ndim(xs) == 3 else onehot, h0, **kwargs)


def batch_bptt(params, xs, ys, h0, *, reduction="sum", stray_db=False, **kwargs):
    """Row BPTT over a batch xs (N, T, D), ys (N, T) class indices or (N, T, O), h0 (N, H), reduced as asked."""
    N, T = xs.shape[:2]
    total, grads = 0.0, {k: np.zeros_like(v) for k, v in params.items()}
    dh0, dx = np.zeros_like(h0), np.zeros_like(xs)
    one = class_bptt if ys.ndim == 2 else any_bptt
    for i in range(N):
        loss, g = one(params, xs[i], ys[i], h0[i], inputs=True, **kwargs)
        total += loss
        for k in grads:
            grads[k] += g[k]
        dh0[i], dx[i] = g["h0"], g["x"]
    f = {"sum": 1.0, "mean": 1.0 / N, "mean_steps": 1.0 / T, "mean_all": 1.0 / (N * T)}[reduction]
    out = {k: v * f for k, v in grads.items()} | {"h0": dh0 * f, "x": dx * f}
    if stray_db:
        out["b_h"] = out["b_h"] / N
    return total * f, out


def test_class_targets_are_integer_indices_and_pass():
    seen = []

    def fn(params, xs, ys, h0):
        seen.append(ys)
        return class_bptt(params, xs, ys, h0, inputs=True)

    assert_gradients_match(fn, models(loss_at="all", biases=True, convention=("row", "column")), targets="class", **FAST)
    assert all(ys.dtype.kind == "i" and ys.ndim == 1 for ys in seen)


@pytest.mark.slow
def test_class_targets_pass_200_examples():
    assert_gradients_match(
        lambda *a: class_bptt(*a), models(loss_at="all", biases=True, max_steps=8), targets="class", max_examples=200, seed=1
    )


def test_a_bug_with_class_targets_is_diagnosed_on_class_targets():
    msg = _failure(lambda *a: class_bptt(*a, bug="tanh_grad", act="sigmoid"), models(loss_at="all", activation="sigmoid"), targets="class")
    assert "[wrong_activation_derivative]" in msg
    assert "none of the known mistakes" not in msg
    assert re.search(r"ys = \[\d+(, \d+)*\] \(class indices\)", msg)


def test_class_targets_need_cross_entropy():
    with pytest.raises(InvalidArgumentError, match="targets = 'class' needs a cross-entropy model"):
        assert_gradients_match(row_bptt, RNN(loss="squared_error"), targets="class")


def test_index_inputs_are_token_indices():
    seen = []

    def fn(params, xs, ys, h0, model):
        seen.append(xs)
        return class_bptt(params, np.eye(params["W_xh"].shape[0])[xs], ys, h0, act=model.activation)

    assert_gradients_match(fn, models(loss_at="all", activation=("tanh", "relu")), targets="class", inputs="index", vocab=5, **FAST)
    assert all(xs.dtype.kind == "i" and xs.ndim == 1 and xs.max() < 5 for xs in seen)


@pytest.mark.parametrize("reduction", ["sum", "mean", "mean_steps", "mean_all"])
def test_batches_with_every_reduction_pass(reduction):
    assert_gradients_match(
        lambda *a: batch_bptt(*a, reduction=reduction), models(loss_at="all", biases=True, max_steps=4),
        targets="class", batch=(1, 2, 3), reduction=reduction, **FAST,
    )


def test_a_reduction_mismatch_is_named_as_the_factor_it_is():
    msg = _failure(lambda *a: batch_bptt(*a, reduction="mean"), models(loss_at="all", biases=True), targets="class", batch=3, loss=False)
    assert "likely mistake: your gradients are the mean over the batch of 3; the loss is the sum: pass reduction='mean' [reduction]" in msg
    msg = _failure(lambda *a: batch_bptt(*a), models(loss_at="all", biases=True), batch=2, reduction="mean_all")
    assert "the loss is the sum; the loss checked is the mean over the batch of 2 and the 1 loss steps: pass reduction='sum'" in msg


def test_a_stray_division_of_one_gradient_by_the_batch_size():
    msg = _failure(lambda *a: batch_bptt(*a, stray_db=True), models(loss_at="all", biases=True), batch=(1, 2, 3))
    assert msg.startswith("b_h does not match the true gradient")
    assert "b_h is the mean over the batch of 2, but the loss is the sum (like your other gradients): a stray division by 2 [reduction]" in msg
    assert "batch=2" in msg


def test_batched_arrays_in_the_column_layout():
    def fn(params, xs, ys, h0):  # (T, D, N), (T, N)... rows here, back to columns at the end
        assert xs.ndim == 3 and h0.shape == (params["W_hh"].shape[0], xs.shape[2])
        rows = {k: (v.T if k.startswith("W") else v.reshape(-1)) for k, v in params.items()}
        loss, g = batch_bptt(rows, np.moveaxis(xs, 2, 0), np.moveaxis(ys, 2, 0), h0.T)
        return loss, {k: (v.T if k.startswith("W") else v.reshape(-1, 1)) for k, v in g.items() if k not in ("h0", "x")} | {
            "h0": g["h0"].T, "x": np.moveaxis(g["x"], 0, 2)}

    assert_gradients_match(fn, models(loss_at="all", biases=True, convention="column", max_steps=3), batch=2, **FAST)


def truncated_bptt(params, xs, ys, h0, k):
    """Row BPTT (no biases) where the loss of step t flows back through a_t ... a_(t-k) only (WildML's bptt_truncate)."""
    W_xh, W_hh, W_hy = params["W_xh"], params["W_hh"], params["W_hy"]
    T = len(xs)
    hs, ps = {0: h0}, {}
    for t in range(1, T + 1):
        hs[t] = np.tanh(xs[t - 1] @ W_xh + hs[t - 1] @ W_hh)
        z = hs[t] @ W_hy
        ps[t] = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    g = {key: np.zeros_like(v) for key, v in params.items()}
    for t in range(1, T + 1):
        dz = ps[t] - ys[t - 1]
        g["W_hy"] += np.outer(hs[t], dz)
        da = (dz @ W_hy.T) * (1 - hs[t] ** 2)
        for s in range(t, max(1, t - k) - 1, -1):
            g["W_xh"] += np.outer(xs[s - 1], da)
            g["W_hh"] += np.outer(hs[s - 1], da)
            da = (da @ W_hh.T) * (1 - hs[s - 1] ** 2)
    return g


def test_truncated_bptt_passes_with_truncate_and_names_its_k_without():
    model = models(loss_at="all", biases=False, max_steps=8)
    assert_gradients_match(lambda *a: truncated_bptt(*a, k=2), model, truncate=2, **FAST)
    msg = _failure(lambda *a: truncated_bptt(*a, k=2), model)
    assert "your gradients are those of 2-step truncated BPTT (WildML's bptt_truncate=2" in msg and "pass truncate=2 [truncated]" in msg
    assert "Case(T=4," in msg  # the shortest sequence where 2 steps truncate
    msg = _failure(lambda *a: truncated_bptt(*a, k=1), model, truncate=2)
    assert "your gradients are those of 1-step truncated BPTT" in msg and "pass truncate=1" in msg
    msg = _failure(lambda *a: truncated_bptt(*a, k=3), model, truncate=2)
    assert "your gradients are those of BPTT truncated after more than 2 steps or not at all (the same at T = 4)" in msg
    msg = _failure(row_bptt, model, truncate=1)
    assert "truncated after more than 1 step or not at all (the same at T = 3), but truncate=1 asks for 1-step" in msg


def test_the_truncated_truth_is_the_full_one_without_truncation():
    model = models(loss_at="all", biases=False, max_steps=4)
    assert_gradients_match(lambda *a: truncated_bptt(*a, k=3), model, truncate=3, **FAST)  # k ≥ T - 1: full BPTT
    assert_gradients_match(row_bptt, model, truncate=12, **FAST)


def f32_bptt(params, xs, ys, h0):
    assert xs.dtype == np.float32 or ys.dtype.kind == "i"
    return class_bptt({k: v.astype(np.float32) for k, v in params.items()}, xs.astype(np.float32), ys, h0.astype(np.float32))


def test_float32_code_passes_with_float32():
    model = models(loss_at="all", biases=True, max_steps=10, max_size=6)
    assert_gradients_match(f32_bptt, model, targets="class", dtype="float32", **FAST)


@pytest.mark.slow
def test_float32_code_gets_a_hint_without_float32():
    msg = _failure(f32_bptt, RNN(steps=10, input_size=4, hidden_size=6, output_size=4, biases=True), targets="class")
    assert "hint: every error is at float32 resolution" in msg
    assert "your gradients are float32 arrays: compute in float64, or pass dtype='float32'" in msg


@pytest.mark.parametrize(
    "kwargs, text",
    [
        (dict(targets="ints"), "targets = 'ints' is invalid"),
        (dict(inputs="tokens"), "inputs = 'tokens' is invalid"),
        (dict(vocab=5), "vocab = 5 needs inputs='index'"),
        (dict(batch=0), "batch = 0 is invalid"),
        (dict(batch=()), "batch = () is empty"),
        (dict(reduction="avg"), "reduction = 'avg' is invalid"),
        (dict(clip=0), "clip = 0 is invalid"),
        (dict(truncate=-1), "truncate = -1 is invalid"),
        (dict(dtype="float16"), "dtype = 'float16' is invalid"),
        (dict(inputs="index", vocab=3), "vocab = 3 contradicts the model's input size 2"),
    ],
)
def test_the_new_options_are_validated(kwargs, text):
    with pytest.raises(InvalidArgumentError, match=re.escape(text)):
        assert_gradients_match(row_bptt, RNN(input_size=2), **kwargs)


FAILING_PLUGIN_TEST = """
import rnn_impls

def test_buggy(bptt_gradients):
    model = bptt_gradients.models(biases=True, loss_at="all", convention="column")
    bptt_gradients.assert_gradients_match(rnn_impls.lossFun_tanh_derivative, model, names="min-char-rnn", max_examples=20)
"""


def test_a_failure_shows_the_report_and_not_the_package_frames(plugin_env):
    plugin_env.makepyfile(test_buggy=FAILING_PLUGIN_TEST)
    result = plugin_env.runpytest("-p", "bptt_check.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "[wrong_activation_derivative]" in out
    assert "bptt_check/testing.py" not in out and "bptt_check/pytest_plugin.py" not in out
    assert "bptt_gradients.assert_gradients_match(" in out  # the user's own line is shown


# -- assert_backward_match and the two-function step check -------------------------------------


def layer_forward(params, xs, h0, act="tanh"):
    """Row layer over xs (N, T, D) from h0 (N, H); canonical names; the cache is everything."""
    hs, h = [], h0
    for t in range(xs.shape[1]):
        h = ACT[act](xs[:, t] @ params["W_xh"] + h @ params["W_hh"] + params.get("b_h", 0.0))
        hs.append(h)
    return np.stack(hs, axis=1), (params, xs, h0, np.stack(hs, axis=1), act)


def layer_backward(dhs, cache, bug=None):
    params, xs, h0, hs, act = cache
    W_xh, W_hh = params["W_xh"], params["W_hh"]
    g = {"dW_xh": np.zeros_like(W_xh), "dW_hh": np.zeros_like(W_hh), "dx": np.zeros_like(xs)}
    if "b_h" in params:
        g["db_h"] = np.zeros_like(params["b_h"])
    dh = np.zeros_like(h0)
    for t in reversed(range(xs.shape[1])):
        prev = hs[:, t - 1] if t > 0 else h0
        da = (dhs[:, t] + dh) * ACT_GRAD[act](hs[:, t], hs[:, t])  # relu: h > 0 exactly when a > 0
        g["dW_xh"] += xs[:, t].T @ da
        g["dW_hh"] += (hs[:, t] if bug == "off_by_one" else prev).T @ da
        if "db_h" in g:
            g["db_h"] += da.sum(axis=0)
        g["dx"][:, t] = da @ W_xh.T
        dh = da @ W_hh.T
    g["dh0"] = dh
    return g


def test_backward_match_with_a_dict_and_every_activation():
    def fwd_for(act):
        return lambda p, xs, h0: layer_forward(p, xs, h0, act)

    for act in ("tanh", "sigmoid", "relu"):
        assert_backward_match(fwd_for(act), layer_backward, models(activation=act, biases=(False, True)), **FAST)


def test_backward_match_unbatched_column_layout():
    def fwd(params, xs, h0):  # xs (T, D, 1), h0 (H, 1): columns
        rows = {k: (v.T if k.startswith("W") else v.reshape(-1)) for k, v in params.items()}
        hs, cache = layer_forward(rows, xs[None, ..., 0], h0.T)
        return hs[0][..., None], cache

    def bwd(dhs, cache):
        g = layer_backward(dhs[None, ..., 0], cache)
        return {"dW_xh": g["dW_xh"].T, "dW_hh": g["dW_hh"].T, "db_h": g["db_h"].reshape(-1, 1), "dx": g["dx"][0][..., None], "dh0": g["dh0"].T}

    assert_backward_match(fwd, bwd, models(convention="column", biases=True), batch=None, **FAST)


def test_backward_match_diagnoses_with_the_engine():
    msg = _failure_of(assert_backward_match, lambda p, x, h: layer_forward(p, x, h), lambda d, c: layer_backward(d, c, bug="off_by_one"))
    assert msg.startswith("dW_hh does not match the true gradient")
    assert "dW_hh uses h_1 where h_0 belongs" in msg and "[off_by_one]" in msg
    assert "BackwardCase(T=1," in msg and "dhs = " in msg


def test_backward_match_checks_the_forward_pass():
    def wrong_forward(params, xs, h0):
        hs, cache = layer_forward(params, xs, h0)
        return hs * 1.01, cache

    msg = _failure_of(assert_backward_match, wrong_forward, layer_backward)
    assert msg.startswith("hs does not match the true forward pass")
    assert "the forward pass is wrong" in msg


@pytest.mark.parametrize(
    "backward, text",
    [
        (lambda d, c: (1, 2, 3), "backward returned tuple: expected (dx, dh0, dW_xh, dW_hh, db_h)"),
        (lambda d, c: {"dW_xh": 0}, "backward returned no gradient for W_hh"),
        (lambda d, c: tuple(layer_backward(d, c).values())[:4], "returned 4 arrays (dx, dh0, dW_xh, dW_hh) but the model has a bias"),
    ],
)
def test_backward_match_reports_a_broken_contract(backward, text):
    msg = _failure_of(assert_backward_match, lambda p, x, h: layer_forward(p, x, h), backward, models(biases=True))
    assert text in msg


def _failure_of(check, *args, **kwargs):
    with pytest.raises(AssertionError) as info:
        check(*args, **{**FAST, **kwargs})
    return str(info.value)


def test_two_function_step_check_with_dicts_and_tuples():
    def forward_step(params, x, prev_h):
        assert x.ndim == 2 and prev_h.ndim == 2  # (N, D), (N, H)
        next_h = np.tanh(x @ params["W_xh"] + prev_h @ params["W_hh"] + params["b_h"])
        return next_h, (x, prev_h, params, next_h)

    def backward_step(dnext_h, cache, bug=False):
        x, prev_h, params, next_h = cache
        da = dnext_h * (1 - (next_h if bug else next_h**2))
        return da @ params["W_xh"].T, da @ params["W_hh"].T, x.T @ da, prev_h.T @ da, da.sum(axis=0)

    assert_step_gradients_match(forward_step, backward_step, models(biases=True), **FAST)
    as_dict = lambda d, c: dict(zip(("dx", "dprev_h", "dW_xh", "dW_hh", "db_h"), backward_step(d, c)))  # noqa: E731
    assert_step_gradients_match(forward_step, as_dict, models(biases=True), **FAST)
    msg = _failure_of(assert_step_gradients_match, forward_step, lambda d, c: backward_step(d, c, bug=True), models(biases=True))
    assert "uses 1 - h_1 where the tanh derivative 1 - h_1**2 belongs (step 1) [wrong_activation_derivative] (read h_1 as next_h" in msg
    assert re.search(r"dx, worst entry dx\[\d, \d\]:", msg)  # indexed as the step function's (N, D), no step axis


def test_a_layer_averaging_its_parameter_gradients_over_the_batch():
    """11-785's RNNCell divides dW and db by the batch size, not dx or dh: reduction='mean' says so."""

    def averaged(dhs, cache):
        g = layer_backward(dhs, cache)
        n = dhs.shape[0]
        return {k: (v if k in ("dx", "dh0") else v / n) for k, v in g.items()}

    fwd = lambda p, x, h: layer_forward(p, x, h)  # noqa: E731
    assert_backward_match(fwd, averaged, models(biases=True), reduction="mean", **FAST)
    msg = _failure_of(assert_backward_match, fwd, averaged, models(biases=True))
    assert "your parameter gradients are the mean over the batch of 2 (dx and dh0 per example, as 11-785's RNNCell does);" in msg
    assert "the check expects the sum: pass reduction='mean' [reduction]" in msg
    msg = _failure_of(assert_backward_match, fwd, layer_backward, models(biases=True), reduction="mean")
    assert "your parameter gradients are the sum" in msg and "pass reduction='sum'" in msg


@example_ok
def test_cases_with_class_targets_give_indices():
    case = cases(RNN(steps=3, output_size=3), targets="class").example()
    _, _, ys, _ = case.arguments()
    assert ys.dtype.kind == "i" and ys.shape == (3,) and np.array_equal(np.eye(3)[ys], case.ys)
    assert "(class indices)" in repr(case)
