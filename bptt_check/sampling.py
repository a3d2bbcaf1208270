"""Random sample points for the numeric checks (numpy only).

A *point* gives a value to every leaf of the model (parameters, ``x_t``,
``y_t`` and ``h_0``). :func:`sample_points` returns ``P`` points at once as
float64 arrays with a leading point axis, ``values[ref].shape == (P, rows, cols)``
(ARCHITECTURE.md), reproducibly from a seed.

Points are built to be *well conditioned* (SPEC §2, §5), so that two
expressions that differ also differ numerically at the point:

* **No vanishing entries, no coincidences.** Every family is drawn as a
  stack (``W_xh``; ``W_hh``; ``W_hy``; ``b_h``; ``b_y``; all ``x_t`` together;
  ``h_0``) by *stratified magnitudes*: the ``k`` entries of the stack get one
  magnitude each from the ``k`` equal strata of ``[lo, hi]``, jittered within
  the middle half of the stratum, in random order and with random signs. So
  within a family ``|v| ≥ lo`` and any two magnitudes differ by at least
  ``(hi - lo) / (2k)``: no entry is near zero and no two entries can cancel.
* **Never symmetric.** Since ``|W_hh[i,j]| ≠ |W_hh[j,i]|`` by construction,
  ``W_hh`` is never symmetric; we also require a relative asymmetry
  ``‖W_hh − W_hhᵀ‖_F ≥ 0.2 ‖W_hh‖_F`` (H ≥ 2), and for every *square*
  parameter the gradient ``dL/dW`` must be asymmetric too
  (``max|G − Gᵀ| ≥ 0.05 max|G|`` unless G is structurally zero), so that a
  transposed answer never passes for the right one.
* **Never saturated.** Every pre-activation satisfies ``|a_t[j]| ≤ 1.5``
  (``tanh' ≥ 0.18``) at every step. Scales are chosen so that this holds
  typically; when a draw exceeds the bound, ``W_xh``, ``W_hh`` and ``b_h`` are
  shrunk by 0.8 until it holds (which always terminates).
* **Targets on the simplex, away from the prediction.** ``y_t`` sums to 1
  (its last entry is ``1 - sum(others)``); ``max_k |yhat_t[k] − y_t[k]| ≥ g``
  at every step, ``g = min(0.05, 0.5/O)``, so ``∂L_t/∂z_t = yhat_t − y_t`` never nearly vanishes.

Distributions (``s`` denotes ``1/sqrt(fan_in)``, magnitudes stratified as above):

=========  =====================================  ===========================
leaf       magnitude range                        notes
=========  =====================================  ===========================
``W_xh``   ``[0.2, 0.9] · s``, fan_in = D         random signs
``W_hh``   ``[0.2, 0.9] · s``, fan_in = H         random signs
``W_hy``   ``[0.3, 1.35] · s``, fan_in = H        1.5× wider logits
``b_h``    ``[0.1, 0.5]``
``b_y``    ``[0.1, 0.5]``
``x_t``    ``[0.2, 1.0]``                         all steps stratified together
``h_0``    ``[0.1, 0.7]``                         zeros when ``model.h0 == "zeros"``
``y_t``    one-hot (uniform class) or ``f + (1 − O·f)·Dirichlet(1)``,
           ``f = min(0.05, 0.5/O)``, so every soft entry ≥ f
=========  =====================================  ===========================

``targets="mixed"`` alternates point by point: even points one-hot, odd
points soft. A point that fails a soft check (asymmetry, target distance)
is redrawn, at most :data:`MAX_REDRAWS` times; if none passes, the draw
with the fewest failures is kept (in practice this happens only for
degenerate configurations such as ``H = 1``, where ``W_hh`` is 1×1).

:func:`numpy_forward` is the independent numpy forward pass used here and by
the finite differences of :mod:`bptt_check.numeric`.
"""

from __future__ import annotations

from typing import Literal, Mapping

import numpy as np

from .errors import ConfigError
from .model import FAMILIES, L_TOTAL, RNN, Ref

TargetKind = Literal["mixed", "onehot", "soft"]

A_MAX = 1.5
"""Bound on every pre-activation entry |a_t[j]| (tanh'(1.5) ≈ 0.18: not saturated)."""
TARGET_GAP = 0.05
"""Minimum of max_k |yhat_t[k] - y_t[k]| at every step (``min(TARGET_GAP, 0.5/O)`` for O > 10 classes)."""
W_HH_ASYMMETRY = 0.2
"""Minimum ‖W_hh − W_hhᵀ‖_F / ‖W_hh‖_F for H ≥ 2."""
GRADIENT_ASYMMETRY = 0.05
"""Minimum max|G − Gᵀ| / max|G| for the gradient G of every square parameter."""
MAX_REDRAWS = 25
"""Redraws of a point that fails a soft check (and of a target too close to its prediction)."""
_SHRINK = 0.8


