"""What produced a result: the key a resumed run compares before it reuses a result.

A result is reused only when everything that could change it is unchanged:
the question (its file's content, and the question as finally used, with
the command line's overrides), the rubric, the model, the package version,
and the answer (its text and syntax). The key is written with every result
(``question`` and ``key`` in JSON lines, CSV and Gradescope's
``extra_data``) as one line of short SHA-256 digests::

    q=3f9a0c1d2e4b r=8c1e... m=51d2... v=0.1.0 a=77e0...

A record written without a key (by an older bptt-check) is never reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .question import Question

PARTS: tuple[tuple[str, str], ...] = (
    ("a", "the answer changed"),
    ("r", "the rubric changed"),
    ("m", "the model changed"),
    ("q", "the question file changed"),
    ("v", "bptt-check's version changed"),
)
"""The key's parts, in the order a reason for re-grading is given (the most specific first)."""

NO_KEY = "written without a key (an older bptt-check, or another tool)"
_DIGITS = 12


def _digest(data: Any) -> str:
    text = data if isinstance(data, str) else json.dumps(data, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:_DIGITS]


@dataclass(frozen=True)
class QuestionKey:
    """The part of the key shared by every answer to one question (see the module docstring)."""

    name: str
    question: str
    rubric: str
    model: str
    version: str

    @classmethod
    def of(cls, question: Question, file_text: str | None = None) -> "QuestionKey":
        """The key of ``question`` as used; ``file_text`` is its file's content (read from ``source`` if None)."""
        from .. import __version__

        if file_text is None and question.source:
            try:
                file_text = Path(question.source).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                file_text = None
        whole = {
            "file": file_text or "",
            "target": question.target,
            "title": question.title,
            "notation": question.notation or {},
        }
        return cls(
            name=question.name,
            question=_digest(whole),
            rubric=_digest(dataclasses.asdict(question.rubric)),
            model=_digest(repr(question.model)),
            version=__version__,
        )

    def for_answer(self, answer: str, syntax: str = "auto") -> str:
        """The full key of one answer (a line of ``part=digest`` fields)."""
        a = _digest({"answer": answer, "syntax": syntax})
        return f"q={self.question} r={self.rubric} m={self.model} v={self.version} a={a}"


def parse_key(key: str) -> dict[str, str]:
    """The parts of a key line (empty for a missing or unreadable key)."""
    parts: dict[str, str] = {}
    for field in key.split():
        name, sep, value = field.partition("=")
        if sep and name:
            parts[name] = value
    return parts


def why_not_reused(old_key: str, new_key: str) -> str | None:
    """None when a result with ``old_key`` may stand for ``new_key``; else the reason it may not."""
    old, new = parse_key(old_key), parse_key(new_key)
    if not old or any(part not in old for part, _ in PARTS):
        return NO_KEY
    for part, reason in PARTS:
        if old[part] != new.get(part):
            return reason
    return None


def reasons_line(reasons: Mapping[str, int]) -> str:
    """``"3 because the rubric changed, 1 because the answer changed"``."""
    return ", ".join(f"{n} because {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]))


__all__ = ["NO_KEY", "PARTS", "QuestionKey", "parse_key", "reasons_line", "why_not_reused"]
