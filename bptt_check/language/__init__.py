"""The expression language: plain and LaTeX text parsed safely into a typed, shaped AST.

Entry points::

    parse(text, model, notation=None, syntax="auto") -> Parsed
    parse_target(text, model, notation=None, syntax="auto") -> Target
    to_plain(expr) / to_latex(expr) -> str
    Notation.from_table({...}), Notation.SEED, Notation.TEXTBOOK, Notation.MINCHAR,
    Notation.named("textbook")

Pipeline: :mod:`.parser` (limit pre-checks; :mod:`.lexer` tokens → lark LALR
with ``expression.lark``) → :mod:`.resolve` (names via :mod:`.names`, sums,
shapes, chains → :mod:`.ast`). No user text is ever evaluated: numbers become
:class:`fractions.Fraction` from their digits, and functions come from a
whitelist. Every failure is a :class:`~bptt_check.errors.BpttCheckError`.
"""

from __future__ import annotations

from typing import Literal

from ..errors import ConfigError, ExpressionError, ParseError
from ..model import RNN, Target
from .ast import (
    FUNCTIONS,
    Apply,
    Binary,
    Call,
    Chain,
    Element,
    Expr,
    Name,
    Neg,
    Number,
    Parsed,
    Partial,
    Power,
    Transpose,
    children,
    walk,
)
from .names import BUILTIN_NAMES, Names, NameSpec, Notation, is_builtin_notation, suggest
from .parser import Syntax, detect_syntax, parse_raw, precheck
from .printer import format_number, partial_text, to_latex, to_plain
from .resolve import Resolver, fmt_shape

__all__ = [
    "parse",
    "parse_target",
    "target_of",
    "to_plain",
    "to_latex",
    "partial_text",
    "Notation",
    "BUILTIN_NAMES",
    "is_builtin_notation",
    "detect_syntax",
    "format_number",
    "fmt_shape",
    "suggest",
    "FUNCTIONS",
    "Apply",
    "Binary",
    "Call",
    "Chain",
    "Element",
    "Expr",
    "Name",
    "NameSpec",
    "Neg",
    "Number",
    "Parsed",
    "Partial",
    "Power",
    "Transpose",
    "children",
    "walk",
]

SyntaxChoice = Literal["auto", "plain", "latex"]


def _run(text: str, model: RNN, notation: Notation | str | None, syntax: str, allow_tensor: bool) -> Parsed:
    if not isinstance(model, RNN):
        raise ConfigError(f"expected an RNN model, not {type(model).__name__}")
    if isinstance(notation, str):
        notation = Notation.named(notation)  # a built-in notation by name: "textbook"
    if notation is not None and not isinstance(notation, Notation):
        raise ConfigError(
            f"notation must be a Notation, not {type(notation).__name__}",
            hint="use Notation.from_table({...}) or a built-in name: " + ", ".join(BUILTIN_NAMES),
        )
    if syntax not in ("auto", "plain", "latex"):
        raise ConfigError(f"syntax = {syntax!r} is invalid", hint="use 'auto', 'plain' or 'latex'")
    text = precheck(text)
    chosen: Syntax = detect_syntax(text) if syntax == "auto" else syntax  # type: ignore[assignment]
    names = Names(model, notation or Notation(), text)
    raw = parse_raw(text, chosen, names)
    resolver = Resolver(model, names, text, chosen == "latex", raw.payloads)
    expr, lhs = resolver.top(raw.tree, allow_tensor=allow_tensor)
    repairs: tuple[tuple[str, str, Parsed], ...] = ()
    if resolver.reversed:
        fixed = Resolver(model, names, text, chosen == "latex", raw.payloads, transpose_reversed=True)
        fixed_expr, fixed_lhs = fixed.top(raw.tree, allow_tensor=allow_tensor)
        message = "; ".join(f"multiplies {a} by {b} where its transpose belongs: ({a})ᵀ {b}" for a, b in resolver.reversed)
        message += " (a Jacobian times a gradient: the chain rule for column vectors transposes the Jacobian)"
        repairs = (("missing_transpose", message, Parsed(expr=fixed_expr, lhs=fixed_lhs, syntax=chosen, text=text)),)
    if not resolver.ambiguous:
        return Parsed(expr=expr, lhs=lhs, syntax=chosen, text=text, repairs=repairs)
    # Each node name before brackets that reads both ways, read the other way (check both).
    ambiguous = tuple(resolver.ambiguous)
    flip = frozenset(a.bracket for a in ambiguous)
    other = None
    try:
        again = Resolver(model, names, text, chosen == "latex", raw.payloads, flip=flip)
        other_expr, other_lhs = again.top(raw.tree, allow_tensor=allow_tensor)
        other = Parsed(expr=other_expr, lhs=other_lhs, syntax=chosen, text=text)
    except ExpressionError:
        pass  # the other reading breaks elsewhere (a shape further out): only the rule's reading stands
    return Parsed(
        expr=expr, lhs=lhs, syntax=chosen, text=text, ambiguous=ambiguous if other else (), other=other, repairs=repairs
    )


def parse(
    text: str,
    model: RNN,
    *,
    notation: Notation | str | None = None,
    syntax: SyntaxChoice = "auto",
) -> Parsed:
    """Parse an expression (or ``lhs = rhs``) into the typed, shaped AST.

    ``notation`` is a :class:`Notation` or a built-in one's name (``"textbook"``).

    ``syntax="auto"`` reads LaTeX when the text has a backslash (or a ``$``).
    Raises a :class:`~bptt_check.errors.ExpressionError` subclass (with the
    position) for anything that cannot be read, and
    :class:`~bptt_check.errors.ConfigError` for invalid arguments.
    """
    return _run(text, model, notation, syntax, allow_tensor=False)


def target_of(expr: Expr) -> Target | None:
    """The target an expression names — a partial (``dL/dW_hy[0,0]``), a name (``L_2``) or an element (``h_2[1]``) — or None."""
    if isinstance(expr, Partial) and expr.num_index is None:
        return Target(expr.num, expr.den, expr.den_index)
    if isinstance(expr, Name):
        return Target(expr.ref)
    if isinstance(expr, Element) and isinstance(expr.operand, Name):
        return Target(expr.operand.ref, None, expr.index)
    return None


def parse_target(
    text: str,
    model: RNN,
    *,
    notation: Notation | str | None = None,
    syntax: SyntaxChoice = "auto",
) -> Target:
    """Parse a target: a partial (``dL/dW_hy``, ``dL/dW_hy[0,0]``, ``\\frac{\\partial L}{\\partial W_{hy}^{00}}``)
    or a name (``L_2``, ``h_2[1]``)."""
    parsed = _run(text, model, notation, syntax, allow_tensor=True)
    hint = "a target is a partial (dL/dW_hy, dL/dW_hy[0,0]) or a name (L_2, h_2[1])"
    if parsed.lhs is not None:
        raise ParseError("a target cannot be an equation", text=text, position=0, hint=hint)
    expr = parsed.expr
    if isinstance(expr, Partial) and expr.num_index is not None:
        if model.shape(expr.num) != (1, 1):
            raise ParseError(
                "a target's numerator cannot be indexed",
                text=text,
                position=0,
                hint="differentiate a whole node (dyhat_1/dz_1) or a scalar (dL/dW_hy[0,0])",
            )
        return Target(expr.num, expr.den, expr.den_index)
    target = target_of(expr)
    if target is None:
        raise ParseError("this is not a target", text=text, position=0, hint=hint)
    return target
