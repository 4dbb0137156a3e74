"""Make any picture of a digit look like an MNIST digit, as MNIST's makers did.

``to_mnist(path_or_array)`` gives the (28, 28) image the network expects;
``split_digits`` reads a row of digits (a number) one digit at a time:

    >>> import numpy as np
    >>> page = np.full((120, 200), 230, np.uint8)   # light paper...
    >>> page[20:100, 40:52] = 20                     # ...a dark "1"...
    >>> page[20:100, 120:170] = 20                   # ...and a blot
    >>> page[40:80, 132:158] = 230
    >>> to_mnist(page[:, :100]).shape
    (28, 28)
    >>> [d.box for d in split_digits(page)]          # (x0, y0, x1, y1), left to right
    [(40, 20, 52, 100), (120, 20, 170, 100)]

The steps of ``convention="mnist"`` (each a function below; the README
says why each is there):

1. read the file (:mod:`mnistnet.imagefiles`: EXIF orientation, alpha on
   white, grey);
2. :func:`ink_polarity`: the image's border is paper; the ink is the
   other extreme (whichever of dark and light is rarer there), and the
   image is inverted when the ink is dark, so ink is bright on black;
3. :func:`stretch_contrast`: the paper's level plus three robust standard
   deviations of its noise becomes 0, the ink's level 255;
4. :func:`ink_mask`: Otsu's threshold separates ink from paper; blobs of
   ink far smaller than the largest (dust, paper texture) are dropped;
5. :func:`ink_box`: the bounding box of that ink, plus the faint rim
   (anti-aliasing, blur) within :data:`HALO` pixels of it;
6. :func:`sharpen`: a crop that will shrink a lot is made bilevel, as
   NIST's scans were;
7. :func:`fit_box`: the crop is scaled so that its longer side is 20
   pixels, keeping the aspect ratio, with anti-aliasing (Lanczos);
8. :func:`centre_in_frame`: pasted into a 28x28 black frame so that the
   ink's centre of mass falls on the pixel at row 14, column 14, as it
   does in MNIST (measured on the bundled digits: 14.01 and 14.01, each
   within half a pixel, so MNIST shifted by whole pixels).

A real MNIST digit comes out of these steps unchanged, but for the
rounding of the contrast stretch and at most a one-pixel shift.

``convention="fashion"`` is Fashion-MNIST's: the item's box is scaled to
fill the 28x28 frame on its longer side and centred (box centre, not centre
of mass), after the same polarity, stretch and box steps.

A uniform picture (all white, all black, 1x1) or one whose ink differs
from the paper by fewer than :data:`MIN_CONTRAST` grey levels raises
:class:`NoInkError` ("no ink found"): nothing is guessed.
"""

import os
from dataclasses import dataclass

import numpy as np

from mnistnet import ink
from mnistnet.imagefiles import ImageError, as_uint8, read_pictures

SIDE = 28  # MNIST's frame
BOX = 20  # MNIST's digits fit a 20x20 box
CENTRE = 14  # where MNIST puts the centre of mass (row and column)
MIN_CONTRAST = 32  # grey levels between paper and ink below which there is no ink
HALO = 2  # pixels around the Otsu ink that may still hold its faint edges
SPECK = 0.02  # blobs smaller than this fraction of the largest are noise
SHARP_FROM = 3.0  # shrink factor from which a crop is made bilevel (see sharpen)
INK_PERCENTILE = 95  # of the pixels brighter than halfway from paper to the brightest: the ink
MERGE_OVERLAP = 0.5  # split_digits: blobs overlapping horizontally this much are one digit
SHORT = 0.5  # split_digits: blobs shorter than this fraction of the tallest join a neighbour
CONVENTIONS = ("mnist", "fashion")


class NoInkError(ImageError):
    """The image holds no ink: it is uniform, or nearly so."""


@dataclass(frozen=True, eq=False)
class Digit:
    """One digit found by :func:`split_digits`.

    ``image`` is the preprocessed (28, 28) uint8; ``box`` is
    ``(x0, y0, x1, y1)`` in the original picture's pixels (stops exclusive).
    """

    image: np.ndarray
    box: tuple


