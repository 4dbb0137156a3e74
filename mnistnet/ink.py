"""Finding ink in a grey image with NumPy alone: Otsu's threshold, blobs, centre of mass.

Pure functions of arrays; no Pillow, no SciPy. :mod:`mnistnet.images`
builds MNIST's preprocessing from them.

Blobs (connected components, 8-connected: pixels touching at a corner
belong together) are found on horizontal *runs* of ink rather than on
pixels: a row of a digit is one or two runs, so a page of handwriting has
a few thousand runs where it has millions of pixels. Runs in neighbouring
rows that touch are linked, and the links are merged by "hooking" each
pair's roots to the smaller one and then "jumping" pointers until every
run points at its root (a union-find done with whole-array operations).
"""

from dataclasses import dataclass

import numpy as np


def otsu_threshold(image):
    """Otsu's threshold of a uint8 image.

    The ``t`` that best splits the histogram into two classes, pixels
    ``<= t`` and pixels ``> t``: it maximises the between-class variance
    ``w0 * w1 * (mu0 - mu1)**2`` (Otsu 1979). Where several ``t`` tie (an
    empty stretch of the histogram between two peaks), the middle one.

    Parameters
    ----------
    image : ndarray of uint8, any shape

    Returns
    -------
    int in 0..254
    """
    hist = np.bincount(image.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    w0 = np.cumsum(p)[:255]  # weight of the class <= t
    m0 = np.cumsum(p * np.arange(256))[:255]  # its first moment
    total = m0[-1] + 255 * p[255]
    between = np.zeros(255)
    valid = (w0 > 0) & (w0 < 1)
    w = w0[valid]
    # w0 w1 (mu0 - mu1)^2 == (total w0 - m0)^2 / (w0 w1)
    between[valid] = (total * w - m0[valid]) ** 2 / (w * (1 - w))
    best = np.flatnonzero(between == between.max())
    return int(best[0] + best[-1]) // 2


@dataclass(frozen=True, eq=False)
class Blobs:
    """The connected blobs of a mask, described by their runs.

    Runs (one entry per horizontal run of True pixels, row-major order):
    ``rows``, ``starts``, ``stops`` (exclusive) and ``label`` (its blob).
    Blobs (one entry per blob, numbered 0..n-1 in order of their first
    run): ``area`` (pixels), ``x0, x1, y0, y1`` (bounding box, stops
    exclusive).
    """

    shape: tuple
    rows: np.ndarray
    starts: np.ndarray
    stops: np.ndarray
    label: np.ndarray
    area: np.ndarray
    x0: np.ndarray
    x1: np.ndarray
    y0: np.ndarray
    y1: np.ndarray

    def __len__(self):
        return len(self.area)

    def mask(self, keep=None, window=None):
        """A boolean image of the blobs whose numbers are in ``keep`` (all when None).

        ``window``: ``(y0, y1, x0, x1)``, return only that part of the image
        (it must hold every pixel of those blobs); a page's digit needs no
        page-sized array.
        """
        y0, y1, x0, x1 = (0, self.shape[0], 0, self.shape[1]) if window is None else window
        h, w = y1 - y0, x1 - x0
        take = np.ones(len(self.rows), bool) if keep is None else np.isin(self.label, keep)
        rows = self.rows[take] - y0
        # +1 where a run starts, -1 where it stops, summed along each row.
        edges = np.zeros(h * (w + 1), np.int32)
        np.add.at(edges, rows * (w + 1) + self.starts[take] - x0, 1)
        np.add.at(edges, rows * (w + 1) + self.stops[take] - x0, -1)
        return np.cumsum(edges.reshape(h, w + 1), axis=1)[:, :w] > 0


def find_blobs(mask):
    """The 8-connected blobs of a boolean image.

    Parameters
    ----------
    mask : ndarray of bool, shape (h, w)

    Returns
    -------
    Blobs
    """
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    stops = np.nonzero(step == -1)[1]
    label = _merge_runs(rows, starts, stops, w + 2)
    n = int(label.max()) + 1 if len(label) else 0
    lengths = stops - starts
    area = np.bincount(label, weights=lengths, minlength=n).astype(np.int64)
    x0 = np.full(n, w)
    x1 = np.zeros(n, np.intp)
    y0 = np.full(n, h)
    y1 = np.zeros(n, np.intp)
    np.minimum.at(x0, label, starts)
    np.maximum.at(x1, label, stops)
    np.minimum.at(y0, label, rows)
    np.maximum.at(y1, label, rows + 1)
    return Blobs((h, w), rows, starts, stops, label, area, x0, x1, y0, y1)


def _merge_runs(rows, starts, stops, width):
    """Blob numbers of runs: runs in neighbouring rows that touch share a number."""
    n = len(rows)
    # Runs of row r+1 touching run i: a contiguous range, found by binary search on
    # keys that order runs row by row (width > any column, so rows never mix).
    start_key = rows * width + starts
    stop_key = rows * width + stops
    below = (rows + 1) * width
    lo = np.searchsorted(stop_key, below + starts, side="left")
    hi = np.searchsorted(start_key, below + stops, side="right")
    counts = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(n), counts)
    b = lo[a] + np.arange(len(a)) - np.repeat(np.cumsum(counts) - counts, counts)
    parent = np.arange(n)
    while True:
        ra, rb = parent[a], parent[b]
        if np.array_equal(ra, rb):
            break
        low = np.minimum(ra, rb)
        np.minimum.at(parent, ra, low)  # hook each root onto the smaller one
        np.minimum.at(parent, rb, low)
        while True:  # jump pointers until every run points at a root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    # Every run now points at its root, the blob's first run: number the roots in order.
    is_root = parent == np.arange(n)
    return (np.cumsum(is_root) - 1)[parent]


def dilate(mask, radius):
    """Grow ``mask`` by ``radius`` pixels in every direction (a square neighbourhood)."""
    out = mask.copy()
    for _ in range(radius):  # one pixel at a time: each pixel ORs its 8 neighbours
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        out = grown.copy()
        out[:, 1:] |= grown[:, :-1]
        out[:, :-1] |= grown[:, 1:]
    return out


def bounding_box(mask):
    """``(y0, y1, x0, x1)`` of the True pixels (stops exclusive), or None when there are none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def centre_of_mass(image):
    """``(row, col)`` of the intensity-weighted centre of a non-negative image with some ink."""
    total = image.sum()
    rows = image.sum(axis=1) @ np.arange(image.shape[0]) / total
    cols = image.sum(axis=0) @ np.arange(image.shape[1]) / total
    return float(rows), float(cols)
