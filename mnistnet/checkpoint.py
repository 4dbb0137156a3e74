"""Saving and loading models: one ``.npz`` holding the weights and their story.

Arrays ``W1, b1, W2, b2`` plus ``metadata``: a 0-d string array holding
one JSON object (see :mod:`mnistnet.metadata` for its schema). Nothing is
ever unpickled. A trained run's file also holds its resume state: the
metadata's ``resume`` section and arrays named ``resume_*``
(:mod:`mnistnet.trainstate`), checked with the rest of the metadata on every
load and read by :func:`load_resume`.

Loading checks each size before reading anything of that size: the ZIP directory
first (at most :data:`MAX_MEMBERS` members), then the metadata's ``.npy``
header (at most :data:`mnistnet.metadata.MAX_CHARS` characters), the metadata
itself (checked against its schema), then each array's ``.npy`` header
against the shape and dtype the metadata implies, and each member's stored
size against that header, before a byte of the array is inflated. A small
file costs at most what the model it describes needs, and every problem ends
in a one-line :class:`~mnistnet.errors.ModelFileError`.
"""

import contextlib
import io
import json
import math
import os
import struct
import tokenize
import warnings
import zipfile
import zlib

import numpy as np

from mnistnet import metadata as schema
from mnistnet import trainstate
from mnistnet.errors import ModelFileError
from mnistnet.fileio import atomic_path
from mnistnet.history import COLUMNS
from mnistnet.metadata import FORMAT, FORMAT_VERSION, MAX_HIDDEN, MetadataError
from mnistnet.model import PARAM_NAMES, pack
from mnistnet.tasks import N_INPUTS

__all__ = ["FORMAT", "FORMAT_VERSION", "load_model", "save_model"]

MAX_MEMBERS = 64  # an mnistnet model has 5
MAX_NPY_HEADER = 4096  # bytes; np.save writes 128 for our arrays (NumPy allows 10,000)
_MAX_PARAMS = (N_INPUTS + 1 + 10) * MAX_HIDDEN + 10  # W1, b1, W2, b2 of the largest model
#: The largest model file read: the largest model's float64 weights, its resume state
#: (three more vectors of that size and the history of the most epochs) and metadata.
MAX_FILE_BYTES = (
    8 * (4 * _MAX_PARAMS + len(COLUMNS) * schema.MAX_EPOCHS) + 4 * schema.MAX_CHARS + 2**20
)
_NPY_MAGIC = b"\x93NUMPY"
_EOCD = struct.Struct("<4s4x2xHIIH")  # ZIP end of central directory record, without its comment
_CHUNK = 1 << 20


def save_model(path, params, metadata, resume_arrays=None):
    """Write ``params`` and ``metadata`` (a JSON-able dict) to ``path`` atomically.

    ``resume_arrays``: the ``resume_*`` arrays of the metadata's ``resume``
    section (:func:`mnistnet.trainstate.to_file`).
    """
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    arrays = {name: params[name] for name in PARAM_NAMES}
    for name, value in (resume_arrays or {}).items():
        if not name.startswith(trainstate.PREFIX):
            raise ValueError(f"resume array {name!r} must start with {trainstate.PREFIX!r}")
        arrays[name] = value
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # A file object, not a name: np.savez would append ".npz" to a name.
        np.savez(f, metadata=np.array(json.dumps(meta)), **arrays)


def load_model(path):
    """Read and check a model file.

    Returns
    -------
    params : dict of ndarray (``W1, b1, W2, b2``)
    metadata : dict
        Checked against :data:`mnistnet.metadata.SCHEMA` (its ``resume``
        section included): its types can be trusted.

    Raises
    ------
    ModelFileError
        Naming the file and the problem, in one line: not an npz, too large,
        pickled (object) arrays, missing arrays, bad metadata, unknown format
        version, shapes or dtypes that disagree with the metadata, a corrupt
        archive. No other exception comes out.
    """
    bad = _complaint(path)
    with _reading(path, bad) as archive:
        meta = _read_metadata(archive, bad)
        return _read_params(archive, meta, bad), meta


def load_resume(path):
    """Read a model file with its resume state.

    Returns
    -------
    params : dict of ndarray, the saved weights (the best epoch's, with early stopping)
    metadata : dict
    resume : :class:`mnistnet.trainstate.Resume`, without ``best`` (the caller decides)

    Raises
    ------
    ModelFileError
        As :func:`load_model`; also when the file holds no resume state (saved
        before mnistnet kept one), or its ``resume_*`` arrays do not fit: each
        is read only once its header is within what the ``resume`` section allows.
    """
    bad = _complaint(path)
    with _reading(path, bad) as archive:
        meta = _read_metadata(archive, bad)
        params = _read_params(archive, meta, bad)
        if "resume" not in meta:
            raise bad("holds no resume state (saved by an older mnistnet, or not by training)")
        section = meta["resume"]
        try:
            trainstate.check_section(section, (meta.get("config") or {}).get("optimizer", "?"))
        except ValueError as exc:
            raise bad(f"metadata 'resume' {exc}") from None
        theta, _ = pack(params)
        arrays = _read_resume_arrays(archive, section, theta, bad)
    try:
        state, records = trainstate.from_file(section, arrays, theta)
    except ValueError as exc:
        raise bad(f"resume state {exc}") from None
    return params, meta, trainstate.Resume(state, records)


