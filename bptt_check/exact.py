"""Exact arithmetic for the identity test: rational functions evaluated modulo a prime.

Both the truth and the answer are rewritten over *atoms* that are free
variables: the leaves (parameters, x_t, h_0, y_t with its last entry
``1 - sum(others)``), and per step ``A_t = exp(a_t)``, ``E_t = exp(z_t)`` and
``ell_t = log(sum(E_t))``. Then, with no approximation,

    h_t    = (A_t**2 - 1) / (A_t**2 + 1)         (= tanh(a_t))
    yhat_t = E_t / sum(E_t)
    log(yhat_t) = z_t - ell_t,  L_t = ell_t - y_t . z_t   (sum(y_t) = 1)

and every value is a rational function of the atoms. A sigmoid unit is
``h_t = A_t / (1 + A_t)``. A relu unit gets an *indicator atom* ``s`` standing
for ``step(a_t[j])``, with ``s**2 = s``: ``h_t[j] = s * a_t[j]`` (a
:class:`Gated` value, kept as its multilinear reduction in the indicators, so
it agrees with the model on every 0/1 pattern: in every activation region at
once); ``relu``/``step`` of ``a_t[j]``, ``h_t[j]`` and ``-a_t[j]`` are known
(``h``, ``s``; ``(s - 1) a``, ``1 - s``). Denominators never involve an
indicator (softmax and cross-entropy use the free atoms ``E_t``, ``ell_t``,
which stand for a different value in each region: an identity in free atoms
holds in each); an answer dividing by a value that does has no exact form.
A relu model whose values grow past :data:`MAX_TERMS` monomials (long
sequences, many units) has no exact points, and is checked numerically.
Squared error with its linear output needs no atoms (``yhat_t = z_t``, targets free). A column model's values are the
transposes of the row ones. A transcendental call in
an answer (``tanh(u)``, ``exp(u)``, ``log(u)``, ``sech``, ``sigmoid``,
``softmax``) is rewritten by *value*: the argument is evaluated first and
looked up in a table of known logarithms (``a_t[j]``, ``z_t[k]``, ``ell_t``,
``z_t[k] - ell_t``, 0, and small integer multiples of them). So
``tanh(x_2 @ W_xh + h_1 @ W_hh)`` becomes ``h_2`` however it is written; an
argument the table does not know raises :class:`NoExactForm`, and the check
falls back to numeric agreement.

Two rational functions are then compared by evaluation at random atoms in
GF(p), p = 2**61 - 1 (Schwartz–Zippel): if they differ, the difference
``N1*(M/D1) - N2*(M/D2)`` is a non-zero polynomial of degree ≤ δ, and it
vanishes at k independent random points with probability ≤ (δ/p)**k. Every
:class:`Exact` value tracks δ: its numerator degree and its denominator as a
product of factors (a common multiple ``M`` is taken factor by factor).
For relu values the indicators are evaluated at random field values too, after
the reduction ``s**2 = s``: equal multilinear polynomials at k random points
are equal with the same bound (each indicator counted once in δ), hence agree
on every activation pattern. Equality also at the real sample points is
checked separately (numeric check).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping

import numpy as np

from .model import L_TOTAL, RNN, Ref

PRIME = (1 << 61) - 1
"""The Mersenne prime 2**61 - 1."""

_Den = frozenset
"""A denominator: the set of ``(residue, degree, level)`` for each factor and every level 1..its exponent.

