"""Benchmark of the symbolic truth: reverse mode over named nodes vs sympy.diff of the expanded loss.

Usage::

    .venv/bin/python benchmarks/bench_symbolic.py            # the full table (a few minutes)
    .venv/bin/python benchmarks/bench_symbolic.py --quick    # T up to 16, shorter budget

What is timed, at H = 8 with D = O = 8 (and, for a baseline that finishes, at D = H = O = 2):

* **ours**: a fresh :class:`SymbolicRNN` (symbols and the graph of named
  nodes), the loss in node symbols (``definition`` of L and of every L_t) and
  ``partial(L, ·)`` for every parameter, every input (x_t, y_t, h_0) and every
  node h_t, a_t; the median of a few repeats. Reported apart: compiling every
  one of those Jacobians into its straight-line program, and writing out the
  ``definition`` of every other node (display only: reverse mode does not use
  them).
* **sympy.diff**: ``loss_in_leaves()`` (the loss expanded to the leaves) and
  ``sympy.diff`` of it w.r.t. every parameter and input entry (not the h_t, a_t
  nodes: less work than ours), in a subprocess killed after the budget (60 s).
  T stops increasing once it exceeds the budget; a run cut short reports how
  many derivatives it finished.

Also times ``Jacobian.evaluate`` (P = 8 float points; and exact Fractions) at
T = 2 and T = 64, and prints the log-log slope of our build time in T
(least squares over T ≥ 4).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bptt_check.model import L_TOTAL, RNN, Ref  # noqa: E402
from bptt_check.symbolic import SymbolicRNN  # noqa: E402

BUDGET_S = 60.0


def model_for(T: int, sizes: tuple[int, int, int]) -> RNN:
    D, H, O = sizes
    return RNN(steps=T, input_size=D, hidden_size=H, output_size=O)


def all_denominators(model: RNN) -> list[Ref]:
    """Every parameter, every input and every h_t, a_t node."""
    nodes = [Ref(f, t) for t in model.steps_range() for f in ("a", "h")]
    return list(model.parameters()) + list(model.inputs()) + nodes


def build_ours(model: RNN) -> tuple[float, SymbolicRNN]:
    t0 = time.perf_counter()
    sym = SymbolicRNN(model)
    for ref in model.nodes():
        if ref.family == "L":
            sym.definition(ref)
    for den in all_denominators(model):
        sym.partial(L_TOTAL, den)
    return time.perf_counter() - t0, sym


def time_ours(model: RNN, repeats: int) -> tuple[float, float, float, int]:
    """(median build seconds, seconds to compile every Jacobian, seconds for every definition, tape symbols)."""
    times = []
    sym = None
    for _ in range(repeats):
        elapsed, sym = build_ours(model)
        times.append(elapsed)
    assert sym is not None
    t0 = time.perf_counter()
    for den in all_denominators(model):
        sym.partial(L_TOTAL, den).program_size
    t1 = time.perf_counter()
    for ref in model.nodes():
        sym.definition(ref)
    return statistics.median(times), t1 - t0, time.perf_counter() - t1, len(sym._tape)


def baseline_child(T: int, sizes: tuple[int, int, int]) -> None:
    """Runs in the subprocess: prints one line per derivative, then the total."""
    model = model_for(T, sizes)
    sym = SymbolicRNN(model)
    t0 = time.perf_counter()
    loss = sym.loss_in_leaves()
    print(f"loss {time.perf_counter() - t0:.3f}", flush=True)
    targets = [s for ref in model.leaves() for s in sym.symbols(ref)]
    print(f"targets {len(targets)}", flush=True)
    for k, s in enumerate(targets):
        loss.diff(s)
        print(f"done {k + 1} {time.perf_counter() - t0:.3f}", flush=True)
    print(f"total {time.perf_counter() - t0:.3f}", flush=True)


def time_baseline(T: int, sizes: tuple[int, int, int], budget: float) -> tuple[float | None, str]:
    """(seconds or None when over budget, a description)."""
    cmd = [sys.executable, __file__, "--baseline", str(T), "--sizes", ",".join(map(str, sizes))]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=budget, check=True).stdout
        timed_out = False
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        out = raw.decode() if isinstance(raw, bytes) else raw
        timed_out = True
    lines = out.split("\n")
    total = [float(x.split()[1]) for x in lines if x.startswith("total ")]
    targets = next((int(x.split()[1]) for x in lines if x.startswith("targets ")), None)
    done = [x.split() for x in lines if x.startswith("done ")]
    if not timed_out and total:
        return total[0], f"{total[0]:.2f} s"
    if done:
        k, at = int(done[-1][1]), float(done[-1][2])
        return None, f"> {budget:.0f} s ({k}/{targets} derivatives in {at:.1f} s)"
    return None, f"> {budget:.0f} s (expanded loss not differentiated once)"


def loglog_slope(ts: list[int], secs: list[float]) -> float:
    pairs = [(t, s) for t, s in zip(ts, secs) if t >= 4]
    x = np.log([p[0] for p in pairs])
    y = np.log([p[1] for p in pairs])
    return float(np.polyfit(x, y, 1)[0])


def sample_values(sym: SymbolicRNN, points: int, seed: int = 0) -> dict[Ref, np.ndarray]:
    rng = np.random.default_rng(seed)
    m = sym.model
    leaves = {}
    for ref in m.leaves():
        shape = (points, *m.shape(ref))
        if ref.family == "y":
            leaves[ref] = rng.dirichlet(np.ones(m.output_size), size=points)[:, None, :]
        else:
            leaves[ref] = (0.5 if ref.is_parameter else 1.0) * rng.normal(size=shape)
    return sym.forward_values(leaves)


PRIME = (1 << 61) - 1


class ModP:
    """A minimal element of GF(2**61 - 1), mixing with int and Fraction (the shape of an exact backend's values)."""

    __slots__ = ("v",)

    def __init__(self, v: int) -> None:
        self.v = v % PRIME

    @staticmethod
    def of(x: object) -> "ModP":
        if isinstance(x, ModP):
            return x
        if isinstance(x, Fraction):
            return ModP(x.numerator * pow(x.denominator, PRIME - 2, PRIME))
        return ModP(int(x))  # type: ignore[call-overload]

    def __add__(self, o: object) -> "ModP":
        return ModP(self.v + ModP.of(o).v)

    __radd__ = __add__

    def __sub__(self, o: object) -> "ModP":
        return ModP(self.v - ModP.of(o).v)

    def __rsub__(self, o: object) -> "ModP":
        return ModP(ModP.of(o).v - self.v)

    def __mul__(self, o: object) -> "ModP":
        return ModP(self.v * ModP.of(o).v)

    __rmul__ = __mul__

    def __truediv__(self, o: object) -> "ModP":
        return ModP(self.v * pow(ModP.of(o).v, PRIME - 2, PRIME))

    def __rtruediv__(self, o: object) -> "ModP":
        return ModP(ModP.of(o).v * pow(self.v, PRIME - 2, PRIME))

    def __neg__(self) -> "ModP":
        return ModP(-self.v)

    def __pow__(self, n: int) -> "ModP":
        return ModP(pow(self.v, n, PRIME)) if n >= 0 else ModP(1) / ModP(pow(self.v, -n, PRIME))


def exact_values(values: dict[Ref, np.ndarray], kind: str) -> dict[Ref, np.ndarray]:
    """The points as dtype=object arrays of Fractions (10**6 denominators) or of GF(p) elements."""
    out = {}
    for ref, arr in values.items():
        obj = np.empty(arr.shape, dtype=object)
        for idx in np.ndindex(*arr.shape):
            q = Fraction(arr[idx]).limit_denominator(10**6)
            obj[idx] = q if kind == "fraction" else ModP.of(q)
        out[ref] = obj
    return out


def time_evaluate(T: int, sizes: tuple[int, int, int]) -> list[tuple[str, str, int, float]]:
    """(Jacobian, value kind, program registers, seconds per evaluate)."""
    sym = SymbolicRNN(model_for(T, sizes))
    floats = sample_values(sym, 8)
    kinds = [("float P=8", floats), ("GF(p) P=8", exact_values(floats, "modp"))]
    if T <= 4:  # exact rationals grow with every step: only for short sequences
        kinds.append(("Fraction P=2", exact_values(sample_values(sym, 2), "fraction")))
    rows = []
    for den in (Ref("W_hh"), Ref("h", T)):
        jac = sym.partial(L_TOTAL, den)
        jac.evaluate(floats)  # compile
        for kind, values in kinds:
            n = max(1, int(0.3 / max(_once(jac, values), 1e-6)))
            t0 = time.perf_counter()
            for _ in range(n):
                jac.evaluate(values)
            rows.append((f"dL/d{den}", kind, jac.program_size, (time.perf_counter() - t0) / n))
    return rows


def _once(jac, values) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    jac.evaluate(values)
    return time.perf_counter() - t0


def fmt_s(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def run_table(steps: list[int], sizes: tuple[int, int, int], budget: float, repeats: int, baseline: bool) -> list[float]:
    D, H, O = sizes
    print(f"\n== D={D}, H={H}, O={O}: loss and ∂L w.r.t. every parameter, input, h_t and a_t ==")
    print(
        f"{'T':>4} {'ours build':>11} {'compile all':>12} {'definitions':>12} {'tape':>6}"
        f" {'sympy.diff (leaves only)':>44} {'ratio':>8}"
    )
    ours_times: list[float] = []
    baseline_alive = baseline
    for T in steps:
        model = model_for(T, sizes)
        ours, compile_s, define_s, tape = time_ours(model, repeats)
        ours_times.append(ours)
        if baseline_alive:
            base, text = time_baseline(T, sizes, budget)
            if base is None:
                baseline_alive = False
            ratio = f"{base / ours:8.0f}x" if base is not None else "      —"
        else:
            text, ratio = "not run (a smaller T exceeded the budget)", "      —"
        print(
            f"{T:>4} {fmt_s(ours):>11} {fmt_s(compile_s):>12} {fmt_s(define_s):>12} {tape:>6} {text:>44} {ratio:>8}",
            flush=True,
        )
    if len([t for t in steps if t >= 4]) >= 2:
        print(f"log-log slope of ours in T (T ≥ 4): {loglog_slope(steps, ours_times):.2f}")
    return ours_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="T ≤ 16, 20 s baseline budget")
    parser.add_argument("--baseline", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="8,8,8", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline is not None:
        baseline_child(args.baseline, tuple(int(v) for v in args.sizes.split(",")))  # type: ignore[arg-type]
        return
    budget = 20.0 if args.quick else BUDGET_S
    steps = [2, 4, 8, 16] if args.quick else [2, 4, 8, 16, 32, 64]
    print(f"bptt_check symbolic benchmark (python {sys.version.split()[0]}); sympy.diff budget {budget:.0f} s per T")
    ours = run_table(steps, (8, 8, 8), budget, repeats=3, baseline=True)
    print(f"T={steps[-1]} total (build): {fmt_s(ours[-1])}  target < 5 s; slope target ≤ 1.3")
    run_table([2, 3, 4, 5, 6, 8] if not args.quick else [2, 3, 4], (2, 2, 2), budget, repeats=3, baseline=True)
    print("\n== Jacobian.evaluate (compiled once; D=H=O=8) ==")
    print(f"{'T':>4} {'Jacobian':>10} {'values':>14} {'registers':>10} {'per call':>10}")
    for T in (2, steps[-1]):
        for name, kind, size, sec in time_evaluate(T, (8, 8, 8)):
            print(f"{T:>4} {name:>10} {kind:>14} {size:>10} {fmt_s(sec):>10}", flush=True)
    print("\n== Jacobian.evaluate, the seed's sizes D=H=O=2 ==")
    for name, kind, size, sec in time_evaluate(2, (2, 2, 2)):
        print(f"{2:>4} {name:>10} {kind:>14} {size:>10} {fmt_s(sec):>10}", flush=True)


if __name__ == "__main__":
    main()
