"""``selfcheck``: the three witnesses of every gradient of L must agree.

For each model configuration and every gradient of the total loss ``L`` with
respect to a parameter, an input (``x_t``, ``y_t``, ``h_0`` when it is an
input) or a hidden state ``h_t``, three witnesses are compared at the same
random points (:func:`bptt_check.sampling.sample_points`):

* the **sympy truth**, ``SymbolicRNN(model).partial(L, ref).evaluate(values)``;
* **jax**, :meth:`bptt_check.numeric.NumericRNN.gradients` (autodiff, float64);
* **finite differences**, :func:`bptt_check.numeric.finite_differences`
  (central differences of an independent numpy forward).

Where the two readings of ``∂L/∂ref`` differ (the immediate reading of
Pascanu et al., see ARCHITECTURE.md), sympy and jax are also compared under
the immediate reading (finite differences only know the total derivative).

The **relative difference** of a value ``a`` against a reference ``b`` (all
points and entries at once) is::

    rel(a, b) = max|a - b| / max(1e-12, max|b|)

A row is ok when ``rel(jax, sympy) ≤ 1e-10`` (:data:`SYMPY_JAX_RTOL`) and
``rel(fd, jax) ≤ 1e-6`` (:data:`FD_RTOL`).

(The ``y_t`` gradient is compared too: sympy writes ``∂L_t/∂y_t[k] = -log
yhat_t[k]`` through ``sum_k y_t[k] = 1``, which the sampled targets satisfy.)
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .model import L_TOTAL, RNN, Reading, Ref
from .sampling import sample_points

__all__ = ["run_selfcheck", "default_configs", "SelfcheckReport", "SelfcheckRow", "relative_difference"]

SYMPY_JAX_RTOL = 1e-10
"""Tolerance of rel(jax, sympy): the two exact-derivative truths agree to rounding."""
FD_RTOL = 1e-6
"""Tolerance of rel(fd, jax): central differences with step ε^(1/3) are accurate to about 1e-10."""

_SIZES: tuple[tuple[int, int, int], ...] = ((2, 2, 2), (1, 3, 2), (3, 2, 4), (2, 4, 3))


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max(1e-12, max|b|) over all points and entries (``b`` is the reference)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    diff = float(np.max(np.abs(a - b)))
    if not np.isfinite(diff):
        return float("inf")
    return diff / max(1e-12, float(np.max(np.abs(b))))


def default_configs() -> tuple[RNN, ...]:
    """The default grid: T = 1..6; two sizes per T from (2,2,2), (1,3,2), (3,2,4), (2,4,3) with
    biases alternating; each with loss at all steps / the last step and h_0 an input / zeros (48 models).

    Models that differ only in ``loss_at`` and ``h0`` share jax's compiled
    function, so the grid compiles 12 programs.
    """
    out = []
    for T in range(1, 7):
        for k in range(2):
            D, H, O = _SIZES[(2 * T + k) % len(_SIZES)]
            biases = (T + k) % 2 == 0
            for loss_at in ("all", "last"):
                for h0 in ("input", "zeros"):
                    out.append(
                        RNN(
                            steps=T,
                            input_size=D,
                            hidden_size=H,
                            output_size=O,
                            loss_at=loss_at,  # type: ignore[arg-type]
                            h0=h0,  # type: ignore[arg-type]
                            biases=biases,
                        )
                    )
    return tuple(out)


@dataclass(frozen=True)
class SelfcheckRow:
    """One gradient of one configuration: ∂L/∂``wrt`` under ``reading``.

    ``jax_fd`` is None for the immediate reading (finite differences give the
    total derivative only). ``error`` holds the message when a witness raised.
    """

    model: RNN
    wrt: str
    reading: Reading
    sympy_jax: float
    jax_fd: float | None
    error: str | None = None

    @property
    def gradient(self) -> str:
        """The gradient's name, ``dL/dW_hh`` (``dL/dh_1 [immediate]`` for the immediate reading)."""
        return f"dL/d{self.wrt}" + (" [immediate]" if self.reading == "immediate" else "")

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.sympy_jax <= SYMPY_JAX_RTOL
            and (self.jax_fd is None or self.jax_fd <= FD_RTOL)
        )

    def to_dict(self) -> dict[str, Any]:
        m = self.model
        return {
            "config": m.describe(),
            "model": {
                "steps": m.steps,
                "sizes": list(m.sizes),
                "loss_at": m.loss_at,
                "h0": m.h0,
                "biases": m.biases,
            },
            "gradient": self.gradient,
            "reading": self.reading,
            "sympy_jax": _json_number(self.sympy_jax),
            "jax_fd": _json_number(self.jax_fd),
            "ok": self.ok,
            "error": self.error,
        }


