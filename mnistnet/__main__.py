"""``python -m mnistnet`` and the ``mnistnet`` console script: :func:`main`.

The command line is imported only once Ctrl-C can be answered: an interrupt
while the imports run (the first fraction of a second) exits 130 with one
line, like an interrupt later on, not with a traceback. Closed standard
streams (``mnistnet info m.npz >&-``) are pointed at the null device first:
output to a closed stream is discarded, as Python's own ``print`` does.
"""

import os
import signal
import sys

_EXIT_INTERRUPTED = 130  # mnistnet.errors.EXIT_INTERRUPTED (tested equal), known before any import


def main():
    """Run the ``mnistnet`` command line; never a traceback for Ctrl-C or closed streams."""
    # A shell script starts its background jobs (`mnistnet serve M &`) with SIGINT
    # ignored, and Python keeps it so: `kill -INT` would then do nothing. mnistnet
    # always answers SIGINT as Ctrl-C (exit 130), however it was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _open_closed_streams()
        from mnistnet.cli import main as cli  # click, rich, NumPy: the slow part

        cli()
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(_EXIT_INTERRUPTED)


def _open_closed_streams():
    """Give closed stdin, stdout and stderr the null device.

    Python leaves ``sys.stdout`` None when file descriptor 1 is closed, and
    the next file opened (a model being saved) would get that descriptor, so
    anything written to "stdout" at the C level would land in it.
    """
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            mode = "r" if fd == 0 else "w"
            setattr(sys, name, open(fd, mode, encoding="utf-8", errors="replace", closefd=False))


if __name__ == "__main__":
    main()