def _complaint(path):
    name = os.fspath(path)

    def bad(problem):
        return ModelFileError(f"model file {name}: {problem}")

    return bad


@contextlib.contextmanager
def _reading(path, bad):
    """The model file's ZIP archive, once the cheap checks pass; every failure in the
    block becomes a one-line ModelFileError."""
    size = _sniff(path, bad)
    try:
        _check_member_count(path, size, bad)
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [n for n in ("metadata", *PARAM_NAMES) if f"{n}.npy" not in names]
            if missing:
                raise bad(f"missing array(s) {', '.join(missing)}; not an mnistnet model?")
            yield archive
    except ModelFileError:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        struct.error,
        ValueError,
        RecursionError,
    ) as exc:
        raise bad(f"corrupt or truncated .npz archive ({_first_line(exc)})") from None
    except (NotImplementedError, RuntimeError) as exc:  # ZIP versions, encryption
        raise bad(f"uses a ZIP feature mnistnet does not read ({_first_line(exc)})") from None
    except (OSError, OverflowError) as exc:
        raise bad(f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    except MemoryError:
        raise bad("too large to load in this machine's memory") from None


def _first_line(exc):
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 100 else text[:99] + "…"


def _sniff(path, bad):
    """Look at the first bytes and the size; np.load would take anything for a pickle."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise bad("no such file") from None
    except IsADirectoryError:
        raise bad("is a directory") from None
    except OSError as exc:
        raise bad(f"cannot read: {exc.strerror or exc}") from None
    if head.startswith(b"PK"):
        if size > MAX_FILE_BYTES:
            raise bad(f"{size:,} bytes, more than any model mnistnet loads ({MAX_FILE_BYTES:,})")
        return size
    if not head:
        raise bad("empty file, not an .npz archive")
    if head.startswith(_NPY_MAGIC):
        raise bad("a single .npy array, not an .npz archive")
    if head.startswith(b"\x80"):
        raise bad("a Python pickle, which is never loaded (unsafe); not an .npz archive")
    raise bad("not an .npz archive (it is not a ZIP file)")


def _check_member_count(path, size, bad):
    """Count the members in the ZIP's last record before zipfile reads its whole directory."""
    with open(path, "rb") as f:
        f.seek(max(0, size - (_EOCD.size + 2**16)))  # the record, then a comment < 64 KiB
        tail = f.read()
    at = len(tail) - _EOCD.size  # no comment: the record ends the file (zipfile's first try)
    if at < 0 or tail[at : at + 4] != b"PK\x05\x06":
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        return  # no such record: zipfile says what is wrong
    _, members, _, _, _ = _EOCD.unpack_from(tail, at)
    if members > MAX_MEMBERS:
        raise bad(f"an archive of {members:,} members; a model file holds 5")


def _open_array(archive, member, bad):
    """Open ``member`` and read its .npy header, within :data:`MAX_NPY_HEADER`.

    Returns ``(stream, dtype, shape, fortran_order, header_bytes)``.
    """
    info = archive.getinfo(member)
    if info.flag_bits & 0x1:
        raise bad(f"{member} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise bad(f"{member} uses ZIP compression method {info.compress_type} (not 0 or 8)")
    stream = archive.open(info)
    dtype, shape, fortran, header_bytes = read_npy_header(stream, member, bad)
    if dtype.hasobject:
        raise bad("holds pickled object arrays, which are never loaded (unsafe)")
    return stream, dtype, shape, fortran, header_bytes


def read_npy_header(stream, member, bad):
    """Read a .npy header from ``stream`` (positioned at its start), within :data:`MAX_NPY_HEADER`.

    Every problem, however the header is broken, is ``bad(message)`` with
    ``member`` naming the array. Object dtypes are returned: the caller refuses them.

    Returns ``(dtype, shape, fortran_order, header_bytes)``; ``stream`` is left at the data.
    """
    magic = stream.read(len(_NPY_MAGIC) + 2)
    if len(magic) < 8 or not magic.startswith(_NPY_MAGIC):
        raise bad(f"{member} is not a .npy array")
    version = (magic[6], magic[7])
    if version not in ((1, 0), (2, 0)):
        raise bad(f"{member} has .npy format version {version[0]}.{version[1]} (not 1.0 or 2.0)")
    field_size = 2 if version == (1, 0) else 4
    length_field = stream.read(field_size)
    length = int.from_bytes(length_field, "little")
    if length > MAX_NPY_HEADER:
        raise bad(f"{member} has a {length:,}-byte .npy header (at most {MAX_NPY_HEADER:,})")
    header = stream.read(length)
    if len(length_field) < field_size or len(header) < length:
        raise bad(f"{member} is truncated in its .npy header")
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    try:
        with warnings.catch_warnings():  # a Python 2 header would warn on stderr
            warnings.simplefilter("ignore")
            shape, fortran, dtype = read_header(io.BytesIO(length_field + header))
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        OverflowError,
        SyntaxError,
        tokenize.TokenError,
        RecursionError,
        MemoryError,
    ) as exc:
        raise bad(f"{member} has a corrupt .npy header ({_first_line(exc)})") from None
    if any(n < 0 for n in shape):
        raise bad(f"{member} has a corrupt .npy header (a negative size)")
    return dtype, shape, fortran, len(magic) + len(length_field) + length


def _read_data(archive, member, stream, header_bytes, nbytes, bad):
    """The ``nbytes`` after the header, once the member's stored size agrees with them."""
    stored = archive.getinfo(member).file_size
    if stored != header_bytes + nbytes:
        raise bad(
            f"{member} holds {stored:,} bytes; its .npy header implies {header_bytes + nbytes:,}"
        )
    data = bytearray(nbytes)
    view, done = memoryview(data), 0
    while done < nbytes:
        n = stream.readinto(view[done : done + _CHUNK])
        if not n:
            raise bad(f"{member} is truncated")
        done += n
    stream.read(1)  # reaching the end makes zipfile check the CRC
    return data


def _read_metadata(archive, bad):
    stream, dtype, shape, _, header_bytes = _open_array(archive, "metadata.npy", bad)
    if dtype.kind != "U" or shape != ():
        raise bad("'metadata' is not a JSON string")
    chars = dtype.itemsize // 4
    if chars > schema.MAX_CHARS:
        raise bad(f"metadata is {chars:,} characters long (at most {schema.MAX_CHARS:,})")
    data = _read_data(archive, "metadata.npy", stream, header_bytes, dtype.itemsize, bad)
    try:
        # Decoded here, not by NumPy: it would build strings of impossible characters.
        text = data.decode("utf-32-le" if dtype.str[0] == "<" else "utf-32-be").rstrip("\0")
    except UnicodeDecodeError:
        raise bad("metadata is not valid text (impossible characters)") from None
    try:
        return schema.validate(schema.parse(text))
    except MetadataError as exc:
        raise bad(f"metadata {exc}") from None


def _read_params(archive, meta, bad):
    n_in, n_hidden, n_out = meta["layers"]
    expected = {"W1": (n_in, n_hidden), "b1": (n_hidden,), "W2": (n_hidden, n_out), "b2": (n_out,)}
    want = np.dtype(meta["dtype"])
    params = {}
    for name, shape in expected.items():
        member = f"{name}.npy"
        stream, dtype, got, fortran, header_bytes = _open_array(archive, member, bad)
        if got != shape:
            got = repr(got) if len(repr(got)) <= 60 else repr(got)[:59] + "…"
            raise bad(f"array {name} has shape {got}, the metadata says {shape}")
        if dtype != want:
            raise bad(f"array {name} has dtype {dtype}, the metadata says {want}")
        nbytes = want.itemsize * int(np.prod(shape))
        data = _read_data(archive, member, stream, header_bytes, nbytes, bad)
        array = np.frombuffer(data, dtype=want).reshape(shape, order="F" if fortran else "C")
        if not np.isfinite(array).all():
            raise bad(f"array {name} holds NaN or infinite values")
        params[name] = array
    return params


def _read_resume_arrays(archive, section, theta, bad):
    """The ``resume_*`` arrays the section names, each within the size the section allows.

    The vectors at most the weights' size, the history at most ``epoch`` rows:
    their exact shapes are :func:`mnistnet.trainstate.from_file`'s to check.
    """
    names = trainstate.expected_arrays(section)
    stored = [n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")]
    extra = [n for n in stored if n.startswith(trainstate.PREFIX) and n not in names]
    if extra:
        raise bad(f"resume state holds array {extra[0]}, which 'resume' does not name")
    history_bytes = 8 * len(section["history_columns"]) * section["epoch"]
    arrays = {}
    for name in names:
        if name not in stored:
            continue  # from_file names what is missing
        limit = history_bytes if name == trainstate.PREFIX + "history" else theta.nbytes
        stream, dtype, shape, fortran, header_bytes = _open_array(archive, f"{name}.npy", bad)
        nbytes = dtype.itemsize * math.prod(shape)
        if dtype.kind != "f" or nbytes > limit:
            raise bad(
                f"resume state array {name} is {dtype} of shape {shape}, more than or "
                "other than its 'resume' section allows"
            )
        data = _read_data(archive, f"{name}.npy", stream, header_bytes, nbytes, bad)
        arrays[name] = np.frombuffer(data, dtype=dtype).reshape(
            shape, order="F" if fortran else "C"
        )
    return arrays
