"""Atomic file writes: a temporary file in the target's folder, renamed on success.

A reader never sees a half-written file, and a failure (or Ctrl-C) leaves
no temporary behind (pooch's ``stream_download`` works the same way).
"""

import contextlib
import errno
import json
import os
import tempfile

from mnistnet.errors import MnistnetError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def temporary_path(path):
    """Yield the path of a new, empty, hidden file next to ``path``; remove it after the block.

    Move it into place with :func:`move_into_place` inside the block; whatever
    is left at the end (the block failed, or decided against the file) is
    removed. :func:`atomic_path` is the usual way in; a download, which names
    its file only once it has seen the content, uses these two directly.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def move_into_place(tmp, path):
    """Rename the finished temporary file ``tmp`` to ``path`` (atomic within one folder)."""
    # mkstemp makes the file private (0600); give it the mode any new file gets.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        os.replace(tmp, path)
    except OSError as exc:  # name the file the user asked for, not our temporary
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; move it to ``path`` if the block succeeds.

    An ``OSError`` of the block that names no file (a full disk: ``write``
    errors carry no name) is raised again naming ``path``.
    """
    with temporary_path(path) as tmp:
        try:
            yield tmp
        except OSError as exc:
            if exc.filename is not None and exc.filename != tmp:
                raise
            raise OSError(exc.errno, exc.strerror or str(exc), os.fspath(path)) from exc
        move_into_place(tmp, path)


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def write_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def check_writable_dir(path, label, names=()):
    """Raise :class:`MnistnetError` unless files can be written into folder ``path``.

    Called before long work so that a bad folder fails at once, not after
    it. Nothing is created: a file is written and removed again in the
    folder, or in the nearest folder above it that exists (the missing ones
    are made when the first file is written). Two processes checking the
    same new folder at once never trip over each other. ``names`` are the
    files that will be written there; none of them may be a folder.
    """
    path = os.path.abspath(os.fspath(path))
    probe = path
    while not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    try:
        if not os.path.isdir(probe):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise MnistnetError(f"{label} {path}: cannot write files there ({reason})") from None
    for name in names:
        if os.path.isdir(os.path.join(path, name)):
            raise MnistnetError(f"{label} {path}: {name} there is a folder, not a file")
