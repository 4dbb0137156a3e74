"""The training loop: returns a :class:`History` and never prints.

:func:`fit` reads top to bottom, as nanoGPT's ``train.py``: for each batch
forward, loss, backward, update (:func:`_step`); at the end of the epoch
check, score the validation and test sets, apply the stopping rules
(:mod:`mnistnet.stopping`), take the state a resumed run would start from
(:mod:`mnistnet.trainstate`) and hand an :class:`EpochRecord` to
``on_epoch`` (the CLI's reporter).

Speed (all of it is here and in :class:`mnistnet.model.Workspace`):
inputs are converted to the training dtype once, before the loop; every
array a batch needs is allocated once and reused; mini-batches are gathered
with ``np.take(..., out=buffer)`` from a shuffled index array (sklearn's
"shuffle the sample indices instead of X and y"), never by copying the
whole dataset (:class:`Batches`); the full batch (the notebook's ``gd``)
uses ``X`` as is.
"""

import functools
import math
import time

import numpy as np

from mnistnet import model
from mnistnet.augment import WarpWorkspace
from mnistnet.averaging import ExponentialAverage
from mnistnet.data import shift_images, targets
from mnistnet.dropout import Dropout
from mnistnet.errors import DivergenceError
from mnistnet.history import EpochRecord, History
from mnistnet.optimizers import scheduled_lr, set_state
from mnistnet.stopping import StoppingRules
from mnistnet.trainstate import TrainingState

__all__ = ["Batches", "EpochRecord", "History", "check_loss", "fit", "score"]

# A mean loss above this many nats per image means training has blown up:
# a net that only guesses scores about ln(10) = 2.3.
DIVERGED_LOSS = 1000.0


