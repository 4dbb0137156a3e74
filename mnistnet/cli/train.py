"""``mnistnet train-binary`` and ``mnistnet train-multiclass``.

    mnistnet train-binary --digits 5 8 --lr 1e-5          # the course notebook
    mnistnet train-multiclass --config configs/multiclass-fast.toml

Every setting has a default (the notebook's recipe), may be set in a TOML
file given with ``--config``, and is overridden by its flag. The commands
parse, call :mod:`mnistnet.experiment`, and render; no math here.
"""

import sys

import click

from mnistnet.cli._common import handle_errors, json_option, quiet_option
from mnistnet.config import CHOICES, DEFAULTS, ConfigError, read_config_file, resolve_config
from mnistnet.errors import EXIT_INTERRUPTED
from mnistnet.fileio import check_writable_dir


class _IntOr(click.ParamType):
    """A whole number >= 1, or one word (``all`` / ``full``)."""

    def __init__(self, word):
        self.word = word
        self.name = f"N|{word}"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        if value.lower() == self.word:
            return self.word
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a whole number nor '{self.word}'", param, ctx)
        if number < 1:
            self.fail(f"{number} must be >= 1", param, ctx)
        return number


def _training_options(task):
    d = DEFAULTS[task]

    def default(text):
        return f" [default: {text}]"

    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            help="TOML file of settings (keys as the options, with _). Flags given here win.",
        ),
        click.option(
            "--dataset",
            type=click.Choice(CHOICES["dataset"]),
            help="Dataset to train on; fetched if missing." + default("mnist"),
        ),
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False),
            help="Folder holding (or to receive) the IDX files. Default: "
            "$MNISTNET_DATA_DIR/<dataset>, else the user cache.",
        ),
        click.option(
            "--mirror",
            "mirrors",
            multiple=True,
            metavar="URL",
            help="Base URL tried before the built-in mirrors (repeatable).",
        ),
        click.option(
            "--samples-per-class",
            type=_IntOr("all"),
            help="First N training images of each class, or 'all'." + default(1000),
        ),
        click.option("--hidden", type=click.IntRange(min=1), help="Hidden units." + default(256)),
        click.option("--epochs", type=click.IntRange(min=1), help="Epochs." + default(d["epochs"])),
        click.option(
            "--lr",
            type=click.FloatRange(min=0, min_open=True),
            help="Learning rate. The default suits the notebook's gd on the summed loss of raw "
            "pixels; with --reduction mean --pixels unit try 0.1 (sgd, momentum) or 0.001 "
            "(adam)." + default(d["lr"]),
        ),
        click.option(
            "--optimizer",
            type=click.Choice(CHOICES["optimizer"]),
            help="gd = full batch (the notebook); sgd, momentum, adam = mini-batches."
            + default("gd"),
        ),
        click.option(
            "--batch-size",
            type=_IntOr("full"),
            help="Mini-batch size, or 'full'." + default("full for gd, 128 otherwise"),
        ),
        click.option(
            "--momentum",
            type=click.FloatRange(0, 1, max_open=True),
            help="Momentum." + default(0.9),
        ),
        click.option(
            "--weight-decay",
            type=click.FloatRange(min=0),
            help="L2 penalty on the weights (weight_decay/2 * ||W||^2)." + default(0),
        ),
        click.option(
            "--lr-schedule",
            type=click.Choice(CHOICES["lr_schedule"]),
            help="Learning rate over the epochs." + default("constant"),
        ),
        click.option(
            "--reduction",
            type=click.Choice(CHOICES["reduction"]),
            help="Gradient of the sum (the notebook) or the mean of per-sample losses."
            + default("sum"),
        ),
        click.option(
            "--pixels",
            type=click.Choice(CHOICES["pixels"]),
            help="raw = 0..255 (the notebook), unit = divided by 255." + default("raw"),
        ),
        click.option(
            "--dtype", type=click.Choice(CHOICES["dtype"]), help="Float type." + default("float64")
        ),
        click.option(
            "--init",
            type=click.Choice(CHOICES["init"]),
            help="notebook = N(0, 0.01) from RandomState(seed); xavier = N(0, 1/fan_in)."
            + default("notebook"),
        ),
        click.option(
            "--seed", type=click.IntRange(0, 2**32 - 1), help="Random seed." + default(d["seed"])
        ),
        click.option(
            "--augment-shift",
            type=click.IntRange(0, 8),
            help="Shift each training image by up to K pixels, anew every epoch." + default(0),
        ),
        click.option(
            "--log-every",
            type=click.IntRange(min=1),
            help="Print a row every N epochs." + default("epochs/10"),
        ),
        click.option(
            "--out",
            type=click.Path(file_okay=False),
            help="Output folder."
            + default("runs/binary-A-B" if task == "binary" else "runs/multiclass"),
        ),
        click.option("--no-plots", is_flag=True, help="Do not draw the PNG pictures."),
        click.option(
            "--save-on-interrupt",
            is_flag=True,
            help="On Ctrl-C, save the model trained so far (marked interrupted); exit 130.",
        ),
        quiet_option,
        json_option,
        click.option(
            "--jsonl",
            is_flag=True,
            help="Print one JSON line per epoch on stdout (with --json, the final "
            "document comes last, on one line).",
        ),
    ]

    def decorator(func):
        for option in reversed(options):
            func = option(func)
        return func

    return decorator


