"""A whole training run, from a resolved config to files on disk; no printing.

``run_training(config)`` loads the data, initialises, trains and scores;
``save_run(result)`` writes model.npz first (so nothing later can lose it),
then history.csv, metrics.json and the pictures. The CLI only adds the
reporting around these two calls.
"""

import datetime
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
from mnistnet.tasks import N_INPUTS, N_OUTPUTS, task_title
from mnistnet.training import check_loss, fit, score

OUTPUT_FILES = ("model.npz", "history.csv", "metrics.json")


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


def build_metadata(result):
    """The JSON metadata stored in model.npz (see :mod:`mnistnet.checkpoint`)."""
    config = result.config
    head = HEADS[config.task]
    names = class_names(config.dataset)
    return {
        "mnistnet_version": __version__,
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


def history_csv(history):
    """history.csv text: epoch, loss, train_acc, test_acc, seconds."""
    out = io.StringIO()
    out.write("epoch,loss,train_acc,test_acc,seconds\n")
    for r in history.records:
        test = "" if r.test_acc is None else f"{r.test_acc:.6f}"
        out.write(f"{r.epoch},{r.loss:.8g},{r.train_acc:.6f},{test},{r.seconds:.4f}\n")
    return out.getvalue()


def save_run(result, out_dir):
    """Write model.npz, history.csv and metrics.json into ``out_dir``.

    Returns ``(paths, metadata)``; ``paths`` is ``{kind: path}``. Pictures
    come after, from :func:`write_plots`, so a plotting failure never loses
    the trained model.
    """
    paths = {
        "model": os.path.join(out_dir, "model.npz"),
        "history": os.path.join(out_dir, "history.csv"),
        "metrics": os.path.join(out_dir, "metrics.json"),
    }
    meta = build_metadata(result)
    checkpoint.save_model(paths["model"], result.params, meta)
    write_text(paths["history"], history_csv(result.history))
    write_json(
        paths["metrics"],
        {
            "task": meta["task"],
            "classes": meta["classes"],
            "dataset": result.config.dataset,
            "epochs_trained": meta["epochs_trained"],
            "interrupted": meta["interrupted"],
            "seconds": result.seconds,
            "final": result.metrics,
            "last_epoch": result.history.last.to_dict() if result.history.last else None,
        },
    )
    return paths, meta


def write_plots(result, meta, out_dir):
    """All pictures of a finished run: loss, accuracy, examples, hidden units, ..."""
    from mnistnet import plots  # matplotlib is heavy: import it only when drawing

    config = result.config
    title = f"{task_title(config.task, [str(c) for c in config.classes])} on {config.dataset}"
    columns = {
        name: result.history.column(name) for name in ("epoch", "loss", "train_acc", "test_acc")
    }
    written = plots.plot_history(columns, out_dir, title)
    written += plots.plot_report(result.params, meta, result.test, out_dir, train=result.train)
    return {os.path.splitext(os.path.basename(p))[0]: p for p in written}
