"""selfcheck: sympy, jax and finite differences agree; a corrupted witness is caught."""

import itertools
import json

import numpy as np
import pytest

pytest.importorskip("bptt_check.symbolic")

from bptt_check import RNN, Ref  # noqa: E402
from bptt_check import numeric  # noqa: E402
from bptt_check import sampling  # noqa: E402
from bptt_check.model import ACTIVATIONS, CONVENTIONS, LOSSES  # noqa: E402
from bptt_check.selfcheck import (  # noqa: E402
    FD_FLOOR,
    FD_RTOL,
    SYMPY_JAX_RTOL,
    SelfcheckReport,
    default_configs,
    fd_difference,
    relative_difference,
    run_selfcheck,
)

OPTIONS = list(itertools.product(CONVENTIONS, (False, True), ACTIVATIONS, LOSSES))
"""convention × biases × activation × loss: the 24 combinations."""


def options(model: RNN) -> tuple[str, bool, str, str]:
    return (model.convention, model.biases, model.activation, model.loss)

SMALL_GRID = (RNN(), RNN(loss_at="last", h0="zeros"), RNN(steps=3, hidden_size=3, biases=True))


@pytest.fixture(scope="module")
def small_report() -> SelfcheckReport:
    return run_selfcheck(SMALL_GRID, points=3, seed=1)


def test_small_grid_passes(small_report):
    report = small_report
    assert report.ok, str(report)
    assert {r.model for r in report.rows} == set(SMALL_GRID)
    # every parameter, input and hidden state of each model has a row (total reading)
    for model in SMALL_GRID:
        names = {r.wrt for r in report.rows if r.model == model and r.reading == "total"}
        want = {str(r) for r in model.parameters() + model.inputs()} | {f"h_{t}" for t in model.steps_range()}
        assert names == want
    # ambiguous partials are compared under the immediate reading too, without finite differences
    immediate = [r for r in report.rows if r.reading == "immediate"]
    assert any(r.wrt == "h_1" and r.model == RNN() for r in immediate)
    assert all(r.jax_fd is None for r in immediate)
    assert all(r.sympy_jax <= SYMPY_JAX_RTOL for r in report.rows)
    assert all(r.jax_fd <= FD_RTOL for r in report.rows if r.jax_fd is not None)


def test_report_renders_and_serialises(small_report):
    text = str(small_report)
    assert "\x1b[" not in text  # no colour codes in the string form
    assert "T=2, D=2, H=2, O=2" in text and "max|a - b| / max(1e-12, max|b|)" in text
    assert any(line.startswith("ok: ") for line in text.splitlines())
    assert "rel_fd(FD, jax)" in text
    d = json.loads(json.dumps(small_report.to_dict()))
    assert d["ok"] is True and d["tolerances"]["sympy_jax"] == SYMPY_JAX_RTOL
    assert len(d["rows"]) == len(small_report.rows)
    assert {"config", "gradient", "sympy_jax", "jax_fd", "ok"} <= set(d["rows"][0])


def test_corrupted_jax_witness_fails(monkeypatch):
    real = numeric.NumericRNN.gradients

    def corrupted(self, leaves, of=numeric.L_TOTAL):
        grads = real(self, leaves, of)
        grads[Ref("W_hh")] = grads[Ref("W_hh")] * (1 + 1e-7)
        return grads

    monkeypatch.setattr(numeric.NumericRNN, "gradients", corrupted)
    report = run_selfcheck([RNN()], points=2, seed=0)
    assert not report.ok
    assert [r.gradient for r in report.failures] == ["dL/dW_hh"]
    bad = report.failures[0]
    # a 1e-7 slip is below finite differences' resolution: only the sympy witness catches it
    assert SYMPY_JAX_RTOL < bad.sympy_jax < 1e-6 and bad.jax_fd is not None and bad.jax_fd < FD_RTOL
    assert "FAIL" in str(report) and "dL/dW_hh" in str(report)
    assert json.loads(json.dumps(report.to_dict()))["ok"] is False


def test_corrupted_finite_differences_fail(monkeypatch):
    real = numeric.finite_differences

    def corrupted(model, num, den, leaves, **kw):
        out = real(model, num, den, leaves, **kw)
        return out + 1e-4 * np.abs(out).max() if den == Ref("x", 2) else out

    monkeypatch.setattr(numeric, "finite_differences", corrupted)
    report = run_selfcheck([RNN()], points=2, seed=0)
    assert not report.ok
    assert [(r.gradient, r.sympy_jax <= SYMPY_JAX_RTOL) for r in report.failures] == [("dL/dx_2", True)]


def test_a_raising_witness_is_a_failing_row(monkeypatch):
    def broken(self, leaves, of=numeric.L_TOTAL):
        raise RuntimeError("boom")

    monkeypatch.setattr(numeric.NumericRNN, "gradients", broken)
    report = run_selfcheck([RNN(steps=1)], points=2, seed=0)
    assert not report.ok and report.rows
    assert all(r.error == "RuntimeError: boom" for r in report.rows)
    assert "boom" in str(report)
    assert json.loads(json.dumps(report.to_dict()))["rows"][0]["sympy_jax"] is None


