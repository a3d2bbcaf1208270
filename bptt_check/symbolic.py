"""The symbolic truth: the unrolled RNN in sympy and its exact Jacobians by symbolic reverse mode.

Every named value of the model (:class:`~bptt_check.model.Ref`) has a matrix of
real sympy symbols (``h_1[0,1]``, ``W_hh[1,0]``; a 1×1 value is one symbol
``L_1``).
A computed node is *defined* in its parents' symbols (row convention)::

    a_t    = x_t W_xh + h_{t-1} W_hh (+ b_h)         h_0 = 0 when model.h0 == "zeros"
    h_t    = act(a_t)                                tanh, sigmoid or relu
    z_t    = h_t W_hy (+ b_y)
    yhat_t = softmax(z_t),   yhat_t[k] = exp(z_t[k]) / sum_j exp(z_t[j])
    L_t    = -sum_k y_t[k] log yhat_t[k]
    L      = sum of L_t over model.loss_steps

With ``loss = "squared_error"`` the output is linear, ``yhat_t = z_t`` and
``L_t = 1/2 sum_k (yhat_t[k] - y_t[k])**2``. In the column convention every
value is the transpose of its row value (``a_t = W_xh x_t + W_hh h_{t-1}``):
the same scalar graph, with a weight's entry for input i and output j stored
at ``W[i, j]`` (row) or ``W[j, i]`` (column).

**Gradients** are built by reverse accumulation over this graph of named nodes
(the BPTT recursion), never by differentiating an expanded loss. A sweep seeded
with ``ḡ_num = e_k`` visits the nodes in reverse topological order, binds each
node's adjoint entries to fresh intermediate symbols (a tape of assignments)
and pushes them to the parents with the local vector-Jacobian products::

    ḡ_a_t[j]       = ḡ_h_t[j] act'_t[j]     act' = 1 - h**2 (tanh), h (1 - h) (sigmoid), step(h) (relu)
    ḡ_h_{t-1}[i]  += sum_j ḡ_a_t[j] W_hh[i,j]      ḡ_W_hh[i,j] += h_{t-1}[i] ḡ_a_t[j]
    ḡ_x_t[i]      += sum_j ḡ_a_t[j] W_xh[i,j]      ḡ_W_xh[i,j] += x_t[i] ḡ_a_t[j]
    ḡ_h_t[i]      += sum_k ḡ_z_t[k] W_hy[i,k]      ḡ_W_hy[i,k] += h_t[i] ḡ_z_t[k]
    ḡ_b_h[j] += ḡ_a_t[j],   ḡ_b_y[k] += ḡ_z_t[k]
    ḡ_z_t[j]       = yhat_t[j] (ḡ_yhat_t[j] - sum_k ḡ_yhat_t[k] yhat_t[k])   (diag(yhat) - yhat^T yhat)
    ḡ_yhat_t[k]    = -ḡ_L_t y_t[k] / yhat_t[k]
    ḡ_y_t[k]       = -ḡ_L_t log yhat_t[k]  =  ḡ_L_t (L_t + y_t·z_t - z_t[k])    (sum_k y_t[k] = 1)
    ḡ_L_t         += ḡ_L                                          (t in the loss steps)

When ``yhat_t``'s adjoint comes from ``L_t`` alone (always, unless ``yhat_t``
is the numerator), the softmax and cross-entropy steps are fused into
``ḡ_z_t = ḡ_L_t (yhat_t - y_t)``: equal to the unfused product because
``sum_k y_t[k] = 1``, and the form every text writes. The logarithm
in ``∂L_t/∂y_t`` is rewritten the same way, through
``log sum_j exp z_t[j] = L_t + y_t·z_t`` (true at every consistent point with
``sum_k y_t[k] = 1``). So every Jacobian is a rational function (``+ - * /``
and integer powers) of node symbols, with no tanh, exp or log: it evaluates on
floats and, unchanged, on exact field elements (rationals, integers mod p).
The one exception is relu's derivative ``step(h)`` (1 where h > 0, else 0),
piecewise constant: an exact value of a relu state is ``h = s·a`` with an
indicator atom ``s`` per unit and step (:mod:`bptt_check.exact`), and ``step``
of it is ``s``, so the Jacobian holds in every activation region at once.
With squared error the output rules are ``ḡ_yhat_t = ḡ_L_t (yhat_t - y_t)``,
``ḡ_y_t = ḡ_L_t (y_t - yhat_t)`` and ``ḡ_z_t = ḡ_yhat_t``.

Each sweep costs O(T·size²) symbols, so ∂L w.r.t. every parameter, input and
node comes out of one sweep in time linear in T (sympy's own constructors are
bypassed on this hot path: the tape holds unevaluated sums and products, put in
canonical form only by :meth:`Jacobian.in_nodes`). Vector numerators use one
sweep per entry. A sweep's tape compiles once into a straight-line program of
numpy operations over the batch axis (common subexpressions shared); each
Jacobian runs the prefix its entries need (∂L/∂h_T: the last step only).

**Readings** (docs/ARCHITECTURE.md): the *immediate* reading keeps only the
paths whose intermediate hidden states ``h_s`` (s ≥ 1) have s equal to the
numerator's or the denominator's step; it is computed by a sweep restricted to
the nodes on such paths.

sympy is imported by this module only. Nothing here parses text.
"""

from __future__ import annotations

import bisect
import operator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import sympy

from .errors import ConfigError, InternalError
from .exact import indicator_of
from .model import L_TOTAL, RNN, Reading, Ref, squeeze_shape

__all__ = ["SymbolicRNN", "Jacobian"]

_READINGS = ("total", "immediate")


# ---------------------------------------------------------------------------
# Jacobian and its compiled program
# ---------------------------------------------------------------------------


def _neg(a: Any, _b: Any) -> Any:
    return -a


class step(sympy.Function):
    """Heaviside's step with ``step(0) = 0``: relu's derivative, taken of ``h`` (h > 0 exactly where a > 0).

    Only ever applied to a node symbol; the compiled program evaluates it (:func:`_heaviside`).
    """

    nargs = 1


def _heaviside(a: Any, _b: Any) -> Any:
    """step on one register: floats compare with 0; an exact state ``h = s·a`` gives its indicator atom ``s``."""
    arr = np.asarray(a)
    if arr.dtype != object:
        return (arr > 0).astype(np.float64)
    return np.array([indicator_of(v) for v in arr.ravel()], dtype=object).reshape(arr.shape)


def _square(a: Any, _b: Any) -> Any:
    return a * a


_Op = tuple[Callable[[Any, Any], Any], int, int, int]

