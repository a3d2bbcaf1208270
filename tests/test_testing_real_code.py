"""bptt_check.testing on course-style code (examples/real_code): the example tests, collected with the suite."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "real_code"))

from test_real_code import *  # noqa: E402,F401,F403
