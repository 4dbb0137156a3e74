"""A saved model scored on data (``evaluate``), or described without any data (``info``).

Scoring a model from Python, as ``mnistnet evaluate`` does::

    from mnistnet import evaluation
    from mnistnet.checkpoint import load_model

    path = "runs/binary-5-8/model.npz"
    params, meta = load_model(path)
    data = evaluation.load_data(meta, "test")  # the test images of its dataset and digits
    report = evaluation.evaluate(path, params, meta, data)
    report.accuracy, report.to_dict()          # the `evaluate --json` document

Everything needed to score a model comes from its metadata: the task, the
classes, the pixel scaling and the dtype. Only where the images are may be
chosen by the caller; see :func:`resolve_source`.
"""

import dataclasses
import hashlib
import os
from pathlib import Path

from mnistnet.errors import ConfigError, DatasetError

#: Version of the ``evaluate --json`` document; bumped when a field changes meaning.
EVALUATION_SCHEMA = "mnistnet-evaluation/1"
#: Version of the ``info --json`` document.
INFO_SCHEMA = "mnistnet-info/1"
TOP_CONFUSIONS = 5


@dataclasses.dataclass
class EvaluationReport:
    """How a model scored on one split; :meth:`to_dict` is the ``evaluate --json`` document.

    The README documents each field. ``classes`` are the original labels in
    label order; ``confusion_matrix[i][j]`` counts images of ``classes[i]``
    predicted as ``classes[j]``; ``binary`` is None for ten-class models.
    """

    model: dict  # path, sha256, format_version, mnistnet_version, layers, pixels, dtype
    task: str
    classes: list
    class_names: list
    dataset: dict  # name, split, files
    n: int
    accuracy: float
    loss: float
    confusion_matrix: list
    binary: dict | None  # negative, positive, tp, tn, fp, fn
    per_class: list
    macro_avg: dict
    top_confusions: list
    min_accuracy: float | None = None
    passed: bool | None = None  # accuracy >= min_accuracy; None without one
    plots: list | None = None  # the pictures drawn of this evaluation, if any
    tta: dict | None = None  # shift, copies: scored with test-time augmentation

    def to_dict(self):
        """The ``evaluate --json`` document (``plots`` only when pictures were drawn,
        ``tta`` only with test-time augmentation)."""
        doc = {"schema": EVALUATION_SCHEMA}
        doc.update((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
        for optional in ("plots", "tta"):
            if doc[optional] is None:
                del doc[optional]
        return doc


def evaluate(model_path, params, meta, data, min_accuracy=None, tta_shift=0):
    """Score the model ``(params, meta)`` read from ``model_path`` on ``data``.

    Parameters
    ----------
    model_path : str
        The model file (its path and sha256 go into the report).
    params, meta : the arrays and metadata from :func:`mnistnet.checkpoint.load_model`
    data : pipeline.TaskData, prepared as the model was trained (classes, pixels, dtype)
    min_accuracy : float, optional
        A threshold: ``report.passed`` says whether the accuracy reaches it.
    tta_shift : int
        > 0: test-time augmentation, each image scored by the mean probabilities
        of itself and its four copies moved by that many pixels (:mod:`mnistnet.tta`).

    Returns
    -------
    EvaluationReport
    """
    from mnistnet import metrics, parallel
    from mnistnet.model import predict
    from mnistnet.tasks import display_names
    from mnistnet.training import score

    task = meta["task"]
    tta_info = None
    threads = parallel.resolve_threads(None, len(data), params["W1"].shape[1])
    with parallel.network(threads) as net:
        if tta_shift:
            from mnistnet import tta

            loss, accuracy, P = tta.score(params, data.X, data.y, task, tta_shift, net)
            tta_info = {"shift": tta_shift, "copies": len(tta.offsets(tta_shift))}
        else:
            loss, accuracy, P = score(params, data.X, data.y, task, net=net)
    names = display_names(meta)
    classes = list(meta["classes"])
    cm = metrics.confusion_matrix(data.y, predict(P), len(classes))
    binary = None
    if task == "binary":
        binary = {"negative": classes[0], "positive": classes[1], **metrics.binary_counts(cm)}
    return EvaluationReport(
        model=_model_summary(model_path, meta),
        task=task,
        classes=classes,
        class_names=names,
        dataset={
            "name": data.dataset,
            "split": data.split,
            "files": [f.to_dict() for f in data.files],
        },
        n=len(data),
        accuracy=accuracy,
        loss=loss,
        confusion_matrix=cm.tolist(),
        binary=binary,
        per_class=metrics.per_class(cm, classes, names),
        macro_avg=metrics.macro_average(cm),
        top_confusions=[
            {"true": classes[i], "predicted": classes[j], "count": n}
            for i, j, n in metrics.top_confusions(cm, TOP_CONFUSIONS)
        ],
        min_accuracy=min_accuracy,
        passed=None if min_accuracy is None else accuracy >= min_accuracy,
        tta=tta_info,
    )


def model_info(path):
    """What a model file holds, without reading any data: the ``info --json`` document.

    Returns
    -------
    dict with ``schema``, ``path`` (absolute), ``sha256``, ``size`` (bytes),
    ``arrays`` ({name: {"shape", "dtype"}}), ``n_params`` and ``metadata``
    (exactly as stored).
    """
    from mnistnet.checkpoint import load_model

    params, meta = load_model(path)
    return {
        "schema": INFO_SCHEMA,
        "path": os.path.abspath(path),
        "sha256": file_sha256(path),
        "size": os.path.getsize(path),
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in params.items()},
        "n_params": int(sum(v.size for v in params.values())),
        "metadata": meta,
    }


# --- which data to score on ------------------------------------------------------------


def load_data(meta, split="test", dataset=None, data_dir=None, mirrors=(), progress=None):
    """The images of ``split`` to score the model on, prepared as it was trained.

    ``dataset`` and ``data_dir`` default as :func:`resolve_source` says;
    ``mirrors`` and ``progress`` (downloads, if any, as :func:`mnistnet.datasets.fetch`
    says) are passed to :func:`mnistnet.datasets.load_split`.

    Returns
    -------
    pipeline.TaskData
        The images of the model's classes, with its pixel scaling and dtype.
    """
    from mnistnet.pipeline import load_task_data

    dataset, data_dir = resolve_source(meta, split, dataset, data_dir)
    return load_task_data(
        dataset,
        split,
        meta["classes"],
        pixels=meta["pixels"],
        dtype=meta["dtype"],
        data_dir=data_dir,
        mirrors=mirrors,
        progress=progress,
    )


def recorded_dataset(meta):
    """The name of the dataset the model was trained on, or None when it records none."""
    dataset = meta.get("dataset")
    name = dataset.get("name") if isinstance(dataset, dict) else None
    return name if isinstance(name, str) and name else None


def resolve_source(meta, split, dataset=None, data_dir=None):
    """The dataset and data folder to score the model on: ``(dataset, data_dir)``.

    ``dataset`` defaults to the one the model records. Only then does
    ``data_dir`` default to the folder the model was trained from, and only
    when that folder exists and holds the split's files: a model file never
    decides where anything is created or downloaded. Otherwise ``data_dir``
    stays None, the usual lookup (``$MNISTNET_DATA_DIR``, the user cache).

    Raises
    ------
    ConfigError
        ``setting="dataset"``: no dataset given and none recorded;
        ``setting="data_dir"``: the ``idx`` dataset without a folder.
    """
    if dataset is None:
        dataset = recorded_dataset(meta)
        if dataset is None:
            raise ConfigError(
                "the model does not record its dataset; name the dataset to score on",
                setting="dataset",
            )
        if data_dir is None:
            data_dir = _recorded_data_dir(meta, dataset, split)
    if dataset == "idx" and data_dir is None:
        raise ConfigError(
            "the idx dataset needs a data directory (a folder with the four IDX files)",
            setting="data_dir",
        )
    return dataset, data_dir


def _recorded_data_dir(meta, dataset, split):
    """The training run's data folder, if it still holds ``split``'s files; else None."""
    config = meta.get("config")
    folder = config.get("data_dir") if isinstance(config, dict) else None
    if isinstance(folder, str) and folder and holds_split(dataset, split, folder):
        return folder
    return None


def holds_split(dataset, split, folder):
    """True when ``folder`` holds both files of ``split`` of ``dataset`` (gzipped or plain)."""
    from mnistnet.datasets import get_spec

    try:
        spec = get_spec(dataset)
        split_spec = spec.split(split)
    except DatasetError:
        return False
    directory = Path(folder).expanduser()
    return all(
        any((directory / name).is_file() for name in spec.file(role).local_names())
        for role in (split_spec.images, split_spec.labels)
    )


# --- helpers ----------------------------------------------------------------------------


def file_sha256(path):
    """sha256 of the file at ``path``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _model_summary(path, meta):
    return {
        "path": os.path.abspath(path),
        "sha256": file_sha256(path),
        "format_version": meta["format_version"],
        "mnistnet_version": meta.get("mnistnet_version"),
        "layers": meta["layers"],
        "pixels": meta["pixels"],
        "dtype": meta["dtype"],
    }
