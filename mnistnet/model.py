"""The two-layer network: parameters, forward pass, backward pass.

Shapes, for ``n`` samples, ``d`` inputs (784), ``h`` hidden units and
``k`` outputs (1 for the binary task, 10 for ten classes)::

    X  (n, d)      Z1 = X @ W1 + b1   (n, h)     A1 = sigmoid(Z1)
    W1 (d, h)      Z2 = A1 @ W2 + b2  (n, k)     P  = sigmoid(Z2) | softmax(Z2)
    W2 (h, k)

Backward, with the output delta ``P - Y`` of each task's paired activation
and loss
(divided by ``n`` when the loss is the mean instead of the sum)::

    D2 = (P - Y) [/ n]      dW2 = A1.T @ D2    db2 = sum(D2, axis=0)
    D1 = (D2 @ W2.T) * A1 * (1 - A1)
                            dW1 = X.T @ D1     db1 = sum(D1, axis=0)

Every array the passes write lives in a :class:`Workspace`, allocated once
per batch size and reused: this is where the speed of training comes from
(no allocation per batch, in-place activations, ``out=`` matrix products).
Called without a workspace, each function makes a fresh one, so the
straightforward call and the training loop run the same code.
"""

import numpy as np

from mnistnet.functions import (
    HEADS,
    binary_cross_entropy_from_logits,
    cross_entropy_from_stats,
    sigmoid,
    sigmoid_derivative_inplace,
    softmax_with_stats,
)

PARAM_NAMES = ("W1", "b1", "W2", "b2")
# How a batch's per-sample losses and the weight decay make the objective
# (see backward): the notebook's sum, the mean, or a sum of per-example objectives.
REDUCTIONS = ("sum", "mean", "example")
INIT_METHODS = ("notebook", "xavier")


def init_params(n_in, n_hidden, n_out, *, method="notebook", seed=0, dtype=np.float64):
    """Initial parameters, drawn W1 then W2 from ``np.random.RandomState(seed)``.

    ``notebook``: weights ~ N(0, 0.01) (standard deviation 0.01), exactly the
    course notebook's ``np.random.seed(seed)`` followed by
    ``np.random.normal(0, 0.01, (n_hidden, n_in))`` and
    ``np.random.normal(0, 0.01, (n_out, n_hidden))``: RandomState is NumPy's
    legacy generator, the one behind ``np.random.seed``. The notebook wrote
    ``W @ x``; we write ``X @ W``, so each matrix is drawn in the notebook's
    shape and stored transposed (the same numbers in the same places).
    ``xavier``: weights ~ N(0, 1/fan_in), drawn the same way. Biases are
    zero in both.

    Returns
    -------
    dict with ``W1`` (n_in, n_hidden), ``b1`` (n_hidden,),
    ``W2`` (n_hidden, n_out), ``b2`` (n_out,), all of ``dtype``, C-contiguous.
    """
    if method not in INIT_METHODS:
        raise ValueError(f"unknown init method {method!r}; choose from {INIT_METHODS}")
    rs = np.random.RandomState(seed)
    if method == "notebook":
        std1 = std2 = 0.01
    else:
        std1, std2 = 1 / np.sqrt(n_in), 1 / np.sqrt(n_hidden)
    W1 = rs.normal(0.0, std1, size=(n_hidden, n_in)).T
    W2 = rs.normal(0.0, std2, size=(n_out, n_hidden)).T
    params = {
        "W1": W1,
        "b1": np.zeros(n_hidden),
        "W2": W2,
        "b2": np.zeros(n_out),
    }
    return {name: np.ascontiguousarray(value, dtype=dtype) for name, value in params.items()}


def pack(params):
    """Copy ``params`` into one flat vector; return it and named views into it.

    Returns
    -------
    vector : ndarray of shape (n_parameters,)
    views : dict of ndarray, the parameters' names and shapes, sharing
        ``vector``'s memory. An elementwise optimizer step on ``vector``
        updates every view: one call per operation instead of one per
        parameter (the training loop's main use).
    """
    vector = np.concatenate([params[name].ravel() for name in PARAM_NAMES])
    return vector, _views(vector, {name: params[name].shape for name in PARAM_NAMES})


def _views(vector, shapes):
    views, start = {}, 0
    for name in PARAM_NAMES:
        size = int(np.prod(shapes[name]))
        views[name] = vector[start : start + size].reshape(shapes[name])
        start += size
    return views


