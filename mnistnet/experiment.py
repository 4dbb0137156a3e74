"""A whole training run, from a resolved config to files on disk; no printing.

``load_data(config)`` gives the training, validation and test splits;
``run_training(config, train, test)`` initialises (or resumes), trains and scores;
``save_run(result)`` writes the run folder by the rule of
:mod:`mnistnet.runfolder` (one run per folder, written whole or not at
all, every file with the same run id)::

    config = TrainConfig(task="multiclass", dataset="mnist-sample", out="runs/a")
    train, validation, test = load_data(config)
    result = run_training(config, train, test, validation=validation)
    paths, meta = save_run(result, plots=True)       # runs/a/model.npz, ...

The command line takes the steps of ``save_run`` one by one, to reserve
the folder before training and to say what an interrupt kept:
``open_run(config)`` reserves the folder, ``stage_run`` writes the files
(pictures too) into its hidden staging folder, ``finish_run`` writes
run.json and moves them all into place.
"""

import contextlib
import dataclasses
import datetime
import os
import time
from typing import NamedTuple

import numpy as np

from mnistnet import __version__, checkpoint, model, parallel, trainstate
from mnistnet.augment import Distortion
from mnistnet.datasets import class_names
from mnistnet.evaluation import file_sha256
from mnistnet.fileio import write_json, write_text
from mnistnet.functions import HEADS
from mnistnet.history import csv_text
from mnistnet.optimizers import make_optimizer
from mnistnet.pipeline import load_task_data, load_training_data
from mnistnet.plots import PICTURE_FILES
from mnistnet.runfolder import open_run_folder, run_folder_receiving
from mnistnet.tasks import N_INPUTS, N_OUTPUTS, task_title
from mnistnet.training import check_loss, fit, score

OUTPUT_FILES = ("model.npz", "history.csv", "metrics.json")
RUN_FILE = "run.json"  # the run's id and the sha256 of each of its files; written last
RUN_FILES = (*OUTPUT_FILES, RUN_FILE, *PICTURE_FILES)  # every file a run folder may hold
RUN_MARKS = ("model.npz", RUN_FILE)  # a folder of RUN_FILES holding one of these is a run
PICTURES_STATES = ("drawn", "skipped", "failed", "interrupted")  # run.json "pictures"
HISTORY_PLOTTED = ("epoch", "loss", "train_acc", "val_loss", "val_acc", "test_acc")
VALIDATION_RULE = (
    "the last per_class[c] of the selected training images of class c, in file order; "
    "per_class[c] is class c's share of n, rounded down, plus one for the largest remainders"
)


@dataclasses.dataclass
class RunResult:
    config: object  # TrainConfig
    params: dict
    history: object  # training.History
    train: object  # pipeline.TaskData
    test: object
    metrics: dict
    seconds: float
    validation: object = None  # pipeline.TaskData, or None
    resumed_from: object = None  # resume.SavedRun, or None
    threads: int = 1  # the threads it used (--threads auto resolved)

    @property
    def interrupted(self):
        return self.history.interrupted

    def release_training_inputs(self):
        """Let the training split's arrays go, once training is over.

        A ten-class run's pictures use the test split only; the 60,000
        training images in float32 are 188 MB (and 47 MB as bytes), which
        would otherwise stay alive, under matplotlib, through the drawing.
        A binary run keeps them: examples-train.png shows its training digits.
        """
        if self.config.task == "multiclass":
            self.train = dataclasses.replace(self.train, X=None, source_images=None)

    @property
    def target_metric(self):
        """``"val_acc"`` or ``"test_acc"``: what ``target_accuracy`` watched (None: no target)."""
        if self.config.target_accuracy is None:
            return None
        return "test_acc" if self.validation is None else "val_acc"


class Splits(NamedTuple):
    train: object  # pipeline.TaskData: what the optimizer sees
    validation: object  # pipeline.TaskData held out of the training split, or None
    test: object


def load_data(config, mirrors=(), progress=None):
    """The training, validation and test splits for ``config``'s task, as :class:`Splits`.

    ``progress`` shows downloads, if any, as :func:`mnistnet.datasets.fetch` says.
    """
    common = dict(
        pixels=config.pixels,
        dtype=config.dtype,
        data_dir=config.data_dir,
        mirrors=mirrors,
        progress=progress,
    )
    train, validation = load_training_data(
        config.dataset,
        config.classes,
        samples_per_class=config.samples_per_class,
        validation=config.validation,
        **common,
    )
    test = load_task_data(config.dataset, "test", config.classes, **common)
    return Splits(train, validation, test)


def open_run(config, overwrite=False):
    """Reserve the run folder of ``config`` (a :class:`~mnistnet.runfolder.RunFolder`).

    ``config.out`` unset: the task's folder under ``runs/``, numbered if
    taken (``runs/multiclass-2``), unless ``overwrite``. Set: that folder;
    one that holds a run is replaced only with ``overwrite``.
    """
    numbered = config.out is None and not overwrite
    return open_run_folder(
        config.out_dir, RUN_FILES, numbered=numbered, overwrite=overwrite, last=RUN_FILE
    )


