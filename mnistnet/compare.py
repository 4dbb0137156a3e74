"""Several training runs side by side: the settings that differ, and how each did.

A run is a folder that training wrote: ``model.npz`` (its settings, in the
metadata) and ``history.csv`` (its curves). :func:`compare_runs` reads
them, refuses runs of different tasks or datasets (their numbers do not
compare), finds the settings that differ and, for the chosen metric, each
run's best and final value. The command draws the curves
(:func:`mnistnet.run_plots.plot_compare`) and prints the table.
"""

import os
from dataclasses import dataclass

from mnistnet.checkpoint import load_model
from mnistnet.errors import MnistnetError
from mnistnet.history import read_csv

# metric -> (words, whether higher is better)
METRICS = {
    "val_acc": ("validation accuracy", True),
    "test_acc": ("test accuracy", True),
    "train_acc": ("training accuracy", True),
    "val_loss": ("validation loss", False),
    "test_loss": ("test loss", False),
    "loss": ("training loss", False),
}
# Settings that say where and how a run was written, not what it computed.
NOT_COMPARED = ("out", "log_every", "data_dir")


class CompareError(MnistnetError):
    """The runs cannot be compared (another task, another dataset, no such metric)."""


@dataclass
class Run:
    """One run folder: its name in tables, its metadata and its history columns."""

    path: str
    name: str
    meta: dict
    history: dict

    @property
    def config(self):
        return self.meta.get("config") or {}

    @property
    def seconds(self):
        """Training time: the last epoch's seconds (they go on counting across resumes)."""
        seconds = [s for s in self.history.get("seconds", []) if s is not None]
        return seconds[-1] if seconds else self.meta.get("seconds")

    @property
    def what(self):
        """Task, classes and data: runs compare only when these agree."""
        dataset = self.meta.get("dataset") or {}
        hashes = tuple(f.get("content_sha256") for f in dataset.get("files", []))
        return self.meta["task"], tuple(self.meta["classes"]), dataset.get("name"), hashes


@dataclass
class Comparison:
    """What :func:`compare_runs` found: ``rows`` has one dict per run (see there)."""

    runs: list
    metric: str
    differing: list
    rows: list

    def label(self, row):
        """The run's label in pictures: the settings that differ, else its name."""
        if not self.differing:
            return row["run"]
        return ", ".join(f"{k}={show(row['settings'][k])}" for k in self.differing)


def load_run(path):
    """Read the run folder ``path`` (its model.npz and history.csv)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise CompareError(f"{path}: not a run folder (give the folder training wrote)")
    _, meta = load_model(os.path.join(path, "model.npz"))
    history = read_csv(os.path.join(path, "history.csv"))
    name = os.path.basename(os.path.normpath(path)) or path
    return Run(path, name, meta, history)


def compare_runs(paths, metric=None, *, at_least=2):
    """Compare the runs in the folders ``paths``.

    ``metric`` (a key of :data:`METRICS`) defaults to ``val_acc`` when every
    run has a validation split, else ``test_acc``.

    Returns
    -------
    Comparison
        ``rows``: for each run ``run`` (its name), ``path``, ``settings``
        (the differing ones), ``best`` and ``best_epoch`` (None when the run
        did not measure the metric), ``final`` (the last epoch's value),
        ``epochs``, ``seconds`` and ``stop_reason``.

    Raises
    ------
    CompareError
        Fewer than ``at_least`` runs (a sweep summarises a single one), runs of
        different tasks, classes or data, or a metric no run measured.
    """
    runs = [load_run(p) for p in paths]
    if len(runs) < at_least:
        raise CompareError(f"compare needs at least {at_least} run folders")
    _check_comparable(runs)
    _unique_names(runs)
    metric = metric or _default_metric(runs)
    if metric not in METRICS:
        raise CompareError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    if not any(_values(run, metric) for run in runs):
        raise CompareError(f"no run measured {METRICS[metric][0]} ({metric})")
    differing = differing_settings([run.config for run in runs])
    rows = [_row(run, metric, differing) for run in runs]
    return Comparison(runs, metric, differing, rows)


def _check_comparable(runs):
    first = runs[0]
    for run in runs[1:]:
        if run.what != first.what:
            raise CompareError(
                f"{run.path} is {_describe(run)}, {first.path} is {_describe(first)}: "
                "only runs of one task on the same data compare"
            )


def _describe(run):
    task, classes, dataset, _ = run.what
    digits = f" {classes[0]} vs {classes[1]}" if task == "binary" else ""
    return f"{task}{digits} on {dataset}"


def _unique_names(runs):
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        for run in runs:
            run.name = run.path


def _default_metric(runs):
    return "val_acc" if all(_values(run, "val_acc") for run in runs) else "test_acc"


def _values(run, metric):
    return [(e, v) for e, v in zip(run.history["epoch"], run.history.get(metric, []), strict=False)
            if v is not None]  # fmt: skip


def differing_settings(configs):
    """The setting keys whose values are not the same in every config (in the first's order)."""
    keys = list(dict.fromkeys(k for config in configs for k in config))
    return [k for k in keys if k not in NOT_COMPARED and len({repr(c.get(k)) for c in configs}) > 1]


def _row(run, metric, differing):
    points = _values(run, metric)
    higher = METRICS[metric][1]
    best_epoch, best = (max if higher else min)(points, key=lambda p: p[1], default=(None, None))
    stopping = run.meta.get("stopping") or {}
    return {
        "run": run.name,
        "path": run.path,
        "settings": {k: run.config.get(k) for k in differing},
        "best": best,
        "best_epoch": best_epoch,
        "final": points[-1][1] if points else None,
        "epochs": len(run.history["epoch"]),
        "seconds": run.seconds,
        "stop_reason": stopping.get("reason"),
    }


def show(value):
    """A setting's value as the table and the labels show it."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return " ".join(map(str, value))
    return "-" if value is None else str(value)
