"""Property-based tests of your own BPTT code: hypothesis strategies, ``assert_gradients_match``, ``assert_backward_match``.

A student's ``rnn_backward`` (CS231n) or ``lossFun`` (min-char-rnn) is usually
checked with a handful of random finite differences and a printed relative
error. This module gives it a real test::

    from bptt_check.testing import assert_gradients_match, models

    def my_gradients(params, xs, ys, h0):       # your code, wrapped
        loss, dWxh, dWhh, dWhy, dbh, dby, _ = my_lossFun(xs, ys, h0, **params)
        return loss, {"dWxh": dWxh, "dWhh": dWhh, "dWhy": dWhy, "dbh": dbh, "dby": dby}

    assert_gradients_match(my_gradients, models(convention="column", biases=True, loss_at="all"),
                           names="min-char-rnn")

It runs your function over hypothesis-generated cases, compares every returned
gradient with the jax truth (cross-checked against the sympy truth for small
models), and on a mismatch shrinks to the smallest failing model and sequence
and raises an :class:`AssertionError` naming the parameter, the worst entry,
the three values, the tolerance rule and — from the diagnosis engine — the
most likely mistake.

**The model** (:mod:`bptt_check.model`). Row vectors (the seed's):
``a_t = x_t @ W_xh + h_{t-1} @ W_hh (+ b_h)``, ``h_t = act(a_t)``,
``z_t = h_t @ W_hy (+ b_y)``; column vectors (``convention="column"``,
min-char-rnn, Goodfellow et al. §10.2): ``a_t = W_xh x_t + W_hh h_{t-1} (+ b_h)``,
``z_t = W_hy h_t (+ b_y)``, every value the transpose of its row value.
``act`` is ``tanh``, ``sigmoid`` or ``relu``. The loss is softmax
cross-entropy, ``L_t = -sum_k y_t[k] log softmax(z_t)[k]``, or squared error
with a linear output, ``L_t = 1/2 sum_k (z_t[k] - y_t[k])**2``;
``L = sum of L_t`` over the loss steps (every step, or the last one only).

**Your code's layout is the model's convention.** ``fn`` is called in the
convention of the case's model; ``layout=`` need not be given, and when it is
it must agree (a contradiction is an :class:`InvalidArgumentError`). The one
exception keeps older calls working: :func:`models` without a ``convention``
draws row models, but given to ``assert_gradients_match(..., layout="column")``
it draws column models.

**The contract of ``fn(params, xs, ys, h0)``** (arrays are float64 copies;
``T`` steps, sizes ``D, H, O``):

==========  =====================  ========================
argument    ``convention="row"``   ``convention="column"``
==========  =====================  ========================
``W_xh``    (D, H)                 (H, D)
``W_hh``    (H, H)                 (H, H)  (= W_hh.T)
``W_hy``    (H, O)                 (O, H)
``b_h``     (H,)                   (H, 1)
``b_y``     (O,)                   (O, 1)
``xs``      (T, D)                 (T, D, 1)
``ys``      (T, O)                 (T, O, 1)
``h0``      (H,)                   (H, 1)
==========  =====================  ========================

``params`` is keyed by your names and holds the biases only when the model
has them. ``names`` maps your names to ours (``{"Wxh": "W_xh", ...}``), or is
one of the presets ``"min-char-rnn"`` (``Wxh, Whh, Why, bh, by``) and
``"textbook"`` (Goodfellow et al.'s ``U, W, V, b, c``); unmapped parameters
keep the canonical names. ``ys[t]`` is a target distribution (one-hot or soft,
summing to 1) for cross-entropy, a real vector for squared error; ``h0`` is
zeros when the model says ``h0="zeros"``. ``fn`` returns a dict of gradients —
keyed by your names, our names, or either with a ``d`` prefix (``dWxh``) —
each of the shape of its parameter (a vector may come as (n,), (1, n) or
(n, 1)); or ``(loss, grads)`` (or ``(grads, loss)``, or a ``"loss"`` key in
the dict). Every parameter of the model must have a gradient. The inputs may
have one too: ``dh0`` (also ``dh_0``, ``dhprev``, ``dprev_h``) is checked
against dL/dh_0 and ``dx`` (also ``dxs``) against dL/dx_t for every step, in
the shapes of ``h0`` and ``xs``. ``fn`` may also take a keyword argument
``model``: it then gets the case's :class:`~bptt_check.model.RNN`, so that
one function can serve models drawn with several activations or losses.

**Well-conditioned by construction.** Every entry is ``±(k/10)·s`` with
``k ∈ 1..10`` (never zero), ``s`` the family's scale (row-convention fan-in;
a column value is the transpose of the row value drawn):

=========  ===================  ===================  ==============================================
value      tanh, sigmoid        relu                 why
=========  ===================  ===================  ==============================================
``W_xh``   0.5 / D              0.5 / D              ``|x_t @ W_xh| ≤ 0.5`` per entry
``W_hh``   0.5 / H              0.25 / H             ``|h_{t-1} @ W_hh| ≤ 0.5`` (``|h| < 1``; relu ``|h| ≤ 1.5``)
``b_h``    0.5                  0.5
``W_hy``   1.5 / H              1.0 / H              ``|z_t| ≤ 2``: no saturated softmax
``b_y``    0.5                  0.5
``x_t``    1                    1
``h_0``    0.9                  0.9                  like an activation's output
=========  ===================  ===================  ==============================================

so every pre-activation has ``|a_t[j]| ≤ 1.5`` (``tanh' ≥ 0.18``,
``sigmoid' ≥ 0.14``) and every logit ``|z_t[k]| ≤ 2``, without any
``.filter()``. A relu model's pre-activations also keep away from the kink:
``|a_t[j]| ≥`` :data:`RELU_MARGIN` at every step (where a drawn ``x_t`` would
put one closer, its codes are shifted cyclically until none is; hypothesis
rejects the rare draw where no shift works, about 1 in 200). Cross-entropy targets are one-hot
(a class per step) or soft (``w / sum(w)`` with integer weights
``w_k ∈ 1..9``, so every entry ≥ 1/(9O-8)); squared-error targets are real
vectors, entries ``±(k/10)``. Shrinking goes to fewer steps, smaller sizes,
the first option of each choice (a loss at every step, ``h_0`` an input, no
biases, row vectors, tanh, cross-entropy), one-hot targets of class 0 and
positive entries whose magnitudes follow a fixed pattern (0.1, 0.4, 0.7, 1.0,
0.3, … times the scale), so that even the shrunk case is not degenerate.

**The truths.** jax (:class:`~bptt_check.numeric.NumericRNN`, float64) gives
every gradient. To compile once for many model shapes, the model is embedded
exactly in a padded row-convention one (a column model's values transposed;
steps and sizes rounded up to a bucket): zero weights and inputs into and
out of the padding; at padded and non-loss steps, targets that make the
step's loss and its gradient vanish (cross-entropy: zero targets;
squared error: ``y_t = z_t`` from jax's own forward pass); padded classes at
logit −600 for cross-entropy, whose softmax mass is below float64
resolution, and outputs 0 against a target 0 for squared error. For small
models (T ≤ :data:`SYMPY_MAX_STEPS`, every size ≤ :data:`SYMPY_MAX_SIZE`)
the sympy truth (:class:`~bptt_check.symbolic.SymbolicRNN`, unpadded, in the
model's own convention) is evaluated too and the two must agree to ``TRUTHS_RTOL``; a
disagreement is an :class:`~bptt_check.errors.InternalError`, never a verdict.

**The tolerance rule.** A gradient matches when, entrywise,
``|yours − jax| ≤ atol + rtol·|jax|``.

**Code as it is written.** :func:`assert_gradients_match` also takes class
targets (``targets="class"``: ``ys`` integer indices), token inputs
(``inputs="index"``), a batch (``batch=N``) and its ``reduction``, gradient
clipping (``clip=c``), truncated BPTT (``truncate=k``) and float32 code
(``dtype="float32"``); the truth follows each (see its docstring), and a
mismatch that is one of these conventions is named as such. A layer whose
backward pass takes an upstream gradient — CS231n's ``rnn_backward(dh,
cache)`` — is checked by :func:`assert_backward_match` (the truth: the
vector–Jacobian product of the hidden states with a random ``dhs``), one
step of it by ``assert_step_gradients_match(forward_step, backward_step,
model)``. The diagnosis engine replays your code at its own sample points
(one-hot targets and inputs when your code takes indices, a batch of one,
your reduction undone); a backward pass gets the direct ``∂L/∂h_t`` of the
engine's model as its upstream gradient, so that it returns ``dL/d(·)``.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

import numpy as np
from hypothesis import HealthCheck, Phase, assume, given
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from .errors import ConfigError, InternalError
from .language.names import Notation
from .model import ACTIVATIONS, CONVENTIONS, L_TOTAL, LOSSES, PARAMETERS, RNN, Ref, Target, normalize_choice

__all__ = [
    "Case",
    "Inputs",
    "InvalidArgumentError",
    "Layout",
    "MIN_CHAR_RNN_NAMES",
    "TEXTBOOK_NAMES",
    "CS231N_NAMES",
    "BackwardCase",
    "RELU_MARGIN",
    "models",
    "parameters",
    "sequences",
    "cases",
    "assert_gradients_match",
    "assert_backward_match",
    "assert_step_gradients_match",
    "REDUCTIONS",
]

Layout = Literal["row", "column"]
TargetKind = Literal["any", "onehot", "soft", "real", "class"]
InputKind = Literal["dense", "index"]
Reduction = Literal["sum", "mean", "mean_steps", "mean_all"]
REDUCTIONS: tuple[str, ...] = ("sum", "mean", "mean_steps", "mean_all")
"""How the loss of a batch is reduced: the sum of every example's L, its mean over the batch (÷N), over
the loss steps (÷T_L, the number of steps with a loss), or over both (÷N·T_L)."""
MAX_BATCH = 8
"""The largest batch size the strategies draw."""
FLOAT32_RTOL, FLOAT32_ATOL = 1e-4, 1e-6
"""The default tolerances with ``dtype="float32"``: float32 resolution is 1.2e-7, and a gradient
summed over 12 steps of a batch of 8 accumulates a few hundred roundings."""
FLOAT32_RESOLUTION = 1e-4
"""An error at most this times the gradient's largest entry is float32 round-off, not a mistake."""
StepFn = Callable[..., Any]
GradientFn = Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray], Any]
Choice = Any
"""A model option of :func:`models`: one value, a tuple of the values to draw from, or None for all of them."""

MAX_STEPS_LIMIT = 12
"""The largest ``max_steps`` the strategies accept (bounded so that tests stay fast)."""
MAX_SIZE_LIMIT = 8
"""The largest ``max_size`` the strategies accept."""
SYMPY_MAX_STEPS = 3
"""The sympy cross-check runs for models with at most this many steps…"""
SYMPY_MAX_SIZE = 3
"""…and every size at most this."""
RELU_MARGIN = 0.01
"""Every pre-activation of a relu case has ``|a_t[j]| ≥ RELU_MARGIN``: far from the kink at 0 next to
float64 round-off (1e-16) and finite-difference steps (1e-5), so step(a) is the same for you and the truths."""

def _parameter_names(notation: Notation) -> Mapping[str, str]:
    """A built-in notation's parameter aliases (its node aliases, ``hs`` or ``o``, name no gradient of ``fn``)."""
    return types.MappingProxyType({a: c for a, c in notation.aliases.items() if c in PARAMETERS})


MIN_CHAR_RNN_NAMES: Mapping[str, str] = _parameter_names(Notation.MINCHAR)
"""Karpathy's min-char-rnn names (``names="min-char-rnn"``: Wxh, Whh, Why, bh, by); the gradients come back as ``dWxh``, …"""
TEXTBOOK_NAMES: Mapping[str, str] = _parameter_names(Notation.TEXTBOOK)
"""Goodfellow et al. §10.2's names (``names="textbook"``: U, W, V, b, c): ``a = b + W h + U x``, ``o = c + V h``."""
CS231N_NAMES: Mapping[str, str] = types.MappingProxyType({"Wx": "W_xh", "Wh": "W_hh", "b": "b_h"})
"""CS231n's rnn_layers.py names (``names="cs231n"``: Wx, Wh, b); the gradients come back as ``dWx``, ``dWh``, ``db``."""
_NAME_PRESETS = {
    "min_char_rnn": MIN_CHAR_RNN_NAMES, "textbook": TEXTBOOK_NAMES, "goodfellow": TEXTBOOK_NAMES, "cs231n": CS231N_NAMES,
}

_LEVELS = 10
"""Magnitudes k/10 for k = 1..10."""
_SOFT_WEIGHT = 9
"""Soft targets are w / sum(w) with integer weights 1..9."""
_MASKED_LOGIT = -600.0
"""The logit of a padded class: exp(-600) ≈ 1e-261 is below float64 resolution next to O(1) terms."""
_BUCKET = 4
"""Padded steps and sizes are the smallest 4·2^k at least the real one."""


class InvalidArgumentError(ConfigError, InvalidArgument):
    """A bad argument to a strategy or an assertion helper.

    A :class:`~bptt_check.errors.ConfigError` that hypothesis also recognises
    as its own ``InvalidArgument``.
    """


@dataclass(frozen=True)
class _Options:
    """How a check presents its cases to the user's code and which truth it compares with (validated by :func:`_options`)."""

    targets: str = "any"
    inputs: str = "dense"
    vocab: int | None = None
    batch: tuple[int, ...] | None = None
    """the batch sizes to draw from; None: no batch axis at all"""
    reduction: str = "sum"
    clip: float | None = None
    truncate: int | None = None
    dtype: str = "float64"

    @property
    def batched(self) -> bool:
        return self.batch is not None

    def factor(self, model: RNN, n: int) -> float:
        """The reduction's factor on the sum of the N examples' losses."""
        return _reduction_factor(self.reduction, n, len(model.loss_steps))


def _reduction_factor(reduction: str, n: int, loss_steps: int) -> float:
    return {"sum": 1.0, "mean": 1.0 / n, "mean_steps": 1.0 / loss_steps, "mean_all": 1.0 / (n * loss_steps)}[reduction]


def _options(
    *, targets: object = "any", inputs: object = "dense", vocab: object = None, batch: object = None,
    reduction: object = "sum", clip: object = None, truncate: object = None, dtype: object = "float64",
) -> _Options:
    """Validated options; every bad value is an :class:`InvalidArgumentError` with a hint."""
    _check_targets(targets)
    if inputs not in ("dense", "index"):
        raise InvalidArgumentError(f"inputs = {inputs!r} is invalid", hint="use 'dense' (real x_t) or 'index' (integer tokens, x_t one-hot)")
    if vocab is not None:
        if inputs != "index":
            raise InvalidArgumentError(f"vocab = {vocab!r} needs inputs='index'", hint="pass inputs='index' with vocab, or leave vocab out")
        _whole("vocab", vocab, 1, 64)
    sizes: tuple[int, ...] | None = None
    if batch is not None:
        values = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
        if not values:
            raise InvalidArgumentError(f"batch = {batch!r} is empty", hint=f"use a batch size 1..{MAX_BATCH}, or a tuple of them")
        sizes = tuple(dict.fromkeys(_whole("batch", v, 1, MAX_BATCH) for v in values))
    if reduction not in REDUCTIONS:
        raise InvalidArgumentError(
            f"reduction = {reduction!r} is invalid", hint="use 'sum', 'mean' (÷N), 'mean_steps' (÷T) or 'mean_all' (÷N·T)"
        )
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not (math.isfinite(clip) and clip > 0)):
        raise InvalidArgumentError(f"clip = {clip!r} is invalid", hint="use a number > 0 (min-char-rnn clips to 5), or None")
    if truncate is not None:
        _whole("truncate", truncate, 0, 1000)
    try:
        name = np.dtype(dtype).name  # type: ignore[call-overload]
    except TypeError:
        name = ""
    if name not in ("float64", "float32"):
        raise InvalidArgumentError(f"dtype = {dtype!r} is invalid", hint="use 'float64' or 'float32'")
    return _Options(
        targets=str(targets), inputs=str(inputs), vocab=vocab, batch=sizes, reduction=str(reduction),  # type: ignore[arg-type]
        clip=None if clip is None else float(clip), truncate=truncate, dtype=name,  # type: ignore[arg-type]
    )