# -- public -------------------------------------------------------------------


def sample_points(
    model: RNN, n: int, seed: int, *, targets: TargetKind = "mixed"
) -> dict[Ref, np.ndarray]:
    """``n`` well-conditioned random points for ``model``, reproducible from ``seed``.

    Returns float64 arrays of shape ``(n, rows, cols)`` for every leaf
    (``model.leaves()``), plus ``Ref("h", 0)`` as zeros when
    ``model.h0 == "zeros"``. See the module docstring for the distributions
    and the guarantees. ``targets`` is ``"onehot"``, ``"soft"`` or
    ``"mixed"`` (alternating point by point, starting with one-hot).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"number of sample points {n!r} is invalid", hint="use a whole number ≥ 1")
    if targets not in ("mixed", "onehot", "soft"):
        raise ConfigError(f"targets = {targets!r} is invalid", hint="use 'mixed', 'onehot' or 'soft'")
    rng = np.random.default_rng(seed)
    points = []
    for i in range(n):
        onehot = targets == "onehot" or (targets == "mixed" and i % 2 == 0)
        points.append(_sample_one(model, rng, onehot))
    order = model.leaves() + ((Ref("h", 0),) if model.h0 == "zeros" else ())
    return {ref: np.stack([p[ref] for p in points]) for ref in order}


def describe_point(points: Mapping[Ref, np.ndarray], i: int) -> dict[str, list]:
    """Point ``i`` as JSON-friendly nested lists (rows of floats), keyed by canonical name ``str(ref)``.

    Float arrays give floats; exact (object) arrays give ``int`` entries as
    ints and every other entry (fractions, field elements) as its ``str``.
    """
    out: dict[str, list] = {}
    for ref in sorted(points, key=_ref_order):
        arr = np.asarray(points[ref])[i]
        convert = _exact_jsonable if arr.dtype == object else float
        out[str(ref)] = [[convert(v) for v in row] for row in np.atleast_2d(arr)]
    return out


def numpy_forward(
    model: RNN,
    leaves: Mapping[Ref, np.ndarray],
    perturbations: Mapping[Ref, np.ndarray] | None = None,
) -> dict[Ref, np.ndarray]:
    """The forward pass in plain numpy, batched over points: every ref's value, (P, rows, cols).

    ``perturbations`` adds a value to any ref where it is computed (a leaf,
    ``a_t`` before the tanh, ``h_t`` after it, ``yhat_t`` after the softmax,
    ``L_t``, ``L``), everything downstream seeing the perturbed value; this is
    what finite differences with respect to a node use. Formulas as in
    :mod:`bptt_check.model`; the softmax is computed stably (``z - max z``)
    and ``L_t = -sum_k y_t[k] log(yhat_t[k])``. ``h_0`` defaults to zeros when
    absent from ``leaves``.
    """
    pert = perturbations or {}
    D, H, O = model.sizes
    P = _batch_size(model, leaves)

    def leaf(ref: Ref) -> np.ndarray:
        value = np.asarray(leaves[ref], dtype=np.float64)
        return value + pert[ref] if ref in pert else value

    def node(ref: Ref, value: np.ndarray) -> np.ndarray:
        return value + pert[ref] if ref in pert else value

    values: dict[Ref, np.ndarray] = {ref: leaf(ref) for ref in model.leaves()}
    h0 = Ref("h", 0)
    if h0 not in values:
        values[h0] = leaf(h0) if h0 in leaves else node(h0, np.zeros((P, 1, H)))
    W_xh, W_hh, W_hy = values[Ref("W_xh")], values[Ref("W_hh")], values[Ref("W_hy")]
    h = values[h0]
    total = np.zeros((P, 1, 1))
    loss_steps = set(model.loss_steps)
    for t in model.steps_range():
        a = values[Ref("x", t)] @ W_xh + h @ W_hh
        if model.biases:
            a = a + values[Ref("b_h")]
        a = values[Ref("a", t)] = node(Ref("a", t), a)
        h = values[Ref("h", t)] = node(Ref("h", t), np.tanh(a))
        z = h @ W_hy
        if model.biases:
            z = z + values[Ref("b_y")]
        z = values[Ref("z", t)] = node(Ref("z", t), z)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        yhat = values[Ref("yhat", t)] = node(Ref("yhat", t), e / e.sum(axis=-1, keepdims=True))
        loss = -(values[Ref("y", t)] * np.log(yhat)).sum(axis=-1, keepdims=True)
        loss = values[Ref("L", t)] = node(Ref("L", t), loss)
        if t in loss_steps:
            total = total + loss
    values[L_TOTAL] = node(L_TOTAL, total)
    return values


# -- one point ------------------------------------------------------------------


def _sample_one(model: RNN, rng: np.random.Generator, onehot: bool) -> dict[Ref, np.ndarray]:
    """One point (arrays without the point axis), redrawn until it passes the soft checks."""
    best: tuple[int, dict[Ref, np.ndarray]] | None = None
    for _ in range(MAX_REDRAWS + 1):
        point = _draw(model, rng)
        values = _unsaturate(model, point)
        _draw_targets(model, rng, point, values, onehot)
        failures = _failures(model, point)
        if failures == 0:
            return point
        if best is None or failures < best[0]:
            best = (failures, point)
    assert best is not None
    return best[1]


def _draw(model: RNN, rng: np.random.Generator) -> dict[Ref, np.ndarray]:
    """Parameters, x_t and h_0 by stratified magnitudes (targets are drawn later)."""
    D, H, O = model.sizes
    T = model.steps
    point: dict[Ref, np.ndarray] = {
        Ref("W_xh"): _stratified(rng, (D, H), 0.2, 0.9, D**-0.5),
        Ref("W_hh"): _stratified(rng, (H, H), 0.2, 0.9, H**-0.5),
        Ref("W_hy"): _stratified(rng, (H, O), 0.3, 1.35, H**-0.5),
    }
    if model.biases:
        point[Ref("b_h")] = _stratified(rng, (1, H), 0.1, 0.5)
        point[Ref("b_y")] = _stratified(rng, (1, O), 0.1, 0.5)
    xs = _stratified(rng, (T, D), 0.2, 1.0)
    for t in model.steps_range():
        point[Ref("x", t)] = xs[t - 1 : t]
    point[Ref("h", 0)] = _stratified(rng, (1, H), 0.1, 0.7) if model.h0 == "input" else np.zeros((1, H))
    return point


def _stratified(
    rng: np.random.Generator, shape: tuple[int, int], lo: float, hi: float, scale: float = 1.0
) -> np.ndarray:
    """Entries with magnitudes one per stratum of [lo, hi]·scale (middle-half jitter), random order and signs.

    Any two magnitudes differ by at least (hi - lo)·scale / (2k), k the number of entries.
    """
    k = shape[0] * shape[1]
    position = (rng.permutation(k) + rng.uniform(0.25, 0.75, size=k)) / k
    magnitude = lo + (hi - lo) * position
    sign = rng.choice(np.array([-1.0, 1.0]), size=k)
    return (scale * sign * magnitude).reshape(shape)


def _unsaturate(model: RNN, point: dict[Ref, np.ndarray]) -> dict[Ref, np.ndarray]:
    """Shrink W_xh, W_hh (and b_h) by 0.8 until every |a_t[j]| ≤ A_MAX; return the forward values.

    |a_t| ≤ |x_t||W_xh| + |W_hh| + |b_h| (since |h| < 1), so this terminates.
    """
    shrink = [Ref("W_xh"), Ref("W_hh")] + ([Ref("b_h")] if model.biases else [])
    while True:
        values = _forward_one(model, point)
        peak = max(float(np.abs(values[Ref("a", t)]).max()) for t in model.steps_range())
        if peak <= A_MAX:
            return values
        for ref in shrink:
            point[ref] = point[ref] * _SHRINK


def _forward_one(model: RNN, point: Mapping[Ref, np.ndarray]) -> dict[Ref, np.ndarray]:
    """numpy_forward on a single point (targets may be absent: they do not affect a, h, z, yhat)."""
    O = model.output_size
    leaves = {ref: point[ref][None] if ref in point else np.full((1, 1, O), 1.0 / O) for ref in model.leaves()}
    if Ref("h", 0) in point:
        leaves[Ref("h", 0)] = point[Ref("h", 0)][None]
    return {ref: v[0] for ref, v in numpy_forward(model, leaves).items()}


def _draw_targets(
    model: RNN,
    rng: np.random.Generator,
    point: dict[Ref, np.ndarray],
    values: Mapping[Ref, np.ndarray],
    onehot: bool,
) -> None:
    """Draw y_t on the simplex, redrawing a step's target while it is within TARGET_GAP of yhat_t."""
    O = model.output_size
    floor = min(0.05, 0.5 / O)
    gap = _target_gap(O)
    for t in model.steps_range():
        yhat = values[Ref("yhat", t)][0]
        y = None
        for _ in range(MAX_REDRAWS + 1):
            if onehot:
                y = np.zeros(O)
                y[rng.integers(O)] = 1.0
            else:
                y = floor + (1.0 - O * floor) * rng.dirichlet(np.ones(O))
            y[-1] = 1.0 - y[:-1].sum()
            if np.abs(yhat - y).max() >= gap:
                break
        assert y is not None
        point[Ref("y", t)] = y[None, :]