As sets of levels, a common multiple is a union and "already a multiple" a subset
test, both done in C on stored hashes: the recursions of a long sequence combine
denominators of hundreds of factors, so this is the hot path of an exact check.
"""
_NO_FACTORS: _Den = frozenset()


class NoExactForm(Exception):
    """An expression has no exact rewriting over the atoms (not a user error: the check falls back to numerics)."""


def _inv(v: int) -> int:
    if v == 0:
        raise NoExactForm("division by a value that is zero at the exact sample point")
    return pow(v, PRIME - 2, PRIME)


def _frac(q: Fraction) -> int:
    return q.numerator % PRIME * _inv(q.denominator % PRIME) % PRIME


def _coerce(other: object) -> "Exact | None":
    """``other`` as an Exact, or None for a :class:`Gated` value (whose reflected operation then runs)."""
    if isinstance(other, Gated):
        return None
    return Exact.lift(other)  # type: ignore[arg-type]


class Exact:
    """A rational function of the atoms, known by its value mod p and a degree bound.

    ``num`` bounds the numerator's degree; ``den`` holds the denominator's
    factors (identified by their residue, with their degree) level by level (:data:`_Den`).
    """

    __slots__ = ("v", "num", "den", "den_degree")

    def __init__(
        self, v: int, num: int = 0, den: _Den | None = None, den_degree: int | None = None
    ) -> None:
        self.v = v % PRIME
        self.num = num
        self.den: _Den = den or _NO_FACTORS
        if den_degree is None:
            den_degree = sum(deg for _, deg, _ in self.den)
        self.den_degree = den_degree

    @staticmethod
    def atom(value: int) -> "Exact":
        return Exact(value, 1)

    @staticmethod
    def lift(x: "Exact | int | Fraction") -> "Exact":
        if isinstance(x, Exact):
            return x
        if isinstance(x, (int, np.integer)):
            return Exact(int(x) % PRIME)
        if isinstance(x, Fraction):
            return Exact(_frac(x))
        raise NoExactForm(f"no exact form for a {type(x).__name__}")

    @property
    def degree(self) -> int:
        """Numerator plus denominator degree: bounds the degree of a cross-multiplied difference."""
        return self.num + self.den_degree

    # -- field operations, each updating the degree bound ------------------

    def __add__(self, other: object) -> "Exact":
        o = other if isinstance(other, Exact) else _coerce(other)
        if o is None:
            return NotImplemented
        if o.den is self.den:  # a common denominator (often none at all)
            return Exact(self.v + o.v, max(self.num, o.num), self.den, self.den_degree)
        if not o.den:
            return Exact(self.v + o.v, max(self.num, o.num + self.den_degree), self.den, self.den_degree)
        if not self.den:
            return Exact(self.v + o.v, max(self.num + o.den_degree, o.num), o.den, o.den_degree)
        den, dm = _common_multiple(self.den, self.den_degree, o.den, o.den_degree)
        num = max(self.num + dm - self.den_degree, o.num + dm - o.den_degree)
        return Exact(self.v + o.v, num, den, dm)

    __radd__ = __add__

    def __neg__(self) -> "Exact":
        return Exact(-self.v, self.num, self.den, self.den_degree)

    def __sub__(self, other: object) -> "Exact":
        o = other if isinstance(other, Exact) else _coerce(other)
        if o is None:
            return NotImplemented
        return self + (-o)

    def __rsub__(self, other: object) -> "Exact":
        return Exact.lift(other) + (-self)  # type: ignore[arg-type]

    def __mul__(self, other: object) -> "Exact":
        o = other if isinstance(other, Exact) else _coerce(other)
        if o is None:
            return NotImplemented
        if not self.den:
            return Exact(self.v * o.v, self.num + o.num, o.den, o.den_degree)
        if not o.den:
            return Exact(self.v * o.v, self.num + o.num, self.den, self.den_degree)
        return Exact(self.v * o.v, self.num + o.num, _product(self.den, o.den), self.den_degree + o.den_degree)

    __rmul__ = __mul__

    def reciprocal(self) -> "Exact":
        inv = _inv(self.v)
        if self.num == 0:  # a constant
            return Exact(inv, self.den_degree)
        return Exact(inv, self.den_degree, frozenset({(self.v, self.num, 1)}))

    def __truediv__(self, other: object) -> "Exact":
        o = other if isinstance(other, Exact) else _coerce(other)
        if o is None:
            return NotImplemented
        return self * o.reciprocal()

    def __rtruediv__(self, other: object) -> "Exact":
        return Exact.lift(other) * self.reciprocal()  # type: ignore[arg-type]

    def __pow__(self, k: object) -> "Exact":
        if isinstance(k, Fraction) and k.denominator == 1:
            k = k.numerator
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
            raise NoExactForm("a non-integer power has no exact form")
        k = int(k)
        base = self if k >= 0 else self.reciprocal()
        n = abs(k)
        den = frozenset((v, deg, level) for (v, deg), e in _exponents(base.den).items() for level in range(1, e * n + 1))
        return Exact(pow(base.v, n, PRIME), base.num * n, den, base.den_degree * n)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Exact, int, Fraction)):
            return self.v == Exact.lift(other).v
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.v)

    def __repr__(self) -> str:
        return f"Exact({self.v}, deg≤{self.degree})"


# -- relu: indicator atoms ---------------------------------------------------

MAX_TERMS = 1024
"""Most monomials one value over the indicator atoms may have (past it: no exact form, numeric check only)."""
MAX_PRODUCT = 1 << 16
"""Most coefficient products one product of two such values may take (past it: no exact form)."""


class Gated:
    """A relu value: a multilinear polynomial in indicator atoms ``s`` (``s**2 = s``) over :class:`Exact` coefficients.

    Unit j of step t has the atom ``s_b``, b = (t - 1)·H + j, standing for
    ``step(a_t[j])``; then ``h_t[j] = s_b · a_t[j]``. ``terms`` maps a monomial
    (a bitmask of atoms) to its coefficient; products reduce by ``s**2 = s``
    (monomials multiply by bitwise or), so a value is its *multilinear
    reduction*, which agrees with it on every 0/1 pattern, i.e. in every
    activation region. Its residue :attr:`v` is that reduction evaluated at
    this point's random field values ``rs`` of the atoms (independent per
    point, never 0 or 1): two multilinear polynomials with equal residues at
    k independent points are equal, hence equal on every pattern, with
    false-positive probability ≤ (δ/p)**k, δ the degree bound of the
    difference counting each atom once (Schwartz–Zippel).
    """

    __slots__ = ("terms", "rs", "step", "_fp")

    def __init__(self, terms: dict[int, Exact], rs: tuple[int, ...]) -> None:
        if len(terms) > MAX_TERMS:
            raise NoExactForm(
                f"the relu model has too many activation patterns (a value of more than {MAX_TERMS} terms)"
            )
        self.terms = terms
        self.rs = rs
        self.step: "Gated | None" = None  # for h_t[j] = s·a_t[j]: its indicator s
        self._fp: Exact | None = None

    @staticmethod
    def indicator(bit: int, rs: tuple[int, ...]) -> "Gated":
        return Gated({1 << bit: Exact(1)}, rs)

    @staticmethod
    def make(terms: dict[int, Exact], rs: tuple[int, ...]) -> "Gated | Exact":
        """A value, as a plain :class:`Exact` when it is free of the indicators."""
        if not terms:
            return Exact(0)
        if len(terms) == 1 and 0 in terms:
            return terms[0]
        return Gated(terms, rs)

    @property
    def fingerprint(self) -> Exact:
        """The multilinear reduction at this point's atom values, as an :class:`Exact` (with its degree bound)."""
        if self._fp is None:
            total = Exact(0)
            for mask, c in self.terms.items():
                m = c
                b = 0
                while mask:
                    if mask & 1:
                        m = m * Exact.atom(self.rs[b])
                    mask >>= 1
                    b += 1
                total = total + m
            self._fp = total
        return self._fp

    @property
    def v(self) -> int:
        return self.fingerprint.v

    @property
    def degree(self) -> int:
        return self.fingerprint.degree

    def _other(self, other: object) -> "dict[int, Exact] | None":
        if isinstance(other, Gated):
            return other.terms
        try:
            c = Exact.lift(other)  # type: ignore[arg-type]
        except NoExactForm:
            return None
        return {0: c}

    def __add__(self, other: object) -> "Gated | Exact":
        o = self._other(other)
        if o is None:
            return NotImplemented
        out = dict(self.terms)
        for m, c in o.items():
            have = out.get(m)
            out[m] = c if have is None else have + c
        return Gated.make(out, self.rs)

    __radd__ = __add__

    def __neg__(self) -> "Gated":
        return Gated({m: -c for m, c in self.terms.items()}, self.rs)

    def __sub__(self, other: object) -> "Gated | Exact":
        o = self._other(other)
        if o is None:
            return NotImplemented
        return self + Gated({m: -c for m, c in o.items()}, self.rs)

    def __rsub__(self, other: object) -> "Gated | Exact":
        return (-self) + other

    def __mul__(self, other: object) -> "Gated | Exact":
        o = self._other(other)
        if o is None:
            return NotImplemented
        if len(self.terms) * len(o) > MAX_PRODUCT:
            raise NoExactForm(
                f"the relu model has too many activation patterns (a product of more than {MAX_PRODUCT} terms)"
            )
        out: dict[int, Exact] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in o.items():
                m = m1 | m2
                have = out.get(m)
                out[m] = c1 * c2 if have is None else have + c1 * c2
        return Gated.make(out, self.rs)

    __rmul__ = __mul__

    def reciprocal(self) -> "Gated":
        raise NoExactForm("division by a value that depends on the relu activation pattern")

    def __truediv__(self, other: object) -> "Gated | Exact":
        if isinstance(other, Gated):
            other.reciprocal()
        return self * Exact.lift(other).reciprocal()  # type: ignore[arg-type]

    def __rtruediv__(self, other: object) -> "Gated":
        return self.reciprocal()

    def __pow__(self, k: object) -> "Gated | Exact":
        if isinstance(k, Fraction) and k.denominator == 1:
            k = k.numerator
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
            raise NoExactForm("a non-integer power has no exact form")
        if k < 0:
            return self.reciprocal()
        out: Gated | Exact = Exact(1)
        for _ in range(int(k)):
            out = self * out
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Exact, Gated, int, Fraction)):
            return self.v == _residue(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.v)

    def __repr__(self) -> str:
        return f"Gated({len(self.terms)} terms, {self.v})"


