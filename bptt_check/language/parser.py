"""Text → raw parse tree: the limit pre-checks, the lexer's token stream fed to lark's LALR parser.

The grammar (``expression.lark``) declares its terminals; the tokens come from
:class:`~bptt_check.language.lexer.Lexer`, passed to lark as the "text" of a
custom lexer that simply yields them. Tokens are produced lazily, so errors
are reported in text order: an unknown name is reported before a syntax error
that comes after it (the seed's 3(b) has both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Literal

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer as _LarkLexer

from ..errors import LimitError, ParseError
from .lexer import CLOSERS, OPENERS, Lexer, Tok
from .limits import MAX_NESTING, MAX_RUN, MAX_TEXT_LENGTH, MAX_TOKENS
from .names import Names

Syntax = Literal["plain", "latex"]
RawTree = Tree[Token]
"""A parse tree of ``expression.lark``: rule nodes over the lexer's tokens."""


class _TokenStream(_LarkLexer):
    """A lark lexer whose input is an iterator of ready-made tokens."""

    __future_interface__ = 2

    def __init__(self, lexer_conf: object) -> None:  # lark passes its lexer configuration
        pass

    def lex(self, lexer_state: Any, parser_state: Any) -> Iterator[Token]:
        yield from lexer_state.text


GRAMMAR_PATH = Path(__file__).with_name("expression.lark")


@lru_cache(maxsize=1)
def lark_parser() -> Lark:
    """The LALR parser of ``expression.lark``, built once, on first use.

    ``strict=True`` makes lark refuse any shift/reduce conflict: the grammar is
    unambiguous. ``cache=True`` keeps the LALR tables in a temporary file keyed
    by the grammar's hash, so a new process loads them (≈ 6 ms) instead of
    building them (≈ 0.1 s).
    """
    return Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        lexer=_TokenStream,
        strict=True,
        maybe_placeholders=False,
        cache=True,
    )

_DESCRIBE = {
    "NUMBER": "a number",
    "NAME": "a name",
    "NAME_CALL": "a name",
    "PARTIAL": "a partial",
    "FUNC_CALL": "a function",
    "FUNC_BARE": "a function",
    "SUM": "a sum",
    "PLUS": "+",
    "MINUS": "-",
    "ELEM_MUL": "*",
    "HADAMARD": "an elementwise product",
    "MAT_MUL": "a product",
    "DIV": "/",
    "POW": "**",
    "CARET": "^",
    "HPOW": "a power",
    "TRANSPOSE": "a transpose",
    "INDEX": "an index",
    "LPAR": "(",
    "RPAR": ")",
    "LBRACK": "[",
    "RBRACK": "]",
    "LBRACE": "{",
    "RBRACE": "}",
    "FRAC": r"\frac",
    "COMMA": ",",
    "EQUALS": "=",
    "$END": "the end of the text",
}


_RUN_LIMITED = {
    "PLUS": "signs",
    "MINUS": "signs",
    "TRANSPOSE": "transposes",
    "INDEX": "indices",
    "SUM": "sums",
    "FUNC_BARE": "functions",
}

@dataclass
class RawParse:
    """The raw tree and what the lexer attached to its tokens."""

    tree: RawTree
    payloads: dict[tuple[str, int], object] = field(default_factory=dict)


def detect_syntax(text: str) -> Syntax:
    """LaTeX when the text has a backslash (or a $ delimiter), else plain."""
    return "latex" if ("\\" in text or "$" in text) else "plain"


