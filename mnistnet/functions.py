"""Activation and loss functions, pure and numerically stable.

Each task has its output head: an activation paired with its loss so that
the gradient of the loss with respect to the logits is ``P - Y`` (see
sklearn's ``_backprop`` and Nielsen's ``CrossEntropyCost.delta``):

=========  ==========  ====================  =====================
task       activation  loss                  output units
=========  ==========  ====================  =====================
binary     sigmoid     binary cross-entropy  1
multiclass softmax     cross-entropy         K
=========  ==========  ====================  =====================

Losses are computed from the logits ``Z`` (softplus / log-sum-exp), so a
probability of exactly 0 or 1 never produces ``log(0)``, and nothing here
ever raises a floating-point RuntimeWarning, even for logits of +-1e4.
"""

import numpy as np


def sigmoid(z, out=None):
    """Logistic function ``1 / (1 + exp(-z))``, computed as ``(1 + tanh(z / 2)) / 2``.

    The tanh form never overflows (``exp(-z)`` does for ``z < -709`` in
    float64) and is fast in place. ``out`` may be ``z`` itself.

    Parameters
    ----------
    z : ndarray
    out : ndarray of the same shape and dtype, optional

    Returns
    -------
    ndarray, values in [0, 1]
    """
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


def sigmoid_derivative_inplace(delta, A, work=None, keep_prob=1.0):
    """Multiply ``delta`` in place by sigmoid'(z) = ``A * (1 - A)``, with ``A = sigmoid(z)``.

    The derivative comes from the stored activation, as in sklearn's
    ``inplace_logistic_derivative``. ``work`` (same shape as ``A``) is an
    optional scratch buffer, so the training loop allocates nothing here.
    With dropout (:mod:`mnistnet.dropout`), ``A`` is the masked activation
    ``H = sigmoid(z) * M`` and the factor ``M * sigmoid'(z)`` is
    ``H * (1 - keep_prob * H)``.
    """
    if keep_prob == 1.0:
        work = np.subtract(1, A, out=work)
    else:
        work = np.multiply(A, -keep_prob, out=work)
        work += 1
    work *= A
    delta *= work
    return delta


def softmax(z, out=None):
    """Row-wise softmax of ``z`` (n_samples, n_classes).

    Each row is shifted by its own maximum before ``exp``: the result is
    unchanged mathematically and ``exp`` can no longer overflow.
    """
    return softmax_with_stats(z, out)[0]


def softmax_with_stats(z, out=None):
    """Row-wise softmax, and what the cross-entropy needs of it.

    Returns
    -------
    P : ndarray of shape (n_samples, n_classes)
    row_max : ndarray of shape (n_samples,), ``max_k z_k``
    log_norm : ndarray of shape (n_samples,), ``log(sum_k exp(z_k - row_max))``
        So that ``log softmax(z)_k = z_k - row_max - log_norm``: the forward
        pass keeps these and the loss costs a few operations more, not a
        second softmax (see :func:`cross_entropy_from_stats`).
    """
    row_max = z.max(axis=1)
    out = np.subtract(z, row_max[:, None], out=out)
    np.exp(out, out=out)
    norm = out.sum(axis=1)
    out /= norm[:, None]
    return out, row_max, np.log(norm, out=norm)


def binary_cross_entropy_from_logits(Z, Y):
    """Per-sample binary cross-entropy of ``sigmoid(Z)`` against ``Y``.

    ``-[y log p + (1 - y) log(1 - p)]`` with ``p = sigmoid(z)`` equals
    ``softplus(z) - y z``, and ``softplus(z) = max(z, 0) + log1p(exp(-|z|))``:
    the ``exp`` argument is never positive, so it cannot overflow.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, 1)
        Logits.
    Y : ndarray of shape (n_samples, 1)
        Targets in {0, 1}.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    Z = Z[:, 0]
    Y = Y[:, 0]
    return np.maximum(Z, 0) - Y * Z + np.log1p(np.exp(-np.abs(Z)))


def cross_entropy_from_stats(Z, Y, row_max, log_norm):
    """Per-sample cross-entropy ``-sum_k y_k log softmax(z)_k``, from the logits
    and :func:`softmax_with_stats`' row statistics (the forward pass keeps them).

    ``-sum_k y_k (z_k - m - log_norm) = log_norm - (y . z - m)`` for rows
    of ``Y`` that sum to 1. ``y . z - m`` is formed first: it is small when
    the prediction is right, so nothing large cancels.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_classes)
        Logits.
    Y : ndarray of shape (n_samples, n_classes)
        One-hot targets (any rows that sum to 1).
    row_max, log_norm : ndarray of shape (n_samples,)
        From :func:`softmax_with_stats` of ``Z``.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    target_logit = (Y * Z).sum(axis=1)
    target_logit -= row_max
    return log_norm - target_logit


# Each task's output head: its activation paired with its loss (the names
# the model file records; model.forward and model.loss pick by the activation).
HEADS = {
    "binary": {"activation": "sigmoid", "loss": "binary_cross_entropy"},
    "multiclass": {"activation": "softmax", "loss": "cross_entropy"},
}
