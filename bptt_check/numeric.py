"""The numeric truth: jax autodiff in float64, and central finite differences.

This is the only module that imports jax. Importing it changes no jax
setting: every call into jax runs inside ``jax.enable_x64(True)`` (a
thread-local context), so the truth is float64 while the user's own jax code
keeps its configuration. Nothing is compiled at import time: the one compiled
function per model shape (forward pass plus vector-Jacobian products, see
:class:`NumericRNN`) is built on first use and cached in memory. Keeping
compiled programs on disk across processes is opt-in
(:func:`enable_compilation_cache`, or the ``BPTT_CHECK_CACHE`` environment variable).

**Forward.** One step of the recurrence (:mod:`bptt_check.model`) is the body
of a ``jax.lax.scan`` over the T steps, so the traced program and the compile
time do not grow with T. The compiled function works on one point and is
called once per point: this compiles markedly faster than a ``vmap`` over the
point axis (which would also recompile for every new number of points), and a
call costs about a millisecond. ``h_t = act(a_t)`` with ``act`` tanh, sigmoid
or ``relu = maximum(a, 0)``; cross-entropy: ``yhat_t = softmax(z_t)``,
``L_t = -sum_k y_t[k] · log(yhat_t[k])``; squared error: ``yhat_t = z_t``,
``L_t = 1/2 sum_k (yhat_t[k] - y_t[k])²``.

**Conventions.** The program computes in the row convention. A column-convention
model is its transpose: at the boundary every weight matrix is transposed
(vectors (n, 1) and (1, n) have the same entries in the same order), so inputs
and results are in the model's own shapes, and a Jacobian whose denominator is
a weight matrix has its denominator axes transposed. Row and column models of
one shape share one compiled program.

**Derivatives with respect to nodes.** Every node family (``a_t``, ``h_t``,
``z_t``, ``yhat_t``, ``L_t``, ``L``) gets a perturbation input, zero at the
point, added where the node is computed (``a_t`` before the activation, ``h_t``
after it, ``yhat_t`` after the softmax or identity). ∂A/∂(node) is the derivative with
respect to that perturbation; for a leaf it is the derivative with respect to
the leaf's value.

**Readings** (ARCHITECTURE.md). ``total`` differentiates through every path.
``immediate`` (Pascanu et al. 2013's ∂⁺) blocks the paths through every
hidden state ``h_s`` (s ≥ 1) whose step is neither the numerator's nor the
denominator's step (``L`` and parameters have no step): where ``h_s`` feeds
``z_s`` and ``a_{s+1}`` it is replaced by ``h_s + m_s·(stop_gradient(h_s) − h_s)``
with the mask ``m_s ∈ {0, 1}`` an *argument* of the compiled function, so both
readings share one compilation and the value is unchanged. At T = 2:
∂h_2/∂W_hh (immediate) holds h_1 fixed; ∂L/∂h_1 (immediate) = ∂L_1/∂h_1;
∂L_2/∂h_1 is the same under both readings. A second mask ``c_s`` cuts only
the recurrent edge ``h_s → a_{s+1}`` the same way: with every edge cut, one
backward pass gives the immediate ∂L/∂h_t for every t at once
(:meth:`NumericRNN.gradients` with ``recurrent=False``).

**Finite differences** (:func:`finite_differences`) use the independent numpy
forward :func:`bptt_check.sampling.numpy_forward` and central differences.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ConfigError, InternalError
from .model import L_TOTAL, RNN, Reading, Ref, squeeze_shape
from .sampling import numpy_forward

__all__ = ["NumericRNN", "finite_differences", "enable_compilation_cache", "DEFAULT_FD_STEP", "CACHE_ENV"]

CACHE_ENV = "BPTT_CHECK_CACHE"
"""Environment variable: a directory for jax's persistent compilation cache (unset, ``off``: none)."""

_cache_lock = threading.Lock()
_cache_checked = False