_ZERO: sympy.Expr = sympy.S.Zero
_ONE: sympy.Expr = sympy.S.One
_MINUS: sympy.Expr = sympy.S.NegativeOne


def _prod(*factors: sympy.Expr) -> sympy.Expr:
    """The product of ``factors`` without sympy's canonicalisation (the hot path of the sweeps).

    Number factors are folded into one leading coefficient (so that
    ``as_coeff_Mul`` sees it), ones dropped, and a zero gives zero.
    """
    coeff: sympy.Expr = _ONE
    fs: list[sympy.Expr] = []
    for f in factors:
        if f.is_Number:
            coeff = coeff * f
            if coeff is _ZERO:
                return _ZERO
        else:
            fs.append(f)
    if coeff is not _ONE:
        fs.insert(0, coeff)
    if not fs:
        return coeff
    if len(fs) == 1:
        return fs[0]
    return sympy.Mul._from_args(tuple(fs), True)


def _power(base: sympy.Expr, n: int) -> sympy.Expr:
    """``base**n`` as an unevaluated power."""
    return sympy.Pow(base, sympy.Integer(n), evaluate=False)


def _sum(terms: Iterable[sympy.Expr]) -> sympy.Expr:
    """The sum of ``terms`` without canonicalisation; zeros are dropped."""
    ts = tuple(t for t in terms if t is not _ZERO)
    if not ts:
        return _ZERO
    if len(ts) == 1:
        return ts[0]
    return sympy.Add._from_args(ts, True)


def _canonical(e: sympy.Expr, memo: dict[sympy.Expr, sympy.Expr]) -> sympy.Expr:
    """``e`` rebuilt bottom-up with sympy's evaluation (flattening, collecting), memoised over the DAG."""
    if e.is_Atom:
        return e
    hit = memo.get(e)
    if hit is None:
        hit = e.func(*[_canonical(a, memo) for a in e.args])
        memo[e] = hit
    return hit


@dataclass
class _Program:
    """A straight-line program over registers ``0..size-1``.

    ``loads`` are ``(register, ref, row, col)`` (a column of the value array);
    ``consts`` are ``(register, sympy number)``, converted per evaluation mode;
    ``raw`` are ``(register, python int)`` exponents; ``ops`` are
    ``(f, out, a, b)`` meaning ``regs[out] = f(regs[a], regs[b])``;
    ``outputs[i]`` is a register, or a sympy number for a constant entry.
    """

    size: int
    loads: list[tuple[int, Ref, int, int]]
    consts: list[tuple[int, sympy.Expr]]
    raw: list[tuple[int, int]]
    ops: list[_Op]
    outputs: list[int | sympy.Expr]


class _Run:
    """A partial evaluation of one compiler's registers on one set of values."""

    def __init__(self, values: Mapping[Ref, np.ndarray]) -> None:
        self.values = values
        self.exact = any(np.asarray(v).dtype == object for v in values.values())
        self.regs: list[Any] = []
        self.loads = self.consts = self.raw = self.ops = 0


