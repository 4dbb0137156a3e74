"""Run folders: one run per folder, written whole or not at all.

The rule (README, "Run folders"):

- A run's files are written into a hidden staging folder beside the run
  folder (``.NAME.XXXXXXXX.partial``) and appear together, by one rename, when
  every one of them is complete (:meth:`RunFolder.commit`). An error or an
  interrupt before that removes the staging folder: the run folder keeps
  what it held before, nothing or an earlier run.
- A run folder must be free: missing or empty. A numbered folder (the
  default ``runs/multiclass``) that is taken becomes ``runs/multiclass-2``,
  ``-3``, ...: it never replaces anything. A named folder that holds a run
  (nothing but a run's files) is replaced only with ``overwrite``: the old
  run moves aside, the new one is renamed in, the old one is deleted. A
  folder holding anything else is never touched.
- From :func:`open_run_folder` to the end, the process holds a lock on the
  run folder (``fcntl.flock``, where the platform has it): a second run
  aimed at the same folder takes the next number or fails at once.
- Every file records the same run id (:attr:`RunFolder.run_id`).

No step races: the staging folder comes from ``mkdtemp`` (a unique name),
a new run folder from ``mkdir`` (one process wins), the lock from the kernel.

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
from mnistnet.fileio import usual_mode

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the renames still never mix two runs
    fcntl = None

MAX_NUMBER = 9999  # runs/multiclass-9999 is the last name tried


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

    Attributes: ``path`` (the run folder, as it will be named), ``staging``
    (the hidden folder the files go to until :meth:`commit`), ``run_id``,
    ``replaces`` (True when it replaces an earlier run), ``committed``.
    """

    def __init__(self, path, real, staging, lock_fd, replaces, created):
        self.path = path
        self.staging = staging
        self._real = real
        self.run_id = new_run_id()
        self.replaces = replaces
        self.committed = False
        self._lock_fd = lock_fd
        self._created = created  # folders made for this run, removed again if it fails

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
        """Put the staged files in place, all in one rename; returns :attr:`path`.

        Ctrl-C and SIGTERM wait until it is done (the interrupt follows it).
        """
        os.chmod(self.staging, usual_mode(folder=True))  # mkdtemp made it private
        with deferred_signals():
            if self.replaces:
                _swap(self.staging, self._real)
            else:
                _check_still_ours(self._real, self._lock_fd)
                os.rename(self.staging, self._real)  # replaces our empty, locked folder
            self.committed = True
            self._created = []
        return self.path

    def close(self):
        """Discard what was staged unless committed; release the lock. Idempotent."""
        with deferred_signals():
            if not self.committed:
                shutil.rmtree(self.staging, ignore_errors=True)
                _remove_empty(self._created)
            self._created = []
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing releases the lock
                self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def open_run_folder(path, names, *, numbered=False, overwrite=False):
    """Reserve the run folder ``path`` (or, ``numbered``, the first free ``path-N``).

    ``names`` are the files a run may hold; a folder holding only these is
    a run. Creates the staging folder beside it (which also proves that
    files can be written there) and locks the run folder.

    Raises :class:`RunFolderTaken` when a named ``path`` holds a run and
    ``overwrite`` is False, or holds anything that is not a run's file;
    :class:`MnistnetError` when another run is writing there or the folder
    cannot be written.
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    created = _makedirs(parent, path)
    try:
        candidates = _numbered(path) if numbered else (path,)
        for candidate in candidates:
            folder = _try_reserve(candidate, names, numbered, overwrite, created)
            if folder is not None:
                return folder
        raise MnistnetError(f"the output folder {path}: every name up to -{MAX_NUMBER} is taken")
    except BaseException:
        _remove_empty(created)
        raise


def _try_reserve(path, names, numbered, overwrite, created):
    """A :class:`RunFolder` for ``path``, or None if ``numbered`` and ``path`` is taken."""
    made = _mkdir(path)
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
    real = os.path.realpath(path)  # a link to a folder: the run goes where it points
    staging = None
    try:
        replaces = _judge(path, names, numbered, overwrite)
        if replaces is not None:
            try:
                staging = _sibling(real, ".partial")
            except OSError as exc:
                raise _unwritable(path, exc) from None
    finally:
        if staging is None:  # not ours after all: leave it as we found it
            if made:
                with contextlib.suppress(OSError):
                    os.rmdir(real)  # we hold its lock: nobody else uses it
            _close(lock_fd)
    if staging is None:
        return None
    owned = [*created, real] if made else list(created)
    return RunFolder(path, real, staging, lock_fd, replaces, owned)


def _judge(path, names, numbered, overwrite):
    """False: ``path`` is empty; True: it holds a run to replace; None: numbered, taken."""
    with os.scandir(path) as it:
        entries = sorted(it, key=lambda e: e.name)
    if not entries:
        return False
    if numbered:
        return None
    others = [e for e in entries if not (e.name in names and e.is_file(follow_symlinks=False))]
    if others:
        shown = [e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in others]
        listed = ", ".join(shown[:3]) + (", ..." if len(shown) > 3 else "")
        raise RunFolderTaken(
            f"the output folder {path} holds other things than a run's files ({listed}); "
            "a run needs a new or empty folder",
            setting="out",
        )
    if not overwrite:
        raise RunFolderTaken(
            f"the output folder {path} holds a run already; "
            "pass --overwrite to replace it, or choose another folder",
            setting="out",
        )
    return True


def _numbered(path):
    yield path
    for n in range(2, MAX_NUMBER + 1):
        yield f"{path}-{n}"


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


def _mkdir(path, out=None):
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
        raise _unwritable(out or path, exc) from None
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
        fd = os.open(path, os.O_RDONLY)
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
        os.close(fd)  # replaced between open and lock (a run was put there): again
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


def _check_still_ours(path, lock_fd):
    if lock_fd is not None and not _same_file(lock_fd, path):
        raise MnistnetError(f"the output folder {path} was replaced while this run was written")


def _sibling(path, suffix):
    """A new, empty, hidden folder beside ``path``: ``.NAME.XXXXXXXX<suffix>``."""
    return tempfile.mkdtemp(
        dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.", suffix=suffix
    )


def _swap(staging, path):
    """Replace the run in ``path`` with ``staging``: old aside, new in, old deleted."""
    aside = _sibling(path, ".old")
    os.rename(path, aside)  # replaces the empty folder mkdtemp made
    try:
        os.rename(staging, path)
    except BaseException:
        os.rename(aside, path)
        raise
    shutil.rmtree(aside, ignore_errors=True)


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
