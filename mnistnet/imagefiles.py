"""Reading a person's images: picture files, ``.npy`` stacks, IDX files, folders of them.

Everything comes out as grey uint8 arrays (0 black .. 255 white), as the
file shows them; :mod:`mnistnet.images` then makes them look like MNIST.

What a file is comes from its first bytes, never its name: ``\\x93NUMPY``
is a ``.npy`` array, ``00 00 TT DD`` or gzip is IDX, anything else goes
to Pillow. A picture is decoded like this:

1. its EXIF orientation is applied (phone photos are stored sideways);
2. transparent pixels are laid onto white paper (alpha flattened);
3. colour becomes grey (ITU-R 601 luma, Pillow's ``L``);
4. 16-bit and floating-point pictures are scaled to 0..255;
5. only the first frame of an animation or a multi-page file is read.

Hostile files fail with one :class:`ImageError` naming the file: a picture
over Pillow's pixel limit (``PIL.Image.MAX_IMAGE_PIXELS``, about 89
megapixels) is refused before it is decoded, a decompression bomb, even
where Pillow would only warn; a truncated, empty or undecodable file says
so. Pictures larger than :data:`MAX_SIDE` on a side are shrunk while
decoding (JPEG decodes straight at a reduced scale), so memory stays
bounded whatever the file.
"""

import os
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np

from mnistnet.errors import MnistnetError

_ORIENTATION = 0x0112  # the EXIF tag
MAX_SIDE = 4096  # longer side kept after decoding; a digit needs far fewer pixels
NPY_MAGIC = b"\x93NUMPY"
GZIP_MAGIC = b"\x1f\x8b"
_IDX_CODES = (0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E)

# What a broken or hostile picture makes Pillow's decoders raise.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    EOFError,
    struct.error,
    zlib.error,
    MemoryError,
)


class ImageError(MnistnetError):
    """An image file cannot be read or used (the message names it and says why)."""


@dataclass(frozen=True, eq=False)
class Picture:
    """One image read from a file.

    ``path`` is the file; ``index`` the position in a stack (``.npy`` or
    IDX), None for a picture file; ``pixels`` (h, w) uint8 grey.
    """

    path: str
    index: int | None
    pixels: np.ndarray

    @property
    def name(self):
        """``path``, with ``[index]`` for an image of a stack."""
        return self.path if self.index is None else f"{self.path}[{self.index}]"


def picture_extensions():
    """File name endings of the formats Pillow reads here (lower case, with the dot)."""
    from PIL import Image

    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def expand_paths(paths):
    """Files to read from command-line paths: files as given, folders' images by name.

    Returns
    -------
    files : list of str
    skipped : list of str (entries of the folders that are not images)
    """
    files, skipped = [], []
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            images, others = list_folder(path)
            files += images
            skipped += others
        else:
            files.append(path)
    return files, skipped


def list_folder(folder):
    """A folder's image files (pictures and ``.npy``) sorted by name, and the other entries.

    Returns
    -------
    images : list of str
    skipped : list of str (everything else: other files, sub-folders)
    """
    known = picture_extensions() | {".npy"}
    images, skipped = [], []
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        is_image = os.path.isfile(path) and os.path.splitext(entry)[1].lower() in known
        (images if is_image and not entry.startswith(".") else skipped).append(path)
    return images, skipped


def read_pictures(path):
    """Every image in one file: a picture gives one, a ``.npy`` or IDX stack each of its own.

    Returns
    -------
    list of Picture
    """
    head = _head(path)
    if head.startswith(NPY_MAGIC):
        return _stack(path, _load_npy(path))
    if head.startswith(GZIP_MAGIC) or (head[:2] == b"\x00\x00" and head[2:3] in _IDX_TYPES):
        from mnistnet.idx import read_idx

        return _stack(path, read_idx(path))
    return [Picture(os.fspath(path), None, read_picture(path))]


_IDX_TYPES = {bytes([c]) for c in _IDX_CODES}