def _failures(model: RNN, point: Mapping[Ref, np.ndarray]) -> int:
    """How many soft checks the point fails (0 = accept)."""
    failures = 0
    H = model.hidden_size
    W = point[Ref("W_hh")]
    if H >= 2 and np.linalg.norm(W - W.T) < W_HH_ASYMMETRY * np.linalg.norm(W):
        failures += 1
    values = _forward_one(model, point)
    for t in model.steps_range():
        if np.abs(values[Ref("yhat", t)] - point[Ref("y", t)]).max() < _target_gap(model.output_size):
            failures += 1
    grads = _parameter_gradients(model, values)
    for ref, g in grads.items():
        if g.shape[0] != g.shape[1] or g.shape[0] < 2:
            continue
        peak = np.abs(g).max()
        if peak > 1e-12 and np.abs(g - g.T).max() < GRADIENT_ASYMMETRY * peak:
            failures += 1
    if not _distinct(model, point):
        failures += 1
    return failures


def _parameter_gradients(model: RNN, values: Mapping[Ref, np.ndarray]) -> dict[Ref, np.ndarray]:
    """dL/dW for W_xh, W_hh, W_hy at one point (numpy BPTT, row convention), for the asymmetry check.

    δz_t = (yhat_t − y_t)·[t is a loss step];  δh_t = δz_t W_hyᵀ + δa_{t+1} W_hhᵀ;
    δa_t = δh_t ⊙ (1 − h_t²);  dL/dW_hy = Σ h_tᵀ δz_t,  dL/dW_xh = Σ x_tᵀ δa_t,
    dL/dW_hh = Σ h_{t−1}ᵀ δa_t.
    """
    H = model.hidden_size
    W_hh, W_hy = values[Ref("W_hh")], values[Ref("W_hy")]
    grads = {Ref(n): np.zeros_like(values[Ref(n)]) for n in ("W_xh", "W_hh", "W_hy")}
    loss_steps = set(model.loss_steps)
    da_next = np.zeros((1, H))
    for t in reversed(model.steps_range()):
        dz = values[Ref("yhat", t)] - values[Ref("y", t)] if t in loss_steps else 0.0 * values[Ref("z", t)]
        h = values[Ref("h", t)]
        dh = dz @ W_hy.T + da_next @ W_hh.T
        da = dh * (1.0 - h**2)
        grads[Ref("W_hy")] += h.T @ dz
        grads[Ref("W_xh")] += values[Ref("x", t)].T @ da
        grads[Ref("W_hh")] += values[Ref("h", t - 1)].T @ da
        da_next = da
    return grads