def test_relative_difference():
    b = np.array([[1.0, -4.0]])
    assert relative_difference(b + np.array([[0.0, 2e-6]]), b) == pytest.approx(5e-7)
    assert relative_difference(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_difference(np.full(2, 1e-13), np.zeros(2)) == pytest.approx(0.1)
    assert relative_difference(np.array([np.nan]), np.array([1.0])) == float("inf")
    with pytest.raises(ValueError):
        relative_difference(np.zeros(2), np.zeros(3))


def test_default_grid():
    grid = default_configs()
    assert {m.steps for m in grid} == set(range(1, 7))
    assert {m.loss_at for m in grid} == {"all", "last"} and {m.h0 for m in grid} == {"input", "zeros"}
    assert {m.biases for m in grid} == {True, False}
    assert len({m.sizes for m in grid}) >= 4
    assert len(set(grid)) == len(grid) == 48
    # every combination of the options, twice, with different loss_at / h0
    for combo in OPTIONS:
        same = [m for m in grid if options(m) == combo]
        assert len(same) == 2, combo
        assert len({(m.loss_at, m.h0) for m in same}) == 2, combo
    # each activation and loss over several lengths; a one-output model with squared error
    for act in ACTIVATIONS:
        assert len({m.steps for m in grid if m.activation == act}) >= 3
    assert any(m.output_size == 1 for m in grid if m.loss == "squared_error")
    # models differing only in loss_at, h0 or convention share a compiled program: 12 programs
    assert len({(m.steps, m.sizes, m.biases, m.activation, m.loss) for m in grid}) == 12


@pytest.fixture(scope="module")
def grid_report() -> SelfcheckReport:
    return run_selfcheck(points=3, seed=0)


def test_default_grid_passes(grid_report):
    """`bptt-check selfcheck` as the CLI runs it: all 24 option combinations agree."""
    report = grid_report
    assert report.ok, str(report)
    assert {options(r.model) for r in report.rows} == set(OPTIONS)
    for model in default_configs():
        names = {r.wrt for r in report.rows if r.model == model and r.reading == "total"}
        assert names == {str(r) for r in model.parameters() + model.inputs()} | {f"h_{t}" for t in model.steps_range()}
    worst_sympy, worst_fd = report.worst()
    assert worst_sympy is not None and worst_fd is not None
    assert worst_sympy.sympy_jax == max(r.sympy_jax for r in report.rows) <= SYMPY_JAX_RTOL
    assert worst_fd.jax_fd == max(r.jax_fd for r in report.rows if r.jax_fd is not None) <= FD_RTOL
    assert worst_fd.jax_fd > 0  # finite differences are an independent witness, never bit-identical
    text, d = str(report), report.to_dict()
    assert f"worst sympy–jax {worst_sympy.sympy_jax:.1e} ({worst_sympy.gradient}" in text
    assert f"worst jax–FD {worst_fd.jax_fd:.1e} ({worst_fd.gradient}" in text
    want = {"value": worst_fd.jax_fd, "config": worst_fd.model.describe(), "gradient": worst_fd.gradient}
    assert d["worst"]["jax_fd"] == want


def test_report_shows_the_options(grid_report):
    text = str(grid_report)
    for word in ("column", "row", "sigmoid", "relu", "tanh", "softmax + CE", "linear + SE", "vectors", "biases"):
        assert word in text, word
    rows = grid_report.to_dict()["rows"]
    seen = {tuple(r["model"][k] for k in ("convention", "biases", "activation", "loss")) for r in rows}
    assert seen == set(OPTIONS)
    assert "column vectors" in next(r["config"] for r in rows if r["model"]["convention"] == "column")


def test_fd_difference():
    jax = np.array([[1.0, -4.0]])
    assert fd_difference(jax + np.array([[0.0, 2e-6]]), jax, loss=2.0) == pytest.approx(5e-7)
    # a vanished gradient is judged against the loss's scale, 1e-3 · max(1, max|L|)
    tiny = np.array([1e-6, -2e-6])
    assert fd_difference(tiny + 3e-11, tiny, loss=5.0) == pytest.approx(3e-11 / (FD_FLOOR * 5.0))
    assert fd_difference(tiny + 3e-11, tiny, loss=0.1) == pytest.approx(3e-11 / FD_FLOOR)
    assert fd_difference(np.zeros(2), np.zeros(2), loss=1.0) == 0.0
    assert fd_difference(np.array([np.nan]), np.array([1.0]), loss=1.0) == float("inf")
    with pytest.raises(ValueError):
        fd_difference(np.zeros(2), np.zeros(3), loss=1.0)


def test_a_column_layout_slip_in_jax_is_caught(monkeypatch):
    """jax returning a column model's weight gradients untransposed (reshaped) fails the weight rows only."""

    def reshaped(model, ref, rows):
        return rows.reshape(-1, *model.shape(ref))

    monkeypatch.setattr(numeric, "_in_model_layout", reshaped)
    col = RNN(hidden_size=3, convention="column")
    report = run_selfcheck([col, col.replace(convention="row")], points=2, seed=0)
    assert {(r.model.convention, r.wrt) for r in report.failures} == {("column", w) for w in ("W_xh", "W_hh", "W_hy")}


def test_a_wrong_relu_in_finite_differences_is_caught(monkeypatch):
    """A leaky relu in the numpy forward (finite differences' witness) disagrees with jax on relu models only."""
    monkeypatch.setitem(sampling._NUMPY_ACTIVATIONS, "relu", lambda a: np.maximum(a, 0.01 * a))
    report = run_selfcheck([RNN(activation="relu"), RNN(activation="sigmoid")], points=2, seed=0)
    assert report.failures and {r.model.activation for r in report.failures} == {"relu"}
    assert all(r.sympy_jax <= SYMPY_JAX_RTOL for r in report.failures)
