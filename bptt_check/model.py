"""The RNN being checked: its configuration, its named values and their shapes.

The seed's model is the row-vector convention, steps ``t = 1..T``::

    a_t    = x_t @ W_xh + h_{t-1} @ W_hh (+ b_h)
    h_t    = tanh(a_t)
    z_t    = h_t @ W_hy (+ b_y)
    yhat_t = softmax(z_t)
    L_t    = -sum_k y_t[k] * log(yhat_t[k])
    L      = sum of L_t over the loss steps

The options grow it along three axes:

* ``convention = "column"``: column vectors, ``a_t = W_xh x_t + W_hh h_{t-1} (+ b_h)``,
  ``z_t = W_hy h_t (+ b_y)`` (Goodfellow et al. §10.2.2, min-char-rnn). Every
  value is the transpose of its row-convention value: ``W_xh`` is H×D, ``x_t`` is D×1.
* ``activation``: ``tanh`` (h' = 1 - h**2), ``sigmoid`` (h' = h (1 - h)) or
  ``relu`` (h' = step(a), 1 where a > 0, else 0; sample points avoid the kink).
* ``loss``: ``cross_entropy`` with a softmax output (targets on the simplex), or
  ``squared_error`` with a linear output, ``yhat_t = z_t`` and
  ``L_t = 1/2 sum_k (yhat_t[k] - y_t[k])**2`` (targets any real vector).

With either loss ``dL_t/dz_t = yhat_t - y_t`` (the classic output error).

This module is pure Python: no sympy, no jax. The symbolic and numeric truths
(:mod:`bptt_check.symbolic`, :mod:`bptt_check.numeric`) are built from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator, Literal, Mapping

from .errors import ConfigError
from .vocabulary import (  # noqa: F401 (re-exported: the model, its options and the policies that read it)
    CITE_POLICIES,
    READING_POLICIES,
    CitePolicy,
    ReadingPolicy,
    cite_policy,
    did_you_mean,
    normalize_choice,
    reading_policy,
)

STATE_FAMILIES = ("a", "h", "z", "yhat", "L")
"""Families of the computed per-step nodes: what a state gradient ∂L/∂(node) may be taken with respect to."""


Reading = Literal["total", "immediate"]
"""How a partial is read: every path (total) or only paths through no other step's h (Pascanu et al.'s ∂⁺)."""

LossAt = Literal["all", "last"]
H0 = Literal["input", "zeros"]
Convention = Literal["row", "column"]
Activation = Literal["tanh", "sigmoid", "relu"]
Loss = Literal["cross_entropy", "squared_error"]

CONVENTIONS: tuple[str, ...] = ("row", "column")
ACTIVATIONS: tuple[str, ...] = ("tanh", "sigmoid", "relu")
LOSSES: tuple[str, ...] = ("cross_entropy", "squared_error")

PARAMETERS = ("W_xh", "W_hh", "W_hy", "b_h", "b_y")
"""Parameter families (no step)."""
STEP_INPUTS = ("x", "y")
"""Per-step inputs, steps 1..T."""
STEP_NODES = ("a", "h", "z", "yhat", "L")
"""Per-step nodes of the unrolled graph; ``h`` also has step 0 (the input h_0)."""
FAMILIES = PARAMETERS + STEP_INPUTS + STEP_NODES
NODE_FAMILIES = ("h", "yhat", "L")
"""Families whose node is one function of its pre-activation: ``h_t(u) = tanh(u)`` and so on (:meth:`RNN.node_function`)."""


@dataclass(frozen=True, order=True)
class Ref:
    """A named value of the unrolled graph: ``Ref("W_hh")``, ``Ref("h", 1)``, ``Ref("L")`` (the total loss).

    ``step`` is ``None`` for parameters and for the total loss ``L``.
    """

    family: str
    step: int | None = None

    def __str__(self) -> str:
        return self.family if self.step is None else f"{self.family}_{self.step}"

    @property
    def is_parameter(self) -> bool:
        return self.family in PARAMETERS

    @property
    def is_hidden(self) -> bool:
        """A hidden state ``h_t`` with t ≥ 1 (h_0 is an input)."""
        return self.family == "h" and (self.step or 0) >= 1

    @property
    def is_loss(self) -> bool:
        return self.family == "L"


L_TOTAL = Ref("L")


def squeeze_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop the unit dimensions: (1, 1) → (), (1, n) → (n,), (n, 1) → (n,), (r, c) → (r, c).

    Jacobians are laid out as ``squeeze(num) + squeeze(den)``, so ∂(scalar)/∂B has
    B's entries and ∂(vector)/∂(vector) is the matrix ``[i, j] = ∂A_i/∂B_j``.
    """
    return tuple(d for d in shape if d != 1)


