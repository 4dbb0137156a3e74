"""``mnistnet evaluate`` and ``mnistnet info``: score a saved model, or describe it.

\b
  mnistnet info runs/binary-5-8/model.npz
  mnistnet evaluate runs/binary-5-8/model.npz
  mnistnet evaluate runs/multiclass/model.npz --plots-dir report/
  mnistnet evaluate model.npz --min-accuracy 0.95 --json > report.json   # a CI gate

Parse, call, render: :mod:`mnistnet.evaluation` scores and describes,
:mod:`mnistnet.cli.views` draws the tables. Results go to stdout (tables,
or one JSON document with ``--json``); chatter goes to stderr. NumPy, the
data layer and matplotlib are imported inside the commands, so
``mnistnet --help`` stays fast, and ``info`` never loads matplotlib or any data.

A missing or unreadable model file is a failure (exit 1, like any bad
model file), not a usage error: the path is a string checked by
``load_model``, which names the problem in one line.
"""

import math
import sys

import click

from mnistnet.cli._common import (
    dataset_options,
    handle_errors,
    json_option,
    quiet_option,
    tta_option,
)
from mnistnet.errors import EXIT_BELOW_THRESHOLD, ConfigError
from mnistnet.fileio import check_writable_dir

MODEL_ARG = click.argument("model", metavar="MODEL.npz", type=click.Path(path_type=str))

# What the command line says when evaluation.resolve_source lacks a setting.
USAGE_ERRORS = {
    "dataset": "the model does not record its dataset; pass --dataset",
    "data_dir": "--dataset idx needs --data-dir (a folder with the four IDX files)",
}


def _finite(ctx, param, value):
    # click.FloatRange lets NaN through: every comparison with NaN is false.
    if value is not None and math.isnan(value):
        raise click.BadParameter(f"{value} is not in the range 0<=x<=1.")
    return value


@click.command()
@MODEL_ARG
@dataset_options(
    default=None,
    default_help="Dataset to score on. Default: the one recorded in the model.",
    data_dir_help="Directory holding the IDX files. Default: the folder the model was "
    "trained from, if its training named one and it still holds the files, else "
    "$MNISTNET_DATA_DIR/<dataset>, else the user cache.",
)
@click.option(
    "--split",
    type=click.Choice(["test", "train"]),
    default="test",
    show_default=True,
    help="Which split to score.",
)
@click.option(
    "--min-accuracy",
    type=click.FloatRange(0, 1),
    default=None,
    callback=_finite,
    metavar="X",
    help="Exit with status 3 (after printing the results) when accuracy < X (0..1).",
)
@click.option(
    "--plots-dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    metavar="DIR",
    help="Also write the pictures of this evaluation (PNG) into DIR.",
)
@tta_option
@click.option("--info", "show_info", is_flag=True, help="Only show the metadata (as `info`).")
@json_option
@quiet_option
@handle_errors
def evaluate(
    model,
    dataset,
    data_dir,
    mirrors,
    split,
    min_accuracy,
    plots_dir,
    tta_shift,
    show_info,
    as_json,
    quiet,
):
    """Score a saved model on the images of its task.

    Binary models are scored on the images of their two digits, ten-class
    models on the whole split, prepared exactly as in training (pixel
    scaling and dtype come from the model file).

    \b
    Examples:
      mnistnet evaluate runs/binary-5-8/model.npz --dataset mnist-sample
      mnistnet evaluate runs/multiclass/model.npz --plots-dir report/
      mnistnet evaluate model.npz --min-accuracy 0.95 --json > report.json

    Exit codes: 0 ok, 1 bad model file or data, 2 usage error,
    3 accuracy below --min-accuracy.
    """
    if show_info:
        _info(model, as_json)
        return

    from mnistnet import evaluation
    from mnistnet.checkpoint import load_model
    from mnistnet.console import literal, make_console

    console = make_console(quiet or as_json)
    params, meta = load_model(model)
    if plots_dir is not None:
        from mnistnet.plots import PICTURE_FILES

        check_writable_dir(plots_dir, "--plots-dir", PICTURE_FILES)
    data = _load_data(console, meta, split, dataset, data_dir, mirrors)
    console.print(
        f"Scoring {literal(model)} on {len(data):,} {split} images of {literal(data.dataset)}"
    )
    report = evaluation.evaluate(model, params, meta, data, min_accuracy, tta_shift)
    if plots_dir is not None:
        from mnistnet import plots

        report.plots = plots.plot_report(params, meta, data, plots_dir)
        console.print(f"Wrote {len(report.plots)} pictures into {literal(plots_dir)}")
    _render(report, as_json, quiet)
    if report.passed is False:
        if not (as_json or quiet):
            click.echo(
                f"Accuracy {report.accuracy:.4f} is below --min-accuracy {min_accuracy:g}.",
                err=True,
            )
        sys.exit(EXIT_BELOW_THRESHOLD)


@click.command()
@MODEL_ARG
@json_option
@handle_errors
def info(model, as_json):
    """Show a saved model's metadata, without touching any data.

    Architecture, preprocessing, the training config, the final metrics
    and the hashes of the data files it was trained on.

    \b
    Example:
      mnistnet info runs/binary-5-8/model.npz --json
    """
    _info(model, as_json)


def _load_data(console, meta, split, dataset, data_dir, mirrors):
    from mnistnet import evaluation
    from mnistnet.cli.progress import download_progress
    from mnistnet.console import literal

    recorded = evaluation.recorded_dataset(meta)
    if dataset is not None and recorded and dataset != recorded:
        console.print(
            f"Note: the model was trained on {literal(recorded)}; scoring it on {dataset} as asked."
        )
    try:
        with download_progress(console) as progress:
            return evaluation.load_data(meta, split, dataset, data_dir, mirrors, progress)
    except ConfigError as exc:
        raise click.UsageError(USAGE_ERRORS.get(exc.setting, str(exc))) from None


def _render(report, as_json, quiet):
    from mnistnet.cli.views import print_report
    from mnistnet.console import print_json, stdout_console

    if as_json:
        print_json(report.to_dict())
    elif not quiet:
        print_report(stdout_console(), report)


def _info(model, as_json):
    from mnistnet.cli.views import print_info
    from mnistnet.console import print_json, stdout_console
    from mnistnet.evaluation import model_info

    doc = model_info(model)
    if as_json:
        print_json(doc)
    else:
        print_info(stdout_console(), doc)