def _residue(e: object) -> int:
    if isinstance(e, Gated):
        return e.v
    return Exact.lift(e).v  # type: ignore[arg-type]


def _degree(e: object) -> int:
    if isinstance(e, Gated):
        return e.degree
    return Exact.lift(e).degree  # type: ignore[arg-type]


def indicator_of(e: object) -> "Gated | Exact":
    """step(h) for an exact hidden-state entry ``h = s·a`` of a relu model: its indicator ``s`` (0 for h = 0)."""
    if isinstance(e, Gated) and e.step is not None:
        return e.step
    if isinstance(e, (Exact, int)) and _residue(e) == 0 and (not isinstance(e, Exact) or e.degree == 0):
        return Exact(0)
    raise NoExactForm("step of a value that is not a relu unit's state")


# Combining two denominators is memoised on their identities: a recursion
# combines the same ones over and over (every entry of an adjoint shares its
# later steps' factors).
_MEMO_LIMIT = 200_000
_lcm_memo: dict[tuple[int, int], tuple[_Den, _Den, _Den, int]] = {}
_product_memo: dict[tuple[int, int], tuple[_Den, _Den, _Den]] = {}


def _exponents(den: _Den) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = {}
    for v, deg, level in den:
        if level > out.get((v, deg), 0):
            out[(v, deg)] = level
    return out