def enable_compilation_cache(where: str | os.PathLike[str] | None = None) -> Path | None:
    """Keep jax's compiled programs on disk in ``where`` (default: ``$BPTT_CHECK_CACHE``); opt-in.

    A compile costs 1–2 s per model shape; with the cache, a second process
    for the same shape loads it instead. This sets jax's *global* persistent
    cache options (there is no local form), so it is only done when asked:
    by a call, or by ``BPTT_CHECK_CACHE=DIR`` in the environment (read on the
    first jax computation). ``None``, ``""``, ``off``, ``0``, ``no``: no cache.
    Returns the directory used, or None (also when it cannot be created).
    """
    if where is None:
        where = os.environ.get(CACHE_ENV, "")
    text = str(where)
    if text.strip().lower() in ("", "off", "0", "no"):
        return None
    path = Path(text).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only location: compile every time
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def _cache_from_environment() -> None:
    """Honour ``$BPTT_CHECK_CACHE`` once, before the first compilation."""
    global _cache_checked
    if _cache_checked:
        return
    with _cache_lock:
        if not _cache_checked:
            if os.environ.get(CACHE_ENV):
                enable_compilation_cache()
            _cache_checked = True


_SHARED_K = 8
"""Up to this max(H, O), scalar and vector numerators share one compiled function (K = max(H, O))."""

_FD_BATCH = 4096
"""At most this many perturbed forward passes are batched into one numpy forward."""

DEFAULT_FD_STEP = float(np.finfo(np.float64).eps) ** (1.0 / 3.0)
"""The default central-difference step, ε^(1/3) ≈ 6.1e-6 (ε = float64 machine epsilon).

Central differences have truncation error ≈ h²·|f'''|/6 and rounding error
≈ ε·|f|/h; their sum is smallest near h = ε^(1/3), giving an error of order
ε^(2/3) ≈ 4e-11 relative for the O(1) values of a well-conditioned point.
The step is scaled by ``max(1, |v|)`` for an entry of value ``v``.
"""

Arrays = dict[str, Any]
"""Leaf values or perturbations of one model, keyed by family (see :func:`_unpack`)."""