def read_picture(source, name=None):
    """Decode one picture file into grey pixels.

    Parameters
    ----------
    source : str, path-like, or a binary file object (bytes from a web
        request: ``io.BytesIO(body)``)
    name : str, optional
        How errors name it; defaults to the path.

    Returns
    -------
    ndarray of shape (h, w), uint8
    """
    from PIL import Image, UnidentifiedImageError

    name = name or os.fspath(source)
    with warnings.catch_warnings():
        # Pillow only warns between its pixel limit and twice it: refuse those too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(source) as img:
                return _decode(img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            limit = Image.MAX_IMAGE_PIXELS
            raise ImageError(
                f"{name}: refused: more than {limit:,} pixels, Pillow's limit against "
                "decompression bombs"
            ) from None
        except UnidentifiedImageError:
            empty = _is_empty(source)
            what = "an empty file" if empty else "not a picture in a format Pillow reads"
            raise ImageError(f"{name}: {what}") from None
        except FileNotFoundError:
            raise ImageError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise ImageError(f"{name}: is a folder") from None
        except PermissionError:
            raise ImageError(f"{name}: permission denied") from None
        except _DECODE_ERRORS as exc:
            raise ImageError(f"{name}: cannot decode the picture ({_reason(exc)})") from None


def _decode(img):
    """The decoding steps listed in the module's docstring, on an open Pillow image."""
    from PIL import Image, ImageOps

    if max(img.size) > MAX_SIDE:
        img.draft("L", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
        img.thumbnail((MAX_SIDE, MAX_SIDE))
    if img.getexif().get(_ORIENTATION, 1) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode == "LAB":
        img = img.getchannel("L")  # lightness is the grey
    if img.mode == "La":  # premultiplied alpha: Pillow converts it only to LA
        img = img.convert("LA")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    if img.mode.startswith("I") or img.mode == "F":
        return _scale_to_uint8(np.asarray(img), img.mode)
    return np.asarray(img.convert("L"), dtype=np.uint8).copy()


def _scale_to_uint8(values, mode):
    """16-bit (0..65535) or float (0..1) pixels as 0..255."""
    values = values.astype(np.float64)
    if mode == "F":
        top = 1.0 if values.size and np.nanmax(values) <= 1 else 255.0
    else:
        top = 65535.0 if values.size and values.max() > 255 else 255.0
    return np.clip(np.round(np.nan_to_num(values) * (255 / top)), 0, 255).astype(np.uint8)


# At most this many values in a .npy file (a stack of 85,000 28x28 digits, or one
# 8192x8192 picture): its header is checked against this before any data is read.
MAX_NPY_VALUES = 1 << 26


def _load_npy(path):
    """A .npy array, its header checked first: no pickles, no size its file does not hold."""
    from mnistnet.checkpoint import read_npy_header  # the model loader's bounded header reader

    def bad(problem):
        return ImageError(f"{path}: {problem}")

    try:
        with open(path, "rb") as f:
            dtype, shape, _, header_bytes = read_npy_header(f, "the array", bad)
            _check_npy_header(path, shape, dtype, os.fstat(f.fileno()).st_size - header_bytes)
            return np.load(path, allow_pickle=False)
    except ImageError:
        raise
    except (ValueError, SyntaxError, TypeError, OverflowError) as exc:
        raise ImageError(f"{path}: not a readable .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise ImageError(f"{path}: not a readable .npy array ({_reason(exc)})") from None


def _check_npy_header(path, shape, dtype, data_bytes):
    if dtype.hasobject:
        raise ImageError(f"{path}: holds pickled objects, which are never loaded")
    if dtype.kind not in "biuf":
        raise ImageError(f"{path}: holds {dtype} values; pixels must be numbers")
    n = 1
    for side in shape:
        n *= side
    if n > MAX_NPY_VALUES:
        raise ImageError(f"{path}: its header claims {n:,} values (at most {MAX_NPY_VALUES:,})")
    if n * dtype.itemsize != data_bytes:
        raise ImageError(
            f"{path}: its header claims {n * dtype.itemsize:,} bytes of data, the file holds "
            f"{data_bytes:,}"
        )


def _stack(path, array):
    """Pictures of a 2-d array (one image) or a 3-d array (a stack of images)."""
    path = os.fspath(path)
    if array.ndim not in (2, 3) or 0 in array.shape:
        raise ImageError(
            f"{path}: expected one image (h, w) or a stack (n, h, w), found shape {array.shape}"
        )
    pixels = as_uint8(array, path)
    if pixels.ndim == 2:
        return [Picture(path, None, pixels)]
    return [Picture(path, i, image) for i, image in enumerate(pixels)]


def as_uint8(array, name="<array>"):
    """Grey pixels 0..255 from a numeric array.

    uint8 is taken as is; booleans are 0 or 255; other integers are
    clipped to 0..255; floats are taken as 0..1 when none exceeds 1, else
    as 0..255, and rounded.
    """
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype.kind in "iu":
        return np.clip(array, 0, 255).astype(np.uint8)
    if array.dtype.kind != "f":
        raise ImageError(f"{name}: pixels must be numbers, found dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise ImageError(f"{name}: pixels hold NaN or infinite values")
    scale = 255.0 if array.size and array.max() <= 1 else 1.0
    return np.clip(np.round(array * scale), 0, 255).astype(np.uint8)


def _head(path):
    try:
        with open(path, "rb") as f:
            return f.read(8)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({_reason(exc)})") from None


def _is_empty(source):
    try:
        if hasattr(source, "seek"):
            source.seek(0, os.SEEK_END)
            return source.tell() == 0
        return os.path.getsize(source) == 0
    except (OSError, ValueError):
        return False


def _reason(exc):
    text = getattr(exc, "strerror", None) or str(exc)
    return text if text else type(exc).__name__
