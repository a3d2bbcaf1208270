"""Benchmark of the language's defences: hostile input is refused quickly, measured against a real answer.

Usage::

    .venv/bin/python benchmarks/bench_language.py

The baseline, measured first in the same run, is the CPU time to parse a
long but ordinary answer: ``dL/dW_hy`` written out as a sum of its 1000
terms (what a T=1000 student writes). Every input of the hostile corpus
(``tests/test_language_fuzz.py``'s ``HOSTILE``: nesting bombs, huge
exponents, runs of signs and commands, megabytes of text) must be refused
with the package's own error in at most ``RATIO`` times that baseline, so
that nothing a user submits can tie up a grader. CPU time
(``time.process_time``) is used, best of three, so other processes on the
machine do not count. Exit 1 when an input is over the ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

RATIO = 10.0
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bptt_check.errors import BpttCheckError  # noqa: E402
from bptt_check.language import parse  # noqa: E402
from bptt_check.model import RNN  # noqa: E402
from test_language_fuzz import HOSTILE  # noqa: E402


def cpu(fn) -> float:
    """Best of three CPU times of ``fn()``."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def refuse(text: str) -> None:
    try:
        parse(text, RNN())
    except BpttCheckError:
        return
    raise AssertionError(f"accepted: {text[:60]!r}")


def main() -> int:
    steps = 1000
    model = RNN(steps=steps)
    long_answer = " + ".join(f"h_{t}.T @ (yhat_{t} - y_{t})" for t in range(1, steps + 1))
    parse("h_1", model)  # lark's tables, once per process
    base = cpu(lambda: parse(long_answer, model))
    print(f"baseline: a {steps}-term sum parses in {base * 1e3:.0f} ms CPU; each hostile input may take {RATIO:g}x")
    rows = sorted(((cpu(lambda t=text: refuse(t)), text) for text in HOSTILE), reverse=True)
    print(f"{'CPU ms':>8} {'ratio':>6}  input")
    over = 0
    for took, text in rows[:8]:
        ratio = took / base
        over += ratio > RATIO
        print(f"{took * 1e3:8.0f} {ratio:6.2f}  {text[:50]!r}{'  OVER' if ratio > RATIO else ''}")
    print(f"{len(HOSTILE)} hostile inputs, the slowest {rows[0][0] * 1e3:.0f} ms CPU ({rows[0][0] / base:.2f}x the baseline)")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