def to_mnist(image, convention="mnist", *, name=None):
    """Preprocess one picture of a digit (or of a Fashion-MNIST item) into MNIST's form.

    Parameters
    ----------
    image : str, path-like, or ndarray of shape (h, w)
        A picture file (any format Pillow reads), or grey pixels: uint8,
        or floats in 0..1 (see :func:`mnistnet.imagefiles.as_uint8`).
    convention : {"mnist", "fashion"}
    name : str, optional
        How error messages name the image (default: its path, or "<array>").

    Returns
    -------
    ndarray of shape (28, 28), uint8, white ink on black

    Raises
    ------
    NoInkError
        The picture holds no ink.
    ImageError
        The file cannot be read or decoded.
    """
    _check_convention(convention)
    grey, name = _grey(image, name)
    return ink_to_frame(normalise(grey, name), convention, name)


def split_digits(image, convention="mnist", *, name=None):
    """Find the digits written in a row in one picture, left to right, and preprocess each.

    A digit is a group of ink blobs whose horizontal extents overlap (by at
    least :data:`MERGE_OVERLAP` of the narrower one): the two strokes of a
    5 or a 4 stay one digit; digits side by side, with paper between them,
    are separate. Specks are ignored as in :func:`to_mnist`.

    Parameters are those of :func:`to_mnist`.

    Returns
    -------
    list of Digit, left to right (at least one)
    """
    _check_convention(convention)
    grey, name = _grey(image, name)
    bright = normalise(grey, name)
    blobs = ink.find_blobs(otsu_mask(bright))
    kept = _significant(blobs)
    h, w = bright.shape
    digits = []
    for group in _group_columns(blobs, kept):
        x0, x1 = int(blobs.x0[group].min()), int(blobs.x1[group].max())
        y0, y1 = int(blobs.y0[group].min()), int(blobs.y1[group].max())
        # This digit's ink and its rim, in a window around it: no other digit's ink.
        window = (max(0, y0 - HALO), min(h, y1 + HALO), max(0, x0 - HALO), min(w, x1 + HALO))
        near = ink.dilate(blobs.mask(group, window), HALO)
        only = np.where(near, bright[window[0] : window[1], window[2] : window[3]], 0)
        digits.append(Digit(ink_to_frame(only, convention, name), (x0, y0, x1, y1)))
    return digits


# --- the steps ---------------------------------------------------------------------------


def normalise(grey, name="<image>"):
    """Steps 2 and 3: ink bright on a black background, paper at 0 and ink at 255.

    Parameters
    ----------
    grey : ndarray of shape (h, w), uint8

    Returns
    -------
    ndarray of shape (h, w), float32 in 0..255
    """
    level, noise = paper_level(grey)
    if ink_polarity(grey, level):
        return stretch_contrast(255 - grey, name, paper=(255 - level, noise))
    return stretch_contrast(grey, name, paper=(level, noise))


def paper_level(image):
    """The paper's grey level and noise, from the image's border.

    The border is the outermost 2% of each side (at least one pixel). The
    level is its median; the noise, 1.4826 times its median absolute
    deviation: a standard deviation that ignores stray ink.

    Returns
    -------
    level, noise : float
    """
    border = _border(image).astype(np.float32)
    level = float(np.median(border))
    return level, 1.4826 * float(np.median(np.abs(border - level)))


def ink_polarity(grey, paper=None):
    """True when the ink is dark on light paper (the image must be inverted).

    The border is paper (``paper``: its level, from :func:`paper_level`
    when not given); the ink is whichever extreme of the image, darkest or
    lightest, lies farther from the paper's level: the rarer one.
    """
    paper = paper_level(grey)[0] if paper is None else paper
    return paper - float(grey.min()) > float(grey.max()) - paper