def _common_multiple(a: _Den, da: int, b: _Den, db: int) -> tuple[_Den, int]:
    """Each factor at its larger exponent (a union of levels), and its degree (da, db: the degrees of a, b)."""
    key = (id(a), id(b))
    hit = _lcm_memo.get(key)
    if hit is not None and hit[0] is a and hit[1] is b:
        return hit[2], hit[3]
    (big, dm), small = ((a, da), b) if len(a) >= len(b) else ((b, db), a)
    den = big
    if not small <= big:
        extra = small - big
        den = big | extra
        dm += sum(deg for _, deg, _ in extra)
    if len(_lcm_memo) > _MEMO_LIMIT:
        _lcm_memo.clear()
    _lcm_memo[key] = (a, b, den, dm)
    return den, dm


def _product(a: _Den, b: _Den) -> _Den:
    """The exponents added factor by factor: the small side's levels stacked on the big side's."""
    key = (id(a), id(b))
    hit = _product_memo.get(key)
    if hit is not None and hit[0] is a and hit[1] is b:
        return hit[2]
    big, small = (a, b) if len(a) >= len(b) else (b, a)
    if big.isdisjoint(small):  # no factor in common (each holds its factors' level 1): a plain union
        den = big | small
        if len(_product_memo) > _MEMO_LIMIT:
            _product_memo.clear()
        _product_memo[key] = (a, b, den)
        return den
    extra = []
    for (v, deg), e in _exponents(small).items():
        below = 0
        while (v, deg, below + 1) in big:
            below += 1
        extra += [(v, deg, level) for level in range(below + 1, below + e + 1)]
    den = big.union(extra)
    if len(_product_memo) > _MEMO_LIMIT:
        _product_memo.clear()
    _product_memo[key] = (a, b, den)
    return den


