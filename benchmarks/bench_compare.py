"""Benchmark of one check (issue 4). A script, not a test: prints medians and ratios.

* warm: the median time of one ``check`` in a process whose truth is cached,
  at T = 2 (target ≤ 10 ms) and at T = 16, H = 8;
* diagnosis: the extra time a wrong answer costs over a right one at T = 2
  (target ≤ 50 ms);
* cold: the wall time of ``bptt-check check …`` beside ``python -c "import sympy, jax"``
  measured in the same run (target: at most 1.5× that import floor).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bptt_check import RNN
from bptt_check.compare import Checker
from bptt_check.evaluate import evaluate
from bptt_check.language import parse

RIGHT_T2 = "h_0.T @ (dL/dh_1 * (1 - h_1**2)) + h_1.T @ (dL/dh_2 * (1 - h_2**2))"
WRONG_T2 = "h_1.T @ (dL/dh_2 * (1 - h_2**2))"
RIGHT_SUM = "sum_{t=1}^{T} (h_{t-1}.T @ (dL/dh_t * (1 - h_t**2)))"


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def warm(model: RNN, answer: str, repeat: int = 30) -> tuple[float, float, str]:
    t = time.perf_counter()
    checker = Checker("dL/dW_hh", model=model)
    first = checker.check(answer)
    setup = time.perf_counter() - t
    return median_time(lambda: checker.check(answer), repeat), setup, first.verdict


def cold(repeat: int = 3) -> tuple[float, float]:
    def run(args: list[str]) -> float:
        return median_time(lambda: subprocess.run(args, capture_output=True, check=False), repeat)

    floor = run([sys.executable, "-c", "import sympy, jax"])
    ours = run([sys.executable, "-m", "bptt_check", "check", RIGHT_T2, "--target", "dL/dW_hh"])
    return ours, floor


def main() -> None:
    print("bptt_check compare benchmark (medians)")
    t2, setup2, v2 = warm(RNN(), RIGHT_T2)
    print(f"  warm check, T=2 H=2:   {t2 * 1e3:8.2f} ms   (verdict {v2}; first check incl. truth {setup2:.2f} s; target ≤ 10 ms)")
    wrong, _, vw = warm(RNN(), WRONG_T2)
    checker = Checker("dL/dW_hh")
    values = evaluate(parse(WRONG_T2, checker.model).expr, checker.truth.float_backend())
    diag = median_time(lambda: checker.diagnoser.diagnose(values), 30)
    print(f"  wrong answer, T=2:     {wrong * 1e3:8.2f} ms   (verdict {vw}; of which diagnosis {diag * 1e3:.2f} ms; target ≤ 50 ms)")
    big = RNN(steps=16, input_size=8, hidden_size=8, output_size=8)
    t16, setup16, v16 = warm(big, RIGHT_SUM, repeat=5)
    print(f"  warm check, T=16 H=8:  {t16 * 1e3:8.2f} ms   (verdict {v16}; first check incl. truth {setup16:.2f} s)")
    long = RNN(steps=50, input_size=8, hidden_size=8, output_size=8)
    t50, setup50, v50 = warm(long, RIGHT_SUM, repeat=3)
    print(f"  warm check, T=50 H=8:  {t50:8.2f} s    (verdict {v50}; first check incl. truth {setup50:.2f} s; issue 8 target < 5 s)")
    ours, floor = cold()
    print(f"  cold CLI check:        {ours:8.2f} s    import sympy, jax: {floor:.2f} s   ratio {ours / floor:.2f} (target ≤ 1.5)")


if __name__ == "__main__":
    main()