def score(params, X, y, task, batch_size=4096, ws=None, net=model):
    """Mean loss and accuracy of ``params`` on ``X`` with labels ``y``.

    ``ws``, a :class:`~mnistnet.model.Workspace` for ``batch_size`` samples,
    is reused when given (the training loop scores the test set every epoch).
    ``net`` computes the forward pass: :mod:`mnistnet.model`, or a
    :class:`mnistnet.parallel.SplitNetwork` for more threads.

    Returns
    -------
    loss : float
        Not finite (and no warning) when the weights are so large that the
        logits overflow: the caller decides whether that is divergence
        (:func:`check_loss`).
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
            P, cache = net.forward(params, X[start:stop], task, ws)
            total_loss += float(model.loss(cache, Y, task).sum())
            correct += int((model.predict(P) == y[start:stop]).sum())
            P_all[start:stop] = P
    return total_loss / max(n, 1), correct / max(n, 1), P_all


class Batches:
    """One epoch's batches ``(X, Y, y)`` each time it is iterated.

    ``Y`` are the targets of ``y`` for ``n_out`` outputs, made once here
    (smoothed by ``label_smoothing``, :func:`mnistnet.data.targets`).
    The full batch (``batch_size`` None or at least ``len(X)``) is the
    arrays themselves. Mini-batches follow a fresh permutation drawn from
    ``rng`` at the start of each epoch and are gathered into buffers
    allocated here, once. With ``augment_shift``, every batch's images are
    shifted (:func:`mnistnet.data.shift_images`, shifts drawn from ``rng``)
    into a buffer of their own; with an active ``distortion``
    (:class:`mnistnet.augment.Distortion`), they are warped instead, the
    shifts folded into the warp. The arrays yielded are overwritten by the
    next batch.
    """

    def __init__(
        self,
        X,
        y,
        n_out,
        batch_size=None,
        augment_shift=0,
        rng=None,
        distortion=None,
        label_smoothing=0.0,
    ):
        n = len(X)
        Y = targets(y, n_out, X.dtype, label_smoothing)
        self.X, self.Y, self.y = X, Y, y
        self.full = batch_size is None or batch_size >= n
        self.size = n if self.full else batch_size
        self.count = math.ceil(n / self.size) if n else 0  # batches per epoch
        self.augment_shift = augment_shift
        self.distortion = distortion if distortion is not None and distortion.active else None
        self._warp = WarpWorkspace(self.size, X.dtype) if self.distortion else None
        self.rng = np.random.default_rng(0) if rng is None else rng
        size = 0 if self.full else self.size
        self._X = np.empty((size, X.shape[1]), X.dtype)
        self._Y = np.empty((size, Y.shape[1]), Y.dtype)
        self._y = np.empty(size, y.dtype)
        augmented = augment_shift or self.distortion
        self._shifted = np.empty((self.size if augmented else 0, X.shape[1]), X.dtype)

    def __iter__(self):
        if self.full:
            yield self._shift(self.X), self.Y, self.y
            return
        order = self.rng.permutation(len(self.X))
        for start in range(0, len(order), self.size):
            idx = order[start : start + self.size]
            m = len(idx)
            # mode="clip": with the default "raise", take() writes to a hidden
            # temporary and copies it into out (numpy docs); the indices are a
            # permutation, always in range.
            X = np.take(self.X, idx, axis=0, out=self._X[:m], mode="clip")
            Y = np.take(self.Y, idx, axis=0, out=self._Y[:m], mode="clip")
            y = np.take(self.y, idx, out=self._y[:m], mode="clip")
            yield self._shift(X), Y, y

    def _shift(self, X):
        out = self._shifted[: len(X)]
        if self.distortion is not None:
            return self.distortion.apply(X, self.rng, self.augment_shift, out, self._warp)
        if not self.augment_shift:
            return X
        return shift_images(X, self.augment_shift, self.rng, out=out)


@np.errstate(over="ignore", invalid="ignore")  # overflow shows up as divergence below
def fit(
    params,
    X,
    y,
    *,
    task,
    optimizer,
    epochs,
    lr,
    batch_size=None,
    reduction="sum",
    weight_decay=0.0,
    lr_schedule="constant",
    warmup_epochs=0.0,
    augment_shift=0,
    distortion=None,
    label_smoothing=0.0,
    dropout=0.0,
    ema=0.0,
    rng=None,
    X_val=None,
    y_val=None,
    X_test=None,
    y_test=None,
    early_stopping=0,
    target_accuracy=None,
    resume=None,
    on_epoch=None,
    net=model,
):
    """Train ``params`` (:func:`mnistnet.model.init_params`) in place; return a :class:`History`.

    ``X`` (n_samples, n_in) has the parameters' dtype, ``y`` labels 0..n_out-1;
    ``lr`` is the base rate, step by step through ``lr_schedule`` and
    ``warmup_epochs`` (:func:`mnistnet.optimizers.scheduled_lr`); ``batch_size``
    None: one full-batch step per epoch. ``augment_shift``, ``distortion`` and
    ``label_smoothing``: see :class:`Batches`. ``dropout`` > 0: every step drops
    each hidden unit of each image with that probability
    (:mod:`mnistnet.dropout`; scoring uses them all). ``ema`` > 0: the model is the
    exponential moving average of the weights, updated after every step with
    that decay (:class:`mnistnet.averaging.ExponentialAverage`); it is what is
    scored, what early stopping keeps and what ``params`` receive (``resume``
    does not carry it: a run with ``ema`` cannot be resumed). ``X_val``,
    ``y_val`` (never shown to the optimizer) and ``X_test``, ``y_test`` are
    scored after every epoch.

    ``early_stopping`` (epochs of patience, 0: off) stops when the validation
    loss has not fallen for that many epochs; with it, ``params`` end with the
    best epoch's weights, however the run ends. ``target_accuracy`` stops at
    the first epoch whose validation accuracy (the test accuracy without a
    validation set) reaches it. ``resume``, a :class:`~mnistnet.trainstate.Resume`,
    continues a run from its state: the result is the one an uninterrupted
    run gives, bit for bit. After Ctrl-C, ``history.interrupted`` is True
    and ``params`` hold the last finished epoch's weights (or the best one's).
    ``net`` computes the passes: :mod:`mnistnet.model` (one thread), or what
    :func:`mnistnet.parallel.network` gives for more. Raises
    :class:`DivergenceError` (see :func:`check_loss`).
    """
    dtype = params["W1"].dtype
    if X.dtype != dtype:
        raise ValueError(f"X has dtype {X.dtype}, the parameters {dtype}")
    rng = np.random.default_rng(0) if rng is None else rng
    if ema and resume is not None:
        raise ValueError("a run with a moving average (ema) cannot be resumed")
    theta, views = model.pack(params)  # one vector: an update is a few whole-vector operations
    history, rules = _start(theta, optimizer, rng, resume, early_stopping, target_accuracy, X_val)
    # the model: the weights, or their moving average (a vector of its own)
    average = ExponentialAverage(*model.pack(views), ema) if ema else None
    model_theta, model_views = (average.theta, average.views) if average else (theta, views)
    batches = Batches(
        X, y, params["W2"].shape[1], batch_size, augment_shift, rng, distortion, label_smoothing
    )
    ws = model.Workspace(views, batches.size)
    hidden = params["W1"].shape[1]
    dropper = Dropout(dropout, rng, batches.size, hidden, dtype) if dropout else None
    step = functools.partial(
        _step, net, views, theta, ws, optimizer, task, reduction, weight_decay, dropper
    )
    scorers = (
        _scorer(net, model_views, X_val, y_val, task),
        _scorer(net, model_views, X_test, y_test, task),
    )
    completed = model_theta.copy() if average else None  # the last finished epoch's average
    start_time = time.perf_counter() - (history.last.seconds if history.last else 0.0)
    end_of_epoch = functools.partial(_end_of_epoch, theta, scorers, len(X), lr, start_time)
    schedule = functools.partial(scheduled_lr, lr, schedule=lr_schedule, warmup=warmup_epochs)
    try:
        for epoch in range(history.state.epoch + 1, epochs + 1):
            # forward, backward, update, batch by batch
            total_loss, correct, step_lr = _train_epoch(
                batches, step, schedule, epoch, epochs, lr, theta, average
            )
            # end of epoch: checks, scores, stopping rules, the state to resume from
            record = end_of_epoch(epoch, step_lr, total_loss, correct)
            reason = rules.after_epoch(record, model_theta)
            history.records.append(record)  # then the state: Ctrl-C between cuts the record
            if completed is not None:
                np.copyto(completed, model_theta)
            history.state = TrainingState.take(epoch, theta, optimizer, rng)
            if on_epoch is not None:
                on_epoch(record)
            if reason is not None:
                history.stop_reason = reason
                break
        else:
            history.stop_reason = "epochs"
    except KeyboardInterrupt:  # a saved model must match its history
        history.interrupted, history.stop_reason = True, "interrupted"
    finally:
        _finish(history, rules, theta, views, params, completed)
    return history


def _train_epoch(batches, step, schedule, epoch, epochs, lr, theta, average):
    """One epoch of steps; returns the summed loss, the hits and the last step's rate.

    Each step's rate is the schedule's at the middle of that step. The moving
    ``average`` (if any) follows the weights after every step.
    """
    total_loss, correct = 0.0, 0
    for i, (X_batch, Y_batch, y_batch) in enumerate(batches):
        step_lr = schedule(epoch - 1 + (i + 0.5) / batches.count, epochs)
        loss, hits = step(X_batch, Y_batch, y_batch, step_lr)
        if not math.isfinite(loss):
            raise _diverged(epoch, lr)
        if average is not None:
            average.update(theta)
        total_loss += loss
        correct += hits
    return total_loss, correct, step_lr


def _start(theta, optimizer, rng, resume, patience, target, X_val):
    """The history and stopping rules a run starts with; a resumed run's state put in place."""
    if patience and X_val is None:
        raise ValueError("early stopping needs a validation set (X_val)")
    metric = "test_acc" if X_val is None else "val_acc"
    if resume is None:
        history = History(state=TrainingState.take(0, theta, optimizer, rng))
        return history, StoppingRules(patience, target, metric)
    state = resume.state
    np.copyto(theta, state.theta)
    set_state(optimizer, state.optimizer)
    rng.bit_generator.state = state.rng
    history = History(records=list(resume.records), state=state)
    reached = None
    if target is not None:
        hits = [r.epoch for r in resume.records if (getattr(r, metric) or 0.0) >= target]
        reached = hits[0] if hits else None
    best = resume.best if patience else None
    return history, StoppingRules(patience, target, metric, best=best, reached=reached)