def array(values: np.ndarray) -> np.ndarray:
    """An object array of :class:`Exact` from an array of ints/Fractions."""
    out = np.empty(values.shape, dtype=object)
    for idx, v in np.ndenumerate(values):
        out[idx] = Exact.lift(v)
    return out


def residues(arr: np.ndarray) -> np.ndarray:
    """The values mod p of an object array of Exact or Gated (ints), for comparison."""
    return np.vectorize(_residue, otypes=[object])(arr)


def max_degree(arr: np.ndarray) -> int:
    return max((_degree(e) for e in arr.flat), default=0)


@dataclass(frozen=True)
class ExactPoints:
    """Exact values of every named value at ``k`` random points, and the exp/log table.

    ``values[ref]`` is an object array (k, rows, cols) of :class:`Exact`.
    ``exp_of[i]`` maps the residue of a known logarithm at point i to its
    exponential; ``log_of[i]`` maps the residue of a known exponential to its logarithm.
    """

    values: dict[Ref, np.ndarray]
    exp_of: tuple[dict[int, Any], ...]
    log_of: tuple[dict[int, Any], ...]
    relu_of: tuple[dict[int, Any], ...] = ()
    step_of: tuple[dict[int, Any], ...] = ()
    unavailable: str = ""
    """Why the nodes have no exact values (a relu model with too many activation patterns), or ""."""

    @property
    def count(self) -> int:
        return len(self.exp_of)

    def exp(self, arr: np.ndarray) -> np.ndarray:
        """exp elementwise, by table look-up (raises NoExactForm for an unknown argument)."""
        return self._lookup(arr, self.exp_of, "exp")

    def log(self, arr: np.ndarray) -> np.ndarray:
        return self._lookup(arr, self.log_of, "log")

    def relu(self, arr: np.ndarray) -> np.ndarray:
        """relu elementwise: known for a relu model's pre-activations and hidden states (and 0)."""
        return self._lookup(arr, self.relu_of or self._none, "relu")

    def step(self, arr: np.ndarray) -> np.ndarray:
        """relu's derivative step(u) (1 where u > 0, else 0), known where :meth:`relu` is."""
        return self._lookup(arr, self.step_of or self._none, "step")

    @property
    def _none(self) -> tuple[dict[int, Exact], ...]:
        return tuple({} for _ in range(self.count))

    @staticmethod
    def _lookup(arr: np.ndarray, tables: tuple[dict[int, Any], ...], what: str) -> np.ndarray:
        out = np.empty(arr.shape, dtype=object)
        for idx, e in np.ndenumerate(arr):
            table = tables[idx[0]]
            key = _residue(e)
            hit = table.get(key)
            if hit is None:
                raise NoExactForm(f"{what} of a value that is not a known logarithm or exponential of the model")
            if isinstance(hit, tuple):  # learnt lazily: (base, c) stands for base**c, or c * base for a log
                base, c, power = hit
                hit = table[key] = base**c if power else c * base
            out[idx] = hit
        return out


