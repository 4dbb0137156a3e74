"""Output for people (rich, on stderr) and for machines (JSON, on stdout).

stdout carries only results (JSON with ``--json``); chatter, progress and
errors go to stderr. Colour and live displays only on a terminal; rich
already honours ``NO_COLOR``.
"""

import json
import sys

from rich.console import Console


def make_console(quiet=False):
    """A rich console on stderr; with ``quiet`` it prints nothing."""
    return Console(stderr=True, quiet=quiet, highlight=False)


def stdout_console():
    """A rich console on stdout for results meant for people (tables).

    Piped or redirected, rich would assume 80 columns and fold long paths
    mid-word; a log or a file has room, so tables get up to 200 there.
    """
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def is_interactive(console):
    """True when live displays (progress bars) make sense on ``console``."""
    return console.is_terminal and not console.quiet


def print_json(obj, one_line=False):
    """Write ``obj`` as one JSON document on stdout (``one_line``: JSON Lines)."""
    text = json.dumps(obj) if one_line else json.dumps(obj, indent=2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
