"""When two answers are the same answer: the key under which identical answers share one check.

Below :mod:`~bptt_check.grading.grader` and :mod:`~bptt_check.grading.batch`,
which both group answers by it.
"""

from __future__ import annotations

import re

CacheKey = tuple[str, ...]


def effective_syntax(text: str, syntax: str) -> str:
    """The syntax an answer is read in: ``auto`` is the language's own choice."""
    if syntax == "auto":
        from ..language import detect_syntax

        return detect_syntax(text)
    return syntax


_SPACE_RUN = re.compile(r"(?<!\\)\s+")


def normalize(text: str) -> str:
    """Collapse every run of whitespace to one space, and strip the ends.

    Whitespace separates tokens and means nothing more, so answers that differ
    only in spacing or line breaks read the same. Whitespace right after a
    backslash is left alone (``\\ `` is a LaTeX command of its own), and so
    is a text with a ``%`` and a line break (a LaTeX comment ends at the line).
    """
    if "%" in text and "\n" in text:
        return text
    return _SPACE_RUN.sub(" ", text).strip()


def cache_key(text: str, syntax: str) -> CacheKey:
    """The key under which identical answers share one check."""
    return (effective_syntax(text, syntax), normalize(text))