def stretch_contrast(bright, name="<image>", paper=None):
    """Map paper to 0 and ink to 255 in an image whose ink is bright.

    Pixels up to the paper's level plus three times its noise (``paper``:
    both, from :func:`paper_level` when not given) become 0; the ink's
    level (the 95th percentile of the pixels above the midpoint between
    the paper and the brightest pixel) becomes 255.

    Returns
    -------
    ndarray of float32, same shape, values in 0..255

    Raises
    ------
    NoInkError
        Ink and paper differ by fewer than :data:`MIN_CONTRAST` levels.
    """
    level, noise = paper_level(bright) if paper is None else paper
    low = level + 3 * noise
    top = float(bright.max())
    strong = bright[bright > (level + top) / 2]
    high = float(np.percentile(strong, INK_PERCENTILE)) if strong.size else top
    if high - low < MIN_CONTRAST:
        raise NoInkError(
            f"{name}: no ink found (the picture is uniform, or its ink differs from the "
            f"paper by fewer than {MIN_CONTRAST} grey levels)"
        )
    out = (bright.astype(np.float32) - np.float32(low)) * np.float32(255 / (high - low))
    return np.clip(out, 0, 255, out=out)


def ink_mask(bright):
    """Step 4: the ink's pixels: above Otsu's threshold, in blobs that are not specks.

    Returns
    -------
    ndarray of bool, same shape as ``bright``
    """
    mask = otsu_mask(bright)
    blobs = ink.find_blobs(mask)
    keep = _significant(blobs)
    return mask if len(keep) == len(blobs) else blobs.mask(keep)


def otsu_mask(bright):
    """Pixels brighter than Otsu's threshold of ``bright`` (float 0..255 or uint8)."""
    levels = bright if bright.dtype == np.uint8 else np.round(bright).astype(np.uint8)
    return levels > ink.otsu_threshold(levels)


def ink_box(bright, mask):
    """Step 5: ``(y0, y1, x0, x1)`` of the ink in ``mask`` and its faint edges.

    The edges are the non-zero pixels of ``bright`` reached from the mask in
    up to :data:`HALO` steps through non-zero pixels: an MNIST digit's
    anti-aliased rim is included, specks of paper noise are not.
    """
    y0, y1, x0, x1 = ink.bounding_box(mask)
    h, w = mask.shape
    # Only the neighbourhood of the mask's box can matter: work on that window.
    wy0, wy1 = max(0, y0 - HALO), min(h, y1 + HALO)
    wx0, wx1 = max(0, x0 - HALO), min(w, x1 + HALO)
    lit = bright[wy0:wy1, wx0:wx1] > 0
    rim = mask[wy0:wy1, wx0:wx1]
    for _ in range(HALO):  # grow through lit pixels only: isolated noise stays out
        rim = ink.dilate(rim, 1) & lit
    by0, by1, bx0, bx1 = ink.bounding_box(rim)
    return wy0 + by0, wy0 + by1, wx0 + bx0, wx0 + bx1


def sharpen(crop, mask, size):
    """Step 6: make a large crop bilevel before it is shrunk, as NIST's digits were.

    MNIST's digits are NIST's black-and-white scans shrunk with
    anti-aliasing: solid strokes with a soft rim one pixel wide. A photo's
    strokes are soft on their own (blur, resampling), and shrinking would
    soften them again; so a crop that will be shrunk by :data:`SHARP_FROM`
    times or more is replaced by its ink mask (0 or 255). Between 1x and
    that factor the two are blended, so nothing jumps; a crop already near
    its final size (an MNIST digit) keeps its grey levels.
    """
    factor = max(crop.shape) / size
    weight = min(max((factor - 1) / (SHARP_FROM - 1), 0.0), 1.0)
    if weight == 0:
        return crop
    return (1 - weight) * crop + np.float32(weight * 255) * mask


def fit_box(crop, size=BOX):
    """Step 7: scale ``crop`` so that its longer side is ``size``, keeping the aspect ratio.

    Lanczos resampling, which low-pass filters when shrinking (anti-aliasing).

    Returns
    -------
    ndarray of float32 in 0..255, shape (size, <= size) or (<= size, size)
    """
    from PIL import Image

    h, w = crop.shape
    scale = size / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    if (new_h, new_w) == (h, w):
        return crop.astype(np.float32)
    img = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), mode="F")
    small = np.asarray(img.resize((new_w, new_h), Image.Resampling.LANCZOS), dtype=np.float32)
    return np.clip(small, 0, 255)


