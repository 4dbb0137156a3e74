"""Sweeps: every combination of a few settings, each an ordinary training run.

    mnistnet sweep --config base.toml --grid lr=0.05,0.1,0.2 --grid hidden=128,256 \\
        --seeds 3 --jobs auto --out runs/sweep

:func:`plan_sweep` turns a base config file, a grid and a number of seeds
into :class:`Run`\\ s, each resolved and checked as its training command
would check it, before anything starts. A run *is* its command line
(:func:`train_command`, ``mnistnet train-... --out DIR/NAME``): :func:`run_all`
runs these lines in subprocesses, J at a time, and ``--print-commands``
prints them for GNU parallel or a cluster's scheduler. A run whose folder
already holds its finished result is skipped (:func:`is_finished`), so an
interrupted sweep resumes where it stopped. :func:`summarize` reads the
runs' ``metrics.json`` and ``history.csv`` back for the final table and
picture.
"""

import contextlib
import csv
import io
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from mnistnet import parallel
from mnistnet.config import SETTINGS, InvalidValue, check_value, resolve_config
from mnistnet.errors import ConfigError, MnistnetError

# Settings a grid cannot vary: one pair of digits per sweep; the sweep names
# the folders and gives each run its threads.
NOT_IN_GRID = ("digits", "out", "threads")
# Settings that say where and how a run was written, not what it computed:
# a finished run whose recorded settings differ only in these still counts.
NOT_COMPARED = ("out", "threads", "log_every")
SUMMARY_FILES = ("sweep.csv", "sweep.png")
# A run's result before it has one.
NO_RESULT = {"test_acc": None, "test_loss": None, "train_acc": None, "epochs": None,
             "seconds": None}  # fmt: skip


class SweepError(MnistnetError):
    """A sweep that cannot run as asked (its folder holds other runs, ...)."""


@dataclass(frozen=True)
class Run:
    """One training run of a sweep.

    ``values`` are the grid's settings and the seed, as the flags take them
    (text, in grid order); ``config`` is the run's resolved
    :class:`~mnistnet.config.TrainConfig`.
    """

    name: str
    values: dict
    config: object

    @property
    def out(self):
        return self.config.out_dir


def parse_grid(texts):
    """``["lr=0.05,0.1", "hidden=128"]`` -> ``{"lr": ["0.05", "0.1"], "hidden": ["128"]}``.

    Each value is checked as its flag would check it; the texts are kept as
    written, for the command lines. Errors name ``--grid`` and the setting.
    """
    grid = {}
    for text in texts:
        key, sep, values = text.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--grid {text!r}: write SETTING=VALUE,VALUE,... (e.g. lr=0.05,0.1)")
        if key not in SETTINGS:
            raise ConfigError(f"--grid {text!r}: unknown setting {key!r}")
        if key in NOT_IN_GRID:
            raise ConfigError(f"--grid {text!r}: {key} cannot vary in a sweep", setting=key)
        if key in grid:
            raise ConfigError(f"--grid: {key} is given twice; list all its values once")
        words = [w.strip() for w in values.split(",")]
        if not all(words):
            raise ConfigError(f"--grid {text!r}: an empty value", setting=key)
        for word in words:
            _check_word(key, word)
        grid[key] = list(dict.fromkeys(words))
    return grid


def _check_word(key, word):
    setting = SETTINGS[key]
    try:
        value = setting.kind.from_flag(word)
    except InvalidValue as exc:
        raise ConfigError(f"--grid {key}: {word!r} is not {exc.expected}", setting=key) from None
    return check_value(key, value, f"--grid {key}")


def sweep_task(file_values):
    """``binary`` when the base config names two digits, else ``multiclass``."""
    return "binary" if file_values.get("digits") is not None else "multiclass"