class NumericRNN:
    """The jax truth for one model: forward values, gradients and partials at float64 points.

    Every method takes ``leaves``, a mapping from every leaf of the model
    (``model.leaves()``; ``h_0`` may be omitted when ``model.h0 == "zeros"``)
    to a float64 array ``(P, rows, cols)``; extra refs are ignored. Results
    are numpy float64 arrays with the point axis first.

    All three methods run one compiled function, point by point: the forward
    pass and its vector-Jacobian products with respect to every leaf and every
    node perturbation, for a batch of K cotangents. Row ``i`` of ∂num/∂den is
    the VJP of the unit cotangent on ``num[i]``. K = max(H, O), except that a
    scalar numerator uses K = 1 when max(H, O) > 8 (to avoid K-fold work on
    large models). So a model shape (T, sizes, biases) compiles once (twice
    for large sizes), whatever the number of points, ``loss_at``, ``h0``, the
    reading, ``num`` and ``den``: all of those are data. The activation and
    the loss change the program: they are static arguments of the compilation.
    """

    def __init__(self, model: RNN) -> None:
        self.model = model

    def forward(self, leaves: Mapping[Ref, np.ndarray]) -> dict[Ref, np.ndarray]:
        """The value of every ref of the model (leaves, h_0, a_t, h_t, z_t, yhat_t, L_t, L), (P, rows, cols)."""
        m = self.model
        arrs, P = _unpack(m, leaves)
        outs, _ = self._run(arrs, P, None, _no_block(m))
        values = {ref: np.asarray(leaves[ref], dtype=np.float64) for ref in m.leaves()}
        values[Ref("h", 0)] = np.asarray(arrs["h0"]).reshape(P, *m.shape(Ref("h", 0)))
        for ref in m.nodes():
            values[ref] = np.asarray(_select(ref, outs)).reshape(P, *m.shape(ref))
        return values

    def gradients(
        self, leaves: Mapping[Ref, np.ndarray], of: Ref = L_TOTAL, *, recurrent: bool = True
    ) -> dict[Ref, np.ndarray]:
        """The (total) gradient of the scalar ``of`` (``L`` or an ``L_t``) with respect to every ref.

        Keys: every leaf, ``h_0`` (also when it is zeros), and every node
        ``a_t, h_t, z_t, yhat_t, L_t`` and ``L`` (nodes not upstream of ``of``
        get zeros, ``of`` itself 1); each value has the ref's shape, (P, rows, cols).
        ``recurrent=False`` cuts every edge ``h_{t-1} → a_t``: the gradient of
        ``L`` with respect to ``h_t`` is then its immediate one (the path through ``L_t`` only).
        """
        m = self.model
        of = self._check_ref(of)
        if not of.is_loss:
            raise ConfigError(f"gradients of {of} are not defined", hint="use L or a step loss L_t (a scalar)")
        arrs, P = _unpack(m, leaves)
        block = _no_block(m)
        if not recurrent:
            block[:, 1] = 1.0
        _, (g_arrs, g_perts) = self._run(arrs, P, of, block)
        out: dict[Ref, np.ndarray] = {}
        for ref in m.refs():
            store = g_arrs if _is_leaf(ref) else g_perts
            out[ref] = _in_model_layout(m, ref, np.asarray(_select(ref, store, row=0), dtype=np.float64))
        return out

    def partial(
        self,
        num: Ref,
        den: Ref,
        leaves: Mapping[Ref, np.ndarray],
        reading: Reading = "total",
    ) -> np.ndarray:
        """∂num/∂den at every point, shape ``(P, *squeeze(shape(num)), *squeeze(shape(den)))``.

        ``num`` is any ref (a leaf gives zeros or, for ``num == den``, the
        identity); ``den`` any ref (not upstream of ``num`` → zeros). Entry
        ``[p, i..., j...] = ∂num[i...]/∂den[j...]`` under ``reading``.
        """
        m = self.model
        num, den = self._check_ref(num), self._check_ref(den)
        if reading not in ("total", "immediate"):
            raise ConfigError(f"reading {reading!r} is invalid", hint="use 'total' or 'immediate'")
        arrs, P = _unpack(m, leaves)
        layout = squeeze_shape(m.shape(num)) + squeeze_shape(m.shape(den))
        n_out = int(np.prod(m.shape(num)))
        if num == den:
            return np.broadcast_to(np.eye(n_out).reshape(layout), (P, *layout)).copy()
        if _is_leaf(num):
            return np.zeros((P, *layout))
        _, (g_arrs, g_perts) = self._run(arrs, P, num, _block_mask(m, num, den, reading))
        store = g_arrs if _is_leaf(den) else g_perts
        rows = np.asarray(_select(den, store, row=None), dtype=np.float64)[:, :n_out]  # (P, n_out, *den storage)
        return _in_model_layout(m, den, rows.reshape(P * n_out, -1)).reshape(P, *layout)

    # -- private -----------------------------------------------------------

    def _check_ref(self, ref: Ref) -> Ref:
        if ref not in self.model:
            raise ConfigError(f"{ref} is not a name of this model ({self.model.describe()})")
        return ref

    def _run(self, arrs: Arrays, P: int, num: Ref | None, block: np.ndarray) -> tuple[Arrays, tuple[Arrays, Arrays]]:
        """Outputs and the VJPs of the unit cotangents on ``num``'s entries (None: forward only)."""
        m = self.model
        K = max(m.hidden_size, m.output_size)
        if K > _SHARED_K and (num is None or num.is_loss):
            K = 1
        loss_mask = np.array([1.0 if t in m.loss_steps else 0.0 for t in m.steps_range()])
        perts, cots = _zero_perturbations(m), _cotangents(m, K, num)
        _cache_from_environment()
        # float64 here only: jax's global setting stays whatever the user chose
        with jax.enable_x64(True):
            per_point = [
                _vjp_fn(
                    {key: v[p] for key, v in arrs.items()},
                    perts,
                    block,
                    loss_mask,
                    cots,
                    activation=m.activation,
                    loss=m.loss,
                )
                for p in range(P)
            ]
            # stack in numpy (indexing jax arrays would compile a gather per index)
            result = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *per_point)
        if per_point and per_point[0][0]["Ltot"].dtype != np.float64:
            raise InternalError(f"the jax truth computed in {per_point[0][0]['Ltot'].dtype}, not float64")
        return result


