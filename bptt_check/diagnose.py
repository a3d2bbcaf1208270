"""Diagnosis: say what is wrong with an answer, and how much of it is right.

Two mechanisms, both built from the graph (:mod:`bptt_check.formulas`), not
from a list of strings:

1. **Decomposition.** The truth is a sum of per-path terms T_i (one per loss
   step s and step k). The answer's values at the sample points are fitted as
   ``Σ c_i T_i`` over the terms of *every* step's loss (so an extra L_1 in a
   last-step-only question is seen): by least squares while there are few
   terms (:data:`FULL_FIT_TERMS`), and past that — T²/2 terms outnumber the
   values at the sample points — as the truth with one structured group
   changed: a step of the sum over t, a loss, the paths of one length (a
   truncated backward pass), a run of those from either end, or one path,
   missing, doubled, flipped or added. The coefficients say which terms are
   missing (``missing_term``, ``missing_path``), extra (``extra_term``) or of
   the wrong sign (``sign_flip``); many of one kind are said in one line. The
   terms' values come from one backward pass over all loss steps at once.
2. **Mistake variants.** The truth, as per-path terms (few paths) or as the
   BPTT recursion (a DAG of O(T) nodes), and in the per-step form, is mutated
   at one *site* — every occurrence of the same factor, e.g. the tanh
   derivative at step 2 — or at every site of a kind, by the mutation kinds
   below; only terms naming the site's step are rewritten, and a variant's
   value is the truth's with its changed terms replaced. The answer matching
   a variant's values names the mistake, where it sits, and scores the share
   of terms left intact. Variants are built on the first answer that needs them.

Scores: ``(#terms right − #terms wrong and present) / #terms``, clipped to [0, 1].
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator

import numpy as np

from . import formulas
from .evaluate import FloatBackend, evaluate
from .formulas import Builder, Term
from .language.ast import Apply, Binary, Call, Expr, Name, Neg, Number, Partial, Power, Transpose, bottom_up, walk
from .language.printer import to_plain
from .model import ACTIVATIONS, L_TOTAL, RNN, Ref, Target
from .results import Diagnosis, step_range


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


_ELEMENTWISE = ("tanh", "sigmoid", "exp", "log", "sech", "step", "relu")


def _kids(node: Expr) -> tuple[Expr, ...]:
    """The children :func:`_rebuild` descends into (others are kept as they are)."""
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, (Transpose, Neg)):
        return (node.operand,)
    if isinstance(node, Apply):
        return (node.arg,)
    if isinstance(node, Power):
        return (node.base,)
    if isinstance(node, Call) and node.func in _ELEMENTWISE:
        return (node.args[0],)
    return ()


Rewrites = dict[int, tuple[Expr, Expr]]
"""Nodes already rewritten, by identity: (node, its rewrite); each entry keeps its node alive."""


def _rebuild(node: Expr, f: Callable[[Expr], Expr | None], memo: Rewrites | None = None) -> Expr:
    """Rewrite top-down: ``f`` returns a replacement (not descended into) or None to keep the node
    with its children rewritten.

    Iterative and memoized by node identity: a subtree shared by many terms is
    rewritten once when the same ``memo`` is passed for all of them, and a
    tree as deep as a long recursion needs no call stack. An unchanged node is
    returned as itself, so ``new is old`` says whether a term was touched.
    """
    return bottom_up(node, _kids, lambda cur, value: _remake(cur, [value(k) for k in _kids(cur)]), stop=f, memo=memo)


def _remake(node: Expr, kids: list[Expr]) -> Expr:
    """``node`` with its (rewritten) children; itself when none changed."""
    if all(new is old for new, old in zip(kids, _kids(node))):
        return node
    if isinstance(node, Binary):
        left, right = kids
        return Binary(node.op, left, right, _binary_shape(node.op, left.shape, right.shape))
    (inner,) = kids
    if isinstance(node, Transpose):
        return Transpose(inner, inner.shape[::-1])
    if isinstance(node, Neg):
        return Neg(inner, inner.shape)
    if isinstance(node, Apply):
        return Apply(node.node, inner, node.shape)
    if isinstance(node, Power):
        return Power(inner, node.exponent, node.matrix, inner.shape)
    assert isinstance(node, Call)
    return Call(node.func, (inner,), inner.shape)


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
    steps: tuple[int, ...] = ()
    """The steps named by the leaves of the site (none: a site at every step, e.g. W_hh.T)."""


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
        yield from _at_steps(_activation_mutations(b, k), k)
    for label in ("W_hh", "W_hy", "W_xh"):
        ref = Ref(label)
        if model.shape(ref)[0] == model.shape(ref)[1]:
            yield _Mutation(
                "missing_transpose",
                f"multiplies by {label} where {label}.T belongs (in the backward pass)",
                lambda n, ref=ref: b.name(ref) if isinstance(n, Transpose) and n.operand == b.name(ref) else None,
            )
    for s in steps:
        yield from _at_steps(_output_mutations(b, s), s)
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
            (k - 1,),
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
            (k,),
        )
        if model.input_size == model.hidden_size:
            yield _Mutation(
                "wrong_input",
                f"uses h_{k - 1} where x_{k} belongs (the input of step {k})",
                swap_left(Ref("x", k), Ref("h", k - 1)),
                "x-for-h",
                "uses h_{t-1} where x_t belongs in the outer products (the recurrent input for the external one)",
                (k,),
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
            (ref.step,) if ref.step is not None else (),
        )


def _at_steps(mutations: Iterator[_Mutation], k: int) -> Iterator[_Mutation]:
    for m in mutations:
        yield dataclasses.replace(m, steps=(k,))


_NEAR = 3
"""Every mutation site is at most this deep (``1 - h_k**2``, ``h_{k-1}.T @ d``): the steps a rewrite
can match at a node are those of the leaves within this depth."""


def _near_steps(node: Expr, depth: int = _NEAR) -> set[int]:
    """The steps of the named leaves within ``depth`` levels of ``node``."""
    out: set[int] = set()
    todo = [(node, 0)]
    while todo:
        cur, d = todo.pop()
        if isinstance(cur, Name):
            if cur.ref.step is not None:
                out.add(cur.ref.step)
        elif d < depth:
            todo.extend((k, d + 1) for k in _kids(cur))
    return out


def _combine(group: list[_Mutation]) -> Callable[[Expr], Expr | None]:
    """One rewrite for a mistake made at every site of its kind: each node tries only the sites
    that name its steps (a node cannot match a site whose leaves it lacks), so the cost per
    node does not grow with T."""
    anywhere = [m for m in group if not m.steps]
    by_step: dict[int, list[_Mutation]] = {}
    for m in group:
        for k in m.steps:
            by_step.setdefault(k, []).append(m)

    def rewrite(n: Expr) -> Expr | None:
        for m in anywhere:
            hit = m.rewrite(n)
            if hit is not None:
                return hit
        if not by_step:
            return None
        tried: set[int] = set()
        for k in sorted(_near_steps(n)):
            for m in by_step.get(k, ()):
                if id(m) in tried:
                    continue
                tried.add(id(m))
                hit = m.rewrite(n)
                if hit is not None:
                    return hit
        return None

    return rewrite


def _multiples_only(c: np.ndarray, want: np.ndarray) -> bool:
    """Whether the fit differs from the truth only by true terms counted more than once."""
    return bool(np.all((c == want) | ((want == 1) & (c > 1))))


# -- the diagnoser ---------------------------------------------------------------


_NO_TREE: Expr = Number(Fraction(0))
"""The tree of a term that is only named (diagnoses need its step, loss step and name)."""


def _balanced_sum(exprs: list[Expr]) -> Expr:
    """``e_1 + … + e_n`` as a tree of depth log n."""
    while len(exprs) > 1:
        pairs = [Binary("+", a, b, _binary_shape("+", a.shape, b.shape)) for a, b in zip(exprs[::2], exprs[1::2])]
        exprs = pairs + ([exprs[-1]] if len(exprs) % 2 else [])
    return exprs[0]


class _Seen:
    """Values met so far: a value within tolerance of the truth or of an earlier one is not new.

    Looked up by a fixed random projection of the values, rounded far more coarsely
    than the tolerance (with both neighbouring buckets), then compared by the tolerance rule.
    """

    def __init__(self, truth: np.ndarray, close: Callable[[np.ndarray, np.ndarray], bool]) -> None:
        self.truth, self.close = truth, close
        self.buckets: dict[int, list[np.ndarray]] = {}
        self.weights = np.random.default_rng(0).uniform(0.5, 1.0, truth.size)
        self.scale = max(float(np.sum(np.abs(truth).reshape(-1) * self.weights)), 1e-300) * 1e-4

    def has(self, v: np.ndarray) -> bool:
        if self.close(v, self.truth):
            return True
        p = float(np.sum(np.nan_to_num(v, nan=0.0, posinf=1e300, neginf=-1e300).reshape(-1) * self.weights))
        key = int(np.floor(p / self.scale)) if np.isfinite(p) and abs(p / self.scale) < 1e18 else 0
        if any(self.close(v, w) for d in (-1, 0, 1) for w in self.buckets.get(key + d, ())):
            return True
        self.buckets.setdefault(key, []).append(v)
        return False


FULL_FIT_TERMS = 300
"""Up to this many candidate terms (and at most half as many as the answer has values) the answer
is fitted as any small-integer combination of them; past it, as the truth with one structured
group of terms missing, extra, doubled or flipped (a step, a loss, the paths of one length, a run
of those, or one path), which stays identifiable however long the sequence."""

UNROLLED_FORM_PATHS = 45
"""Mistake variants are built on the per-path terms up to this many paths (T = 9 with a loss at
every step); past it on the BPTT recursion, whose size grows as T, not T²."""

SINGLE_SITE_STEPS = 32
"""Past this many steps, a mistake at one step of the recursion (which changes every earlier
step's gradient: O(T) to evaluate, O(T) such sites) is looked for in the per-step form only;
a mistake made at every step is looked for in both forms at any length."""


@dataclass
class _Form:
    """The truth written one way: its terms, their values, and which terms name each step."""

    terms: list[Expr]
    values: list[np.ndarray]
    total: np.ndarray
    by_step: dict[int, list[int]] | None  # None: every term may hold any site (the recursion)
    recursive: bool = False


class Diagnoser:
    """Everything needed to diagnose answers to one gradient target, computed once and lazily.

    Forms and mistake variants are built on the row model (where the mutation
    sites are written) and carried to the model's convention with
    :func:`formulas.to_convention` before they are evaluated; the variants'
    ``expr`` are in the model's own convention. The candidate terms' values come
    from one backward pass over all loss steps at once (vectorized over them),
    so their cost grows as T², in arrays, not as T³ in trees.
    """

    def __init__(self, model: RNN, target: Target, backend: FloatBackend, expected: np.ndarray, rtol: float, atol: float) -> None:
        self.model = model
        self.row = model.replace(convention="row")
        self._memo: formulas.Memo = {}  # row → column conversions, shared by the variants
        self.target = target
        self.expected = expected
        self.rtol, self.atol = rtol, atol
        self._backend = backend
        self.paths: tuple[tuple[int, int, str], ...] = ()
        self.candidate_paths: tuple[tuple[int, int, str], ...] = ()
        self._every = model
        if target.wrt is None or not target.of.is_loss:
            return
        try:
            self.paths = formulas.paths(model, target.of, target.wrt)
            self._every = model.replace(loss_at="all") if target.of == L_TOTAL else model
            self.candidate_paths = formulas.paths(self._every, target.of, target.wrt)
        except ValueError:
            self.paths = self.candidate_paths = ()
            return
        wanted = {(s, k) for s, k, _ in self.paths}
        self._want = np.array([1.0 if (s, k) in wanted else 0.0 for s, k, _ in self.candidate_paths])
        self._s = np.array([s for s, _, _ in self.candidate_paths], dtype=int)
        self._k = np.array([k for _, k, _ in self.candidate_paths], dtype=int)

    # -- the terms ---------------------------------------------------------

    @functools.cached_property
    def terms(self) -> tuple[Term, ...]:
        """The target's terms, named (their trees are built only by :func:`formulas.terms` when needed)."""
        return tuple(Term(_NO_TREE, s, k, kind) for s, k, kind in self.paths)

    @functools.cached_property
    def candidates(self) -> tuple[Term, ...]:
        """The terms of every step's loss (so that an extra L_1 in a last-step-only question is seen)."""
        return tuple(Term(_NO_TREE, s, k, kind) for s, k, kind in self.candidate_paths)

    @functools.cached_property
    def variants(self) -> tuple[Variant, ...]:
        """The mistake variants, built on the first answer that needs them."""
        if self.target.wrt is None:
            return tuple(self._forward_variants())
        if not self.paths:
            return ()
        return tuple(self._variants())

    def _value(self, expr: Expr) -> np.ndarray:
        return self._slice(evaluate(expr, self._backend))

    def _slice(self, v: np.ndarray) -> np.ndarray:
        if self.target.index is not None:
            r, c = self.target.index
            v = v[..., r : r + 1, c : c + 1]
        return v

    def _row_value(self, row_expr: Expr) -> np.ndarray:
        """A row-model expression's value, in the row layout (whatever the model's convention)."""
        v = evaluate(formulas.to_convention(row_expr, self.model, self._memo), self._backend)
        return np.swapaxes(v, -1, -2) if self.model.column else v

    def _close(self, a: np.ndarray, b: np.ndarray) -> bool:
        return a.shape == b.shape and bool(np.all(np.abs(a - b) <= self.atol + self.rtol * np.abs(b)))

    def path_values(self) -> Iterator[tuple[list[int], np.ndarray]]:
        """The candidate terms' values in chunks: (indices into ``candidates``, values (n, P, *target shape)).

        For the gradients that run back through the hidden states, one backward
        pass carries ``g_k^{(s)}`` for every loss step s ≥ k at once:
        ``g_s^{(s)} = (yhat_s - y_s) @ W_hy.T``, ``g_k^{(s)} = (g_{k+1}^{(s)} * f'_{k+1}) @ W_hh.T``
        (row layout; the formulas of :mod:`bptt_check.formulas`, the tests check them against its trees).
        """
        cands = self.candidate_paths
        if not cands:
            return
        of, wrt = self.target.of, self.target.wrt
        assert wrt is not None
        index = {(s, k): i for i, (s, k, _) in enumerate(cands)}
        if cands[0][2] in ("output", "loss"):
            for i, t in enumerate(formulas.terms_of(self._every, of, wrt, cands)):
                yield [i], self._value(t.expr)[None]
            return
        b = Builder(self._every.replace(convention="row"))
        fam, step = wrt.family, wrt.step
        W_hh_T = self._row_value(b.T(b.name(Ref("W_hh"))))
        losses = sorted({s for s, _, _ in cands})
        needed = {k for _, k, _ in cands}
        g: np.ndarray | None = None  # (S, P, 1, H): g_k^{(s)} for the active losses s, ascending
        active: list[int] = []
        f_next: np.ndarray | None = None
        for k in range(losses[-1], 0, -1):
            f_k = self._row_value(b.act_derivative(k))
            if g is not None:
                g = np.matmul(g * f_next, W_hh_T)
            if k in losses:
                new = self._row_value(b.matmul(formulas.output_error(b, k), b.T(b.name(Ref("W_hy")))))[None]
                g = new if g is None else np.concatenate([new, g])
                active.insert(0, k)
            f_next = f_k
            if k not in needed or g is None:
                continue
            d = g * f_k
            if fam == "W_hh":
                vals = np.matmul(self._row_value(b.T(b.name(Ref("h", k - 1))))[None], d)
            elif fam == "W_xh":
                vals = np.matmul(self._row_value(b.T(b.name(Ref("x", k))))[None], d)
            elif fam in ("b_h", "a"):
                vals = d
            elif fam == "h":
                vals = np.matmul(d, W_hh_T) if step == 0 else g
            else:  # x
                vals = np.matmul(d, self._row_value(b.T(b.name(Ref("W_xh")))))
            if self.model.column:
                vals = np.swapaxes(vals, -1, -2)
            yield [index[(s, k)] for s in active], self._slice(vals)

    @functools.cached_property
    def _term_values(self) -> np.ndarray | None:
        """All candidate values as the columns of one matrix, when few enough for a least-squares fit."""
        n, size = len(self.candidate_paths), int(np.prod(self.expected.shape))
        if not n or n > FULL_FIT_TERMS or 2 * n > size:
            return None
        out = np.zeros((*self.expected.shape, n))
        for idx, vals in self.path_values():
            out[..., idx] = np.moveaxis(vals, 0, -1)
        return out

    @functools.cached_property
    def _groups(self) -> dict[tuple[str, bool], np.ndarray]:
        """Sums of candidate values by step k, by loss step s and by path length s - k, apart for
        the target's own terms (True) and the other losses' (False): (groups by key, P, *shape)."""
        n_steps = int(self._s.max()) if len(self._s) else 0
        shape = self.expected.shape
        by = {(name, w): np.zeros((n_steps + 1, *shape)) for name in ("step", "loss", "lag") for w in (True, False)}
        for idx, vals in self.path_values():
            s, k, w = self._s[idx], self._k[idx], self._want[idx] == 1
            for wanted in (True, False):
                sel = w == wanted
                if sel.any():
                    np.add.at(by["step", wanted], k[sel], vals[sel])
                    np.add.at(by["loss", wanted], s[sel], vals[sel])
                    np.add.at(by["lag", wanted], (s - k)[sel], vals[sel])
        return by

    # -- mistake variants ------------------------------------------------------

    def _form(self, terms: list[Expr], recursive: bool = False) -> _Form:
        values = [self._value(formulas.to_convention(e, self.model, self._memo)) for e in terms]
        by_step: dict[int, list[int]] | None = None
        if not recursive:
            by_step = {}
            for i, e in enumerate(terms):
                for k in {n.ref.step for n in walk(e) if isinstance(n, Name) and n.ref.step is not None}:
                    by_step.setdefault(k, []).append(i)
        return _Form(terms, values, np.sum(values, axis=0), by_step, recursive)

    def _forms(self) -> list[_Form]:
        """The truth in the row convention as unrolled per-path terms (few paths) or as the BPTT
        recursion (dL/dh_t written out in terms of dL/dh_{t+1}, each once), and in the per-step
        BPTT form (dL/dh_t left as partials)."""
        of, wrt = self.target.of, self.target.wrt
        assert wrt is not None
        steps = [e for _, e in formulas.per_step(self.row, of, wrt)]
        if len(self.paths) <= UNROLLED_FORM_PATHS:
            unrolled = [t.expr for t in formulas.terms(self.row, of, wrt)]
            forms = [self._form(unrolled)]
            if steps != unrolled:
                forms.append(self._form(steps))
            return forms
        forms = [self._form(steps)]
        recursion = self._recursion(steps)
        if recursion is not None:
            forms.append(self._form(recursion, recursive=True))
        return forms

    def _recursion(self, steps: list[Expr]) -> list[Expr] | None:
        """The per-step terms with each ``dL/dh_t`` replaced by its recursion (a DAG of O(T) nodes)."""
        of = self.target.of
        written: dict[Ref, Expr] = {}

        def substitute(n: Expr) -> Expr | None:
            if isinstance(n, Partial) and n.num == of and n.num_index is None and n.den_index is None:
                return written.get(n.den)
            return None

        for ref, e in formulas.hidden_recursion(self.row, of):  # from the last step down
            written[ref] = _rebuild(e, substitute)
        memo: Rewrites = {}
        out = [_rebuild(e, substitute, memo) for e in steps]
        return None if all(new is old for new, old in zip(out, steps)) else out

    def _variants(self) -> Iterator[Variant]:
        sites = list(_mutations(self.model))
        kinds: dict[str, list[_Mutation]] = {}
        for m in sites:
            if m.kind:
                kinds.setdefault(m.kind, []).append(m)
        combined = [
            _Mutation(group[0].code, group[0].everywhere, _combine(group)) for group in kinds.values() if len(group) > 1
        ]
        seen = _Seen(self.expected, self._close)
        long = self.model.steps > SINGLE_SITE_STEPS
        for form in self._forms():
            n = len(form.terms)
            for m in sites + combined:
                if form.recursive and long and m.steps:
                    continue
                if form.by_step is None or not m.steps:
                    tried = range(n)
                else:
                    tried = sorted({i for k in m.steps for i in form.by_step.get(k, ())})
                memo: Rewrites = {}
                changed: dict[int, Expr] = {}
                try:
                    for i in tried:
                        new = _rebuild(form.terms[i], m.rewrite, memo)
                        if new is not form.terms[i]:
                            changed[i] = new
                except _ShapeMismatch:
                    continue
                shape = form.terms[0].shape
                if not changed or any(e.shape != shape for e in changed.values()):
                    continue
                new_part = formulas.to_convention(_balanced_sum(list(changed.values())), self.model, self._memo)
                values = form.total - sum(form.values[i] for i in changed) + self._value(new_part)
                if seen.has(values):
                    continue  # indistinguishable from the truth or from an earlier variant
                exprs = [changed.get(i, e) for i, e in enumerate(form.terms)]
                expr = formulas.to_convention(Builder(self.row).total(exprs), self.model, self._memo)
                yield Variant(m.code, m.message, expr, max(0.0, (n - len(changed)) / n), values)

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
        fit = self._fit(answer) if self.paths else None
        if fit is not None and not _multiples_only(*fit):
            return self._explain(*fit)
        # a term counted k times may be a named mistake with the same values (2 * (yhat - y) in squared error)
        for v in self.variants:
            if self._close(answer, v.values):
                return Finding((Diagnosis(v.code, v.message),), v.score)
        return self._explain(*fit) if fit is not None else Finding((), 0.0)

    def _fit(self, answer: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The answer as ``Σ c_i T_i`` over the candidate terms: (c, the truth's coefficients), or None
        when no fit reproduces it or when it is the truth."""
        A = self._term_values
        want = self._want
        if A is None:
            return self._fit_groups(answer)
        P = answer.shape[0]
        M = A.reshape(P * int(np.prod(answer.shape[1:])), -1)
        rhs = answer.reshape(-1)
        coef, *_ = np.linalg.lstsq(M, rhs, rcond=None)
        c = np.rint(coef)
        if np.any(np.abs(coef - c) > 1e-6) or np.any(np.abs(c) > 3):
            return None
        if not self._close(answer, (A @ c).reshape(answer.shape)):
            return None
        if np.array_equal(c, want):
            return None  # it is the truth: nothing to say
        return c, want

    def _fit_groups(self, answer: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The answer as the truth with one structured group of terms changed (see :data:`FULL_FIT_TERMS`).

        In order: the whole scaled (a flipped sign, a stray factor); one step's, one loss's or
        one path length's terms, or a run of them from either end, missing (coefficient 0),
        doubled (2) or flipped (-1); other losses' terms added; one path changed.
        """
        want, truth = self._want, self.expected
        for scale in (-1.0, 2.0, 3.0, -2.0, -3.0, 0.5):
            if self._close(answer, scale * truth):
                return scale * want, want
        keys = {"step": self._k, "loss": self._s, "lag": self._s - self._k}
        for (name, wanted), groups in self._groups.items():
            key = keys[name]
            runs = [("one", groups)]
            if len(groups) > 2:
                prefix = np.cumsum(groups, axis=0)
                runs += [("upto", prefix), ("from", prefix[-1][None] - prefix + groups)]
            for alpha, coefficient in ((-1.0, 0.0), (1.0, 2.0), (-2.0, -1.0)) if wanted else ((1.0, 1.0),):
                for how, values in runs:
                    for g in self._matches(answer, truth + alpha * values):
                        sel = {"one": key == g, "upto": key <= g, "from": key >= g}[how]
                        sel = sel & ((want == 1) if wanted else (want == 0))
                        if sel.any():
                            c = want.copy()
                            c[sel] = coefficient
                            return c, want
        for idx, vals in self.path_values():  # one path changed
            w = want[idx] == 1
            for alpha, coefficient, wanted in ((-1.0, 0.0, True), (1.0, 2.0, True), (-2.0, -1.0, True), (1.0, 1.0, False)):
                for j in self._matches(answer, truth + alpha * vals):
                    if w[j] == wanted:
                        c = want.copy()
                        c[idx[j]] = coefficient
                        return c, want
        return None

    def _matches(self, answer: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """The indices of the candidate values (n, P, *shape) the answer agrees with (the tolerance rule)."""
        if not len(candidates):
            return np.zeros(0, dtype=int)
        ok = np.abs(answer[None] - candidates) <= self.atol + self.rtol * np.abs(candidates)
        return np.flatnonzero(ok.reshape(len(candidates), -1).all(axis=1))

    def _explain(self, c: np.ndarray, want: np.ndarray) -> Finding:
        diagnoses: list[Diagnosis] = []
        cands = self.candidates
        n = len(self.paths)
        right = int(np.sum((want == 1) & (c == 1)))
        wrong_present = int(np.sum((c != 0) & (c != want)))
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
            missing = np.flatnonzero((want == 1) & (c == 0))
            extra = [cands[i] for i in np.flatnonzero((want == 0) & (c != 0))]
            flipped = [cands[i] for i in np.flatnonzero((want == 1) & (c == -1))]
            doubled = [cands[i] for i in np.flatnonzero((want == 1) & (c > 1))]
            present_steps = {int(s) for s in self._s[c != 0]}
            diagnoses += self._missing([int(i) for i in missing], present_steps)
            last = " (the loss is at the last step only)" if self.model.loss_at == "last" else ""
            diagnoses += _listed(
                extra, "extra_term", lambda t: f"adds a term for {t.description}, which is not part of {self.target.of}{last}",
                lambda ts: f"adds the terms of {_losses(ts)}, which are not part of {self.target.of}{last}",
            )
            diagnoses += _listed(
                flipped, "sign_flip", lambda t: f"has the sign of the term for {t.description} flipped",
                lambda ts: f"has the signs of {self._group_words(ts)} flipped",
            )
            diagnoses += _listed(
                doubled, "extra_term", lambda t: f"counts the term for {t.description} more than once",
                lambda ts: f"counts {self._group_words(ts)} more than once",
            )
        score = max(0.0, (right - wrong_present) / n) if n else 0.0
        return Finding(tuple(diagnoses), score)

    def _missing(self, missing: list[int], present_steps: set[int]) -> list[Diagnosis]:
        """Name the missing terms (indices into ``candidates``) by the largest group they fill:
        a step of the sum over t, a loss, a path; many of one kind in one line."""
        cands = self.candidates
        left = set(missing)
        wanted = [i for i in range(len(cands)) if self._want[i] == 1]
        by_step: dict[int, list[int]] = {}
        by_loss: dict[int, list[int]] = {}
        for i in wanted:
            by_step.setdefault(cands[i].step, []).append(i)
            by_loss.setdefault(cands[i].loss_step, []).append(i)
        steps = [
            k for k in self.model.steps_range()
            if k in by_step and all(i in left for i in by_step[k]) and any(not cands[i].recurrent for i in by_step[k])
        ]
        out: list[Diagnosis] = []
        if len(steps) > LISTED:
            out.append(Diagnosis("missing_term", f"misses the terms of steps {_numbers(steps)} of the sum over t"))
        else:
            for k in steps:
                shown = self._step_term(k)
                out.append(Diagnosis("missing_term", f"misses the term of step {k} of the sum over t" + (f" ({shown})" if shown else "")))
        for k in steps:
            left -= set(by_step[k])
        losses = []
        for s in sorted({cands[i].loss_step for i in left}):
            group = by_loss[s]
            whole = len(group) > 1 and all(i in left for i in group)
            single = len(group) == 1 and group[0] in left and not cands[group[0]].recurrent and s not in present_steps
            if whole or single:
                losses.append(s)
                left -= set(group)
        only = sorted(present_steps)
        note = f" (it keeps only the loss of step {only[0]})" if len(only) == 1 and len(self.model.loss_steps) > 1 else ""
        if len(losses) > LISTED:
            out.append(Diagnosis("missing_term", f"misses the contributions of {_numbers(losses, 'L_')}, the losses at steps {_numbers(losses)}{note}"))
        else:
            for s in losses:
                out.append(Diagnosis("missing_term", f"misses the contribution of L_{s}, the loss at step {s}{note}"))
        rest = [cands[i] for i in sorted(left)]
        out += _listed(
            [t for t in rest if t.recurrent], "missing_path",
            lambda t: f"drops the path from {t.description} (where the gradient reaches step {t.step})",
            lambda ts: self._dropped_paths(ts),
        )
        out += _listed(
            [t for t in rest if not t.recurrent], "missing_term",
            lambda t: f"drops the term of {t.description}",
            lambda ts: f"drops the direct terms of {_losses(ts)}",
        )
        return out

    def _group_words(self, terms: list[Term]) -> str:
        """Many terms named by what they fill: whole steps of the sum over t, whole losses, or a count."""
        chosen = {(t.loss_step, t.step) for t in terms}
        steps = sorted({k for _, k in chosen})
        losses = sorted({s for s, _ in chosen})
        if chosen == {(t.loss_step, t.step) for t in self.terms if t.step in steps}:
            return f"the terms of steps {_numbers(steps)} of the sum over t"
        if chosen == {(t.loss_step, t.step) for t in self.terms if t.loss_step in losses}:
            return f"the contributions of {_numbers(losses, 'L_')}"
        return f"{len(terms)} terms ({_paths_summary(terms)})"

    def _dropped_paths(self, dropped: list[Term]) -> str:
        """Many recurrent paths dropped: the paths that run back m or more steps (a truncated BPTT), or a count."""
        lags = {t.loss_step - t.step for t in dropped}
        m = min(lags)
        longer = sum(1 for t in self.terms if t.loss_step - t.step >= m)
        if longer == len(dropped):
            if m == 1:
                return f"drops every recurrent path ({len(dropped)} paths): the gradient never flows back through h_t to an earlier step"
            return (f"drops every path that runs back {m} or more steps ({len(dropped)} paths):"
                    f" the backward pass stops after {m - 1} step{'s' if m > 2 else ''}")
        return f"drops {len(dropped)} recurrent paths ({_paths_summary(dropped)})"

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
        grad = Builder(self.model).partial(self.target.of, self.target.wrt)
        full = evaluate(grad, self._backend).reshape((-1, *self.model.shape(self.target.wrt)))
        r, c = self.target.index
        for i in range(full.shape[1]):
            for j in range(full.shape[2]):
                if (i, j) != (r, c) and self._close(answer, full[:, i : i + 1, j : j + 1]):
                    other = Target(self.target.of, self.target.wrt, (i, j))
                    code = "swapped_index" if (i, j) == (c, r) else "wrong_entry"
                    how = "indices swapped" if code == "swapped_index" else "the wrong entry"
                    return Finding((Diagnosis(code, f"is the entry {other} ({how}), not {self.target}"),), 0.0)
        return None


LISTED = 3
"""Diagnoses of one kind listed one by one; more are said in one line."""


def _listed(
    terms: list[Term], code: str, one: Callable[[Term], str], many: Callable[[list[Term]], str]
) -> list[Diagnosis]:
    if len(terms) > LISTED:
        return [Diagnosis(code, many(terms))]
    return [Diagnosis(code, one(t)) for t in terms]


def _numbers(ks: list[int], prefix: str = "") -> str:
    """``1 … 19`` (numeric order, runs as ranges), optionally each with a prefix (``L_1 … L_19``)."""
    text = step_range([f"n_{k}" for k in ks], conj="and")
    return text.replace("n_", prefix)


def _losses(terms: list[Term]) -> str:
    return _numbers(sorted({t.loss_step for t in terms}), "L_")


def _paths_summary(terms: list[Term]) -> str:
    """Where a set of paths lies: their losses and the steps they reach."""
    reach = _numbers(sorted({t.step for t in terms}))
    return f"from {_losses(terms)} back to steps {reach}"