def _target_gap(classes: int) -> float:
    return min(TARGET_GAP, 0.5 / classes)


def _distinct(model: RNN, point: Mapping[Ref, np.ndarray]) -> bool:
    """No two entries of the parameters, x_t and h_0 have equal magnitudes (across families)."""
    refs = [r for r in model.leaves() if r.family != "y"]
    if model.h0 == "zeros":
        refs = [r for r in refs if r != Ref("h", 0)]
    mags = np.sort(np.concatenate([np.abs(point[r]).ravel() for r in refs]))
    return bool(len(mags) < 2 or np.diff(mags).min() > 1e-12)


# -- helpers --------------------------------------------------------------------


def _batch_size(model: RNN, leaves: Mapping[Ref, np.ndarray]) -> int:
    missing = [str(r) for r in model.leaves() if r not in leaves]
    if missing:
        raise ConfigError(f"values missing for {', '.join(missing)}", hint="give every leaf of the model")
    sizes = {np.shape(leaves[r])[0] for r in model.leaves()}
    if len(sizes) != 1:
        raise ConfigError("values have different numbers of points", hint="every array is (P, rows, cols)")
    return sizes.pop()


def _ref_order(ref: Ref) -> tuple[int, int, str]:
    return (FAMILIES.index(ref.family) if ref.family in FAMILIES else len(FAMILIES), ref.step or 0, ref.family)


def _exact_jsonable(v: object) -> int | str:
    return v if isinstance(v, int) and not isinstance(v, bool) else str(v)
