"""``bptt-check``: the command line.

Exit codes: 0 ok, 1 a check failed, 2 a usage or input error (one line on
stderr, never a traceback), 3 an internal error. A reader that stops early
(``bptt-check check … | head -1``) costs the rest of the output, never the
exit code: the verdict's code stands.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from typing import Any, Callable, NoReturn, Sequence

from .errors import BpttCheckError, ConfigError, ExpressionError, InternalError
from .options import (  # noqa: F401 (MODEL_OPTIONS, model_changes, notation_table: re-exported)
    MODEL_OPTIONS,
    add_model_options,
    model_changes,
    model_from,
    notation_from,
    notation_table,
    positive_int,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"bptt-check: error: {message} (hint: bptt-check {self.prog.split()[-1]} --help)\n")


# -- commands -------------------------------------------------------------------


def _cmd_check(args: argparse.Namespace) -> int:
    from .compare import Settings, check

    model = model_from(args)
    result = check(
        args.expr,
        args.target,
        model=model,
        notation=notation_from(args),
        syntax=args.syntax,
        settings=Settings(reading=args.reading, cite=args.cite, seed=args.seed),
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(result)
    if result.verdict == "invalid":
        return EXIT_USAGE
    return EXIT_OK if result.ok else EXIT_FAILED


PATHS_SHOWN = 12
"""Paths ``derive`` lists without ``--paths``: their number grows as T², their length as T."""


def _cmd_derive(args: argparse.Namespace) -> int:
    from . import formulas
    from .language import parse_target, partial_text, to_latex, to_plain
    from .language.ast import Partial, walk
    from .results import fold_steps

    model = model_from(args)
    target = parse_target(args.target, model, notation=notation_from(args))
    if target.wrt is None or target.index is not None or not target.of.is_loss:
        raise ConfigError(
            f"derive prints gradients of L or of one L_t with respect to a whole name, not {target}",
            hint="e.g. --target dL/dW_hh or --target dL_2/dh_1",
        )
    show = {"plain": to_plain, "latex": to_latex}.get(args.format, to_plain)
    of, wrt = target.of, target.wrt
    try:
        steps = formulas.per_step(model, of, wrt)
        every = formulas.paths(model, of, wrt)
    except ValueError as err:
        raise ConfigError(str(err), hint="derive covers parameters, x_t, h_t, a_t, z_t, yhat_t") from None
    latex = args.format == "latex"
    lines = [f"{target}   ({model.describe()})", "", "per step:"]
    # a run of more than a few steps that differ only in t is written once, in t (O(1) lines, not O(T))
    per_step = [(_step_of(label), show(e)) for label, e in steps]
    for first, last, text in fold_steps(per_step) if all(s is not None for s, _ in per_step) else []:
        lines.append(f"  [step {first}]  {text}" if first == last else f"  [step t = {first} … {last}]  {text}")
    if not all(s is not None for s, _ in per_step):
        lines += [f"  [{label}]  {show(e)}" for label, e in steps]
    if any(isinstance(node, Partial) for _, e in steps for node in walk(e)):
        lines += ["", "where (the BPTT recursion):"]
        rows = [(ref.step, f"{partial_text(of, ref, latex=latex)} = {show(e)}")
                for ref, e in formulas.hidden_recursion(model, of)]
        for first, last, text in fold_steps(rows):
            lines.append(f"  {text}" if first == last else f"  {text}   (t = {first} … {last})")
    shown = len(every) if args.paths or len(every) <= PATHS_SHOWN else PATHS_SHOWN // 2
    rest = len(every) - shown
    lines += ["", "per path:" if not rest else f"per path ({len(every)} paths; the first {shown} shown, --paths lists all):"]
    # only the shown paths are built: all of them would cost O(T²) trees and O(T³) text
    chosen = formulas.terms_of(model, of, wrt, every[:shown])
    for term in chosen:
        lines.append(f"  [{term.description}]  {show(term.expr)}")
    if rest:
        lines.append(f"  … {rest} more: {_path_summary(every[shown:])}")
    if args.format == "chain":
        lines += ["", "per path, as chains of partials (each ∂ read as the immediate derivative ∂⁺):"]
        for label, chain in formulas.chains(model, of, wrt, every[:shown]):
            lines.append(f"  [{label}]  {to_plain(chain)}")
        if rest:
            lines.append(f"  … {rest} more")
    print("\n".join(lines))
    return EXIT_OK


def _step_of(label: str) -> int | None:
    """The step of a per-step label ``step 12``; None for any other label."""
    word, _, number = label.partition(" ")
    return int(number) if word == "step" and number.isdigit() else None


def _path_summary(rest: Sequence[tuple[int, int, str]]) -> str:
    """The paths left out, by loss step: ``the paths of L_4 … L_256`` (numeric order)."""
    from .results import step_range

    losses = sorted({s for s, _, _ in rest})
    return f"the paths of {step_range([f'L_{s}' for s in losses])}"


def _cmd_selfcheck(args: argparse.Namespace) -> int:
    from .selfcheck import run_selfcheck

    configs = None
    if model_changes(args):
        configs = [model_from(args)]
    report = run_selfcheck(configs, points=args.points, seed=args.seed)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report)
    return EXIT_OK if report.ok else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(prog="bptt-check", description="Verify hand-derived backpropagation-through-time gradients.")
    p.add_argument("--version", action="version", version=f"bptt-check {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("check", help="check one answer against a target")
    c.add_argument("expr", help="the answer, plain or LaTeX (or 'lhs = rhs')")
    c.add_argument("--target", default=None, help="e.g. dL/dW_hy, dL/dW_hy[0,0], dL_2/dW_hh, L_2")
    c.add_argument("--syntax", choices=("auto", "plain", "latex"), default="auto")
    c.add_argument("--reading", choices=("total", "immediate", "either"), default="total",
                   help="which reading of ambiguous partials earns credit")
    c.add_argument("--cite", choices=("none", "state_gradients", "any"), default="any",
                   help="which true partials the answer may cite (graders default to state_gradients)")
    c.add_argument("--seed", type=int, default=0, help="seed of the sample points")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    add_model_options(c)
    c.set_defaults(run=_cmd_check)

    d = sub.add_parser("derive", help="print the true gradient, per step and per path")
    d.add_argument("--target", required=True, help="e.g. dL/dW_hh")
    d.add_argument("--format", choices=("plain", "latex", "chain"), default="plain")
    d.add_argument("--paths", action="store_true",
                   help=f"list every path (T(T+1)/2 of them for a weight; by default the first {PATHS_SHOWN // 2} past {PATHS_SHOWN})")
    add_model_options(d)
    d.set_defaults(run=_cmd_derive)

    s = sub.add_parser("selfcheck", help="sympy vs jax vs finite differences over many models")
    s.add_argument("--points", type=positive_int, default=3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", action="store_true")
    add_model_options(s, notation=False)
    s.set_defaults(run=_cmd_selfcheck)

    from .derivations import add_verify_command
    from .grading.command import add_grade_command

    add_verify_command(sub)
    add_grade_command(sub)
    return p


class _ClosedPipeGuard:
    """``sys.stdout`` during a command: once the reader has gone (``| head -1``), output is dropped.

    The command then runs to its end and returns its own exit code; without
    this, the first write after the reader left raised :class:`BrokenPipeError`
    and a failed check could exit 0. The file descriptor is pointed at
    ``/dev/null`` so that the interpreter's last flush cannot fail either.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.stream.fileno())
            finally:
                os.close(devnull)
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            pass  # not a real file (a test's capture): nothing is flushed at exit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    guard = _ClosedPipeGuard(sys.stdout)
    sys.stdout = guard  # type: ignore[assignment]
    try:
        code = _run(run, args)
        guard.flush()  # a reader gone before the buffered output was written shows here
        return code
    except BrokenPipeError:  # output that went around the guard: the verdict is unknown, so never success
        guard._drop()
        return EXIT_FAILED
    finally:
        sys.stdout = guard.stream


def _run(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """The command's exit code; errors become one line on stderr (2 for the user's, 3 for a bug)."""
    try:
        return run(args)
    except InternalError as err:
        print(f"bptt-check: internal error: {err}", file=sys.stderr)
        return EXIT_INTERNAL
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
