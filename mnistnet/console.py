"""Output for people (rich, on stderr) and for machines (JSON, on stdout).

stdout carries only results (JSON with ``--json``); chatter, progress and
errors go to stderr. Colour and live displays only on a terminal; rich
already honours ``NO_COLOR``.

Text that comes from a file or a path (a model's class names, its creation
time, a folder name) is data, never markup and never terminal commands:
pass it through :func:`literal` before rich sees it.
"""

import contextlib
import json
import math
import os
import re
import sys

from rich.console import Console

# C0 and C1 control characters, DEL, line/paragraph separators and the bidi
# controls that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_control(text, keep=""):
    r"""``text`` with every control character spelled out: ESC becomes ``\x1b``, NUL ``\x00``.

    Characters in ``keep`` (``"\n"`` for a message of several lines) are left as they are.

    >>> escape_control("a\x1b[2Jb\n")
    'a\\x1b[2Jb\\n'
    """

    def spell(match):
        char = match.group()
        if char in keep:
            return char
        code = ord(char)
        named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
        return named or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")

    return _CONTROL.sub(spell, text)


def literal(value):
    """``str(value)`` made safe to print through rich: shown as is, never obeyed.

    Control characters are spelled out (:func:`escape_control`) and rich
    markup is escaped, so ``"[bold red]"`` prints as those ten characters.
    Unlike ``rich.markup.escape`` it leaves a final backslash single (a
    Windows folder ``C:\\data\\`` prints as typed), so put no markup tag
    right after it; style such lines with ``rich.text.Text`` instead.
    """
    return _MARKUP_TAG.sub(_escape_tag, escape_control(str(value)))


# What rich reads as a tag; backslashes before it would escape our escape.
_MARKUP_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def _escape_tag(match):
    backslashes, tag = match.groups()
    return f"{backslashes}{backslashes}\\{tag}"


def make_console(quiet=False):
    """A rich console on stderr; with ``quiet`` it prints nothing.

    Once stderr's reader has gone (``mnistnet train-multiclass 2>&1 | head``),
    the chatter is dropped and the command goes on (:class:`ChatterStream`).
    """
    return Console(file=ChatterStream(sys.stderr), quiet=quiet, highlight=False)


class ChatterStream:
    """A stream for messages to people that outlives its reader.

    The first write or flush that meets a broken pipe points the stream's
    file descriptor at the null device (so Python's own last flush cannot
    fail either) and every later write is dropped: a training run whose log
    reader has quit finishes and saves its run, as with a closed stdout.
    Everything else is the wrapped stream's (``isatty``, ``encoding``, ...).
    """

    def __init__(self, stream):
        self._stream = stream
        self.broken = False

    def write(self, text):
        if not self.broken:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self):
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self):
        self.broken = True
        with contextlib.suppress(OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def stdout_console():
    """A rich console on stdout for results meant for people (tables).

    Piped or redirected, rich would assume 80 columns and fold long paths
    mid-word; a log or a file has room, so tables get up to 200 there.
    """
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def is_interactive(console):
    """True when live displays (progress bars) make sense on ``console``."""
    return console.is_terminal and not console.quiet


def strict_json(obj):
    """``obj`` with every NaN or infinite float replaced by ``"NaN"``, ``"Infinity"``, ...

    >>> strict_json({"loss": float("nan"), "n": [1, float("-inf")]})
    {'loss': 'NaN', 'n': [1, '-Infinity']}
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {key: strict_json(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(value) for value in obj]
    return obj


def print_json(obj, one_line=False):
    """Write ``obj`` as one strict JSON document on stdout (``one_line``: JSON Lines).

    NaN and infinities become strings (:func:`strict_json`): the output never
    holds the bare ``NaN`` or ``Infinity`` that strict parsers reject.
    """
    obj = strict_json(obj)
    text = json.dumps(obj, allow_nan=False, indent=None if one_line else 2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
