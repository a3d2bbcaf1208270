"""Assignments: several questions with points, visibility and feedback settings, graded per student.

An assignment is a TOML file with one ``[[question]]`` table per question::

    title = "HW2: backpropagation through time"

    [model]                      # optional: the model of every question without its own [model]
    steps = 2

    [[question]]
    name = "dW_hh"               # the label of its answer in a submission (letters, digits, _ . -)
    file = "dW_hh.toml"          # a question file, relative to this file ...
    points = 4                   # default: the question's rubric.max_score
    visibility = "visible"       # visible | hidden | after_due_date | after_published
    feedback = "full"            # full | diagnoses | verdict | score

    [[question]]
    name = "dW_hy"
    target = "dL/dW_hy"          # ... or the question inline: target, title, model, notation, rubric
    [question.model]
    loss_at = "last"

or a folder: its ``assignment.toml`` if there is one, else every ``*.toml``
question file in it (name order), each named by its file's stem, worth its
``rubric.max_score``, visible, with full feedback.

``feedback`` says how much of the check's report a student sees: ``full``
(everything: verdict, diagnoses, a counterexample, the tolerances),
``diagnoses`` (the verdict and what is wrong, no numbers), ``verdict`` (the
verdict line only) or ``score`` (the points only). ``visibility`` is
Gradescope's, per test.

A student's answers are read with :func:`read_answers` (labelled sections
of a ``.tex``, ``.md``, ``.txt`` or ``.toml`` file); :meth:`Assignment.grade`
grades them, one :class:`~bptt_check.grading.GradeResult` per question.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import threading
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence

from ..errors import BpttCheckError, ConfigError, FileFormatError
from ..model import RNN
from .grader import Grader
from .question import Question
from .result import GradeResult

Visibility = Literal["visible", "hidden", "after_due_date", "after_published"]
VISIBILITIES: tuple[Visibility, ...] = ("visible", "hidden", "after_due_date", "after_published")
Feedback = Literal["full", "diagnoses", "verdict", "score"]
FEEDBACKS: tuple[Feedback, ...] = ("full", "diagnoses", "verdict", "score")
ASSIGNMENT_FILE = "assignment.toml"

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_ITEM_KEYS = ("name", "file", "points", "visibility", "feedback")
_QUESTION_KEYS = ("target", "title", "model", "notation", "rubric")


@dataclass(frozen=True)
class Item:
    """One question of an assignment; ``question.rubric.max_score`` is ``points``."""

    name: str
    question: Question
    visibility: Visibility = "visible"
    feedback: Feedback = "full"
    text: str = ""
    """The question's TOML text (its file, or its inline table), for result keys."""

    @property
    def points(self) -> float:
        return self.question.rubric.max_score

    def student_message(self, result: GradeResult) -> str:
        """The part of ``result.message`` this question's ``feedback`` setting shows."""
        return feedback_text(result, self.feedback)