def training_run_receiving(path):
    """The training run folder that files written into folder ``path`` would land in, or None.

    ``path`` itself, or the nearest existing folder above it, when that
    holds a run (nothing but :data:`RUN_FILES`, the model or run.json among
    them) or a run is being written there; see
    :func:`mnistnet.runfolder.run_folder_receiving`.
    """
    return run_folder_receiving(path, RUN_FILES, RUN_MARKS)


def initial_params(config):
    """The network ``config`` starts from: ``init`` drawn with ``seed``, in ``dtype``."""
    return model.init_params(
        N_INPUTS,
        config.hidden,
        N_OUTPUTS[config.task],
        method=config.init,
        seed=config.seed,
        dtype=np.dtype(config.dtype),
    )


def run_training(config, train, test, on_epoch=None, *, validation=None, resume=None):
    """Train a network on ``train`` as ``config`` says; score it on every split.

    A fresh network, or with ``resume`` (a :class:`mnistnet.resume.SavedRun`)
    the saved run, continued from its state. ``validation`` is scored every
    epoch and watched by early stopping and the target accuracy.

    Raises :class:`~mnistnet.errors.DivergenceError` when the final weights
    score a loss that is not finite or passes ``training.DIVERGED_LOSS``, as
    every epoch's do in the loop (without a test set, the loop cannot see the
    last update's result).
    """
    if resume is None:
        params = initial_params(config)
    else:
        params = {name: value.copy() for name, value in resume.params.items()}
    optimizer = make_optimizer(config.optimizer, momentum=config.momentum)
    threads = parallel.resolve_threads(
        config.threads, config.batch_size or len(train), config.hidden
    )
    splits = (train, validation, test)
    with parallel.network(threads) as net:
        history, metrics, seconds = _train_and_score(
            config, params, optimizer, splits, on_epoch, resume, net
        )
    return RunResult(
        config, params, history, train, test, metrics, seconds, validation, resume, threads
    )


def _train_and_score(config, params, optimizer, splits, on_epoch, resume, net):
    """``fit``, then the final scores of every split; also the seconds ``fit`` took."""
    train, validation, test = splits
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
        warmup_epochs=config.warmup_epochs,
        augment_shift=config.augment_shift,
        distortion=distortion(config),
        label_smoothing=config.label_smoothing,
        dropout=config.dropout,
        ema=config.ema,
        rng=np.random.default_rng(config.seed),
        X_val=None if validation is None else validation.X,
        y_val=None if validation is None else validation.y,
        X_test=test.X,
        y_test=test.y,
        early_stopping=config.early_stopping,
        target_accuracy=config.target_accuracy,
        resume=None if resume is None else resume.resume,
        on_epoch=on_epoch,
        net=net,
    )
    seconds = time.perf_counter() - start
    metrics = {}
    for split in splits:
        if split is not None:
            loss, acc, _ = score(params, split.X, split.y, config.task, net=net)
            check_loss(loss, len(history.records), config.lr, f"the mean {split.split} loss")
            metrics[split.split] = {"loss": loss, "accuracy": acc, "n": len(split)}
    return history, metrics, seconds


def distortion(config):
    """The :class:`~mnistnet.augment.Distortion` of ``config``'s training images."""
    return Distortion(
        rotate=config.augment_rotate,
        scale=config.augment_scale,
        shear=config.augment_shear,
        elastic_alpha=config.elastic_alpha,
        elastic_sigma=config.elastic_sigma,
        flip=config.augment_flip,
    )


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
        "validation": validation_record(config, result.validation),
        "metrics": result.metrics,
        "stopping": stopping_record(result),
        "epochs_trained": len(result.history.records),
        "interrupted": result.interrupted,
        "seconds": result.seconds,
        "threads": result.threads,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def validation_record(config, validation):
    """The held-out split as the metadata records it: how many, and which (the rule); or None."""
    if validation is None:
        return None
    per_class = np.bincount(validation.y, minlength=len(config.classes)).tolist()
    return {
        "requested": config.validation,
        "n": len(validation),
        "per_class": per_class,
        "rule": VALIDATION_RULE,
    }


def stopping_record(result):
    """Why the run stopped, the epoch whose weights are saved, and when the target was reached."""
    config, history = result.config, result.history
    target_epoch = history.target_epoch
    return {
        "reason": history.stop_reason,
        "weights_epoch": history.weights_epoch,
        "best_epoch": history.weights_epoch if config.early_stopping else None,
        "early_stopping": config.early_stopping,
        "target_accuracy": config.target_accuracy,
        "target_metric": result.target_metric,
        "target_epoch": target_epoch,
        "target_seconds": None if target_epoch is None else history.record(target_epoch).seconds,
    }


def resume_section(result):
    """The ``resume`` metadata section and its arrays (:mod:`mnistnet.trainstate`)."""
    history = result.history
    return trainstate.to_file(
        history.state, history.records, history.weights_epoch, result.config.optimizer
    )


def history_csv(history, run_id):
    """history.csv text (:func:`mnistnet.history.csv_text`), each row with the run id."""
    return csv_text(history.records, run_id)