_MULTIPLES = (1, -1, 2, -2, 3, -3)


def sample_exact(model: RNN, k: int = 2, seed: int = 0) -> ExactPoints:
    """Random exact points: every leaf and per-step atom uniform in GF(p), nodes derived from them.

    tanh and sigmoid units take an atom ``A = exp(a)`` each; a relu unit an
    indicator atom ``s`` (``h = s·a``, :class:`Gated`), evaluated at a random
    field value of its own per point, so that an identity holds in every
    activation region. Values are built in the row layout and transposed for
    a column model. A relu model too large for the indicators
    (:data:`MAX_TERMS`) gets exact leaves only, and ``unavailable`` says why.
    """
    rng = random.Random(seed)
    D, H, O = model.sizes
    row = model.replace(convention="row")

    def atoms(shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        for idx in np.ndindex(*shape):
            out[idx] = Exact.atom(rng.randrange(1, PRIME))
        return out

    values: dict[Ref, np.ndarray] = {}
    for ref in row.leaves():
        values[ref] = atoms((k, *row.shape(ref)))
    softmax = model.loss == "cross_entropy"
    if softmax:  # targets live on the simplex: the last class is 1 minus the others
        for t in model.steps_range():
            y = values[Ref("y", t)]
            for i in range(k):
                y[i, 0, O - 1] = 1 - sum(y[i, 0, : O - 1], Exact(0))
    if model.h0 == "zeros":
        values[Ref("h", 0)] = array(np.zeros((k, 1, H), dtype=object).astype(int))
    exp_of: list[dict[int, Any]] = [{0: Exact(1)} for _ in range(k)]
    log_of: list[dict[int, Any]] = [{1: Exact(0)} for _ in range(k)]
    relu_of: list[dict[int, Exact]] = [{0: Exact(0)} for _ in range(k)]
    step_of: list[dict[int, Exact]] = [{0: Exact(0)} for _ in range(k)]

    def learn(i: int, log_value: Exact, exp_value: Exact) -> None:
        # Only residues are computed here; the Exact values (with their degree bounds) on first look-up.
        inverse = _inv(exp_value.v)
        for c in _MULTIPLES:
            exp_of[i].setdefault((c * log_value.v) % PRIME, (exp_value, c, True))
            log_of[i].setdefault(pow(exp_value.v if c > 0 else inverse, abs(c), PRIME), (log_value, c, False))

    # relu: one random field value per indicator atom (unit, step), independent per point
    rs = [tuple(rng.randrange(PRIME) for _ in range(model.steps * H)) for _ in range(k)] if model.activation == "relu" else []
    unavailable = ""
    mm = matmul
    loss = np.empty((k, 1, 1), dtype=object)
    loss[...] = Exact(0)
    try:
        for t in model.steps_range():
            a = mm(values[Ref("x", t)], values[Ref("W_xh")]) + mm(values[Ref("h", t - 1)], values[Ref("W_hh")])
            if model.biases:
                a = a + values[Ref("b_h")]
            if model.activation == "relu":
                h = _relu_step(a, t, H, rs, relu_of, step_of)
            else:
                A = atoms((k, 1, H))
                h = (A * A - 1) * reciprocal(A * A + 1) if model.activation == "tanh" else A * reciprocal(A + 1)
                for i in range(k):
                    for j in range(H):
                        learn(i, a[i, 0, j], A[i, 0, j])
            z = mm(h, values[Ref("W_hy")])
            if model.biases:
                z = z + values[Ref("b_y")]
            y = values[Ref("y", t)]
            if softmax:
                E = atoms((k, 1, O))
                ell = atoms((k, 1, 1))
                S = E.sum(axis=2, keepdims=True)
                yhat = E * reciprocal(S)
                L_t = ell - (y * z).sum(axis=2, keepdims=True)
                for i in range(k):
                    for c in range(O):
                        learn(i, z[i, 0, c], E[i, 0, c])
                        learn(i, z[i, 0, c] - ell[i, 0, 0], yhat[i, 0, c])
                    learn(i, ell[i, 0, 0], S[i, 0, 0])
            else:
                yhat = z
                L_t = ((z - y) * (z - y)).sum(axis=2, keepdims=True) * Exact.lift(Fraction(1, 2))
            values.update({Ref("a", t): a, Ref("h", t): h, Ref("z", t): z, Ref("yhat", t): yhat, Ref("L", t): L_t})
            if t in model.loss_steps:
                loss = loss + L_t
    except NoExactForm as why:  # a relu model with too many activation patterns for an exact proof
        if model.activation != "relu":
            raise
        unavailable = str(why)
    if unavailable:
        values = {ref: values[ref] for ref in row.leaves()}
    else:
        values[L_TOTAL] = loss
    if model.column:
        values = {ref: np.swapaxes(v, 1, 2) for ref, v in values.items()}
    return ExactPoints(values, tuple(exp_of), tuple(log_of), tuple(relu_of), tuple(step_of), unavailable)


def _relu_step(
    a: np.ndarray,
    t: int,
    H: int,
    rs: list[tuple[int, ...]],
    relu_of: list[dict[int, Any]],
    step_of: list[dict[int, Any]],
) -> np.ndarray:
    """h_t = s ⊙ a_t with one indicator atom s per unit, and the relu/step tables of this step.

    Known: relu(a) = relu(h) = h, step(a) = step(h) = s, relu(-a) = (s - 1)·a and
    step(-a) = 1 - s (a is never 0 in a region, so the kink is not a pattern).
    """
    h = np.empty_like(a)
    for i in range(a.shape[0]):
        for j in range(H):
            s = Gated.indicator((t - 1) * H + j, rs[i])
            aj = a[i, 0, j]
            hj = s * aj
            if isinstance(hj, Gated):
                hj.step = s
            h[i, 0, j] = hj
            for key, relu, step in ((aj, hj, s), (hj, hj, s), (-aj, (s - 1) * aj, 1 - s)):
                relu_of[i].setdefault(_residue(key), relu)
                step_of[i].setdefault(_residue(key), step)
    return h


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for float arrays and for object arrays of exact values alike.

    numpy's object-array matmul does not stop at an exception raised by an
    entry's ``*`` or ``+``: the next entry's call then fails with a
    ``SystemError`` whose cause is the real error. A :class:`NoExactForm` (a relu
    model with too many activation patterns) is raised again as itself, so that
    callers fall back to the numeric check instead of crashing.
    """
    try:
        return np.matmul(a, b)
    except SystemError as err:
        cause = err.__cause__ or err.__context__
        if isinstance(cause, NoExactForm):
            raise cause from None
        raise


def reciprocal(arr: np.ndarray) -> np.ndarray:
    """Elementwise 1/x of an object array of Exact."""
    out = np.empty(arr.shape, dtype=object)
    for idx, e in np.ndenumerate(arr):
        out[idx] = e.reciprocal() if isinstance(e, Gated) else Exact.lift(e).reciprocal()
    return out


def refuting_pattern(value: np.ndarray, want: np.ndarray) -> int | None:
    """An activation pattern (a bitmask of active units) where ``value`` and ``want`` certainly differ, or None.

    For a difference ``d = Σ_m c_m s^m`` (multilinear), a monomial ``m`` of
    fewest atoms whose coefficient has a non-zero residue gives
    ``d(pattern m) = c_m ≠ 0``: the coefficients of the monomials inside m
    are zero there. None when every entry agrees or no entry depends on the pattern.
    """
    best: int | None = None
    for v, w in zip(value.flat, want.flat):
        d = v - w
        if isinstance(d, Gated):
            live = [m for m, c in d.terms.items() if c.v != 0]
        else:
            live = [0] if _residue(d) != 0 else []
        for m in live:
            if best is None or bin(m).count("1") < bin(best).count("1"):
                best = m
    return best
