"""Random sample points for the numeric checks (numpy only).

A *point* gives a value to every leaf of the model (parameters, ``x_t``,
``y_t`` and ``h_0``). :func:`sample_points` returns ``P`` points at once as
float64 arrays with a leading point axis, ``values[ref].shape == (P, rows, cols)``
(ARCHITECTURE.md), reproducibly from a seed, in the model's convention: a
column-convention point is the transpose of the row-convention point drawn
from the same seed (every rule below is stated in the row convention).

Points are built to be *well conditioned*, so that two
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
* **Gradients that do not vanish.** With sigmoid (σ' ≤ 1/4) ``W_hh`` is
  drawn 4× larger (:data:`SIGMOID_GAIN`), so the gradient through many
  steps stays comparable to tanh's.
* **Never saturated.** Every pre-activation satisfies ``|a_t[j]| ≤ 1.5``
  at every step (tanh' ≥ 0.18, sigmoid' ≥ 0.15; relu keeps the bound too).
  Scales are chosen so that this holds typically; when a draw exceeds the
  bound, ``W_xh``, ``W_hh`` and ``b_h`` are shrunk by 0.8 until it holds
  (which always terminates).
* **Relu: away from the kink, both regimes.** Every pre-activation satisfies
  ``|a_t[j]| ≥ 0.1`` (:data:`RELU_MARGIN`) at every step: the ``x_t`` are
  reassigned step by step from the stack's magnitudes (any order and signs)
  until they do, and a draw that cannot is redrawn. With ``H ≥ 2`` every
  point has an inactive entry (``a < 0``) and every step an active unit
  (``a > 0``, so no step cuts every path to the loss); with ``H = 1`` even
  points are active at every step and odd points have an inactive step.
  Beyond that, each point aims for a chosen activation pattern
  (:func:`relu_pattern`): point 0 all active, and each unit of each step
  inactive at one other point, alone there when T·H < P, so that every unit
  of every step is seen in both states with the paths through the others
  open (a dropped ``step(a_t)`` shows); a pattern out of reach in
  :data:`RELU_PATTERN_DRAWS` draws falls back to the rule above.
  Models too large for
  the margin 0.1 within :data:`RELU_REDRAWS` draws (H·T in the hundreds) get
  the margin 0.01, else 0.001 (:data:`RELU_FALLBACK_MARGINS`), else a
  :class:`ConfigError`.
* **Targets away from the prediction.** ``max_k |yhat_t[k] − y_t[k]| ≥ g``
  at every step, ``g = min(0.05, 0.5/O)``, so ``∂L_t/∂z_t = yhat_t − y_t``
  never nearly vanishes. Cross-entropy targets are on the simplex: ``y_t``
  sums to 1 (its last entry is ``1 - sum(others)``). Squared-error targets are
  real vectors, never distributions: ``|sum_k y_t[k] − 1| ≥ 0.1``.

Distributions (``s`` denotes ``1/sqrt(fan_in)``, magnitudes stratified as above):

=========  =====================================  ===========================
leaf       magnitude range                        notes
=========  =====================================  ===========================
``W_xh``   ``[0.2, 0.9] · s``, fan_in = D         random signs
``W_hh``   ``[0.2, 0.9] · s``, fan_in = H         random signs; ×4 with sigmoid
``W_hy``   ``[0.3, 1.35] · s``, fan_in = H        1.5× wider logits
``b_h``    ``[0.1, 0.5]``
``b_y``    ``[0.1, 0.5]``
``x_t``    ``[0.2, 1.0]``                         all steps stratified together
``h_0``    ``[0.1, 0.7]``                         zeros when ``model.h0 == "zeros"``
``y_t``    cross-entropy: one-hot (uniform class) or ``f + (1 − O·f)·Dirichlet(1)``,
           ``f = min(0.05, 0.5/O)``, so every soft entry ≥ f;
           squared error: standard normal entries
=========  =====================================  ===========================

``targets="mixed"`` alternates point by point: even points one-hot, odd
points soft (cross-entropy only: squared-error targets are always normal
draws). A point that fails a soft check (asymmetry, target distance)
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
"""Bound on every pre-activation entry |a_t[j]| (tanh'(1.5) ≈ 0.18, sigmoid'(1.5) ≈ 0.15: not saturated)."""
TARGET_GAP = 0.05
"""Minimum of max_k |yhat_t[k] - y_t[k]| at every step (``min(TARGET_GAP, 0.5/O)`` for O > 10 classes)."""
W_HH_ASYMMETRY = 0.2
"""Minimum ‖W_hh − W_hhᵀ‖_F / ‖W_hh‖_F for H ≥ 2."""
GRADIENT_ASYMMETRY = 0.05
"""Minimum max|G − Gᵀ| / max|G| for the gradient G of every square parameter."""
MAX_REDRAWS = 25
"""Redraws of a point that fails a soft check (and of a target too close to its prediction)."""
RELU_MARGIN = 0.1
"""With relu, every pre-activation entry satisfies |a_t[j]| ≥ RELU_MARGIN: far from the kink at 0."""
RELU_FALLBACK_MARGINS = (0.01, 0.001)
"""Smaller margins, in turn, for models where RELU_MARGIN is out of reach (H·T in the hundreds)."""
_RELU_MARGINS = (RELU_MARGIN, *RELU_FALLBACK_MARGINS)
RELU_REDRAWS = 40
"""Draws of a relu point that cannot meet a margin before the next smaller margin is used."""
RELU_PATTERN_DRAWS = 30
"""Draws of a relu point that try to realise its activation pattern (:func:`relu_pattern`) before the weaker rule."""
RELU_CANDIDATES = 256
"""Candidate inputs x_t tried at each step when arranging a relu point."""
TARGET_OFF_SIMPLEX = 0.1
"""Squared error: a target's entries sum to at least this far from 1 (it is never a distribution)."""
SIGMOID_GAIN = 4.0
"""With sigmoid (σ' ≤ 1/4), W_hh is drawn this much larger (Glorot & Bengio 2010): gradients through many steps
do not vanish."""
_SHRINK = 0.8


