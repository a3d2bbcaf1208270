"""Run every benchmark script in this folder, one after another (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    worst = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n=== {script.name} ===", flush=True)
        worst = max(worst, subprocess.run([sys.executable, str(script), *sys.argv[1:]]).returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main())
