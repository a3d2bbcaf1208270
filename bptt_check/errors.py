"""The exception family of bptt_check.

Every error a user can cause is a :class:`BpttCheckError`; the CLI prints its
one-line ``str`` (plus a caret line for errors with a position) and exits 2.
:class:`InternalError` is deliberately *not* one: it is a bug in bptt_check,
never the user's fault (the two truths disagreeing, or the exact and numeric
checks contradicting each other); the CLI exits 3 for it.

Each class carries ``code``, the diagnosis code an ``invalid`` result reports
when the error stops a check (:mod:`bptt_check.vocabulary` gives their meanings).
"""

from __future__ import annotations

from typing import ClassVar


class _Explained(Exception):
    """A message and an optional hint (what to try next), printed as one line."""

    code: ClassVar[str] = "invalid"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class BpttCheckError(_Explained):
    """Root of every error a user can cause (bad input, configuration or file); ``code`` ``invalid``."""


class ConfigError(BpttCheckError, ValueError):
    """An invalid model configuration, argument or command-line value (also a :class:`ValueError`)."""


class ExpressionError(BpttCheckError):
    """An expression that cannot be read: it carries the text and a 0-based position.

    ``str(err)`` is one line (message, column, hint); :meth:`caret` gives the
    two-line display of the text with a caret under the position.
    """

    def __init__(
        self,
        message: str,
        *,
        text: str = "",
        position: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.text = text
        self.position = position
        super().__init__(message, hint=hint)

    def __str__(self) -> str:
        where = f" at column {self.position + 1}" if self.position is not None else ""
        base = f"{self.message}{where}"
        return f"{base} (hint: {self.hint})" if self.hint else base

    def caret(self, width: int = 100) -> str:
        """The text (a window of at most ``width`` characters) and a caret under the position."""
        if self.position is None or not self.text:
            return ""
        text = self.text.replace("\n", " ").replace("\t", " ")
        pos = min(self.position, len(text))
        start = max(0, pos - width // 2)
        window = text[start : start + width]
        prefix = "…" if start > 0 else ""
        return f"  {prefix}{window}\n  {' ' * (len(prefix) + pos - start)}^"


class ParseError(ExpressionError):
    """The text does not follow the grammar."""

    code = "parse_error"


class UnknownNameError(ExpressionError):
    """A name that is neither canonical nor declared in the notation table."""

    code = "unknown_name"


class ShapeError(ExpressionError):
    """Operands whose shapes do not fit the operator."""

    code = "shape_error"


class ChainError(ExpressionError):
    """A product of partials whose factors do not link."""

    code = "chain_break"


class CircularError(ExpressionError):
    """An answer that uses the very partial it is asked for (``dL/dW_hh`` as the answer to dL/dW_hh)."""

    code = "circular"


class LimitError(ExpressionError):
    """Input beyond a safety limit (length, nesting, number or exponent size)."""

    code = "limit"


class FileFormatError(BpttCheckError):
    """A derivation, question, notation or submissions file that cannot be used."""


class BudgetExceeded(BpttCheckError):
    """A step ran past its time budget."""

    code = "time_budget"


class InternalError(_Explained, RuntimeError):
    """A bug in bptt_check, never a verdict: the truths disagree, or exact and numeric checks contradict.

    Not a :class:`BpttCheckError`: code that handles users' mistakes must not swallow it.
    """

    code = "internal_error"