# -- public -------------------------------------------------------------------


def sample_points(
    model: RNN, n: int, seed: int, *, targets: TargetKind = "mixed"
) -> dict[Ref, np.ndarray]:
    """``n`` well-conditioned random points for ``model``, reproducible from ``seed``.

    Returns float64 arrays of shape ``(n, rows, cols)`` for every leaf
    (``model.leaves()``), plus ``Ref("h", 0)`` as zeros when
    ``model.h0 == "zeros"``, each in the model's convention and shape. See
    the module docstring for the distributions and the guarantees.
    ``targets`` is ``"onehot"``, ``"soft"`` or ``"mixed"`` (alternating point
    by point, starting with one-hot); squared-error targets are always
    normal draws.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"number of sample points {n!r} is invalid", hint="use a whole number ≥ 1")
    if targets not in ("mixed", "onehot", "soft"):
        raise ConfigError(f"targets = {targets!r} is invalid", hint="use 'mixed', 'onehot' or 'soft'")
    rng = np.random.default_rng(seed)
    row = model.replace(convention="row")
    points = []
    level = 0
    for i in range(n):
        onehot = targets == "onehot" or (targets == "mixed" and i % 2 == 0)
        point, level = _sample_one(row, rng, onehot, i, level, relu_pattern(row, i, n))
        points.append(point)
    order = model.leaves() + ((Ref("h", 0),) if model.h0 == "zeros" else ())
    stacked = {ref: np.stack([p[ref] for p in points]) for ref in order}
    return _transpose_all(stacked) if model.column else stacked


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
    ``a_t`` before the activation, ``h_t`` after it, ``yhat_t`` after the
    output function, ``L_t``, ``L``), everything downstream seeing the
    perturbed value; this is what finite differences with respect to a node
    use. Formulas as in :mod:`bptt_check.model`: ``h_t = act(a_t)``; with
    cross-entropy a stable softmax (``z - max z``) and ``L_t = -sum_k y_t[k]
    log(yhat_t[k])``, with squared error ``yhat_t = z_t`` and ``L_t = 1/2
    sum_k (yhat_t[k] - y_t[k])²``. Values and perturbations are in the model's
    convention (a column model is computed as the transpose of its row model).
    ``h_0`` defaults to zeros when absent from ``leaves``.
    """
    if not model.column:
        return _row_forward(model, leaves, perturbations or {})
    flip = _transpose_all
    values = _row_forward(model.replace(convention="row"), flip(leaves), flip(perturbations or {}))
    return flip(values)


