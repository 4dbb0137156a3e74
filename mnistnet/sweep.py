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
# What the table and sweep.csv give of each run, from mnistnet.compare.
RESULT_KEYS = ("final", "best", "best_epoch", "epochs", "seconds")


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


def train_command(run, threads, config_path=None, program=("mnistnet",), overwrite=False):
    """The command line of ``run``: ``mnistnet train-TASK [--config FILE] --SETTING VALUE ...``.

    ``overwrite`` adds ``--overwrite``, for a folder holding an interrupted run.
    """
    command = [*program, f"train-{run.config.task}"]
    if config_path:
        command += ["--config", os.fspath(config_path)]
    for key, word in run.values.items():
        command += [SETTINGS[key].flag, word]
    command += ["--threads", str(threads), "--out", run.out]
    return command + (["--overwrite"] if overwrite else [])


def run_state(run):
    """``"done"``: ``run``'s folder holds its finished result; ``"replace"``: it holds
    this run, interrupted (``--save-on-interrupt``), to be replaced; ``"todo"``: nothing yet.

    Raises :class:`SweepError` when the folder holds a run of other settings:
    its results would be taken for this run's. An unreadable leftover counts as
    nothing (training itself refuses to replace what is not a run).
    """
    from mnistnet.checkpoint import load_model

    if not os.path.isfile(os.path.join(run.out, "metrics.json")):
        return "todo"
    try:
        _, meta = load_model(os.path.join(run.out, "model.npz"))
    except MnistnetError:
        return "todo"
    recorded, expected = meta.get("config") or {}, run.config.to_dict()
    differing = [
        key
        for key in expected
        if key in recorded and key not in NOT_COMPARED and recorded[key] != expected[key]
    ]
    if differing:
        shown = ", ".join(f"{k} {recorded[k]!r} instead of {expected[k]!r}" for k in differing)
        raise SweepError(
            f"{run.out} holds a run with other settings ({shown}); "
            "give the sweep another --out, or remove that folder"
        )
    return "replace" if meta.get("interrupted") else "done"


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
    """Run ``runs`` (their :func:`train_command`, quiet, with ``extra`` arguments),
    ``jobs`` at a time; return the outcomes.

    A run whose folder holds it interrupted is replaced (``--overwrite``).
    ``on_done(outcome)`` is called in this thread as each run ends. Every
    run's BLAS is kept to one thread through the environment as well (mnistnet
    sets it itself around its products). On Ctrl-C the runs still going are
    interrupted too, and :class:`KeyboardInterrupt` goes on up.
    """
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}  # fmt: skip
    program = (sys.executable, "-m", "mnistnet")
    commands = [
        [*train_command(run, threads, config_path, program, run_state(run) == "replace"),
         *extra, "--quiet"]
        for run in runs
    ]  # fmt: skip
    children = _Children()
    outcomes = []
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="mnistnet-sweep")
    try:
        futures = [
            pool.submit(children.run, r, c, env) for r, c in zip(runs, commands, strict=True)
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


def summarize(runs, outcomes=(), metric=None):
    """The sweep's results: ``(rows, comparison)``.

    ``comparison`` is :func:`mnistnet.compare.compare_runs` of the finished
    runs (None with none, or runs that do not compare, such as a
    grid over datasets). ``rows`` has one dict per run: its name, its
    values, ``out``, ``status`` (``done``, ``failed`` with ``error``, or
    ``missing``: not run, the sweep was stopped) and, from the comparison,
    its ``final`` and ``best`` value of the metric, ``best_epoch``,
    ``epochs`` and ``seconds`` (None where there is none).
    """
    from mnistnet.compare import CompareError, compare_runs

    failed = {o.run.name: o.error for o in outcomes if o.returncode != 0}
    done = [run for run in runs if run.name not in failed and run_state(run) == "done"]
    comparison = None
    if done:
        with contextlib.suppress(CompareError):
            comparison = compare_runs([run.out for run in done], metric, at_least=1)
    results = {row["path"]: row for row in comparison.rows} if comparison else {}
    rows = []
    for run in runs:
        status = "failed" if run.name in failed else "done" if run in done else "missing"
        result = results.get(run.out, {})
        rows.append({"run": run.name, **run.values, "out": run.out, "status": status,
                     "error": failed.get(run.name),
                     **{key: result.get(key) for key in RESULT_KEYS}})  # fmt: skip
    return rows, comparison


def group_by_setting(rows, keys):
    """Rows of the same grid point (the same values of ``keys``) together: how many runs,
    how many are done, and the mean and standard deviation of their final value and
    the mean of their best value and seconds, across seeds."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    table = []
    for point, members in groups.items():
        done = [r for r in members if r["final"] is not None]
        finals = [r["final"] for r in done]
        table.append(
            {
                **dict(zip(keys, point, strict=True)),
                "runs": len(members),
                "done": len(done),
                "final": statistics.fmean(finals) if finals else None,
                "final_sd": statistics.stdev(finals) if len(finals) > 1 else None,
                "best": _mean(r["best"] for r in done),
                "seconds": _mean(r["seconds"] for r in done),
            }
        )
    return table


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def summary_csv(rows, keys, metric):
    """sweep.csv: one line per run; ``final`` and ``best`` are of ``metric``."""
    columns = ["run", *keys, "status", "metric", *RESULT_KEYS, "out", "error"]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "metric": metric} for row in rows)
    return out.getvalue()
