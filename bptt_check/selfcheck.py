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

and finite differences are measured against the scale they can resolve::

    rel_fd(fd, jax) = max|fd - jax| / max(max|jax|, 1e-3 · max(1, max|L|))

(central differences have an absolute rounding error of about ε·|L|/step ≈
4e-11·|L| whatever the gradient's size, so a gradient that has nearly
vanished through many steps is judged against the loss, :data:`FD_FLOOR`).
A row is ok when ``rel(jax, sympy) ≤ 1e-10`` (:data:`SYMPY_JAX_RTOL`) and
``rel_fd(fd, jax) ≤ 1e-6`` (:data:`FD_RTOL`).

(The ``y_t`` gradient is compared too: with cross-entropy sympy writes
``∂L_t/∂y_t[k] = -log yhat_t[k]`` through ``sum_k y_t[k] = 1``, which the
sampled targets satisfy; with squared error it is ``y_t - yhat_t``.)

The default grid (:func:`default_configs`) covers every combination of the
model options (convention × biases × activation × loss, 24 of them) twice,
across T = 1..6, four size triples (O = 1 with squared error), both
``loss_at`` and both ``h0``.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .model import L_TOTAL, RNN, Reading, Ref
from .sampling import numpy_forward, sample_points

__all__ = [
    "run_selfcheck",
    "default_configs",
    "SelfcheckReport",
    "SelfcheckRow",
    "relative_difference",
    "fd_difference",
]

SYMPY_JAX_RTOL = 1e-10
"""Tolerance of rel(jax, sympy): the two exact-derivative truths agree to rounding."""
FD_RTOL = 1e-6
"""Tolerance of rel_fd(fd, jax): central differences with step ε^(1/3) are accurate to about 1e-10."""
FD_FLOOR = 1e-3
"""rel_fd divides by at least FD_FLOOR · max(1, max|L|): finite differences resolve gradients only down to
about |L|·1e-10."""

_GROUPS: tuple[tuple[int, tuple[int, int, int], bool, str, str], ...] = (
    (1, (2, 2, 2), False, "tanh", "cross_entropy"),
    (1, (1, 3, 2), False, "sigmoid", "cross_entropy"),
    (2, (3, 2, 4), False, "relu", "cross_entropy"),
    (2, (2, 4, 1), True, "tanh", "squared_error"),
    (3, (2, 2, 2), True, "sigmoid", "squared_error"),
    (3, (1, 3, 2), True, "relu", "squared_error"),
    (4, (3, 2, 4), True, "tanh", "cross_entropy"),
    (4, (2, 4, 3), True, "sigmoid", "cross_entropy"),
    (5, (2, 2, 2), True, "relu", "cross_entropy"),
    (5, (1, 3, 2), False, "tanh", "squared_error"),
    (6, (3, 2, 4), False, "sigmoid", "squared_error"),
    (6, (2, 4, 1), False, "relu", "squared_error"),
)
"""(T, (D, H, O), biases, activation, loss) of the default grid's twelve groups: each of the twelve
(biases, activation, loss) combinations once, spread over T = 1..6 and four size triples."""
_VARIANTS: tuple[tuple[str, str, str], ...] = (
    ("all", "input", "row"),
    ("all", "zeros", "column"),
    ("last", "input", "column"),
    ("last", "zeros", "row"),
)
"""(loss_at, h0, convention) of the four models of each group: both conventions in every group."""