def _transpose_all(values: Mapping[Ref, np.ndarray]) -> dict[Ref, np.ndarray]:
    """Every (P, rows, cols) value transposed: row convention ↔ column convention."""
    return {ref: np.swapaxes(np.asarray(v), -1, -2) for ref, v in values.items()}


_NUMPY_ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "relu": lambda a: np.maximum(a, 0.0),
}


def _row_forward(
    model: RNN, leaves: Mapping[Ref, np.ndarray], pert: Mapping[Ref, np.ndarray]
) -> dict[Ref, np.ndarray]:
    """:func:`numpy_forward` of a row-convention model."""
    D, H, O = model.sizes
    P = _batch_size(model, leaves)
    act = _NUMPY_ACTIVATIONS[model.activation]
    squared = model.loss == "squared_error"

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
        h = values[Ref("h", t)] = node(Ref("h", t), act(a))
        z = h @ W_hy
        if model.biases:
            z = z + values[Ref("b_y")]
        z = values[Ref("z", t)] = node(Ref("z", t), z)
        y = values[Ref("y", t)]
        if squared:
            yhat = values[Ref("yhat", t)] = node(Ref("yhat", t), z)
            loss = 0.5 * ((yhat - y) ** 2).sum(axis=-1, keepdims=True)
        else:
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            yhat = values[Ref("yhat", t)] = node(Ref("yhat", t), e / e.sum(axis=-1, keepdims=True))
            loss = -(y * np.log(yhat)).sum(axis=-1, keepdims=True)
        loss = values[Ref("L", t)] = node(Ref("L", t), loss)
        if t in loss_steps:
            total = total + loss
    values[L_TOTAL] = node(L_TOTAL, total)
    return values


# -- one point ------------------------------------------------------------------


def relu_pattern(model: RNN, index: int, n: int) -> np.ndarray | None:
    """The activation pattern point ``index`` of ``n`` aims for, (T, H) booleans (True: active); None without relu.

    Point 0 has every unit active. Unit j of step t (number b = (t-1)·H + j) is
    inactive at point ``1 + b mod (n-1)`` and active at the others, so across
    n ≥ 3 points every unit of every step is in both states, and when
    T·H ≤ n - 1 each inactive unit is the only one of its point: the paths
    through every other unit and step carry signal there (a dropped
    ``step(a_t)`` changes the answer). With H ≥ 2 no step has all its units
    inactive, since the inactive ones of a point are n - 1 ≥ 2 apart. Two
    points take a checkerboard and its complement instead (b even / b odd
    inactive); one point is all active.
    """
    if model.activation != "relu":
        return None
    T, H = model.steps, model.hidden_size
    bits = np.arange(T * H).reshape(T, H)
    if n == 1:
        return np.ones((T, H), dtype=bool)
    if n == 2:
        return bits % 2 != index % 2
    if index == 0:
        return np.ones((T, H), dtype=bool)
    return bits % (n - 1) != (index - 1) % (n - 1)


