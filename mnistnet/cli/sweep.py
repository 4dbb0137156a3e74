"""``mnistnet sweep``: every combination of a few settings, each an ordinary training run.

    mnistnet sweep --config base.toml --grid lr=0.05,0.1,0.2 --grid hidden=128,256 \\
        --seeds 3 --jobs auto --out runs/sweep
    mnistnet sweep --config base.toml --grid lr=0.05,0.1 --print-commands | parallel -j 4

Parse, call :mod:`mnistnet.sweep`, render: progress on stderr, the final
table on stdout (or one JSON document with ``--json``).
"""

import os
import shlex

import click

from mnistnet.cli._common import (
    handle_errors,
    json_option,
    mirror_option,
    quiet_option,
    refuse_run_folder,
)
from mnistnet.config import ConfigError

DEFAULT_OUT = "runs/sweep"


class _CountOrAuto(click.ParamType):
    """A whole number from 1 to 1024, or the word ``auto``."""

    name = "count"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        if value.strip().lower() == "auto":
            return "auto"
        try:
            number = int(value)
        except ValueError:
            number = 0
        if not 1 <= number <= 1024:
            self.fail(f"{value!r} is not a whole number from 1 to 1024 or 'auto'", param, ctx)
        return number


@click.command("sweep")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=str),
    help="Base TOML config of every run (with digits = [A, B]: train-binary runs, "
    "else train-multiclass).",
)
@click.option(
    "--grid",
    "grids",
    multiple=True,
    metavar="SETTING=V1,V2,...",
    help="A setting and its values (repeatable): every combination is one run.",
)
@click.option(
    "--seeds",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    metavar="N",
    help="Runs per combination, with seeds counting up from the config's seed.",
)
@click.option(
    "--jobs",
    type=_CountOrAuto(),
    default="auto",
    metavar="J|auto",
    help="Runs at a time. auto: one per core, fewer when there are fewer runs. [default: auto]",
)
@click.option(
    "--threads",
    type=_CountOrAuto(),
    default=None,
    metavar="N|auto",
    help="--threads of every run. [default: the cores shared out among the jobs]",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=str),
    default=DEFAULT_OUT,
    metavar="DIR",
    show_default=True,
    help="Folder of the runs' folders, sweep.csv and sweep.png; not a training run's folder.",
)
@click.option(
    "--print-commands",
    is_flag=True,
    help="Print the runs not finished yet as mnistnet command lines, one per "
    "line, and run nothing (for GNU parallel or a cluster's scheduler).",
)
@mirror_option
@click.option("--no-plots", is_flag=True, help="No pictures: neither the runs' nor sweep.png.")
@quiet_option
@json_option
@handle_errors
def sweep(
    config_file, grids, seeds, jobs, threads, out, print_commands, mirrors, no_plots, quiet, as_json
):
    """Train every combination of the --grid settings, J runs at a time.

    Each run is an ordinary training run in its own folder under --out,
    named after its values (lr-0.1_hidden-128_seed-29), with the usual
    files. A run already finished there is skipped, so a stopped sweep
    resumes where it stopped. At the end, as `mnistnet compare` shows runs:
    a table of each combination's final and best test accuracy (validation
    accuracy when the runs hold out a validation split), the mean over the
    seeds and its spread; sweep.csv, one line per run; and sweep.png, every
    run's curve. Exit 1 if a run failed.

    \b
    Example:
      mnistnet sweep --config configs/multiclass-fast.toml --grid lr=0.05,0.1,0.2 \\
          --grid hidden=128,256 --seeds 3 --out runs/sweep
    """
    from mnistnet import sweep as sweeps
    from mnistnet.config import read_config_file
    from mnistnet.console import literal, make_console

    refuse_run_folder(out, "the sweep's runs", DEFAULT_OUT)
    try:
        file_values = read_config_file(config_file) if config_file else {}
        grid = sweeps.parse_grid(grids)
        runs = sweeps.plan_sweep(file_values, grid, seeds, out, config_path=config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    console = make_console(quiet)
    todo = [run for run in runs if sweeps.run_state(run) != "done"]
    jobs, threads = sweeps.jobs_and_threads(
        None if jobs == "auto" else jobs, threads, max(1, len(todo))
    )
    if len(todo) < len(runs):
        console.print(
            f"{len(runs) - len(todo)} of {len(runs)} runs already finished in {literal(out)}: "
            "skipped."
        )
    # the switches every run gets
    extra = [
        *(arg for url in mirrors for arg in ("--mirror", url)),
        *(["--no-plots"] if no_plots else []),
    ]
    if print_commands:
        for run in todo:
            replace = sweeps.run_state(run) == "replace"
            click.echo(shlex.join([*sweeps.train_command(run, threads, config_file,
                                                         overwrite=replace), *extra]))  # fmt: skip
        return
    plan = dict(jobs=jobs, threads=threads, config_path=config_file, extra=extra)
    _run(sweeps, runs, todo, plan, out, console, as_json, list(grid))


def _run(sweeps, runs, todo, plan, out, console, as_json, keys):
    """Run what is left, then write sweep.csv and sweep.png and show the table."""
    from mnistnet.console import literal
    from mnistnet.fileio import check_writable_dir, write_text

    check_writable_dir(out, "--out", sweeps.SUMMARY_FILES)
    if todo:
        console.print(
            f"Running {len(todo)} run{'s' if len(todo) > 1 else ''}, {plan['jobs']} at a time, "
            f"{plan['threads']} thread(s) each, in {literal(out)}"
        )
    try:
        with _Progress(console, len(todo)) as progress:
            outcomes = sweeps.run_all(todo, **plan, on_done=progress.done)
    except KeyboardInterrupt:  # say what was kept; handle_errors gives the exit status
        kept = sum(sweeps.run_state(run) == "done" for run in runs)
        console.print(
            f"{kept} of {len(runs)} runs are finished in {literal(out)} and kept; "
            "the same command runs the rest."
        )
        raise
    rows, comparison = sweeps.summarize(runs, outcomes)
    keys = keys if "seed" in keys else [*keys, "seed"]
    metric = comparison.metric if comparison else None
    write_text(os.path.join(out, "sweep.csv"), sweeps.summary_csv(rows, keys, metric))
    picture = None
    if comparison is not None and "--no-plots" not in plan["extra"]:
        from mnistnet.cli.compare import plot_comparison

        picture = plot_comparison(comparison, out, "sweep.png")
    if as_json or not console.quiet:
        _render(sweeps, rows, keys, metric, as_json, picture)
    failed = [row for row in rows if row["status"] == "failed"]
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(rows)} runs failed; the first, {failed[0]['run']}: "
            f"{failed[0]['error'].removeprefix('Error: ')}"
        )


