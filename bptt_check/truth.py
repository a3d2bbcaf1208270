"""The truths of one model at fixed sample points, computed once and cached.

* sympy (:mod:`bptt_check.symbolic`) gives every Jacobian in floats at the
  sampled points and exactly at the exact points;
* jax (:mod:`bptt_check.numeric`, imported on first use) gives the same
  Jacobians in floats; each one used is cross-checked against sympy
  (relative difference ≤ :data:`TRUTHS_RTOL`), a disagreement being an
  :class:`~bptt_check.errors.InternalError`, never a verdict.

Where jax cannot be imported (PrairieLearn's question runtime has sympy and
numpy only), the sympy truth stands alone: the float check and the exact
proof both come from it, the agreement is NaN and reports say "sympy only";
jax's values read as NaN. The verdicts are the same (jax never decides one).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .errors import InternalError
from .evaluate import ExactBackend, FloatBackend
from .exact import ExactPoints, NoExactForm, sample_exact
from .model import L_TOTAL, RNN, Reading, Ref, Target, squeeze_shape
from .sampling import describe_point, sample_points
from .symbolic import SymbolicRNN

TRUTHS_RTOL = 1e-9
"""sympy and jax must agree to max|s - j| ≤ 1e-9 · max(1, max|s|)."""


def jax_available() -> bool:
    """Whether jax can be imported here (the cross-check needs it)."""
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max(1, max|b|)."""
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