def _finish(history, rules, theta, views, params, average=None):
    """Put the weights to keep into ``params``: the best epoch's, else the last finished one's.

    After Ctrl-C the history is cut back to the last epoch whose state was
    taken, so the weights, the history and the state always agree.
    ``average``: the moving average at the last finished epoch, the model's
    weights when there is one.
    """
    state = history.state
    del history.records[state.epoch :]
    np.copyto(theta, state.theta if average is None else average)
    history.weights_epoch = state.epoch or None
    if rules.best_theta is not None and rules.best_epoch <= state.epoch:
        np.copyto(theta, rules.best_theta)
        history.weights_epoch = rules.best_epoch
    if rules.target_epoch is not None and rules.target_epoch <= state.epoch:
        history.target_epoch = rules.target_epoch
    for name, value in views.items():
        params[name][...] = value


def _step(net, params, theta, ws, optimizer, task, reduction, weight_decay, dropper, X, Y, y, lr):
    """One step on a batch: forward, loss, backward, update.

    ``net`` is :mod:`mnistnet.model` or a :class:`~mnistnet.parallel.SplitNetwork`;
    ``params`` are named views of the flat vector ``theta``; ``dropper``, a
    :class:`~mnistnet.dropout.Dropout` or None, draws the step's mask. Returns the
    batch's summed loss and its number of right predictions; a loss that is
    not finite returns before the update (the caller stops there).
    """
    drop = None if dropper is None else dropper.draw(len(X))
    P, cache = net.forward(params, X, task, ws, drop)
    loss = float(model.loss(cache, Y, task).sum())
    if not math.isfinite(loss):
        return loss, 0
    # lr * gradient, for the optimizers that step on it, comes from lr folded
    # into backward's (batch, outputs) output delta: no pass over the weights.
    scale = lr if optimizer.grad_includes_lr else 1.0
    net.backward(params, cache, Y, reduction, weight_decay, scale)
    optimizer.update(theta, ws.grad_vector, lr)
    return loss, int(np.count_nonzero(model.predict(P) == y))


