"""Question files and rubrics: what is asked, of which model, and what each outcome earns.

A question file is TOML (read with :mod:`tomllib`)::

    title = "HW2 3(a): dL/dW_hh"        # optional
    target = "dL/dW_hh"                  # required

    [model]                              # optional; the seed's model by default
    steps = 2
    loss_at = "all"                      # or "last"
    sizes = { input = 2, hidden = 2, output = 2 }
    h0 = "input"                         # or "zeros"
    biases = false
    convention = "row"                   # or "column" (a_t = W_xh x_t + W_hh h_{t-1}, column vectors)
    activation = "tanh"                  # or "sigmoid", "relu"
    loss = "cross-entropy"               # or "squared-error" (a linear output)

    [notation]                           # optional: alias = canonical family
    use = "textbook"                     # optional: start from built-in notations (seed, textbook, min-char-rnn)
    t = "h"

    [rubric]                             # optional; every key has a default
    equivalent = 1                       # credit per verdict, a fraction of max_score
    equivalent_numerically = 1
    transposed = 0.5
    not_equivalent = 0
    invalid = 0
    partial_credit = true                # a diagnosed wrong answer earns the engine's partial score
    reading = "total"                    # "total" | "immediate" | "either"
    cite = "state_gradients"             # which true partials an answer may cite: "none" |
                                         # "state_gradients" (dL/dh_t, dL_2/da_1, ...) | "any"
    points = 5                           # float sample points per check
    max_score = 1                        # points of the question
    work = 50_000_000                    # operations one answer's checks may take (counted, not timed)
    budget = 120                         # wall-clock seconds per answer: a backstop against hostile input

    [rubric.diagnoses]                   # credit overrides per diagnosis code
    sign_flip = 0.5

Unknown keys, wrong types and a missing ``target`` are
:class:`~bptt_check.errors.FileFormatError` naming the file and the key.

``bptt-check grade`` may override the file: its model options change the
``[model]`` field by field, and ``--notation`` replaces ``[notation]``
(:meth:`Question.from_file`'s ``model_changes`` and ``notation``).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..budget import DEFAULT_WORK
from ..errors import BpttCheckError, ConfigError, FileFormatError
from ..model import RNN, CitePolicy, cite_policy
from ..results import VERDICTS, CheckResult
from ..vocabulary import READING_POLICIES, ReadingPolicy, diagnosis_code, did_you_mean, reading_policy

if TYPE_CHECKING:  # pragma: no cover
    from ..compare import Settings
    from ..language import Notation

READINGS = READING_POLICIES

DEFAULT_CREDIT: dict[str, float] = {
    "equivalent": 1.0,
    "equivalent_numerically": 1.0,
    "transposed": 0.5,
    "not_equivalent": 0.0,
    "invalid": 0.0,
}
"""Credit per verdict, as a fraction of the question's ``max_score``."""

HARD_BUDGET_FACTOR = 1.0
"""A worker still checking one answer at this multiple of the rubric's ``budget`` is killed.

The checks themselves are limited by *work* (``rubric.work``, counted before
evaluating: the same answer gets the same verdict on an idle or a loaded
machine), so the wall-clock budget is only a backstop for code that is not
counted (reading a pathological text, a native library stuck). Its default is
far above what the work budget allows, so that load never turns a correct
answer into ``time_budget``.
"""

DEFAULT_BUDGET = 120.0

_MAX_BUDGET = 3600.0
_MAX_POINTS = 1000
_MAX_WORK = 10**12


