"""``bptt-check``: the command line (SPEC §6).

Exit codes: 0 ok, 1 a check failed, 2 a usage or input error (one line on
stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

from .errors import BpttCheckError, ConfigError, ExpressionError, FileFormatError, InternalError
from .model import RNN

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"bptt-check: error: {message} (hint: bptt-check {self.prog.split()[-1]} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _sizes(text: str) -> tuple[int, int, int]:
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


def _model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (default: the seed's, T=2, D=H=O=2, loss at all steps)")
    g.add_argument("--steps", type=_positive_int, default=None, metavar="N", help="number of steps T")
    g.add_argument("--sizes", type=_sizes, default=None, metavar="D,H,O", help="input, hidden, output sizes")
    g.add_argument("--loss-at", choices=("all", "last"), default=None, help="loss at every step or the last only")
    g.add_argument("--h0", choices=("input", "zeros"), default=None, help="h_0 a given input or zeros")
    g.add_argument("--biases", action="store_true", default=None, help="add biases b_h and b_y")
    g.add_argument("--notation", type=Path, default=None, metavar="FILE", help="TOML file with a [notation] table")


def _model_from(args: argparse.Namespace, base: RNN | None = None) -> RNN:
    model = base or RNN()
    changes: dict[str, Any] = {}
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.sizes is not None:
        changes["input_size"], changes["hidden_size"], changes["output_size"] = args.sizes
    if args.loss_at is not None:
        changes["loss_at"] = args.loss_at
    if args.h0 is not None:
        changes["h0"] = args.h0
    if args.biases:
        changes["biases"] = True
    return model.replace(**changes) if changes else model


def _notation_from(args: argparse.Namespace):  # -> Notation | None
    from .language import Notation

    if args.notation is None:
        return None
    path: Path = args.notation
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise FileFormatError(f"cannot read notation file {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise FileFormatError(f"{path}: not valid TOML: {err}") from None
    table = data.get("notation")
    if not isinstance(table, dict):
        raise FileFormatError(f"{path}: no [notation] table", hint="write e.g. [notation] then t = \"h\"")
    return Notation.from_table(table, source=str(path))


# -- commands -------------------------------------------------------------------


def _cmd_check(args: argparse.Namespace) -> int:
    from .compare import Settings, check

    model = _model_from(args)
    result = check(
        args.expr,
        args.target,
        model=model,
        notation=_notation_from(args),
        syntax=args.syntax,
        settings=Settings(reading=args.reading, seed=args.seed),
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(result)
    if result.verdict == "invalid":
        return EXIT_USAGE
    return EXIT_OK if result.ok else EXIT_FAILED


def _cmd_derive(args: argparse.Namespace) -> int:
    from . import formulas
    from .language import parse_target, to_latex, to_plain
    from .language.ast import Partial, walk

    model = _model_from(args)
    target = parse_target(args.target, model, notation=_notation_from(args))
    if target.wrt is None or target.index is not None or not target.of.is_loss:
        raise ConfigError(
            f"derive prints gradients of L or of one L_t with respect to a whole name, not {target}",
            hint="e.g. --target dL/dW_hh or --target dL_2/dh_1",
        )
    show = {"plain": to_plain, "latex": to_latex}.get(args.format, to_plain)
    of, wrt = target.of, target.wrt
    try:
        steps = formulas.per_step(model, of, wrt)
        paths = formulas.terms(model, of, wrt)
    except ValueError as err:
        raise ConfigError(str(err), hint="derive covers parameters, x_t, h_t, a_t, z_t, yhat_t") from None
    lines = [f"{target}   ({model.describe()})", "", "per step:"]
    lines += [f"  [{label}]  {show(e)}" for label, e in steps]
    if any(isinstance(node, Partial) for _, e in steps for node in walk(e)):
        lines += ["", "where (the BPTT recursion):"]
        for ref, e in formulas.hidden_recursion(model, of):
            lines.append(f"  d{of}/d{ref} = {show(e)}")
    lines += ["", "per path:"]
    for term in paths:
        lines.append(f"  [{term.description}]  {show(term.expr)}")
    if args.format == "chain":
        lines += ["", "per path, as chains of partials (each ∂ read as the immediate derivative ∂⁺):"]
        for label, chain in formulas.chains(model, of, wrt):
            lines.append(f"  [{label}]  {to_plain(chain)}")
    print("\n".join(lines))
    return EXIT_OK


def _cmd_selfcheck(args: argparse.Namespace) -> int:
    from .selfcheck import run_selfcheck

    configs = None
    if args.steps is not None or args.sizes is not None or args.loss_at is not None:
        configs = [_model_from(args)]
    report = run_selfcheck(configs, points=args.points, seed=args.seed)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report)
    return EXIT_OK if report.ok else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bptt-check", description="Verify hand-derived backpropagation-through-time gradients.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("check", help="check one answer against a target")
    c.add_argument("expr", help="the answer, plain or LaTeX (or 'lhs = rhs')")
    c.add_argument("--target", default=None, help="e.g. dL/dW_hy, dL/dW_hy[0,0], dL_2/dW_hh, L_2")
    c.add_argument("--syntax", choices=("auto", "plain", "latex"), default="auto")
    c.add_argument("--reading", choices=("total", "immediate", "either"), default="total",
                   help="which reading of ambiguous partials earns credit")
    c.add_argument("--seed", type=int, default=0, help="seed of the sample points")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    _model_options(c)
    c.set_defaults(run=_cmd_check)

    d = sub.add_parser("derive", help="print the true gradient, per step and per path")
    d.add_argument("--target", required=True, help="e.g. dL/dW_hh")
    d.add_argument("--format", choices=("plain", "latex", "chain"), default="plain")
    _model_options(d)
    d.set_defaults(run=_cmd_derive)

    s = sub.add_parser("selfcheck", help="sympy vs jax vs finite differences over many models")
    s.add_argument("--points", type=_positive_int, default=3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", action="store_true")
    _model_options(s)
    s.set_defaults(run=_cmd_selfcheck)

    from .derivations import add_verify_command
    from .grading import add_grade_command

    add_verify_command(sub)
    add_grade_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except InternalError as err:
        print(f"bptt-check: internal error: {err}", file=sys.stderr)
        return 3
    except ExpressionError as err:
        print(f"bptt-check: error: {err}", file=sys.stderr)
        if err.caret():
            print(err.caret(), file=sys.stderr)
        return EXIT_USAGE
    except BpttCheckError as err:
        print(f"bptt-check: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
