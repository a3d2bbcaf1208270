"""Benchmark of the testing helpers: ``assert_gradients_match`` on a correct min-char-rnn, per example.

Usage::

    .venv/bin/python benchmarks/bench_testing.py

After a warm-up of 5 examples (jax's compile, sympy's truths of the first
models), times 20 and then 200 hypothesis examples of ``examples/user_rnn/rnn_impls.lossFun``
(column vectors, biases, a loss at every step) in one process, and prints the
time per example and the 200/20 ratio: the helpers' own set-up is paid once,
so a ratio near 10 is linear in the examples (target: 200 examples within a minute).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "user_rnn"))

import rnn_impls  # noqa: E402

from bptt_check.testing import assert_gradients_match, models  # noqa: E402

NAMES = {"Wxh": "W_xh", "Whh": "W_hh", "Why": "W_hy", "bh": "b_h", "by": "b_y"}


def run(examples: int) -> float:
    start = time.perf_counter()
    assert_gradients_match(rnn_impls.lossFun, models(biases=True, loss_at="all"), names=NAMES, layout="column",
                           max_examples=examples, seed=1)
    return time.perf_counter() - start


def main() -> int:
    warm = run(5)
    print(f"warm-up: 5 examples in {warm:.2f} s (the compile and first truths)")
    small, large = run(20), run(200)
    print(f"{'examples':>8} {'seconds':>8} {'ms/example':>10}")
    for n, t in ((20, small), (200, large)):
        print(f"{n:8d} {t:8.2f} {t / n * 1e3:10.1f}")
    print(f"200/20 ratio: {large / small:.2f} (10 is linear in the examples); 200 examples in {large:.1f} s (target < 60 s)")
    return 0 if large < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