def finite_differences(
    model: RNN,
    num: Ref,
    den: Ref,
    leaves: Mapping[Ref, np.ndarray],
    *,
    step: float | None = None,
) -> np.ndarray:
    """Central differences of the total derivative ∂num/∂den, laid out as :meth:`NumericRNN.partial`.

    For every entry ``j`` of ``den`` (a leaf's value, or a perturbation of a
    node where it is computed), with ``s = step · max(1, |den[j]|)``::

        ∂num/∂den[j] ≈ (num(den[j] + s) − num(den[j] − s)) / (2 s)

    The forward is :func:`bptt_check.sampling.numpy_forward` (plain numpy,
    independent of jax's autodiff). ``step`` defaults to
    :data:`DEFAULT_FD_STEP` = ε^(1/3) ≈ 6.1e-6, which balances truncation
    (∝ s²) against rounding (∝ ε/s): about 1e-10 relative error at
    well-conditioned points.
    """
    if num not in model or den not in model:
        bad = num if num not in model else den
        raise ConfigError(f"{bad} is not a name of this model ({model.describe()})")
    base_step = DEFAULT_FD_STEP if step is None else float(step)
    if not base_step > 0:
        raise ConfigError(f"finite-difference step {step!r} is invalid", hint="use a positive number")
    values = numpy_forward(model, leaves)
    P = values[L_TOTAL].shape[0]
    den_shape = model.shape(den)
    layout = squeeze_shape(model.shape(num)) + squeeze_shape(den_shape)
    n_in = int(np.prod(den_shape))
    center = values[den].reshape(P, n_in)
    steps = base_step * np.maximum(1.0, np.abs(center))  # (P, n_in)
    given = set(model.leaves()) | {Ref("h", 0)}
    tiled = {ref: np.asarray(v, dtype=np.float64) for ref, v in leaves.items() if ref in given}
    out = np.empty((P, int(np.prod(model.shape(num))), n_in))
    chunk = max(1, _FD_BATCH // (2 * P))
    for lo in range(0, n_in, chunk):
        entries = np.arange(lo, min(n_in, lo + chunk))
        k = len(entries)
        # points ordered (sign, entry, point): 2·k·P forward passes in one batch
        delta = np.zeros((2, k, P, n_in))
        delta[0, np.arange(k), :, entries] = steps[:, entries].T
        delta[1] = -delta[0]
        batch = {ref: np.tile(v, (2 * k, 1, 1)) for ref, v in tiled.items()}
        perturbation = {den: delta.reshape(2 * k * P, *den_shape)}
        result = numpy_forward(model, batch, perturbation)[num].reshape(2, k, P, -1)
        out[:, :, entries] = ((result[0] - result[1]) / (2.0 * steps[:, entries].T[:, :, None])).transpose(1, 2, 0)
    return out.reshape(P, *layout)


# -- the model as pure jax ---------------------------------------------------------
#
# Leaves of one point are kept in a dict ``arrs``, always in the row convention:
# "W_xh" (D,H), "W_hh" (H,H), "W_hy" (H,O), "b_h" (H,), "b_y" (O,) when biases are on, "x" (T,D),
# "y" (T,O), "h0" (H,). Perturbations ``perts``: "a" (T,H), "h" (T,H),
# "z" (T,O), "yhat" (T,O), "L" (T,), "Ltot" (). Outputs of the forward have
# the same keys as ``perts``. Outside the compiled function, results are
# stacked with a leading point axis P (and gradients have the cotangent axis K
# after it).


def _is_leaf(ref: Ref) -> bool:
    return ref.is_parameter or ref.family in ("x", "y") or ref == Ref("h", 0)


def _slot(ref: Ref) -> tuple[str, int | None]:
    """Where a ref lives in ``arrs`` / ``perts`` / outputs: (key, step index or None)."""
    if ref.is_parameter:
        return ref.family, None
    if ref == Ref("h", 0):
        return "h0", None
    if ref == L_TOTAL:
        return "Ltot", None
    assert ref.step is not None
    return ref.family, ref.step - 1


def _in_model_layout(model: RNN, ref: Ref, rows: np.ndarray) -> np.ndarray:
    """Values of ``ref`` stored in the row convention, (N, *any) → (N, *model.shape(ref)).

    A column model's value is the transpose of the stored one.
    """
    r, c = model.shape(ref)
    if not model.column:
        return rows.reshape(-1, r, c)
    return np.swapaxes(rows.reshape(-1, c, r), 1, 2)


def _select(ref: Ref, store: Mapping[str, Any], row: int | None = -1) -> Any:
    """The value of ``ref`` in a batched store (leaves in ``arrs``, nodes in outputs or perturbations).

    ``row=-1``: the store has a point axis only; otherwise it also has the
    cotangent axis K after the point axis, and ``row`` picks one (None: all).
    """
    key, index = _slot(ref)
    value = store[key]
    if row is not None and row >= 0:
        value = value[:, row]
    if index is None:
        return value
    return value[:, :, index] if row is None else value[:, index]


def _unpack(model: RNN, leaves: Mapping[Ref, np.ndarray]) -> tuple[Arrays, int]:
    """Batched leaf arrays (see the layout above) from (P, rows, cols) values, and P."""
    missing = [str(r) for r in model.leaves() if r not in leaves]
    if missing:
        raise ConfigError(f"values missing for {', '.join(missing)}", hint="give every leaf of the model")
    arrays = {r: np.asarray(leaves[r], dtype=np.float64) for r in model.leaves()}
    counts = {a.shape[0] if a.ndim == 3 else -1 for a in arrays.values()}
    P = counts.pop() if len(counts) == 1 else -1
    bad = [str(r) for r, a in arrays.items() if a.shape != (P, *model.shape(r))]
    if P < 1 or bad:
        raise ConfigError(
            f"values have the wrong shape: {', '.join(bad) or 'point counts differ'}",
            hint="every value is an array (P, rows, cols) with the ref's shape",
        )
    D, H, O = model.sizes
    T = model.steps
    arrs: Arrays = {
        name: np.swapaxes(arrays[Ref(name)], 1, 2) if model.column else arrays[Ref(name)]
        for name in ("W_xh", "W_hh", "W_hy")
    }
    if model.biases:
        arrs["b_h"] = arrays[Ref("b_h")].reshape(P, H)
        arrs["b_y"] = arrays[Ref("b_y")].reshape(P, O)
    arrs["x"] = np.stack([arrays[Ref("x", t)].reshape(P, D) for t in model.steps_range()], axis=1)
    arrs["y"] = np.stack([arrays[Ref("y", t)].reshape(P, O) for t in model.steps_range()], axis=1)
    h0 = leaves.get(Ref("h", 0))
    arrs["h0"] = np.zeros((P, H)) if h0 is None else np.asarray(h0, dtype=np.float64).reshape(P, H)
    assert arrs["x"].shape == (P, T, D)
    return arrs, P


def _zero_perturbations(model: RNN, lead: tuple[int, ...] = ()) -> Arrays:
    """Zero perturbations of one point (also the layout of the outputs), with leading axes ``lead``."""
    _, H, O = model.sizes
    T = model.steps
    return {
        "a": np.zeros((*lead, T, H)),
        "h": np.zeros((*lead, T, H)),
        "z": np.zeros((*lead, T, O)),
        "yhat": np.zeros((*lead, T, O)),
        "L": np.zeros((*lead, T)),
        "Ltot": np.zeros(lead),
    }


def _no_block(model: RNN) -> np.ndarray:
    """(T, 2): per step, m_s (paths through h_s blocked) and c_s (the edge h_s → a_{s+1} cut)."""
    return np.zeros((model.steps, 2))


def _block_mask(model: RNN, num: Ref, den: Ref, reading: Reading) -> np.ndarray:
    """m_s = 1 where paths through h_s are blocked: immediate reading, s ∉ {num's step, den's step}."""
    block = _no_block(model)
    if reading == "immediate":
        keep = {ref.step for ref in (num, den) if ref.step is not None}
        block[:, 0] = [0.0 if s in keep else 1.0 for s in model.steps_range()]
    return block


_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "relu": lambda a: jnp.maximum(a, 0.0),
}
"""h = act(a); relu's derivative at the kink is whatever jax picks (sample points avoid a = 0)."""


