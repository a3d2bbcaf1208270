"""Diagnosis: say what is wrong with an answer, and how much of it is right.

Two mechanisms, both built from the graph (:mod:`bptt_check.formulas`), not
from a list of strings:

1. **Decomposition.** The truth is a sum of per-path terms T_i (one per loss
   step s and step k). The answer's values at the sample points are fitted as
   ``Σ c_i T_i`` by least squares over the terms of *every* step's loss (so an
   extra L_1 in a last-step-only question is seen); when the rounded
   coefficients are small integers and reproduce the answer within the
   numeric tolerance, the coefficients say which terms are missing
   (``missing_term``, ``missing_path``), extra (``extra_term``) or of the
   wrong sign (``sign_flip``).
2. **Mistake variants.** Each term tree is mutated at one *site* — every
   occurrence of the same factor, e.g. the tanh derivative at step 2 — by the
   mutation kinds below; the answer matching a variant's values names the
   mistake, where it sits, and scores the share of terms left intact.

Scores: ``(#terms right − #terms wrong and present) / #terms``, clipped to [0, 1].
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from . import formulas
from .evaluate import FloatBackend, evaluate
from .formulas import Builder, Term
from .language.ast import Apply, Binary, Call, Expr, Name, Neg, Power, Transpose
from .language.printer import to_plain
from .model import ACTIVATIONS, L_TOTAL, RNN, Ref, Target
from .results import Diagnosis


@dataclass(frozen=True)
class Variant:
    """A wrong answer generated from the truth: its code, sentence, value and score."""

    code: str
    message: str
    expr: Expr
    score: float
    values: np.ndarray


@dataclass(frozen=True)
class Finding:
    """The diagnoses of one answer and its partial credit."""

    diagnoses: tuple[Diagnosis, ...]
    score: float


# -- tree rewriting -------------------------------------------------------------


def _rebuild(node: Expr, f: Callable[[Expr], Expr | None]) -> Expr:
    """Rewrite bottom-up: ``f`` returns a replacement or None to keep the node (children rewritten)."""
    hit = f(node)
    if hit is not None:
        return hit
    if isinstance(node, Binary):
        left, right = _rebuild(node.left, f), _rebuild(node.right, f)
        if left is node.left and right is node.right:
            return node
        shape = _binary_shape(node.op, left.shape, right.shape)
        return Binary(node.op, left, right, shape)
    if isinstance(node, Transpose):
        inner = _rebuild(node.operand, f)
        return node if inner is node.operand else Transpose(inner, inner.shape[::-1])
    if isinstance(node, Neg):
        inner = _rebuild(node.operand, f)
        return node if inner is node.operand else Neg(inner, inner.shape)
    if isinstance(node, Apply):
        inner = _rebuild(node.arg, f)
        return node if inner is node.arg else Apply(node.node, inner, node.shape)
    if isinstance(node, Power):
        inner = _rebuild(node.base, f)
        return node if inner is node.base else Power(inner, node.exponent, node.matrix, inner.shape)
    if isinstance(node, Call) and node.func in ("tanh", "sigmoid", "exp", "log", "sech", "step", "relu"):
        inner = _rebuild(node.args[0], f)
        return node if inner is node.args[0] else Call(node.func, (inner,), inner.shape)
    return node


class _ShapeMismatch(Exception):
    pass


def _binary_shape(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    if op == "@":
        if a == (1, 1):
            return b
        if b == (1, 1):
            return a
        if a[1] != b[0]:
            raise _ShapeMismatch
        return (a[0], b[1])
    if a == (1, 1):
        return b
    if b == (1, 1) or a == b:
        return a
    raise _ShapeMismatch


def _every_step(text: str, k: int) -> str:
    """A step-k formula written for every step: ``1 - h_2**2`` → ``1 - h_t**2`` (k - 1 → t-1)."""
    text = re.sub(rf"_{k}(?!\d)", "_t", text)
    return re.sub(rf"_{k - 1}(?!\d)", "_{t-1}", text) if k > 1 else text


@dataclass(frozen=True)
class _Mutation:
    """One kind of mistake at one site: rewrites the matching nodes of every term.

    ``kind`` groups the sites of the same mistake, so that the mistake made at
    every site at once (``everywhere``) is a variant too.
    """

    code: str
    message: str
    rewrite: Callable[[Expr], Expr | None]
    kind: str = ""
    everywhere: str = ""


def _activation_mutations(b: Builder, k: int) -> Iterator[_Mutation]:
    """Mistakes in the activation derivative f'_k of step k (row model ``b``), named by the model's activation.

    The derivative dropped, the activation h_k itself, ``1 - h_k`` (tanh's square
    or sigmoid's factor h_k forgotten), another activation's derivative, and the
    derivative of the step before.
    """
    act = b.model.activation
    site = b.act_derivative(k)
    text = to_plain(site)
    hk = b.name(Ref("h", k))

    def at(repl: Expr) -> Callable[[Expr], Expr | None]:
        return lambda n: repl if n == site else None

    def mutation(code: str, repl: Expr, kind: str, message: str) -> _Mutation:
        return _Mutation(code, f"{message} (step {k})", at(repl), kind, f"{_every_step(message, k)} (at every step)")

    if act != "relu":
        yield mutation(
            "wrong_activation_derivative", b.sub(b.number(1), hk), "act:1-h",
            f"uses 1 - h_{k} where the {act} derivative {text} belongs",
        )
    yield mutation(
        "wrong_activation_derivative", hk, "act:h", f"uses h_{k} = {act}(a_{k}) where its derivative {text} belongs"
    )
    for other in ACTIVATIONS:
        if other != act:
            wrong = b.act_derivative(k, other)
            yield mutation(
                "wrong_activation_derivative", wrong, f"act:{other}",
                f"uses the {other}'s derivative {to_plain(wrong)} where {act}'s {text} belongs",
            )
    if k > 1:
        prev = b.act_derivative(k - 1)
        yield _Mutation(
            "off_by_one",
            f"uses the {act} derivative of step {k - 1} ({to_plain(prev)}) where step {k}'s {text} belongs",
            at(prev),
            "act:shift",
            f"uses the {act} derivative of the step before ({_every_step(to_plain(prev), k)} where {_every_step(text, k)} belongs)",
        )
    yield _Mutation(
        "missing_activation_derivative",
        f"drops the {act} derivative {text} at step {k}",
        at(b.number(1)),
        "act:none",
        f"drops the {act} derivative {_every_step(text, k)} (at every step)",
    )


def _output_mutations(b: Builder, s: int) -> Iterator[_Mutation]:
    """Mistakes in the output error ``yhat_s - y_s`` = dL_s/dz_s, for the model's loss."""
    ce = b.model.loss == "cross_entropy"
    yhat, y = b.name(Ref("yhat", s)), b.name(Ref("y", s))
    err = b.sub(yhat, y)

    def at(repl: Expr) -> Callable[[Expr], Expr | None]:
        return lambda n: repl if n == err else None

    why = "softmax with cross-entropy" if ce else "the squared error of a linear output"
    yield _Mutation(
        "wrong_output_error",
        f"uses yhat_{s} where the output error yhat_{s} - y_{s} belongs (step {s})",
        at(yhat), "out:yhat",
        f"uses yhat_t where the output error yhat_t - y_t belongs ({why} gives yhat_t - y_t)",
    )
    yield _Mutation(
        "wrong_output_error",
        f"uses -y_{s} where the output error yhat_{s} - y_{s} belongs (step {s})",
        at(b.neg(y)), "out:-y",
        "uses -y_t where the output error yhat_t - y_t belongs"
        + (" (the softmax part yhat_t is missing)" if ce else " (the prediction yhat_t is missing)"),
    )
    if ce:
        yield _Mutation(
            "wrong_output_error",
            f"uses -y_{s} / yhat_{s} (the gradient at yhat_{s}) where the gradient at z_{s}, yhat_{s} - y_{s}, belongs (step {s})",
            at(b.neg(b.div(y, yhat))), "out:-y/yhat",
            "uses -y_t / yhat_t (the gradient at yhat_t) where the gradient at z_t, yhat_t - y_t, belongs:"
            " the softmax's Jacobian is missing",
        )
    else:
        yield _Mutation(
            "extra_factor",
            f"uses 2 * (yhat_{s} - y_{s}) where yhat_{s} - y_{s} belongs (step {s}):"
            " the 1/2 of L_t = 1/2 sum (yhat_t - y_t)**2 cancels the 2 of the square",
            at(b.mul(b.number(2), err)), "out:2x",
            "uses 2 * (yhat_t - y_t) where yhat_t - y_t belongs:"
            " the 1/2 of L_t = 1/2 sum (yhat_t - y_t)**2 cancels the 2 of the square",
        )
    yield _Mutation(
        "sign_flip",
        f"uses y_{s} - yhat_{s} where yhat_{s} - y_{s} belongs (step {s})",
        at(b.sub(y, yhat)), "out:flip",
        "has the opposite sign: y_t - yhat_t where yhat_t - y_t belongs",
    )


def _mutations(model: RNN) -> Iterator[_Mutation]:
    """Every mistake site of ``model``'s gradients, as rewrites of the row-convention terms.

    The messages are in the model's own convention (a column model's outer
    product is ``d @ v.T``).
    """
    b = Builder(model.replace(convention="row"))
    steps = list(model.steps_range())
    for k in steps:
        yield from _activation_mutations(b, k)
    for label in ("W_hh", "W_hy", "W_xh"):
        ref = Ref(label)
        if model.shape(ref)[0] == model.shape(ref)[1]:
            yield _Mutation(
                "missing_transpose",
                f"multiplies by {label} where {label}.T belongs (in the backward pass)",
                lambda n, ref=ref: b.name(ref) if isinstance(n, Transpose) and n.operand == b.name(ref) else None,
            )
    for s in steps:
        yield from _output_mutations(b, s)
    # h_t where h_{t-1} belongs, on the left of an outer product (h_{k-1}.T @ d_k).
    for k in steps:
        prev, cur = b.name(Ref("h", k - 1)), b.name(Ref("h", k))

        def shift(n: Expr, prev: Expr = prev, cur: Expr = cur) -> Expr | None:
            if isinstance(n, Binary) and n.op == "@" and n.left == Transpose(prev, prev.shape[::-1]):
                return Binary("@", b.T(cur), n.right, n.shape)
            return None

        yield _Mutation(
            "off_by_one",
            f"uses h_{k} where h_{k - 1} belongs (the outer product of step {k})",
            shift,
            "shift",
            "uses h_t where h_{t-1} belongs in the outer products (off by one step)",
        )

    # h_{t-1} where h_t belongs (the other direction), and h_{t-1} where x_t belongs.
    def swap_left(old: Ref, new: Ref) -> Callable[[Expr], Expr | None]:
        o, w = b.name(old), b.name(new)

        def rewrite(n: Expr) -> Expr | None:
            if isinstance(n, Binary) and n.op == "@" and n.left == Transpose(o, o.shape[::-1]) and o.shape == w.shape:
                return Binary("@", b.T(w), n.right, n.shape)
            return None

        return rewrite

    for k in steps:
        yield _Mutation(
            "off_by_one",
            f"uses h_{k - 1} where h_{k} belongs (the outer product of step {k})",
            swap_left(Ref("h", k), Ref("h", k - 1)),
            "shift-back",
            "uses h_{t-1} where h_t belongs in the outer products (off by one step)",
        )
        if model.input_size == model.hidden_size:
            yield _Mutation(
                "wrong_input",
                f"uses h_{k - 1} where x_{k} belongs (the input of step {k})",
                swap_left(Ref("x", k), Ref("h", k - 1)),
                "x-for-h",
                "uses h_{t-1} where x_t belongs in the outer products (the recurrent input for the external one)",
            )
    # The wrong weight in the backward pass: W_hh.T where W_xh.T belongs, and the converse.
    for a, c in (("W_xh", "W_hh"), ("W_hh", "W_xh")):
        wa, wc = b.name(Ref(a)), b.name(Ref(c))
        if wa.shape == wc.shape:
            yield _Mutation(
                "wrong_weight",
                f"multiplies by {c}.T where {a}.T belongs",
                lambda n, wa=wa, wc=wc: b.T(wc) if n == Transpose(wa, wa.shape[::-1]) else None,
            )

    # The transposed outer product: d.T @ v instead of v.T @ d, one site per left vector v.
    lefts = [Ref("h", k) for k in range(0, model.steps + 1)] + [Ref("x", k) for k in steps]
    for ref in lefts:
        v = b.name(ref)

        def flip(n: Expr, v: Expr = v) -> Expr | None:
            if isinstance(n, Binary) and n.op == "@" and n.left == Transpose(v, v.shape[::-1]) and n.right.shape[0] == 1:
                d = n.right
                return Binary("@", Transpose(d, d.shape[::-1]), v, (d.shape[1], v.shape[1]))
            return None

        wrong, right = (f"{ref} @ (…).T", f"(…) @ {ref}.T") if model.column else (f"(…).T @ {ref}", f"{ref}.T @ (…)")
        yield _Mutation(
            "transposed_factor",
            f"writes the outer product with {ref} the wrong way round ({wrong} instead of {right})",
            flip,
            "flip",
            "writes the outer products the wrong way round ("
            + ("v @ d.T instead of d @ v.T" if model.column else "d.T @ v instead of v.T @ d") + ")",
        )


def _combine(group: list[_Mutation]) -> Callable[[Expr], Expr | None]:
    def rewrite(n: Expr) -> Expr | None:
        for m in group:
            hit = m.rewrite(n)
            if hit is not None:
                return hit
        return None

    return rewrite


def _multiples_only(c: np.ndarray, want: np.ndarray) -> bool:
    """Whether the fit differs from the truth only by true terms counted more than once."""
    return bool(np.all((c == want) | ((want == 1) & (c > 1))))


# -- the diagnoser ---------------------------------------------------------------


class Diagnoser:
    """Everything needed to diagnose answers to one gradient target, computed once.

    Forms and mistake variants are built on the row model (where the mutation
    sites are written) and carried to the model's convention with
    :func:`formulas.to_convention` before they are evaluated; ``terms`` and the
    variants' ``expr`` are in the model's own convention.
    """

    def __init__(self, model: RNN, target: Target, backend: FloatBackend, expected: np.ndarray, rtol: float, atol: float) -> None:
        self.model = model
        self.row = model.replace(convention="row")
        self._memo: formulas.Memo = {}  # row → column conversions, shared by the variants
        self.target = target
        self.expected = expected
        self.rtol, self.atol = rtol, atol
        self._backend = backend
        self.terms: tuple[Term, ...] = ()
        self.candidates: tuple[Term, ...] = ()
        self.variants: tuple[Variant, ...] = ()
        if target.wrt is None:
            self.variants = tuple(self._forward_variants())
            return
        if not target.of.is_loss:
            return
        try:
            self.terms = formulas.terms(model, target.of, target.wrt)
            every = model.replace(loss_at="all") if target.of == L_TOTAL else model
            self.candidates = formulas.terms(every, target.of, target.wrt)
        except ValueError:
            return
        self._term_values = np.stack([self._value(t.expr) for t in self.candidates], axis=-1) if self.candidates else None
        self.variants = tuple(self._variants())

    def _value(self, expr: Expr) -> np.ndarray:
        v = evaluate(expr, self._backend)
        if self.target.index is not None:
            r, c = self.target.index
            v = v[:, r : r + 1, c : c + 1]
        return v

    def _close(self, a: np.ndarray, b: np.ndarray) -> bool:
        return a.shape == b.shape and bool(np.all(np.abs(a - b) <= self.atol + self.rtol * np.abs(b)))

    def _forms(self) -> list[list[Expr]]:
        """The truth in the row convention as unrolled per-path terms, and in the per-step BPTT form (dL/dh_t left as partials)."""
        assert self.target.wrt is not None
        forms = [[t.expr for t in formulas.terms(self.row, self.target.of, self.target.wrt)]]
        steps = [e for _, e in formulas.per_step(self.row, self.target.of, self.target.wrt)]
        if steps != forms[0]:
            forms.append(steps)
        return forms

    def _variants(self) -> Iterator[Variant]:
        sites = list(_mutations(self.model))
        kinds: dict[str, list[_Mutation]] = {}
        for m in sites:
            if m.kind:
                kinds.setdefault(m.kind, []).append(m)
        candidates = sites + [
            _Mutation(group[0].code, group[0].everywhere, _combine(group)) for group in kinds.values() if len(group) > 1
        ]
        seen: list[np.ndarray] = [self.expected]
        for form in self._forms():
            n = len(form)
            for m in candidates:
                exprs, touched = [], 0
                try:
                    for e in form:
                        new = _rebuild(e, m.rewrite)
                        touched += new is not e
                        exprs.append(new)
                except _ShapeMismatch:
                    continue
                if not touched or any(e.shape != form[0].shape for e in exprs):
                    continue
                expr = formulas.to_convention(Builder(self.row).total(exprs), self.model, self._memo)
                values = self._value(expr)
                if any(self._close(values, s) for s in seen):
                    continue  # indistinguishable from the truth or from an earlier variant
                seen.append(values)
                yield Variant(m.code, m.message, expr, max(0.0, (n - touched) / n), values)

    def _forward_variants(self) -> Iterator[Variant]:
        """Mistakes in an unrolled forward expression: a missing activation, swapped weights or inputs."""
        if self.target.of in self.model.leaves():
            return
        truth = formulas.forward(self.row, self.target.of)
        b = Builder(self.row)
        act = self.model.activation
        mutations: list[_Mutation] = []
        for k in self.model.steps_range():
            h = Ref("h", k)
            mutations.append(_Mutation(
                "missing_activation",
                f"is missing the {act} of step {k}: a_{k} stands where h_{k} = {act}(a_{k}) belongs",
                lambda n, h=h: n.arg if isinstance(n, Apply) and n.node == h else None,
            ))
            mutations.append(_Mutation(
                "off_by_one",
                f"uses x_{k + 1} where x_{k} belongs" if k < self.model.steps else f"uses x_{k - 1} where x_{k} belongs",
                lambda n, k=k: b.name(Ref("x", k + 1 if k < self.model.steps else k - 1))
                if isinstance(n, Name) and n.ref == Ref("x", k) and self.model.steps > 1 else None,
            ))
        if self.model.input_size == self.model.hidden_size:
            mutations.append(_Mutation(
                "swapped_weights", "swaps W_xh and W_hh",
                lambda n: b.name(Ref("W_hh")) if n == b.name(Ref("W_xh")) else (
                    b.name(Ref("W_xh")) if n == b.name(Ref("W_hh")) else None),
            ))
        seen = [self.expected]
        for m in mutations:
            try:
                e = _rebuild(truth, m.rewrite)
            except _ShapeMismatch:
                continue
            if e is truth or e.shape != truth.shape:
                continue
            e = formulas.to_convention(e, self.model, self._memo)
            values = self._value(e)
            if any(self._close(values, s) for s in seen):
                continue
            seen.append(values)
            yield Variant(m.code, m.message, e, 0.0, values)

    # -- diagnosing ----------------------------------------------------------

    def diagnose(self, answer: np.ndarray) -> Finding:
        """Diagnoses and partial credit for an answer's float values (P, *target shape)."""
        if answer.shape != self.expected.shape or not np.all(np.isfinite(answer)):
            return Finding((), 0.0)
        if np.all(np.abs(answer) <= self.atol):
            return Finding((Diagnosis("zero_answer", "is zero at every sample point, and the gradient is not"),), 0.0)
        if self.target.index is not None:
            entry = self._other_entry(answer)
            if entry is not None:
                return entry
        fit = self._fit(answer) if self.terms else None
        if fit is not None and not _multiples_only(*fit):
            return self._explain(*fit)
        # a term counted k times may be a named mistake with the same values (2 * (yhat - y) in squared error)
        for v in self.variants:
            if self._close(answer, v.values):
                return Finding((Diagnosis(v.code, v.message),), v.score)
        return self._explain(*fit) if fit is not None else Finding((), 0.0)

    def _fit(self, answer: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The answer as ``Σ c_i T_i`` over the candidate terms: (c, the truth's coefficients), or None
        when no small-integer fit reproduces it or when it is the truth."""
        A = self._term_values
        if A is None:
            return None
        P = answer.shape[0]
        M = A.reshape(P * int(np.prod(answer.shape[1:])), -1)
        rhs = answer.reshape(-1)
        coef, *_ = np.linalg.lstsq(M, rhs, rcond=None)
        c = np.rint(coef)
        if np.any(np.abs(coef - c) > 1e-6) or np.any(np.abs(c) > 3):
            return None
        if not self._close(answer, (A @ c).reshape(answer.shape)):
            return None
        want = np.array([1.0 if t in self.terms else 0.0 for t in self.candidates])
        if np.array_equal(c, want):
            return None  # it is the truth: nothing to say
        return c, want

    def _explain(self, c: np.ndarray, want: np.ndarray) -> Finding:
        diagnoses: list[Diagnosis] = []
        cands = self.candidates
        n = len(self.terms)
        right = sum(1 for ci, wi in zip(c, want) if wi == 1 and ci == 1)
        wrong_present = sum(1 for ci, wi in zip(c, want) if ci != 0 and ci != wi)
        scale = c[want == 1][0] if n else 0.0
        if np.all(c == -want) and n:
            diagnoses.append(Diagnosis("sign_flip", "has the opposite sign of the gradient: y - yhat where yhat - y belongs"))
        elif n and abs(scale) > 1 and np.array_equal(c, scale * want):
            note = (
                "; the 1/2 of L_t = 1/2 sum (yhat_t - y_t)**2 cancels the 2 of the square"
                if scale == 2 and self.model.loss == "squared_error"
                else ""
            )
            diagnoses.append(Diagnosis("extra_factor", f"is {scale:g} × the gradient (a stray factor {scale:g} in every term{note})"))
        else:
            missing = [t for t, ci, wi in zip(cands, c, want) if wi == 1 and ci == 0]
            extra = [t for t, ci, wi in zip(cands, c, want) if wi == 0 and ci != 0]
            flipped = [t for t, ci, wi in zip(cands, c, want) if wi == 1 and ci == -1]
            doubled = [t for t, ci, wi in zip(cands, c, want) if wi == 1 and ci > 1]
            present_steps = {t.loss_step for t, ci in zip(cands, c) if ci != 0}
            diagnoses += self._missing(missing, present_steps)
            for t in extra:
                diagnoses.append(
                    Diagnosis("extra_term", f"adds a term for {t.description}, which is not part of {self.target.of}"
                              + (" (the loss is at the last step only)" if self.model.loss_at == "last" else ""))
                )
            for t in flipped:
                diagnoses.append(Diagnosis("sign_flip", f"has the sign of the term for {t.description} flipped"))
            for t in doubled:
                diagnoses.append(Diagnosis("extra_term", f"counts the term for {t.description} more than once"))
        score = max(0.0, (right - wrong_present) / n) if n else 0.0
        return Finding(tuple(diagnoses), score)

    def _missing(self, missing: list[Term], present_steps: set[int]) -> list[Diagnosis]:
        """Name the missing terms by the largest group they fill: a step of the sum over t, a loss, a path."""
        out: list[Diagnosis] = []
        left = list(missing)
        for k in self.model.steps_range():
            group = [t for t in self.terms if t.step == k]
            if group and all(t in left for t in group) and any(not t.recurrent for t in group):
                shown = self._step_term(k)
                out.append(Diagnosis("missing_term", f"misses the term of step {k} of the sum over t" + (f" ({shown})" if shown else "")))
                left = [t for t in left if t not in group]
        for s in sorted({t.loss_step for t in left}):
            group = [t for t in self.terms if t.loss_step == s]
            whole = len(group) > 1 and all(t in left for t in group)
            single = len(group) == 1 and group[0] in left and not group[0].recurrent and s not in present_steps
            if whole or single:
                only = sorted(present_steps)
                note = f" (it keeps only the loss of step {only[0]})" if len(only) == 1 and len(self.model.loss_steps) > 1 else ""
                out.append(Diagnosis("missing_term", f"misses the contribution of L_{s}, the loss at step {s}{note}"))
                left = [t for t in left if t not in group]
        for t in left:
            if t.recurrent:
                out.append(Diagnosis("missing_path", f"drops the path from {t.description} (where the gradient reaches step {t.step})"))
            else:
                out.append(Diagnosis("missing_term", f"drops the term of {t.description}"))
        return out

    def _step_term(self, k: int) -> str:
        """Step k's term of a weight gradient in the model's convention: ``h_{k-1}.T @ dL/da_k`` (column ``dL/da_k @ h_{k-1}.T``)."""
        wrt = self.target.wrt
        left = {"W_hh": Ref("h", k - 1), "W_xh": Ref("x", k), "W_hy": Ref("h", k)}.get(wrt.family if wrt else "")
        if left is None:
            return ""
        b = Builder(self.row)
        node = Ref("z" if left == Ref("h", k) else "a", k)
        term = b.matmul(b.T(b.name(left)), b.partial(self.target.of, node))
        return to_plain(formulas.to_convention(term, self.model))

    def _other_entry(self, answer: np.ndarray) -> Finding | None:
        """An element answer that is another entry of the gradient (swapped indices, wrong column)."""
        assert self.target.wrt is not None and self.target.index is not None
        if not self.target.of.is_loss:
            return None
        full = evaluate(formulas.gradient(self.model, self.target.of, self.target.wrt), self._backend)
        r, c = self.target.index
        for i in range(full.shape[1]):
            for j in range(full.shape[2]):
                if (i, j) != (r, c) and self._close(answer, full[:, i : i + 1, j : j + 1]):
                    other = Target(self.target.of, self.target.wrt, (i, j))
                    code = "swapped_index" if (i, j) == (c, r) else "wrong_entry"
                    how = "indices swapped" if code == "swapped_index" else "the wrong entry"
                    return Finding((Diagnosis(code, f"is the entry {other} ({how}), not {self.target}"),), 0.0)
        return None
