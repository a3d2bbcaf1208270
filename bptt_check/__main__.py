"""``python -m bptt_check`` is ``bptt-check``."""

import sys

from .cli import main

sys.exit(main())