class _Compiler:
    """Turns rational sympy expressions over node symbols and tape symbols into register operations.

    Registers are numbered in creation order, which is a dependency order.
    Common subexpressions share a register (a memo on the expression). Tape
    symbols are bound in tape order, so recursion depth is that of one
    assignment, never that of the whole recursion. A Jacobian's program is
    either a *prefix* (every register below its last output: one sweep's tape
    is compiled in sweep order, so ∂L/∂h_t needs only the steps T..t) or the
    renumbered *closure* of its outputs.
    """

    def __init__(self, where: Mapping[sympy.Symbol, tuple[Ref, int, int]]) -> None:
        self.where = where
        self.memo: dict[sympy.Expr, int] = {}
        self.exponents: dict[int, int] = {}
        self.size = 0
        self.loads: list[tuple[int, Ref, int, int]] = []
        self.consts: list[tuple[int, sympy.Expr]] = []
        self.raw: list[tuple[int, int]] = []
        self.ops: list[_Op] = []
        self.source: list[tuple[str, int]] = []  # register -> (list name, index in that list)
        self._runs: list[_Run] = []

    def run(self, values: Mapping[Ref, np.ndarray], cut: int) -> list[Any]:
        """Registers ``0..cut-1`` evaluated on ``values``, continuing the last run on the same values.

        Every Jacobian of one sweep is a prefix of its program, so evaluating
        ∂L/∂h_t for every t on the same points costs one sweep, not T.
        """
        run = next((r for r in self._runs if r.values is values), None)
        if run is None:
            run = _Run(values)
            self._runs = [run, *self._runs[:3]]
        regs = run.regs
        if len(regs) < self.size:
            regs.extend([None] * (self.size - len(regs)))
        while run.loads < len(self.loads) and self.loads[run.loads][0] < cut:
            r, ref, i, j = self.loads[run.loads]
            if ref not in values:
                raise KeyError(f"evaluation needs a value for {ref}")
            regs[r] = values[ref][:, i, j]
            run.loads += 1
        exact = run.exact
        while run.consts < len(self.consts) and self.consts[run.consts][0] < cut:
            r, c = self.consts[run.consts]
            regs[r] = _convert(c, exact)
            run.consts += 1
        while run.raw < len(self.raw) and self.raw[run.raw][0] < cut:
            r, n = self.raw[run.raw]
            regs[r] = n
            run.raw += 1
        while run.ops < len(self.ops) and self.ops[run.ops][1] < cut:
            f, out, a, b = self.ops[run.ops]
            regs[out] = f(regs[a], regs[b])
            run.ops += 1
        return regs

    def _new(self, kind: str, index: int) -> int:
        self.source.append((kind, index))
        self.size += 1
        return self.size - 1

    def _op(self, f: Callable[[Any, Any], Any], a: int, b: int) -> int:
        out = self._new("op", len(self.ops))
        self.ops.append((f, out, a, b))
        return out

    def _const(self, c: sympy.Expr) -> int:
        if c not in self.memo:
            r = self._new("const", len(self.consts))
            self.consts.append((r, c))
            self.memo[c] = r
        return self.memo[c]

    def _exponent(self, n: int) -> int:
        if n not in self.exponents:
            r = self._new("raw", len(self.raw))
            self.raw.append((r, n))
            self.exponents[n] = r
        return self.exponents[n]

    def bind(self, symbol: sympy.Symbol, expr: sympy.Expr) -> None:
        """Compile a tape assignment: later uses of ``symbol`` read its register."""
        self.memo[symbol] = self.reg(expr)

    def reg(self, e: sympy.Expr) -> int:
        """The register holding ``e`` (compiled on first use)."""
        hit = self.memo.get(e)
        if hit is not None:
            return hit
        if e.is_Number:
            return self._const(e)
        if e.is_Symbol:
            if e not in self.where:
                raise InternalError(f"symbol {e} has no value (an unbound intermediate)")
            r = self._new("load", len(self.loads))
            self.loads.append((r, *self.where[e]))
        elif e.is_Add:
            r = self._add(e.args)
        elif e.is_Mul:
            r = self._mul(e)
        elif e.is_Pow:
            r = self._pow(e.base, e.exp)
        elif isinstance(e, step):
            a = self.reg(e.args[0])
            r = self._op(_heaviside, a, a)
        else:
            raise InternalError(f"cannot compile {type(e).__name__} {e}: Jacobians must be rational")
        self.memo[e] = r
        return r

    def _add(self, terms: Sequence[sympy.Expr]) -> int:
        acc: int | None = None
        for term in terms:
            coeff, rest = term.as_coeff_Mul()
            negative = bool(coeff.is_negative) and rest is not _ONE
            if negative:
                r = self.reg(rest) if coeff == -1 else self.reg(_prod(-coeff, rest))
            else:
                r = self.reg(term)
            if acc is None:
                acc = self._op(_neg, r, r) if negative else r
            else:
                acc = self._op(operator.sub if negative else operator.add, acc, r)
        assert acc is not None
        return acc

    def _mul(self, e: sympy.Expr) -> int:
        coeff, rest = e.as_coeff_Mul()
        numer: list[int] = []
        denom: list[int] = []
        for f in sympy.Mul.make_args(rest):
            if f.is_Pow and f.exp.is_Integer and f.exp < 0:
                denom.append(self._pow(f.base, -f.exp))
            elif f is not _ONE:
                numer.append(self.reg(f))
        acc: int | None = None
        for r in numer:
            acc = r if acc is None else self._op(operator.mul, acc, r)
        den: int | None = None
        for r in denom:
            den = r if den is None else self._op(operator.mul, den, r)
        if acc is None:
            acc, coeff = self._const(coeff), _ONE
        if den is not None:
            acc = self._op(operator.truediv, acc, den)
        if coeff == -1:
            acc = self._op(_neg, acc, acc)
        elif coeff != 1:
            acc = self._op(operator.mul, self._const(coeff), acc)
        return acc

    def _pow(self, base: sympy.Expr, exp: sympy.Expr) -> int:
        if not exp.is_Integer:
            raise InternalError(f"cannot compile the power {base}**{exp}: exponents must be integers")
        n = int(exp)
        if n == 0:
            return self._const(_ONE)
        if n == 1:
            return self.reg(base)
        if n < 0:
            return self._op(operator.truediv, self._const(_ONE), self._pow(base, -n))
        b = self.reg(base)
        if n == 2:
            return self._op(_square, b, b)
        return self._op(operator.pow, b, self._exponent(n))

    def prefix(self, outputs: Sequence[sympy.Expr]) -> _Program:
        """The program of every register up to the last one ``outputs`` need (no renumbering)."""
        out_regs = [None if e.is_Number else self.reg(e) for e in outputs]
        cut = max((r for r in out_regs if r is not None), default=-1) + 1
        # how many loads, consts, raw exponents and ops lie below the cut
        first = [_last_below(items, cut) for items in (self.loads, self.consts, self.raw)]
        first.append(_last_below(self.ops, cut, 1))
        outs: list[int | sympy.Expr] = [e if r is None else r for e, r in zip(outputs, out_regs)]
        return _Program(
            cut, self.loads[: first[0]], self.consts[: first[1]], self.raw[: first[2]], self.ops[: first[3]], outs
        )

    def closure(self, outputs: Sequence[sympy.Expr]) -> _Program:
        """The renumbered program of exactly the registers that ``outputs`` depend on."""
        out_regs = [None if e.is_Number else self.reg(e) for e in outputs]
        needed: set[int] = set()
        stack = [r for r in out_regs if r is not None]
        while stack:
            r = stack.pop()
            if r not in needed:
                needed.add(r)
                kind, index = self.source[r]
                if kind == "op":
                    _, _, a, b = self.ops[index]
                    stack.extend((a, b))
        order = sorted(needed)
        new = {r: k for k, r in enumerate(order)}
        prog = _Program(len(order), [], [], [], [], [])
        for r in order:
            kind, index = self.source[r]
            if kind == "load":
                _, ref, i, j = self.loads[index]
                prog.loads.append((new[r], ref, i, j))
            elif kind == "const":
                prog.consts.append((new[r], self.consts[index][1]))
            elif kind == "raw":
                prog.raw.append((new[r], self.raw[index][1]))
            else:
                f, _, a, b = self.ops[index]
                prog.ops.append((f, new[r], new[a], new[b]))
        prog.outputs = [e if r is None else new[r] for e, r in zip(outputs, out_regs)]
        return prog


def _last_below(items: Sequence[tuple[Any, ...]], cut: int, at: int = 0) -> int:
    """How many of ``items`` (sorted by the register at position ``at``) have that register below ``cut``."""
    return bisect.bisect_left(items, cut, key=operator.itemgetter(at))


def _convert(c: sympy.Expr, exact: bool) -> Any:
    """A sympy number as an evaluation constant: int / Fraction on exact values, float otherwise."""
    if not exact:
        return float(c)
    if c.is_Integer:
        return int(c)
    if c.is_Rational:
        return Fraction(int(c.p), int(c.q))
    raise InternalError(f"the constant {c} has no exact value")


class _Sweep:
    """One reverse sweep: the adjoints it produced and the tape symbols it bound, in order.

    Its tape is compiled once, in sweep order (late steps first), into one
    :class:`_Compiler`; every Jacobian drawn from the sweep is a prefix of it.
    """

    def __init__(self, adjoints: dict[Ref, list[sympy.Expr]], tape: list[tuple[sympy.Symbol, sympy.Expr]]) -> None:
        self.adjoints = adjoints
        self.tape = tape
        self._compiler: _Compiler | None = None

    def compiler(self, where: Mapping[sympy.Symbol, tuple[Ref, int, int]]) -> _Compiler:
        if self._compiler is None:
            self._compiler = _Compiler(where)
            for sym, expr in self.tape:
                self._compiler.bind(sym, expr)
        return self._compiler