class Truth:
    """Both truths of ``model`` at ``points`` float points and ``exact_points`` exact points."""

    def __init__(self, model: RNN, *, points: int = 5, exact_points: int = 2, seed: int = 0) -> None:
        self.model = model
        self.seed = seed
        self.symbolic = SymbolicRNN(model)
        self.leaves = sample_points(model, points, seed)
        self.values = self.symbolic.forward_values(self.leaves)
        self.exact: ExactPoints = sample_exact(model, exact_points, seed)
        self._numeric: Any = None
        self._float: dict[tuple[Ref, Ref, str], np.ndarray] = {}
        self._jax: dict[tuple[Ref, Ref, str], np.ndarray] = {}
        self._jax_grads: dict[tuple[Ref, bool], dict[Ref, np.ndarray]] = {}
        self._exact: dict[tuple[Ref, Ref, str], np.ndarray] = {}
        self._agreement: dict[tuple[Ref, Ref, str], float] = {}
        self._forward_checked: float | None = None
        self.cross_check = jax_available()
        """False where jax is absent: sympy alone (see the module docstring)."""

    @property
    def points(self) -> int:
        return next(iter(self.leaves.values())).shape[0]

    @property
    def numeric(self) -> Any:
        if self._numeric is None:
            from .numeric import NumericRNN  # jax is imported only when a truth needs it

            self._numeric = NumericRNN(self.model)
        return self._numeric

    # -- Jacobians ---------------------------------------------------------

    def jacobian(self, num: Ref, den: Ref, reading: Reading = "total") -> np.ndarray:
        """sympy's ∂num/∂den at the float points, cross-checked against jax."""
        key = (num, den, reading)
        if key not in self._float:
            self._float[key] = self.symbolic.partial(num, den, reading).evaluate(self.values)
            self.agreement(num, den, reading)
        return self._float[key]

    def jacobian_jax(self, num: Ref, den: Ref, reading: Reading = "total") -> np.ndarray:
        key = (num, den, reading)
        if not self.cross_check:
            return np.full_like(self.jacobian(num, den, reading), np.nan)
        if key not in self._jax:
            if num.is_loss and (reading == "total" or not self.symbolic.is_ambiguous(num, den)):
                # one backward pass gives the gradient of a loss with respect to every ref
                grads = self._jax_gradients(num, recurrent=True)
                self._jax[key] = grads[den].reshape(self.points, *squeeze_shape(self.model.shape(den)))
            elif num == L_TOTAL and den.is_hidden:
                # immediate ∂L/∂h_t for every t: one pass with every edge h_{t-1} → a_t cut
                grads = self._jax_gradients(num, recurrent=False)
                self._jax[key] = grads[den].reshape(self.points, *squeeze_shape(self.model.shape(den)))
            else:
                self._jax[key] = np.asarray(self.numeric.partial(num, den, self.leaves, reading))
        return self._jax[key]

    def _jax_gradients(self, of: Ref, *, recurrent: bool) -> dict[Ref, np.ndarray]:
        if (of, recurrent) not in self._jax_grads:
            self._jax_grads[(of, recurrent)] = self.numeric.gradients(self.leaves, of, recurrent=recurrent)
        return self._jax_grads[(of, recurrent)]

    def jacobian_exact(self, num: Ref, den: Ref, reading: Reading = "total") -> np.ndarray:
        """sympy's ∂num/∂den at the exact points (raises NoExactForm when the model has none)."""
        key = (num, den, reading)
        if key not in self._exact:
            self._require_exact()
            self._exact[key] = self.symbolic.partial(num, den, reading).evaluate(self.exact.values)
        return self._exact[key]

    def agreement(self, num: Ref, den: Ref, reading: Reading = "total") -> float:
        """The relative difference of the two truths for one Jacobian; raises if they disagree."""
        key = (num, den, reading)
        if not self.cross_check:
            return float("nan")
        if key not in self._agreement:
            s = self._float.get(key)
            if s is None:
                s = self.jacobian(num, den, reading)
            j = self.jacobian_jax(num, den, reading)
            diff = relative_difference(s, j) if s.shape == j.shape else float("inf")
            if not diff <= TRUTHS_RTOL:
                raise InternalError(
                    f"the truths disagree on ∂{num}/∂{den} ({reading} reading): relative difference {diff:.3g}"
                    f" > {TRUTHS_RTOL:g} (sympy shape {s.shape}, jax shape {j.shape}) for {self.model.describe()}",
                    hint="this is a bug in bptt_check; please report it with the model and target",
                )
            self._agreement[key] = diff
        return self._agreement[key]

    @functools.cached_property
    def jax_values(self) -> dict[Ref, np.ndarray]:
        """jax's forward pass at the float points (every ref; NaN where jax is absent)."""
        if not self.cross_check:
            return {ref: np.full_like(v, np.nan) for ref, v in self.values.items()}
        return {ref: np.asarray(v) for ref, v in self.numeric.forward(self.leaves).items()}

    def forward_agreement(self) -> float:
        """The relative difference of the two forward passes (every node); raises if they disagree."""
        if not self.cross_check:
            return float("nan")
        if self._forward_checked is None:
            jax_values = self.jax_values
            worst = 0.0
            for ref in self.model.nodes():
                diff = relative_difference(self.values[ref], jax_values[ref])
                if not diff <= TRUTHS_RTOL:
                    raise InternalError(
                        f"the forward truths disagree on {ref}: relative difference {diff:.3g}",
                        hint="this is a bug in bptt_check; please report it",
                    )
                worst = max(worst, diff)
            self._forward_checked = worst
        return self._forward_checked

    # -- backends and targets ------------------------------------------------

    def float_backend(self) -> FloatBackend:
        return FloatBackend(self.values, self.jacobian, self.model)

    def exact_backend(self) -> ExactBackend:
        """The exact backend (raises NoExactForm when the model has no exact points)."""
        self._require_exact()
        return ExactBackend(self.exact, self.jacobian_exact, self.model)

    def _require_exact(self) -> None:
        if self.exact.unavailable:
            raise NoExactForm(self.exact.unavailable)

    def target_values(self, target: Target) -> tuple[np.ndarray, np.ndarray, float]:
        """The target's value at the float points, (P, *target.shape), from sympy and from jax, and their agreement."""
        if target.wrt is None:
            agree = self.forward_agreement()
            s = self.values[target.of]
            j = self.jax_values[target.of]
            return _select(s, target), _select(j, target), agree
        s = self.jacobian(target.of, target.wrt)
        j = self.jacobian_jax(target.of, target.wrt)
        agree = self.agreement(target.of, target.wrt)
        return self._shape_gradient(s, target), self._shape_gradient(j, target), agree

    def at_point(self, leaves: dict[Ref, np.ndarray], target: Target) -> tuple[FloatBackend, np.ndarray, np.ndarray]:
        """A float backend at other points ``leaves``, and the target there from sympy and from jax (cross-checked)."""
        values = self.symbolic.forward_values(leaves)

        def partial(num: Ref, den: Ref, reading: Reading) -> np.ndarray:
            return self.symbolic.partial(num, den, reading).evaluate(values)

        if target.wrt is None:
            s = _select(values[target.of], target)
            j = _select(np.asarray(self.numeric.forward(leaves)[target.of]), target)
        else:
            s = self._shape_gradient(partial(target.of, target.wrt, "total"), target)
            j = self._shape_gradient(np.asarray(self.numeric.partial(target.of, target.wrt, leaves, "total")), target)
        diff = relative_difference(s, j) if s.shape == j.shape else float("inf")
        if not diff <= TRUTHS_RTOL:
            raise InternalError(
                f"the truths disagree on {target} at an extra point: relative difference {diff:.3g}",
                hint="this is a bug in bptt_check; please report it with the model and target",
            )
        return FloatBackend(values, partial, self.model), s, j

    def target_exact(self, target: Target) -> np.ndarray:
        self._require_exact()
        if target.wrt is None:
            return _select(self.exact.values[target.of], target)
        return self._shape_gradient(self.jacobian_exact(target.of, target.wrt), target)

    def _shape_gradient(self, t: np.ndarray, target: Target) -> np.ndarray:
        assert target.wrt is not None
        P = t.shape[0]
        if target.index is not None:
            den_shape = self.model.shape(target.wrt)
            idx = tuple(i for i, d in zip(target.index, den_shape) if d != 1)
            lead = len(squeeze_shape(self.model.shape(target.of)))
            t = t[(slice(None),) + (slice(None),) * lead + idx]
        return t.reshape((P, *target.shape(self.model)))

    def describe_point(self, i: int) -> dict[str, Any]:
        return describe_point(self.leaves, i)


def _select(values: np.ndarray, target: Target) -> np.ndarray:
    if target.index is None:
        return values
    r, c = target.index
    return values[:, r : r + 1, c : c + 1]


@functools.lru_cache(maxsize=32)
def truth_for(model: RNN, points: int = 5, exact_points: int = 2, seed: int = 0) -> Truth:
    """A shared, cached :class:`Truth` per model and sampling settings."""
    return Truth(model, points=points, exact_points=exact_points, seed=seed)
