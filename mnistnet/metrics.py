"""Scores of predictions: accuracy, confusion matrix, per-class precision/recall/F1.

Pure functions of integer labels ``0..K-1`` (the model's labels, not the
original digits: for a binary 5-vs-8 model, 5 is label 0 and 8 is label 1).
The confusion matrix has true labels as rows and predicted labels as
columns, as in sklearn's ``confusion_matrix``. Every other score here is
computed from it, so they always agree with each other.

No division warnings: a class that is never predicted has precision 0, a
class with no samples has recall 0, and F1 is 0 when precision + recall is 0
(sklearn's ``zero_division=0``).
"""

import numpy as np


def accuracy(y_true, y_pred):
    """Fraction of predictions equal to the true labels.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples,), int

    Returns
    -------
    float in [0, 1]
    """
    y_true, y_pred = _labels(y_true, y_pred)
    if len(y_true) == 0:
        raise ValueError("accuracy of zero samples is undefined")
    return float(np.count_nonzero(y_true == y_pred)) / len(y_true)


def confusion_matrix(y_true, y_pred, n_classes):
    """Counts of (true, predicted) pairs.

    Returns
    -------
    ndarray of shape (n_classes, n_classes), int64
        ``cm[i, j]`` is the number of samples of class ``i`` predicted as ``j``.
    """
    y_true, y_pred = _labels(y_true, y_pred)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} holds labels outside 0..{n_classes - 1}")
    # One bincount over the pair codes instead of a loop over samples.
    codes = y_true.astype(np.int64) * n_classes + y_pred
    counts = np.bincount(codes, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def precision_recall_f1(cm):
    """Per-class precision, recall, F1 and support from a confusion matrix.

    Returns
    -------
    precision, recall, f1 : ndarray of shape (n_classes,), float
    support : ndarray of shape (n_classes,), int (true samples per class)
    """
    cm = np.asarray(cm)
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return precision, recall, f1, support


def per_class(cm, classes, names=None):
    """One dict per class: ``class``, ``name``, ``precision``, ``recall``, ``f1``, ``support``.

    ``classes`` are the original labels in label order (``[5, 8]``);
    ``names`` their display names (default: ``str`` of each class).
    """
    names = [str(c) for c in classes] if names is None else list(names)
    precision, recall, f1, support = precision_recall_f1(cm)
    return [
        {
            "class": int(c),
            "name": name,
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": int(s),
        }
        for c, name, p, r, f, s in zip(classes, names, precision, recall, f1, support, strict=True)
    ]


def macro_average(cm):
    """Unweighted mean of the per-class precision, recall and F1."""
    precision, recall, f1, _ = precision_recall_f1(cm)
    return {
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
    }


def top_confusions(cm, k=5):
    """The ``k`` most frequent mistakes, most frequent first.

    Returns
    -------
    list of (true_label, predicted_label, count), count > 0, ties broken by
    true then predicted label so the order is stable.
    """
    cm = np.asarray(cm)
    off = [(int(i), int(j), int(cm[i, j])) for i, j in zip(*np.nonzero(cm), strict=True) if i != j]
    off.sort(key=lambda t: (-t[2], t[0], t[1]))
    return off[:k]


def binary_counts(cm):
    """TP, TN, FP, FN of a 2x2 confusion matrix; the positive class is label 1.

    For a 5-vs-8 model (5 -> label 0, 8 -> label 1) a true positive is an 8
    predicted as 8, a false positive a 5 predicted as 8.
    """
    cm = np.asarray(cm)
    if cm.shape != (2, 2):
        raise ValueError(f"binary counts need a 2x2 confusion matrix, got {cm.shape}")
    return {
        "tp": int(cm[1, 1]),
        "tn": int(cm[0, 0]),
        "fp": int(cm[0, 1]),
        "fn": int(cm[1, 0]),
    }


def _labels(y_true, y_pred):
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {len(y_true)} labels, y_pred {len(y_pred)}")
    return y_true.astype(np.intp, copy=False), y_pred.astype(np.intp, copy=False)


def _safe_divide(num, den):
    """``num / den`` with 0 wherever ``den`` is 0, without a warning."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out