class _Core:
    """What a Jacobian is made of: its flat entry expressions and the model context.

    ``exprs`` is row-major over ``squeeze(num) + squeeze(den)``; the expressions
    use node symbols and the owner's tape symbols. Compiled program and the
    node-symbol form are cached here (shared by the readings that coincide).
    """

    def __init__(self, owner: "SymbolicRNN", exprs: list[sympy.Expr], sweeps: Sequence["_Sweep"]) -> None:
        self.owner = owner
        self.exprs = exprs
        self.sweeps = tuple(sweeps)
        self._program: _Program | None = None
        self._in_nodes: list[sympy.Expr] | None = None

    def program(self) -> _Program:
        """One sweep: a prefix of that sweep's program; several (a vector numerator): a closure of their tapes."""
        if self._program is None:
            if len(self.sweeps) == 1:
                self._program = self.sweeps[0].compiler(self.owner._where).prefix(self.exprs)
            else:
                comp = _Compiler(self.owner._where)
                for sym in self.owner._closure(self.exprs):
                    comp.bind(sym, self.owner._tape[sym])
                self._program = comp.closure(self.exprs)
        return self._program

    def in_nodes(self) -> list[sympy.Expr]:
        if self._in_nodes is None:
            self._in_nodes = self.owner._expand_tape(self.exprs)
        return self._in_nodes


@dataclass(frozen=True)
class Jacobian:
    """∂num/∂den of one model under one reading, laid out as ``squeeze(shape(num)) + squeeze(shape(den))``.

    Entry ``[*i, *j]`` is ∂num[i]/∂den[j]. The entries are rational functions of
    the model's node symbols (see the module docstring for the local rules), so
    :meth:`evaluate` works on float64 values and on exact field elements alike.
    """

    num: Ref
    den: Ref
    reading: Reading
    shape: tuple[int, ...]
    _core: _Core = field(repr=False)

    @property
    def size(self) -> int:
        """Number of entries (the product of ``shape``)."""
        return int(np.prod(self.shape, dtype=int))

    @property
    def program_size(self) -> int:
        """Registers of the compiled straight-line program (a measure of its cost)."""
        return self._core.program().size

    def evaluate(self, values: Mapping[Ref, np.ndarray]) -> np.ndarray:
        """The Jacobian at P points: an array ``(P, *shape)``.

        ``values[ref]`` has shape ``(P, rows, cols)`` for every ref the entries
        use. With float arrays the result is float64. With ``dtype=object``
        arrays of exact field elements the result is an object array computed
        with ``+ - * /`` and integer powers only (constants enter as ``int`` or
        :class:`fractions.Fraction`), so it is exact in that field.
        """
        prog = self._core.program()
        if len(self._core.sweeps) == 1 and prog.loads:
            return self._evaluate_prefix(prog, values)
        arrays = []
        for _, ref, _, _ in prog.loads:
            if ref not in values:
                raise KeyError(f"evaluating ∂{self.num}/∂{self.den} needs a value for {ref}")
            arrays.append(values[ref])
        sample = arrays[0] if arrays else next(iter(values.values()), None)
        if sample is None:
            raise ValueError(f"evaluating ∂{self.num}/∂{self.den} needs at least one value to know the points")
        sample = np.asarray(sample)
        points = sample.shape[0]
        exact = any(a.dtype == object for a in arrays) if arrays else sample.dtype == object
        regs: list[Any] = [None] * prog.size
        for (r, _, i, j), arr in zip(prog.loads, arrays):
            regs[r] = arr[:, i, j]
        for r, c in prog.consts:
            regs[r] = _convert(c, exact)
        for r, n in prog.raw:
            regs[r] = n
        for f, out, a, b in prog.ops:
            regs[out] = f(regs[a], regs[b])
        result = np.empty((points, len(prog.outputs)), dtype=object if exact else np.float64)
        for k, o in enumerate(prog.outputs):
            result[:, k] = _convert(o, exact) if isinstance(o, sympy.Expr) else regs[o]
        return result.reshape((points, *self.shape))

    def _evaluate_prefix(self, prog: _Program, values: Mapping[Ref, np.ndarray]) -> np.ndarray:
        """Evaluate as a prefix of the sweep's program, sharing the registers already computed on ``values``."""
        compiler = self._core.sweeps[0].compiler(self._core.owner._where)
        try:
            regs = compiler.run(values, prog.size)
        except KeyError as err:
            raise KeyError(f"evaluating ∂{self.num}/∂{self.den}: {err.args[0]}") from None
        exact = any(np.asarray(v).dtype == object for v in values.values())
        points = np.asarray(next(iter(values.values()))).shape[0]
        result = np.empty((points, len(prog.outputs)), dtype=object if exact else np.float64)
        for k, o in enumerate(prog.outputs):
            result[:, k] = _convert(o, exact) if isinstance(o, sympy.Expr) else regs[o]
        return result.reshape((points, *self.shape))

    def in_nodes(self) -> sympy.Array:
        """The entries in named-node symbols (intermediate adjoints substituted).

        ``sum_k y_t[k] = 1`` is already applied by the local rules: ∂L_t/∂z_t
        reads ``yhat_t - y_t``. The expressions are kept factored as the
        recursion builds them (no ``simplify``); they grow quickly with T.
        """
        return _array(self._core.in_nodes(), self.shape)

    def in_leaves(self) -> sympy.Array:
        """The entries with every node symbol replaced by its definition down to the leaves (small models only)."""
        subs = self._core.owner._leaf_substitution()
        return _array([e.xreplace(subs) for e in self._core.in_nodes()], self.shape)


def _array(flat: list[sympy.Expr], shape: tuple[int, ...]) -> sympy.Array:
    if not shape:
        return sympy.Array(flat[0])
    return sympy.Array(flat, shape)


# ---------------------------------------------------------------------------
# The model in sympy
# ---------------------------------------------------------------------------

_ACTIVATIONS: dict[str, Callable[[sympy.Expr], sympy.Expr]] = {
    "tanh": sympy.tanh,
    "sigmoid": lambda u: 1 / (1 + sympy.exp(-u)),
    "relu": lambda u: sympy.Max(sympy.S.Zero, u),
}
_DERIVATIVES: dict[str, Callable[[sympy.Expr], sympy.Expr]] = {
    "tanh": lambda h: _sum([_ONE, _prod(_MINUS, _power(h, 2))]),
    "sigmoid": lambda h: _prod(h, _sum([_ONE, _prod(_MINUS, h)])),
    "relu": lambda h: step(h),
}
"""act'(a) written in h = act(a): the form every text uses."""
_NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "relu": lambda a: np.maximum(a, 0.0),
}