def plan_sweep(file_values, grid, seeds, out_dir, config_path=None):
    """Every run of the sweep, in grid order (the last setting varying fastest), seeds innermost.

    ``file_values`` come from the base config file (:func:`mnistnet.config.read_config_file`);
    ``seeds`` runs per combination use the seeds from the base config's (or
    the task's default) upwards. Each run is resolved as its command line
    would be, so a combination that training would refuse fails here,
    before any run starts.
    """
    task = sweep_task(file_values)
    if "seed" in grid and seeds > 1:
        raise ConfigError("--seeds: the grid already varies seed; give one or the other")
    first_seed = file_values.get("seed", SETTINGS["seed"].default_for(task))
    seed_words = grid.get("seed") or [str(first_seed + k) for k in range(seeds)]
    for word in seed_words:
        _check_word("seed", word)
    axes = {key: words for key, words in grid.items() if key != "seed"}
    runs = []
    for combination in itertools.product(*axes.values()):
        for seed in seed_words:
            values = {**dict(zip(axes, combination, strict=True)), "seed": seed}
            name = "_".join(f"{key}-{_safe(word)}" for key, word in values.items())
            flags = {key: _check_word(key, word) for key, word in values.items()}
            flags["out"] = os.path.join(out_dir, name)
            try:
                config = resolve_config(task, file_values, flags, config_path=config_path)
            except ConfigError as exc:
                raise ConfigError(f"run {name}: {exc}", setting=exc.setting) from None
            runs.append(Run(name, values, config))
    return runs


def _safe(word):
    """A value as it may appear in a folder name."""
    return re.sub(r"[^A-Za-z0-9.+-]", "_", word)


def jobs_and_threads(jobs, threads, n_runs, cores=None):
    """How many runs at once, and how many threads each.

    ``jobs`` None (auto): one run per core, or fewer when there are fewer
    runs; independent runs never wait on each other, so this is the most
    work the cores can do. ``threads`` None: the cores shared out among the
    jobs (at least one each), so the machine is used fully and never
    oversubscribed; ``"auto"`` leaves each run to decide.

    >>> jobs_and_threads(None, None, 12, cores=2), jobs_and_threads(None, None, 1, cores=16)
    ((2, 1), (1, 16))
    >>> jobs_and_threads(3, None, 12, cores=16), jobs_and_threads(2, "auto", 12, cores=16)
    ((3, 5), (2, 'auto'))
    """
    cores = parallel.available_cores() if cores is None else cores
    if jobs is None:
        jobs = max(1, min(cores, n_runs))
    if threads is None:  # "auto" goes to the runs as it is
        threads = max(1, cores // jobs)
    return jobs, threads


def train_command(run, threads, config_path=None, program=("mnistnet",)):
    """The command line of ``run``: ``mnistnet train-TASK [--config FILE] --SETTING VALUE ...``."""
    command = [*program, f"train-{run.config.task}"]
    if config_path:
        command += ["--config", os.fspath(config_path)]
    for key, word in run.values.items():
        command += [SETTINGS[key].flag, word]
    command += ["--threads", str(threads), "--out", run.out]
    return command


def is_finished(run):
    """True when ``run``'s folder holds its finished result (model.npz and metrics.json).

    Raises :class:`SweepError` when the folder holds a finished run of other
    settings: its results would be taken for this run's. An unreadable or
    interrupted leftover counts as not finished, and the run starts again.
    """
    from mnistnet.checkpoint import load_model

    if not os.path.isfile(os.path.join(run.out, "metrics.json")):
        return False
    try:
        _, meta = load_model(os.path.join(run.out, "model.npz"))
    except MnistnetError:
        return False
    if meta.get("interrupted"):
        return False
    recorded, expected = meta.get("config") or {}, run.config.to_dict()
    differing = [
        key
        for key in expected
        if key in recorded and key not in NOT_COMPARED and recorded[key] != expected[key]
    ]
    if differing:
        shown = ", ".join(f"{k} {recorded[k]!r} instead of {expected[k]!r}" for k in differing)
        raise SweepError(
            f"{run.out} holds a finished run with other settings ({shown}); "
            "give the sweep another --out, or remove that folder"
        )
    return True


@dataclass
class Outcome:
    """How one run ended: ``returncode`` 0 is success; ``error`` is its last line of stderr."""

    run: Run
    returncode: int
    error: str
    seconds: float


class _Children:
    """The running subprocesses, so that Ctrl-C stops them all."""

    def __init__(self):
        self._lock = threading.Lock()
        self._procs = set()
        self.stopping = False

    def run(self, run, command, env):
        start = time.perf_counter()
        with self._lock:
            if self.stopping:
                return Outcome(run, 130, "interrupted", 0.0)
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
                errors="replace",
            )
            self._procs.add(proc)
        _, stderr = proc.communicate()
        with self._lock:
            self._procs.discard(proc)
        lines = [line for line in stderr.splitlines() if line.strip()]
        error = lines[-1].strip() if lines else ""
        return Outcome(run, proc.returncode, error, time.perf_counter() - start)

    def interrupt(self):
        with self._lock:
            self.stopping = True
            for proc in self._procs:
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGINT)


