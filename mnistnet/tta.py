"""Test-time augmentation: each image scored as the average of its shifted copies.

The network sees an image and its four copies moved by ``shift`` pixels
up, down, left and right; the prediction is the mean of the five output
probabilities (as Simard et al. and Ciresan et al. average over distorted
inputs). A net trained with shifted images has seen such copies; the
average smooths out the errors that depend on where the digit sits.
"""

import numpy as np

from mnistnet import model
from mnistnet.augment import SIDE


def offsets(shift):
    """The copies' ``(dy, dx)``: the image itself first, then up, down, left, right."""
    return [(0, 0), (-shift, 0), (shift, 0), (0, -shift), (0, shift)]


def translate(X, dy, dx, out=None):
    """Every image (a row of ``X``) moved by ``dy`` rows and ``dx`` columns; 0 shifted in."""
    n = len(X)
    out = np.zeros_like(X) if out is None else out
    out[...] = 0
    src = X.reshape(n, SIDE, SIDE)
    dst = out.reshape(n, SIDE, SIDE)
    rows, cols = _window(dy), _window(dx)
    dst[:, rows[1], cols[1]] = src[:, rows[0], cols[0]]
    return out


def _window(d):
    """(source, destination) slices of one axis for a move by ``d`` (|d| < SIDE)."""
    if d >= 0:
        return slice(0, SIDE - d), slice(d, SIDE)
    return slice(-d, SIDE), slice(0, SIDE + d)


def predict_proba(params, X, task, shift, net=None):
    """The mean output probabilities of ``X`` and its four copies moved by ``shift`` pixels.

    ``net``: as :func:`mnistnet.model.predict_proba` (None: one thread).

    Returns
    -------
    ndarray of shape (n_samples, n_out)
    """
    moved = np.empty_like(X)
    P = model.predict_proba(params, X, task, net=net)
    for dy, dx in offsets(shift)[1:]:
        P += model.predict_proba(params, translate(X, dy, dx, out=moved), task, net=net)
    P /= len(offsets(shift))
    return P


def score(params, X, y, task, shift, net=None):
    """Mean loss and accuracy of the averaged probabilities, and those probabilities.

    The loss is the cross-entropy of the averaged probabilities, each
    clipped to ``[eps, 1 - eps]`` of its dtype so a certain mistake costs a
    finite amount. Returns ``(loss, accuracy, P)`` as
    :func:`mnistnet.training.score` does.
    """
    P = predict_proba(params, X, task, shift, net)
    eps = np.finfo(P.dtype).eps
    clipped = np.clip(P, eps, 1 - eps)
    if P.shape[1] == 1:
        p = clipped[:, 0]
        losses = -np.where(y == 1, np.log(p), np.log1p(-p))
    else:
        losses = -np.log(clipped[np.arange(len(y)), y])
    accuracy = float(np.mean(model.predict(P) == y)) if len(y) else 0.0
    return float(losses.mean()) if len(y) else 0.0, accuracy, P
