"""SIGTERM handled like Ctrl-C: the same clean-up, its own exit status.

Python turns Ctrl-C (SIGINT) into ``KeyboardInterrupt``, so every
``finally`` and ``except KeyboardInterrupt`` cleans up: temporary files are
removed, a staged run folder is discarded, the training loop keeps its last
finished epoch. SIGTERM (``kill PID``, a batch system's time limit,
``docker stop``) would kill the process on the spot instead, leaving
temporaries behind. :func:`sigterm_as_interrupt` makes it raise
:class:`Terminated`, a ``KeyboardInterrupt``, so it takes the same paths;
the command then exits with 143 (128 + 15) where Ctrl-C gives 130.
"""

import contextlib
import signal
import threading

from mnistnet.errors import EXIT_INTERRUPTED, EXIT_TERMINATED


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM where Ctrl-C raises ``KeyboardInterrupt``."""


_received = []  # SIGTERMs received by the running command


def _on_sigterm(signum, frame):
    _received.append(signum)
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """During the block, SIGTERM raises :class:`Terminated` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def interrupt_status(exc=None):
    """``(exit status, word)`` for the interrupt that stopped the command.

    ``(143, "Terminated")`` after SIGTERM, else ``(130, "Interrupted")``.
    ``exc`` is the ``KeyboardInterrupt`` caught, if any; without one (the
    training loop caught it and stopped), the signals received tell.
    """
    if isinstance(exc, Terminated) or (exc is None and _received):
        return EXIT_TERMINATED, "Terminated"
    return EXIT_INTERRUPTED, "Interrupted"