def run_all(runs, jobs, threads, config_path=None, extra=(), on_done=None):
    """Run ``runs`` (their :func:`train_command`, quiet, and ``extra`` arguments), ``jobs``
    at a time; return the outcomes.

    ``on_done(outcome)`` is called in this thread as each run ends. Every
    run's BLAS is kept to one thread through the environment as well (mnistnet
    sets it itself around its products). On Ctrl-C the runs still going are
    interrupted too, and :class:`KeyboardInterrupt` goes on up.
    """
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    program = (sys.executable, "-m", "mnistnet")
    children = _Children()
    outcomes = []
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="mnistnet-sweep")
    try:
        futures = [
            pool.submit(
                children.run,
                run,
                [*train_command(run, threads, config_path, program), *extra, "--quiet"],
                env,
            )
            for run in runs
        ]
        for future in as_completed(futures):
            outcomes.append(future.result())
            if on_done is not None:
                on_done(outcomes[-1])
    except KeyboardInterrupt:
        children.interrupt()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return outcomes


def read_result(run):
    """``run``'s final metrics and its test accuracy per epoch, from its folder; None if absent."""
    try:
        with open(os.path.join(run.out, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
        with open(os.path.join(run.out, "history.csv"), encoding="utf-8") as f:
            history = list(csv.DictReader(f))
    except (OSError, ValueError):
        return None
    curve = [float(row["test_acc"]) if row.get("test_acc") else None for row in history]
    final = metrics.get("final") or {}
    return {
        "test_acc": final.get("test", {}).get("accuracy"),
        "test_loss": final.get("test", {}).get("loss"),
        "train_acc": final.get("train", {}).get("accuracy"),
        "epochs": metrics.get("epochs_trained"),
        "seconds": metrics.get("seconds"),
        "curve": curve,
    }


def summarize(runs, outcomes=()):
    """One row per run: its values, ``status`` and what :func:`read_result` gives.

    ``status``: ``done`` (now or before), ``failed`` (with ``error``) or
    ``missing`` (not run: the sweep was interrupted).
    """
    failed = {o.run.name: o for o in outcomes if o.returncode != 0}
    rows = []
    for run in runs:
        result = read_result(run)
        row = {"run": run.name, **run.values, "out": run.out, "error": None}
        if run.name in failed:
            row.update(status="failed", error=failed[run.name].error)
        else:
            row["status"] = "done" if result else "missing"
        row.update(result or {**NO_RESULT, "curve": []})
        rows.append(row)
    return rows


def group_by_setting(rows, keys):
    """Rows of the same grid point (all ``keys`` but the seed) together, with the
    mean and standard deviation of their test accuracy across seeds."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    table = []
    for point, members in groups.items():
        done = [r for r in members if r["test_acc"] is not None]
        accs = [r["test_acc"] for r in done]
        seconds = [r["seconds"] for r in done if r["seconds"] is not None]
        table.append(
            {
                **dict(zip(keys, point, strict=True)),
                "runs": len(members),
                "done": len(done),
                "test_acc": statistics.fmean(accs) if accs else None,
                "test_acc_sd": statistics.stdev(accs) if len(accs) > 1 else None,
                "seconds": statistics.fmean(seconds) if seconds else None,
            }
        )
    return table


def summary_csv(rows, keys):
    """sweep.csv: one line per run."""
    columns = [
        "run",
        *keys,
        "status",
        "test_acc",
        "test_loss",
        "train_acc",
        "epochs",
        "seconds",
        "out",
        "error",
    ]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def plot_sweep(rows, keys, path, title):
    """sweep.png: every run's test accuracy per epoch, one colour per grid point.

    The seeds of a grid point share its colour, so their spread shows. Returns
    the path, or None when no run has a test accuracy to draw.
    """
    from mnistnet.plots import DPI, _pyplot, _save  # matplotlib only when drawing

    drawn = [row for row in rows if any(a is not None for a in row["curve"])]
    if not drawn:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=DPI, layout="constrained")
    colours = {}
    for row in drawn:
        point = ", ".join(f"{k}={row[k]}" for k in keys) or "base config"
        first = point not in colours  # label each grid point once
        colour = colours.setdefault(point, f"C{len(colours) % 10}")
        epochs = [e + 1 for e, a in enumerate(row["curve"]) if a is not None]
        accs = [100 * a for a in row["curve"] if a is not None]
        ax.plot(epochs, accs, color=colour, label=point if first else None, alpha=0.85)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, os.path.dirname(path), os.path.basename(path))
