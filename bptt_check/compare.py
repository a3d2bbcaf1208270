"""The comparison engine: is an answer the true gradient (or node value)?

For an answer ``a`` and a target with truth ``g``:

1. **Numeric check** at P float64 points (drawn by `sampling`): the answer agrees
   when ``|a - g| ≤ atol + rtol·|g|`` entrywise at every point
   (defaults ``rtol = 1e-7``, ``atol = 1e-9``), ``g`` from sympy, itself
   cross-checked against jax.
2. **Exact check** at k random points mod p = 2**61 - 1 over free atoms
   (:mod:`bptt_check.exact`): identical residues prove the identity of the
   two rational functions, with false-positive probability ≤ (δ/p)**k for
   the tracked degree bound δ.
3. The two must not contradict each other (else an internal error). Agreement
   with a proof is ``equivalent``; without one, ``equivalent_numerically``.
   An answer equal to the transpose of the truth is ``transposed``.
4. Partials that are ambiguous (total ≠ immediate reading) are
   evaluated under both readings; the ``reading`` policy (``total``,
   ``immediate`` or ``either``) decides which one earns the verdict; every
   policy is total over every answer (with no ambiguous partial all readings
   are one). A partial with respect to a per-step copy ``W^{(t)}`` is
   immediate by definition and is not ambiguous.
5. The checks are limited by counted work (:mod:`bptt_check.budget`), never by
   a clock, so the verdict is the same on an idle and on a loaded machine.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from .budget import DEFAULT_WORK, EXACT_FACTOR, WorkMeter, evaluation_work
from .diagnose import Diagnoser
from .errors import (
    BpttCheckError,
    BudgetExceeded,
    CircularError,
    ConfigError,
    ExpressionError,
    InternalError,
    LimitError,
    ShapeError,
)
from .evaluate import Mode, evaluate
from .exact import PRIME, NoExactForm, max_degree, refuting_pattern, residues
from .language import Notation, parse, parse_target, target_of
from .language.ast import Chain, Element, Expr, Name, Parsed, Partial, Transpose, postorder, walk
from .model import STATE_FAMILIES, RNN, CitePolicy, Reading, Ref, Target, cite_policy
from .results import CheckResult, Counterexample, Diagnosis, Evidence, Reading as ReadingResult, step_range
from .sampling import describe_point, region_point
from .truth import Truth, truth_for
from .vocabulary import SYNTAXES, ReadingPolicy, Syntax, reading_policy


RTOL = 1e-7
ATOL = 1e-9
MAX_POINTS = 1000
MAX_EXACT_POINTS = 64


@dataclass(frozen=True)
class Settings:
    """How answers are checked: sample sizes, tolerances, reading policy and work budget.

    Every field is validated on construction (a :class:`ConfigError` naming it):
    ``points`` 1..1000, ``exact_points`` 1..64, ``seed`` ≥ 0, ``rtol`` and
    ``atol`` finite in [0, 1) (a tolerance of 1 or more accepts 0 for anything),
    ``reading`` one of ``total``, ``immediate``, ``either``, ``cite`` one of
    ``none``, ``state_gradients``, ``any``, ``work`` ≥ 1.
    """

    points: int = 5
    exact_points: int = 2
    seed: int = 0
    rtol: float = RTOL
    atol: float = ATOL
    reading: ReadingPolicy = "total"
    cite: CitePolicy = "any"
    """Which true partials an answer may cite (:data:`~bptt_check.model.CitePolicy`); the target itself,
    or a forward target's own node, never. Graders default to ``state_gradients``."""
    work: int = DEFAULT_WORK
    """Operations one answer's checks may take (:mod:`bptt_check.budget`): counted, never timed, so that
    a verdict does not depend on the machine's load. Past it the answer is ``invalid`` (``limit``);
    an exact step that would pass it is skipped (``equivalent_numerically``, and the result says so)."""

    def __post_init__(self) -> None:
        for key, low, high in (("points", 1, MAX_POINTS), ("exact_points", 1, MAX_EXACT_POINTS), ("seed", 0, 2**63 - 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise ConfigError(
                    f"Settings.{key} = {value!r} must be a whole number from {low} to {high}",
                    hint=f"the default is {getattr(Settings, key)}",
                )
            object.__setattr__(self, key, int(value))
        for key in ("rtol", "atol"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 <= value < 1:
                raise ConfigError(
                    f"Settings.{key} = {value!r} must be a finite number in [0, 1)",
                    hint=f"the rule is |answer - truth| ≤ atol + rtol·|truth|; defaults rtol = {RTOL:g}, atol = {ATOL:g}",
                )
            object.__setattr__(self, key, float(value))
        object.__setattr__(self, "reading", reading_policy(self.reading, "Settings.reading"))
        object.__setattr__(self, "cite", cite_policy(self.cite, "Settings.cite"))
        value = self.work
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(
                f"Settings.work = {value!r} must be a whole number of operations ≥ 1",
                hint=f"the default is {DEFAULT_WORK:.0e}",
            )
        object.__setattr__(self, "work", int(value))


@dataclass(frozen=True)
class Outcome:
    """What the numeric and exact checks found for one candidate value of the answer."""

    agrees: bool
    max_error: float
    worst: tuple[int, tuple[int, ...]] | None
    values: np.ndarray


class Checker:
    """Checks answers against one target of one model; the truth is computed once."""

    def __init__(
        self,
        target: str | Target,
        *,
        model: RNN | None = None,
        notation: Notation | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.model = model if model is not None else RNN()
        self.notation = notation
        self.settings = settings if settings is not None else Settings()
        _check_types(self.model, notation, self.settings)
        if isinstance(target, Target):
            target.validate(self.model)
            self.target = target
        elif isinstance(target, str):
            self.target = parse_target(target, self.model, notation=notation)
            try:
                self.target.validate(self.model)
            except ConfigError as err:  # text the user wrote: an expression error with its position
                raise ExpressionError(err.message, text=target, position=0, hint=err.hint) from None
        else:
            raise ConfigError(f"target = {target!r} is neither text nor a Target", hint='e.g. "dL/dW_hh"')
        self.truth: Truth = truth_for(self.model, self.settings.points, self.settings.exact_points, self.settings.seed)
        self.expected, self.expected_jax, self.truths_agree = self.truth.target_values(self.target)
        self._expected_exact: np.ndarray | None = None
        self._no_proof = ""
        self._refuted: int | None = None

    # -- public ----------------------------------------------------------

    def check(self, text: str, *, syntax: Syntax = "auto") -> CheckResult:
        """Parse and check one answer; a user error becomes an ``invalid`` result."""
        _check_syntax(syntax)
        if not isinstance(text, str):
            raise ConfigError(f"the answer {text!r} is not text")
        try:
            parsed = parse(text, self.model, notation=self.notation, syntax=syntax)
            expr = self._answer_expr(parsed)
        except ExpressionError as err:
            return self.invalid(text, err)
        result = self.check_expr(expr, text=text)
        if parsed.other is not None:
            result = self._other_reading(parsed, parsed.other, result, text)
        if result.verdict == "not_equivalent" and parsed.repairs:
            result = self._named_slip(parsed, result, text)
        return result

    def _named_slip(self, parsed: Parsed, result: CheckResult, text: str) -> CheckResult:
        """A slip the parser can name (a Jacobian times a gradient): when the repaired text is right, say so."""
        for code, message, repaired in parsed.repairs:
            try:
                fixed = self.check_expr(self._answer_expr(repaired), text=text)
            except ExpressionError:
                continue
            if fixed.ok:
                return dataclasses.replace(
                    result,
                    message=f"the answer is not {self.target}: it {message}",
                    diagnoses=(Diagnosis(code, message),) + tuple(d for d in result.diagnoses if d.code != code),
                )
        return result

    def _other_reading(self, parsed: Parsed, other: Parsed, first: CheckResult, text: str) -> CheckResult:
        """Node names before brackets that read both ways: the language's rule decides first; when that
        reading is not right, the other is checked too, and the result says which reading it used."""
        rule = "; ".join(a.reading(a.applied) for a in parsed.ambiguous)
        flipped = "; ".join(a.reading(not a.applied) for a in parsed.ambiguous)
        if first.ok:
            note = f"read {rule} (as written it could also be read {flipped}; what the brackets hold decides)"
            return dataclasses.replace(first, notes=first.notes + (note,))
        try:
            second: CheckResult | None = self.check_expr(self._answer_expr(other), text=text)
        except ExpressionError:
            second = None
        if second is not None and second.ok:
            note = f"read {flipped}: the other reading of what is written, as {rule} it is not right"
            return dataclasses.replace(second, notes=second.notes + (note,))
        note = f"read {rule}; also checked {flipped}: not right either"
        return dataclasses.replace(first, notes=first.notes + (note,))

    def invalid(self, text: str, err: BpttCheckError) -> CheckResult:
        """The ``invalid`` result of an answer the error stopped; its diagnosis code is ``err.code``."""
        return _invalid_without_target(text, err, self.model, target=str(self.target))

    def check_expr(self, expr: Expr, *, text: str = "") -> CheckResult:
        """Check an already parsed answer (used for generated variants too); past the work budget, ``invalid``."""
        try:
            return self._check_expr(expr, text)
        except (BudgetExceeded, LimitError) as err:
            return self.invalid(text, err)

    def _check_expr(self, expr: Expr, text: str) -> CheckResult:
        s = self.settings
        meter = WorkMeter(s.work)
        want = self.target.shape(self.model)
        transposable = expr.shape == want[::-1] and len(want) == 2
        if expr.shape != want and not transposable:
            err = ShapeError(
                f"the answer has shape {_dims(expr.shape)} but {self.target} has shape {_dims(want)}",
                hint="check which side of each product the vectors stand on",
            )
            return self.invalid(text, err)
        ambiguous = self._ambiguous_partials(expr)
        canon = _evaluated_reading(ambiguous)
        readings = tuple(dict.fromkeys(canon.values()))  # the readings whose values may differ
        one = evaluation_work(expr, self.model, s.points)  # the same for every reading, and deterministic
        meter.charge(one * len(readings), f"{len(readings)} reading{'s' if len(readings) > 1 else ''} at {s.points} points")
        computed = {r: self._numeric(expr, r) for r in readings}
        outcomes = {r: computed[canon[r]] for r in canon}  # total over every reading: equal ones shared
        right = {r: expr.shape == want and o.agrees for r, o in outcomes.items()}
        credited = self._credited(right)
        notes = self._reading_notes(ambiguous, {r: right[r] for r in readings})
        reading_results = tuple(notes) if any(right.values()) else ()
        base = dict(target=str(self.target), answer=text, model=self.model.describe(), readings=reading_results)

        if credited is not None:
            outcome = outcomes[credited]
            proof, bound = self._exact(expr, canon[credited], meter, transpose=False)
            if proof is False and self._refuted is not None:
                return self._refuted_result(expr, canon[credited], outcome, self._refuted, base)
            if proof is False:
                raise InternalError(
                    f"the exact check refutes an answer the numeric check accepts for {self.target}:"
                    f" {text!r} (max error {outcome.max_error:.3g})",
                    hint="this is a bug in bptt_check's canonicalisation; please report it",
                )
            verdict = "equivalent" if proof else "equivalent_numerically"
            evidence = self._evidence(outcome, proof, bound)
            msg = (
                f"the answer equals the true {self.target}"
                + (
                    (" in every activation region (exact proof)" if self.model.activation == "relu" else " (exact proof)")
                    if proof
                    else f" at all {s.points} sample points (no exact proof: {self._no_proof})"
                )
            )
            return CheckResult(verdict=verdict, score=1.0, message=msg, evidence=evidence, **base)

        # Not right under the credited reading: a transpose, the other reading, or plainly wrong.
        if want != (1, 1):
            for r in readings:
                if not meter.affords(one):
                    break  # deterministic: the same answer always gets this far and no further
                meter.charge(one, "the transposed reading")
                t_outcome = self._numeric(Transpose(expr, expr.shape[::-1]), r)
                if t_outcome.agrees and (self.settings.reading == "either" or r == canon[self._policy_reading()]):
                    proof, bound = self._exact(expr, r, meter, transpose=True)
                    evidence = self._evidence(t_outcome, proof, bound)
                    return CheckResult(
                        verdict="transposed",
                        score=0.5,
                        message=f"the answer is the transpose of the true {self.target} (a layout slip)",
                        diagnoses=(
                            Diagnosis(
                                "transposed",
                                f"the answer has the layout {_dims(expr.shape)} transposed: its transpose is right",
                            ),
                        ),
                        evidence=evidence,
                        **base,
                    )
        outcome = outcomes[self._policy_reading()]
        cx = self._counterexample(outcome) if expr.shape == want else None
        diagnoses: tuple[Diagnosis, ...] = ()
        other = [r for r in readings if right[r]]
        if other:
            how = {
                "total": "right only if the ambiguous partials are read as total derivatives",
                "immediate": "right only if the ambiguous partials are read as immediate derivatives",
                "mixed": "right only under the textbook reading (partials with respect to parameters"
                " immediate, with respect to states total)",
            }[other[0]]
            diagnoses = (
                Diagnosis("wrong_reading", f"{how}; the {self._policy_reading()} reading is required here"
                          " (a grader may accept either with --reading either)"),
            )
        finding = self.diagnoser.diagnose(outcome.values) if cx is not None else None
        score = 0.0
        if finding is not None:
            diagnoses += finding.diagnoses
            score = finding.score
        diagnoses += self._zero_partials(expr)
        msg = f"the answer is not {self.target}"
        if finding is not None and finding.diagnoses:
            msg += ": it " + finding.diagnoses[0].message
        if cx is None:
            msg += f": it has shape {_dims(expr.shape)}, the truth {_dims(want)}"
        evidence = self._evidence(outcome, None, None)
        return CheckResult(
            verdict="not_equivalent",
            score=score,
            message=msg,
            diagnoses=diagnoses,
            counterexample=cx,
            evidence=evidence,
            **base,
        )

    # -- steps -------------------------------------------------------------

    def _answer_expr(self, parsed: Parsed) -> Expr:
        """The right-hand side, after checking that a left-hand side names the target."""
        if parsed.lhs is not None and not self._names_target(parsed.lhs):
            raise ShapeError(
                f"the left-hand side does not name the target {self.target}",
                text=parsed.text,
                position=0,
                hint=f"write the answer for {self.target}, or change --target",
            )
        self._refuse_circular(parsed.expr, parsed.text)
        self._refuse_cited(parsed.expr, parsed.text)
        return parsed.expr

    def _refuse_circular(self, expr: Expr, text: str) -> None:
        """An answer may cite true partials, but not the one it is asked for."""
        t = self.target
        for p in walk(expr):
            if (
                isinstance(p, Partial)
                and t.wrt is not None
                and (p.num, p.den) == (t.of, t.wrt)
                and p.num_index is None
                and p.den_index in (None, t.index)
            ):
                raise CircularError(
                    f"the answer uses {t} itself",
                    text=text,
                    position=0,
                    hint="write it in terms of other quantities (partials of other nodes may be cited)",
                )

    def _refuse_cited(self, expr: Expr, text: str) -> None:
        """The answer's own node for a forward target (``L_2`` answered ``L_2``), and every true partial
        the ``cite`` policy does not allow, make the answer ``invalid`` (``circular``, ``cited_partial``)."""
        t, policy = self.target, self.settings.cite
        for node in postorder(expr):
            if t.wrt is None and isinstance(node, Name) and node.ref == t.of:
                raise CircularError(
                    f"the answer uses {t.of} itself",
                    text=text,
                    hint=f"write {t} in terms of the values it is computed from",
                )
            factors = node.factors if isinstance(node, Chain) else (node,) if isinstance(node, Partial) else ()
            for p in factors:
                why = _uncitable(p, t, policy)
                if why:
                    name = f"∂{p.num}/∂{p.den}"
                    other = f" other than {t.wrt}" if t.wrt is not None and t.wrt.step is not None else ""
                    allowed = {
                        "none": "no true partials may be cited here",
                        "state_gradients": f"only the loss's gradients with respect to states{other}"
                        " (such as ∂L/∂h_t) may be cited here",
                    }[policy]
                    raise CitedPartialError(
                        f"the answer cites {name}, {why}: {allowed}",
                        text=text,
                        hint="derive it from the model's equations (a grader may allow more with rubric.cite)",
                    )

    def _names_target(self, lhs: Expr) -> bool:
        t = self.target
        if isinstance(lhs, Partial):
            return lhs.num == t.of and lhs.den == t.wrt and lhs.den_index == t.index and lhs.num_index is None
        if isinstance(lhs, Name):
            return t.wrt is None and lhs.ref == t.of and t.index is None
        if isinstance(lhs, Element) and isinstance(lhs.operand, Name):
            return t.wrt is None and lhs.operand.ref == t.of and lhs.index == t.index
        return False

    def _ambiguous_partials(self, expr: Expr) -> tuple[Partial, ...]:
        seen: dict[tuple[Ref, Ref], Partial] = {}
        for node in walk(expr):
            if (
                isinstance(node, Partial)
                and node.reading is None  # a per-step copy's partial is immediate whatever the policy
                and self.truth.symbolic.is_ambiguous(node.num, node.den)
            ):
                seen.setdefault((node.num, node.den), node)
        return tuple(seen.values())

    def _zero_partials(self, expr: Expr) -> tuple[Diagnosis, ...]:
        """Partials that are identically zero because no path leads from the denominator to the numerator."""
        out: dict[str, Diagnosis] = {}
        looked: set[tuple[Ref, Ref]] = set()
        for node in walk(expr):
            if not isinstance(node, Partial) or node.num == node.den or (node.num, node.den) in looked:
                continue
            looked.add((node.num, node.den))
            # no node between them is no path (listing the paths to see none costs O(T²) at T steps)
            if not self.truth.symbolic._between(node.num, node.den):  # noqa: SLF001
                name = f"∂{node.num}/∂{node.den}"
                out.setdefault(name, Diagnosis("zero_partial", f"{name} is zero: {node.num} does not depend on {node.den}"))
        return tuple(out.values())

    def _policy_reading(self) -> Reading:
        return "immediate" if self.settings.reading == "immediate" else "total"

    def _credited(self, right: dict[Mode, bool]) -> Mode | None:
        policy = self.settings.reading
        if policy == "either":
            return next((r for r in ("total", "immediate", "mixed") if right.get(r)), None)
        r = self._policy_reading()
        return r if right[r] else None

    def _numeric(self, expr: Expr, reading: Mode) -> Outcome:
        value = evaluate(expr, self.truth.float_backend(), reading)
        if value.shape != self.expected.shape:
            return Outcome(False, float("inf"), None, value)
        g = self.expected
        tol = self.settings.atol + self.settings.rtol * np.abs(g)
        err = np.abs(value - g)
        bad = ~(err <= tol)  # NaN counts as a disagreement
        ratio = np.where(np.isfinite(err), err / tol, np.inf)
        worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        max_err = float(np.max(err)) if np.isfinite(err).all() else float("inf")
        return Outcome(not bad.any(), max_err, (int(worst[0]), tuple(int(i) for i in worst[1:])), value)

    def _exact(
        self, expr: Expr, reading: Mode, meter: WorkMeter, *, transpose: bool
    ) -> tuple[bool | None, float | None]:
        """True: proved identical; False: the residues differ; None: no exact form (``self._no_proof`` says why)."""
        self._no_proof = ""
        self._refuted = None
        work = evaluation_work(expr, self.model, self.settings.exact_points) * EXACT_FACTOR
        if not meter.affords(work):
            self._no_proof = (
                f"the exact step would need about {meter.spent + work:.2g} operations, past the work budget"
                f" of {meter.budget:.2g}"
            )
            return None, None
        meter.charge(work, "the exact step")
        try:
            value = evaluate(expr, self.truth.exact_backend(), reading)
            want = self.expected_exact
        except NoExactForm as why:
            self._no_proof = str(why)
            return None, None
        if transpose:
            value = np.swapaxes(value, 1, 2)
        if value.shape != want.shape:
            return False, None
        same = bool(np.all(residues(value) == residues(want)))
        if not same:
            if self.model.activation == "relu":
                self._refuted = refuting_pattern(value, want)
            return False, None
        degree = max(max_degree(value), max_degree(want), 1) * 2
        bound = (degree / PRIME) ** self.settings.exact_points
        return True, bound

    def _refuted_result(
        self, expr: Expr, reading: Mode, outcome: Outcome, pattern: int, base: dict
    ) -> CheckResult:
        """A relu answer right at every sample point but, by the exact check, wrong in another activation region.

        The region is the pattern :func:`~bptt_check.exact.refuting_pattern` finds; a float point drawn in
        it (:func:`~bptt_check.sampling.region_point`) must show the difference, else the two checks
        contradict each other (an internal error).
        """
        s = self.settings
        H, T = self.model.hidden_size, self.model.steps
        units = [(b, f"a_{b // H + 1}" + (f"[{b % H}]" if H > 1 else "")) for b in range(T * H)]
        on = [name for b, name in units if pattern >> b & 1]
        off = [name for b, name in units if not pattern >> b & 1]
        few, sign, rest = (off, "negative", "positive") if len(off) <= len(on) else (on, "positive", "negative")
        where = f"where {', '.join(few)} {'is' if len(few) == 1 else 'are'} {sign}" + (
            f" and every other pre-activation {rest}" if len(few) < len(units) else ""
        )
        region = f"{where} (an activation region none of the {s.points} sample points is in)"
        active = np.array([[bool(pattern >> (t * H + j) & 1) for j in range(H)] for t in range(T)])
        leaves = region_point(self.model, active, s.seed)
        cx = None
        if leaves is not None:
            backend, g, g_jax = self.truth.at_point(leaves, self.target)
            value = evaluate(expr, backend, reading)
            err = np.abs(value - g)
            ratio = np.where(np.isfinite(err), err / (s.atol + s.rtol * np.abs(g)), np.inf)
            idx = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
            if not ratio[idx] > 1:
                raise InternalError(
                    f"the exact check refutes an answer for {self.target} {where}, but a point there agrees",
                    hint="this is a bug in bptt_check's canonicalisation; please report it",
                )
            cx = Counterexample(
                point_index=s.points,
                entry=tuple(int(i) for i in idx[1:]),
                answer=float(value[idx]),
                sympy=float(g[idx]),
                jax=float(g_jax[idx]),
                tolerance=s.atol + s.rtol * abs(float(g[idx])),
                point=describe_point(leaves, 0),
            )
        evidence = dataclasses.replace(
            self._evidence(outcome, None, None),
            exact=f"refuted: the answer differs from the truth {region}"
            + ("; the counterexample is an extra point in that region" if cx else ""),
        )
        return CheckResult(
            verdict="not_equivalent",
            score=0.0,
            message=f"the answer is not {self.target}: it differs from the truth {region}",
            counterexample=cx,
            evidence=evidence,
            **base,
        )

    @functools.cached_property
    def diagnoser(self) -> Diagnoser:
        """The truth's decomposition and mistake variants, built on the first wrong answer."""
        s = self.settings
        return Diagnoser(self.model, self.target, self.truth.float_backend(), self.expected, s.rtol, s.atol)

    @property
    def expected_exact(self) -> np.ndarray:
        if self._expected_exact is None:
            self._expected_exact = self.truth.target_exact(self.target)
        return self._expected_exact

    def _evidence(self, outcome: Outcome, proof: bool | None, bound: float | None) -> Evidence:
        s = self.settings
        exact = "proved" if proof else (f"no exact proof: {self._no_proof}" if proof is None and self._no_proof else None)
        return Evidence(
            numeric_points=s.points,
            rtol=s.rtol,
            atol=s.atol,
            max_abs_error=outcome.max_error if np.isfinite(outcome.max_error) else None,
            exact=exact,
            exact_points=s.exact_points if proof else 0,
            false_positive_bound=bound,
            truths_agree=self.truths_agree,
        )

    def _counterexample(self, outcome: Outcome) -> Counterexample | None:
        if outcome.worst is None:
            return None
        i, entry = outcome.worst
        idx = (i, *entry)
        g = float(self.expected[idx])
        return Counterexample(
            point_index=i,
            entry=entry,
            answer=float(outcome.values[idx]),
            sympy=g,
            jax=float(self.expected_jax[idx]),
            tolerance=self.settings.atol + self.settings.rtol * abs(g),
            point=self.truth.describe_point(i),
        )

    def _reading_notes(self, ambiguous: tuple[Partial, ...], right: dict[Mode, bool]) -> list[ReadingResult]:
        notes = []
        if right.get("mixed") and not right.get("total"):
            notes.append(ReadingResult(
                "textbook", False, False,
                "right under the textbook reading: each partial with respect to a parameter is immediate"
                " (∂⁺, the other steps' states held fixed) and each with respect to a state is total",
            ))
        sym = self.truth.symbolic
        for p in ambiguous:
            name = f"∂{p.num}/∂{p.den}"
            # the hidden states on some path den → num: the nodes between them (listing the paths
            # themselves costs O(T²) each at T steps)
            between = sym._between(p.num, p.den)  # noqa: SLF001 - the set paths() walks, without the walk
            missing = sorted(
                {str(ref) for ref in between if ref.is_hidden and ref not in (p.num, p.den)}
                - _allowed_hidden(p.num, p.den),
                key=_step_order,
            )
            through = step_range(missing) if missing else "other steps"
            t_ok, i_ok = right.get("total", False), right.get("immediate", False)
            if t_ok and not i_ok:
                msg = f"right if {name} is the total derivative; with the immediate reading it misses the path through {through}"
            elif i_ok and not t_ok:
                msg = f"right if {name} is the immediate derivative (paths through {through} held fixed); with the total reading it counts them twice or wrongly"
            elif t_ok and i_ok:
                msg = f"right under either reading of {name}"
            else:
                continue
            notes.append(ReadingResult(name, t_ok, i_ok, msg, tuple(missing)))
        return notes


class CitedPartialError(CircularError):
    """An answer citing a true partial that the question's ``cite`` policy does not allow."""

    code = "cited_partial"


def _uncitable(p: Partial, t: Target, policy: CitePolicy) -> str:
    """Why ``p`` may not be cited under ``policy`` (empty when it may)."""
    if policy == "any":
        return ""
    if policy == "none":
        return "a true partial"
    if not p.num.is_loss:
        return f"a partial of {p.num}, not of the loss"
    if p.den.step is None or p.den.family not in STATE_FAMILIES or p.den == Ref("h", 0):
        kind = "a parameter" if p.den.is_parameter else "the total loss" if p.den.is_loss else "an input"
        return f"a gradient with respect to {kind}, not a state"
    if t.wrt is not None and p.den == t.wrt:
        return f"a piece of the target {t} itself"
    return ""


def _evaluated_reading(ambiguous: tuple[Partial, ...]) -> dict[Mode, Mode]:
    """Each reading mode → the mode evaluated for it. Readings differ only through ambiguous partials:
    with none, all three are the total reading; the textbook (mixed) one differs from both others only
    when ambiguous partials with respect to a parameter and to a state are both present."""
    kinds = {p.den.is_parameter for p in ambiguous}
    if not kinds:
        return {"total": "total", "immediate": "total", "mixed": "total"}
    if kinds == {True, False}:
        return {"total": "total", "immediate": "immediate", "mixed": "mixed"}
    return {"total": "total", "immediate": "immediate", "mixed": "immediate" if True in kinds else "total"}


def _step_order(name: str) -> tuple[str, int]:
    """``h_2`` before ``h_10``."""
    family, _, step = name.rpartition("_")
    return (family, int(step)) if step.isdigit() else (name, -1)


def _allowed_hidden(num: Ref, den: Ref) -> set[str]:
    return {f"h_{s}" for s in (num.step, den.step) if s is not None}


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


def check(
    expr: str,
    target: str | Target | None = None,
    *,
    model: RNN | None = None,
    notation: Notation | None = None,
    syntax: Syntax = "auto",
    reading: ReadingPolicy | None = None,
    settings: Settings | None = None,
) -> CheckResult:
    """Check one hand-derived answer against the true gradient (or node value).

    ``target`` is text such as ``"dL/dW_hy"``, ``"dL/dW_hy[0,0]"`` or ``"L_2"``;
    when omitted, the answer must be an equation ``lhs = rhs`` whose left side
    names it. Returns a frozen :class:`~bptt_check.results.CheckResult`;
    malformed input gives an ``invalid`` result, never an exception.
    """
    model = model if model is not None else RNN()
    settings = settings if settings is not None else Settings()
    _check_types(model, notation, settings)
    _check_syntax(syntax)
    if not isinstance(expr, str):
        raise ConfigError(f"the answer {expr!r} is not text")
    if reading is not None:
        reading = reading_policy(reading)
        if reading != settings.reading:
            settings = dataclasses.replace(settings, reading=reading)
    if target is None:
        try:
            parsed = parse(expr, model, notation=notation, syntax=syntax)
        except ExpressionError as err:
            return _invalid_without_target(expr, err, model)
        if parsed.lhs is None:
            return _invalid_without_target(
                expr,
                ExpressionError("no target given", hint="pass --target dL/dW_hy, or write the answer as 'lhs = rhs'"),
                model,
            )
        target = target_of(parsed.lhs)
        if target is None:
            return _invalid_without_target(
                expr,
                ExpressionError("the left-hand side names no target", text=expr, position=0,
                                hint="write e.g. 'dL/dW_hy = …' or 'L_2 = …'"),
                model,
            )
    try:
        checker = Checker(target, model=model, notation=notation, settings=settings)
    except ExpressionError as err:
        return _invalid_without_target(expr, err, model, target=str(target))
    return checker.check(expr, syntax=syntax)


def _check_types(model: object, notation: object, settings: object) -> None:
    """API misuse is a :class:`ConfigError` here, not an AttributeError deep inside."""
    if not isinstance(model, RNN):
        raise ConfigError(f"model = {model!r} is not a bptt_check.RNN", hint="e.g. RNN(steps=3)")
    if notation is not None and not isinstance(notation, Notation):
        raise ConfigError(f"notation = {notation!r} is not a bptt_check.Notation",
                          hint="Notation.named('seed') or Notation.from_table({...})")
    if not isinstance(settings, Settings):
        raise ConfigError(f"settings = {settings!r} is not a bptt_check.Settings")


def _check_syntax(syntax: object) -> None:
    if syntax not in SYNTAXES:
        raise ConfigError(f"syntax = {syntax!r} is not a syntax", hint="use 'auto', 'plain' or 'latex'")


def _invalid_without_target(text: str, err: BpttCheckError, model: RNN, target: str = "?") -> CheckResult:
    caret = err.caret() if isinstance(err, ExpressionError) else ""
    return CheckResult(
        verdict="invalid",
        target=target,
        answer=text,
        score=0.0,
        message=str(err),
        diagnoses=(Diagnosis(err.code, str(err)),),
        caret=caret,
        model=model.describe(),
    )
