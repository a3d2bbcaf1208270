"""The command-line options every command shares: the model options, ``--notation``, argparse types.

Commands defined outside :mod:`bptt_check.cli` (``verify`` in
:mod:`bptt_check.derivations`, ``grade`` in :mod:`bptt_check.grading.command`)
use these instead of importing the CLI, so the CLI sits on top of the
package and nothing below imports it.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import FileFormatError
from .model import ACTIVATIONS, CONVENTIONS, LOSSES, RNN, normalize_choice
from .vocabulary import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from .language import Notation

__all__ = [
    "MODEL_OPTIONS",
    "add_model_options",
    "choice",
    "model_changes",
    "model_from",
    "notation_from",
    "notation_table",
    "positive_int",
    "sizes",
]


def positive_int(text: str) -> int:
    """An argparse type: a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def sizes(text: str) -> tuple[int, int, int]:
    """An argparse type: ``D,H,O``, three whole numbers (the model validates their range)."""
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r} is not D,H,O (three sizes separated by commas, e.g. 2,2,2)")
    out = []
    for name, part in zip("DHO", parts):
        try:
            out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"size {name} = {part!r} in {text!r} is not a whole number") from None
    return out[0], out[1], out[2]


def choice(option: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    """An argparse type for a model option's value: dashes or underscores, any case (``cross-entropy``)."""
    names = [c.replace("_", "-") for c in choices]
    shown = ", ".join(names[:-1]) + " or " + names[-1]

    def convert(text: str) -> str:
        value = normalize_choice(text)
        if value not in choices:
            guess = did_you_mean(str(value).replace("_", "-"), names, quote=False)
            guess = f"{guess} " if guess else ""
            raise argparse.ArgumentTypeError(f"{text!r} is not a known {option}: {guess}use {shown}")
        return str(value)

    convert.__name__ = option  # argparse names the type in its messages
    return convert


MODEL_OPTIONS = ("steps", "sizes", "loss_at", "h0", "biases", "convention", "activation", "loss")
"""The ``argparse`` destinations of the model options (:func:`model_changes`)."""


def add_model_options(p: argparse.ArgumentParser, *, notation: bool = True, overrides: str = "") -> None:
    """Add the model options (and ``--notation``) to a command; ``overrides`` names what they override."""
    title = "model (default: the seed's: T=2, D=H=O=2, loss at every step, row vectors, tanh, cross-entropy)"
    if overrides:
        title = f"model (each option given overrides the {overrides})"
    g = p.add_argument_group(title)
    g.add_argument("--steps", type=positive_int, default=None, metavar="N", help="number of steps T")
    g.add_argument("--sizes", type=sizes, default=None, metavar="D,H,O", help="input, hidden, output sizes")
    g.add_argument("--loss-at", choices=("all", "last"), default=None, help="loss at every step or the last only")
    g.add_argument("--h0", choices=("input", "zeros"), default=None, help="h_0 a given input or zeros")
    g.add_argument("--biases", action=argparse.BooleanOptionalAction, default=None,
                   help="biases b_h and b_y (on, or off with --no-biases)")
    g.add_argument("--convention", type=choice("convention", CONVENTIONS), default=None, metavar="row|column",
                   help="row vectors (x_t @ W_xh, the seed's) or column vectors (W_xh x_t, Goodfellow's, min-char-rnn's)")
    g.add_argument("--activation", type=choice("activation", ACTIVATIONS), default=None,
                   metavar="tanh|sigmoid|relu", help="the hidden activation")
    g.add_argument("--loss", type=choice("loss", LOSSES), default=None, metavar="cross-entropy|squared-error",
                   help="softmax with cross-entropy, or a linear output with 1/2 squared error")
    if notation:
        g.add_argument("--notation", default=None, metavar="FILE|NAME",
                       help="a TOML file with a [notation] table, or a built-in notation: seed, textbook"
                            " (Goodfellow's U V W b c o), min-char-rnn (Wxh Whh Why bh by hs ps ys)")


def model_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The RNN fields the model options given on the command line set (none given: empty)."""
    changes: dict[str, Any] = {}
    if getattr(args, "steps", None) is not None:
        changes["steps"] = args.steps
    if getattr(args, "sizes", None) is not None:
        changes["input_size"], changes["hidden_size"], changes["output_size"] = args.sizes
    for name in ("loss_at", "h0", "biases", "convention", "activation", "loss"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    return changes


def model_from(args: argparse.Namespace, base: RNN | None = None) -> RNN:
    """``base`` (default: the seed's model) with the model options given on the command line applied."""
    model = base or RNN()
    changes = model_changes(args)
    return model.replace(**changes) if changes else model


def notation_table(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``[notation]`` table ``--notation`` asks for: a built-in name as ``{"use": name}``, or a file's table."""
    from .language import is_builtin_notation

    given: str | None = getattr(args, "notation", None)
    if given is None:
        return None
    if is_builtin_notation(given):
        return {"use": given}
    path = Path(given)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        hint = None
        if not path.suffix:
            from .language import BUILTIN_NAMES

            guess = did_you_mean(given.lower(), BUILTIN_NAMES, quote=False)
            guess = f"{guess} " if guess else ""
            hint = guess + "--notation takes a TOML file or a built-in notation: " + ", ".join(BUILTIN_NAMES)
        raise FileFormatError(f"cannot read notation file {path}: {err.strerror}", hint=hint) from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise FileFormatError(f"{path}: not valid TOML: {err}") from None
    table = data.get("notation")
    if not isinstance(table, dict):
        raise FileFormatError(f"{path}: no [notation] table", hint="write e.g. [notation] then t = \"h\"")
    return table


def notation_from(args: argparse.Namespace) -> "Notation | None":
    """The :class:`~bptt_check.language.Notation` ``--notation`` asks for, or None."""
    from .language import Notation, is_builtin_notation

    table = notation_table(args)
    if table is None:
        return None
    return Notation.from_table(table, source="" if is_builtin_notation(args.notation) else str(args.notation))