@click.command("train-binary")
@click.option(
    "--digits",
    nargs=2,
    type=click.IntRange(0, 9),
    default=None,
    metavar="A B",
    help="Two different digits; A -> label 0, B -> label 1 (required, or in --config).",
)
@_training_options("binary")
@handle_errors
def train_binary(**options):
    """Train 784-H-1 (sigmoid hidden, sigmoid output, binary cross-entropy) on two digits.

    The defaults are the course notebook's recipe: 100 epochs of full-batch
    gradient descent at lr 1e-5 on the summed loss, raw pixels, seed 3,
    the first 1000 training images of each digit.

    \b
    Example:
      mnistnet train-binary --digits 5 8 --lr 1e-5
    """
    _train("binary", options)


@click.command("train-multiclass")
@_training_options("multiclass")
@handle_errors
def train_multiclass(**options):
    """Train 784-H-10 (sigmoid hidden, softmax output, cross-entropy) on all ten classes.

    The defaults are the course notebook's recipe: 200 epochs of full-batch
    gradient descent at lr 1.7e-5 on the summed loss, raw pixels, seed 29,
    the first 1000 training images of each digit.

    \b
    Example:
      mnistnet train-multiclass --config configs/multiclass-fast.toml
    """
    _train("multiclass", options)


def _train(task, options):
    from mnistnet import experiment
    from mnistnet.cli.progress import download_progress
    from mnistnet.cli.reporting import TrainingReporter, summary_table
    from mnistnet.console import make_console, print_json
    from mnistnet.plots import PICTURE_FILES

    quiet, as_json, jsonl = options.pop("quiet"), options.pop("as_json"), options.pop("jsonl")
    no_plots, save_on_interrupt = options.pop("no_plots"), options.pop("save_on_interrupt")
    mirrors = options.pop("mirrors")
    config_file = options.pop("config_file")
    try:
        file_values = read_config_file(config_file) if config_file else {}
        config = resolve_config(task, file_values, options, config_path=config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    # Now, not after the training.
    check_writable_dir(config.out_dir, "--out", experiment.OUTPUT_FILES + PICTURE_FILES)

    console = make_console(quiet)
    with download_progress(console) as progress:
        train, test = experiment.load_data(config, mirrors, progress=progress)
    console.print(
        f"{config.dataset}: {len(train)} training and {len(test)} test images "
        f"of {', '.join(map(str, config.classes))}"
    )
    title = f"784-{config.hidden}-{experiment.OUTPUTS[task]} ({config.optimizer}, lr {config.lr:g})"
    with TrainingReporter(console, config.epochs, config.log_interval, title) as reporter:

        def on_epoch(record):
            reporter.on_epoch(record)
            if jsonl:
                print_json(record.to_dict(), one_line=True)

        result = experiment.run_training(config, train, test, on_epoch=on_epoch)

    if result.interrupted and not (save_on_interrupt and result.history.records):
        hint = "" if save_on_interrupt else " (--save-on-interrupt keeps what was trained)"
        console.print(
            f"Interrupted after {len(result.history.records)} epochs; nothing saved{hint}."
        )
        sys.exit(EXIT_INTERRUPTED)

    out_dir = config.out_dir
    paths, meta = experiment.save_run(result, out_dir)
    plot_error = None
    if not no_plots:
        try:
            paths.update(experiment.write_plots(result, meta, out_dir))
        except Exception as exc:  # the model is saved already; report, keep it
            plot_error = exc

    if as_json:
        summary = {
            "config": config.to_dict(),
            "metrics": result.metrics,
            "epochs_trained": len(result.history.records),
            "interrupted": result.interrupted,
            "seconds": result.seconds,
            "paths": paths,
        }
        print_json(summary, one_line=jsonl)
    table, files = summary_table(result, paths)
    console.print(table)
    console.print(files)
    if plot_error is not None:
        raise click.ClickException(
            f"the model was saved in {out_dir}, but drawing the pictures failed: {plot_error}"
        )
    if result.interrupted:
        console.print("Interrupted: the model trained so far was saved.")
        sys.exit(EXIT_INTERRUPTED)
