"""``mnistnet train-binary`` and ``mnistnet train-multiclass``.

    mnistnet train-binary --digits 5 8 --lr 1e-5          # the course notebook
    mnistnet train-multiclass --config configs/multiclass-fast.toml

Every setting has a default (the notebook's recipe), may be set in a TOML
file given with ``--config``, and is overridden by its flag. The commands
parse, call :mod:`mnistnet.experiment`, and render; no math here.
"""

import sys

import click

from mnistnet.cli._common import (
    handle_errors,
    json_option,
    mirror_option,
    option_bundle,
    quiet_option,
)
from mnistnet.config import (
    SETTINGS,
    Choice,
    ConfigError,
    Float,
    Folder,
    Int,
    InvalidValue,
    read_config_file,
    resolve_config,
)
from mnistnet.errors import EXIT_INTERRUPTED
from mnistnet.fileio import check_writable_dir
from mnistnet.tasks import N_OUTPUTS


class _SettingType(click.ParamType):
    """A flag's text, checked by its setting's kind: the check a config file's value gets.

    It converts the text to the value a config file would hold (``"all"``
    stays a word); :func:`resolve_config` normalises it with the file's values.
    """

    def __init__(self, setting):
        self.setting = setting
        self.name = setting.name

    def convert(self, value, param, ctx):
        if not isinstance(value, str):  # converted already
            return value
        try:
            return self.setting.kind.from_flag(value)
        except InvalidValue as exc:
            self.fail(f"{value!r} is not {exc.expected}", param, ctx)

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        kind = self.setting.kind
        if isinstance(kind, Choice):
            return [CompletionItem(c) for c in kind.choices if c.startswith(incomplete)]
        if isinstance(kind, Folder):
            return [CompletionItem(incomplete, type="dir")]
        return []


def _help(setting, task):
    """The setting's help, then its default for ``task`` and, for numbers, their range."""
    if setting.required:
        extra = ["required, or in --config"]
    else:
        extra = [f"default: {setting.default_text(task)}"]
    if isinstance(setting.kind, (Int, Float)):
        extra.append(setting.kind.values.replace("`", ""))
    return f"{setting.help} [{'; '.join(extra)}]"


def _setting_option(setting, task):
    return click.option(
        setting.flag,
        setting.name,
        type=_SettingType(setting),
        nargs=setting.kind.nargs,
        default=None,
        metavar=setting.kind.metavar,
        help=_help(setting, task),
    )


def _training_options(task):
    """Every setting of ``task`` as an option (from :data:`SETTINGS`), then this run's switches."""
    return option_bundle(
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            help="TOML file of settings (keys as the options, with _). Flags given here win.",
        ),
        *(_setting_option(s, task) for s in SETTINGS.values() if task in s.tasks),
        mirror_option,
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
    )


@click.command("train-binary")
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


# The flags about this one run, not settings: never in a config file.
_SWITCHES = ("mirrors", "no_plots", "save_on_interrupt", "quiet", "as_json", "jsonl")


def _train(task, options):
    from mnistnet import experiment
    from mnistnet.cli.progress import download_progress
    from mnistnet.cli.reporting import TrainingReporter
    from mnistnet.console import make_console, print_json

    switches = {name: options.pop(name) for name in _SWITCHES}
    config = _resolve(task, options.pop("config_file"), options)
    console = make_console(switches["quiet"])
    with download_progress(console) as progress:
        train, test = experiment.load_data(config, switches["mirrors"], progress=progress)
    console.print(
        f"{config.dataset}: {len(train)} training and {len(test)} test images "
        f"of {', '.join(map(str, config.classes))}"
    )
    title = f"784-{config.hidden}-{N_OUTPUTS[task]} ({config.optimizer}, lr {config.lr:g})"
    with TrainingReporter(console, config.epochs, config.log_interval, title) as reporter:

        def on_epoch(record):
            reporter.on_epoch(record)
            if switches["jsonl"]:
                print_json(record.to_dict(), one_line=True)

        result = experiment.run_training(config, train, test, on_epoch=on_epoch)

    save_on_interrupt = switches["save_on_interrupt"]
    if result.interrupted and not (save_on_interrupt and result.history.records):
        hint = "" if save_on_interrupt else " (--save-on-interrupt keeps what was trained)"
        console.print(
            f"Interrupted after {len(result.history.records)} epochs; nothing saved{hint}."
        )
        sys.exit(EXIT_INTERRUPTED)
    _save_and_report(config, result, switches, console)


def _resolve(task, config_file, flag_values):
    """The run's config from the file and the flags; its output folder checked, before any work."""
    from mnistnet.experiment import OUTPUT_FILES
    from mnistnet.plots import PICTURE_FILES

    try:
        file_values = read_config_file(config_file) if config_file else {}
        config = resolve_config(task, file_values, flag_values, config_path=config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    check_writable_dir(config.out_dir, "--out", OUTPUT_FILES + PICTURE_FILES)
    return config


def _save_and_report(config, result, switches, console):
    """Write the run's files, then print the summary (and the JSON document)."""
    from mnistnet import experiment
    from mnistnet.cli.reporting import summary_table
    from mnistnet.console import print_json

    out_dir = config.out_dir
    paths, meta = experiment.save_run(result, out_dir)
    plot_error = None
    if not switches["no_plots"]:
        try:
            paths.update(experiment.write_plots(result, meta, out_dir))
        except Exception as exc:  # the model is saved already; report, keep it
            plot_error = exc

    if switches["as_json"]:
        summary = {
            "config": config.to_dict(),
            "metrics": result.metrics,
            "epochs_trained": len(result.history.records),
            "interrupted": result.interrupted,
            "seconds": result.seconds,
            "paths": paths,
        }
        print_json(summary, one_line=switches["jsonl"])
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
