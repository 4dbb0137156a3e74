"""The training loop: returns a :class:`History` and never prints.

It reads top to bottom, as nanoGPT's ``train.py``: for each batch gather,
forward, loss, backward, step; at the end of the epoch measure and hand an
:class:`EpochRecord` to ``on_epoch`` (the CLI's reporter).

Speed (all of it is here and in :class:`mnistnet.model.Workspace`):
inputs are converted to the training dtype once, before the loop; every
array a batch needs is allocated once and reused; mini-batches are gathered
with ``np.take(..., out=buffer)`` from a shuffled index array (sklearn's
"shuffle the sample indices instead of X and y"), never by copying the
whole dataset; the full batch (the notebook's ``gd``) uses ``X`` as is.
"""

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from mnistnet import model
from mnistnet.data import shift_images, targets
from mnistnet.errors import DivergenceError
from mnistnet.optimizers import scheduled_lr


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch measured.

    ``loss`` (mean per sample) and ``train_acc`` come from the epoch's own
    forward passes (for ``gd``, the weights before the epoch's update);
    ``test_acc`` is measured after the epoch's updates. ``seconds`` is the
    time since training started.
    """

    epoch: int
    loss: float
    train_acc: float
    test_acc: float | None
    seconds: float
    lr: float

    def to_dict(self):
        return asdict(self)


@dataclass
class History:
    records: list = field(default_factory=list)
    interrupted: bool = False

    @property
    def last(self):
        return self.records[-1] if self.records else None

    def column(self, name):
        return [getattr(r, name) for r in self.records]


def score(params, X, y, head, batch_size=4096, ws=None):
    """Mean loss and accuracy of ``params`` on ``X`` with labels ``y``.

    ``ws``, a :class:`~mnistnet.model.Workspace` for ``batch_size`` samples,
    is reused when given (the training loop scores the test set every epoch).

    Returns
    -------
    loss : float
        Not finite (and no warning) when the weights are so large that the
        logits overflow: the caller decides whether that is divergence.
    accuracy : float
    P : ndarray of shape (n_samples, n_out), the output probabilities
    """
    n_out = params["W2"].shape[1]
    n = len(X)
    if ws is None:
        ws = model.Workspace(params, min(batch_size, max(n, 1)))
    total_loss = 0.0
    correct = 0
    P_all = np.empty((n, n_out), dtype=params["W1"].dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            Y = targets(y[start:stop], n_out, params["W1"].dtype)
            P, cache = model.forward(params, X[start:stop], head, ws)
            total_loss += float(model.loss(cache, Y, head).sum())
            correct += int((model.predict(P) == y[start:stop]).sum())
            P_all[start:stop] = P
    return total_loss / max(n, 1), correct / max(n, 1), P_all


def fit(
    params,
    X,
    y,
    *,
    head,
    optimizer,
    epochs,
    lr,
    batch_size=None,
    reduction="sum",
    weight_decay=0.0,
    lr_schedule="constant",
    augment_shift=0,
    rng=None,
    X_test=None,
    y_test=None,
    on_epoch=None,
):
    """Train ``params`` in place.

    Parameters
    ----------
    params : dict of ndarray
        From :func:`mnistnet.model.init_params`; updated in place.
    X : ndarray of shape (n_samples, n_in), same dtype as ``params``
    y : ndarray of shape (n_samples,), int labels 0..n_out-1 (0/1 for binary)
    head : {"binary", "multiclass"}
    optimizer : an object of :mod:`mnistnet.optimizers`
    epochs : int
    lr : float
        Base learning rate, per epoch through ``lr_schedule``.
    batch_size : int or None
        None: one full-batch step per epoch.
    reduction : {"sum", "mean"}
    weight_decay : float
        L2 penalty on the weights (see :func:`mnistnet.model.backward`).
    augment_shift : int
        Translate every training image by up to this many pixels, drawn anew
        each epoch from ``rng``.
    rng : numpy.random.Generator
        Shuffles mini-batches and draws shifts.
    X_test, y_test : optional
        Scored after every epoch (``test_acc``).
    on_epoch : callable(EpochRecord), optional

    Returns
    -------
    History
        ``interrupted`` is True when Ctrl-C stopped it; ``params`` then hold
        the weights of the last finished epoch.

    Raises
    ------
    DivergenceError
        When a batch's loss or, after an epoch, any weight is not finite.
    """
    n = len(X)
    dtype = params["W1"].dtype
    if X.dtype != dtype:
        raise ValueError(f"X has dtype {X.dtype}, the parameters {dtype}")
    rng = np.random.default_rng(0) if rng is None else rng
    n_out = params["W2"].shape[1]
    Y = targets(y, n_out, dtype)  # converted once, gathered per batch
    full_batch = batch_size is None or batch_size >= n
    capacity = n if full_batch else batch_size
    # Train on one flat parameter vector (views keep the names); the
    # optimizer then updates everything with a few whole-vector operations.
    theta, views = model.pack(params)
    ws = model.Workspace(views, capacity)
    flat_params, flat_grads = {"theta": theta}, {"theta": ws.grad_vector}
    prescaled = hasattr(optimizer, "step_prescaled")
    if not full_batch:
        X_batch = np.empty((capacity, X.shape[1]), dtype)
        Y_batch = np.empty((capacity, n_out), dtype)
        y_batch = np.empty(capacity, y.dtype)
    if augment_shift:
        X_shifted = np.empty((capacity, X.shape[1]), dtype)
    if X_test is not None and len(X_test):
        test_ws = model.Workspace(views, min(4096, len(X_test)))

    history = History()
    # The weights at the end of the last whole epoch: what Ctrl-C hands back, so
    # a saved model matches its history (copying 200k numbers per epoch is free).
    completed = theta.copy()
    start_time = time.perf_counter()
    # Overflow can only come from weights that have already blown up; it is
    # caught below as a non-finite loss and reported as divergence.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            for epoch in range(epochs):
                epoch_lr = scheduled_lr(lr, epoch, epochs, lr_schedule)
                total_loss = 0.0
                correct = 0
                order = None if full_batch else rng.permutation(n)
                for start in range(0, n, capacity):
                    if full_batch:
                        Xb, Yb, yb = X, Y, y
                    else:
                        idx = order[start : start + capacity]
                        m = len(idx)
                        # mode="clip": with the default "raise", take() writes to a
                        # hidden temporary and copies it into out (numpy docs);
                        # the indices are a permutation, always in range.
                        Xb = np.take(X, idx, axis=0, out=X_batch[:m], mode="clip")
                        Yb = np.take(Y, idx, axis=0, out=Y_batch[:m], mode="clip")
                        yb = np.take(y, idx, out=y_batch[:m], mode="clip")
                    if augment_shift:
                        Xb = shift_images(Xb, augment_shift, rng, out=X_shifted[: len(Xb)])

                    P, cache = model.forward(views, Xb, head, ws)
                    batch_loss = float(model.loss(cache, Yb, head).sum())
                    check_finite_loss(batch_loss, lr, epoch + 1)
                    if prescaled:  # lr folded into backward's output delta
                        model.backward(views, cache, Yb, reduction, weight_decay, epoch_lr)
                        optimizer.step_prescaled(flat_params, flat_grads)
                    else:
                        model.backward(views, cache, Yb, reduction, weight_decay)
                        optimizer.step(flat_params, flat_grads, epoch_lr)

                    total_loss += batch_loss
                    correct += int(np.count_nonzero(model.predict(P) == yb))

                if not np.isfinite(theta).all():
                    raise _diverged(epoch + 1, lr)
                if total_loss / n > DIVERGED_LOSS:
                    raise _diverged(
                        epoch + 1, lr, f"the mean loss reached {total_loss / n:.3g} per image"
                    )
                test_acc = None
                if X_test is not None and len(X_test):
                    test_loss, test_acc, _ = score(views, X_test, y_test, head, ws=test_ws)
                    check_finite_loss(test_loss, lr, epoch + 1)
                record = EpochRecord(
                    epoch=epoch + 1,
                    loss=total_loss / n,
                    train_acc=correct / n,
                    test_acc=test_acc,
                    seconds=time.perf_counter() - start_time,
                    lr=epoch_lr,
                )
                history.records.append(record)
                np.copyto(completed, theta)
                if on_epoch is not None:
                    on_epoch(record)
        except KeyboardInterrupt:
            history.interrupted = True
            np.copyto(theta, completed)
        finally:
            for name, value in views.items():
                params[name][...] = value
    return history


# A mean loss above this many nats per image means training has blown up:
# a net that only guesses scores about ln(10) = 2.3.
DIVERGED_LOSS = 1000.0


def check_finite_loss(loss, lr, epoch):
    """Raise :class:`DivergenceError` unless ``loss`` is a finite number."""
    if not math.isfinite(loss):
        raise _diverged(epoch, lr)


def _diverged(epoch, lr, why="the loss or the weights are no longer finite numbers"):
    return DivergenceError(
        f"training diverged at epoch {epoch}: {why}. Try a smaller --lr (now {lr:g}): "
        "the notebook's recipes (gd, summed loss, raw pixels) train at 1e-05 (binary) and "
        "1.7e-05 (ten classes); --reduction mean --pixels unit at about 0.1 (sgd, momentum) "
        "or 0.001 (adam)."
    )