@dataclass(frozen=True)
class SelfcheckReport:
    """The result of :func:`run_selfcheck`: one row per (configuration, gradient, reading).

    ``str(report)`` is a plain-text table (one line per configuration with its
    worst differences, then every failing row); :meth:`table` gives the rich
    table for a terminal.
    """

    rows: tuple[SelfcheckRow, ...]
    points: int
    seed: int
    seconds: float

    @property
    def ok(self) -> bool:
        """Every row is within tolerance (and there is at least one row)."""
        return bool(self.rows) and all(r.ok for r in self.rows)

    @property
    def failures(self) -> tuple[SelfcheckRow, ...]:
        return tuple(r for r in self.rows if not r.ok)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "points": self.points,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "tolerances": {
                "sympy_jax": SYMPY_JAX_RTOL,
                "jax_fd": FD_RTOL,
                "relative_difference": "max|a - b| / max(1e-12, max|b|), b = sympy resp. jax",
            },
            "configs": len(self._by_config()),
            "rows": [r.to_dict() for r in self.rows],
        }

    def table(self) -> Any:
        """A :class:`rich.table.Table`: one line per configuration (worst rows), plus failing rows."""
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="selfcheck: sympy vs jax vs finite differences (gradients of L)")
        for name, justify in (
            ("config", "left"),
            ("gradients", "right"),
            ("worst sympy–jax", "left"),
            ("worst jax–FD", "left"),
            ("ok", "center"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for model, rows in self._by_config().items():
            sj = max(rows, key=lambda r: r.sympy_jax)
            with_fd = [r for r in rows if r.jax_fd is not None]
            fd = max(with_fd, key=lambda r: r.jax_fd or 0.0) if with_fd else None
            ok = all(r.ok for r in rows)
            table.add_row(
                model.describe(),
                str(len(rows)),
                escape(f"{sj.sympy_jax:.1e} ({sj.gradient})"),
                escape(f"{fd.jax_fd:.1e} ({fd.gradient})") if fd is not None and fd.jax_fd is not None else "—",
                "ok" if ok else "[bold red]FAIL[/]",
            )
        return table

    def __str__(self) -> str:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        buffer = io.StringIO()
        console = Console(file=buffer, width=140, color_system=None, force_terminal=False, highlight=False)
        console.print(self.table())
        failures = self.failures
        if failures:
            detail = Table(title="failing rows")
            for name in ("config", "gradient", "sympy–jax", "jax–FD", "error"):
                detail.add_column(name)
            for r in failures:
                detail.add_row(
                    r.model.describe(),
                    escape(r.gradient),
                    f"{r.sympy_jax:.3e}",
                    "—" if r.jax_fd is None else f"{r.jax_fd:.3e}",
                    escape(r.error or ""),
                )
            console.print(detail)
        n_configs = len(self._by_config())
        verdict = "ok" if self.ok else f"FAILED ({len(failures)} of {len(self.rows)} rows)"
        summary = (
            f"{verdict}: {len(self.rows)} gradients in {n_configs} configuration{'' if n_configs == 1 else 's'}, "
            f"{self.points} points each, seed {self.seed}, {self.seconds:.1f} s.\n"
            f"rel(a, b) = max|a - b| / max(1e-12, max|b|); "
            f"ok when rel(jax, sympy) ≤ {SYMPY_JAX_RTOL:g} and rel(FD, jax) ≤ {FD_RTOL:g}."
        )
        return buffer.getvalue() + summary

    def _by_config(self) -> dict[RNN, list[SelfcheckRow]]:
        groups: dict[RNN, list[SelfcheckRow]] = {}
        for r in self.rows:
            groups.setdefault(r.model, []).append(r)
        return groups


def run_selfcheck(configs: Iterable[RNN] | None = None, *, points: int = 4, seed: int = 0) -> SelfcheckReport:
    """Compare sympy, jax and finite differences on every gradient of L, for every configuration.

    ``configs`` defaults to :func:`default_configs` (48 models, T = 1..6).
    Configuration ``i`` is sampled with seed ``seed + i``. A witness that
    raises gives a failing row carrying the error instead of stopping the run.
    """
    models = default_configs() if configs is None else tuple(configs)
    start = time.perf_counter()
    rows: list[SelfcheckRow] = []
    for i, model in enumerate(models):
        rows.extend(_check_model(model, points, seed + i))
    return SelfcheckReport(rows=tuple(rows), points=points, seed=seed, seconds=time.perf_counter() - start)


def _json_number(x: float | None) -> float | None:
    """JSON has no infinity: a non-finite difference (a witness failed) is null."""
    return x if x is not None and np.isfinite(x) else None


def _wrt_refs(model: RNN) -> tuple[Ref, ...]:
    """Every parameter, every input (x_t, y_t, an input h_0), every hidden state h_t."""
    return model.parameters() + model.inputs() + tuple(Ref("h", t) for t in model.steps_range())


def _check_model(model: RNN, points: int, seed: int) -> list[SelfcheckRow]:
    refs = _wrt_refs(model)
    try:
        from .numeric import NumericRNN, finite_differences
        from .symbolic import SymbolicRNN

        leaves = sample_points(model, points, seed)
        sym = SymbolicRNN(model)
        values = sym.forward_values(leaves)
        num = NumericRNN(model)
        grads = num.gradients(leaves)
    except Exception as exc:  # noqa: BLE001 - reported as a failing row, never a crash
        message = f"{type(exc).__name__}: {exc}"
        return [SelfcheckRow(model, str(r), "total", float("inf"), float("inf"), message) for r in refs]

    rows: list[SelfcheckRow] = []
    for ref in refs:
        try:
            truth = np.asarray(sym.partial(L_TOTAL, ref).evaluate(values), dtype=np.float64)
            jax_value = grads[ref].reshape(truth.shape)
            fd = finite_differences(model, L_TOTAL, ref, leaves)
            rows.append(
                SelfcheckRow(
                    model, str(ref), "total", relative_difference(jax_value, truth), relative_difference(fd, jax_value)
                )
            )
            imm_truth = np.asarray(sym.partial(L_TOTAL, ref, "immediate").evaluate(values), dtype=np.float64)
            imm_jax = num.partial(L_TOTAL, ref, leaves, "immediate")
            differs = relative_difference(imm_truth, truth) > SYMPY_JAX_RTOL
            if differs or relative_difference(imm_jax, jax_value) > SYMPY_JAX_RTOL:
                rows.append(SelfcheckRow(model, str(ref), "immediate", relative_difference(imm_jax, imm_truth), None))
        except Exception as exc:  # noqa: BLE001
            rows.append(
                SelfcheckRow(model, str(ref), "total", float("inf"), float("inf"), f"{type(exc).__name__}: {exc}")
            )
    return rows
