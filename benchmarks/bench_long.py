"""Benchmark of long sequences (issue 13): ``derive`` and the check of a wrong answer against T.

Usage::

    .venv/bin/python benchmarks/bench_long.py            # T = 16, 64, 256 at H = 8 and 32
    .venv/bin/python benchmarks/bench_long.py --quick    # T = 16, 64 only

Each row is one cold command line (``python -m bptt_check …``, what a user
runs), timed once, at T and at T/2 in the same run; the table prints

* the wall time at T,
* the **T-doubling ratio** time(T) / time(T/2), and the same ratio of the
  times above the startup floor (the same command at T = 2, measured first
  in the same run: importing sympy and jax, parsing, a two-step truth),
  which is what grows with T (shown when both exceed 0.25 s: below that
  it is noise).

Commands: ``derive --target dL/dW_hh`` in each ``--format``, and ``check`` of
``sum_{t=2}^{T} …`` (a dL/dW_hh missing the first term of the sum over t),
which must be diagnosed ``missing_term``. Targets: derive at T=256, H=32
under 10 s with a T 128→256 ratio under 2.3; the wrong-answer check at
T=64, H=8 under 5 s and at T=256 under 30 s. A run past its budget (120 s)
is cut and reported as such.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

WRONG = "sum_{t=2}^{T} (h_{t-1}.T @ (dL/dh_t * (1 - h_t**2)))"
BUDGET = 120.0


def run(args: list[str], expect: str | None = None) -> float | None:
    """Wall seconds of one cold ``python -m bptt_check`` run (None past the budget); checks its output."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "bptt_check", *args], capture_output=True, text=True,
                              timeout=BUDGET, check=False)
    except subprocess.TimeoutExpired:
        return None
    took = time.perf_counter() - start
    if done.returncode not in (0, 1) or (expect is not None and expect not in done.stdout):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        print(f"    ! {' '.join(args[:3])} … exit {done.returncode}: {tail[0][:160]}", flush=True)
    return took


def derive(fmt: str, steps: int, hidden: int) -> list[str]:
    return ["derive", "--target", "dL/dW_hh", "--format", fmt, "--steps", str(steps), "--sizes", f"4,{hidden},4"]


def check(steps: int, hidden: int) -> list[str]:
    return ["check", WRONG, "--target", "dL/dW_hh", "--steps", str(steps), "--sizes", f"4,{hidden},4"]


def fmt_time(t: float | None) -> str:
    return f"> {BUDGET:.0f} s" if t is None else f"{t:7.2f} s"


def ratio(a: float | None, b: float | None, least: float = 0.0) -> str:
    return "   -" if a is None or b is None or b <= least or a <= least else f"{a / b:5.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 16 and 64 only")
    args = parser.parse_args()
    shown = (16, 64) if args.quick else (16, 64, 256)
    rows: list[tuple[str, list[str], int, str | None]] = []
    for hidden in (8, 32):
        for f in ("plain", "latex", "chain"):
            rows.append((f"derive --format {f}", derive(f, 0, hidden), hidden, None))
        rows.append(("check (wrong: sum from t=2)", check(0, hidden), hidden, "missing_term"))
    print("bptt_check long-sequence benchmark (cold command lines, one run each)")
    print(f"  {'command':30} {'H':>3} {'T':>4} {'time':>9} {'T/2':>9} {'ratio':>6} {'above floor':>12} {'floor':>8}")
    for label, argv, hidden, expect in rows:
        def at(steps: int) -> list[str]:
            out = list(argv)
            out[out.index("--steps") + 1] = str(steps)
            return out

        floor = run(at(2), None)
        times: dict[int, float | None] = {}
        for steps in sorted({t for T in shown for t in (T // 2, T)}):
            times[steps] = run(at(steps), expect)
        for T in shown:
            t, half = times[T], times[T // 2]
            above = ratio(None if t is None or floor is None else t - floor,
                          None if half is None or floor is None else half - floor, 0.25)
            print(f"  {label:30} {hidden:>3} {T:>4} {fmt_time(t)} {fmt_time(half)} {ratio(t, half):>6} {above:>12}"
                  f" {fmt_time(floor)}", flush=True)


if __name__ == "__main__":
    main()
