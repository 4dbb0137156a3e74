"""``mnistnet train-binary`` and ``mnistnet train-multiclass``.

    mnistnet train-binary --digits 5 8 --lr 1e-5          # the course notebook
    mnistnet train-multiclass --config configs/multiclass-fast.toml
    mnistnet train-multiclass --resume runs/multiclass --epochs 300

Every setting has a default (the notebook's recipe), may be set in a TOML
file given with ``--config``, and is overridden by its flag. The commands
parse, call :mod:`mnistnet.experiment`, and render; no math here.
"""

import dataclasses
import sys

import click

from mnistnet.cli._common import (
    handle_errors,
    json_option,
    mirror_option,
    option_bundle,
    quiet_option,
)
from mnistnet.cli.signals import interrupt_status
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


def setting_option(setting, task, help_text=None):
    """The option of ``setting``, checked as a config file's value is; help as for ``task``.

    ``lr-find`` takes the training settings through it too.
    """
    return click.option(
        setting.flag,
        setting.name,
        type=_SettingType(setting),
        nargs=setting.kind.nargs,
        default=None,
        metavar=setting.kind.metavar,
        help=help_text or _help(setting, task),
    )


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="TOML file of settings (keys as the options, with _). Flags given here win.",
)


def _training_options(task):
    """Every setting of ``task`` as an option (from :data:`SETTINGS`), then this run's switches."""
    return option_bundle(
        config_option,
        *(setting_option(s, task) for s in SETTINGS.values() if task in s.tasks),
        mirror_option,
        click.option("--no-plots", is_flag=True, help="Do not draw the PNG pictures."),
        click.option(
            "--save-on-interrupt",
            is_flag=True,
            help="On Ctrl-C (or SIGTERM), save the model trained so far (marked "
            "interrupted); exit 130 (143).",
        ),
        click.option(
            "--overwrite",
            is_flag=True,
            help="Replace the run that --out holds (never other files). Without it, "
            "such an --out is refused and the default folder gets a number: runs/multiclass-2.",
        ),
        click.option(
            "--resume",
            metavar="RUN_DIR|MODEL.npz",
            type=click.Path(exists=True, path_type=str),
            help="Continue a saved run where it stopped (give a larger --epochs); its settings "
            "are kept, and the continued run replaces it unless --out names another folder.",
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
_SWITCHES = (
    "mirrors",
    "no_plots",
    "save_on_interrupt",
    "overwrite",
    "resume",
    "quiet",
    "as_json",
    "jsonl",
)


def _train(task, options):
    from mnistnet.console import make_console

    switches = {name: options.pop(name) for name in _SWITCHES}
    saved = _saved_run(switches["resume"])
    config = _resolve(task, options.pop("config_file"), options, saved)
    console = make_console(switches["quiet"])
    in_place = _in_place(config, saved)
    flag = "--resume" if in_place and options["out"] is None else "--out"
    with _open_run(config, switches["overwrite"] or in_place, flag) as folder:
        config = dataclasses.replace(config, out=folder.path)
        try:
            result = _fit(config, switches, console, saved)
        except KeyboardInterrupt as exc:
            _stop(exc, f"before training ended; {_kept(folder)}.")
        if result.interrupted and not (switches["save_on_interrupt"] and result.history.records):
            hint = "" if switches["save_on_interrupt"] else " (--save-on-interrupt keeps them)"
            _stop(None, f"after {len(result.history.records)} epochs; {_kept(folder)}{hint}.")
        staged = _save(result, switches, folder)
        try:
            _report(config, result, switches, console, staged, folder)
        except KeyboardInterrupt as exc:
            _stop(exc, f"after the run was saved in {folder.path}.")
    _exit_after_saving(result, folder, staged)


def _saved_run(path):
    """The run ``--resume`` names, read with its state (None without --resume)."""
    if path is None:
        return None
    from mnistnet.resume import load_saved_run

    return load_saved_run(path)


def _resolve(task, config_file, flag_values, saved=None):
    """The run's config from the file and the flags (and the run resumed)."""
    from mnistnet.resume import resumed_config

    try:
        file_values = read_config_file(config_file) if config_file else {}
        if saved is None:
            return resolve_config(task, file_values, flag_values, config_path=config_file)
        return resumed_config(task, saved, file_values, flag_values, config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _in_place(config, saved):
    """A resumed run written back into the folder it came from replaces that run."""
    return saved is not None and saved.is_in(config.out_dir)


def _open_run(config, overwrite, flag):
    """Reserve the run folder before any work, so that a bad ``flag`` (--out) fails at once."""
    from mnistnet.experiment import open_run
    from mnistnet.runfolder import RunFolderTaken

    try:
        return open_run(config, overwrite=overwrite)
    except RunFolderTaken as exc:
        raise click.BadParameter(_plain(str(exc)), param_hint=f"'{flag}'") from None


def _fit(config, switches, console, saved=None):
    """Load the data and train (or go on with the ``saved`` run), reporting every epoch."""
    from mnistnet import experiment
    from mnistnet.cli.progress import download_progress
    from mnistnet.cli.reporting import TrainingReporter
    from mnistnet.console import literal, print_json

    with download_progress(console) as progress:
        data = experiment.load_data(config, switches["mirrors"], progress=progress)
    _describe_data(console, config, data, saved)
    console.print(f"Run folder: {literal(config.out)}", soft_wrap=True)
    title = f"784-{config.hidden}-{N_OUTPUTS[config.task]} ({config.optimizer}, lr {config.lr:g})"
    first = 1 if saved is None else saved.epochs_done + 1
    with TrainingReporter(
        console, config.epochs, config.log_interval, title, data.validation is not None, first
    ) as reporter:

        def on_epoch(record):
            reporter.on_epoch(record)
            if switches["jsonl"]:
                print_json(record.to_dict(), one_line=True)

        return experiment.run_training(
            config,
            data.train,
            data.test,
            on_epoch=on_epoch,
            validation=data.validation,
            resume=saved,
        )


def _describe_data(console, config, data, saved):
    """A line on the data (and the run resumed); the data checked against the saved run's."""
    from mnistnet.console import literal

    held = f", {len(data.validation)} validation" if data.validation is not None else ""
    console.print(
        f"{config.dataset}: {len(data.train)} training{held} and {len(data.test)} test "
        f"images of {', '.join(map(str, config.classes))}",
        soft_wrap=True,
    )
    if saved is not None:
        from mnistnet.resume import check_same_data

        check_same_data(saved, data)
        console.print(
            f"Resuming {literal(saved.path)} after epoch {saved.epochs_done}, "
            f"to epoch {config.epochs}",
            soft_wrap=True,
        )


def _save(result, switches, folder):
    """Stage the run's files and pictures, then put the folder in place; a StagedRun.

    An interrupt before the folder is in place keeps nothing (an earlier
    run stays whole); one while drawing keeps the run without pictures.
    """
    from mnistnet import experiment

    try:
        staged = experiment.stage_run(result, folder, plots=not switches["no_plots"])
        experiment.finish_run(folder, staged)
    except KeyboardInterrupt as exc:  # the commit defers it: after it, the run is whole
        _stop(exc, f"after the run was saved in {folder.path}." if folder.committed
              else f"while saving; {_kept(folder)}.")  # fmt: skip
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        message = f"{where}{exc.strerror or exc}; {_kept(folder)}"
        raise click.ClickException(_plain(message)) from None
    return staged


def _report(config, result, switches, console, staged, folder):
    """The summary for people (stderr) and, with --json, the document (stdout)."""
    from mnistnet.cli.reporting import stopping_lines, summary_table
    from mnistnet.console import print_json

    paths, meta = staged.paths, staged.meta
    if switches["as_json"]:
        summary = {
            "config": config.to_dict(),
            "run_id": folder.run_id,
            "metrics": result.metrics,
            "epochs_trained": len(result.history.records),
            "interrupted": result.interrupted,
            "seconds": result.seconds,
            "validation": meta["validation"],
            "stopping": meta["stopping"],
            "paths": paths,
        }
        print_json(summary, one_line=switches["jsonl"])
    table, files = summary_table(result, paths)
    console.print(table)
    for line in stopping_lines(result):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(files)


def _exit_after_saving(result, folder, staged):
    """Exit 1 if the pictures failed, 130/143 if interrupted; say what was kept."""
    if staged.pictures == "failed":
        message = (
            f"the run was saved in {folder.path} without pictures: drawing them failed: "
            f"{staged.plot_error}"
        )
        raise click.ClickException(_plain(message))
    if staged.pictures == "interrupted":
        _stop(staged.plot_error, f"while drawing the pictures; the run was saved in {folder.path} "
                    "without pictures.")  # fmt: skip
    if result.interrupted:
        _stop(None, f"after {len(result.history.records)} epochs; the model trained so far "
                    f"was saved in {folder.path}.")  # fmt: skip


def _plain(text):
    """``text`` for the terminal, its control characters spelled out (paths are data)."""
    from mnistnet.console import escape_control  # rich stays out of `mnistnet --help`

    return escape_control(text)


def _kept(folder):
    """What an interrupt or error before the run folder is in place leaves behind."""
    if folder.replaces:
        return f"nothing saved, {folder.path} still holds its earlier run"
    return "nothing saved"


def _stop(exc, what):
    """Print "Interrupted WHAT" (or "Terminated WHAT") on stderr; exit 130 (or 143)."""
    status, word = interrupt_status(exc)
    click.echo(_plain(f"{word} {what}"), err=True)
    sys.exit(status)
