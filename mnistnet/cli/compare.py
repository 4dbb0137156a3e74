"""``mnistnet compare RUN_DIR...``: runs side by side, in a table and one picture.

    mnistnet compare runs/lr-0.03 runs/lr-0.1 runs/lr-0.3 --metric val_acc --out docs/

Parse, call :func:`mnistnet.compare.compare_runs`, render.
"""

import click

from mnistnet.cli._common import handle_errors, json_option, quiet_option, refuse_run_folder
from mnistnet.compare import METRICS

DEFAULT_OUT = "runs/compare"


@click.command("compare")
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...",
                type=click.Path(exists=True, file_okay=False, path_type=str))  # fmt: skip
@click.option("--metric", type=click.Choice(tuple(METRICS)), default=None,
              help="The metric to compare. [default: val_acc when every run has a validation "
              "split, else test_acc]")  # fmt: skip
@click.option("--out", metavar="DIR", default=DEFAULT_OUT, show_default=True,
              type=click.Path(file_okay=False, path_type=str),
              help="Folder for the picture, compare-<metric>.png; not a training run's "
              "folder.")  # fmt: skip
@click.option("--no-plots", is_flag=True, help="Do not draw the picture.")
@quiet_option
@json_option
@handle_errors
def compare(run_dirs, metric, out, no_plots, quiet, as_json):
    """Compare training runs: the settings that differ, best and final metrics, curves.

    Each RUN_DIR is a folder written by train-binary or train-multiclass
    (its model.npz and history.csv). Runs of different tasks or data are
    refused. Prints a table (run, the settings that differ, best and final
    value of the metric, epochs, seconds) and draws the metric's curves of
    every run in one picture, labelled by what differs.

    \b
    Example:
      mnistnet compare runs/lr-0.03 runs/lr-0.1 runs/lr-0.3 --out docs/
    """
    from mnistnet.compare import compare_runs
    from mnistnet.console import print_json
    from mnistnet.fileio import check_writable_dir

    if len(run_dirs) < 2:
        raise click.UsageError("compare needs at least two run folders")
    comparison = compare_runs(run_dirs, metric)
    name = f"compare-{comparison.metric}.png"
    plot = None
    if not no_plots:
        refuse_run_folder(out, name, DEFAULT_OUT)
        check_writable_dir(out, "--out", (name,))
        plot = plot_comparison(comparison, out, name)
    if as_json:
        print_json(_document(comparison, plot))
    elif not quiet:
        _render(comparison, plot)


def plot_comparison(comparison, out, name):
    """The metric's curves of every run in one picture, ``out/name`` (also sweep.png)."""
    from mnistnet.run_plots import plot_compare

    words = METRICS[comparison.metric][0]
    ylabel = f"{words} (%)" if comparison.metric.endswith("_acc") else f"mean {words} per image"
    curves = [
        (comparison.label(row), run.history["epoch"], run.history.get(comparison.metric, []))
        for run, row in zip(comparison.runs, comparison.rows, strict=True)
    ]
    from mnistnet.tasks import display_names, task_title

    first = comparison.runs[0].meta
    what = task_title(first["task"], display_names(first))
    title = f"{words}: {what} on {(first.get('dataset') or {}).get('name')}"
    return plot_compare(curves, ylabel, out, name, title)


def _document(comparison, plot):
    return {
        "metric": comparison.metric,
        "differing": comparison.differing,
        "runs": comparison.rows,
        "plot": plot,
    }


def _render(comparison, plot):
    from rich.table import Table

    from mnistnet.compare import show
    from mnistnet.console import literal, stdout_console

    metric = comparison.metric
    pct = metric.endswith("_acc")
    table = Table(title=f"{METRICS[metric][0]} ({metric})", header_style="bold")
    table.add_column("run")
    for key in comparison.differing:
        table.add_column(key, justify="right")
    for heading in ("best", "at epoch", "final", "trained", "seconds", "stopped by"):
        table.add_column(heading, justify="left" if heading == "stopped by" else "right")
    for row in comparison.rows:
        table.add_row(
            literal(row["run"]),
            *(literal(show(row["settings"][k])) for k in comparison.differing),
            _value(row["best"], pct),
            "-" if row["best_epoch"] is None else str(row["best_epoch"]),
            _value(row["final"], pct),
            str(row["epochs"]),
            "-" if row["seconds"] is None else f"{row['seconds']:.1f}",
            literal(str(row["stop_reason"] or "-")).replace("_", " "),
        )
    console = stdout_console()
    console.print(table)
    if not comparison.differing:
        console.print("The runs have the same settings.")
    if plot:
        console.print(f"Picture: {literal(plot)}", highlight=False)


def _value(value, pct):
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if pct else f"{value:.5f}"