def region_point(model: RNN, active: np.ndarray, seed: int) -> dict[Ref, np.ndarray] | None:
    """One point (P = 1) of a relu model whose pre-activations have exactly the signs ``active``.

    ``active`` is (T, H) booleans (True: a_t[j] > 0). Every |a_t[j]| keeps a
    margin from the kink (:data:`RELU_MARGIN`, else the fallback margins); None
    when no draw of :data:`RELU_PATTERN_DRAWS` per margin reaches the pattern.
    Targets are soft (cross-entropy) or normal (squared error), as in :func:`sample_points`.
    """
    rng = np.random.default_rng(seed)
    row = model.replace(convention="row")
    for margin in _RELU_MARGINS:
        for _ in range(RELU_PATTERN_DRAWS):
            point = _draw(row, rng)
            _unsaturate(row, point)
            values = _arrange_relu(row, rng, point, 1, margin, np.asarray(active, dtype=bool))
            if values is None:
                continue
            _draw_targets(row, rng, point, values, onehot=False)
            order = row.leaves() + ((Ref("h", 0),) if model.h0 == "zeros" else ())
            stacked = {ref: point[ref][None] for ref in order}
            return _transpose_all(stacked) if model.column else stacked
    return None


def _sample_one(
    model: RNN,
    rng: np.random.Generator,
    onehot: bool,
    index: int,
    level: int = 0,
    pattern: np.ndarray | None = None,
) -> tuple[dict[Ref, np.ndarray], int]:
    """One point of a row-convention model (arrays without the point axis), redrawn until it passes the checks.

    A relu point always meets the relu margin ``_RELU_MARGINS[level]``
    (:func:`_arrange_relu`): after :data:`RELU_REDRAWS` draws that cannot, the
    next smaller margin is used. It realises ``pattern`` (:func:`relu_pattern`)
    when one of :data:`RELU_PATTERN_DRAWS` draws can, else it falls back to
    the weaker rule of :func:`_arrange_relu`. Returns the point and the level reached.
    """
    best: tuple[int, dict[Ref, np.ndarray]] | None = None
    relu = model.activation == "relu"
    attempts = misses = pattern_misses = 0
    while True:
        point = _draw(model, rng)
        values: dict[Ref, np.ndarray] | None = _unsaturate(model, point)
        if relu:
            want = pattern if pattern_misses < RELU_PATTERN_DRAWS else None
            values = _arrange_relu(model, rng, point, index, _RELU_MARGINS[level], want)
            if values is None and want is not None:
                pattern_misses += 1
                continue
            if values is None:
                misses += 1
                if misses >= RELU_REDRAWS:
                    level, misses = level + 1, 0
                    if level == len(_RELU_MARGINS):
                        raise ConfigError(
                            f"no relu sample point keeps every |a_t[j]| ≥ {_RELU_MARGINS[-1]} for {model.describe()}",
                            hint="use fewer steps or hidden units, or another activation",
                        )
                continue
        assert values is not None
        _draw_targets(model, rng, point, values, onehot)
        failures = _failures(model, point)
        if failures == 0:
            return point, level
        if best is None or failures < best[0]:
            best = (failures, point)
        attempts += 1
        if attempts > MAX_REDRAWS:
            return best[1], level


