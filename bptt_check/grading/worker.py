"""The worker process of :mod:`bptt_check.grading.pool` (this module runs in the child).

The worker first loads what every question needs (sympy, jax, the parser),
so it can be started before the parent knows the question. Protocol over two
pipes (pickled messages): the parent sends the
:class:`~bptt_check.grading.Question` first, then one ``(answer, syntax)``
per check, and ``None`` to stop. The worker answers ``("ready",)`` once its
grader is built (or ``("failed", reason)``), then ``("done", template,
positional, seconds)`` per check. It exits when told to, when the parent
goes away (end of file on its pipe), or when killed (it holds no state).
"""

from __future__ import annotations

import signal
import time
from multiprocessing.connection import Connection


def main(read_fd: int, write_fd: int) -> None:  # pragma: no cover - runs in a child process
    """Build a grader once, then check one answer per message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    inbox = Connection(read_fd, writable=False)
    outbox = Connection(write_fd, readable=False)
    try:
        # What every question needs, loaded while the parent is still reading its files.
        from ..compare import Checker  # noqa: F401 - sympy, numpy, the language
        from ..language.parser import lark_parser
        from ..numeric import NumericRNN  # noqa: F401 - jax
        from .grader import Grader

        lark_parser()
        question = inbox.recv()

        grader = Grader(question)
        grader.warm_up()
    except (EOFError, OSError):
        return
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which decides
        try:
            outbox.send(("failed", f"{type(err).__name__}: {err}"))
        except (OSError, ValueError):
            pass
        return
    outbox.send(("ready",))
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        answer, syntax = message
        start = time.perf_counter()
        template, positional = grader.check_text(answer, syntax)
        try:
            outbox.send(("done", template, positional, time.perf_counter() - start))
        except (OSError, ValueError):
            return