def save_run(result, out_dir=None, *, plots=False, overwrite=False):
    """Write the run folder of ``result``: model.npz, history.csv, metrics.json, run.json.

    ``out_dir`` defaults to the config's folder (numbered when the config
    names none, see :func:`open_run`); ``plots`` adds the pictures. A
    folder that holds a run is replaced only with ``overwrite``. If drawing
    fails (or is interrupted), the run is saved without pictures and the
    error raised after.

    Returns ``(paths, metadata)``: ``paths`` is ``{kind: path}``.
    """
    config = result.config
    if out_dir is not None:
        config = dataclasses.replace(config, out=os.fspath(out_dir))
    with open_run(config, overwrite=overwrite) as folder:
        config = dataclasses.replace(config, out=folder.path)
        staged = stage_run(dataclasses.replace(result, config=config), folder, plots=plots)
        finish_run(folder, staged)
    if staged.plot_error is not None:
        raise staged.plot_error
    return staged.paths, staged.meta


@dataclasses.dataclass
class StagedRun:
    """What :func:`stage_run` wrote: ``paths`` ``{kind: path}`` (where each file
    lies once the run is in place), model ``meta``, what became of the pictures
    (one of :data:`PICTURES_STATES`) and, if drawing failed, ``plot_error``."""

    paths: dict
    meta: dict
    pictures: str
    plot_error: BaseException = None


def stage_run(result, folder, plots=False):
    """Stage model.npz, history.csv and metrics.json, then the pictures, in ``folder``.

    ``folder`` is a :class:`~mnistnet.runfolder.RunFolder`. Before the
    pictures, ``result`` lets its training inputs go
    (:meth:`RunResult.release_training_inputs`). The pictures are all or
    none: if drawing fails or is interrupted, those drawn so far
    are removed and the run goes on without them (see
    :attr:`StagedRun.plot_error`). Returns a :class:`StagedRun`.
    """
    meta = build_metadata(result, folder.run_id)
    meta["resume"], resume_arrays = resume_section(result)
    if result.resumed_from is not None:
        meta["resumed_from"] = result.resumed_from.describe()
    with folder.writing():
        checkpoint.save_model(folder.file("model.npz"), result.params, meta, resume_arrays)
        write_text(folder.file("history.csv"), history_csv(result.history, folder.run_id))
        write_json(folder.file("metrics.json"), _metrics(result, meta))
    paths = {os.path.splitext(name)[0]: folder.final(name) for name in OUTPUT_FILES}
    staged = StagedRun(paths, meta, "skipped")
    if plots:
        result.release_training_inputs()  # the peak memory of a run is its training's
        try:
            paths.update(_stage_plots(result, meta, folder))
            staged.pictures = "drawn"
        except (Exception, KeyboardInterrupt) as exc:
            for name in PICTURE_FILES:
                with contextlib.suppress(OSError):
                    os.remove(folder.file(name))
            interrupted = isinstance(exc, KeyboardInterrupt)
            staged.pictures, staged.plot_error = "interrupted" if interrupted else "failed", exc
    return staged


def _metrics(result, meta):
    return {
        "run_id": meta["run_id"],
        "task": meta["task"],
        "classes": meta["classes"],
        "dataset": result.config.dataset,
        "epochs_trained": meta["epochs_trained"],
        "interrupted": meta["interrupted"],
        "seconds": result.seconds,
        "threads": result.threads,
        "final": result.metrics,
        "stopping": meta["stopping"],
        "last_epoch": result.history.last.to_dict() if result.history.last else None,
    }


def _stage_plots(result, meta, folder):
    """Every picture of the run, drawn into the staging folder: {kind: final path}."""
    from mnistnet import plots  # matplotlib is heavy: import it only when drawing

    config = result.config
    title = f"{task_title(config.task, [str(c) for c in config.classes])} on {config.dataset}"
    columns = {name: result.history.column(name) for name in HISTORY_PLOTTED}
    marks = {}
    if config.early_stopping and result.history.weights_epoch:
        marks["best epoch"] = result.history.weights_epoch
    with folder.writing():
        written = plots.plot_history(
            columns, folder.staging, title, run_id=folder.run_id, marks=marks
        )
        written += plots.plot_report(
            result.params, meta, result.test, folder.staging, train=result.train
        )
    names = [os.path.basename(p) for p in written]
    return {os.path.splitext(name)[0]: folder.final(name) for name in names}


def finish_run(folder, staged):
    """Write run.json, then move the staged files into place (Ctrl-C waits); the folder's path.

    ``staged`` is what :func:`stage_run` returned; run.json's path joins its ``paths``.
    """
    files = {}
    for name in sorted(os.listdir(folder.staging)):
        if name in RUN_FILES:
            path = folder.file(name)
            files[name] = {"sha256": file_sha256(path), "size": os.path.getsize(path)}
    record = {
        "run_id": folder.run_id,
        "mnistnet_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "pictures": staged.pictures,
        "files": files,
    }
    with folder.writing():
        write_json(folder.file(RUN_FILE), record)
    staged.paths["run"] = folder.final(RUN_FILE)
    return folder.commit()
