"""Deskewing: each digit sheared upright and centred, from its image moments.

The preprocessing behind the "deskewing" rows of LeCun's MNIST table
(LeCun, Bottou, Bengio & Haffner, 1998). With the image ``I`` as a mass
distribution over the pixels ``(r, c)`` (row, column), its centre of mass
``(r0, c0)`` and second moments::

    m_rr = sum (r - r0)^2 I / sum I      m_rc = sum (r - r0)(c - c0) I / sum I

give the skew ``alpha = m_rc / m_rr``: how many columns the digit's main
axis moves per row. The output pixel ``(r, c)`` is read, by bilinear
interpolation (:func:`mnistnet.augment.bilinear`), at::

    r' = r + (r0 - h)      c' = c + alpha (r - h) + (c0 - h)      h = 13.5, the centre

so the main axis becomes the centre column and the centre of mass the
centre of the image. A blank image (no mass) stays as it is.
"""

import numpy as np

from mnistnet.augment import SIDE, WarpWorkspace, bilinear

CHUNK = 4096  # images per pass: bounds the scratch memory
CENTRE = (SIDE - 1) / 2


def deskew(X, out=None):
    """Deskew every image (a row of ``X``, shape (n, 784)); returns ``out`` (new if None).

    Values stay within the range of ``X`` and 0; the dtype is ``X``'s.
    ``out`` may be ``X`` itself: each chunk is read into the workspace before
    its result is written.
    """
    out = np.empty_like(X) if out is None else out
    ws = WarpWorkspace(min(CHUNK, max(len(X), 1)), X.dtype)
    for start in range(0, len(X), CHUNK):
        part = X[start : start + CHUNK]
        sy, sx = source_coordinates(part, ws)
        bilinear(part, sy, sx, out=out[start : start + len(part)], ws=ws)
    return out


def source_coordinates(X, ws):
    """Where each output pixel of each image reads its input: ``sy, sx`` (n, 784), in ``ws``."""
    n = len(X)
    _, r0, c0, m_rr, m_rc = moments(X)
    # a blank image: centre of mass at the centre, no skew, so every pixel reads itself
    alpha = np.divide(m_rc, m_rr, out=np.zeros_like(m_rc), where=m_rr > 0)
    r = np.repeat(np.arange(SIDE, dtype=ws.dtype), SIDE)  # the row of every pixel
    c = np.tile(np.arange(SIDE, dtype=ws.dtype), SIDE)
    sy, sx = ws.sy[:n], ws.sx[:n]
    sy[...] = r
    sy += (r0 - CENTRE)[:, None]
    np.multiply.outer(alpha.astype(ws.dtype), r - CENTRE, out=sx)
    sx += c
    sx += (c0 - CENTRE)[:, None]
    return sy, sx


def moments(X):
    """Mass, centre of mass ``(r0, c0)`` and the moments ``m_rr``, ``m_rc`` of each image.

    Each an array of shape (n,), in float64. A blank image has mass 0 and
    its centre at the centre of the frame.
    """
    images = X.reshape(len(X), SIDE, SIDE).astype(np.float64)
    axis = np.arange(SIDE, dtype=np.float64)
    rows, cols = images.sum(axis=2), images.sum(axis=1)  # the mass of each row, each column
    mass = rows.sum(axis=1)
    safe = np.where(mass > 0, mass, 1.0)
    r0 = np.where(mass > 0, rows @ axis / safe, CENTRE)
    c0 = np.where(mass > 0, cols @ axis / safe, CENTRE)
    dr = axis[None, :] - r0[:, None]  # (n, 28)
    dc = axis[None, :] - c0[:, None]
    m_rr = (rows * dr**2).sum(axis=1) / safe
    m_rc = np.einsum("nij,ni,nj->n", images, dr, dc) / safe
    return mass, r0, c0, m_rr, m_rc
