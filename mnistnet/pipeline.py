"""From a dataset name and a task to the arrays a model trains on or is scored on.

Training and ``evaluate`` both come through here, so a saved model is
always scored on data prepared exactly as it was trained on (same classes,
same label mapping, same pixel scaling and dtype).
"""

from dataclasses import dataclass

import numpy as np

from mnistnet.data import prepare_inputs, select_indices, validation_split
from mnistnet.datasets import load_split
from mnistnet.errors import DatasetError


@dataclass(frozen=True, eq=False)
class TaskData:
    """One split prepared for a task.

    images : ndarray (n, 28, 28) uint8, the selected images (for pictures;
        made on demand from the split's images and ``index``)
    index : ndarray (n,) positions of the selected images in the split
    y : ndarray (n,) intp, labels 0..K-1 in the order of ``classes``
    X : ndarray (n, 784) of the model's dtype, scaled inputs
    classes : tuple of original labels; ``classes[y[i]]`` is image i's label
    files : tuple of datasets.FileInfo the split came from
    """

    dataset: str
    split: str
    source_images: np.ndarray
    index: np.ndarray
    y: np.ndarray
    X: np.ndarray
    classes: tuple
    files: tuple

    @property
    def images(self):
        return self.source_images[self.index]

    def __len__(self):
        return len(self.y)


def load_task_data(
    dataset,
    split,
    classes,
    *,
    samples_per_class=None,
    pixels="raw",
    dtype="float64",
    data_dir=None,
    mirrors=(),
    progress=None,
):
    """Load ``split`` of ``dataset`` and keep ``classes`` (the first N of each, if given).

    ``progress`` shows downloads, if any, as :func:`mnistnet.datasets.fetch` says.
    """
    raw = load_split(dataset, split, data_dir=data_dir, mirrors=mirrors, progress=progress)
    index, y = _select(raw, dataset, split, classes, samples_per_class)
    return _task_data(raw, dataset, split, index, y, classes, pixels, dtype)


def load_training_data(
    dataset,
    classes,
    *,
    samples_per_class=None,
    validation=0,
    pixels="raw",
    dtype="float64",
    data_dir=None,
    mirrors=(),
    progress=None,
):
    """The training split of ``dataset`` for ``classes``, and the validation part held out of it.

    ``validation`` (a number of images, or a fraction) is taken from the
    selected training images by :func:`mnistnet.data.validation_split`:
    the last images of each class. Both parts are prepared from the raw
    images directly, so the selection is never held twice as floats.

    Returns
    -------
    train : TaskData (split ``"train"``), what the optimizer sees
    validation : TaskData (split ``"validation"``), or None when ``validation`` is 0
    """
    raw = load_split(dataset, "train", data_dir=data_dir, mirrors=mirrors, progress=progress)
    index, y = _select(raw, dataset, "train", classes, samples_per_class)
    if not validation:
        return _task_data(raw, dataset, "train", index, y, classes, pixels, dtype), None
    try:
        keep, held, _ = validation_split(y, len(classes), validation)
    except ValueError as exc:
        raise DatasetError(f"the validation split: {exc}", setting="validation") from None
    train = _task_data(raw, dataset, "train", index[keep], y[keep], classes, pixels, dtype)
    val = _task_data(raw, dataset, "validation", index[held], y[held], classes, pixels, dtype)
    return train, val


def _select(raw, dataset, split, classes, samples_per_class):
    index, y = select_indices(raw.labels, classes, samples_per_class)
    counts = np.bincount(y, minlength=len(classes))
    # Training needs every class; scoring needs some images (a test split may
    # lack a class, e.g. a user's own small set).
    missing = [c for c, k in zip(classes, counts, strict=True) if k == 0]
    if missing and (split == "train" or len(y) == 0):
        wanted = ", ".join(str(c) for c in missing)
        raise DatasetError(f"the {split} split of {dataset} holds no images of {wanted}")
    return index, y


def _task_data(raw, dataset, split, index, y, classes, pixels, dtype):
    X = prepare_inputs(raw.images, pixels, np.dtype(dtype).type, index=index)
    return TaskData(dataset, split, raw.images, index, y, X, tuple(classes), tuple(raw.files))
