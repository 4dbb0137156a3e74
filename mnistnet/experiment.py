"""A whole training run, from a resolved config to files on disk; no printing.

``open_run(config)`` reserves the run folder (:mod:`mnistnet.runfolder`:
one run per folder, written whole or not at all); ``run_training(config)``
initialises, trains and scores; ``save_run`` stages model.npz, history.csv
and metrics.json, ``write_plots`` the pictures (all or none), and
``finish_run`` writes run.json and puts the folder in place. The CLI only
adds the reporting around these calls::

    with open_run(config) as folder:
        config = dataclasses.replace(config, out=folder.path)
        result = run_training(config, *load_data(config))
        paths, meta = save_run(result, folder)
        paths.update(write_plots(result, meta, folder))
        finish_run(folder, pictures="drawn")
"""

import contextlib
import datetime
import hashlib
import io
import os
import time
from dataclasses import dataclass

import numpy as np

from mnistnet import __version__, checkpoint, model
from mnistnet.datasets import class_names
from mnistnet.fileio import write_json, write_text
from mnistnet.functions import HEADS
from mnistnet.optimizers import make_optimizer
from mnistnet.pipeline import load_task_data
from mnistnet.plots import PICTURE_FILES
from mnistnet.runfolder import open_run_folder
from mnistnet.tasks import N_INPUTS, N_OUTPUTS, task_title
from mnistnet.training import check_loss, fit, score

OUTPUT_FILES = ("model.npz", "history.csv", "metrics.json")
RUN_FILE = "run.json"  # the run's id and the sha256 of each of its files; written last
RUN_FILES = (*OUTPUT_FILES, RUN_FILE, *PICTURE_FILES)  # every file a run folder may hold
PICTURES_STATES = ("drawn", "skipped", "failed", "interrupted")  # run.json "pictures"


@dataclass
class RunResult:
    config: object  # TrainConfig
    params: dict
    history: object  # training.History
    train: object  # pipeline.TaskData
    test: object
    metrics: dict
    seconds: float

    @property
    def interrupted(self):
        return self.history.interrupted


def load_data(config, mirrors=(), progress=None):
    """The training and test splits for ``config``'s task, prepared as it says.

    ``progress`` shows downloads, if any, as :func:`mnistnet.datasets.fetch` says.
    """
    common = dict(
        pixels=config.pixels,
        dtype=config.dtype,
        data_dir=config.data_dir,
        mirrors=mirrors,
        progress=progress,
    )
    train = load_task_data(
        config.dataset,
        "train",
        config.classes,
        samples_per_class=config.samples_per_class,
        **common,
    )
    test = load_task_data(config.dataset, "test", config.classes, **common)
    return train, test


def open_run(config, overwrite=False):
    """Reserve the run folder of ``config`` (a :class:`~mnistnet.runfolder.RunFolder`).

    ``config.out`` unset: the task's folder under ``runs/``, numbered if
    taken (``runs/multiclass-2``), unless ``overwrite``. Set: that folder;
    one that holds a run is replaced only with ``overwrite``.
    """
    numbered = config.out is None and not overwrite
    return open_run_folder(config.out_dir, RUN_FILES, numbered=numbered, overwrite=overwrite)


def run_training(config, train, test, on_epoch=None):
    """Train a fresh network on ``train`` as ``config`` says; score it on both splits.

    Raises :class:`~mnistnet.errors.DivergenceError` when the final weights
    score a loss that is not finite or passes ``training.DIVERGED_LOSS``, as
    every epoch's do in the loop (without a test set, the loop cannot see the
    last update's result).
    """
    params = model.init_params(
        N_INPUTS,
        config.hidden,
        N_OUTPUTS[config.task],
        method=config.init,
        seed=config.seed,
        dtype=np.dtype(config.dtype),
    )
    optimizer = make_optimizer(config.optimizer, momentum=config.momentum)
    start = time.perf_counter()
    history = fit(
        params,
        train.X,
        train.y,
        task=config.task,
        optimizer=optimizer,
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        reduction=config.reduction,
        weight_decay=config.weight_decay,
        lr_schedule=config.lr_schedule,
        augment_shift=config.augment_shift,
        rng=np.random.default_rng(config.seed),
        X_test=test.X,
        y_test=test.y,
        on_epoch=on_epoch,
    )
    seconds = time.perf_counter() - start
    metrics = {}
    for split in (train, test):
        loss, acc, _ = score(params, split.X, split.y, config.task)
        check_loss(loss, len(history.records), config.lr, f"the mean {split.split} loss")
        metrics[split.split] = {"loss": loss, "accuracy": acc, "n": len(split)}
    return RunResult(config, params, history, train, test, metrics, seconds)