@dataclass(frozen=True)
class Rubric:
    """What each outcome earns, and how answers are checked.

    Credits (per verdict, and the per-diagnosis overrides) are fractions of
    ``max_score`` in [0, 1]. The score of a checked answer is, in order:

    1. the largest override in ``diagnoses`` among the answer's diagnosis
       codes, when any of them has one (an instructor's word is final);
    2. for a ``not_equivalent`` answer with a diagnosis, when
       ``partial_credit`` is on: the larger of the engine's partial credit
       (``CheckResult.score``) and the verdict's credit;
    3. otherwise the verdict's credit.

    times ``max_score``.
    """

    equivalent: float = 1.0
    equivalent_numerically: float = 1.0
    transposed: float = 0.5
    not_equivalent: float = 0.0
    invalid: float = 0.0
    diagnoses: Mapping[str, float] = field(default_factory=dict)
    partial_credit: bool = True
    reading: ReadingPolicy = "total"
    cite: CitePolicy = "state_gradients"
    """Which true partials an answer may cite: ``none``; ``state_gradients`` (the default: only the loss's
    gradients with respect to states, ``dL/dh_t``, each with respect to another node than the target's);
    ``any`` (every partial but the target itself). A forward target's own node is never allowed."""
    points: int = 5
    max_score: float = 1.0
    budget: float = DEFAULT_BUDGET
    """Wall-clock seconds per answer in a grading worker: a backstop (see :data:`HARD_BUDGET_FACTOR`)."""
    work: int = DEFAULT_WORK
    """Operations one answer's checks may take (:mod:`bptt_check.budget`); past it the answer is ``invalid``."""

    def __post_init__(self) -> None:
        for verdict in VERDICTS:
            _fraction(f"rubric.{verdict}", getattr(self, verdict))
        if not isinstance(self.diagnoses, Mapping):
            raise ConfigError(f"rubric.diagnoses = {self.diagnoses!r} is not a table of code = credit")
        for code, credit in self.diagnoses.items():
            diagnosis_code(code, "rubric.diagnoses:")  # an unknown code would silently never apply
            _fraction(f"rubric.diagnoses.{code}", credit)
        # A plain dict (not a mapping proxy) so that the rubric pickles into worker processes.
        object.__setattr__(self, "diagnoses", {str(k): float(v) for k, v in self.diagnoses.items()})
        for verdict in VERDICTS:
            object.__setattr__(self, verdict, float(getattr(self, verdict)))
        if not isinstance(self.partial_credit, bool):
            raise ConfigError(f"rubric.partial_credit = {self.partial_credit!r} must be true or false")
        object.__setattr__(self, "reading", reading_policy(self.reading, "rubric.reading"))
        object.__setattr__(self, "cite", cite_policy(self.cite, "rubric.cite"))
        if isinstance(self.points, bool) or not isinstance(self.points, int) or not 1 <= self.points <= _MAX_POINTS:
            raise ConfigError(
                f"rubric.points = {self.points!r} must be a whole number of sample points",
                hint=f"between 1 and {_MAX_POINTS}; 5 is the default",
            )
        if isinstance(self.work, bool) or not isinstance(self.work, int) or not 1 <= self.work <= _MAX_WORK:
            raise ConfigError(
                f"rubric.work = {self.work!r} must be a whole number of operations",
                hint=f"between 1 and {_MAX_WORK:.0e}; {DEFAULT_WORK:.0e} is the default",
            )
        _positive("rubric.max_score", self.max_score, upper=1e6)
        _positive("rubric.budget", self.budget, upper=_MAX_BUDGET)
        object.__setattr__(self, "max_score", float(self.max_score))
        object.__setattr__(self, "budget", float(self.budget))

    def credit(self, verdict: str) -> float:
        """The credit (a fraction of ``max_score``) of a verdict."""
        return float(getattr(self, verdict)) if verdict in VERDICTS else 0.0

    def fraction(self, result: CheckResult) -> float:
        """The share of ``max_score`` an answer's check result earns (rules in the class docstring)."""
        codes = [d.code for d in result.diagnoses]
        overrides = [self.diagnoses[c] for c in codes if c in self.diagnoses]
        if overrides:
            return max(overrides)
        base = self.credit(result.verdict)
        if self.partial_credit and result.verdict == "not_equivalent" and result.diagnoses:
            engine = result.score if isinstance(result.score, (int, float)) and math.isfinite(result.score) else 0.0
            return max(base, min(1.0, max(0.0, float(engine))))
        return base

    def score(self, result: CheckResult) -> float:
        """Points earned, in [0, max_score]."""
        return _clean(self.fraction(result) * self.max_score)

    def settings(self) -> "Settings":
        """The checker settings this rubric asks for."""
        from ..compare import Settings

        return Settings(points=self.points, reading=self.reading, cite=self.cite, work=self.work)

    @property
    def hard_budget(self) -> float:
        """Seconds after which a worker checking one answer is killed (see :data:`HARD_BUDGET_FACTOR`)."""
        return self.budget * HARD_BUDGET_FACTOR

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> "Rubric":
        """Build from a ``[rubric]`` table; unknown keys and wrong types are :class:`ConfigError`."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in table:
            if key not in known:
                raise ConfigError(
                    f"unknown key rubric.{key}",
                    hint=_suggest(key, known, "rubric"),
                )
        kwargs = dict(table)
        diagnoses = kwargs.get("diagnoses", {})
        if not isinstance(diagnoses, Mapping):
            raise ConfigError(
                f"rubric.diagnoses = {diagnoses!r} must be a table",
                hint="write [rubric.diagnoses] then e.g. sign_flip = 0.5",
            )
        return cls(**kwargs)


@dataclass(frozen=True)
class Question:
    """One gradient question: the target, the model, the notation and the rubric.

    ``notation`` is the raw ``[notation]`` table (alias = canonical family);
    it is turned into a :class:`~bptt_check.language.Notation` when a grader
    is built, so a question stays plain data (and pickles into workers).
    """

    target: str
    model: RNN = field(default_factory=RNN)
    notation: Mapping[str, Any] | None = None
    rubric: Rubric = field(default_factory=Rubric)
    title: str = ""
    source: str = ""
    """Where the question came from (a file path), for messages."""

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not self.target.strip():
            raise ConfigError(f"target = {self.target!r} must be a non-empty string", hint='e.g. target = "dL/dW_hh"')
        if not isinstance(self.model, RNN):
            raise ConfigError(f"model = {self.model!r} is not a bptt_check.RNN")
        if not isinstance(self.rubric, Rubric):
            raise ConfigError(f"rubric = {self.rubric!r} is not a Rubric")
        if not isinstance(self.title, str):
            raise ConfigError(f"title = {self.title!r} must be a string")
        if self.notation is not None:
            if not isinstance(self.notation, Mapping):
                raise ConfigError(f"notation = {self.notation!r} must be a table of alias = name")
            object.__setattr__(self, "notation", dict(self.notation))

    @property
    def name(self) -> str:
        """The title, or the target when there is none."""
        return self.title or self.target

    def with_budget(self, budget: float) -> "Question":
        """The same question with another per-answer time budget (seconds)."""
        return dataclasses.replace(self, rubric=dataclasses.replace(self.rubric, budget=budget))

    def build_notation(self) -> "Notation | None":
        """The notation object of ``[notation]`` (None when there is none)."""
        if not self.notation:
            return None
        from ..language import Notation

        return Notation.from_table(dict(self.notation), source=self.source or "question")

    def validate(self) -> None:
        """Check that the notation table and the target make sense for the model.

        Raises :class:`FileFormatError` naming the source and the key. This is
        cheap (no truth is computed).
        """
        from ..language import parse_target

        where = self.source or "question"
        try:
            notation = self.build_notation()
        except FileFormatError:
            raise
        except BpttCheckError as err:
            raise FileFormatError(f"{where}: [notation]: {err.message}", hint=err.hint) from None
        try:
            parse_target(self.target, self.model, notation=notation)
        except BpttCheckError as err:
            raise FileFormatError(f"{where}: target = {self.target!r}: {err.message}", hint=err.hint) from None

    # -- loading ------------------------------------------------------------------

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        model_changes: Mapping[str, Any] | None = None,
        notation: Mapping[str, Any] | None = None,
    ) -> "Question":
        """Read and validate a question file (TOML); ``model_changes`` and ``notation`` override it (see :meth:`from_dict`)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise FileFormatError(f"cannot read question file {path}: {err.strerror or err}") from None
        except UnicodeDecodeError:
            raise FileFormatError(f"{path}: not UTF-8 text") from None
        return cls.from_toml(text, source=str(path), model_changes=model_changes, notation=notation)

    @classmethod
    def from_toml(
        cls,
        text: str,
        *,
        source: str = "<question>",
        model_changes: Mapping[str, Any] | None = None,
        notation: Mapping[str, Any] | None = None,
    ) -> "Question":
        """Parse and validate the text of a question file."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise FileFormatError(f"{source}: not valid TOML: {err}") from None
        return cls.from_dict(data, source=source, model_changes=model_changes, notation=notation)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        source: str = "<question>",
        model_changes: Mapping[str, Any] | None = None,
        notation: Mapping[str, Any] | None = None,
    ) -> "Question":
        """Build and validate a question from the parsed TOML document.

        ``model_changes`` (RNN fields, e.g. ``{"convention": "column"}``) override
        the ``[model]`` table field by field; ``notation`` (a ``[notation]``
        table) replaces the file's. Both come from ``bptt-check grade``'s options.
        """
        allowed = ("target", "title", "model", "notation", "rubric")
        for key in data:
            if key not in allowed:
                raise FileFormatError(f"{source}: unknown key {key!r}", hint=_suggest(key, allowed, None))
        if "target" not in data:
            raise FileFormatError(f"{source}: missing key 'target'", hint='add e.g. target = "dL/dW_hh"')
        target = data["target"]
        if not isinstance(target, str) or not target.strip():
            raise FileFormatError(f"{source}: target = {target!r} must be a non-empty string", hint='e.g. "dL/dW_hh"')
        title = data.get("title", "")
        if not isinstance(title, str):
            raise FileFormatError(f"{source}: title = {title!r} must be a string")
        tables: dict[str, Mapping[str, Any]] = {}
        for key in ("model", "notation", "rubric"):
            value = data.get(key, {})
            if not isinstance(value, Mapping):
                raise FileFormatError(f"{source}: {key} must be a table", hint=f"write [{key}] on its own line")
            tables[key] = value
        try:
            model = RNN.from_table(tables["model"])
            rubric = Rubric.from_table(tables["rubric"])
        except ConfigError as err:
            raise FileFormatError(f"{source}: {err.message}", hint=err.hint) from None
        if model_changes:
            try:
                model = model.replace(**model_changes)
            except ConfigError as err:
                raise FileFormatError(
                    f"{source}: with the command line's model options: {err.message}", hint=err.hint
                ) from None
        table = dict(notation) if notation is not None else dict(tables["notation"])
        question = cls(target=target, model=model, notation=table or None, rubric=rubric, title=title, source=source)
        question.validate()
        return question


# -- helpers ----------------------------------------------------------------------


def _fraction(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(
            f"{key} = {value!r} must be a number between 0 and 1",
            hint="credits are fractions of max_score",
        )


def _positive(key: str, value: Any, *, upper: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= upper:
        raise ConfigError(f"{key} = {value!r} must be a number greater than 0 (at most {upper:g})")


def _suggest(key: str, known: Any, table: str | None) -> str:
    prefix = f"{table}." if table else ""
    listing = ", ".join(prefix + k for k in sorted(known))
    guess = did_you_mean(prefix + str(key), [prefix + k for k in sorted(known)], quote=False)
    guess = f"{guess} " if guess else ""
    return f"{guess}known keys: {listing}"


def _clean(x: float) -> float:
    """Round away float noise (0.30000000000000004 → 0.3) while keeping real precision."""
    return float(round(x, 9))