class SymbolicRNN:
    """The sympy side of one :class:`~bptt_check.model.RNN`: symbols, definitions, forward values and partials.

    Partials are cached per ``(num, den, reading)`` and reverse sweeps per
    ``(num, entry, restriction)``: after ``partial(L, W_hh)`` the gradients
    w.r.t. every other ref come from the same sweep.
    """

    def __init__(self, model: RNN) -> None:
        self.model = model
        self._refs: tuple[Ref, ...] = model.refs()
        self._order = {ref: k for k, ref in enumerate(self._refs)}
        self._symbols: dict[Ref, sympy.Matrix] = {}
        self._flat: dict[Ref, list[sympy.Symbol]] = {}
        self._where: dict[sympy.Symbol, tuple[Ref, int, int]] = {}
        for ref in self._refs:
            rows, cols = model.shape(ref)
            if (rows, cols) == (1, 1):
                flat = [sympy.Symbol(str(ref), real=True)]
            else:
                flat = [sympy.Symbol(f"{ref}[{i},{j}]", real=True) for i in range(rows) for j in range(cols)]
            self._flat[ref] = flat
            self._symbols[ref] = sympy.ImmutableMatrix(rows, cols, flat)
            for k, s in enumerate(flat):
                self._where[s] = (ref, k // cols, k % cols)
        # a weight's flat entry from input i to output j: i * n_out + j (row) or j * n_in + i (column)
        self._index: dict[Ref, list[list[int]]] = {}
        for W in model.parameters():
            rows, cols = model.shape(W)
            n_in, n_out = (cols, rows) if model.column else (rows, cols)
            self._index[W] = [[j * cols + i if model.column else i * cols + j for j in range(n_out)] for i in range(n_in)]
        self._parents: dict[Ref, tuple[Ref, ...]] = {ref: self._parents_of(ref) for ref in self._refs}
        children: dict[Ref, list[Ref]] = {ref: [] for ref in self._refs}
        for ref in self._refs:
            for p in self._parents[ref]:
                children[p].append(ref)
        self._children: dict[Ref, tuple[Ref, ...]] = {r: tuple(c) for r, c in children.items()}
        # the same graph over integer ids (Ref hashing is slow in the path searches)
        self._kids_i = [[self._order[c] for c in self._children[r]] for r in self._refs]
        self._pars_i = [[self._order[p] for p in self._parents[r]] for r in self._refs]
        self._ancestors: dict[Ref, frozenset[int]] = {}
        # the tape: intermediate symbol -> its expression, in creation (topological) order
        self._tape: dict[sympy.Symbol, sympy.Expr] = {}
        self._tape_index: dict[sympy.Symbol, int] = {}
        self._expanded: dict[sympy.Symbol, sympy.Expr] = {}
        self._canon: dict[sympy.Expr, sympy.Expr] = {}
        self._sweeps: dict[tuple[Ref, int, frozenset[Ref] | None], _Sweep] = {}
        self._partials: dict[tuple[Ref, Ref, str], Jacobian] = {}
        self._leaf_exprs: dict[Ref, sympy.ImmutableMatrix] = {}
        self._definitions: dict[Ref, sympy.ImmutableMatrix] = {}
        self._leaf_subs: dict[sympy.Symbol, sympy.Expr] | None = None

    # -- names and definitions ------------------------------------------------

    def _check(self, ref: Ref) -> None:
        if ref not in self.model:
            raise ConfigError(f"{ref} is not a name of this model ({self.model.describe()})")

    def symbols(self, ref: Ref) -> sympy.Matrix:
        """The matrix of (real) symbols of a named value, shape ``model.shape(ref)``.

        Entries are named ``h_1[0,1]``, ``W_hh[1,0]``; a 1×1 value is one
        symbol named after the ref (``L_2``, ``L``). A fresh mutable copy.
        """
        self._check(ref)
        return sympy.Matrix(self._symbols[ref])

    def _zero_h0(self, ref: Ref) -> bool:
        return ref == Ref("h", 0) and self.model.h0 == "zeros"

    def definition(self, ref: Ref) -> sympy.Matrix:
        """A computed node in its parents' symbols (module docstring); ``h_0`` is the zero matrix when h0 = "zeros".

        Leaves (parameters, x_t, y_t, an input h_0) have no definition: ConfigError.
        Cached per ref (a fresh mutable copy is returned).
        """
        self._check(ref)
        if ref not in self._definitions:
            self._definitions[ref] = self._define(ref)
        return sympy.Matrix(self._definitions[ref])

    def _weight(self, W: Ref, i: int, j: int) -> sympy.Symbol:
        """The symbol of weight ``W`` from input entry i to output entry j: ``W[i, j]`` (row) or ``W[j, i]`` (column)."""
        return self._flat[W][self._index[W][i][j]]

    def _affine(self, products: list[tuple[Ref, Ref]], bias: Ref | None, out: Ref) -> sympy.ImmutableMatrix:
        """``sum of W · v (+ bias)``, entry j = sum_i v[i] W(i→j), built entry by entry (one sympy Add per entry)."""
        F = self._flat
        n = len(F[out])
        entries = []
        for j in range(n):
            terms = [r * self._weight(W, i, j) for v, W in products for i, r in enumerate(F[v])]
            if bias is not None:
                terms.append(F[bias][j])
            entries.append(sympy.Add(*terms))
        return sympy.ImmutableMatrix(*self.model.shape(out), entries)

    def _define(self, ref: Ref) -> sympy.ImmutableMatrix:
        m = self.model
        F = self._flat
        if self._zero_h0(ref):
            return sympy.ImmutableMatrix(sympy.zeros(*m.shape(ref)))
        fam, t = ref.family, ref.step
        shape = m.shape(ref)
        if ref == L_TOTAL:
            return sympy.ImmutableMatrix([[sympy.Add(*[F[Ref("L", s)][0] for s in m.loss_steps])]])
        if fam == "a":
            assert t is not None
            products = [(Ref("x", t), Ref("W_xh"))]
            if Ref("W_hh") in self._parents[ref]:
                products.append((Ref("h", t - 1), Ref("W_hh")))
            return self._affine(products, Ref("b_h") if m.biases else None, ref)
        if fam == "h" and t:
            return sympy.ImmutableMatrix(*shape, [_ACTIVATIONS[m.activation](u) for u in F[Ref("a", t)]])
        if fam == "z":
            return self._affine([(Ref("h", t), Ref("W_hy"))], Ref("b_y") if m.biases else None, ref)
        if fam == "yhat":
            z = F[Ref("z", t)]
            if m.loss == "squared_error":
                return sympy.ImmutableMatrix(*shape, z)
            e = [sympy.exp(u) for u in z]
            total = sympy.Add(*e)
            return sympy.ImmutableMatrix(*shape, [ek / total for ek in e])
        if fam == "L":
            y, yhat = F[Ref("y", t)], F[Ref("yhat", t)]
            if m.loss == "squared_error":
                return sympy.ImmutableMatrix([[sympy.Rational(1, 2) * sympy.Add(*[(pk - yk) ** 2 for yk, pk in zip(y, yhat)])]])
            return sympy.ImmutableMatrix([[-sympy.Add(*[yk * sympy.log(pk) for yk, pk in zip(y, yhat)])]])
        raise ConfigError(f"{ref} is a leaf of the model (a given value): it has no definition")

    def _in_leaves(self, ref: Ref) -> sympy.ImmutableMatrix:
        """``ref`` expanded down to leaf symbols (node definitions substituted recursively)."""
        if ref in self._leaf_exprs:
            return self._leaf_exprs[ref]
        if self._zero_h0(ref):
            out = sympy.ImmutableMatrix(sympy.zeros(*self.model.shape(ref)))
        elif not self._parents[ref]:
            out = self._symbols[ref]
        else:
            subs: dict[sympy.Symbol, sympy.Expr] = {}
            for p in self._parents[ref]:
                subs.update(zip(self._flat[p], self._in_leaves(p)))
            out = sympy.ImmutableMatrix(self.definition(ref).xreplace(subs))  # type: ignore[arg-type]
        self._leaf_exprs[ref] = out
        return out

    def _leaf_substitution(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Every node symbol (and a zero h_0's) ↦ its expansion in leaf symbols."""
        if self._leaf_subs is None:
            subs: dict[sympy.Symbol, sympy.Expr] = {}
            for ref in self._refs:
                if self._parents[ref] or self._zero_h0(ref):
                    subs.update(zip(self._flat[ref], self._in_leaves(ref)))
            self._leaf_subs = subs
        return self._leaf_subs

    def loss_in_leaves(self, of: Ref = L_TOTAL) -> sympy.Expr:
        """The total loss (or a step's loss ``L_t``) fully expanded to leaf symbols: for tests, small T only."""
        self._check(of)
        if of.family != "L":
            raise ConfigError(f"{of} is not a loss", hint="use L or L_t")
        return self._in_leaves(of)[0, 0]

    # -- forward values --------------------------------------------------------

    def forward_values(self, leaves: Mapping[Ref, np.ndarray]) -> dict[Ref, np.ndarray]:
        """float64 values ``(P, rows, cols)`` of every ref: the leaves copied, ``h_0`` zeros if so configured, all nodes.

        Computed with numpy from the definitions above (softmax and cross-entropy
        through the shifted log-sum-exp ``log yhat_t = z_t - max - log sum exp(z_t - max)``),
        in the row layout (a column model's values are transposed in and out).
        """
        m = self.model
        out: dict[Ref, np.ndarray] = {}
        needed = [r for r in m.leaves() if not self._zero_h0(r)]
        for ref in needed:
            if ref not in leaves:
                raise KeyError(f"forward values need a value for {ref}")
            arr = np.array(leaves[ref], dtype=np.float64)
            if arr.ndim != 3 or arr.shape[1:] != m.shape(ref):
                raise ValueError(f"{ref} has shape {arr.shape}, expected (P, {m.shape(ref)[0]}, {m.shape(ref)[1]})")
            out[ref] = arr
        points = out[needed[0]].shape[0]
        if any(a.shape[0] != points for a in out.values()):
            raise ValueError("the leaves disagree on the number of points")
        if m.h0 == "zeros":
            out[Ref("h", 0)] = np.zeros((points, *m.shape(Ref("h", 0))))
        if m.column:  # compute in the row layout: every value is the transpose
            out = {ref: np.swapaxes(v, 1, 2) for ref, v in out.items()}
        act = _NUMPY_ACTIVATIONS[m.activation]
        for t in m.steps_range():
            a = out[Ref("x", t)] @ out[Ref("W_xh")] + out[Ref("h", t - 1)] @ out[Ref("W_hh")]
            if m.biases:
                a = a + out[Ref("b_h")]
            h = act(a)
            z = h @ out[Ref("W_hy")]
            if m.biases:
                z = z + out[Ref("b_y")]
            y = out[Ref("y", t)]
            out[Ref("a", t)], out[Ref("h", t)], out[Ref("z", t)] = a, h, z
            if m.loss == "squared_error":
                out[Ref("yhat", t)] = z
                out[Ref("L", t)] = 0.5 * ((z - y) ** 2).sum(axis=-1, keepdims=True)
                continue
            shifted = z - z.max(axis=-1, keepdims=True)
            log_yhat = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
            out[Ref("yhat", t)] = np.exp(log_yhat)
            out[Ref("L", t)] = -(y * log_yhat).sum(axis=-1, keepdims=True)
        out[L_TOTAL] = sum((out[Ref("L", t)] for t in m.loss_steps), np.zeros((points, 1, 1)))
        if m.column:
            out = {ref: np.swapaxes(v, 1, 2) for ref, v in out.items()}
        return out

    # -- graph -----------------------------------------------------------------

    def _parents_of(self, ref: Ref) -> tuple[Ref, ...]:
        """The refs a node's definition uses (W_hh is no parent of a_1 when h_0 = 0: its local derivative is 0)."""
        m = self.model
        fam, t = ref.family, ref.step
        if ref == L_TOTAL:
            return tuple(Ref("L", s) for s in m.loss_steps)
        if t is None or fam in ("x", "y") or (fam == "h" and t == 0):
            return ()
        if fam == "a":
            ps = [Ref("x", t), Ref("W_xh"), Ref("h", t - 1)]
            if not (t == 1 and m.h0 == "zeros"):
                ps.append(Ref("W_hh"))
            if m.biases:
                ps.append(Ref("b_h"))
            return tuple(ps)
        if fam == "h":
            return (Ref("a", t),)
        if fam == "z":
            return (Ref("h", t), Ref("W_hy")) + ((Ref("b_y"),) if m.biases else ())
        if fam == "yhat":
            return (Ref("z", t),)
        if fam == "L":
            return (Ref("yhat", t), Ref("y", t))
        raise InternalError(f"unknown family {fam}")

    def _blocked(self, num: Ref, den: Ref) -> frozenset[Ref]:
        """Hidden states that an immediate path may not pass through: h_s, s ≥ 1, s ∉ {step(num), step(den)}."""
        keep = {num.step, den.step}
        return frozenset(
            Ref("h", s) for s in self.model.steps_range() if s not in keep and Ref("h", s) not in (num, den)
        )

    def _reach(self, start: int, edges: list[list[int]], blocked: frozenset[int] = frozenset()) -> set[int]:
        """Ids reachable from ``start`` (inclusive) along ``edges``, not entering ``blocked``."""
        seen = {start}
        stack = [start]
        while stack:
            for nxt in edges[stack.pop()]:
                if nxt not in seen and nxt not in blocked:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    def _upstream(self, num: Ref) -> frozenset[int]:
        """Ids of the refs num depends on, num included (cached)."""
        if num not in self._ancestors:
            self._ancestors[num] = frozenset(self._reach(self._order[num], self._pars_i))
        return self._ancestors[num]

    def _between(self, num: Ref, den: Ref, blocked: frozenset[Ref] = frozenset()) -> frozenset[Ref]:
        """Refs on some path den → … → num avoiding ``blocked`` (empty if den is not upstream of num)."""
        if self._order[den] not in self._upstream(num):
            return frozenset()
        ids = frozenset(self._order[b] for b in blocked)
        down = self._reach(self._order[den], self._kids_i, ids)
        if self._order[num] not in down:
            return frozenset()
        up = self._upstream(num) if not ids else self._reach(self._order[num], self._pars_i, ids)
        return frozenset(self._refs[k] for k in down & up)

    def is_ambiguous(self, num: Ref, den: Ref) -> bool:
        """True when some path den → num passes a hidden state of another step (the readings may differ)."""
        self._check(num)
        self._check(den)
        return bool(self._between(num, den) & self._blocked(num, den))

    def paths(self, num: Ref, den: Ref) -> tuple[tuple[Ref, ...], ...]:
        """Every path den → … → num of named nodes in the unrolled graph (shortest first, then topological)."""
        self._check(num)
        self._check(den)
        inside = self._between(num, den)
        if not inside:
            return ()
        found: list[tuple[Ref, ...]] = []
        stack: list[tuple[Ref, ...]] = [(den,)]
        while stack:
            path = stack.pop()
            if path[-1] == num:
                found.append(path)
                continue
            for c in self._children[path[-1]]:
                if c in inside:
                    stack.append(path + (c,))
        return tuple(sorted(found, key=lambda p: (len(p), [self._order[r] for r in p])))

    # -- reverse mode -------------------------------------------------------------

    def _bind(self, expr: sympy.Expr, name: str, tape: list[tuple[sympy.Symbol, sympy.Expr]]) -> sympy.Expr:
        """An intermediate symbol for ``expr``, recorded on ``tape`` and the model's tape (atoms are kept)."""
        if expr.is_Atom:
            return expr
        s = sympy.Dummy(name)
        self._tape_index[s] = len(self._tape)
        self._tape[s] = expr
        tape.append((s, expr))
        return s

    def _sweep(self, num: Ref, entry: int, active: frozenset[Ref] | None) -> _Sweep:
        """Adjoints ``∂num[entry]/∂ref`` of every ref reached from num, restricted to ``active`` (all if None).

        Adjoints are flat row-major entry lists; refs not reached are absent
        (zero). Node adjoints, and those of the step inputs (x_t, y_t, h_0, as
        soon as their one child is done), are tape symbols; a parameter's is the
        sum of its pulls over the steps. The local rules are those of the module
        docstring.
        """
        key = (num, entry, active)
        if key in self._sweeps:
            return self._sweeps[key]
        m = self.model
        F = self._flat
        terms: dict[Ref, list[list[sympy.Expr]]] = {}
        ce: dict[int, sympy.Expr] = {}  # ḡ_L_t, when yhat_t's adjoint is exactly the cross-entropy pull
        tape: list[tuple[sympy.Symbol, sympy.Expr]] = []

        def wanted(ref: Ref) -> bool:
            return active is None or ref in active

        def push(ref: Ref, k: int, term: sympy.Expr) -> None:
            if term is _ZERO:
                return
            if ref not in terms:
                terms[ref] = [[] for _ in F[ref]]
            terms[ref][k].append(term)

        def outer(row: Ref, g: list[sympy.Expr], target: Ref) -> None:
            """ḡ_W(i→j) += v[i] g[j]  (the pull of ``v @ W`` or ``W v`` on the weight)."""
            if wanted(target):
                index = self._index[target]
                for i, ri in enumerate(F[row]):
                    for j, gj in enumerate(g):
                        push(target, index[i][j], _prod(ri, gj))

        def back(g: list[sympy.Expr], W: Ref, target: Ref) -> None:
            """ḡ_v[i] += sum_j g[j] W(i→j)  (the pull of ``v @ W`` or ``W v`` on the vector v)."""
            if wanted(target):
                w, index = F[W], self._index[W]
                for i in range(len(F[target])):
                    push(target, i, _sum([_prod(gj, w[index[i][j]]) for j, gj in enumerate(g)]))

        def bias(g: list[sympy.Expr], target: Ref) -> None:
            if m.biases and wanted(target):
                for j, gj in enumerate(g):
                    push(target, j, gj)

        terms[num] = [[_ONE if k == entry else _ZERO] for k in range(len(F[num]))]
        adj: dict[Ref, list[sympy.Expr]] = {}
        nodes = m.nodes()
        for node in nodes[nodes.index(num) :: -1]:
            if node not in terms:
                continue
            g = [self._bind(_sum(ts), f"g_{node}[{k}]", tape) for k, ts in enumerate(terms.pop(node))]
            adj[node] = g
            fam, t = node.family, node.step
            if node == L_TOTAL:
                for s in m.loss_steps:
                    if wanted(Ref("L", s)):
                        push(Ref("L", s), 0, g[0])
                continue
            assert t is not None
            if fam == "L" and m.loss == "squared_error":
                c = g[0]
                y, yhat = F[Ref("y", t)], F[Ref("yhat", t)]
                if wanted(Ref("yhat", t)):  # yhat - y
                    for k in range(m.output_size):
                        push(Ref("yhat", t), k, _prod(c, _sum([yhat[k], _prod(_MINUS, y[k])])))
                if wanted(Ref("y", t)):  # y - yhat
                    for k in range(m.output_size):
                        push(Ref("y", t), k, _prod(c, _sum([y[k], _prod(_MINUS, yhat[k])])))
            elif fam == "L":
                c = g[0]
                y, yhat, z = F[Ref("y", t)], F[Ref("yhat", t)], F[Ref("z", t)]
                if wanted(Ref("yhat", t)):
                    ce[t] = c
                    for k in range(m.output_size):  # -y/yhat
                        push(Ref("yhat", t), k, _prod(_MINUS, c, y[k], _power(yhat[k], -1)))
                if wanted(Ref("y", t)):  # -log yhat_t[k] = log sum exp z_t - z_t[k], log sum exp z_t = L_t + y_t.z_t
                    lse = self._bind(_sum([F[node][0], *[_prod(yj, zj) for yj, zj in zip(y, z)]]), f"lse_{t}", tape)
                    for k in range(m.output_size):
                        push(Ref("y", t), k, _prod(c, _sum([lse, _prod(_MINUS, z[k])])))
            elif fam == "yhat":
                if not wanted(Ref("z", t)):
                    continue
                yhat, y = F[node], F[Ref("y", t)]
                if m.loss == "squared_error":  # the identity
                    for j in range(m.output_size):
                        push(Ref("z", t), j, g[j])
                elif t in ce:  # softmax and cross-entropy fused: (yhat - y), using sum(y_t) = 1
                    for j in range(m.output_size):
                        push(Ref("z", t), j, _prod(ce[t], _sum([yhat[j], _prod(_MINUS, y[j])])))
                else:  # g (diag(yhat) - yhat^T yhat)
                    s = self._bind(_sum([_prod(gk, yk) for gk, yk in zip(g, yhat)]), f"s_{t}", tape)
                    for j in range(m.output_size):
                        push(Ref("z", t), j, _prod(yhat[j], _sum([g[j], _prod(_MINUS, s)])))
            elif fam == "z":
                back(g, Ref("W_hy"), Ref("h", t))
                outer(Ref("h", t), g, Ref("W_hy"))
                bias(g, Ref("b_y"))
            elif fam == "h":
                if wanted(Ref("a", t)):
                    derivative = _DERIVATIVES[m.activation]
                    for j, (gj, hj) in enumerate(zip(g, F[node])):
                        push(Ref("a", t), j, _prod(gj, derivative(hj)))
            elif fam == "a":
                back(g, Ref("W_xh"), Ref("x", t))
                outer(Ref("x", t), g, Ref("W_xh"))
                back(g, Ref("W_hh"), Ref("h", t - 1))
                if Ref("W_hh") in self._parents[node]:
                    outer(Ref("h", t - 1), g, Ref("W_hh"))
                bias(g, Ref("b_h"))
            else:  # pragma: no cover - every node family is handled above
                raise InternalError(f"no local rule for {node}")
            for p in self._parents[node]:  # a step input's one child is done: its adjoint is final
                if p in terms and not p.is_parameter and not self._parents[p]:
                    adj[p] = [self._bind(_sum(ts), f"g_{p}[{k}]", tape) for k, ts in enumerate(terms.pop(p))]
        for leaf, ts in terms.items():  # the parameters: their sums over the steps are final outputs
            adj[leaf] = [_sum(k) for k in ts]
        sweep = _Sweep(adj, tape)
        self._sweeps[key] = sweep
        return sweep

    # -- partials -------------------------------------------------------------------

    def partial(self, num: Ref, den: Ref, reading: Reading = "total") -> Jacobian:
        """∂num/∂den under ``reading``, laid out ``squeeze(shape(num)) + squeeze(shape(den))`` (cached).

        A leaf numerator gives the identity tensor when it is ``den`` and zeros
        otherwise; a den that is not upstream of num gives zeros.
        """
        self._check(num)
        self._check(den)
        if reading not in _READINGS:
            raise ConfigError(f"unknown reading {reading!r}", hint="use 'total' or 'immediate'")
        key = (num, den, reading)
        if key in self._partials:
            return self._partials[key]
        shape = squeeze_shape(self.model.shape(num)) + squeeze_shape(self.model.shape(den))
        if reading == "immediate" and not self.is_ambiguous(num, den):
            core = self.partial(num, den, "total")._core
        else:
            core = _Core(self, *self._entries(num, den, reading))
        jac = Jacobian(num, den, reading, shape, core)
        self._partials[key] = jac
        return jac

    def _entries(self, num: Ref, den: Ref, reading: Reading) -> tuple[list[sympy.Expr], list[_Sweep]]:
        """The flat entries of ∂num/∂den (row-major over num's then den's entries) and the sweeps they use."""
        n_num, n_den = len(self._flat[num]), len(self._flat[den])
        if not self._parents[num]:  # a leaf (or h_0): the identity or zeros
            return [_ONE if (num == den and i == j) else _ZERO for i in range(n_num) for j in range(n_den)], []
        if self._order[den] not in self._upstream(num):
            return [_ZERO] * (n_num * n_den), []
        active: frozenset[Ref] | None = None
        if reading == "immediate" and num == L_TOTAL and den.family == "h":
            active = self._direct_nodes()  # one sweep serves every h_t (see _direct_nodes)
        elif reading == "immediate":
            active = self._between(num, den, self._blocked(num, den))
            if not active:
                return [_ZERO] * (n_num * n_den), []
        zero = [_ZERO] * n_den
        out: list[sympy.Expr] = []
        sweeps = [self._sweep(num, k, active) for k in range(n_num)]
        for sweep in sweeps:
            out.extend(sweep.adjoints.get(den, zero))
        return out, sweeps

    def _direct_nodes(self) -> frozenset[Ref]:
        """Every h, z, yhat and L node: a sweep of L restricted to them never crosses an edge h_{t-1} → a_t.

        So the adjoint of each h_t is its immediate ∂L/∂h_t (the path through L_t
        alone, as no other hidden state may be passed), for every t from one sweep.
        """
        fams = ("h", "z", "yhat", "L")
        return frozenset(r for r in self._refs if r.family in fams)

    # -- compiling and expanding -------------------------------------------------

    def _closure(self, exprs: Iterable[sympy.Expr]) -> list[sympy.Symbol]:
        """The tape symbols that ``exprs`` depend on, in tape order."""
        seen: set[sympy.Symbol] = set()
        stack = [s for e in exprs for s in e.free_symbols if s in self._tape]
        while stack:
            s = stack.pop()
            if s not in seen:
                seen.add(s)
                stack.extend(d for d in self._tape[s].free_symbols if d in self._tape and d not in seen)
        return sorted(seen, key=self._tape_index.__getitem__)

    def _expand_tape(self, exprs: list[sympy.Expr]) -> list[sympy.Expr]:
        """``exprs`` with every tape symbol replaced by its expression in node symbols, in sympy's canonical form."""
        for s in self._closure(exprs):
            if s not in self._expanded:
                e = self._tape[s]
                subs = {d: self._expanded[d] for d in e.free_symbols if d in self._tape}
                self._expanded[s] = _canonical(e.xreplace(subs), self._canon)
        out = []
        for e in exprs:
            subs = {d: self._expanded[d] for d in e.free_symbols if d in self._tape}
            out.append(_canonical(e.xreplace(subs), self._canon))
        return out