class _Progress:
    """One line per finished run on stderr, and a bar of all runs on a terminal."""

    def __init__(self, console, total):
        self.console = console
        self.total = total
        self.count = 0
        self.bar = None

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        from mnistnet.console import is_interactive

        if self.total and is_interactive(self.console):
            self.bar = Progress(
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("runs", total=self.total)
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False

    def done(self, outcome):
        from rich.text import Text

        self.count += 1
        width = len(str(self.total))
        line = Text(f"[{self.count:>{width}}/{self.total}] ")
        line.append(outcome.run.name)  # printed literally: values come from the command line
        if outcome.returncode == 0:
            line.append(f"  done in {outcome.seconds:.1f} s")
        else:
            line.append(f"  failed: {outcome.error}", style="red")
        self.console.print(line)
        if self.bar is not None:
            self.bar.update(self.task, completed=self.count)


def _render(sweeps, rows, keys, metric, as_json, picture):
    """The final table on stdout (a row per grid point, over its seeds), or the JSON document."""
    from rich.table import Table

    from mnistnet.compare import METRICS
    from mnistnet.console import literal, print_json, stdout_console

    if as_json:
        print_json({"schema": "mnistnet-sweep/1", "keys": keys, "metric": metric,
                    "runs": rows, "picture": picture})  # fmt: skip
        return
    point_keys = [k for k in keys if k != "seed"]
    groups = sweeps.group_by_setting(rows, point_keys)
    higher = METRICS[metric][1] if metric else True
    finals = [g["final"] for g in groups if g["final"] is not None]
    best = (max if higher else min)(finals, default=None)
    words = METRICS[metric][0] if metric else "no runs to compare"
    table = Table(title=f"Sweep: {words}", header_style="bold")
    for key in point_keys:
        table.add_column(key, justify="right")
    for column in ("runs done", "final (mean)", "spread (sd)", "best (mean)", "seconds"):
        table.add_column(column, justify="right")
    for g in groups:
        table.add_row(
            *(literal(str(g[k])) for k in point_keys),
            f"{g['done']}/{g['runs']}",
            _value(g["final"], metric),
            _value(g["final_sd"], metric),
            _value(g["best"], metric),
            "-" if g["seconds"] is None else f"{g['seconds']:.1f}",
            style="bold green" if g["final"] is not None and g["final"] == best else None,
        )
    console = stdout_console()
    console.print(table)
    if picture:
        console.print(f"Picture: {literal(picture)}", highlight=False)


def _value(value, metric):
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if metric.endswith("_acc") else f"{value:.5f}"