def centre_in_frame(small, by="mass"):
    """Step 8: paste ``small`` into a black 28x28 frame, centred.

    ``by="mass"``: MNIST's way, the centre of mass on pixel (14, 14), moved
    by whole pixels (and never so far that ink would leave the frame).
    ``by="box"``: Fashion-MNIST's way, the box's centre in the frame's.

    Returns
    -------
    ndarray of shape (28, 28), uint8
    """
    h, w = small.shape
    if by == "mass":
        row, col = ink.centre_of_mass(small)
        top = min(max(round(CENTRE - row), 0), SIDE - h)
        left = min(max(round(CENTRE - col), 0), SIDE - w)
    else:
        top, left = (SIDE - h) // 2, (SIDE - w) // 2
    frame = np.zeros((SIDE, SIDE), np.uint8)
    frame[top : top + h, left : left + w] = np.round(small).astype(np.uint8)
    return frame


def ink_to_frame(bright, convention="mnist", name="<image>"):
    """Steps 4 to 8 on a normalised image (ink bright, paper 0): the 28x28 result."""
    mask = ink_mask(bright)
    if not mask.any():
        raise NoInkError(f"{name}: no ink found")
    y0, y1, x0, x1 = ink_box(bright, mask)
    crop = sharpen(bright[y0:y1, x0:x1], mask[y0:y1, x0:x1], BOX if convention == "mnist" else SIDE)
    if convention == "fashion":
        return centre_in_frame(fit_box(crop, SIDE), by="box")
    return centre_in_frame(fit_box(crop, BOX), by="mass")


# --- helpers -----------------------------------------------------------------------------


def _check_convention(convention):
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose from {CONVENTIONS}")


def _grey(image, name):
    """Grey uint8 pixels and a name for messages, from a path or an array."""
    if isinstance(image, (str, os.PathLike)):
        name = name or os.fspath(image)
        pictures = read_pictures(image)
        if len(pictures) != 1:
            raise ImageError(f"{name}: holds {len(pictures)} images; pass one")
        return pictures[0].pixels, name
    name = name or "<array>"
    array = np.asarray(image)
    if array.ndim != 2 or 0 in array.shape:
        raise ImageError(f"{name}: expected one grey image (h, w), found shape {array.shape}")
    return as_uint8(array, name), name


def _border(image):
    """The pixels of the outermost 2% of each side (at least one pixel)."""
    band = max(1, round(0.02 * min(image.shape)))
    return np.concatenate(
        [
            image[:band].ravel(),
            image[-band:].ravel(),
            image[band:-band, :band].ravel(),
            image[band:-band, -band:].ravel(),
        ]
    )


def _significant(blobs):
    """Numbers of the blobs at least :data:`SPECK` times the largest one's area."""
    if len(blobs) == 0:
        return np.arange(0)
    return np.flatnonzero(blobs.area >= SPECK * blobs.area.max())


def _group_columns(blobs, numbers):
    """Groups (arrays of blob numbers) of blobs that make one digit each, left to right.

    Tall blobs (at least :data:`SHORT` of the tallest one's height) that
    overlap horizontally by :data:`MERGE_OVERLAP` of the narrower one are
    one digit. A short blob (a stroke of a 5, a break in a pen line, a
    stray dot) joins the horizontally nearest digit.
    """
    heights = blobs.y1[numbers] - blobs.y0[numbers]
    tall = numbers[heights >= SHORT * heights.max()]
    groups, spans = [], []
    for b in tall[np.argsort(blobs.x0[tall], kind="stable")]:
        x0, x1 = int(blobs.x0[b]), int(blobs.x1[b])
        if spans:
            g0, g1 = spans[-1]
            if min(g1, x1) - max(g0, x0) >= MERGE_OVERLAP * min(g1 - g0, x1 - x0):
                groups[-1].append(b)
                spans[-1] = (min(g0, x0), max(g1, x1))
                continue
        groups.append([b])
        spans.append((x0, x1))
    starts, stops = np.array(spans).T
    for b in np.setdiff1d(numbers, tall):
        gaps = np.maximum(0, np.maximum(starts - blobs.x1[b], blobs.x0[b] - stops))
        groups[int(np.argmin(gaps))].append(b)
    return [np.array(g) for g in groups]
