"""Distortions of training images: affine jitter and elastic deformations, a batch at a time.

Every image of a batch gets its own random warp: the pixel at ``p`` of the
output is read, by bilinear interpolation, at ``q(p)`` in the input::

    q(p) = A (p - c) + c - s + D(p)

``c`` is the image centre; ``A`` a rotation (up to ``rotate`` degrees) times
a scaling (by up to ``scale``) times a shear (up to ``shear``), mirrored
left-right with probability ``flip``; ``s`` a
whole-pixel shift (up to ``shift`` pixels, as :func:`mnistnet.data.shift_images`);
``D`` an elastic displacement field (Simard, Steinkraus & Platt, 2003):
a field of independent uniform(-1, 1) numbers at every pixel, smoothed by a
Gaussian of width ``sigma`` and multiplied by ``alpha``. Pixels read from
outside the image are 0, the background.

Speed: drawing 784 numbers per image and convolving them costs more than
the whole warp. The smoothed field is a Gaussian-like random field whose
covariance is known exactly, ``(alpha^2 / 3) (G G^T) kron (G G^T)`` with
``G`` the Gaussian smoothing matrix of one axis; it has only a few
directions that matter (a Gaussian of width 4 passes only the lowest
frequencies). :func:`_field_basis` keeps the eigenvectors of ``G G^T`` that
carry 99.9% of its trace, so a field is ``B Z B^T`` with ``Z`` a small
``m x m`` matrix of normal numbers (``m = 10`` for ``sigma = 4``): the same
covariance, at a cost of two small matrix products per batch. The warp
itself is four gathers and a few whole-batch operations
(:func:`bilinear`).
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

SIDE = 28  # MNIST images are 28 x 28
KEPT_VARIANCE = 0.999  # share of the smoothed field's variance the basis keeps


@dataclass(frozen=True)
class Distortion:
    """The random warps of training images; all zero: none.

    rotate : float, degrees; each image turns by uniform(-rotate, rotate)
    scale : float; each image is scaled by 1 + uniform(-scale, scale)
    shear : float; each image is sheared by uniform(-shear, shear) (x += shear * y)
    elastic_alpha : float, pixels; the strength of the elastic field (Simard's alpha)
    elastic_sigma : float, pixels; the width of its Gaussian smoothing (Simard's sigma)
    flip : float; the probability that an image is mirrored left-right
    """

    rotate: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 4.0
    flip: float = 0.0

    @property
    def active(self):
        return bool(self.rotate or self.scale or self.shear or self.elastic_alpha or self.flip)

    def apply(self, X, rng, shift=0, out=None, ws=None):
        """Warp each image (a row of ``X``) by its own random distortion.

        Parameters
        ----------
        X : ndarray of shape (n, 784)
        rng : numpy.random.Generator
            Every random number comes from it: the same state, the same images.
        shift : int
            Also shift each image by up to this many whole pixels.
        out : ndarray like ``X``, optional (must not be ``X``)
        ws : WarpWorkspace, optional
            Buffers for at least ``n`` images of ``X``'s dtype (the training
            loop keeps one); without it, fresh ones.

        Returns
        -------
        ndarray of shape (n, 784), values within the range of ``X`` and 0
        """
        n = len(X)
        ws = WarpWorkspace(n, X.dtype) if ws is None else ws
        sy, sx = self.source_coordinates(n, rng, shift, ws)
        return bilinear(X, sy, sx, out=out, ws=ws)

    def source_coordinates(self, n, rng, shift=0, ws=None):
        """Where each output pixel reads its input: ``sy, sx`` of shape (n, 784).

        Views of ``ws``'s buffers (float32 without ``ws``).
        """
        ws = WarpWorkspace(n) if ws is None else ws
        angle = np.deg2rad(rng.uniform(-self.rotate, self.rotate, n)) if self.rotate else 0.0
        zoom = 1 + rng.uniform(-self.scale, self.scale, n) if self.scale else 1.0
        shear = rng.uniform(-self.shear, self.shear, n) if self.shear else 0.0
        cos, sin = np.cos(angle), np.sin(angle)
        # A = zoom * rotation @ [[1, 0], [shear, 1]], acting on (y, x)
        a = np.empty((4, n), ws.dtype)
        a[0] = zoom * (cos - sin * shear)
        a[1] = zoom * -sin
        a[2] = zoom * (sin + cos * shear)
        a[3] = zoom * cos
        if self.flip:  # a mirror image reads column c - x where the plain one reads c + x
            a[2:] *= np.where(rng.random(n) < self.flip, -1, 1)
        offset = np.full((2, n), (SIDE - 1) / 2, ws.dtype)
        if shift:
            offset -= rng.integers(-shift, shift + 1, size=(n, 2)).T
        gy, gx = _centred_grid(ws.dtype)
        sy, sx, work = ws.sy[:n], ws.sx[:n], ws.top[:n]
        for s, (ay, ax), c in ((sy, a[:2], offset[0]), (sx, a[2:], offset[1])):
            np.multiply.outer(ay, gy, out=s)
            s += np.multiply.outer(ax, gx, out=work)
            s += c[:, None]
            if self.elastic_alpha:
                s += elastic_field(n, rng, self.elastic_alpha, self.elastic_sigma, out=work)
        return sy, sx


class WarpWorkspace:
    """The arrays a warp of up to ``capacity`` images writes, allocated once.

    Fresh large arrays on every batch cost more than the arithmetic: the
    memory comes back from the system page by page.
    """

    def __init__(self, capacity, dtype=np.float32):
        self.capacity = capacity
        self.dtype = np.dtype(dtype)
        shape = (capacity, SIDE * SIDE)
        self.sy, self.sx, self.row, self.top, self.right, self.bottom = (
            np.empty(shape, self.dtype) for _ in range(6)
        )
        self.corner, self.neighbour = np.empty(shape, np.intp), np.empty(shape, np.intp)
        width = SIDE + 2 * _PAD
        self.padded = np.zeros((capacity, width, width), self.dtype)  # the frame stays 0
        self.starts = (np.arange(capacity) * width * width)[:, None]


@functools.lru_cache(maxsize=4)
def _centred_grid(dtype):
    """Row and column of every pixel, measured from the centre: two arrays of shape (784,)."""
    centre = (SIDE - 1) / 2
    i, j = np.divmod(np.arange(SIDE * SIDE), SIDE)
    return (i - centre).astype(dtype), (j - centre).astype(dtype)


def gaussian_matrix(sigma, side=SIDE):
    """``G`` with ``(G u)_i = sum_j g(i - j) u_j``: a Gaussian filter of one axis.

    ``g`` is the normalised Gaussian of standard deviation ``sigma``, cut at
    4 sigma (as ``scipy.ndimage.gaussian_filter``); values outside the image
    count as 0.
    """
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    d = np.subtract.outer(np.arange(side), np.arange(side))
    return np.where(np.abs(d) <= radius, taps[np.clip(d + radius, 0, 2 * radius)], 0.0)


@functools.lru_cache(maxsize=8)
def _field_basis(sigma, dtype):
    """``B`` (28, m): the leading eigenvectors of ``G G^T`` times the square roots of their
    eigenvalues, enough of them to keep :data:`KEPT_VARIANCE` of the trace."""
    G = gaussian_matrix(sigma)
    values, vectors = np.linalg.eigh(G @ G.T)
    values, vectors = values[::-1].clip(0), vectors[:, ::-1]
    m = int(np.searchsorted(np.cumsum(values) / values.sum(), KEPT_VARIANCE)) + 1
    return (vectors[:, :m] * np.sqrt(values[:m])).astype(dtype)


def elastic_field(n, rng, alpha, sigma, dtype=np.float32, out=None):
    """``n`` displacement fields along one axis, in pixels: shape (n, 784).

    Each has the covariance of Simard's ``alpha * G U G^T`` with ``U``
    uniform(-1, 1) at every pixel (variance 1/3), drawn as ``B Z B^T`` with
    ``Z`` standard normal of shape (m, m) (see the module's docstring).
    ``out`` (n, 784) sets the dtype when given.
    """
    dtype = np.dtype(dtype if out is None else out.dtype)
    B = _field_basis(float(sigma), dtype)
    m = B.shape[1]
    Z = rng.standard_normal((n * m, m), dtype=np.float32).astype(dtype, copy=False)
    Z *= alpha / math.sqrt(3)
    # Z B^T for every image in one product, then B (Z B^T) for all of them in another
    right = (Z @ B.T).reshape(n, m, SIDE).transpose(1, 0, 2).reshape(m, n * SIDE)
    fields = (B @ right).reshape(SIDE, n, SIDE).transpose(1, 0, 2)
    if out is None:
        return fields.reshape(n, SIDE * SIDE)
    out.reshape(n, SIDE, SIDE)[...] = fields
    return out


_PAD = 2  # zero rows and columns around each image: reads outside land on them


def bilinear(X, sy, sx, out=None, ws=None):
    """Each image of ``X`` read at the points ``(sy, sx)`` by bilinear interpolation.

    Points outside the image read 0. ``sy`` and ``sx`` (n, 784) are
    overwritten. A bilinear read is a weighted average of four pixels, so
    the result lies in the range of the pixels and 0 (clipped there, so
    rounding cannot step outside).
    """
    n = len(X)
    ws = WarpWorkspace(n, X.dtype) if ws is None else ws
    width = SIDE + 2 * _PAD
    padded = ws.padded[:n]
    padded[:, _PAD:-_PAD, _PAD:-_PAD] = X.reshape(n, SIDE, SIDE)
    # from -1 to SIDE, a point's four neighbours stay within the padded frame
    np.clip(sy, -1, SIDE, out=sy)
    np.clip(sx, -1, SIDE, out=sx)
    row, col = np.floor(sy, out=ws.row[:n]), np.floor(sx, out=ws.top[:n])
    sy -= row  # the fractions: the weights of the far neighbours
    sx -= col
    row *= width  # the upper-left neighbour's place in the flat batch
    row += col
    row += _PAD * width + _PAD
    corner, neighbour = ws.corner[:n], ws.neighbour[:n]
    corner[...] = row
    corner += ws.starts[:n]
    flat = padded.reshape(-1)
    # mode="clip": the indices are in range; "raise" would gather into a temporary
    top, right, bottom = ws.top[:n], ws.right[:n], ws.bottom[:n]
    np.take(flat, corner, out=top, mode="clip")
    np.take(flat, np.add(corner, 1, out=neighbour), out=right, mode="clip")
    right -= top
    right *= sx
    top += right  # the upper row, interpolated
    corner += width
    np.take(flat, corner, out=bottom, mode="clip")
    np.take(flat, np.add(corner, 1, out=neighbour), out=right, mode="clip")
    right -= bottom
    right *= sx
    bottom += right  # the lower row
    bottom -= top
    bottom *= sy
    top += bottom
    low, high = min(0, X.min()), max(0, X.max())
    return np.clip(top, low, high, out=out)