@dataclass(frozen=True)
class Assignment:
    """Questions graded together (see the module docstring for the file format)."""

    title: str
    items: tuple[Item, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if not self.items:
            raise ConfigError(f"{self.source or 'assignment'}: no questions", hint="add [[question]] tables")
        seen: set[str] = set()
        for item in self.items:
            if item.name in seen:
                raise ConfigError(f"{self.source or 'assignment'}: two questions are named {item.name!r}")
            seen.add(item.name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.items)

    @property
    def max_score(self) -> float:
        return float(round(sum(i.points for i in self.items), 9))

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def item(self, name: str) -> Item:
        for i in self.items:
            if i.name == name:
                return i
        raise KeyError(name)

    # -- loading --------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> "Assignment":
        """Read an assignment file, or a folder (its ``assignment.toml``, else its question files)."""
        path = Path(path)
        if path.is_dir():
            if (path / ASSIGNMENT_FILE).is_file():
                return cls.from_file(path / ASSIGNMENT_FILE)
            files = sorted(p for p in path.glob("*.toml") if p.is_file())
            if not files:
                raise FileFormatError(
                    f"{path}: no question files (*.toml) and no {ASSIGNMENT_FILE}",
                    hint="put one question file per question in the folder",
                )
            items = []
            for f in files:
                _check_name(f.stem, f"{f}: the file name")
                items.append(Item(f.stem, Question.from_file(f), text=_read(f)))
            return cls(title=path.name, items=tuple(items), source=str(path))
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: str | Path) -> "Assignment":
        path = Path(path)
        text = _read(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise FileFormatError(f"{path}: not valid TOML: {err}") from None
        return cls.from_dict(data, source=str(path), base=path.parent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<assignment>", base: Path | None = None) -> "Assignment":
        """Build from a parsed assignment file; question ``file`` paths are relative to ``base``."""
        for key in data:
            if key not in ("title", "model", "notation", "question"):
                raise FileFormatError(f"{source}: unknown key {key!r}", hint="known keys: title, model, notation, question")
        title = data.get("title", "")
        if not isinstance(title, str):
            raise FileFormatError(f"{source}: title = {title!r} must be a string")
        tables = data.get("question", [])
        if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
            raise FileFormatError(f"{source}: no [[question]] tables", hint="add one [[question]] table per question")
        defaults = {k: data[k] for k in ("model", "notation") if k in data}
        items = [_item(t, n, source, base or Path("."), defaults) for n, t in enumerate(tables, start=1)]
        try:
            return cls(title=title or Path(source).stem, items=tuple(items), source=source)
        except ConfigError as err:
            raise FileFormatError(err.message, hint=err.hint) from None

    # -- grading ---------------------------------------------------------------------

    def graders(self) -> dict[str, Grader]:
        """One :class:`Grader` per question (each computes its truth on first use)."""
        return {i.name: Grader(i.question) for i in self.items}

    def grade(
        self,
        answers: Mapping[str, "Answer"],
        *,
        graders: Mapping[str, Grader] | None = None,
        id: str = "",
    ) -> list[GradeResult]:
        """Grade one student's answers, one result per question in order (in this process, each check under the hard budget).

        A question without an answer is ``invalid`` (code ``missing``) with
        a message naming the label to use; a derivation's steps are checked
        one by one (:func:`grade_answer`).
        """
        graders = graders if graders is not None else self.graders()
        out = []
        for item in self.items:
            grader = graders[item.name]
            answer = answers.get(item.name)
            if answer is None:
                result = grader.invalid(
                    "missing",
                    f"no answer to question {item.name!r} was found (label it with a line"
                    f" '% question: {item.name}', or the TOML key {item.name})",
                )
            else:
                result = grade_answer(grader, answer)
            out.append(dataclasses.replace(result, id=id))
        return out


@dataclass(frozen=True)
class Answer:
    """One labelled answer read from a submission: its text, its syntax, and where it starts (1-based line)."""

    text: str
    syntax: str = "auto"
    line: int = 0


# -- one answer, possibly a derivation ------------------------------------------------------


def derivation_steps(text: str) -> list[str]:
    """The sides of a chain ``lhs = step = ... = result`` (one element when there is no ``=``).

    ``=`` inside brackets is not a separator; LaTeX alignment (``&``, ``\\\\``,
    ``\\nonumber``) is removed first.
    """
    cleaned = re.sub(r"\\nonumber|\\notag", " ", text)
    cleaned = re.sub(r"(?<!\\)&", " ", cleaned)
    cleaned = re.sub(r"\\\\(\[[^\]]*\])?", " ", cleaned)
    parts, depth, current = [], 0, []
    for ch in cleaned:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "=" and depth <= 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


class _Overrun(BaseException):
    """Raised by the alarm in a check past its hard budget (a BaseException: the check's own handlers let it pass)."""


@contextmanager
def _hard_deadline(seconds: float) -> Iterator[None]:
    """Interrupt the code inside after ``seconds`` (SIGALRM; only in the main thread of a Unix process
    with no timer of its own running — elsewhere only the checker's own soft deadline applies)."""
    usable = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    )
    if not usable:
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise _Overrun()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _check(grader: Grader, text: str, syntax: str) -> GradeResult:
    """``grader.grade`` in this process under the hard budget (see :data:`~bptt_check.grading.question.HARD_BUDGET_FACTOR`)."""
    _ = grader.checker  # the truth is built before the clock starts: it is not the answer's cost
    rubric = grader.question.rubric
    try:
        with _hard_deadline(rubric.hard_budget):
            return grader.grade(text, syntax=syntax)  # type: ignore[arg-type]
    except _Overrun:
        return grader.invalid("time_budget", f"time budget of {rubric.budget:g} s exceeded")


def grade_answer(grader: Grader, answer: Answer | str) -> GradeResult:
    """Grade one answer in this process; a derivation ``target = A = B = ... = R`` earns what ``R`` earns.

    Each check runs under the rubric's hard budget (an alarm, where one can
    be set: see :func:`_hard_deadline`); past it the answer is ``invalid``
    with the code ``time_budget``.

    Each intermediate side is also checked, and the first one that is not
    the target is named in the message (a derivation that goes wrong and
    comes right again is still credited only by its result, and the message
    says where it went wrong). A leading side naming the target is skipped.
    """
    if isinstance(answer, str):
        answer = Answer(answer)
    syntax = answer.syntax if answer.syntax in ("auto", "plain", "latex") else "auto"
    steps = derivation_steps(answer.text)
    named = len(steps) > 1 and _names_target(grader, steps[0], syntax)
    if len(steps) == 1 or (len(steps) == 2 and named) or any(not s for s in steps):
        return _check(grader, answer.text, syntax)  # an expression, or "target = expression"
    final = _check(grader, steps[-1], syntax)
    notes = []
    first = 1 if named else 0
    for number, step in enumerate(steps[first:-1], start=1):
        r = _check(grader, step, syntax)
        if r.verdict not in ("equivalent", "equivalent_numerically"):
            reason = r.message.splitlines()[1].strip() if len(r.message.splitlines()) > 1 else r.verdict
            notes.append(f"  derivation: step {number} of {len(steps) - first} ({_short(step)}) is {r.verdict}: {reason}")
            break
    if not notes:
        n = len(steps) - first - 1
        which = "the step before the result equals" if n == 1 else f"all {n} steps before the result equal"
        notes.append(f"  derivation: {which} the target" + ("" if final.full_credit else "; the result does not"))
    lines = final.message.splitlines()
    return dataclasses.replace(final, message="\n".join(lines[:1] + notes + lines[1:]))


def _names_target(grader: Grader, text: str, syntax: str) -> bool:
    from ..language import parse_target

    try:
        return str(parse_target(text, grader.question.model, notation=grader.question.build_notation())) == str(
            grader.checker.target
        )
    except (BpttCheckError, Exception):  # any text that is not a target name is a step
        return False


def _short(text: str, n: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


# -- feedback -------------------------------------------------------------------------------

_NUMBERS = ("  counterexample", "    answer ", "    point:", "  numeric:", "  exact:", "  truths:", "  model:")


def feedback_text(result: GradeResult, level: str) -> str:
    """``result.message`` cut to a feedback level (full | diagnoses | verdict | score)."""
    lines = result.message.splitlines() or [f"{result.verdict}"]
    if level == "full":
        return result.message
    if level == "score":
        return f"{result.score:g}/{result.max_score:g} points"
    if level == "verdict":
        return lines[0]
    return "\n".join(ln for ln in lines if not ln.startswith(_NUMBERS))


# -- reading a student's submission ------------------------------------------------------------

SUBMISSION_SUFFIXES = (".tex", ".md", ".txt", ".toml")
_LABEL = re.compile(
    r"^\s*(?:%+|#+|//+|<!--|\\\\?textbf\{|\*\*)?\s*question\s*[:=]\s*([A-Za-z][A-Za-z0-9_.\-]*)\s*(?:-->|\}|\*\*)?\s*$",
    re.IGNORECASE,
)
_DROP_LINE = re.compile(
    r"^\s*(?:\$\$|\\\[|\\\]|```\w*|\\begin\{(?:equation|align|gather|displaymath|math)\*?\}"
    r"|\\end\{(?:equation|align|gather|displaymath|math)\*?\}|\\end\{document\}|<!--.*-->)\s*$"
)


def read_answers(path: str | Path, names: Sequence[str] = ()) -> tuple[dict[str, Answer], list[str]]:
    """The labelled answers in a submission file, and notes about what was ignored.

    Labelling (what students are told: examples/course/README.md): in ``.tex``, ``.md`` and ``.txt`` files,
    a line ``question: NAME`` — optionally behind a comment or heading
    marker: ``% question: dW_hh``, ``# question: dW_hh``, ``<!-- question:
    dW_hh -->`` — starts the answer to ``NAME``, which runs to the next label
    (or ``\\end{document}``). Display-math lines (``$$``, ``\\[``, ``\\]``,
    ``\\begin{equation}``…, code fences) and other ``%`` comment lines are
    dropped; the rest is the answer (its lines joined). In ``.toml``: a key
    per question, ``dW_hh = '...'``, or a table ``[dW_hh]`` with ``answer``
    (and optionally ``syntax``). Labels not in ``names`` (when given) are
    noted and ignored; a repeated label keeps the last answer, noted.
    Raises :class:`FileFormatError` for a file that cannot be read.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise FileFormatError(f"cannot read {path.name}: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise FileFormatError(f"{path.name} line {line}: not UTF-8 text", hint="save the file as UTF-8") from None
    if path.suffix.lower() == ".toml":
        answers, notes = _toml_answers(path.name, text)
    else:
        answers, notes = parse_labelled(text, latex=path.suffix.lower() == ".tex")
    if names:
        for label in [k for k in answers if k not in names]:
            close = [n for n in names if n.lower() == label.lower()]
            if close:
                answers[close[0]] = answers.pop(label)
                continue
            notes.append(f"an answer labelled {label!r} matches no question ({', '.join(names)}): ignored")
            del answers[label]
    return answers, notes


def parse_labelled(text: str, *, latex: bool = False) -> tuple[dict[str, Answer], list[str]]:
    """The answers of a labelled text (the rules of :func:`read_answers`)."""
    answers: dict[str, Answer] = {}
    notes: list[str] = []
    current: str | None = None
    start = 0
    body: list[str] = []

    def close() -> None:
        if current is None:
            return
        joined = "\n".join(body).strip()
        if current in answers:
            notes.append(f"question {current!r} is answered twice (lines {answers[current].line} and {start}): the last is graded")
        answers[current] = Answer(_strip_inline_math(joined), "latex" if latex else "auto", start)

    for number, line in enumerate(text.splitlines(), start=1):
        m = _LABEL.match(line)
        if m:
            close()
            current, start, body = m.group(1), number, []
            continue
        if current is None:
            continue
        if latex and line.strip() == r"\end{document}":
            close()
            current = None
            continue
        if _DROP_LINE.match(line) or line.lstrip().startswith("%"):
            continue
        body.append(line)
    close()
    if not answers:
        notes.append("no labelled answers found (label each with a line such as '% question: dW_hh')")
    return answers, notes


def _strip_inline_math(text: str) -> str:
    t = text.strip()
    for left, right in (("$$", "$$"), ("\\[", "\\]"), ("$", "$")):
        if t.startswith(left) and t.endswith(right) and len(t) > len(left) + len(right):
            t = t[len(left) : -len(right)].strip()
    return t.rstrip(".,;").strip() if t.endswith((".", ",", ";")) else t


def _toml_answers(name: str, text: str) -> tuple[dict[str, Answer], list[str]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise FileFormatError(f"{name}: not valid TOML: {err}") from None
    answers: dict[str, Answer] = {}
    notes: list[str] = []
    for key, value in data.items():
        if isinstance(value, str):
            answers[key] = Answer(value)
        elif isinstance(value, dict) and isinstance(value.get("answer"), str):
            syntax = value.get("syntax", "auto")
            answers[key] = Answer(value["answer"], syntax if isinstance(syntax, str) else "auto")
        else:
            notes.append(f"{key} is not an answer (a string, or a table with answer = '...'): ignored")
    return answers, notes


# -- helpers ------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise FileFormatError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{path}: not UTF-8 text") from None


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise FileFormatError(
            f"{where}: question name {name!r} must start with a letter and hold only letters, digits, _ . -",
            hint='e.g. name = "dW_hh"',
        )
    return name


def _item(table: Mapping[str, Any], n: int, source: str, base: Path, defaults: Mapping[str, Any]) -> Item:
    where = f"{source} question {n}"
    name = _check_name(table.get("name"), where)
    where = f"{source} question {name!r}"
    for key in table:
        if key not in _ITEM_KEYS + _QUESTION_KEYS:
            raise FileFormatError(
                f"{where}: unknown key {key!r}", hint=f"known keys: {', '.join(_ITEM_KEYS + _QUESTION_KEYS)}"
            )
    inline = {k: table[k] for k in _QUESTION_KEYS if k in table}
    if "file" in table:
        if inline:
            raise FileFormatError(f"{where}: give either file = ... or the question inline, not both")
        if not isinstance(table["file"], str):
            raise FileFormatError(f"{where}: file = {table['file']!r} must be a path")
        qpath = base / table["file"]
        text = _read(qpath)
        question = Question.from_toml(text, source=str(qpath))
        if defaults and "model" not in tomllib.loads(text) and "model" in defaults:
            question = _with_model(question, defaults["model"], where)
    else:
        merged = {**defaults, **inline}
        question = Question.from_dict(merged, source=where)
        text = repr(sorted(merged.items()))
    points = table.get("points", question.rubric.max_score)
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not 0 < points <= 1e6:
        raise FileFormatError(f"{where}: points = {points!r} must be a number greater than 0")
    visibility = table.get("visibility", "visible")
    if visibility not in VISIBILITIES:
        raise FileFormatError(f"{where}: visibility = {visibility!r}", hint=f"use one of {', '.join(VISIBILITIES)}")
    feedback = table.get("feedback", "full")
    if feedback not in FEEDBACKS:
        raise FileFormatError(f"{where}: feedback = {feedback!r}", hint=f"use one of {', '.join(FEEDBACKS)}")
    question = dataclasses.replace(question, rubric=dataclasses.replace(question.rubric, max_score=float(points)))
    return Item(name, question, visibility, feedback, text + f"\n# points={float(points)!r}")


def _with_model(question: Question, table: Any, where: str) -> Question:
    try:
        model = RNN.from_table(table)
    except ConfigError as err:
        raise FileFormatError(f"{where}: [model]: {err.message}", hint=err.hint) from None
    q = dataclasses.replace(question, model=model)
    q.validate()
    return q


__all__ = [
    "Answer",
    "Assignment",
    "FEEDBACKS",
    "Item",
    "SUBMISSION_SUFFIXES",
    "VISIBILITIES",
    "derivation_steps",
    "feedback_text",
    "grade_answer",
    "parse_labelled",
    "read_answers",
]
