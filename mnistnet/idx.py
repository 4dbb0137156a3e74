"""Read and write IDX files, the format MNIST and its relatives ship in.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (TT the data type code,
DD the number of dimensions), DD big-endian uint32 sizes, then the data in
C order, big-endian. MNIST uses ``0x00000803`` for images (n, 28, 28) and
``0x00000801`` for labels (n,), both uint8. Files may be gzipped; gzip is
detected by its magic bytes (1f 8b), never by the file name.

Every problem with a file raises :class:`~mnistnet.errors.IdxFormatError`
naming the file and what is wrong, never an ``assert`` (asserts vanish under
``python -O``) and never a raw numpy or zlib error.

Reading is bounded by the header, not by the file: the header is read first,
then at most the data it announces plus one byte (to detect trailing data),
gunzipped or not. A header announcing more than :data:`MAX_DATA_BYTES` is
rejected before any data is read, and a file that is not IDX costs 512 bytes.

    >>> write_idx("labels.gz", np.array([5, 0, 4], dtype=np.uint8))
    >>> read_labels("labels.gz")
    array([5, 0, 4], dtype=uint8)
"""

import contextlib
import gzip
import io
import os
import struct
import zlib

import numpy as np

from mnistnet.errors import IdxFormatError

GZIP_MAGIC = b"\x1f\x8b"

#: IDX data type code -> dtype as stored (big-endian).
DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in DTYPES.items()}

IMAGE_SHAPE = (28, 28)  # the network takes 784 inputs
N_CLASSES = 10

#: The most data (bytes after the header) one IDX file may announce: 256 MiB,
#: 342,000 images of 28x28 (EMNIST Digits' 240,000 fit; MNIST has 60,000). A
#: header announcing more is rejected before anything else is read, so no file
#: costs more memory than this, however small it is and whatever it claims.
MAX_DATA_BYTES = 2**28
#: The longest gzipped IDX file read: the limit above plus room for gzip's framing.
MAX_FILE_BYTES = MAX_DATA_BYTES + 2**20
MAX_DIMS = 32  # NumPy 1.x's limit (2.x allows 64); the format allows 255
_SNIFF = 512  # bytes of a file that is not IDX read to say what it is
_CHUNK = 1 << 20


def describe_bytes(data):
    """Say what ``data`` looks like when it is not (gunzipped) IDX; None when it may be.

    Mirrors that fail often answer with an HTML or XML error page saved under
    the requested name; naming that is the most useful hint we can give.
    """
    if data[:2] == b"\x00\x00":
        return None
    if data[:2] == GZIP_MAGIC:
        return "gzip data (compressed twice?)"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"<error")) or (
        b"<html" in head
    ):
        return "an HTML or XML page (a server's error page?)"
    if not data:
        return "an empty file"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in data[:512]):
        return "text"
    return "unknown bytes starting " + data[:8].hex(" ")


def _data_bytes(dtype, shape):
    """Bytes of data a header announces; Python ints, so no overflow whatever it claims."""
    size = dtype.itemsize
    for n in shape:
        size *= n
    return size


def _read_up_to(stream, n, name, gz):
    """Read ``n`` bytes, fewer only at the end of the data; memory follows what is there."""
    buf = bytearray()
    try:
        while len(buf) < n:
            chunk = stream.read(min(n - len(buf), _CHUNK))
            if not chunk:
                break
            buf += chunk
    except (OSError, EOFError, zlib.error, struct.error) as exc:
        if gz:
            why = exc or type(exc).__name__
            raise IdxFormatError(f"{name}: corrupt gzip data ({why})") from None
        raise IdxFormatError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return buf


def _read_content(stream, name, gz=False):
    """Read IDX content (already gunzipped) from ``stream``, never more than it needs.

    That is the header, then the data it announces plus one byte (to detect
    trailing data); only the header when it announces more than
    :data:`MAX_DATA_BYTES`; 512 bytes (enough to say what it is) when it is not
    an IDX header at all. :func:`parse_idx` then says what is wrong, if anything.
    """
    content = _read_up_to(stream, 4, name, gz)
    limit = _SNIFF
    if len(content) == 4 and content[:2] == b"\x00\x00" and content[2] in DTYPES and content[3]:
        content += _read_up_to(stream, 4 * content[3], name, gz)
        limit = len(content)
        if len(content) == 4 + 4 * content[3]:
            shape = struct.unpack(f">{content[3]}I", content[4:])
            expected = _data_bytes(DTYPES[content[2]], shape)
            if expected <= MAX_DATA_BYTES:
                limit += expected + 1
    content += _read_up_to(stream, limit - len(content), name, gz)
    return content


