"""Run folders: one run per folder, written whole or not at all.

The rule (README, "Run folders"):

- A run's files are written into a hidden staging folder inside the run
  folder (``.mnistnet-partial-XXXXXXXX``) and moved into place together
  when every one of them is complete (:meth:`RunFolder.commit`), the
  ``last`` file (run.json) last. An error or an interrupt before that
  removes the staging folder: the run folder keeps what it held before,
  nothing or an earlier run. Ctrl-C and SIGTERM wait for the moves.
- A run folder must be free: missing or empty. A numbered folder (the
  default ``runs/multiclass``) that is taken becomes ``runs/multiclass-2``,
  ``-3``, ...: it never replaces anything. A named folder that holds a run
  (nothing but a run's files) is replaced only with ``overwrite``: the old
  files move aside, the new ones in, the old ones are deleted. A folder
  holding anything else is never touched, and a file that appears in the
  run folder while the run is written stays (only a run's files move aside).
- Other commands keep their files out of run folders
  (:func:`run_folder_receiving`): one file more, and a folder is no longer
  a run that ``overwrite`` (or resuming in place) may replace.
- From :func:`open_run_folder` to the end, the process holds a lock on the
  run folder (``fcntl.flock``, where the platform has it): a second run
  aimed at the same folder takes the next number or fails at once. A
  staging folder found in a folder that nobody locks was left by a killed
  run, and is removed.
- Every file records the same run id (:attr:`RunFolder.run_id`).

No step races: a new run folder comes from ``mkdir`` (one process wins),
the lock from the kernel, the staging folder from ``mkdtemp``. Everything
happens inside the run folder, so it may be a mount point or the current
folder, and its parent need not be writable.

>>> with open_run_folder("runs/demo", names=("a.txt",), numbered=True) as folder:
...     _ = open(folder.file("a.txt"), "w").write("hello")
...     folder.commit()
'runs/demo'
>>> with open_run_folder("runs/demo", names=("a.txt",), numbered=True) as folder:
...     folder.path
'runs/demo-2'
"""

import contextlib
import datetime
import os
import secrets
import shutil
import signal
import tempfile
import threading

from mnistnet.errors import MnistnetError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs started together may then collide
    fcntl = None

MAX_NUMBER = 9999  # runs/multiclass-9999 is the last name tried
HIDDEN_PREFIX = ".mnistnet-"  # our staging (partial) and aside (old) folders inside a run folder


class RunFolderTaken(MnistnetError):
    """The run folder asked for holds a run (without ``overwrite``) or other files.

    The command line reports it as a usage error: the value of ``--out``
    is not acceptable as it stands.
    """