_DEFAULT_OPTIONS = _Options()


# -- the generated values ------------------------------------------------------------


def _show(a: np.ndarray) -> str:
    """An array on one line, 4 significant decimals: ``[[0.1, -0.25], [0.3, 0.05]]``."""
    text = np.array2string(np.asarray(a), precision=4, separator=", ", suppress_small=True, max_line_width=10_000)
    return " ".join(text.split())


def _frozen(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float64)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False, repr=False)
class Inputs:
    """One input sequence of a model: ``xs`` (T, D), ``ys`` (T, O), ``h0`` (H,), one flat vector per step.

    ``ys`` is on the simplex for cross-entropy, real for squared error.
    """

    xs: np.ndarray
    ys: np.ndarray
    h0: np.ndarray

    def __repr__(self) -> str:
        return f"Inputs(xs={_show(self.xs)}, ys={_show(self.ys)}, h0={_show(self.h0)})"


@dataclass(frozen=True, eq=False, repr=False)
class Case:
    """A generated test case: the model, its parameters (canonical names, the model's convention) and one sequence.

    ``params``: the weights in the model's shapes (``model.shape``: ``W_xh``
    (D, H) in row vectors, (H, D) in column vectors, …) and, with biases,
    ``b_h`` (H,), ``b_y`` (O,). ``xs`` (T, D), ``ys`` (T, O), ``h0`` (H,): one
    flat vector per step; with a batch (``batch=`` of the checks) a leading
    axis N: ``xs`` (N, T, D), ``ys`` (N, T, O), ``h0`` (N, H). Arrays are
    read-only. :meth:`arguments` gives them as your function takes them.
    """

    model: RNN
    params: Mapping[str, np.ndarray]
    xs: np.ndarray
    ys: np.ndarray
    h0: np.ndarray
    options: _Options = _DEFAULT_OPTIONS
    """how the case is given to fn: targets, inputs, batch, dtype (see :func:`assert_gradients_match`)"""

    def __post_init__(self) -> None:
        ordered = {k: _frozen(self.params[k]) for k in PARAMETERS if k in self.params}
        object.__setattr__(self, "params", types.MappingProxyType(ordered))
        for name in ("xs", "ys", "h0"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def n(self) -> int | None:
        """The batch size, or None without a batch axis."""
        return int(self.xs.shape[0]) if self.options.batched else None

    def arguments(
        self, names: Mapping[str, str] | str | None = None, layout: Layout | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """``(params, xs, ys, h0)`` in your names and the model's layout: call ``fn(*case.arguments(...))`` to replay a case.

        ``layout``, when given, must be the model's convention.
        """
        adapter = _Adapter(names, layout, None, options=self.options)
        adapter.check_layout(self.model, "Case.arguments()")
        return adapter.arguments(self.model, self.params, self.xs, self.ys, self.h0, self.n)

    def leaves(self) -> dict[Ref, np.ndarray]:
        """The case as sample points (one per example of the batch): every leaf as an array (P, rows, cols), in the model's shapes."""
        if self.n is None:
            return _leaves_of(self.model, self.params, self.xs, self.ys, self.h0)
        per = [_leaves_of(self.model, self.params, self.xs[i], self.ys[i], self.h0[i]) for i in range(self.n)]
        return {ref: np.concatenate([p[ref] for p in per]) for ref in per[0]}

    def __repr__(self) -> str:
        o = self.options
        extra = "".join(
            f", {k}={v!r}" for k, v in (
                ("batch", self.n), ("reduction", o.reduction if o.reduction != "sum" else None),
                ("clip", o.clip), ("truncate", o.truncate), ("dtype", o.dtype if o.dtype != "float64" else None),
            ) if v is not None
        )
        lines = [f"Case({self.model.describe()}{extra}"]
        for name, value in self.params.items():
            lines.append(f"  {name} = {_show(value)}")
        xs = self.xs.argmax(axis=-1) if o.inputs == "index" else self.xs
        ys = self.ys.argmax(axis=-1) if o.targets == "class" else self.ys
        lines.append(f"  xs = {_show(xs)}" + (" (token indices)" if o.inputs == "index" else ""))
        lines.append(f"  ys = {_show(ys)}" + (" (class indices)" if o.targets == "class" else ""))
        lines.append(f"  h0 = {_show(self.h0)}" + (" (zeros)" if self.model.h0 == "zeros" else ""))
        return "\n".join(lines) + ")"


def _decode(codes: list[int] | np.ndarray, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Codes 0..2L-1 → ±(k/L)·scale, k ∈ 1..L: codes below L are positive, the others negative.

    Entry ``i``'s magnitude index is offset by ``3i`` (mod L), so the case every
    code shrinks to (all codes 0) has the distinct magnitudes 0.1, 0.4, 0.7,
    1.0, 0.3, 0.6, … — never a symmetric matrix, repeated column or constant
    vector that could hide a mistake.
    """
    c = np.asarray(codes, dtype=np.int64)
    offset = 3 * np.arange(c.size)
    magnitude = ((c + offset) % _LEVELS + 1) / _LEVELS
    sign = np.where(c < _LEVELS, 1.0, -1.0)
    return (scale * sign * magnitude).reshape(shape)


def _codes(n: int) -> SearchStrategy[list[int]]:
    return st.lists(st.integers(0, 2 * _LEVELS - 1), min_size=n, max_size=n)


def _entries(shape: tuple[int, ...], scale: float) -> SearchStrategy[np.ndarray]:
    """An array of ``shape`` with entries ±(k/10)·scale, k ∈ 1..10 (see :func:`_decode` for what it shrinks to)."""
    return _codes(math.prod(shape)).map(functools.partial(_decode, shape=shape, scale=scale))


def _check_model(model: object, where: str) -> RNN:
    if not isinstance(model, RNN):
        raise InvalidArgumentError(
            f"{where}: model must be a bptt_check.RNN, not {type(model).__name__}",
            hint="use RNN(steps=..., input_size=..., ...) or draw one from models()",
        )
    return model


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgumentError(f"{name} = {value!r} is invalid", hint=f"use a whole number from {low} to {high}")
    return value


def _choices(name: str, value: object, allowed: tuple[Any, ...]) -> tuple[Any, ...]:
    """The values a model option is drawn from: None → all of ``allowed``; one value → it; a tuple → those, in its order."""
    if value is None:
        return allowed
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    shown = " or ".join(repr(a) for a in allowed)
    if not values:
        raise InvalidArgumentError(f"{name} = {value!r} is empty", hint=f"use {shown}, a tuple of them, or None for all")
    out: list[Any] = []
    for v in values:
        v = v if isinstance(allowed[0], bool) else normalize_choice(v)
        if isinstance(v, bool) != isinstance(allowed[0], bool) or v not in allowed:
            raise InvalidArgumentError(f"{name} = {value!r} is invalid", hint=f"use {shown}, a tuple of them, or None for all")
        if v not in out:
            out.append(v)
    return tuple(out)


_FOLLOW_LAYOUT: "weakref.WeakSet[SearchStrategy[RNN]]" = weakref.WeakSet()
"""The strategies of :func:`models` called without a convention: row models, or the layout given to
:func:`assert_gradients_match` (how column code was checked before models had a convention)."""


def models(
    *,
    max_steps: int = 4,
    max_size: int = 3,
    loss_at: Choice = None,
    h0: Choice = None,
    biases: Choice = None,
    convention: Choice = None,
    activation: Choice = "tanh",
    loss: Choice = "cross_entropy",
) -> SearchStrategy[RNN]:
    """RNN configurations: ``1 ≤ T ≤ max_steps``, ``1 ≤ D, H ≤ max_size``, ``2 ≤ O ≤ max_size`` (1 ≤ O for squared error).

    Each option is one value (fixed), a tuple of values (drawn from them,
    shrinking to the first) or ``None`` (drawn from all of them):

    * ``loss_at`` (``"all"``, ``"last"``), ``h0`` (``"input"``, ``"zeros"``) and
      ``biases`` are drawn by default; fix the ones your implementation does
      not handle (most handle one bias setting);
    * ``activation`` (``"tanh"``, ``"sigmoid"``, ``"relu"``) and ``loss``
      (``"cross_entropy"``, ``"squared_error"``) default to the seed's, tanh
      and softmax cross-entropy: ask for others, e.g. ``activation="sigmoid"``,
      or draw several when your fn takes the keyword ``model`` (see
      :func:`assert_gradients_match`);
    * ``convention`` (``"row"``, ``"column"``): by default row vectors, or
      the ``layout`` that :func:`assert_gradients_match` is given.

    Draws shrink to T = 1, sizes 1 (O = 2 for cross-entropy) and the first
    value of every option (a loss at every step, ``h_0`` an input, no biases).
    """
    _whole("max_steps", max_steps, 1, MAX_STEPS_LIMIT)
    _whole("max_size", max_size, 2, MAX_SIZE_LIMIT)
    options = dict(
        loss_at=_choices("loss_at", loss_at, ("all", "last")),
        h0=_choices("h0", h0, ("input", "zeros")),
        biases=_choices("biases", biases, (False, True)),
        convention=("row",) if convention is None else _choices("convention", convention, CONVENTIONS),
        activation=_choices("activation", activation, ACTIVATIONS),
        loss=_choices("loss", loss, LOSSES),
    )
    strategy = _models(max_steps, max_size, **options)
    if convention is None:
        _FOLLOW_LAYOUT.add(strategy)
    return strategy


@st.composite
def _models(
    draw: st.DrawFn, max_steps: int, max_size: int, *, loss_at: tuple[Any, ...], h0: tuple[Any, ...],
    biases: tuple[bool, ...], convention: tuple[Any, ...], activation: tuple[Any, ...], loss: tuple[Any, ...],
) -> RNN:
    def pick(options: tuple[Any, ...]) -> Any:
        return options[0] if len(options) == 1 else draw(st.sampled_from(options))

    steps = draw(st.integers(1, max_steps))
    d = draw(st.integers(1, max_size))
    h = draw(st.integers(1, max_size))
    kind = pick(loss)
    o = draw(st.integers(1 if kind == "squared_error" else 2, max_size))
    return RNN(
        steps=steps, input_size=d, hidden_size=h, output_size=o, loss_at=pick(loss_at), h0=pick(h0),
        biases=pick(biases), convention=pick(convention), activation=pick(activation), loss=kind,
    )


def _scales(model: RNN) -> dict[str, float]:
    """The scale of each parameter family (module docstring): |a_t| ≤ 1.5 and |z_t| ≤ 2 for every activation."""
    D, H, _ = model.sizes
    relu = model.activation == "relu"
    return {
        "W_xh": 0.5 / D,
        "W_hh": (0.25 if relu else 0.5) / H,
        "W_hy": (1.0 if relu else 1.5) / H,
        "b_h": 0.5,
        "b_y": 0.5,
    }


def parameters(model: RNN) -> SearchStrategy[dict[str, np.ndarray]]:
    """Parameter sets of ``model`` (canonical names, the model's shapes; biases as vectors (H,), (O,))."""
    _check_model(model, "parameters()")
    return _parameters(model)


def _row_shape(model: RNN, ref: Ref) -> tuple[int, int]:
    """A value's shape in the row convention (the transpose of a column model's)."""
    r, c = model.shape(ref)
    return (c, r) if model.column else (r, c)


def _parameters(model: RNN) -> SearchStrategy[dict[str, np.ndarray]]:
    scales = _scales(model)
    families: dict[str, SearchStrategy[np.ndarray]] = {}
    for ref in model.parameters():
        if ref.family.startswith("b_"):
            families[ref.family] = _entries((max(model.shape(ref)),), scales[ref.family])
        else:
            # drawn in the row shape and transposed: the same draw is the same model in either convention
            drawn = _entries(_row_shape(model, ref), scales[ref.family])
            families[ref.family] = drawn.map(np.transpose) if model.column else drawn
    return st.fixed_dictionaries(families)


def sequences(
    model: RNN, *, targets: TargetKind = "any", params: Mapping[str, np.ndarray] | None = None
) -> SearchStrategy[Inputs]:
    """Input sequences of ``model``: ``xs`` (T, D), targets ``ys`` (T, O), ``h0`` (H,).

    ``targets``: ``"onehot"`` (also ``"class"``: one-hot rows, whose indices
    are the classes), ``"soft"``, ``"real"`` (squared error only) or
    ``"any"``: one-hot or soft per sequence for cross-entropy (shrinks to
    one-hot), real vectors for squared error. ``h0`` is zeros when
    ``model.h0 == "zeros"``. With ``params`` (canonical names, the model's
    shapes, as :func:`parameters` draws them), a relu model's pre-activations
    keep ``|a_t[j]| ≥`` :data:`RELU_MARGIN` (see the module docstring);
    :func:`cases` does this for you.
    """
    _check_model(model, "sequences()")
    _check_targets(targets, model)
    if params is not None:
        params = _check_params(model, params)
    return _sequences(model, targets, params)


def _check_targets(targets: object, model: RNN | None = None) -> None:
    if targets not in ("any", "onehot", "soft", "real", "class"):
        raise InvalidArgumentError(
            f"targets = {targets!r} is invalid", hint="use 'any', 'onehot', 'soft', 'class' (integer class indices) or 'real'"
        )
    if targets == "real" and model is not None and model.loss == "cross_entropy":
        raise InvalidArgumentError(
            "targets = 'real' needs a squared-error model: cross-entropy targets are distributions",
            hint="use 'any', 'onehot', 'soft' or 'class', or a model with loss='squared_error'",
        )
    if targets == "class" and model is not None and model.loss == "squared_error":
        raise InvalidArgumentError(
            "targets = 'class' needs a cross-entropy model: squared-error targets are real vectors",
            hint="use models(loss='cross_entropy') or RNN(..., loss='cross_entropy'), or targets='real'",
        )


def _check_params(model: RNN, params: object) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping):
        raise InvalidArgumentError(f"params must be a dict of arrays, not {type(params).__name__}", hint="draw them from parameters(model)")
    out = {}
    for ref in model.parameters():
        want = (max(model.shape(ref)),) if ref.family.startswith("b_") else model.shape(ref)
        value = np.asarray(params.get(ref.family), dtype=np.float64) if ref.family in params else None
        if value is None or value.shape != want:
            raise InvalidArgumentError(
                f"params[{ref.family!r}] must be an array of shape {want} for {model.describe()}",
                hint="draw them from parameters(model)",
            )
        out[ref.family] = value
    return out


@st.composite
def _sequences(
    draw: st.DrawFn, model: RNN, targets: TargetKind, params: Mapping[str, np.ndarray] | None = None, index: bool = False
) -> Inputs:
    T = model.steps
    D, H, O = model.sizes
    if index:  # token indices: x_t one-hot
        tokens = np.array(draw(st.lists(st.integers(0, D - 1), min_size=T, max_size=T)), dtype=np.int64)
    else:
        x_codes = np.array(draw(_codes(T * D)), dtype=np.int64)
    if targets != "any":
        _check_targets(targets, model)  # a strategy may have drawn a model of the other loss
    if targets == "class":
        targets = "onehot"  # given to fn as their indices
    if targets in ("real", "any") and model.loss == "squared_error":
        ys = draw(_entries((T, O), 1.0))
    else:
        soft = targets == "soft" or (targets == "any" and draw(st.booleans()))
        if soft:
            weights = np.array(draw(_soft_weights(T * O)), dtype=float)
            ys = weights.reshape(T, O)
            ys = ys / ys.sum(axis=1, keepdims=True)
        else:
            classes = draw(st.lists(st.integers(0, O - 1), min_size=T, max_size=T))
            ys = np.eye(O)[classes]
        ys[:, -1] = 1.0 - ys[:, :-1].sum(axis=1)  # exactly on the simplex
    h0 = draw(_entries((H,), 0.9)) if model.h0 == "input" else np.zeros(H)
    if index:
        if params is not None and model.activation == "relu":
            shifted = _tokens_off_the_kink(model, params, tokens, h0)
            assume(shifted is not None)  # no token keeps every pre-activation off the kink
            tokens = shifted  # type: ignore[assignment]
        return Inputs(np.eye(D)[tokens], ys, h0)
    xs = _decode(x_codes, (T, D), 1.0)
    if params is not None and model.activation == "relu":
        xs = _off_the_kink(model, params, x_codes, h0)
        assume(xs is not None)  # no shift of some x_t's codes works: rare (0.5% of draws at T = 12, sizes ≤ 8)
    return Inputs(xs, ys, h0)


def _soft_weights(n: int) -> SearchStrategy[list[int]]:
    return st.lists(st.integers(1, _SOFT_WEIGHT), min_size=n, max_size=n)


def _off_the_kink(model: RNN, params: Mapping[str, np.ndarray], x_codes: np.ndarray, h0: np.ndarray) -> np.ndarray | None:
    """The inputs ``xs`` (T, D) of a relu model with every ``|a_t[j]| ≥ RELU_MARGIN``, or None.

    Step by step: where ``x_t`` puts a pre-activation within the margin, its
    codes are shifted cyclically (``c → c + k mod 20``, k = 1, 2, …) until
    none is. A deterministic function of the draw, so hypothesis shrinks
    through it as through any other value.
    """
    T, (D, _, _) = model.steps, model.sizes
    row = {k: (v.T if model.column and v.ndim == 2 else v) for k, v in params.items()}
    b_h = row.get("b_h", 0.0)
    codes = x_codes.copy()
    h = np.asarray(h0, dtype=np.float64)
    for t in range(T):
        for shift in range(2 * _LEVELS):
            trial = codes.copy()
            trial[t * D : (t + 1) * D] = (codes[t * D : (t + 1) * D] + shift) % (2 * _LEVELS)
            x = _decode(trial, (T, D), 1.0)[t]
            a = x @ row["W_xh"] + h @ row["W_hh"] + b_h
            if np.min(np.abs(a)) >= RELU_MARGIN:
                codes, h = trial, np.maximum(a, 0.0)
                break
        else:
            return None
    return _decode(codes, (T, D), 1.0)


def _tokens_off_the_kink(model: RNN, params: Mapping[str, np.ndarray], tokens: np.ndarray, h0: np.ndarray) -> np.ndarray | None:
    """Token indices (T,) of a relu model with every ``|a_t[j]| ≥ RELU_MARGIN``, each shifted cyclically as needed, or None."""
    D = model.input_size
    row = {k: (v.T if model.column and v.ndim == 2 else v) for k, v in params.items()}
    b_h = row.get("b_h", 0.0)
    out = tokens.copy()
    h = np.asarray(h0, dtype=np.float64)
    for t in range(model.steps):
        for shift in range(D):
            token = (tokens[t] + shift) % D
            a = row["W_xh"][token] + h @ row["W_hh"] + b_h
            if np.min(np.abs(a)) >= RELU_MARGIN:
                out[t], h = token, np.maximum(a, 0.0)
                break
        else:
            return None
    return out


def cases(model: RNN | SearchStrategy[RNN] | None = None, *, targets: TargetKind = "any") -> SearchStrategy[Case]:
    """Whole test cases: a model (fixed, drawn from a strategy, or from :func:`models` when ``None``), its parameters and a sequence.

    The model is drawn first, so hypothesis shrinks a failure to the fewest
    steps and the smallest sizes first, then to the simplest values. The
    sequence respects the model's options (:func:`sequences` with the
    parameters drawn). With ``targets="class"`` the case's :meth:`Case.arguments`
    gives ``ys`` as class indices.
    """
    _check_targets(targets, model if isinstance(model, RNN) else None)
    return _cases(_model_strategy(model, "cases()"), targets, options=_Options(targets=targets))


def _model_strategy(model: object, where: str, layout: object = None) -> SearchStrategy[RNN]:
    """The models to draw; with an explicit ``layout``, a fixed model must be in it and :func:`models` follows it."""
    if model is None:
        model = models()
    if isinstance(model, SearchStrategy):
        if layout in CONVENTIONS and model in _FOLLOW_LAYOUT:
            return model.map(lambda m: m.replace(convention=layout))
        return model
    model = _check_model(model, where)
    if layout is not None and layout != model.convention:
        raise _contradiction(model, layout, where)
    return st.just(model)


def _contradiction(model: RNN, layout: object, where: str) -> InvalidArgumentError:
    other = "row" if layout == "column" else "column"
    return InvalidArgumentError(
        f"{where}: layout = {layout!r} contradicts the model's convention {model.convention!r} ({model.describe()})",
        hint=f"your code's layout is the model's convention: use RNN(..., convention={layout!r}) or"
        f" models(convention={layout!r}), or leave layout out (a {other}-vector model calls fn in the {other} layout)",
    )


@st.composite
def _cases(
    draw: st.DrawFn, model_strategy: SearchStrategy[RNN], targets: TargetKind, layout: object = None,
    options: _Options = _DEFAULT_OPTIONS,
) -> Case:
    model = draw(model_strategy)
    if not isinstance(model, RNN):
        raise InvalidArgumentError(f"the model strategy drew {model!r}, not an RNN", hint="use models() or st.just(RNN(...))")
    if layout is not None and layout != model.convention:
        raise _contradiction(model, layout, "assert_gradients_match()")
    if options.vocab is not None:
        model = model.replace(input_size=options.vocab)
    params = draw(_parameters(model))
    index = options.inputs == "index"
    if options.batch is None:
        inputs = draw(_sequences(model, targets, params, index))
        xs, ys, h0 = inputs.xs, inputs.ys, inputs.h0
    else:
        n = options.batch[0] if len(options.batch) == 1 else draw(st.sampled_from(options.batch))
        drawn = [draw(_sequences(model, targets, params, index)) for _ in range(n)]
        xs, ys, h0 = (np.stack([getattr(d, k) for d in drawn]) for k in ("xs", "ys", "h0"))
    if options.dtype == "float32":  # the truth is taken at exactly the values fn gets
        params = {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}
        xs, ys, h0 = (a.astype(np.float32).astype(np.float64) for a in (xs, ys, h0))
    return Case(model, params, xs, ys, h0, options)


def _leaves_of(
    model: RNN, params: Mapping[str, np.ndarray], xs: np.ndarray, ys: np.ndarray, h0: np.ndarray
) -> dict[Ref, np.ndarray]:
    """Canonical arrays in the model's shapes (flat vectors) → leaves (1, rows, cols)."""
    out: dict[Ref, np.ndarray] = {}
    for ref in model.parameters():
        out[ref] = np.asarray(params[ref.family], dtype=np.float64).reshape(1, *model.shape(ref))
    for t in model.steps_range():
        out[Ref("x", t)] = np.asarray(xs[t - 1], dtype=np.float64).reshape(1, *model.shape(Ref("x", t)))
        out[Ref("y", t)] = np.asarray(ys[t - 1], dtype=np.float64).reshape(1, *model.shape(Ref("y", t)))
    if model.h0 == "input":
        out[Ref("h", 0)] = np.asarray(h0, dtype=np.float64).reshape(1, *model.shape(Ref("h", 0)))
    return out


def _point(model: RNN, leaves: Mapping[Ref, np.ndarray], p: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Point ``p`` of batched leaves as canonical arrays in the model's shapes (params, xs, ys, h0)."""
    params = {}
    for ref in model.parameters():
        value = np.asarray(leaves[ref][p], dtype=np.float64)
        params[ref.family] = value.reshape(-1) if ref.family.startswith("b_") else value
    xs = np.stack([np.asarray(leaves[Ref("x", t)][p]).reshape(-1) for t in model.steps_range()])
    ys = np.stack([np.asarray(leaves[Ref("y", t)][p]).reshape(-1) for t in model.steps_range()])
    h0_ref = Ref("h", 0)
    h0 = np.asarray(leaves[h0_ref][p]).reshape(-1) if h0_ref in leaves else np.zeros(model.hidden_size)
    return params, xs, ys, h0


# -- names, layouts and what fn returns --------------------------------------------------

_INPUTS = ("h_0", "x")
_CHECKABLE = PARAMETERS + _INPUTS
_INPUT_ALIASES = {"h0": "h_0", "h_0": "h_0", "hprev": "h_0", "h_prev": "h_0", "prev_h": "h_0", "x": "x", "xs": "x"}


_OUTER = {
    "row": {"W_xh": "sum_t x_t.T @ da_t", "W_hh": "sum_t h_{t-1}.T @ da_t", "W_hy": "sum_t h_t.T @ dz_t"},
    "column": {"W_xh": "sum_t da_t @ x_t.T", "W_hh": "sum_t da_t @ h_{t-1}.T", "W_hy": "sum_t dz_t @ h_t.T"},
}
"""Each weight's gradient as a sum of outer products, per convention (for the hint on a transposed shape)."""


class _Bad(Exception):
    """fn broke its contract (a missing gradient, a wrong shape, …): a failure with this message."""


class _Adapter:
    """Translates between the canonical arrays (the model's shapes) and the user's names, shapes and return convention."""

    def __init__(
        self, names: Mapping[str, str] | str | None, layout: object, loss: object, fn: Callable[..., Any] | None = None,
        options: _Options = _DEFAULT_OPTIONS,
    ) -> None:
        self.options = options
        if layout not in (None, "row", "column"):
            raise InvalidArgumentError(
                f"layout = {layout!r} is invalid", hint="use 'row' or 'column' (or leave it out: the model's convention)"
            )
        if loss not in (None, True, False):
            raise InvalidArgumentError(
                f"loss = {loss!r} is invalid",
                hint="use None (check the loss if fn returns it), True (fn must return it) or False (ignore it)",
            )
        self.layout: Layout | None = layout  # type: ignore[assignment]
        self.loss = loss
        self.pass_model = fn is not None and _takes_model(fn)
        self.user: dict[str, str] = {c: c for c in PARAMETERS}  # canonical → the user's name
        self.lookup: dict[str, str] = {c: c for c in _CHECKABLE} | dict(_INPUT_ALIASES)  # key → canonical
        if names is None:
            return
        if isinstance(names, str):
            preset = _NAME_PRESETS.get(names.strip().lower().replace("-", "_"))
            if preset is None:
                raise InvalidArgumentError(
                    f"names = {names!r} is not a known set of names",
                    hint="use 'min-char-rnn' (Wxh, Whh, Why, bh, by), 'textbook' (U, W, V, b, c), 'cs231n' (Wx, Wh, b)"
                    " or a dict {yours: ours}",
                )
            names = preset
        if not isinstance(names, Mapping):
            raise InvalidArgumentError(
                f"names must be a dict from your names to ours, not {type(names).__name__}",
                hint='e.g. names={"Wxh": "W_xh", "Whh": "W_hh", "Why": "W_hy", "bh": "b_h", "by": "b_y"}, or names="min-char-rnn"',
            )
        seen: dict[str, str] = {}
        for mine, ours in names.items():
            if not isinstance(mine, str) or not isinstance(ours, str) or not mine:
                raise InvalidArgumentError(f"names entry {mine!r}: {ours!r} is invalid", hint="map strings to strings")
            if ours not in _CHECKABLE:
                raise InvalidArgumentError(
                    f"names maps {mine!r} to {ours!r}, which is not one of our names",
                    hint=f"map to one of {', '.join(_CHECKABLE)}" + _did_you_mean(ours, _CHECKABLE),
                )
            if ours in seen:
                raise InvalidArgumentError(f"names maps both {seen[ours]!r} and {mine!r} to {ours!r}", hint="map each name once")
            seen[ours] = mine
            if ours in PARAMETERS:
                self.user[ours] = mine
            self.lookup[mine] = ours

    def call(self, fn: Callable[..., Any], model: RNN, args: tuple[Any, ...]) -> Any:
        """``fn(params, xs, ys, h0)``, with ``model=`` the case's RNN when fn takes that keyword."""
        return fn(*args, model=model) if self.pass_model else fn(*args)

    def check_layout(self, model: RNN, where: str) -> None:
        """An explicit layout must be the model's convention."""
        if self.layout is not None and self.layout != model.convention:
            raise _contradiction(model, self.layout, where)

    # -- arguments ----------------------------------------------------------

    def arguments(
        self, model: RNN, params: Mapping[str, np.ndarray], xs: np.ndarray, ys: np.ndarray, h0: np.ndarray,
        n: int | None = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """Fresh copies in the user's names, layout, dtype and kinds of inputs and targets.

        Vectors are columns (n, 1) in the column convention; with a batch (``n``
        examples), row arrays get a leading axis N and column arrays a trailing
        one (``xs`` (T, D, N), ``h0`` (H, N)). Token inputs and class targets are
        integer indices (T,) or (N, T).
        """
        col = model.column
        dtype = np.dtype(self.options.dtype)
        out: dict[str, np.ndarray] = {}
        for ref in model.parameters():
            value = np.array(params[ref.family], dtype=dtype)
            if ref.family.startswith("b_"):
                value = value.reshape(-1, 1) if col else value.reshape(-1)
            out[self.user[ref.family]] = value
        return (out, *self.sequence_arguments(model, xs, ys, h0, n))

    def sequence_arguments(
        self, model: RNN, xs: np.ndarray, ys: np.ndarray | None, h0: np.ndarray, n: int | None
    ) -> tuple[np.ndarray, ...]:
        """``xs, ys, h0`` (or ``xs, h0`` when ``ys`` is None) as fn takes them (see :meth:`arguments`)."""
        T = model.steps
        dtype = np.dtype(self.options.dtype)
        lead = (n,) if n is not None else ()
        xs = np.asarray(xs, dtype=np.float64).reshape(*lead, T, -1)
        h0_u = np.array(h0, dtype=dtype).reshape(*lead, -1)
        if self.options.inputs == "index":
            xs_u = xs.argmax(axis=-1).astype(np.int64)
        else:
            xs_u = self.sequence(model, xs.astype(dtype), n)
        if model.column:
            h0_u = h0_u.T.copy() if n is not None else h0_u.reshape(-1, 1)
        if ys is None:
            return xs_u, h0_u
        ys = np.asarray(ys, dtype=np.float64).reshape(*lead, T, -1)
        ys_u = ys.argmax(axis=-1).astype(np.int64) if self.options.targets == "class" else self.sequence(model, ys.astype(dtype), n)
        return xs_u, ys_u, h0_u

    @staticmethod
    def sequence(model: RNN, values: np.ndarray, n: int | None) -> np.ndarray:
        """Per-step vectors (T, k) or (N, T, k) in the user's layout: row as they are, column (T, k, 1) or (T, k, N)."""
        if not model.column:
            return np.array(values)
        if n is None:
            return np.array(values).reshape(model.steps, -1, 1)
        return np.ascontiguousarray(np.moveaxis(values, 0, -1))

    def user_shape(self, model: RNN, name: str, n: int | None = None) -> tuple[int, ...]:
        """The shape of ``name`` (canonical) as fn gets it, in the model's layout (``n``: the batch size)."""
        D, H, O = model.sizes
        col = model.column
        if name in ("x", "h"):
            k = D if name == "x" else H
            if n is not None:
                return (model.steps, k, n) if col else (n, model.steps, k)
            return (model.steps, k, 1) if col else (model.steps, k)
        if name == "h_0" and n is not None:
            return (H, n) if col else (n, H)
        if name in ("h_0", "b_h", "b_y"):
            k = O if name == "b_y" else H
            return (k, 1) if col else (k,)
        return model.shape(Ref(name))

    def canonical_shape(self, model: RNN, name: str, n: int | None = None) -> tuple[int, ...]:
        """The shape we compare ``name`` in: the model's shape of a parameter or of h_0, (T, D) for x, (T, H) for the
        hidden states h; with a batch, a leading axis N for x, h and h_0."""
        lead = (n,) if n is not None else ()
        if name in ("x", "h"):
            return (*lead, model.steps, model.input_size if name == "x" else model.hidden_size)
        if name == "h_0":
            return (*lead, *model.shape(Ref("h", 0)))
        return model.shape(Ref(name))

    def to_canonical(self, model: RNN, name: str, value: np.ndarray, n: int | None = None) -> np.ndarray:
        """The user's array for ``name`` in the canonical shape."""
        want = self.user_shape(model, name, n)
        if value.shape != want and _squeeze(value.shape) != _squeeze(want):
            hint = ""
            if name in _OUTER["row"] and value.shape == want[::-1]:
                hint = (
                    f"; it has the transposed shape: an outer product the wrong way round? (in the {model.convention}"
                    f" layout d{name} is {_OUTER[model.convention][name]})"
                )
            what = f"{name} in the {model.convention} layout" + (f", batch of {n}" if n is not None and name in ("x", "h", "h_0") else "")
            raise _Bad(f"of shape {value.shape}, expected {want} ({what}){hint}")
        value = value.reshape(want)
        if n is not None and model.column and name in ("x", "h", "h_0"):
            value = np.moveaxis(value, -1, 0)  # the batch axis first
        return value.reshape(self.canonical_shape(model, name, n))

    def canonical(self, model: RNN, found: Mapping[str, tuple[str, np.ndarray]], n: int | None = None) -> dict[str, np.ndarray]:
        """Every resolved gradient in its canonical shape; a wrong shape is a :class:`_Bad` naming the key."""
        out = {}
        for name, (key, value) in found.items():
            try:
                out[name] = self.to_canonical(model, name, value, n)
            except _Bad as bad:
                raise _Bad(f"returned {key!r} {bad}") from None
        return out

    def user_entry(self, model: RNN, name: str, shape: tuple[int, ...], entry: tuple[int, ...], n: int | None = None) -> tuple[int, ...]:
        """The index, in the user's returned array of ``shape``, of the canonical ``entry``."""
        flat = np.arange(math.prod(shape)).reshape(shape)
        position = self.to_canonical(model, name, flat, n)[entry]
        return tuple(int(i) for i in np.unravel_index(int(position), shape))

    # -- results -------------------------------------------------------------

    def split(self, output: object) -> tuple[object | None, Mapping[str, Any]]:
        """``(loss or None, gradients)`` from what fn returned."""
        loss: object | None = None
        if isinstance(output, Mapping):
            grads = dict(output)
            loss = grads.pop("loss", None)
        elif isinstance(output, (tuple, list)) and len(output) == 2 and any(isinstance(o, Mapping) for o in output):
            first, second = output
            loss, grads = (second, first) if isinstance(first, Mapping) else (first, second)
            if not isinstance(grads, Mapping):
                raise _Bad("returned a pair that is not (loss, dict of gradients)")
        else:
            raise _Bad(
                f"returned {type(output).__name__}: expected a dict of gradients, or (loss, dict of gradients)"
            )
        if self.loss is True and loss is None:
            raise _Bad("returned no loss, but loss=True (return (loss, grads) or a 'loss' key)")
        return (None if self.loss is False else loss), grads

    def resolve(
        self, grads: Mapping[str, Any], model: RNN, families: tuple[str, ...] | None = None
    ) -> dict[str, tuple[str, np.ndarray]]:
        """canonical name → (the user's key, float array), every parameter (of ``families``: by default the model's) present
        and no unknown key."""
        found: dict[str, tuple[str, np.ndarray]] = {}
        required = families if families is not None else tuple(r.family for r in model.parameters())
        allowed = set(required) | set(_INPUTS)
        for key, value in grads.items():
            name = self._name_of(key) if isinstance(key, str) else None
            if name is None or name not in allowed:
                known = ", ".join(sorted(self._keys_for(c) for c in sorted(allowed - {"x", "h_0"})))
                raise _Bad(
                    f"returned a gradient {key!r} that names no parameter of this model ({known} expected)"
                    + (_did_you_mean(key, list(self.lookup)) if isinstance(key, str) else "")
                    + "; map your names with names={...}"
                )
            if name in found:
                raise _Bad(f"returned two gradients for {name}: {found[name][0]!r} and {key!r}")
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise _Bad(f"returned {key!r} that is not an array of numbers ({err})") from None
            found[name] = (key, array)
        missing = [f for f in required if f not in found]
        if missing:
            shown = ", ".join(f"{m} (as {self._keys_for(m)})" for m in missing)
            got = ", ".join(repr(k) for k in grads) or "nothing"
            raise _Bad(f"returned no gradient for {shown}; it returned {got}")
        return found

    def _name_of(self, key: str) -> str | None:
        if key in self.lookup:
            return self.lookup[key]
        for prefix in ("d_", "d"):
            if key.startswith(prefix) and key[len(prefix):] in self.lookup:
                return self.lookup[key[len(prefix):]]
        return None

    def _keys_for(self, name: str) -> str:
        return f"'d{self.user[name]}'" if name in self.user else f"'d{name}'"

    def display(self, name: str, key: str | None) -> str:
        """How a gradient is named in messages: the user's key, with our name when it differs."""
        key = key or (f"d{self.user[name]}" if name in self.user else f"d{name}")
        return key if key in (name, f"d{name}") else f"{key} (dL/d{name})"


def _takes_model(fn: Callable[..., Any]) -> bool:
    """Whether fn has a parameter ``model`` that can be passed by keyword."""
    try:
        parameter = inspect.signature(fn).parameters.get("model")
    except (TypeError, ValueError):  # a builtin or C function without a signature
        return False
    return parameter is not None and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)


def _squeeze(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _did_you_mean(word: str, options: Any) -> str:
    from .vocabulary import did_you_mean

    guess = did_you_mean(word, [str(o) for o in options])
    return f" ({guess})" if guess else ""


def _scalar(value: object) -> float:
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise _Bad(f"returned a loss of shape {array.shape}, expected a number")
    return float(array.reshape(()))


# -- the truths -----------------------------------------------------------------


def _bucket(n: int) -> int:
    size = _BUCKET
    while size < n:
        size *= 2
    return size


def _padded(model: RNN) -> RNN:
    """The padded row-convention model that ``model`` is embedded in (module docstring)."""
    T = model.steps
    D, H, O = model.sizes
    return RNN(
        steps=_bucket(T), input_size=_bucket(D), hidden_size=_bucket(H), output_size=_bucket(O),
        loss_at="all", h0="input", biases=True, convention="row", activation=model.activation, loss=model.loss,
    )


def _embed(model: RNN, leaves: Mapping[Ref, np.ndarray]) -> tuple[RNN, dict[Ref, np.ndarray]]:
    """``model`` at ``leaves`` (its own shapes) embedded exactly in a padded row-convention model (see the module docstring)."""
    padded = _padded(model)
    cross_entropy = model.loss == "cross_entropy"
    silent = [t for t in padded.steps_range() if t not in model.loss_steps]  # padded steps and non-loss steps
    P = next(iter(leaves.values())).shape[0]
    out: dict[Ref, np.ndarray] = {}
    for ref in padded.leaves():
        arr = np.zeros((P, *padded.shape(ref)))
        value = leaves.get(ref)
        if ref.family == "y" and ref.step in silent:
            value = None  # cross-entropy: a zero target has zero loss and zero gradient
        if value is not None:
            value = np.asarray(value, dtype=np.float64)
            if model.column:
                value = np.swapaxes(value, -1, -2)
            arr[:, : value.shape[1], : value.shape[2]] = value
        out[ref] = arr
    if cross_entropy:
        out[Ref("b_y")][:, :, model.output_size :] = _MASKED_LOGIT
    elif silent:
        # squared error: the target y_t = z_t (jax's own forward, the same compiled program, so
        # bitwise the z_t of the gradient pass) makes the step's loss and its gradient z_t - y_t zero
        z = _numeric(padded).forward(out)
        for t in silent:
            out[Ref("y", t)] = np.asarray(z[Ref("z", t)], dtype=np.float64).reshape(P, *padded.shape(Ref("y", t)))
    return padded, out


@functools.lru_cache(maxsize=16)
def _numeric(model: RNN) -> Any:
    from .numeric import NumericRNN  # jax is imported only when a truth is needed

    return NumericRNN(model)


@functools.lru_cache(maxsize=512)
def _symbolic(model: RNN) -> Any:
    from .symbolic import SymbolicRNN  # sympy likewise

    return SymbolicRNN(model)


def _with_sympy(model: RNN) -> bool:
    return model.steps <= SYMPY_MAX_STEPS and max(model.sizes) <= SYMPY_MAX_SIZE


def _ref_of(name: str, model: RNN) -> list[Ref]:
    if name == "x":
        return [Ref("x", t) for t in model.steps_range()]
    if name == "h_0":
        return [Ref("h", 0)]
    return [Ref(name)]


def _real(model: RNN, ref: Ref, array: np.ndarray) -> np.ndarray:
    """The real part of a padded (row-convention) value, in the model's shape (P, rows, cols)."""
    r, c = _row_shape(model, ref)
    real = array[:, :r, :c]
    return np.swapaxes(real, -1, -2) if model.column else real


def _stack(model: RNN, name: str, per_ref: Mapping[Ref, np.ndarray]) -> np.ndarray:
    """Per-ref gradients (P, rows, cols) → the canonical comparison shape with the point axis."""
    refs = _ref_of(name, model)
    if name == "x":
        P = per_ref[refs[0]].shape[0]
        return np.concatenate([per_ref[r].reshape(P, 1, -1) for r in refs], axis=1)  # (P, T, D)
    return per_ref[refs[0]]


def _jax_gradients(model: RNN, leaves: Mapping[Ref, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """jax's dL/d(name) at the points of ``leaves`` (through the padded model), in the comparison shapes."""
    padded, pleaves = _embed(model, leaves)
    grads = _numeric(padded).gradients(pleaves)
    per_ref = {ref: _real(model, ref, grads[ref]) for name in names for ref in _ref_of(name, model)}
    return {name: _stack(model, name, per_ref) for name in names}


def _jax_loss(model: RNN, leaves: Mapping[Ref, np.ndarray]) -> np.ndarray:
    """jax's L at every point, (P,)."""
    padded, pleaves = _embed(model, leaves)
    return np.asarray(_numeric(padded).forward(pleaves)[L_TOTAL], dtype=np.float64).reshape(-1)


def _sympy_gradients(model: RNN, leaves: Mapping[Ref, np.ndarray], names: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """sympy's dL/d(name) in the comparison shapes, and its forward L (P,)."""
    sym = _symbolic(model)
    values = sym.forward_values(leaves)
    P = values[L_TOTAL].shape[0]
    per_ref = {
        ref: np.asarray(sym.partial(L_TOTAL, ref).evaluate(values), dtype=np.float64).reshape(P, *model.shape(ref))
        for name in names
        for ref in _ref_of(name, model)
    }
    return {name: _stack(model, name, per_ref) for name in names}, values[L_TOTAL].reshape(-1)


def _point_truths(
    model: RNN, leaves: Mapping[Ref, np.ndarray], names: list[str], truncate: int | None, sympy: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """jax's and (for small models) sympy's gradients per point, (P, comparison shape), both cross-checked.

    With ``truncate = k`` the gradients are those of k-step truncated BPTT (see :func:`_truncated`).
    """
    if truncate is not None and truncate < model.steps - 1:
        return _truncated(model, leaves, names, truncate, sympy)
    jax_g = _jax_gradients(model, leaves, names)
    if not (sympy and _with_sympy(model)):
        return jax_g, None
    sym_g, _ = _sympy_gradients(model, leaves, names)
    for name in names:
        _cross_check(f"dL/d{name}", model, sym_g[name], jax_g[name])
    return jax_g, sym_g


def _truncated(
    model: RNN, leaves: Mapping[Ref, np.ndarray], names: list[str], k: int, sympy: bool
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """The gradients of k-step truncated BPTT (WildML's ``bptt_truncate = k``), per point.

    The loss of step t reaches the pre-activations a_t, a_{t-1}, …, a_{max(1, t-k)}
    and no earlier ones: the gradient is the sum over the loss steps t of the
    full gradient of L_t in the sub-model that starts at step s = max(1, t-k)
    from the forward value h_{s-1} as a constant initial state. So W_hy and
    b_y are untruncated, x_τ gets the terms of the losses t ≤ τ + k, and h_0
    those of the losses t ≤ k + 1. Each sub-model is checked by both truths
    like any model.
    """
    from .sampling import numpy_forward

    P = next(iter(leaves.values())).shape[0]
    h = numpy_forward(model, leaves)
    jax_total = {name: np.zeros((P, *_point_shape(model, name))) for name in names}
    sym_total: dict[str, np.ndarray] | None = {name: np.zeros_like(v) for name, v in jax_total.items()}
    groups: dict[int, list[int]] = {}
    for t in model.loss_steps:
        groups.setdefault(t - max(1, t - k) + 1, []).append(t)
    for length, ends in groups.items():
        sub = model.replace(steps=length, loss_at="last", h0="input")
        sub_leaves: dict[Ref, list[np.ndarray]] = {ref: [] for ref in sub.leaves()}
        for t in ends:
            s = t - length + 1
            for ref in sub.leaves():
                if ref.family in ("x", "y"):
                    value = leaves[Ref(ref.family, s - 1 + ref.step)]  # type: ignore[operator]
                elif ref == Ref("h", 0):
                    value = h[Ref("h", s - 1)]
                else:
                    value = leaves[ref]
                sub_leaves[ref].append(np.asarray(value, dtype=np.float64))
        stacked = {ref: np.concatenate(v) for ref, v in sub_leaves.items()}
        jax_g, sym_g = _point_truths(sub, stacked, names, None, sympy)
        if sym_g is None:
            sym_total = None
        for i, t in enumerate(ends):
            s = t - length + 1
            rows = slice(i * P, (i + 1) * P)
            for name in names:
                for total, g in ((jax_total, jax_g), (sym_total, sym_g)):
                    if total is None or g is None:
                        continue
                    if name == "x":
                        total["x"][:, s - 1 : t, :] += g["x"][rows]
                    elif name == "h_0":
                        if s == 1:
                            total["h_0"] += g["h_0"][rows]
                    else:
                        total[name] += g[name][rows]
    return jax_total, sym_total


def _point_shape(model: RNN, name: str) -> tuple[int, ...]:
    """A gradient's comparison shape at one point: the model's shape, (T, D) for x."""
    if name == "x":
        return (model.steps, model.input_size)
    return model.shape(Ref("h", 0)) if name == "h_0" else model.shape(Ref(name))


def _case_truths(
    case: Case, names: list[str], options: _Options | None = None, truncate: Any = "options", sympy: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """The true gradients of a whole case as fn must return them (canonical shapes): the batch's examples summed
    for the parameters, the reduction's factor applied, the parameters' gradients clipped when asked."""
    o = options or case.options
    k = o.truncate if truncate == "options" else truncate
    model, n = case.model, case.n
    jax_p, sym_p = _point_truths(model, case.leaves(), names, k, sympy)
    factor = o.factor(model, n or 1)
    out: list[dict[str, np.ndarray] | None] = []
    for per_point in (jax_p, sym_p):
        if per_point is None:
            out.append(None)
            continue
        reduced = {}
        for name, value in per_point.items():
            if name in ("x", "h_0"):
                value = value * factor if n is not None else value[0] * factor
            else:
                value = value.sum(axis=0) * factor
                if o.clip is not None:
                    value = np.clip(value, -o.clip, o.clip)
            reduced[name] = value
        out.append(reduced)
    return out[0], out[1]  # type: ignore[return-value]


def _cross_check(what: str, model: RNN, sympy_value: np.ndarray, jax_value: np.ndarray) -> None:
    from .truth import TRUTHS_RTOL, relative_difference

    diff = relative_difference(sympy_value, jax_value)
    if not diff <= TRUTHS_RTOL:
        raise InternalError(
            f"the truths disagree on {what}: relative difference {diff:.3g} > {TRUTHS_RTOL:g} for {model.describe()}",
            hint="this is a bug in bptt_check; please report it with the failing case",
        )


# -- comparing ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Wrong:
    """One gradient (or the loss) that does not match at a case."""

    name: str
    """canonical: a parameter, ``h_0``, ``x``, or ``loss``"""
    label: str
    """as the user knows it, e.g. ``dWhh (dL/dW_hh)``"""
    entry: str
    """the worst entry in the user's array, e.g. ``dWhh[1, 0]``"""
    yours: float
    jax: float
    sympy: float | None
    error: float
    tolerance: float
    step: int | None = None
    """for ``x``: the step of the worst entry"""


@dataclass(frozen=True)
class _Failure:
    """What is wrong at one case: mismatched values, or fn breaking its contract."""

    case: Any
    wrong: tuple[_Wrong, ...] = ()
    broken: str = ""
    yours: Mapping[str, np.ndarray] | None = None
    """every gradient fn returned (canonical shapes), for the diagnoses that look at whole arrays"""
    truth: Mapping[str, np.ndarray] | None = None
    """jax's, likewise"""
    float32: bool = False
    """fn returned float32 arrays"""
    loss_ok: bool = False
    """fn returned the loss, and it matched"""


class _CaseFailed(AssertionError):
    """Raised inside the hypothesis test; turned into the full report once hypothesis has shrunk it."""

    def __init__(self, failure: _Failure) -> None:
        self.failure = failure
        first = failure.broken or ", ".join(w.label for w in failure.wrong)
        super().__init__(f"mismatch: {first}")


def _compare(
    name: str, label: str, yours: np.ndarray, jax_value: np.ndarray, sympy_value: np.ndarray | None,
    rtol: float, atol: float, entry_of: Callable[[tuple[int, ...]], str], step_of: Callable[[tuple[int, ...]], int | None],
) -> _Wrong | None:
    """The worst entry of ``yours`` against ``jax_value`` (same shape), or None when every entry is within tolerance."""
    tol = atol + rtol * np.abs(jax_value)
    err = np.abs(yours - jax_value)
    if np.all(err <= tol):  # NaN fails
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(err), err / tol, np.inf)
    worst = tuple(int(i) for i in np.unravel_index(int(np.nanargmax(np.nan_to_num(ratio, nan=np.inf))), ratio.shape))
    return _Wrong(
        name=name,
        label=label,
        entry=entry_of(worst),
        yours=float(yours[worst]),
        jax=float(jax_value[worst]),
        sympy=None if sympy_value is None else float(sympy_value[worst]),
        error=float(err[worst]),
        tolerance=float(tol[worst]),
        step=step_of(worst),
    )


def _check_case(fn: GradientFn, case: Case, adapter: _Adapter, rtol: float, atol: float) -> _Failure | None:
    """Run fn at one case and compare; None when everything matches."""
    model, n = case.model, case.n
    output = adapter.call(fn, model, adapter.arguments(model, case.params, case.xs, case.ys, case.h0, n))
    try:
        loss, grads = adapter.split(output)
        found = adapter.resolve(grads, model)
        yours = adapter.canonical(model, found, n)
        yours_loss = None if loss is None else _scalar(loss)
    except _Bad as bad:
        return _Failure(case, broken=f"fn {bad}")
    float32 = any(getattr(v, "dtype", None) == np.float32 for v in grads.values())
    names = [name for name in _CHECKABLE if name in yours]
    leaves = case.leaves()
    jax_g, sym_g = _case_truths(case, names)
    wrong: list[_Wrong] = []
    if yours_loss is not None:
        # the loss is compared with a forward pass (sympy's, or numpy's for larger models); jax's is
        # computed only for a mismatch, to report it and cross-check it (one jax call per case, not two)
        from .sampling import numpy_forward

        factor = case.options.factor(model, n or 1)
        if _with_sympy(model):
            forward = _symbolic(model).forward_values(leaves)[L_TOTAL].reshape(-1)
        else:
            forward = numpy_forward(model, leaves)[L_TOTAL].reshape(-1)
        forward_total = np.array([forward.sum() * factor])
        mine = np.array([yours_loss])
        if not np.all(np.abs(mine - forward_total) <= atol + rtol * np.abs(forward_total)):
            jax_loss = _jax_loss(model, leaves)
            _cross_check("L", model, forward, jax_loss)
            sym_total = np.array([forward.sum() * factor]) if _with_sympy(model) else None
            w = _compare(
                "loss", "the loss", mine, np.array([jax_loss.sum() * factor]), sym_total, rtol, atol,
                lambda e: "loss", lambda e: None,
            )
            if w is not None:
                wrong.append(w)
    for name in names:
        key, arr = found[name]
        label = adapter.display(name, key)

        def entry_of(e: tuple[int, ...], name: str = name, key: str = key, shape: tuple[int, ...] = arr.shape) -> str:
            idx = adapter.user_entry(model, name, shape, e, n)
            return f"{key}[{', '.join(map(str, idx))}]" if idx else key

        step_axis = 0 if n is None else 1
        w = _compare(
            name, label, yours[name], jax_g[name], None if sym_g is None else sym_g[name], rtol, atol,
            entry_of, (lambda e: e[step_axis] + 1) if name == "x" else (lambda e: None),
        )
        if w is not None:
            wrong.append(w)
    if not wrong:
        return None
    loss_ok = yours_loss is not None and not any(w.name == "loss" for w in wrong)
    return _Failure(case, tuple(wrong), yours=yours, truth=jax_g, float32=float32, loss_ok=loss_ok)


# -- diagnosing ------------------------------------------------------------------------


def _diagnosis_target(name: str, step: int | None) -> Ref:
    if name == "x":
        return Ref("x", step or 1)
    if name == "h_0":
        return Ref("h", 0)
    return Ref(name)


@functools.lru_cache(maxsize=32)
def _diagnosis_truth(model: RNN, onehot: bool = False, index: bool = False) -> Any:
    """The diagnosis engine's truth of ``model``: its usual sample points, or ones with one-hot targets (for code that
    takes class indices) and one-hot inputs (for code that takes token indices)."""
    from .truth import Truth, truth_for

    if not (onehot or index):
        return truth_for(model)
    from .sampling import sample_points

    truth = Truth(model)
    leaves = sample_points(model, truth.points, truth.seed, targets="onehot" if onehot else "mixed")
    if index:
        rng = np.random.default_rng(truth.seed + 1)
        D = model.input_size
        for t in model.steps_range():
            ref = Ref("x", t)
            leaves[ref] = np.eye(D)[rng.integers(0, D, size=truth.points)].reshape(truth.points, *model.shape(ref))
    truth.leaves = leaves
    truth.values = truth.symbolic.forward_values(leaves)
    return truth


def _explain(
    model: RNN, wrong: _Wrong, values: np.ndarray | None, rtol: float, atol: float, problem: str = "", truth: Any = None,
) -> str:
    """The most likely mistake behind one wrong gradient, from the diagnosis engine at its own sample points.

    ``values``: the user's gradient at the checker's points, (P, *target shape),
    or None when they could not be computed (``problem`` says why).
    """
    if wrong.name == "loss":
        return "the loss value is wrong (check the forward pass and which steps' losses are summed)"
    if values is None:
        return f"no diagnosis: {problem}"
    from .diagnose import Diagnoser

    truth = truth if truth is not None else _diagnosis_truth(model)
    target = Target(L_TOTAL, _diagnosis_target(wrong.name, wrong.step))
    rtol, atol = max(rtol, 1e-9), max(atol, 1e-12)
    expected = np.asarray(truth.target_values(target)[0], dtype=np.float64)
    if values.shape != expected.shape:
        return f"no diagnosis: the values have shape {values.shape[1:]}, the truth {expected.shape[1:]}"
    close = lambda a, b: bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))  # noqa: E731
    if close(values, expected):
        return (
            "it matches the truth at bptt_check's own sample points of this model: the mistake shows only"
            " for some inputs (look at what is special about the case below)"
        )
    what = wrong.label.split(" ")[0]
    finding = Diagnoser(model, target, truth.float_backend(), expected, rtol, atol).diagnose(values)
    if finding.diagnoses:
        return "; ".join(f"{what} {d.message} [{d.code}]" for d in finding.diagnoses)
    if values.shape[-1] == values.shape[-2] and close(values, np.swapaxes(expected, -1, -2)):
        return f"{what} is the transpose of the true gradient: the outer product is the wrong way round [transposed]"
    if close(values, np.zeros_like(values)):
        return f"{what} is zero everywhere: the gradient is never accumulated [missing_term]"
    ratio = float(np.sum(values * expected) / max(float(np.sum(expected * expected)), 1e-300))
    if abs(ratio) > 1e-6 and close(values, ratio * expected):
        return f"{what} is {ratio:.4g} × the true gradient: a constant factor is wrong [wrong_factor]"
    return f"{what} matches none of the known mistakes (compare your backward pass with dL/dh_t step by step)"


def _diagnose(
    model: RNN, wrong: tuple[_Wrong, ...], call: Callable[[Mapping[Ref, np.ndarray], int], dict[str, np.ndarray]],
    rtol: float, atol: float, options: _Options = _DEFAULT_OPTIONS, known: Mapping[str, str] | None = None,
) -> list[str]:
    """One line per wrong value: ``known[name]`` when a whole-array diagnosis found it, else its most likely mistake
    from the engine, which replays fn at its own sample points (see :func:`_explain`)."""
    known = known or {}
    lines = []
    per_point: list[dict[str, np.ndarray]] = []
    problem = ""
    truth: Any = None
    if options.truncate is not None and options.truncate < model.steps - 1:
        problem = f"the mistake finder knows untruncated BPTT only, and truncate={options.truncate} binds at T = {model.steps}"
    elif any(w.name not in known and w.name != "loss" for w in wrong):
        try:
            truth = _diagnosis_truth(model, options.targets == "class", options.inputs == "index")
            per_point = [call(truth.leaves, p) for p in range(truth.points)]
        except Exception as err:  # the user's fn at the diagnosis points
            per_point, problem = [], f"fn failed at bptt_check's sample points ({type(err).__name__}: {err})"
    for w in wrong:
        if w.name in known:
            lines.append(known[w.name])
            continue
        values = None
        if per_point and w.name != "loss":
            try:
                stacked = np.stack([point[w.name] for point in per_point])
                if w.name == "x":
                    t = w.step or 1
                    stacked = stacked[:, t - 1, :].reshape(len(per_point), *model.shape(Ref("x", t)))
                values = stacked
            except KeyError:
                problem = f"fn returned no {w.name} at bptt_check's sample points"
        try:
            lines.append(_explain(model, w, values, rtol, atol, problem, truth))
        except Exception as err:  # never let the diagnosis hide the failure itself
            lines.append(f"no diagnosis ({type(err).__name__}: {err})")
    return lines


def _describe_reduction(reduction: str, n: int, loss_steps: int) -> str:
    return {
        "sum": "the sum",
        "mean": f"the mean over the batch of {n}",
        "mean_steps": f"the mean over the {loss_steps} loss steps",
        "mean_all": f"the mean over the batch of {n} and the {loss_steps} loss steps",
    }[reduction]


def _whole_array_diagnoses(failure: _Failure, rtol: float, atol: float) -> tuple[dict[str, str], list[str]]:
    """Mistakes read off the failing case's whole arrays: a reduction, clipping, truncation; and hints (float32).

    Returns ``{name: diagnosis}`` for the wrong values explained and a list of hints for the report.
    """
    case, yours, truth = failure.case, failure.yours, failure.truth
    known: dict[str, str] = {}
    hints: list[str] = []
    if yours is None or truth is None:
        return known, hints
    options: _Options = case.options
    model = case.model
    n, Tl = case.n or 1, len(model.loss_steps)
    wrong = [w for w in failure.wrong if w.name in yours]  # gradients (not the loss, nor a forward pass's hs)
    close = lambda a, b: bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))  # noqa: E731
    what = {w.name: w.label.split(" ")[0] for w in wrong}

    # a reduction: every entry off by the factor between two reductions
    base = _reduction_factor(options.reduction, n, Tl)
    factors: dict[str, float] = {}
    for r in REDUCTIONS if isinstance(case, Case) else ("sum", "mean"):  # a layer's reduction is over the batch only
        f = _reduction_factor(r, n, Tl) / base
        if r != options.reduction and not math.isclose(f, 1.0) and not any(math.isclose(f, g) for g in factors.values()):
            factors[r] = f
    asked = _describe_reduction(options.reduction, n, Tl)
    by_reduction: dict[str, str] = {}
    if options.clip is None:
        for w in [w for w in failure.wrong if w.name == "loss"] + wrong:
            mine = np.array([w.yours]) if w.name == "loss" else yours[w.name]
            true = np.array([w.jax]) if w.name == "loss" else truth[w.name]
            for r, f in factors.items():
                if close(mine, f * true):
                    by_reduction[w.name] = r
                    break
    if "loss" in by_reduction:
        r = by_reduction.pop("loss")
        known["loss"] = f"the loss is {_describe_reduction(r, n, Tl)}; the loss checked is {asked}: pass reduction={r!r} [reduction]"
    layer_params = {name for name in truth if name not in ("x", "h_0")}
    if by_reduction and not isinstance(case, Case) and set(by_reduction) == layer_params and len(set(by_reduction.values())) == 1:
        r = next(iter(by_reduction.values()))
        line = (
            f"your parameter gradients are {_describe_reduction(r, n, Tl)} (dx and dh0 per example, as 11-785's RNNCell"
            f" does); the check expects {asked}: pass reduction={r!r} [reduction]"
        )
        known.update({name: line for name in by_reduction})
    elif by_reduction:
        if len(set(by_reduction.values())) == 1 and set(by_reduction) == set(truth):
            r = next(iter(by_reduction.values()))
            f = factors[r]
            if failure.loss_ok:  # the loss fn returned is the one checked: the backward pass lost the factor
                fix = f"misses the loss's division by {f:.4g}" if f > 1 else f"divides by {1 / f:.4g} where the loss does not"
                line = f"your gradients are {_describe_reduction(r, n, Tl)}, but your loss is {asked}, as checked: the backward pass {fix} [reduction]"
            else:
                line = f"your gradients are {_describe_reduction(r, n, Tl)}; the loss is {asked}: pass reduction={r!r} [reduction]"
            known.update({name: line for name in by_reduction})
        else:
            for name, r in by_reduction.items():
                f = factors[r]
                op = f"division by {1 / f:.4g}" if f < 1 else f"multiplication by {f:.4g}"
                if isinstance(case, Case):
                    known[name] = (
                        f"{what[name]} is {_describe_reduction(r, n, Tl)}, but the loss is {asked} (like your other"
                        f" gradients): a stray {op} [reduction]"
                    )
                else:  # a backward pass: the upstream gradient already carries the loss's reduction
                    known[name] = (
                        f"{what[name]} is {_describe_reduction(r, n, Tl)} where the upstream gradient dhs already carries"
                        f" the loss's reduction (your other gradients are sums): a stray {op} [reduction]"
                    )

    # clipping: every wrong entry exactly ±c where the truth is beyond c, the same c for every gradient, and
    # either a round c (5, 1, 0.25) or at least two such entries (a single entry's value proves nothing)
    clipped: dict[str, tuple[float, float, int]] = {}
    for w in wrong:
        if w.name in known or w.name in ("x", "h_0"):
            continue
        mine, true = yours[w.name], truth[w.name]
        bad = np.abs(mine - true) > atol + rtol * np.abs(true)
        values, beyond = mine[bad], true[bad]
        c = float(np.max(np.abs(values))) if values.size else 0.0
        if c > 0 and np.allclose(np.abs(values), c, rtol=1e-9, atol=0) and np.all(np.sign(values) == np.sign(beyond)) and np.all(np.abs(beyond) > c):
            clipped[w.name] = (c, float(beyond[np.argmax(np.abs(beyond))]), int(values.size))
    if clipped:
        c = next(iter(clipped.values()))[0]
        same = all(math.isclose(v[0], c, rel_tol=1e-9) for v in clipped.values())
        if same and (abs(c - round(c, 2)) <= 1e-9 * c or sum(v[2] for v in clipped.values()) >= 2):
            for name, (_, worst, _) in clipped.items():
                known[name] = (
                    f"{what[name]} is clipped to [-{c:g}, {c:g}]: every wrong entry is ±{c:g} where the truth is beyond it"
                    f" (e.g. {worst:.6g}); pass clip={c:g} to check clipped gradients [clipped]"
                )

    # truncation: every gradient is that of k-step truncated BPTT (or of full BPTT when truncation was asked for)
    T = model.steps
    if isinstance(case, Case) and any(w.name not in known for w in wrong) and T >= 2 and not any("[reduction]" in d for d in known.values()):
        asked_k = options.truncate if options.truncate is not None and options.truncate < T - 1 else None
        # from k = 1: zero-step truncation is no BPTT at all, which the engine names as the missing recurrent path
        candidates: list[int | None] = [k for k in range(1, T - 1) if k != asked_k] + ([None] if asked_k is not None else [])
        names = list(truth)
        for k in candidates:
            other, _ = _case_truths(case, names, truncate=k, sympy=False)
            if all(close(yours[name], other[name]) for name in names):
                if k is None:
                    line = (
                        f"your gradients are those of BPTT truncated after more than {asked_k} step{'s' if asked_k != 1 else ''}"
                        f" or not at all (the same at T = {T}), but truncate={asked_k} asks for {asked_k}-step truncated"
                        f" BPTT: check the backward loop's bounds, or leave truncate out [truncated]"
                    )
                else:
                    line = (
                        f"your gradients are those of {k}-step truncated BPTT (WildML's bptt_truncate={k}: the loss of"
                        f" step t reaches a_t … a_(t-{k}) only): pass truncate={k} [truncated]"
                    )
                known.update({w.name: line for w in wrong if w.name not in known})
                break

    # float32 round-off
    if options.dtype == "float64" and wrong and any(w.name not in known for w in wrong) and all(
        w.error <= FLOAT32_RESOLUTION * max(float(np.max(np.abs(truth[w.name]))), 1e-300) for w in wrong
    ):
        hints.append(
            f"every error is at float32 resolution (at most {FLOAT32_RESOLUTION:g} × the gradient's largest entry)"
            + ("; your gradients are float32 arrays" if failure.float32 else "")
            + ": compute in float64, or pass dtype='float32' to check with float32 tolerances"
        )
    elif failure.float32 and options.dtype == "float64":
        hints.append("your gradients are float32 arrays: pass dtype='float32' if your code computes in float32")
    return known, hints


# -- the report ----------------------------------------------------------------------------


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.10g}"


def _report(
    failure: _Failure, diagnoses: list[str], rtol: float, atol: float, what: str = "gradient", hints: list[str] | tuple[str, ...] = (),
) -> str:
    case = failure.case
    if failure.broken:
        return f"{failure.broken}\nsmallest failing case (found by hypothesis):\n{case!r}"
    first = failure.wrong[0]
    no_sympy = "" if first.sympy is not None else f" (sympy: not run for T > {SYMPY_MAX_STEPS} or sizes > {SYMPY_MAX_SIZE})"
    head = f"{first.label} does not match the true {what}" if first.name != "loss" else "the loss does not match"
    lines = [
        head,
        f"  worst entry {first.entry}: yours = {_fmt(first.yours)}, jax = {_fmt(first.jax)}, sympy = {_fmt(first.sympy)}{no_sympy}",
        f"  tolerance rule: |yours - jax| <= atol + rtol*|jax| = {atol:g} + {rtol:g}*{abs(first.jax):.4g}"
        f" = {first.tolerance:.3g}, but |yours - jax| = {first.error:.3g}",
        f"  likely mistake: {diagnoses[0]}",
    ]
    for w, d in zip(failure.wrong[1:], diagnoses[1:]):
        lines.append(
            f"also wrong: {w.label}, worst entry {w.entry}: yours = {_fmt(w.yours)}, jax = {_fmt(w.jax)}"
            f" (|diff| = {w.error:.3g} > {w.tolerance:.3g})"
        )
        lines.append(f"  likely mistake: {d}")
    lines.extend(f"hint: {h}" for h in hints)
    lines.append("smallest failing case (found by hypothesis):")
    lines.append(repr(case))
    return "\n".join(lines)


# -- running ---------------------------------------------------------------------------


def _tolerances(rtol: float | None, atol: float | None, options: _Options) -> tuple[float, float]:
    """The tolerances asked for, or the defaults of the dtype: float64 1e-6 and 1e-8, float32 FLOAT32_RTOL and FLOAT32_ATOL."""
    f32 = options.dtype == "float32"
    return (
        (FLOAT32_RTOL if f32 else 1e-6) if rtol is None else rtol,
        (FLOAT32_ATOL if f32 else 1e-8) if atol is None else atol,
    )


def _validate_run(max_examples: object, rtol: object, atol: object, seed: object) -> None:
    _whole("max_examples", max_examples, 1, 100_000)
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            raise InvalidArgumentError(f"{name} = {value!r} is invalid", hint="use a finite number ≥ 0")
    if rtol == 0 and atol == 0:
        raise InvalidArgumentError("rtol and atol are both 0", hint="float64 round-off needs a tolerance: rtol=1e-6")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidArgumentError(f"seed = {seed!r} is invalid", hint="use a whole number, or None")


def _run(strategy: SearchStrategy[Any], body: Callable[[Any], _Failure | None], max_examples: int, seed: int | None) -> _Failure | None:
    """Run ``body`` over ``strategy`` with hypothesis; the shrunk failure, or None."""

    @hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        database=None,  # every call is its own property: do not replay another function's failures
        report_multiple_bugs=False,
        # no explain phase: it reruns the shrunk case many times to say which inputs matter (minutes here)
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy)
    def property_(case: Any) -> None:
        failure = body(case)
        if failure is not None:
            raise _CaseFailed(failure)

    test = property_ if seed is None else hypothesis_seed(seed)(property_)
    try:
        test()
    except _CaseFailed as failed:
        return failed.failure
    return None


def assert_gradients_match(
    fn: GradientFn,
    model: RNN | SearchStrategy[RNN],
    *,
    names: Mapping[str, str] | str | None = None,
    layout: Layout | None = None,
    loss: bool | None = None,
    targets: TargetKind = "any",
    inputs: InputKind = "dense",
    vocab: int | None = None,
    batch: int | tuple[int, ...] | None = None,
    reduction: Reduction = "sum",
    clip: float | None = None,
    truncate: int | None = None,
    dtype: str = "float64",
    max_examples: int = 100,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int | None = None,
) -> None:
    """Check your BPTT implementation ``fn(params, xs, ys, h0)`` against the truth over generated cases.

    ``model`` is one :class:`~bptt_check.model.RNN` (only values vary) or a
    strategy such as :func:`models` (steps and sizes vary too, and a failure
    shrinks to the smallest model). fn is called in the model's convention
    (row or column vectors; shapes in the module docstring), and the
    diagnosis reads your gradients with the model's activation and loss.
    ``names`` maps your parameter names to ours (``{"Wxh": "W_xh", ...}``;
    ``h_0`` and ``x`` name the gradients of the inputs), or is a preset:
    ``"min-char-rnn"`` or ``"textbook"`` (``U, W, V, b, c``). When fn takes
    a keyword argument ``model``, it receives each case's RNN. ``layout``
    (``"row"``, ``"column"``) is optional: a fixed model in the other
    convention is an :class:`InvalidArgumentError`, and :func:`models`
    without a ``convention`` draws its models in this layout. ``loss``:
    ``None`` checks the loss when fn returns one, ``True`` requires it,
    ``False`` ignores it.

    Your code as you wrote it:

    * ``targets``: ``"any"`` (one-hot or soft distributions), ``"onehot"``,
      ``"soft"``, ``"real"`` (squared error), or ``"class"``: ``ys`` integer
      class indices (T,) — (N, T) with a batch — for cross-entropy code that
      indexes ``p[t][y[t]]`` (min-char-rnn, CS231n's ``temporal_softmax_loss``).
    * ``inputs="index"``: ``xs`` integer token indices (T,) or (N, T), the
      model's ``x_t`` their one-hot vectors over ``vocab`` tokens (the model's
      input size; ``vocab`` sets it). ``dx``, if returned, is dense.
    * ``batch``: N examples at once (an int, or a tuple to draw N from): row
      layout ``xs`` (N, T, D), ``ys`` (N, T, O), ``h0`` (N, H); column layout
      ``xs`` (T, D, N), ``ys`` (T, O, N), ``h0`` (H, N). The parameters are
      shared, their gradients summed over the batch.
    * ``reduction``: the batch's loss is the ``"sum"`` of every example's L,
      or its ``"mean"`` (÷N), ``"mean_steps"`` (÷T_L, the loss steps) or
      ``"mean_all"`` (÷N·T_L); the truth is that loss's gradient. A mismatch
      by such a factor is diagnosed as the reduction it is.
    * ``clip=c``: the true parameter gradients clipped to [−c, c] entrywise
      (min-char-rnn's ``np.clip(dparam, -5, 5)``); without it, a gradient whose
      every wrong entry is exactly ±c is diagnosed as clipped.
    * ``truncate=k``: the truth of k-step truncated BPTT, WildML's
      ``bptt_truncate=k``: the loss of step t reaches the pre-activations
      a_t, …, a_{t−k} and no earlier ones (``W_hy``, ``b_y`` untruncated).
      Without it, gradients that match a k-step truncated truth name the k.
    * ``dtype="float32"``: arrays are given as float32 (the truth is taken at
      exactly those values), and the tolerances default to
      ``rtol = 1e-4``, ``atol = 1e-6``; a float64 check whose every error is
      at float32 resolution says so.

    Each gradient must satisfy ``|yours − jax| ≤ atol + rtol·|jax|`` entrywise
    (``rtol = 1e-6``, ``atol = 1e-8`` by default) at every one of
    ``max_examples`` cases (``seed`` fixes hypothesis's randomness). On
    failure raises :class:`AssertionError` with the smallest failing case,
    the parameter, its worst entry, your value, jax's and sympy's, the
    tolerance, and the most likely mistake. Exceptions raised by fn propagate
    (hypothesis shrinks them too).
    """
    __tracebackhide__ = True
    if not callable(fn):
        raise InvalidArgumentError(f"fn must be callable, not {type(fn).__name__}", hint="pass your gradient function")
    options = _options(
        targets=targets, inputs=inputs, vocab=vocab, batch=batch, reduction=reduction, clip=clip, truncate=truncate, dtype=dtype
    )
    if isinstance(model, RNN):
        _check_targets(targets, model)
        if vocab is not None and model.input_size != vocab:
            raise InvalidArgumentError(
                f"vocab = {vocab} contradicts the model's input size {model.input_size}", hint="leave vocab out, or use RNN(input_size=vocab)"
            )
    adapter = _Adapter(names, layout, loss, fn, options)
    strategy = _cases(_model_strategy(model, "assert_gradients_match()", layout), targets, layout, options)
    rtol, atol = _tolerances(rtol, atol, options)
    _validate_run(max_examples, rtol, atol, seed)
    failure = _run(strategy, lambda case: _check_case(fn, case, adapter, rtol, atol), max_examples, seed)
    if failure is None:
        return
    diagnoses: list[str] = []
    hints: list[str] = []
    if failure.wrong:
        known, hints = _whole_array_diagnoses(failure, rtol, atol)
        m = failure.case.model
        one = 1 if options.batched else None

        def call(leaves: Mapping[Ref, np.ndarray], p: int) -> dict[str, np.ndarray]:
            # one example (a batch of one), its gradients as those of the sum of its losses: the engine's L
            args = adapter.arguments(m, *_point(m, leaves, p), one)
            _, grads = adapter.split(adapter.call(fn, m, args))
            got = adapter.canonical(m, adapter.resolve(grads, m), one)
            f = options.factor(m, 1)
            return {k: (v[0] if one and k in ("x", "h_0") else v) / f for k, v in got.items()}

        diagnoses = _diagnose(m, failure.wrong, call, rtol, atol, options, known)
    raise AssertionError(_report(failure, diagnoses, rtol, atol, hints=hints)) from None


# -- a backward pass given an upstream gradient --------------------------------------------

_HIDDEN = ("W_xh", "W_hh", "b_h")
"""The parameters of the hidden-state sequence: what a layer's backward pass returns gradients for."""


@dataclass(frozen=True, eq=False, repr=False)
class BackwardCase:
    """A generated case of a layer's backward pass: parameters, inputs and a random upstream gradient ``dhs``.

    ``params``: ``W_xh``, ``W_hh`` (and ``b_h``) in the model's shapes; ``xs``
    (N, T, D), ``h0`` (N, H), ``dhs`` (N, T, H), one flat vector per step
    (without a batch, no leading N). The truth is the vector–Jacobian product
    ``sum_t dhs_t · ∂h_t/∂(·)`` of the hidden-state sequence.
    """

    model: RNN
    params: Mapping[str, np.ndarray]
    xs: np.ndarray
    h0: np.ndarray
    dhs: np.ndarray
    options: _Options = _DEFAULT_OPTIONS

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", types.MappingProxyType({k: _frozen(v) for k, v in self.params.items()}))
        for name in ("xs", "h0", "dhs"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def n(self) -> int | None:
        return int(self.xs.shape[0]) if self.options.batched else None

    def __repr__(self) -> str:
        m = self.model
        extra = (f", batch={self.n}" if self.n is not None else "") + (f", dtype={self.options.dtype!r}" if self.options.dtype != "float64" else "")
        lines = [f"BackwardCase(T={m.steps}, D={m.input_size}, H={m.hidden_size}, {m.convention} vectors, {m.activation}{extra}"]
        lines += [f"  {name} = {_show(value)}" for name, value in self.params.items()]
        index = self.options.inputs == "index"
        lines.append(f"  xs = {_show(self.xs.argmax(axis=-1) if index else self.xs)}" + (" (token indices)" if index else ""))
        lines.append(f"  h0 = {_show(self.h0)}")
        lines.append(f"  dhs = {_show(self.dhs)}")
        return "\n".join(lines) + ")"


@st.composite
def _backward_cases(draw: st.DrawFn, model_strategy: SearchStrategy[RNN], options: _Options) -> BackwardCase:
    model = draw(model_strategy)
    if not isinstance(model, RNN):
        raise InvalidArgumentError(f"the model strategy drew {model!r}, not an RNN", hint="use models() or st.just(RNN(...))")
    model = model.replace(loss_at="all", h0="input")  # a layer gets every dh_t, and h0 is its input
    if options.vocab is not None:
        model = model.replace(input_size=options.vocab)
    drawn = draw(_parameters(model))
    params = {k: drawn[k] for k in _HIDDEN if k in drawn}
    index = options.inputs == "index"
    T, H = model.steps, model.hidden_size
    n = None if options.batch is None else options.batch[0] if len(options.batch) == 1 else draw(st.sampled_from(options.batch))
    seqs = [draw(_sequences(model, "any", drawn, index)) for _ in range(n or 1)]
    xs, h0 = np.stack([q.xs for q in seqs]), np.stack([q.h0 for q in seqs])
    dhs = draw(_entries((n or 1, T, H), 1.0))
    if n is None:
        xs, h0, dhs = xs[0], h0[0], dhs[0]
    if options.dtype == "float32":
        params = {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}
        xs, h0, dhs = (a.astype(np.float32).astype(np.float64) for a in (xs, h0, dhs))
    return BackwardCase(model, params, xs, h0, dhs, options)


def _vjp_leaves(case: BackwardCase) -> tuple[RNN, dict[Ref, np.ndarray], np.ndarray]:
    """The vector–Jacobian product as a loss: a squared-error model with W_hy = I, b_y = 0 and targets
    y_t = h_t − dhs_t, so that dL/dh_t (direct) = z_t − y_t = dhs_t. Returns it, its leaves (one point per example)
    and the forward hidden states (P, T, H)."""
    from .sampling import numpy_forward

    model = case.model
    H = model.hidden_size
    vm = model.replace(loss="squared_error", output_size=H, loss_at="all", h0="input")
    lead = case.n is not None
    xs, h0, dhs = (a if lead else a[None] for a in (case.xs, case.h0, case.dhs))
    P = xs.shape[0]
    leaves: dict[Ref, np.ndarray] = {}
    for ref in vm.parameters():
        shape = vm.shape(ref)
        value = case.params[ref.family] if ref.family in case.params else np.eye(H) if ref.family == "W_hy" else np.zeros(shape)
        leaves[ref] = np.broadcast_to(np.asarray(value, dtype=np.float64).reshape(shape), (P, *shape)).copy()
    for t in vm.steps_range():
        leaves[Ref("x", t)] = xs[:, t - 1].reshape(P, *vm.shape(Ref("x", t)))
        leaves[Ref("y", t)] = np.zeros((P, *vm.shape(Ref("y", t))))
    leaves[Ref("h", 0)] = h0.reshape(P, *vm.shape(Ref("h", 0)))
    forward = numpy_forward(vm, leaves)
    for t in vm.steps_range():
        leaves[Ref("y", t)] = forward[Ref("h", t)] - dhs[:, t - 1].reshape(P, *vm.shape(Ref("y", t)))
    hs = np.stack([forward[Ref("h", t)].reshape(P, H) for t in vm.steps_range()], axis=1)
    return vm, leaves, hs


def _backward_truths(
    case: BackwardCase, names: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None, np.ndarray]:
    """jax's and (small models) sympy's vector–Jacobian products in the comparison shapes, and the true hs."""
    vm, leaves, hs = _vjp_leaves(case)
    jax_p, sym_p = _point_truths(vm, leaves, names, None)
    out: list[dict[str, np.ndarray] | None] = []
    for per_point in (jax_p, sym_p):
        if per_point is None:
            out.append(None)
            continue
        factor = 1.0 / case.n if case.options.reduction == "mean" and case.n is not None else 1.0
        out.append({
            name: (value if case.n is not None else value[0]) if name in ("x", "h_0") else value.sum(axis=0) * factor
            for name, value in per_point.items()
        })
    return out[0], out[1], (hs if case.n is not None else hs[0])  # type: ignore[return-value]


def _split_backward(output: object, adapter: _Adapter, model: RNN) -> dict[str, Any]:
    """What backward returned as a dict of gradients: a dict as it is, a tuple in CS231n's order (dx, dh0, dW_xh, dW_hh, db_h)."""
    if isinstance(output, Mapping):
        return {k: v for k, v in output.items() if v is not None}
    if isinstance(output, (tuple, list)) and len(output) in (4, 5):
        if len(output) == 5 and not model.biases:
            raise _Bad("returned 5 arrays (dx, dh0, dW_xh, dW_hh, db_h) for a model without biases: use models(biases=True)")
        if len(output) == 4 and model.biases:
            raise _Bad("returned 4 arrays (dx, dh0, dW_xh, dW_hh) but the model has a bias b_h: return db_h too, or use biases=False")
        keys = ["dx", "dh0"] + [f"d{adapter.user[f]}" for f in _HIDDEN]
        return {k: v for k, v in zip(keys, output) if v is not None}
    raise _Bad(
        f"returned {type(output).__name__}: expected (dx, dh0, dW_xh, dW_hh, db_h) (CS231n's order; dx or dh0 may be None)"
        " or a dict of gradients"
    )


class _Layer:
    """A user's forward and backward pass, called on canonical values; every contract breach is a :class:`_Bad`."""

    def __init__(self, forward: Callable[..., Any], backward: Callable[..., Any], adapter: _Adapter, step: bool = False) -> None:
        self.forward, self.backward, self.adapter = forward, backward, adapter
        self.step = step
        """step functions: x and h have no step axis for the user"""

    def shown(self, model: RNN, name: str, idx: tuple[int, ...], n: int | None) -> tuple[int, ...]:
        """An index into the user's array: a step function's x, h and dx have no step axis."""
        if not (self.step and name in ("x", "h")):
            return idx
        axis = 1 if n is not None and not model.column else 0  # (N, 1, k) in rows; (1, k) or (1, k, N) otherwise
        return idx[:axis] + idx[axis + 1 :]

    def run(
        self, model: RNN, params: Mapping[str, np.ndarray], xs: np.ndarray, h0: np.ndarray, dhs: np.ndarray, n: int | None
    ) -> tuple[np.ndarray, dict[str, tuple[str, np.ndarray]], dict[str, np.ndarray], bool]:
        """(hs, found, gradients, float32): the forward's hidden states and backward's gradients in canonical shapes."""
        a = self.adapter
        dtype = np.dtype(a.options.dtype)
        families = tuple(f for f in _HIDDEN if f in params)
        user_params = {a.user[f]: np.array(params[f], dtype=dtype).reshape(-1, 1) if f == "b_h" and model.column
                       else np.array(params[f], dtype=dtype).reshape(-1) if f == "b_h" else np.array(params[f], dtype=dtype)
                       for f in families}
        xs_u, h0_u = a.sequence_arguments(model, xs, None, h0, n)
        out = self.forward(user_params, xs_u, h0_u)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise _Bad(f"forward returned {type(out).__name__}: expected (hs, cache)", )
        hs_u, cache = out
        try:
            hs = a.to_canonical(model, "h", np.asarray(hs_u, dtype=np.float64), n)
        except (_Bad, TypeError, ValueError) as bad:
            raise _Bad(f"forward returned hs {bad}") from None
        lead = (n,) if n is not None else ()
        dhs_u = a.sequence(model, np.asarray(dhs, dtype=np.float64).reshape(*lead, model.steps, -1).astype(dtype), n)
        grads = _split_backward(self.backward(dhs_u, cache), a, model)
        float32 = any(getattr(v, "dtype", None) == np.float32 for v in grads.values())
        found = a.resolve(grads, model, families)
        return hs, found, a.canonical(model, found, n), float32


def _check_backward(layer: _Layer, case: BackwardCase, rtol: float, atol: float, what: str = "backward") -> _Failure | None:
    model, n, a = case.model, case.n, layer.adapter
    try:
        hs, found, yours, float32 = layer.run(model, case.params, case.xs, case.h0, case.dhs, n)
    except _Bad as bad:
        text = str(bad)
        return _Failure(case, broken=text if text.startswith(("forward", "backward", "forward_step", "backward_step")) else f"{what} {text}")
    names = [name for name in _CHECKABLE if name in yours]
    jax_g, sym_g, true_hs = _backward_truths(case, names)
    wrong: list[_Wrong] = []
    step_axis = 0 if n is None else 1
    w = _compare("h", "hs (your forward pass's hidden states)", hs, true_hs, None, rtol, atol,
                 lambda e: f"hs[{', '.join(map(str, layer.shown(model, 'h', a.user_entry(model, 'h', a.user_shape(model, 'h', n), e, n), n)))}]",
                 lambda e: e[step_axis] + 1)
    if w is not None:
        wrong.append(w)
    for name in names:
        key, arr = found[name]

        def entry_of(e: tuple[int, ...], name: str = name, key: str = key, shape: tuple[int, ...] = arr.shape) -> str:
            idx = layer.shown(model, name, a.user_entry(model, name, shape, e, n), n)
            return f"{key}[{', '.join(map(str, idx))}]" if idx else key

        w = _compare(
            name, a.display(name, key), yours[name], jax_g[name], None if sym_g is None else sym_g[name], rtol, atol,
            entry_of, (lambda e: e[step_axis] + 1) if name == "x" else (lambda e: None),
        )
        if w is not None:
            wrong.append(w)
    if not wrong:
        return None
    return _Failure(case, tuple(wrong), yours=yours, truth=jax_g, float32=float32)


def _local_dhs(model: RNN, leaves: Mapping[Ref, np.ndarray], p: int) -> np.ndarray:
    """The direct ∂L/∂h_t (T, H) at the diagnosis point ``p``: (yhat_t − y_t) through W_hy at each loss step, zero elsewhere.

    Given as the upstream gradient, it makes a layer's backward pass return dL/d(·) of the whole model.
    """
    from .sampling import numpy_forward

    values = numpy_forward(model, {k: v[p : p + 1] for k, v in leaves.items()})
    W_hy = np.asarray(values[Ref("W_hy")][0])
    out = np.zeros((model.steps, model.hidden_size))
    for t in model.loss_steps:
        dz = np.asarray(values[Ref("yhat", t)][0] - values[Ref("y", t)][0])
        out[t - 1] = (W_hy.T @ dz).reshape(-1) if model.column else (dz @ W_hy.T).reshape(-1)
    return out


def _run_backward_check(
    layer: _Layer, model: RNN | SearchStrategy[RNN], options: _Options, where: str,
    max_examples: int, rtol: float | None, atol: float | None, seed: int | None, suffix: str = "",
) -> None:
    __tracebackhide__ = True
    strategy = _backward_cases(_model_strategy(model, where), options)
    rtol, atol = _tolerances(rtol, atol, options)
    _validate_run(max_examples, rtol, atol, seed)
    failure = _run(strategy, lambda case: _check_backward(layer, case, rtol, atol), max_examples, seed)
    if failure is None:
        return
    diagnoses: list[str] = []
    hints: list[str] = []
    if failure.wrong:
        known, hints = _whole_array_diagnoses(failure, rtol, atol)
        for w in failure.wrong:
            if w.name == "h":
                known["h"] = "the forward pass is wrong (check h_t = act(a_t) and which h feeds each step)"
        m = failure.case.model
        one = 1 if options.batched else None

        def call(leaves: Mapping[Ref, np.ndarray], p: int) -> dict[str, np.ndarray]:
            # one example, with upstream the direct dL/dh_t of the engine's model: backward then returns dL/d(·)
            params, xs, _, h0 = _point(m, leaves, p)
            _, _, got, _ = layer.run(m, params, xs, h0, _local_dhs(m, leaves, p), one)
            return {k: (v[0] if one and k in ("x", "h_0") else v) for k, v in got.items()}

        diagnoses = _diagnose(m, failure.wrong, call, rtol, atol, options, known)
        if suffix:
            diagnoses = [d + suffix if "[" in d and "[reduction]" not in d else d for d in diagnoses]
    report = _report(failure, diagnoses, rtol, atol, hints=hints)
    if failure.wrong and failure.wrong[0].name == "h":
        report = report.replace(f"{failure.wrong[0].label} does not match the true gradient", "hs does not match the true forward pass", 1)
    raise AssertionError(report) from None


def assert_backward_match(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    model: RNN | SearchStrategy[RNN] | None = None,
    *,
    names: Mapping[str, str] | str | None = None,
    batch: int | tuple[int, ...] | None = (1, 2, 3),
    reduction: Literal["sum", "mean"] = "sum",
    inputs: InputKind = "dense",
    vocab: int | None = None,
    dtype: str = "float64",
    max_examples: int = 100,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int | None = None,
) -> None:
    """Check a recurrent layer's backward pass that takes an upstream gradient (CS231n's ``rnn_backward(dh, cache)``).

    ``forward(params, xs, h0)`` runs your forward pass and returns ``(hs,
    cache)``: the hidden states h_1..h_T and whatever your backward needs.
    ``backward(dhs, cache)`` gets a random upstream gradient ``dhs`` (dL/dh_t
    for every t, the shape of ``hs``) and returns ``(dx, dh0, dW_xh, dW_hh,
    db_h)`` (CS231n's order; ``db_h`` only with biases; ``dx`` or ``dh0`` may be
    None) or a dict keyed by your names (``names``; ``"cs231n"`` is
    ``Wx, Wh, b``), ours, either with a ``d`` prefix, and ``dx``, ``dh0``.
    ``params`` holds ``W_xh``, ``W_hh`` and, when the model has biases,
    ``b_h``, in your names. Shapes as in :func:`assert_gradients_match`,
    with a batch by default (``batch=(1, 2, 3)``; ``None`` for none): row
    layout ``xs`` (N, T, D), ``h0`` (N, H), ``hs`` and ``dhs`` (N, T, H);
    column layout ``xs`` (T, D, N), ``h0`` (H, N), ``hs`` (T, H, N).
    ``inputs="index"`` gives ``xs`` as token indices (N, T).
    ``reduction="mean"``: the parameter gradients are averaged over the
    batch (÷N; 11-785's ``RNNCell``), ``dx`` and ``dh0`` stay per example;
    by default (``"sum"``) they are the plain vector–Jacobian product.

    The model (a fixed RNN or a strategy; by default :func:`models`) gives the
    sizes, activation, biases and layout; its output layer and loss play no
    part. The truth is the vector–Jacobian product ``sum_t dhs_t · ∂h_t/∂(·)``
    (jax, cross-checked by sympy for small models); ``hs`` is checked against
    the true forward pass. Tolerances as in :func:`assert_gradients_match`.
    """
    __tracebackhide__ = True
    for name, f in (("forward", forward), ("backward", backward)):
        if not callable(f):
            raise InvalidArgumentError(f"{name} must be callable, not {type(f).__name__}", hint=f"pass your {name} function")
    if reduction not in ("sum", "mean"):
        raise InvalidArgumentError(
            f"reduction = {reduction!r} is invalid for a layer", hint="use 'sum' (dhs carries the loss's reduction) or 'mean' (÷N)"
        )
    options = _options(inputs=inputs, vocab=vocab, batch=batch, dtype=dtype, reduction=reduction)
    _run_backward_check(
        _Layer(forward, backward, _Adapter(names, None, None, None, options)), model, options,
        "assert_backward_match()", max_examples, rtol, atol, seed,
    )


def _step_layer(forward_step: Callable[..., Any], backward_step: Callable[..., Any], adapter: _Adapter, batched: bool) -> _Layer:
    """A one-step layer from step functions: x_1 (N, D) for xs (N, 1, D), and next_h back as hs (N, 1, H) (per layout)."""

    def first(seq: Any, model_column: bool) -> Any:
        return seq[:, 0] if batched and not model_column else seq[0]

    def as_sequence(value: Any, model_column: bool) -> Any:
        value = np.asarray(value)
        return value[:, None] if batched and not model_column else value[None]

    state: dict[str, bool] = {}

    def forward(params: dict[str, np.ndarray], xs: np.ndarray, h0: np.ndarray) -> tuple[Any, Any]:
        col = state["column"]
        out = forward_step(params, first(xs, col) if not (adapter.options.inputs == "index" and batched) else xs[:, 0], h0)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise _Bad(f"forward_step returned {type(out).__name__}: expected (next_h, cache)")
        return as_sequence(out[0], col), out[1]

    def backward(dhs: np.ndarray, cache: Any) -> Any:
        col = state["column"]
        out = backward_step(first(dhs, col), cache)
        if isinstance(out, Mapping):
            return {k: (as_sequence(v, col) if k in ("dx", "x") and v is not None else v) for k, v in out.items()}
        if isinstance(out, (tuple, list)) and out and out[0] is not None:
            return (as_sequence(out[0], col), *out[1:])
        return out

    layer = _Layer(forward, backward, adapter, step=True)
    run = layer.run

    def run_with_layout(model: RNN, *args: Any) -> Any:
        state["column"] = model.column
        return run(model, *args)

    layer.run = run_with_layout  # type: ignore[method-assign]
    return layer


# -- one step -----------------------------------------------------------------------------

_STEP_OUTPUTS = ("dx", "dprev_h", "dWx", "dWh", "db")
_STEP_NAMES = {"dx": "x", "dprev_h": "h_0", "dWx": "W_xh", "dWh": "W_hh", "db": "b_h"}
"""The step function's gradients and the model names they are checked as (x_1, h_0, ... of a one-step model)."""


@dataclass(frozen=True, eq=False, repr=False)
class StepCase:
    """One generated call of a step function: N rows (a minibatch) through one tanh step."""

    x: np.ndarray
    prev_h: np.ndarray
    Wx: np.ndarray
    Wh: np.ndarray
    b: np.ndarray
    next_h: np.ndarray
    dnext_h: np.ndarray

    def __repr__(self) -> str:
        fields = ("dnext_h", "x", "prev_h", "Wx", "Wh", "b", "next_h")
        return "StepCase(\n" + "\n".join(f"  {f} = {_show(getattr(self, f))}" for f in fields) + ")"


@st.composite
def _step_cases(draw: st.DrawFn, model_strategy: SearchStrategy[RNN]) -> StepCase:
    model = draw(model_strategy)
    D, H, _ = model.sizes
    n = draw(st.integers(1, 3))
    params = draw(_parameters(RNN(input_size=D, hidden_size=H, biases=model.biases)))  # the step is row-vector tanh
    b = params.get("b_h", np.zeros(H))
    x = draw(_entries((n, D), 1.0))
    prev_h = draw(_entries((n, H), 0.9))
    dnext_h = draw(_entries((n, H), 1.0))
    next_h = np.tanh(x @ params["W_xh"] + prev_h @ params["W_hh"] + b)
    return StepCase(*(_frozen(a) for a in (x, prev_h, params["W_xh"], params["W_hh"], b, next_h, dnext_h)))


def _step_model(D: int, H: int) -> RNN:
    """The one-step model a step function is checked in (biases on: next_h carries b)."""
    return RNN(steps=1, input_size=D, hidden_size=H, output_size=2, loss_at="all", h0="input", biases=True)


def _split_step(output: object) -> dict[str, np.ndarray]:
    if isinstance(output, Mapping):
        unknown = [k for k in output if k not in _STEP_OUTPUTS]
        if unknown:
            raise _Bad(f"returned unknown keys {unknown} (expected {', '.join(_STEP_OUTPUTS)})")
        items = dict(output)
    elif isinstance(output, (tuple, list)) and len(output) in (4, 5):
        items = dict(zip(_STEP_OUTPUTS, output))
    else:
        raise _Bad("must return (dx, dprev_h, dWx, dWh) or (dx, dprev_h, dWx, dWh, db)")
    missing = [k for k in _STEP_OUTPUTS[:4] if k not in items]
    if missing:
        raise _Bad(f"returned no {', '.join(missing)}")
    try:
        return {k: np.asarray(v, dtype=np.float64) for k, v in items.items()}
    except (TypeError, ValueError) as err:
        raise _Bad(f"returned something that is not an array of numbers ({err})") from None


def _step_truth(case: StepCase) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """jax's (and, when small, sympy's) vector-Jacobian products of dnext_h through one step, per output."""
    N, D = case.x.shape
    H = case.Wh.shape[0]
    model = _step_model(D, H)
    leaves = {
        Ref("W_xh"): np.broadcast_to(case.Wx, (N, D, H)),
        Ref("W_hh"): np.broadcast_to(case.Wh, (N, H, H)),
        Ref("W_hy"): np.zeros((N, H, 2)),
        Ref("b_h"): np.broadcast_to(case.b, (N, 1, H)),
        Ref("b_y"): np.zeros((N, 1, 2)),
        Ref("x", 1): case.x.reshape(N, 1, D),
        Ref("y", 1): np.full((N, 1, 2), 0.5),
        Ref("h", 0): case.prev_h.reshape(N, 1, H),
    }
    leaves = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in leaves.items()}
    padded, pleaves = _embed(model, leaves)
    numeric = _numeric(padded)
    h1 = Ref("h", 1)
    sym = _symbolic(model) if _with_sympy(model) else None
    values = sym.forward_values(leaves) if sym is not None else None
    jax_out: dict[str, np.ndarray] = {}
    sym_out: dict[str, np.ndarray] = {}
    for key, name in _STEP_NAMES.items():
        ref = _diagnosis_target(name, 1)
        r, c = model.shape(ref)
        jac = np.asarray(numeric.partial(h1, ref, pleaves))  # (N, Hp, rp, cp) (padded dims are ≥ 4: never squeezed)
        jac = jac.reshape(N, jac.shape[1], *padded.shape(ref))[:, :H, :r, :c]
        jax_out[key] = _contract(key, case.dnext_h, jac)
        if sym is not None:
            s = np.asarray(sym.partial(h1, ref).evaluate(values), dtype=np.float64).reshape(N, H, r, c)
            sym_out[key] = _contract(key, case.dnext_h, s)
            _cross_check(f"∂h_1/∂{ref} (one step)", model, s, jac)
    return jax_out, (sym_out if sym is not None else None)


def _contract(key: str, upstream: np.ndarray, jac: np.ndarray) -> np.ndarray:
    """Σ_i upstream[n, i] · ∂h[n, i]/∂(·): per row for dx, dprev_h; summed over the rows for the weights and db."""
    per_row = np.einsum("ni,nirc->nrc", upstream, jac)
    if key in ("dx", "dprev_h"):
        return per_row[:, 0, :]
    total = per_row.sum(axis=0)
    return total[0] if key == "db" else total


def _check_step(step_fn: StepFn, case: StepCase, rtol: float, atol: float) -> _Failure | None:
    args = (case.dnext_h, case.x, case.prev_h, case.Wx, case.Wh, case.next_h)
    output = step_fn(*(np.array(a) for a in args))
    expected_shapes = {
        "dx": case.x.shape, "dprev_h": case.prev_h.shape, "dWx": case.Wx.shape, "dWh": case.Wh.shape, "db": case.b.shape,
    }
    try:
        grads = _split_step(output)
        for key, arr in grads.items():
            want = expected_shapes[key]
            if arr.shape != want and _squeeze(arr.shape) != _squeeze(want):
                raise _Bad(f"returned {key} of shape {arr.shape}, expected {want}")
            grads[key] = arr.reshape(want)
    except _Bad as bad:
        return _Failure(case, broken=f"step_fn {bad}")
    jax_out, sym_out = _step_truth(case)
    wrong = []
    for key, arr in grads.items():

        def entry_of(e: tuple[int, ...], key: str = key) -> str:
            return f"{key}[{', '.join(map(str, e))}]"

        w = _compare(
            _STEP_NAMES[key], key, arr, jax_out[key], None if sym_out is None else sym_out[key], rtol, atol,
            entry_of, lambda e: 1,
        )
        if w is not None:
            wrong.append(w)
    if not wrong:
        return None
    by_name = {_STEP_NAMES[k]: v for k, v in grads.items()}
    return _Failure(case, tuple(wrong), yours=by_name, truth={_STEP_NAMES[k]: v for k, v in jax_out.items() if k in grads})


def _stray_batch_factor(failure: _Failure, n: int, rtol: float, atol: float) -> dict[str, str]:
    """The step gradients that are the truth ÷N or ×N (N the minibatch size) while another gradient is right."""
    known: dict[str, str] = {}
    if failure.yours is None or failure.truth is None or n < 2:
        return known
    close = lambda a, b: bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))  # noqa: E731
    for w in failure.wrong:
        mine, true = failure.yours[w.name], failure.truth[w.name]
        for f, what in ((1.0 / n, f"the mean over the minibatch of {n}"), (float(n), f"{n} × the sum over the minibatch")):
            if close(mine, f * true):
                op = f"division by {n}" if f < 1 else f"multiplication by {n}"
                known[w.name] = (
                    f"{w.label} is {what} where dnext_h already carries the loss's reduction (the gradients of a step are"
                    f" sums over the minibatch): a stray {op} [reduction]"
                )
    return known


def assert_step_gradients_match(
    step_fn: StepFn,
    backward_step: Any = None,
    model: RNN | SearchStrategy[RNN] | None = None,
    *,
    names: Mapping[str, str] | str | None = None,
    batch: int | tuple[int, ...] | None = (1, 2, 3),
    reduction: Literal["sum", "mean"] = "sum",
    inputs: InputKind = "dense",
    vocab: int | None = None,
    dtype: str = "float64",
    max_examples: int = 100,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int | None = None,
) -> None:
    """Check a single-step backward pass, with your own forward step building the cache.

    ``assert_step_gradients_match(forward_step, backward_step, model, ...)``:
    ``forward_step(params, x, prev_h)`` returns ``(next_h, cache)`` and
    ``backward_step(dnext_h, cache)`` returns ``(dx, dprev_h, dW_xh, dW_hh,
    db_h)`` (CS231n's order; no ``db_h`` without biases) or a dict (keys as in
    :func:`assert_backward_match`: ``names="cs231n"`` for ``dWx, dWh, db``).
    ``params`` holds ``W_xh``, ``W_hh`` (and ``b_h``) in your names; with a
    batch (by default N from 1..3) row arrays are ``x`` (N, D), ``prev_h``
    and ``next_h`` (N, H), column arrays (D, N) and (H, N). CS231n's
    functions pass with one line each::

        forward_step = lambda p, x, h: rnn_step_forward(x, h, p["Wx"], p["Wh"], p["b"])
        assert_step_gradients_match(forward_step, rnn_step_backward, models(biases=True), names="cs231n")

    This is :func:`assert_backward_match` for one step (T = 1; the model's
    activation, layout and biases; ``h_0 = prev_h``, ``h_1 = next_h``;
    ``reduction="mean"`` for parameter gradients averaged over the batch).

    The older form ``assert_step_gradients_match(step_fn, model)`` still
    works: ``step_fn(dnext_h, x, prev_h, Wx, Wh, next_h)`` (row vectors,
    tanh, ``next_h = tanh(x @ Wx + prev_h @ Wh + b)``) returns ``(dx,
    dprev_h, dWx, dWh)`` or with ``db``, or a dict with those keys; its
    tolerances default to 1e-6 and 1e-8.
    """
    __tracebackhide__ = True
    if callable(backward_step):
        if not callable(step_fn):
            raise InvalidArgumentError(f"forward_step must be callable, not {type(step_fn).__name__}", hint="pass your forward step")
        if reduction not in ("sum", "mean"):
            raise InvalidArgumentError(f"reduction = {reduction!r} is invalid for a step", hint="use 'sum' or 'mean' (÷N)")
        options = _options(inputs=inputs, vocab=vocab, batch=batch, dtype=dtype, reduction=reduction)
        adapter = _Adapter(names, None, None, None, options)
        strategy = model if model is not None else models()
        if isinstance(strategy, RNN):
            strategy = strategy.replace(steps=1)
        elif isinstance(strategy, SearchStrategy):
            strategy = strategy.map(lambda m: m.replace(steps=1) if isinstance(m, RNN) else m)
        _run_backward_check(
            _step_layer(step_fn, backward_step, adapter, options.batched), strategy, options,
            "assert_step_gradients_match()", max_examples, rtol, atol, seed,
            suffix=" (read h_1 as next_h, h_0 as prev_h, x_1 as x; dnext_h = dL/dh_1)",
        )
        return
    if model is None:
        model = backward_step
    _legacy_step_check(step_fn, model, max_examples, 1e-6 if rtol is None else rtol, 1e-8 if atol is None else atol, seed)


def _legacy_step_check(step_fn: StepFn, model: Any, max_examples: int, rtol: float, atol: float, seed: int | None) -> None:
    """``assert_step_gradients_match(step_fn, model)``: the one-function form of CS231n's step backward."""
    __tracebackhide__ = True
    if not callable(step_fn):
        raise InvalidArgumentError(f"step_fn must be callable, not {type(step_fn).__name__}", hint="pass your step function")
    strategy = _step_cases(_model_strategy(model, "assert_step_gradients_match()"))
    _validate_run(max_examples, rtol, atol, seed)
    failure = _run(strategy, lambda case: _check_step(step_fn, case, rtol, atol), max_examples, seed)
    if failure is None:
        return
    diagnoses: list[str] = []
    if failure.wrong:
        D, H = failure.case.Wx.shape
        diag_model = _step_model(D, H)

        def call(leaves: Mapping[Ref, np.ndarray], p: int) -> dict[str, np.ndarray]:
            upstream = _upstream(diag_model, p)
            x = leaves[Ref("x", 1)][p]
            prev_h = leaves[Ref("h", 0)][p]
            Wx, Wh = leaves[Ref("W_xh")][p], leaves[Ref("W_hh")][p]
            next_h = np.tanh(x @ Wx + prev_h @ Wh + leaves[Ref("b_h")][p])
            grads = _split_step(step_fn(upstream, x.copy(), prev_h.copy(), Wx.copy(), Wh.copy(), next_h))
            return {_STEP_NAMES[k]: v.reshape(diag_model.shape(_diagnosis_target(_STEP_NAMES[k], 1))) for k, v in grads.items()}

        known = _stray_batch_factor(failure, failure.case.x.shape[0], rtol, atol)
        diagnoses = _diagnose(diag_model, failure.wrong, call, rtol, atol, known=known)
        diagnoses = [
            d + " (read h_1 as next_h, h_0 as prev_h, x_1 as x; dnext_h = dL/dh_1)" if "[" in d and "[reduction]" not in d else d
            for d in diagnoses
        ]
    raise AssertionError(_report(failure, diagnoses, rtol, atol)) from None


def _upstream(model: RNN, p: int) -> np.ndarray:
    """dL/dh_1 (1, H) at the diagnosis point ``p`` of the one-step model: the upstream gradient a step function gets."""
    from .truth import truth_for

    truth = truth_for(model)
    return np.asarray(truth.jacobian(L_TOTAL, Ref("h", 1)), dtype=np.float64)[p].reshape(1, model.hidden_size)