def _run(
    arrs: Arrays, perts: Arrays, block: jax.Array, loss_mask: jax.Array, activation: str, loss_name: str
) -> Arrays:
    """The forward pass of one point (no point axis, row convention): per-step node values and the total loss.

    ``block`` (T, 2) holds the reading's mask m_s and the cut c_s; ``loss_mask`` (T,) is 1 at the loss
    steps. Biases are used when ``arrs`` has them; ``h_0`` is data (zeros or not).
    """
    act = _ACTIVATIONS[activation]
    squared = loss_name == "squared_error"
    W_xh, W_hh, W_hy = arrs["W_xh"], arrs["W_hh"], arrs["W_hy"]
    b_h = arrs.get("b_h")
    b_y = arrs.get("b_y")

    def step(h_prev: jax.Array, inp: tuple[jax.Array, ...]) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        x, y, pa, ph, pz, pyhat, pl, (m, c) = inp
        a = x @ W_xh + h_prev @ W_hh + pa
        if b_h is not None:
            a = a + b_h
        h = act(a) + ph
        h_out = h + m * (jax.lax.stop_gradient(h) - h)  # = h; blocks paths through h when m = 1
        h_next = h_out + c * (jax.lax.stop_gradient(h_out) - h_out)  # = h; cuts h -> a_{t+1} when c = 1
        z = h_out @ W_hy + pz
        if b_y is not None:
            z = z + b_y
        if squared:
            yhat = z + pyhat
            loss = 0.5 * jnp.sum((yhat - y) ** 2) + pl
        else:
            e = jnp.exp(z - jax.lax.stop_gradient(jnp.max(z)))
            yhat = e / jnp.sum(e) + pyhat
            loss = -jnp.sum(y * jnp.log(yhat)) + pl
        return h_next, (a, h, z, yhat, loss)

    xs = (arrs["x"], arrs["y"], perts["a"], perts["h"], perts["z"], perts["yhat"], perts["L"], block)
    _, (a, h, z, yhat, loss) = jax.lax.scan(step, arrs["h0"], xs)
    total = jnp.sum(loss * loss_mask) + perts["Ltot"]
    return {"a": a, "h": h, "z": z, "yhat": yhat, "L": loss, "Ltot": total}