def new_run_id():
    """``"20261127-101500-3fa2c91b"``: UTC time to the second, then 32 random bits."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


class RunFolder:
    """A run folder being written; make it with :func:`open_run_folder`.

    Attributes: ``path`` (the run folder), ``staging`` (the hidden folder
    inside it that the files go to until :meth:`commit`), ``run_id``,
    ``replaces`` (True when it replaces an earlier run), ``committed``.
    """

    def __init__(self, path, staging, lock_fd, replaces, created, names, last):
        self.path = path
        self.staging = staging
        self.run_id = new_run_id()
        self.replaces = replaces
        self.committed = False
        self._lock_fd = lock_fd
        self._created = created  # folders made for this run, removed again if it fails
        self._names = names
        self._last = last

    def file(self, name):
        """Where file ``name`` of the run is written until the commit."""
        return os.path.join(self.staging, name)

    def final(self, name):
        """Where file ``name`` of the run lies after the commit."""
        return os.path.join(self.path, name)

    @contextlib.contextmanager
    def writing(self):
        """An ``OSError`` of the block about a staged file names it in the run folder."""
        try:
            yield
        except OSError as exc:
            name = exc.filename
            prefix = self.staging + os.sep
            if not (isinstance(name, str) and name.startswith(prefix)):
                raise
            shown = self.final(name[len(prefix) :])
            raise OSError(exc.errno, exc.strerror or str(exc), shown) from exc

    def commit(self):
        """Move the staged files into place, the earlier run's out first; returns :attr:`path`.

        Ctrl-C and SIGTERM wait until it is done (the interrupt follows it).
        """
        with deferred_signals():
            if self._lock_fd is not None and not _same_file(self._lock_fd, self.path):
                raise MnistnetError(f"the output folder {self.path} was replaced meanwhile")
            aside = _hidden_folder(self.path, "old-") if self.replaces else None
            if aside is not None:  # the earlier run's files (none other), its last file first
                _move_all(self.path, aside, self._last, last_first=True, only=self._names)
            _move_all(self.staging, self.path, self._last, last_first=False)
            self.committed = True
            self._created = []
            os.rmdir(self.staging)
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
        return self.path

    def close(self):
        """Discard what was staged unless committed; release the lock. Idempotent."""
        with deferred_signals():
            if not self.committed:
                shutil.rmtree(self.staging, ignore_errors=True)
                _remove_empty(self._created)  # while locked: nobody else uses them
            self._created = []
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing releases the lock
                self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def open_run_folder(path, names, *, numbered=False, overwrite=False, last=None):
    """Reserve the run folder ``path`` (or, ``numbered``, the first free ``path-N``).

    ``names`` are the files a run may hold; a folder holding only these is
    a run. ``last`` (one of them) is moved in last and out first, so that a
    folder holding it holds a whole run. Creates the folder if needed,
    locks it and makes the staging folder inside (which also proves that
    files can be written there).

    Raises :class:`RunFolderTaken` when a named ``path`` holds a run and
    ``overwrite`` is False, or holds anything that is not a run's file;
    :class:`MnistnetError` when another run is writing there or the folder
    cannot be written.
    """
    path = os.fspath(path)
    created = _makedirs(os.path.dirname(os.path.abspath(path)), path)
    try:
        for candidate in _numbered(path) if numbered else (path,):
            folder = _try_reserve(candidate, names, numbered, overwrite, created, last)
            if folder is not None:
                return folder
        raise MnistnetError(f"the output folder {path}: every name up to -{MAX_NUMBER} is taken")
    except BaseException:
        _remove_empty(created)
        raise


def _try_reserve(path, names, numbered, overwrite, created, last):
    """A :class:`RunFolder` for ``path``, or None if ``numbered`` and ``path`` is taken."""
    made = _mkdir(path, path)
    if not os.path.isdir(path):
        if numbered:
            return None
        raise RunFolderTaken(f"the output folder {path} is a file, not a folder", setting="out")
    lock_fd = _lock(path)
    if lock_fd is False:
        if numbered:
            return None
        raise MnistnetError(
            f"the output folder {path}: another mnistnet run is writing there", setting="out"
        )
    staging = None
    try:
        replaces = _judge(path, names, numbered, overwrite)
        if replaces is not None:
            staging = _hidden_folder(path, "partial-")
    finally:
        if staging is None:  # not ours after all: leave it as we found it
            if made:
                _remove_empty([path])  # we hold its lock: nobody else uses it
            _close(lock_fd)
    if staging is None:
        return None
    owned = [*created, path] if made else list(created)
    return RunFolder(path, staging, lock_fd, replaces, owned, names, last)


def _judge(path, names, numbered, overwrite):
    """False: ``path`` is empty; True: it holds a run to replace; None: numbered, taken.

    Called with the folder locked: staging folders in it are a killed run's, removed.
    """
    with os.scandir(path) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in [e for e in entries if _ours(e)]:
        shutil.rmtree(entry.path, ignore_errors=True)
        entries.remove(entry)
    if not entries:
        return False
    if numbered:
        return None
    others = [e for e in entries if not _is_run_file(e, names)]
    if others:
        shown = [e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in others]
        listed = ", ".join(shown[:3]) + (", ..." if len(shown) > 3 else "")
        raise RunFolderTaken(
            f"the output folder {path} holds other things than a run's files ({listed}), "
            "which mnistnet never deletes; move them out, or choose another folder",
            setting="out",
        )
    if not overwrite:
        raise RunFolderTaken(
            f"the output folder {path} holds a run already; "
            "pass --overwrite to replace it, or choose another folder",
            setting="out",
        )
    return True


def run_folder_receiving(path, names, marks):
    """The run folder that files written into folder ``path`` would land in, or None.

    Writing into ``path`` adds an entry to ``path`` itself or, where it does
    not exist yet, to its nearest existing parent (the folders between are
    made on the way). That folder is returned, as ``path`` names it, when
    it holds a run (files named in ``names`` only, one of ``marks`` among
    them) or a run is being written there (it holds a staging folder): one
    entry more there, and :func:`open_run_folder` no longer takes it for a
    run that ``overwrite`` may replace.
    """
    folder = os.path.normpath(os.fspath(path))
    while not os.path.lexists(folder):
        parent = os.path.dirname(folder) or os.curdir
        if parent == folder:
            return None
        folder = parent
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:  # not a folder, or not readable: writing there will say so
        return None
    if any(_ours(e) for e in entries):
        return folder
    if not all(_is_run_file(e, names) for e in entries):
        return None
    return folder if any(e.name in marks for e in entries) else None


def _ours(entry):
    return entry.name.startswith(HIDDEN_PREFIX) and entry.is_dir(follow_symlinks=False)


def _is_run_file(entry, names):
    return entry.name in names and entry.is_file(follow_symlinks=False)


def _numbered(path):
    yield path
    for n in range(2, MAX_NUMBER + 1):
        yield f"{path}-{n}"


def _hidden_folder(path, kind):
    """A new hidden folder inside ``path``: ``.mnistnet-<kind>XXXXXXXX``."""
    try:
        return tempfile.mkdtemp(dir=path, prefix=HIDDEN_PREFIX + kind)
    except OSError as exc:
        raise _unwritable(path, exc) from None


def _move_all(source, target, last, last_first, only=None):
    """Rename every file of folder ``source`` into ``target`` (hidden folders stay).

    ``only``: just the files of ``source`` with these names.
    """
    with os.scandir(source) as it:
        entries = list(it)
    if only is not None:
        entries = [e for e in entries if _is_run_file(e, only)]
    names = sorted(e.name for e in entries if not e.name.startswith(HIDDEN_PREFIX))
    if last in names:
        names.remove(last)
        names.insert(0 if last_first else len(names), last)
    for name in names:
        os.replace(os.path.join(source, name), os.path.join(target, name))


def _makedirs(parent, path):
    """Create ``parent`` and the folders above it as needed; the list of those created."""
    missing = []
    probe = parent
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    created = []
    try:
        for folder in reversed(missing):
            if _mkdir(folder, path):
                created.append(folder)
    except BaseException:
        _remove_empty(created)
        raise
    return created


def _remove_empty(folders):
    """Remove ``folders`` (made by this run), last first, each only while it is empty."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # another run may have started using it: then it stays