class Workspace:
    """Preallocated arrays for forward and backward passes of up to ``capacity`` samples.

    A batch of ``n <= capacity`` samples uses the first ``n`` rows of each
    buffer (a contiguous view, so ``out=`` works). Gradients live in one
    flat vector, ``grad_vector``, laid out as :func:`pack` lays out the
    parameters; ``grads`` holds its views under the parameters' names.
    """

    def __init__(self, params, capacity):
        n_in, n_hidden = params["W1"].shape
        n_out = params["W2"].shape[1]
        dtype = params["W1"].dtype
        self.capacity = capacity
        self.dtype = dtype
        self.A1 = np.empty((capacity, n_hidden), dtype)  # Z1, then sigmoid(Z1) in place
        self.Z2 = np.empty((capacity, n_out), dtype)
        self.P = np.empty((capacity, n_out), dtype)
        self.D2 = np.empty((capacity, n_out), dtype)
        self.D1 = np.empty((capacity, n_hidden), dtype)
        self.work = np.empty((capacity, n_hidden), dtype)
        self.ones = np.ones(capacity, dtype)  # ones @ D sums D's rows: a BLAS gemv, 2x np.sum
        self.grad_vector = np.empty(sum(params[name].size for name in PARAM_NAMES), dtype)
        self.grads = _views(self.grad_vector, {name: params[name].shape for name in PARAM_NAMES})

    def fits(self, params, n):
        return (
            n <= self.capacity
            and params["W1"].dtype == self.dtype
            and self.A1.shape[1] == params["W1"].shape[1]
            and self.P.shape[1] == params["W2"].shape[1]
        )


def workspace_for(ws, params, n):
    """``ws`` if it holds ``n`` samples of ``params``' network (else an error); new if None."""
    if ws is None:
        return Workspace(params, n)
    if not ws.fits(params, n):
        raise ValueError(f"workspace for {ws.capacity} samples cannot hold a batch of {n}")
    return ws


def forward(params, X, task, ws=None, drop=None):
    """Forward pass.

    Parameters
    ----------
    params : dict of ndarray
    X : ndarray of shape (n_samples, n_in), same dtype as the parameters
    task : {"binary", "multiclass"}
        Picks the output activation (:data:`mnistnet.functions.HEADS`).
    ws : Workspace, optional
        Buffers to write into; the returned arrays are views of it and are
        overwritten by the next call that uses the same workspace.
    drop : DropMask, optional
        Training with dropout (:mod:`mnistnet.dropout`): the hidden
        activations are multiplied by ``drop.mask``, and the cache's ``A1``
        holds the masked ones.

    Returns
    -------
    P : ndarray of shape (n_samples, n_out)
        Output probabilities.
    cache : dict
        ``X``, ``A1``, ``Z2`` and ``P``, what :func:`backward` and
        :func:`loss` need; for softmax also its row statistics.
    """
    n = X.shape[0]
    ws = workspace_for(ws, params, n)
    A1 = hidden_layer(X, params, out=ws.A1[:n], mask=None if drop is None else drop.mask)
    Z2 = np.matmul(A1, params["W2"], out=ws.Z2[:n])
    Z2 += params["b2"]
    return output_layer(X, A1, Z2, task, ws, drop)


def hidden_layer(X, params, out, mask=None):
    """``A1 = sigmoid(X @ W1 + b1)`` (times the dropout ``mask``), written into ``out``
    (n_samples, n_hidden).

    ``params`` needs ``W1`` and ``b1`` only: :mod:`mnistnet.parallel` passes
    the columns of a slice of the hidden units, with ``out`` and ``mask``
    their columns.
    """
    A1 = np.matmul(X, params["W1"], out=out)
    A1 += params["b1"]
    sigmoid(A1, out=A1)
    if mask is not None:
        A1 *= mask
    return A1


def output_layer(X, A1, Z2, task, ws, drop=None):
    """The output probabilities from the logits ``Z2``: ``(P, cache)`` as :func:`forward`."""
    P = ws.P[: len(Z2)]
    keep_prob = 1.0 if drop is None else drop.keep_prob
    cache = {"X": X, "A1": A1, "Z2": Z2, "P": P, "ws": ws, "keep_prob": keep_prob}
    if HEADS[task]["activation"] == "sigmoid":
        sigmoid(Z2, out=P)
    else:  # softmax; its row statistics make the loss a few operations more
        _, cache["row_max"], cache["log_norm"] = softmax_with_stats(Z2, out=P)
    return P, cache