def _cotangents(model: RNN, K: int, num: Ref | None) -> Arrays:
    """K cotangents on the outputs (keys as ``perts``): row i is the unit vector on ``num``'s entry i."""
    cots = _zero_perturbations(model, (K,))
    if num is not None:
        key, index = _slot(num)
        if index is None:
            cots[key][0] = 1.0
        elif key == "L":
            cots[key][0, index] = 1.0
        else:
            n = cots[key].shape[-1]
            cots[key][np.arange(n), index, np.arange(n)] = 1.0
    return cots


def _outputs_and_vjps(
    arrs: Arrays,
    perts: Arrays,
    block: jax.Array,
    loss_mask: jax.Array,
    cots: Arrays,
    *,
    activation: str,
    loss: str,
) -> tuple[Arrays, tuple[Arrays, Arrays]]:
    """At one point: the outputs, and the VJPs of K cotangents w.r.t. (leaves, perturbations).

    No argument has a point axis; ``cots`` has the leading axis K.
    """
    outs, pull = jax.vjp(lambda a, p: _run(a, p, block, loss_mask, activation, loss), arrs, perts)
    return outs, jax.vmap(pull)(cots)


_vjp_fn = jax.jit(_outputs_and_vjps, static_argnames=("activation", "loss"))
"""The compiled :func:`_outputs_and_vjps`. jax compiles it once per input shapes and static
arguments, i.e. per model shape (T, sizes, biases), K, activation and loss: models that differ
only in ``loss_at``, ``h0`` or ``convention`` share it.
(A ``vmap`` over the point axis took about 1.7× as long to compile, and once per point
count; a call of this per-point program costs about 1 ms.)"""
