"""The result of grading one answer, and the summary of a batch."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..results import VERDICTS, Diagnosis, Verdict


@dataclass(frozen=True)
class GradeResult:
    """One graded answer.

    ``score`` is in points, in [0, ``max_score``]; ``message`` is the
    student-facing text (the check's human report, headed by the points);
    ``seconds`` is the time this answer took (≈ 0 for a duplicate graded
    once). ``internal_error`` marks a bug in bptt_check (never the student's
    fault): the answer is ``invalid`` with the error's message, and the batch
    summary says so loudly.
    """

    id: str
    verdict: Verdict
    score: float
    max_score: float
    diagnoses: tuple[Diagnosis, ...] = ()
    message: str = ""
    seconds: float = 0.0
    internal_error: bool = False

    @property
    def codes(self) -> tuple[str, ...]:
        """The diagnosis codes, in order."""
        return tuple(d.code for d in self.diagnoses)

    @property
    def full_credit(self) -> bool:
        return self.score >= self.max_score

    def _repr_html_(self) -> str:
        """A self-contained HTML display for notebooks (user text escaped; no scripts, no CDN)."""
        from ..display import grade_result_html

        return grade_result_html(self)

    def _repr_markdown_(self) -> str:
        """A Markdown display for notebooks (math as ``$…$`` where the target is one of the package's spellings)."""
        from ..display import grade_result_markdown

        return grade_result_markdown(self)

    def __str__(self) -> str:
        head = f"[{self.id}] " if self.id else ""
        return f"{head}{self.score:g}/{self.max_score:g}  {self.message}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "verdict": self.verdict,
            "score": self.score,
            "max_score": self.max_score,
            "diagnoses": [d.to_dict() for d in self.diagnoses],
            "message": self.message,
            "seconds": round(self.seconds, 6),
        }
        if self.internal_error:
            out["internal_error"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GradeResult":
        """The inverse of :meth:`to_dict` (raises ``KeyError``/``TypeError``/``ValueError`` on a bad record)."""
        verdict = data["verdict"]
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}")
        diagnoses = []
        for d in data.get("diagnoses", ()):
            if isinstance(d, str):
                diagnoses.append(Diagnosis(d, ""))
            else:
                diagnoses.append(Diagnosis(str(d["code"]), str(d.get("message", ""))))
        return cls(
            id=str(data["id"]),
            verdict=verdict,
            score=float(data["score"]),
            max_score=float(data["max_score"]),
            diagnoses=tuple(diagnoses),
            message=str(data.get("message", "")),
            seconds=float(data.get("seconds", 0.0)),
            internal_error=bool(data.get("internal_error", False)),
        )


@dataclass(frozen=True)
class Summary:
    """Counts, the most common mistakes, the mean score and the speed of a grading run.

    ``total`` counts every result in the output (``resumed`` of them reused
    from an earlier run); ``graded`` is what this run graded, ``unique`` how
    many of those needed a check of their own, ``refused`` how many got a
    result without a check (a malformed row, an empty or too long answer);
    the rest were duplicates of a checked answer. ``bad_rows`` counts the
    malformed rows (each an ``invalid`` result), ``regraded`` the earlier
    results not reused, by reason, and ``kept_others`` the earlier results
    of ids not in this run's submissions (kept in the output).
    ``answers_per_second`` is ``graded / seconds``.
    """

    question: str
    total: int
    graded: int
    resumed: int
    unique: int
    bad_rows: int
    by_verdict: Mapping[str, int]
    by_diagnosis: Mapping[str, int]
    common_mistakes: tuple[tuple[str, str, int], ...]
    """(code, message, count), most common first, among answers short of full credit."""
    mean_score: float
    max_score: float
    seconds: float
    timeouts: int = 0
    internal_errors: tuple[str, ...] = ()
    """Ids of answers whose check hit a bug in bptt_check."""
    refused: int = 0
    regraded: Mapping[str, int] = field(default_factory=dict)
    kept_others: int = 0

    @property
    def duplicates(self) -> int:
        """Answers of this run that shared another answer's check."""
        return max(0, self.graded - self.unique - self.refused)

    @property
    def answers_per_second(self) -> float:
        return self.graded / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def of(
        cls,
        results: Iterable[GradeResult],
        *,
        question: str,
        max_score: float,
        graded: int,
        unique: int,
        seconds: float,
        refused: int = 0,
        bad_rows: int = 0,
        regraded: Mapping[str, int] | None = None,
        kept_others: int = 0,
        mistakes: int = 5,
    ) -> "Summary":
        rows = list(results)
        verdicts = Counter(r.verdict for r in rows)
        codes: Counter[str] = Counter()
        mistakes_seen: Counter[tuple[str, str]] = Counter()
        for r in rows:
            for code in dict.fromkeys(r.codes):
                codes[code] += 1
            if not r.full_credit and r.verdict != "invalid":
                for d in r.diagnoses:
                    mistakes_seen[(d.code, d.message)] += 1
        total = len(rows)
        return cls(
            question=question,
            total=total,
            graded=graded,
            resumed=total - graded,
            unique=unique,
            bad_rows=bad_rows,
            by_verdict={v: verdicts.get(v, 0) for v in VERDICTS},
            by_diagnosis=dict(codes.most_common()),
            common_mistakes=tuple((c, m, n) for (c, m), n in mistakes_seen.most_common(mistakes)),
            mean_score=sum(r.score for r in rows) / total if total else 0.0,
            max_score=max_score,
            seconds=seconds,
            timeouts=codes.get("time_budget", 0),
            internal_errors=tuple(r.id for r in rows if r.internal_error),
            refused=refused,
            regraded=dict(regraded or {}),
            kept_others=kept_others,
        )

    def _repr_html_(self) -> str:
        """A self-contained HTML display for notebooks (user text escaped; no scripts, no CDN)."""
        from ..display import summary_html

        return summary_html(self)

    def _repr_markdown_(self) -> str:
        """A Markdown display for notebooks (math as ``$…$`` where the target is one of the package's spellings)."""
        from ..display import summary_markdown

        return summary_markdown(self)

    def __str__(self) -> str:
        if not self.graded:
            rate = "nothing new to grade"
        elif not self.unique:  # every answer refused unread, or a duplicate: no rate of checking to show
            rate = "none needed a check"
        else:
            per_second = self.answers_per_second
            rate = f"{per_second:.1f} answers/s" if per_second < 10 else f"{per_second:.0f} answers/s"
        dup = self.duplicates
        head = f"graded {_count(self.graded, 'answer')} to {self.question} in {self.seconds:.1f} s ({rate}"
        head += f"; {_count(dup, 'duplicate')} graded once)" if dup > 0 else ")"
        lines = [head]
        if self.resumed or self.regraded:
            line = f"resumed: {_count(self.resumed - self.kept_others, 'earlier result')} reused"
            if self.regraded:
                from .provenance import reasons_line

                line += f"; {sum(self.regraded.values())} re-graded ({reasons_line(self.regraded)})"
            if self.kept_others:
                line += f"; {_count(self.kept_others, 'earlier result')} of ids not in these submissions kept"
            lines.append(line + f"; {self.total} in all")
        if self.bad_rows:
            lines.append(
                f"malformed: {_count(self.bad_rows, 'row')} graded invalid with the reason (see the warnings above)"
            )
        lines.append("verdicts:  " + "  ".join(f"{v} {n}" for v, n in self.by_verdict.items()))
        if self.by_diagnosis:
            lines.append("diagnoses: " + "  ".join(f"{c} {n}" for c, n in self.by_diagnosis.items()))
        if self.common_mistakes:
            lines.append("most common mistakes:")
            for code, message, n in self.common_mistakes:
                text = message if len(message) <= 100 else message[:99] + "…"
                lines.append(f"  {n:>5} × {code}: {text}")
        if self.total:
            lines.append(f"mean score {self.mean_score:.3g} / {self.max_score:g}")
        if self.timeouts:
            lines.append(f"time budget exceeded: {_count(self.timeouts, 'answer')} (marked invalid)")
        if self.internal_errors:
            shown = ", ".join(self.internal_errors[:10]) + (" …" if len(self.internal_errors) > 10 else "")
            lines.append(
                f"!!! INTERNAL ERROR in bptt_check for {_count(len(self.internal_errors), 'answer')} ({shown}):"
                " these are bugs, not the students' mistakes; their scores are not trustworthy — please report them"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "total": self.total,
            "graded": self.graded,
            "resumed": self.resumed,
            "unique": self.unique,
            "bad_rows": self.bad_rows,
            "refused": self.refused,
            "regraded": dict(self.regraded),
            "kept_others": self.kept_others,
            "by_verdict": dict(self.by_verdict),
            "by_diagnosis": dict(self.by_diagnosis),
            "common_mistakes": [{"code": c, "message": m, "count": n} for c, m, n in self.common_mistakes],
            "mean_score": self.mean_score,
            "max_score": self.max_score,
            "seconds": self.seconds,
            "answers_per_second": self.answers_per_second,
            "timeouts": self.timeouts,
            "internal_errors": list(self.internal_errors),
        }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