def jacobian_shape(num: tuple[int, ...], den: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ∂A/∂B as an ordinary value, or the tensor shape when it has no matrix form.

    A scalar over anything is a gradient with B's (unsqueezed) shape; a vector
    over a vector is the n×m Jacobian; anything else is the tensor
    ``squeeze(A) + squeeze(B)`` (3 or 4 axes), usable only inside a chain.
    """
    sn, sd = squeeze_shape(num), squeeze_shape(den)
    if not sn:
        return den if len(den) == 2 else (1, 1)
    if not sd:
        return num if len(num) == 2 else (1, 1)
    if len(sn) == 1 and len(sd) == 1:
        return (sn[0], sd[0])
    return sn + sd


MODEL_KEYS = ("steps", "loss_at", "sizes", "h0", "biases", "convention", "activation", "loss")
"""The keys of a ``[model]`` table."""
SIZE_KEYS = {"input": "input_size", "hidden": "hidden_size", "output": "output_size"}
"""The keys of ``[model] sizes`` and the RNN fields they set."""


def _did_you_mean(word: str, known: tuple[str, ...]) -> str:
    guess = did_you_mean(word, known)
    return (f"{guess} " if guess else "") + "known keys: " + ", ".join(known)


def _whole(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} = {value!r} must be a whole number")
    return value


@dataclass(frozen=True)
class RNN:
    """An immutable configuration of the seed's RNN.

    Defaults are the seed's: T = 2 steps, D = H = O = 2, a loss at every step,
    ``h_0`` a given input, no biases, row vectors, tanh, softmax with cross-entropy.
    """

    steps: int = 2
    input_size: int = 2
    hidden_size: int = 2
    output_size: int = 2
    loss_at: LossAt = "all"
    h0: H0 = "input"
    biases: bool = False
    convention: Convention = "row"
    activation: Activation = "tanh"
    loss: Loss = "cross_entropy"

    def __post_init__(self) -> None:
        for field, choices in (("convention", CONVENTIONS), ("activation", ACTIVATIONS), ("loss", LOSSES)):
            value = getattr(self, field)
            if value not in choices:
                raise ConfigError(
                    f"model {field} = {value!r} is invalid", hint="use " + " or ".join(repr(c) for c in choices)
                )
        softmax = self.loss == "cross_entropy"
        for field, value, low in (
            ("steps", self.steps, 1),
            ("input_size", self.input_size, 1),
            ("hidden_size", self.hidden_size, 1),
            ("output_size", self.output_size, 2 if softmax else 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(
                    f"model {field} = {value!r} is invalid",
                    hint=f"{field} must be a whole number ≥ {low}"
                    + (" (softmax needs at least two classes)" if field == "output_size" and softmax else ""),
                )
        if self.steps > 1000 or max(self.input_size, self.hidden_size, self.output_size) > 64:
            raise ConfigError(
                f"model too large (steps={self.steps}, sizes={self.sizes})",
                hint="steps ≤ 1000 and every size ≤ 64",
            )
        if self.loss_at not in ("all", "last"):
            raise ConfigError(f"model loss_at = {self.loss_at!r} is invalid", hint="use 'all' or 'last'")
        if self.h0 not in ("input", "zeros"):
            raise ConfigError(f"model h0 = {self.h0!r} is invalid", hint="use 'input' or 'zeros'")
        if not isinstance(self.biases, bool):
            raise ConfigError(f"model biases = {self.biases!r} is invalid", hint="use true or false")

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> "RNN":
        """The model of a TOML ``[model]`` table (derivation and question files).

        Keys: ``steps``, ``loss_at``, ``sizes = { input, hidden, output }``,
        ``h0``, ``biases``; an unknown key or a wrong value is a
        :class:`ConfigError` naming it (``model.sizes.hidden``).
        """
        kwargs: dict[str, Any] = {}
        for key, value in table.items():
            if key not in MODEL_KEYS:
                raise ConfigError(f"unknown key model.{key}", hint=_did_you_mean(key, MODEL_KEYS))
            if key == "sizes":
                if not isinstance(value, Mapping):
                    raise ConfigError(
                        f"model.sizes = {value!r} must be a table",
                        hint="e.g. sizes = { input = 2, hidden = 2, output = 2 }",
                    )
                for name, size in value.items():
                    if name not in SIZE_KEYS:
                        raise ConfigError(f"unknown key model.sizes.{name}", hint="the sizes are input, hidden and output")
                    kwargs[SIZE_KEYS[name]] = _whole(f"model.sizes.{name}", size)
            elif key == "steps":
                kwargs[key] = _whole("model.steps", value)
            elif key in ("convention", "activation", "loss"):
                kwargs[key] = normalize_choice(value)
            else:
                kwargs[key] = value
        try:
            return cls(**kwargs)
        except ConfigError as err:
            message = err.message
            keys = {field: f"sizes.{name}" for name, field in SIZE_KEYS.items()}
            for field in ("steps", "loss_at", "h0", "biases", "convention", "activation", "loss", *keys):
                key = keys.get(field, field)
                shown = f"model.{key}" + (f" ({field})" if key != field else "")
                message = message.replace(f"model {field} =", f"{shown} =")
            raise ConfigError(f"[model]: {message}", hint=err.hint) from None

    # -- sizes and steps -------------------------------------------------

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(D, H, O)."""
        return (self.input_size, self.hidden_size, self.output_size)

    @property
    def loss_steps(self) -> tuple[int, ...]:
        """The steps whose loss enters L."""
        return tuple(range(1, self.steps + 1)) if self.loss_at == "all" else (self.steps,)

    def replace(self, **changes: object) -> "RNN":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    # -- names -----------------------------------------------------------

    def parameters(self) -> tuple[Ref, ...]:
        names = PARAMETERS if self.biases else PARAMETERS[:3]
        return tuple(Ref(n) for n in names)

    def inputs(self) -> tuple[Ref, ...]:
        """The given values: x_t and y_t for every step, and h_0 unless it is zeros."""
        refs = [Ref("x", t) for t in self.steps_range()] + [Ref("y", t) for t in self.steps_range()]
        if self.h0 == "input":
            refs.append(Ref("h", 0))
        return tuple(refs)

    def leaves(self) -> tuple[Ref, ...]:
        """Parameters and inputs: the values everything else is computed from."""
        return self.parameters() + self.inputs()

    def nodes(self) -> tuple[Ref, ...]:
        """The computed nodes in topological order, ending with the total loss L."""
        out: list[Ref] = []
        for t in self.steps_range():
            out += [Ref("a", t), Ref("h", t), Ref("z", t), Ref("yhat", t), Ref("L", t)]
        out.append(L_TOTAL)
        return tuple(out)

    def refs(self) -> tuple[Ref, ...]:
        """Every name of this model (h_0 included even when it is zeros)."""
        extra = (Ref("h", 0),) if self.h0 == "zeros" else ()
        return self.leaves() + extra + self.nodes()

    def steps_range(self) -> range:
        return range(1, self.steps + 1)

    def __contains__(self, ref: object) -> bool:
        return isinstance(ref, Ref) and self._valid(ref)

    def _valid(self, ref: Ref) -> bool:
        if ref.family in PARAMETERS:
            return ref.step is None and (self.biases or ref.family in PARAMETERS[:3])
        if ref == L_TOTAL:
            return True
        if ref.step is None:
            return False
        low = 0 if ref.family == "h" else 1
        return ref.family in FAMILIES and low <= ref.step <= self.steps

    @property
    def column(self) -> bool:
        """Column-vector convention (every value the transpose of its row-convention value)."""
        return self.convention == "column"

    def node_function(self, family: str) -> str:
        """The function producing a node from its pre-activation: ``h`` → the activation,
        ``yhat`` → ``softmax`` or ``identity``, ``L`` → ``cross_entropy`` or ``squared_error``."""
        if family == "h":
            return self.activation
        if family == "yhat":
            return "softmax" if self.loss == "cross_entropy" else "identity"
        if family == "L":
            return self.loss
        raise ConfigError(f"{family} is not a node computed by one function")

    def shape(self, ref: Ref) -> tuple[int, int]:
        """The matrix shape of a named value: row vectors are 1×n, W_xh is D×H; the column convention transposes every one."""
        if ref not in self:
            raise ConfigError(f"{ref} is not a name of this model (T={self.steps})")
        rows, cols = self._row_shape(ref)
        return (cols, rows) if self.column else (rows, cols)

    def _row_shape(self, ref: Ref) -> tuple[int, int]:
        D, H, O = self.sizes
        return {
            "W_xh": (D, H),
            "W_hh": (H, H),
            "W_hy": (H, O),
            "b_h": (1, H),
            "b_y": (1, O),
            "x": (1, D),
            "y": (1, O),
            "a": (1, H),
            "h": (1, H),
            "z": (1, O),
            "yhat": (1, O),
            "L": (1, 1),
        }[ref.family]

    def iter_refs(self, family: str) -> Iterator[Ref]:
        for ref in self.refs():
            if ref.family == family:
                yield ref

    def describe(self) -> str:
        D, H, O = self.sizes
        extras = []
        if self.biases:
            extras.append("biases")
        if self.h0 == "zeros":
            extras.append("h_0 = 0")
        if self.column:
            extras.append("column vectors")
        if self.activation != "tanh":
            extras.append(self.activation)
        if self.loss != "cross_entropy":
            extras.append("squared error, linear output")
        tail = f", {', '.join(extras)}" if extras else ""
        where = "every step" if self.loss_at == "all" else "the last step only"
        return f"T={self.steps}, D={D}, H={H}, O={O}, loss at {where}{tail}"


@dataclass(frozen=True)
class Target:
    """What an answer is checked against.

    A gradient target ``dL/dW_hy[0,0]`` has ``of = L``, ``wrt = W_hy`` and
    ``index = (0, 0)``; a forward target ``L_2`` or ``h_2[1]`` has ``wrt = None``.
    ``index`` is always (row, col) on the unsqueezed matrix shape.
    """

    of: Ref
    wrt: Ref | None = None
    index: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.of, Ref):
            raise ConfigError(f"Target.of = {self.of!r} is not a Ref", hint='e.g. Target(Ref("L"), Ref("W_hh"))')
        if self.wrt is not None and not isinstance(self.wrt, Ref):
            raise ConfigError(f"Target.wrt = {self.wrt!r} is not a Ref or None", hint='e.g. Ref("W_hh")')
        if self.index is not None:
            idx = self.index
            if (
                not isinstance(idx, tuple)
                or len(idx) != 2
                or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in idx)
            ):
                raise ConfigError(
                    f"Target.index = {idx!r} is not a (row, col) pair of whole numbers ≥ 0",
                    hint="indices are 0-based on the matrix shape, e.g. (0, 1)",
                )

    def validate(self, model: RNN) -> None:
        """Raise :class:`ConfigError` unless every name is one of ``model``'s and the index is inside the shape."""
        for role, ref in (("of", self.of), ("wrt", self.wrt)):
            if ref is not None and ref not in model:
                raise ConfigError(
                    f"target {self}: {ref} is not a name of this model ({model.describe()})",
                    hint=_name_hint(ref, model),
                )
        if self.index is not None:
            shape = model.shape(self.wrt if self.wrt is not None else self.of)
            if self.wrt is not None and squeeze_shape(model.shape(self.of)):
                raise ConfigError(
                    f"target {self}: an entry index needs a scalar numerator, and {self.of} is not one",
                    hint="index the numerator's value instead, or drop the index",
                )
            rows, cols = shape
            if not (self.index[0] < rows and self.index[1] < cols):
                raise ConfigError(
                    f"target {self}: index {self.index} is outside the {rows}×{cols} shape",
                    hint=f"indices are 0-based: rows 0..{rows - 1}, columns 0..{cols - 1}",
                )

    def __str__(self) -> str:
        idx = f"[{self.index[0]},{self.index[1]}]" if self.index is not None else ""
        if self.wrt is None:
            return f"{self.of}{idx}"
        return f"d{self.of}/d{self.wrt}{idx}"

    @property
    def is_gradient(self) -> bool:
        return self.wrt is not None

    def shape(self, model: RNN) -> tuple[int, ...]:
        """The shape an answer must have."""
        if self.index is not None:
            return (1, 1)
        if self.wrt is None:
            return model.shape(self.of)
        return jacobian_shape(model.shape(self.of), model.shape(self.wrt))


def _name_hint(ref: Ref, model: RNN) -> str:
    if ref.family in PARAMETERS:
        if ref.step is not None:
            return f"parameters have no step: Ref({ref.family!r})"
        return "this model has no biases (RNN(biases=True) adds b_h and b_y)"
    if ref.family not in FAMILIES:
        guess = did_you_mean(ref.family, FAMILIES)
        return (f"{guess} " if guess else "") + "families: " + ", ".join(FAMILIES)
    if ref.step is None:
        return f"{ref.family} needs a step, e.g. Ref({ref.family!r}, 1)"
    low = 0 if ref.family == "h" else 1
    return f"steps of {ref.family} run {low}..{model.steps} (T={model.steps})"