def _mkdir(path, out):
    """Make folder ``path``; True if this call made it, False if something is there.

    ``out`` is the output folder asked for, named in the error.
    """
    try:
        try:
            os.mkdir(path)
        except FileNotFoundError:  # a failing run removed the empty parent just now
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            os.mkdir(path)
    except FileExistsError:
        return False
    except OSError as exc:
        if os.path.lexists(path):  # e.g. EACCES on a folder that exists: judged later
            return False
        raise _unwritable(out, exc) from None
    return True


def _unwritable(path, exc):
    reason = exc.strerror or str(exc)
    return MnistnetError(f"cannot write files in the output folder {path}: {reason}", setting="out")


def _lock(path):
    """An open descriptor holding an exclusive lock on folder ``path``; False if taken.

    None where the platform has no ``flock``.
    """
    if fcntl is None:
        return None
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise _unwritable(path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)  # replaced between open and lock: look again
    return False


def _close(fd):
    if fd not in (None, False):
        os.close(fd)


def _same_file(fd, path):
    try:
        st = os.stat(path)
    except OSError:
        return False
    return os.path.samestat(os.fstat(fd), st)


@contextlib.contextmanager
def deferred_signals(signums=(signal.SIGINT, signal.SIGTERM)):
    """Hold Ctrl-C and SIGTERM back during the block; deliver them after it.

    Python runs signal handlers in the main thread only, so elsewhere the
    block runs as is. A signal that came in is raised again at the end, to
    whatever handler was installed (KeyboardInterrupt, or the default action).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {}
    for signum in signums:
        previous[signum] = signal.signal(signum, lambda n, frame: received.append(n))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)
