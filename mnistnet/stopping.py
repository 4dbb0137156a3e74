"""When training stops before its last epoch: early stopping and a target accuracy.

:class:`StoppingRules` looks at each finished epoch's record and says whether
to stop (:meth:`StoppingRules.after_epoch`). With early stopping it keeps a
copy of the best weights so far (the lowest validation loss; the first such
epoch on ties), which the training loop puts back at the end: Keras's
``EarlyStopping(restore_best_weights=True)``, applied however the run ends.
"""

import math

import numpy as np

REASONS = ("epochs", "early_stopping", "target_accuracy", "interrupted")
TARGET_METRICS = {"val_acc": "validation accuracy", "test_acc": "test accuracy"}


class StoppingRules:
    """Early stopping after ``patience`` epochs without a lower validation loss
    (0: never), and stopping at the first epoch whose ``target_metric``
    (``"val_acc"`` or ``"test_acc"``) reaches ``target`` (None: never).

    For a resumed run, ``best`` is ``(epoch, val_loss, theta)``: the best
    epoch so far and a copy of its weights (None: none yet); ``reached`` the
    epoch that reached the target before (the run then goes on: the target
    stops a run once).

    Attributes
    ----------
    best_epoch : int or None
    best_theta : ndarray or None, a copy of the best epoch's weights
    target_epoch : int or None, the first epoch that reached the target
    """

    def __init__(self, patience=0, target=None, target_metric="val_acc", best=None, reached=None):
        if target is not None and target_metric not in TARGET_METRICS:
            raise ValueError(f"unknown target metric {target_metric!r}")
        self.patience = patience
        self.target = target
        self.target_metric = target_metric
        self.best_epoch, self.best_loss, self.best_theta = best or (None, math.inf, None)
        self.target_epoch = reached

    def after_epoch(self, record, theta):
        """Take in an epoch's ``record`` and weights ``theta``; the reason to stop, or None."""
        reason = None
        if self.patience:
            if record.val_loss is None:
                raise ValueError("early stopping needs a validation split")
            if record.val_loss < self.best_loss:
                self.best_epoch, self.best_loss = record.epoch, record.val_loss
                if self.best_theta is None:
                    self.best_theta = theta.copy()
                else:
                    np.copyto(self.best_theta, theta)
            elif record.epoch - self.best_epoch >= self.patience:
                reason = "early_stopping"
        if self.target is not None:
            value = getattr(record, self.target_metric)
            if value is not None and value >= self.target and self.target_epoch is None:
                self.target_epoch = record.epoch
                reason = "target_accuracy"
        return reason