def _draw(model: RNN, rng: np.random.Generator) -> dict[Ref, np.ndarray]:
    """Parameters, x_t and h_0 by stratified magnitudes (targets are drawn later)."""
    D, H, O = model.sizes
    T = model.steps
    gain = SIGMOID_GAIN if model.activation == "sigmoid" else 1.0
    point: dict[Ref, np.ndarray] = {
        Ref("W_xh"): _stratified(rng, (D, H), 0.2, 0.9, D**-0.5),
        Ref("W_hh"): _stratified(rng, (H, H), 0.2, 0.9, H**-0.5 * gain),
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


def _arrange_relu(
    model: RNN,
    rng: np.random.Generator,
    point: dict[Ref, np.ndarray],
    index: int,
    margin: float,
    want: np.ndarray | None = None,
) -> dict[Ref, np.ndarray] | None:
    """Reassign the x stack step by step so that margin ≤ |a_t[j]| ≤ A_MAX everywhere; None if stuck.

    At step t, :data:`RELU_CANDIDATES` inputs x_t are drawn from the x stack's
    unused magnitudes (any order, any signs) and a random one meeting the bounds
    is kept, so the stack stays stratified. With H ≥ 2 every step has an
    active unit (a > 0: no step cuts every path) and the point has an inactive
    one (a < 0; at the last step a candidate must supply it if still missing).
    With H = 1, even points are active at every step and odd points have an
    inactive step. With ``want`` ((T, H) booleans, True: active) the signs of
    every a_t must be exactly those instead. Returns the forward values.
    """
    T, (D, H, _) = model.steps, model.sizes
    xs = np.concatenate([point[Ref("x", t)] for t in model.steps_range()], axis=0)
    pool = np.abs(xs).ravel()
    unused = np.ones(pool.size, dtype=bool)
    W_xh, W_hh = point[Ref("W_xh")], point[Ref("W_hh")]
    b_h = point[Ref("b_h")] if model.biases else 0.0
    h = point[Ref("h", 0)]
    inactive = False
    for t in model.steps_range():
        free = np.flatnonzero(unused)
        keys = rng.random((RELU_CANDIDATES, free.size))
        picks = free[np.argsort(keys, axis=1)[:, :D]]
        cands = pool[picks] * rng.choice(np.array([-1.0, 1.0]), size=picks.shape)
        a = cands @ W_xh + (h @ W_hh + b_h)
        ok = (np.abs(a).min(axis=1) >= margin) & (np.abs(a).max(axis=1) <= A_MAX)
        if want is not None:
            ok &= ((a > 0) == want[t - 1]).all(axis=1)
        else:
            if H >= 2 or index % 2 == 0:
                ok &= (a > 0).any(axis=1)
            if t == T and not inactive and (H >= 2 or index % 2 == 1):
                ok &= (a < 0).any(axis=1)
        if not ok.any():
            return None
        k = rng.choice(np.flatnonzero(ok))
        unused[picks[k]] = False
        point[Ref("x", t)] = cands[k][None, :]
        inactive = inactive or bool((a[k] < 0).any())
        h = np.maximum(a[k][None, :], 0.0)
    return _forward_one(model, point)


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
    """Draw every y_t, redrawing a step's target while it is within the target gap of yhat_t.

    Cross-entropy: one-hot or soft targets on the simplex. Squared error:
    standard normal entries whose sum is at least TARGET_OFF_SIMPLEX away
    from 1 (``onehot`` is ignored).
    """
    O = model.output_size
    floor = min(0.05, 0.5 / O)
    gap = _target_gap(O)
    squared = model.loss == "squared_error"
    for t in model.steps_range():
        yhat = values[Ref("yhat", t)][0]
        y = None
        for _ in range(MAX_REDRAWS + 1):
            if squared:
                y = rng.standard_normal(O)
                if abs(y.sum() - 1.0) < TARGET_OFF_SIMPLEX:
                    continue
            else:
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
        y = point[Ref("y", t)]
        if np.abs(values[Ref("yhat", t)] - y).max() < _target_gap(model.output_size):
            failures += 1
        if model.loss == "squared_error" and abs(y.sum() - 1.0) < TARGET_OFF_SIMPLEX:
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

    δz_t = (yhat_t − y_t)·[t is a loss step] (both losses);  δh_t = δz_t W_hyᵀ + δa_{t+1} W_hhᵀ;
    δa_t = δh_t ⊙ act'(a_t) (1 − h_t², h_t (1 − h_t) or [a_t > 0]);  dL/dW_hy = Σ h_tᵀ δz_t,
    dL/dW_xh = Σ x_tᵀ δa_t,  dL/dW_hh = Σ h_{t−1}ᵀ δa_t.
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
        da = dh * _derivative(model, values[Ref("a", t)], h)
        grads[Ref("W_hy")] += h.T @ dz
        grads[Ref("W_xh")] += values[Ref("x", t)].T @ da
        grads[Ref("W_hh")] += values[Ref("h", t - 1)].T @ da
        da_next = da
    return grads


def _derivative(model: RNN, a: np.ndarray, h: np.ndarray) -> np.ndarray:
    """act'(a_t) from a_t and h_t = act(a_t)."""
    if model.activation == "sigmoid":
        return h * (1.0 - h)
    if model.activation == "relu":
        return (a > 0).astype(np.float64)
    return 1.0 - h**2


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