def precheck(text: object) -> str:
    """Refuse, cheaply and before anything else, what is not text or is beyond the limits."""
    if not isinstance(text, str):
        raise ParseError(f"an expression must be text, not {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH:
        raise LimitError(
            f"the expression is {len(text)} characters long",
            hint=f"at most {MAX_TEXT_LENGTH} characters",
        )
    if not text.strip():
        raise ParseError("the expression is empty", text=text, position=0)
    depth = 0
    for pos, ch in enumerate(text):
        if ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise LimitError(
                    f"brackets nest more than {MAX_NESTING} deep",
                    text=text,
                    position=pos,
                    hint="simplify the expression",
                )
        elif ch in ")]}":
            depth = max(0, depth - 1)
    return text


def parse_raw(text: str, syntax: Syntax, names: Names) -> RawParse:
    """Parse ``text`` (already prechecked) into a raw lark tree."""
    lexer = Lexer(text, latex=syntax == "latex", check_name=names.check, is_base=names.is_base)
    result = RawParse(tree=RawTree("single", []))
    last: list[Tok] = []

    def stream() -> Iterator[Token]:
        stack: list[Tok] = []
        tokens = run = 0
        run_type = ""
        for tok in lexer.tokens():
            tokens += 1
            if tokens > MAX_TOKENS:
                raise LimitError(
                    f"the expression has more than {MAX_TOKENS} tokens",
                    text=text,
                    position=tok.start,
                    hint="shorten the expression",
                )
            kind = _RUN_LIMITED.get(tok.type, tok.type)  # + and - are both signs: -+-+… is one run
            run = run + 1 if kind == run_type else 1
            run_type = kind
            if run > MAX_RUN and tok.type in _RUN_LIMITED:
                raise LimitError(
                    f"more than {MAX_RUN} {kind} in a row",
                    text=text,
                    position=tok.start,
                    hint="simplify the expression",
                )
            if tok.type in OPENERS:
                stack.append(tok)
            elif tok.type in CLOSERS:
                if not stack:
                    raise ParseError(
                        f"{tok.text} has no matching opening bracket",
                        text=text,
                        position=tok.start,
                        hint="remove it, or add the opening bracket it closes",
                    )
                if OPENERS[stack[-1].type] != tok.type:
                    opener = stack[-1]
                    raise ParseError(
                        f"{tok.text} does not match the {opener.text} it closes",
                        text=text,
                        position=tok.start,
                        hint=f"close the {opener.text} of column {opener.start + 1} first",
                    )
                stack.pop()
            if tok.payload is not None:
                result.payloads[(tok.type, tok.start)] = tok.payload
            last[:] = [tok]
            yield Token(
                tok.type,
                tok.text,
                start_pos=tok.start,
                line=1,
                column=tok.start + 1,
                end_line=1,
                end_column=tok.end + 1,
                end_pos=tok.end,
            )
        if stack:
            opener = stack[-1]
            raise ParseError(
                f"{opener.text} is never closed",
                text=text,
                position=opener.start,
                hint=f"add the matching {_DESCRIBE[OPENERS[opener.type]]}",
            )

    try:
        result.tree = lark_parser().parse(stream())  # the "text" is our token stream (see _TokenStream)
    except UnexpectedToken as err:
        raise _syntax_error(text, err, last[0] if last else None) from None
    except UnexpectedInput as err:  # pragma: no cover - the token stream makes this unreachable
        raise ParseError("unexpected input", text=text, position=getattr(err, "pos_in_stream", None)) from None
    return result


def _syntax_error(text: str, err: UnexpectedToken, last: Tok | None) -> ParseError:
    tok = err.token
    expected = {e for e in err.expected if e in _DESCRIBE}
    operand = {"NUMBER", "NAME", "LPAR", "PARTIAL"} & expected
    if tok.type == "$END" and last is None:
        return ParseError("the expression is empty", text=text, position=0)
    if tok.type == "$END":
        position = last.end if last is not None else len(text)
        hint = "it ends after an operator or an opening: finish the expression" if operand else None
        return ParseError("the expression ends too early", text=text, position=position, hint=hint)
    shown = str(tok) if len(str(tok)) <= 20 else str(tok)[:20] + "…"
    message = f"unexpected {_DESCRIBE.get(tok.type, tok.type)}"
    if tok.type not in ("$END",) and _DESCRIBE.get(tok.type, "") != shown:
        message += f" {shown!r}"
    if tok.type == "EQUALS":
        hint = "one = at most: lhs = rhs"
    elif tok.type == "INDEX":
        hint = "an index follows a name or a parenthesized expression: W_hy[0,0], (h_1 @ W_hy)[1]"
    elif tok.type == "TRANSPOSE":
        hint = "a transpose follows a name or a parenthesized expression: h_1.T, (x_1 @ W_xh).T"
    elif tok.type == "COMMA":
        hint = "a comma separates the arguments of outer(u, v) or ones(r, c), or the two indices [i,j]"
    elif tok.type in CLOSERS:
        hint = "something is missing before it"
    elif operand:
        hint = "a name, a number or a parenthesized expression is expected here"
    else:
        names = sorted({_DESCRIBE[e] for e in expected})
        hint = "expected " + ", ".join(names[:8]) if names else None
    return ParseError(message, text=text, position=tok.start_pos, hint=hint)
