"""selfcheck: sympy, jax and finite differences agree; a corrupted witness is caught."""

import json

import numpy as np
import pytest

pytest.importorskip("bptt_check.symbolic")

from bptt_check import RNN, Ref  # noqa: E402
from bptt_check import numeric  # noqa: E402
from bptt_check.selfcheck import (  # noqa: E402
    FD_RTOL,
    SYMPY_JAX_RTOL,
    SelfcheckReport,
    default_configs,
    relative_difference,
    run_selfcheck,
)

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
    assert text.rstrip().splitlines()[-2].startswith("ok:")
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
    assert len({m.sizes for m in grid}) == 4
    assert len(set(grid)) == len(grid)