def _scorer(net, params, X, y, task):
    """``score`` on one split, with a workspace made once; None without the split."""
    if X is None or not len(X):
        return None
    ws = model.Workspace(params, min(4096, len(X)))
    return lambda: score(params, X, y, task, ws=ws, net=net)


def _end_of_epoch(theta, scorers, n, lr, start_time, epoch, epoch_lr, total_loss, correct):
    """Check a finished epoch, score the validation and test sets; return the epoch's record.

    ``total_loss`` and ``correct`` are the sums over the epoch's ``n``
    samples. The training loss judges the weights the epoch started from;
    the validation and test losses, when there are such sets, the weights
    its updates left, so even the last epoch's update is checked here.
    """
    loss = total_loss / n
    if not np.isfinite(theta).all():
        raise _diverged(epoch, lr)
    check_loss(loss, epoch, lr)
    scores = []
    for scorer, split in zip(scorers, ("validation", "test"), strict=True):
        split_loss = split_acc = None
        if scorer is not None:
            split_loss, split_acc, _ = scorer()
            check_loss(split_loss, epoch, lr, f"the mean {split} loss")
        scores += [split_loss, split_acc]
    seconds = time.perf_counter() - start_time
    return EpochRecord(epoch, loss, correct / n, *scores, seconds, epoch_lr)


def check_loss(loss, epoch, lr, what="the mean loss"):
    """Raise :class:`DivergenceError` unless ``loss`` (mean per image) is finite
    and at most :data:`DIVERGED_LOSS`.

    ``epoch`` (1-based) and ``lr`` (the base learning rate) go into the
    message; ``what`` names the loss there.
    """
    if not math.isfinite(loss):
        raise _diverged(epoch, lr)
    if loss > DIVERGED_LOSS:
        raise _diverged(epoch, lr, f"{what} reached {loss:.3g} per image")


def _diverged(epoch, lr, why="the loss or the weights are no longer finite numbers"):
    return DivergenceError(
        f"training diverged at epoch {epoch}: {why}. Try a smaller learning rate "
        f"(now {lr:g}): the notebook's recipes (optimizer gd, reduction sum, pixels raw) "
        "train at 1e-05 (binary) and 1.7e-05 (ten classes); with reduction mean and "
        "pixels unit, about 0.1 suits sgd and momentum and 0.001 suits adam.",
        setting="lr",
    )