def build_metadata(result, run_id):
    """The JSON metadata stored in model.npz (see :mod:`mnistnet.checkpoint`)."""
    config = result.config
    head = HEADS[config.task]
    names = class_names(config.dataset)
    return {
        "mnistnet_version": __version__,
        "run_id": run_id,
        "task": config.task,
        "classes": list(config.classes),
        "class_names": [names[c] for c in config.classes],
        "layers": [N_INPUTS, config.hidden, N_OUTPUTS[config.task]],
        "activations": ["sigmoid", head["activation"]],
        "loss": head["loss"],
        "pixels": config.pixels,
        "dtype": config.dtype,
        "config": config.to_dict(),
        "dataset": {
            "name": config.dataset,
            "files": [f.to_dict() for f in (*result.train.files, *result.test.files)],
        },
        "metrics": result.metrics,
        "epochs_trained": len(result.history.records),
        "interrupted": result.interrupted,
        "seconds": result.seconds,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def history_csv(history, run_id):
    """history.csv text: epoch, loss, train_acc, test_acc, seconds, run_id."""
    out = io.StringIO()
    out.write("epoch,loss,train_acc,test_acc,seconds,run_id\n")
    for r in history.records:
        test = "" if r.test_acc is None else f"{r.test_acc:.6f}"
        out.write(f"{r.epoch},{r.loss:.8g},{r.train_acc:.6f},{test},{r.seconds:.4f},{run_id}\n")
    return out.getvalue()


def save_run(result, folder):
    """Stage model.npz, history.csv and metrics.json in ``folder`` (a RunFolder).

    Returns ``(paths, metadata)``; ``paths`` is ``{kind: path}``, where each
    file lies once :func:`finish_run` has put the folder in place.
    """
    meta = build_metadata(result, folder.run_id)
    with folder.writing():
        checkpoint.save_model(folder.file("model.npz"), result.params, meta)
        write_text(folder.file("history.csv"), history_csv(result.history, folder.run_id))
        write_json(folder.file("metrics.json"), _metrics(result, meta))
    paths = {os.path.splitext(name)[0]: folder.final(name) for name in OUTPUT_FILES}
    return paths, meta


def _metrics(result, meta):
    return {
        "run_id": meta["run_id"],
        "task": meta["task"],
        "classes": meta["classes"],
        "dataset": result.config.dataset,
        "epochs_trained": meta["epochs_trained"],
        "interrupted": meta["interrupted"],
        "seconds": result.seconds,
        "final": result.metrics,
        "last_epoch": result.history.last.to_dict() if result.history.last else None,
    }


def write_plots(result, meta, folder):
    """Stage every picture of the run in ``folder``: loss, accuracy, examples, hidden units, ...

    All or none: if drawing fails or is interrupted, the pictures drawn so
    far are removed before the error goes on, and the run can still be
    finished without pictures.
    """
    from mnistnet import plots  # matplotlib is heavy: import it only when drawing

    config = result.config
    title = f"{task_title(config.task, [str(c) for c in config.classes])} on {config.dataset}"
    columns = {
        name: result.history.column(name) for name in ("epoch", "loss", "train_acc", "test_acc")
    }
    try:
        with folder.writing():
            written = plots.plot_history(columns, folder.staging, title)
            written += plots.plot_report(
                result.params, meta, result.test, folder.staging, train=result.train
            )
    except BaseException:
        for name in PICTURE_FILES:
            with contextlib.suppress(OSError):
                os.remove(folder.file(name))
        raise
    names = [os.path.basename(p) for p in written]
    return {os.path.splitext(name)[0]: folder.final(name) for name in names}


def finish_run(folder, pictures):
    """Write run.json, then put the run folder in place (one rename); returns its path.

    ``pictures`` says what became of them: one of :data:`PICTURES_STATES`.
    """
    if pictures not in PICTURES_STATES:
        raise ValueError(f"pictures must be one of {PICTURES_STATES}, not {pictures!r}")
    files = {}
    for name in sorted(os.listdir(folder.staging)):
        if name in RUN_FILES:
            files[name] = {"sha256": _sha256(folder.file(name)), "size": _size(folder, name)}
    record = {
        "run_id": folder.run_id,
        "mnistnet_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pictures": pictures,
        "files": files,
    }
    with folder.writing():
        write_json(folder.file(RUN_FILE), record)
    return folder.commit()


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _size(folder, name):
    return os.path.getsize(folder.file(name))