def decompress(data, name="<bytes>"):
    """Return ``data`` gunzipped when it starts with the gzip magic, else as is.

    Gunzips only what :func:`parse_idx` needs (see :func:`_read_content`): a
    small file that inflates to gigabytes costs no more than its header announces.
    """
    if data[:2] != GZIP_MAGIC:
        return data
    with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream:
        return _read_content(stream, name, gz=True)


def parse_idx(data, name="<bytes>"):
    """Decode the bytes of an IDX file (gzipped or not) into a native-endian array.

    Parameters
    ----------
    data : bytes or bytearray
        The whole file.
    name : str
        Used in error messages, usually the file's path.

    Returns
    -------
    ndarray of shape given by the header
        Writable; the dtype is the native-endian form of the file's.
    """
    return parse_content(decompress(data, name), name)


def parse_content(data, name="<bytes>"):
    """Decode IDX content that is already gunzipped; see :func:`parse_idx`.

    Gzip magic here is an error ("compressed twice?"), not something to undo.
    """
    if len(data) < 4 or data[:2] != b"\x00\x00":
        kind = describe_bytes(data)
        if kind is None:  # the two zero bytes of a magic number, and no more
            raise IdxFormatError(f"{name}: truncated header ({len(data)} bytes)")
        raise IdxFormatError(
            f"{name}: not an IDX file but {kind}; expected magic 00 00 08 03 (images) "
            "or 00 00 08 01 (labels)"
        )
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        raise IdxFormatError(
            f"{name}: unknown IDX data type code 0x{code:02X} in magic {data[:4].hex(' ')} "
            "(expected 0x08 for uint8)"
        )
    if ndim == 0:
        raise IdxFormatError(f"{name}: wrong magic {data[:4].hex(' ')}: zero dimensions")
    if ndim > MAX_DIMS:
        raise IdxFormatError(
            f"{name}: {ndim} dimensions in magic {data[:4].hex(' ')}: NumPy arrays have "
            f"at most {MAX_DIMS}"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IdxFormatError(
            f"{name}: truncated header: {ndim} dimensions need {header_len} bytes, "
            f"file has {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = DTYPES[code]
    expected = _data_bytes(dtype, shape)
    actual = len(data) - header_len
    dims = "x".join(map(str, shape))
    if expected > MAX_DATA_BYTES:
        raise IdxFormatError(
            f"{name}: header says {dims} {dtype.name} = {expected:,} bytes of data, "
            f"more than mnistnet reads ({MAX_DATA_BYTES:,} bytes)"
        )
    if actual < expected:
        raise IdxFormatError(
            f"{name}: truncated: header says {dims} {dtype.name} = {expected:,} bytes of data, "
            f"file has {actual:,}"
        )
    if actual > expected:
        raise IdxFormatError(
            f"{name}: too long: more data after the {dims} {dtype.name} "
            f"({expected:,} bytes) the header announces"
        )
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header_len)
    array = array.reshape(shape)
    if array.flags.writeable and dtype.isnative:
        return array  # a view of gunzipped data nobody else holds: no copy needed
    # A copy: writable, native byte order, independent of the caller's bytes.
    return array.astype(dtype.newbyteorder("="), copy=True)


@contextlib.contextmanager
def _opened(path):
    """``(file, gzipped)`` for ``path``; a gzipped file may be at most :data:`MAX_FILE_BYTES`
    long, checked before reading it (a 5 GB sparse file is not read to be rejected)."""
    name = os.fspath(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise IdxFormatError(f"{name}: cannot read: {exc.strerror or exc}") from None
    with f:
        gz = _read_up_to(f, 2, name, gz=False) == GZIP_MAGIC
        size = os.fstat(f.fileno()).st_size
        if gz and size > MAX_FILE_BYTES:
            raise IdxFormatError(
                f"{name}: {size:,} bytes of gzip data, more than any IDX file within the "
                f"limit compresses to ({MAX_FILE_BYTES:,} bytes)"
            )
        f.seek(0)
        yield f, gz


def read_file(path):
    """The bytes of an IDX file as stored (for hashing), never more than it needs.

    A plain file is read up to the end of the data its header announces plus
    one byte (see :func:`_read_content`); a gzipped one whole, within
    :data:`MAX_FILE_BYTES`. Returns a bytearray; :func:`parse_idx` decodes it.
    """
    with _opened(path) as (f, gz):
        if gz:
            return _read_up_to(f, MAX_FILE_BYTES, os.fspath(path), gz=False)
        return _read_content(f, os.fspath(path))


def read_idx(path):
    """Read an IDX file (gzipped or plain) into an array; see :func:`parse_idx`.

    Reads (and gunzips) only the header and the data it announces plus one byte.
    """
    name = os.fspath(path)
    with _opened(path) as (f, gz):
        if not gz:
            return parse_content(_read_content(f, name), name)
        with gzip.GzipFile(fileobj=f, mode="rb") as stream:
            return parse_content(_read_content(stream, name, gz=True), name)


def as_images(array, name="<images>"):
    """Check that ``array`` holds MNIST-shaped images: (n, 28, 28) uint8."""
    if array.ndim != 3:
        hint = " (is this a labels file?)" if array.ndim == 1 else ""
        raise IdxFormatError(
            f"{name}: expected images with 3 dimensions (n, 28, 28), found {array.ndim}{hint}"
        )
    if array.dtype != np.uint8:
        raise IdxFormatError(f"{name}: images must be uint8 (code 0x08), found {array.dtype}")
    if array.shape[1:] != IMAGE_SHAPE:
        rows, cols = array.shape[1:]
        raise IdxFormatError(
            f"{name}: images are {rows}x{cols}, expected 28x28 (the network takes 784 inputs)"
        )
    return array


def as_labels(array, name="<labels>"):
    """Check that ``array`` holds class labels: (n,) uint8 in 0..9."""
    if array.ndim != 1:
        hint = " (is this an images file?)" if array.ndim == 3 else ""
        raise IdxFormatError(f"{name}: expected labels with 1 dimension, found {array.ndim}{hint}")
    if array.dtype != np.uint8:
        raise IdxFormatError(f"{name}: labels must be uint8 (code 0x08), found {array.dtype}")
    if array.size and array.max() >= N_CLASSES:
        where = int(np.argmax(array >= N_CLASSES))
        raise IdxFormatError(f"{name}: labels outside 0..9: {int(array[where])} at index {where}")
    return array


def check_pair(images, labels, images_name="<images>", labels_name="<labels>"):
    """Raise when an images array and its labels disagree on the number of samples."""
    if len(images) != len(labels):
        raise IdxFormatError(
            f"image/label counts differ: {images_name} has {len(images):,} images, "
            f"{labels_name} has {len(labels):,} labels"
        )


def read_images(path):
    """Read an IDX images file: ndarray of shape (n, 28, 28), uint8."""
    return as_images(read_idx(path), os.fspath(path))


def read_labels(path):
    """Read an IDX labels file: ndarray of shape (n,), uint8, values in 0..9."""
    return as_labels(read_idx(path), os.fspath(path))


def read_pair(images_path, labels_path):
    """Read matching images and labels files; returns ``(images, labels)``."""
    images, labels = read_images(images_path), read_labels(labels_path)
    check_pair(images, labels, os.fspath(images_path), os.fspath(labels_path))
    return images, labels


def to_bytes(array):
    """Encode ``array`` as the bytes of an uncompressed IDX file."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    if not 1 <= array.ndim <= 255 or any(size >= 2**32 for size in array.shape):
        raise ValueError(f"IDX cannot store an array of shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=DTYPES[code]).tobytes()


def write_idx(path, array, compress=None):
    """Write ``array`` as an IDX file.

    Parameters
    ----------
    path : str or path-like
    array : ndarray
        uint8, int8, int16, int32, float32 or float64, 1 to 255 dimensions.
    compress : bool or None
        Gzip the file; None (the default) gzips when ``path`` ends in ``.gz``.
    """
    data = to_bytes(array)
    if compress is None:
        compress = os.fspath(path).endswith(".gz")
    if compress:
        # mtime=0: the same array always gives the same bytes (stable hashes).
        data = gzip.compress(data, compresslevel=6, mtime=0)
    with open(path, "wb") as f:
        f.write(data)