def relative_difference(a: np.ndarray, b: np.ndarray, floor: float = 1e-12) -> float:
    """max|a - b| / max(floor, max|b|) over all points and entries (``b`` is the reference)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    diff = float(np.max(np.abs(a - b)))
    if not np.isfinite(diff):
        return float("inf")
    return diff / max(floor, float(np.max(np.abs(b))))


def fd_difference(fd: np.ndarray, jax_value: np.ndarray, loss: float) -> float:
    """max|fd - jax| / max(max|jax|, FD_FLOOR · max(1, loss)), ``loss`` = max|L| over the points.

    Central differences err by about 1e-10·|L| whatever the gradient's size, so
    a vanishing gradient is measured against the loss, not against itself.
    """
    return relative_difference(fd, jax_value, floor=FD_FLOOR * max(1.0, float(loss)))


def default_configs() -> tuple[RNN, ...]:
    """The default grid: 12 groups (:data:`_GROUPS`) × 4 variants (:data:`_VARIANTS`) = 48 models.

    Every combination of convention × biases × activation × loss appears
    twice (with different ``loss_at`` and ``h0``); T runs over 1..6. The four
    models of a group share jax's compiled function (it depends on the shape,
    biases, activation and loss, not on ``loss_at``, ``h0`` or the
    convention), so the grid compiles 12 programs.
    """
    out = []
    for T, (D, H, O), biases, activation, loss in _GROUPS:
        for loss_at, h0, convention in _VARIANTS:
            out.append(
                RNN(
                    steps=T,
                    input_size=D,
                    hidden_size=H,
                    output_size=O,
                    loss_at=loss_at,  # type: ignore[arg-type]
                    h0=h0,  # type: ignore[arg-type]
                    biases=biases,
                    convention=convention,  # type: ignore[arg-type]
                    activation=activation,  # type: ignore[arg-type]
                    loss=loss,  # type: ignore[arg-type]
                )
            )
    return tuple(out)


@dataclass(frozen=True)
class SelfcheckRow:
    """One gradient of one configuration: ∂L/∂``wrt`` under ``reading``.

    ``sympy_jax`` is rel(jax, sympy), ``jax_fd`` is rel_fd(FD, jax), None for the
    immediate reading (finite differences give the total derivative only).
    ``error`` holds the message when a witness raised.
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
                "convention": m.convention,
                "activation": m.activation,
                "loss": m.loss,
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

    def worst(self) -> tuple[SelfcheckRow | None, SelfcheckRow | None]:
        """The rows with the largest rel(jax, sympy) and the largest rel_fd(FD, jax) (None without rows)."""
        sympy_jax = max(self.rows, key=lambda r: r.sympy_jax, default=None)
        with_fd = [r for r in self.rows if r.jax_fd is not None]
        return sympy_jax, max(with_fd, key=lambda r: r.jax_fd or 0.0, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "points": self.points,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "tolerances": {
                "sympy_jax": SYMPY_JAX_RTOL,
                "jax_fd": FD_RTOL,
                "relative_difference": "max|a - b| / max(1e-12, max|b|), b = sympy",
                "fd_difference": "max|fd - jax| / max(max|jax|, 1e-3 · max(1, max|L|))",
            },
            "configs": len(self._by_config()),
            "worst": self._worst_dict(),
            "rows": [r.to_dict() for r in self.rows],
        }

    def _worst_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, row in zip(("sympy_jax", "jax_fd"), self.worst()):
            out[name] = None if row is None else {
                "value": _json_number(getattr(row, name)),
                "config": row.model.describe(),
                "gradient": row.gradient,
            }
        return out

    def table(self) -> Any:
        """A :class:`rich.table.Table`: one line per configuration (worst rows), plus failing rows."""
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="selfcheck: sympy vs jax vs finite differences (gradients of L)")
        for name, justify in (
            ("config", "left"),
            ("vectors", "left"),
            ("biases", "center"),
            ("activation", "left"),
            ("loss", "left"),
            ("gradients", "right"),
            ("worst sympy–jax", "left"),
            ("worst jax–FD", "left"),
            ("ok", "center"),
        ):
            table.add_column(name, justify=justify, no_wrap=name == "config")  # type: ignore[arg-type]
        for model, rows in self._by_config().items():
            sj = max(rows, key=lambda r: r.sympy_jax)
            with_fd = [r for r in rows if r.jax_fd is not None]
            fd = max(with_fd, key=lambda r: r.jax_fd or 0.0) if with_fd else None
            ok = all(r.ok for r in rows)
            table.add_row(
                _shape_text(model),
                model.convention,
                "yes" if model.biases else "no",
                model.activation,
                _LOSS_NAMES[model.loss],
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
        console = Console(file=buffer, width=150, color_system=None, force_terminal=False, highlight=False)
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
        worst = []
        for label, row, value in zip(("sympy–jax", "jax–FD"), self.worst(), ("sympy_jax", "jax_fd")):
            if row is not None:
                worst.append(f"worst {label} {getattr(row, value):.1e} ({row.gradient}, {row.model.describe()})")
        summary = (
            f"{verdict}: {len(self.rows)} gradients in {n_configs} configuration{'' if n_configs == 1 else 's'}, "
            f"{self.points} points each, seed {self.seed}, {self.seconds:.1f} s.\n"
            + "".join(f"{line}\n" for line in worst)
            + f"rel(a, b) = max|a - b| / max(1e-12, max|b|); rel_fd(FD, jax) = max|FD - jax| / "
            f"max(max|jax|, {FD_FLOOR:g}·max(1, max|L|));\n"
            f"ok when rel(jax, sympy) ≤ {SYMPY_JAX_RTOL:g} and rel_fd(FD, jax) ≤ {FD_RTOL:g}."
        )
        return buffer.getvalue() + summary

    def _by_config(self) -> dict[RNN, list[SelfcheckRow]]:
        groups: dict[RNN, list[SelfcheckRow]] = {}
        for r in self.rows:
            groups.setdefault(r.model, []).append(r)
        return groups


def run_selfcheck(configs: Iterable[RNN] | None = None, *, points: int = 4, seed: int = 0) -> SelfcheckReport:
    """Compare sympy, jax and finite differences on every gradient of L, for every configuration.

    ``configs`` defaults to :func:`default_configs` (48 models, T = 1..6, every option combination).
    Configuration ``i`` is sampled with seed ``seed + i``. A witness that
    raises gives a failing row carrying the error instead of stopping the run.
    """
    models = default_configs() if configs is None else tuple(configs)
    start = time.perf_counter()
    rows: list[SelfcheckRow] = []
    for i, model in enumerate(models):
        rows.extend(_check_model(model, points, seed + i))
    return SelfcheckReport(rows=tuple(rows), points=points, seed=seed, seconds=time.perf_counter() - start)


_LOSS_NAMES = {"cross_entropy": "softmax + CE", "squared_error": "linear + SE"}


def _shape_text(model: RNN) -> str:
    """T, sizes, loss steps and h_0 of a model (its options have their own columns)."""
    D, H, O = model.sizes
    return f"T={model.steps}, D={D}, H={H}, O={O}, loss {model.loss_at}" + (", h_0 = 0" if model.h0 == "zeros" else "")


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
        loss = float(np.abs(numpy_forward(model, leaves)[L_TOTAL]).max())
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
                    model, str(ref), "total", relative_difference(jax_value, truth), fd_difference(fd, jax_value, loss)
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
