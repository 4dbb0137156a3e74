"""Download progress for people: one rich bar per file, on stderr, on a terminal only.

The data layer draws nothing; a command hands it a :class:`DownloadProgress`
(as pooch takes a ``progressbar``)::

    with download_progress(console) as progress:
        files = datasets.fetch(dataset, progress=progress)
"""

import contextlib

from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from mnistnet.console import is_interactive


def download_progress(console):
    """A :class:`DownloadProgress` on ``console`` when it is a terminal; else ``None``.

    Use it as a context manager; off a terminal it yields ``None``: no bar
    (commands print plain lines there instead).
    """
    return DownloadProgress(console) if is_interactive(console) else contextlib.nullcontext()


class DownloadProgress:
    """``progress(name, url)`` gives the bar of one download attempt.

    The rich display starts with the first download (files already on disk
    draw nothing) and stops when the ``with`` block ends. A finished bar
    stays on screen; a failed attempt's bar disappears.
    """

    def __init__(self, console):
        self.console = console
        self._progress = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        return False

    def __call__(self, name, url):
        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._progress.start()
        host = url.split("://", 1)[-1].split("/", 1)[0]
        return FileBar(self._progress, f"{escape(name)} [dim]{escape(host)}[/]")


class FileBar:
    """One file's bar: what pooch's HTTPDownloader drives (total, update, reset, close)."""

    def __init__(self, progress, description):
        self._progress = progress
        self._task = progress.add_task(description, total=None)
        self._total = None
        self._done = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # A finished bar stays on screen; a failed attempt disappears.
        if not self._done:
            self._progress.remove_task(self._task)
        return False

    @property
    def total(self):
        return self._total

    @total.setter
    def total(self, value):
        self._total = value or None  # 0: the server sent no content-length
        self._progress.update(self._task, total=self._total)

    def update(self, n):
        self._progress.advance(self._task, n)

    def reset(self):
        self._progress.reset(self._task, total=self._total)

    def close(self):
        self._done = True