def loss(cache, Y, task):
    """Per-sample losses of the forward pass in ``cache``, from its logits.

    Binary cross-entropy of the sigmoid output, or the cross-entropy of the
    softmax from the row statistics :func:`forward` kept.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    if HEADS[task]["activation"] == "sigmoid":
        return binary_cross_entropy_from_logits(cache["Z2"], Y)
    return cross_entropy_from_stats(cache["Z2"], Y, cache["row_max"], cache["log_norm"])


def backward(params, cache, Y, reduction="sum", weight_decay=0.0, scale=1.0):
    """Gradients of the batch's objective with respect to each parameter.

    With ``n`` samples of losses ``l_i`` and the L2 penalty
    ``R = weight_decay / 2 * (||W1||^2 + ||W2||^2)`` (not on the biases), the
    objective is, by ``reduction``::

        sum:      sum_i l_i + R              (the course notebook's, with R once per batch)
        mean:     (1/n) sum_i l_i + R
        example:  sum_i (l_i + R) = sum_i l_i + n R

    ``example`` makes the learning rate and the weight decay per example: an
    epoch of plain gradient steps moves the weights by about
    ``-lr * sum over the epoch of (grad l_i + weight_decay * W)`` whatever
    the batch size, so both transfer from one batch size to another.

    Parameters
    ----------
    params : dict of ndarray
    cache : dict from :func:`forward`
    Y : ndarray of shape (n_samples, n_out)
        Targets: one-hot rows for ten classes, a 0/1 column for binary.
    reduction : {"sum", "mean", "example"}
        See above.
    weight_decay : float
    scale : float
        Multiplies every gradient. The training loop passes the learning
        rate for optimizers that step on ``lr * gradient``: scaling the
        (n, k) output delta costs nothing, scaling the gradients afterwards
        a pass over every weight.

    Returns
    -------
    dict of ndarray with the same keys and shapes as ``params`` (views of
    the workspace's ``grads``).
    """
    ws = cache["ws"]
    X, A1 = cache["X"], cache["A1"]
    n = X.shape[0]
    g = ws.grads
    D2 = output_delta(cache, Y, reduction, scale)
    ones = ws.ones[:n]
    np.matmul(ones, D2, out=g["b2"])
    decay = decay_scale(reduction, n) * weight_decay * scale
    hidden_grads(X, A1, D2, params, g, ws.D1[:n], ws.work[:n], ones, decay, cache["keep_prob"])
    return g


def decay_scale(reduction, n):
    """How many times a batch of ``n`` samples counts the weight decay: ``n`` per
    example, else once."""
    return n if reduction == "example" else 1


def output_delta(cache, Y, reduction, scale):
    """``D2 = (P - Y) * scale``, divided by n for the mean loss; in the workspace.

    The output delta of both paired heads.
    """
    P = cache["P"]
    n = P.shape[0]
    D2 = np.subtract(P, Y, out=cache["ws"].D2[:n])
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}")
    delta_scale = scale / n if reduction == "mean" else scale
    if delta_scale != 1.0:
        D2 *= delta_scale
    return D2


def hidden_grads(X, A1, D2, params, grads, D1, work, ones, decay, keep_prob=1.0):
    """Gradients of ``W2``, ``W1`` and ``b1`` from the output delta ``D2``, into ``grads``.

    ``dW2 = A1.T @ D2``; ``D1 = (D2 @ W2.T) * A1 * (1 - A1)``; ``dW1 = X.T @ D1``;
    ``db1 = ones @ D1`` (a matrix-vector product sums the rows); with ``decay``
    (weight decay times the gradient's scale), ``decay * W`` is added to both
    weights' gradients. ``D1`` and ``work`` are scratch of A1's shape. With
    dropout, ``A1`` is the masked activation and ``keep_prob`` the share of
    units kept (:func:`~mnistnet.functions.sigmoid_derivative_inplace`).
    :mod:`mnistnet.parallel` calls this for slices of the hidden units: the
    columns of ``A1``, ``W1`` and ``b1`` and the rows of ``W2``.
    """
    np.matmul(A1.T, D2, out=grads["W2"])
    np.matmul(D2, params["W2"].T, out=D1)
    sigmoid_derivative_inplace(D1, A1, work=work, keep_prob=keep_prob)
    np.matmul(X.T, D1, out=grads["W1"])
    np.matmul(ones, D1, out=grads["b1"])
    if decay:
        grads["W1"] += decay * params["W1"]
        grads["W2"] += decay * params["W2"]


def predict_proba(params, X, task, batch_size=4096, net=None):
    """Output probabilities for many samples, computed in chunks to bound memory.

    ``net`` computes the forward pass: this module (None), or a
    :class:`mnistnet.parallel.SplitNetwork` for more threads.

    Returns
    -------
    ndarray of shape (n_samples, n_out), a new array.
    """
    from mnistnet.parallel import one_blas_thread  # parallel imports this module

    n = X.shape[0]
    out = np.empty((n, params["W2"].shape[1]), dtype=params["W1"].dtype)
    ws = Workspace(params, min(batch_size, max(n, 1)))
    forward_pass = forward if net is None else net.forward
    with one_blas_thread():  # as in training: OpenBLAS's threads spin, and collapse when shared
        for start in range(0, n, batch_size):
            P, _ = forward_pass(params, X[start : start + batch_size], task, ws)
            out[start : start + len(P)] = P
    return out


def predict(P):
    """Class indices from output probabilities: threshold 0.5 (binary) or argmax."""
    if P.shape[1] == 1:
        return (P[:, 0] >= 0.5).astype(np.intp)
    return P.argmax(axis=1)
