"""``mnistnet lr-find``: the learning-rate range test for a training recipe.

    mnistnet lr-find --dataset mnist-sample                    # the notebook's ten-class recipe
    mnistnet lr-find --config configs/multiclass-fast.toml --dataset mnist-sample
    mnistnet lr-find --digits 5 8 --dataset mnist-sample       # the binary task

It takes the training options (the same flags and config files as
``train-multiclass``, and ``--digits A B`` for the binary task), runs
:func:`mnistnet.lr_find.range_test_for` and renders the result.
"""

import click

from mnistnet.cli._common import (
    handle_errors,
    json_option,
    mirror_option,
    option_bundle,
    quiet_option,
    refuse_run_folder,
)
from mnistnet.cli.train import config_option, setting_option
from mnistnet.config import (
    SETTINGS,
    ConfigError,
    Float,
    InvalidValue,
    read_config_file,
    resolve_config,
)
from mnistnet.tasks import N_OUTPUTS

DEFAULT_OUT = "runs/lr-find"
_DIGITS_HELP = "Two different digits: test the binary task on them (default: all ten classes)."
_NOT_USED = ("epochs", "lr", "lr_schedule", "early_stopping", "target_accuracy", "log_every")


def _help(setting):
    if setting.name == "digits":
        return _DIGITS_HELP
    if setting.name == "out":
        return f"Folder for lr-find.png; not a training run's folder. [default: {DEFAULT_OUT}]"
    if setting.name in _NOT_USED:
        return "Accepted, so a training command line works as it is; not used here."
    return None


class _Rate(click.ParamType):
    """A learning rate: a finite number > 0, checked as ``--lr`` is."""

    name = "rate"
    kind = Float(0, low_open=True)

    def convert(self, value, param, ctx):
        try:
            return self.kind.from_flag(str(value))
        except InvalidValue as exc:
            self.fail(f"{value!r} is not {exc.expected}", param, ctx)


def _lr_find_options():
    """The training settings (help for the ten-class task), then lr-find's own options."""
    settings = (
        setting_option(s, "multiclass" if "multiclass" in s.tasks else s.tasks[0], _help(s))
        for s in SETTINGS.values()
    )
    return option_bundle(
        config_option,
        *settings,
        mirror_option,
        click.option("--lr-min", type=_Rate(), default=None, metavar="X",
                     help="Smallest learning rate tried. [default: 1e-6, divided by the batch "
                     "size with --reduction sum or example]"),
        click.option("--lr-max", type=_Rate(), default=None, metavar="X",
                     help="Largest learning rate tried. [default: 10, divided likewise]"),
        click.option("--steps", type=click.IntRange(10, 100_000), default=None, metavar="N",
                     help="Steps from --lr-min to --lr-max. [default: 300 mini-batch steps, "
                     "100 for gd]"),
        click.option("--no-plots", is_flag=True, help="Do not draw lr-find.png."),
        quiet_option,
        json_option,
    )  # fmt: skip


@click.command("lr-find")
@_lr_find_options()
@handle_errors
def lr_find(**options):
    """Suggest a learning rate: train with a rate growing from tiny to large, watch the loss.

    From a fresh network, one step per learning rate, the rate growing
    exponentially (mini-batch steps; full-batch steps for gd), until the loss
    explodes. Draws lr-find.png (smoothed loss against the learning rate) and
    prints the suggested rate and the rule that chose it. Takes the training
    options; --digits A B tests the binary task.

    \b
    Examples:
      mnistnet lr-find --dataset mnist-sample
      mnistnet lr-find --config configs/multiclass-fast.toml --dataset mnist-sample
    """
    _lr_find(options)


def _lr_find(options):
    from mnistnet import experiment
    from mnistnet.cli.progress import download_progress
    from mnistnet.console import make_console, print_json
    from mnistnet.errors import MnistnetError
    from mnistnet.fileio import check_writable_dir
    from mnistnet.lr_find import FIX, range_test_for

    switches = {k: options.pop(k) for k in ("mirrors", "no_plots", "quiet", "as_json")}
    limits = {k: options.pop(k) for k in ("lr_min", "lr_max", "steps")}
    if None not in (limits["lr_min"], limits["lr_max"]) and limits["lr_min"] >= limits["lr_max"]:
        raise click.UsageError("--lr-min must be smaller than --lr-max")
    config = _resolve(options.pop("config_file"), options)
    out = config.out or DEFAULT_OUT
    if not switches["no_plots"]:
        refuse_run_folder(out, "lr-find.png", DEFAULT_OUT)
        check_writable_dir(out, "--out", ("lr-find.png",))
    console = make_console(switches["quiet"] or switches["as_json"])
    with download_progress(console) as progress:
        data = experiment.load_data(config, switches["mirrors"], progress=progress)
    console.print(
        f"Range test: 784-{config.hidden}-{N_OUTPUTS[config.task]} {config.task}, "
        f"{config.optimizer}, "
        f"{len(data.train)} training images"
    )
    test = range_test_for(config, data.train, **limits)
    plot = None
    if not switches["no_plots"]:
        from mnistnet.run_plots import plot_lr_find

        plot = plot_lr_find(test, out, f"{_title(config)} on {config.dataset}")
    if switches["as_json"]:
        print_json(_document(config, test, plot))
    elif not switches["quiet"]:
        _render(test, plot, config)
    if test.suggestion is None:
        setting = FIX.get(test.rule, "lr_max")
        raise MnistnetError(f"no learning rate to suggest: {test.rule}", setting=setting)


def _resolve(config_file, flag_values):
    """The recipe's config; the binary task when digits are given (as a flag or in the file)."""
    try:
        file_values = read_config_file(config_file) if config_file else {}
        binary = flag_values.get("digits") is not None or file_values.get("digits") is not None
        task = "binary" if binary else "multiclass"
        return resolve_config(task, file_values, flag_values, config_path=config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _title(config):
    if config.task == "binary":
        return f"binary {config.digits[0]} vs {config.digits[1]}"
    return "ten classes"


def _document(config, test, plot):
    return {
        "task": config.task,
        "config": config.to_dict(),
        "suggestion": test.suggestion,
        "rule": test.rule,
        "lowest_loss_lr": test.lowest if len(test.losses) else None,
        "stopped": test.stopped,
        "lr_min": test.lr_min,
        "lr_max": test.lr_max,
        "steps": test.steps,
        "steps_run": len(test.losses),
        "plot": plot,
    }


def _render(test, plot, config):
    from mnistnet.console import literal, stdout_console

    out = stdout_console()
    out.print(
        f"Learning rates {test.lr_min:.3g} to {test.lr_max:.3g} over {test.steps} steps: "
        f"{test.stopped}.",
        highlight=False,
    )
    if len(test.losses):
        out.print(f"The smoothed loss was lowest at lr {test.lowest:.3g}.", highlight=False)
    if test.suggestion is not None:
        command = "train-binary" if config.task == "binary" else "train-multiclass"
        out.print(f"Suggested learning rate: {test.suggestion:.2g}", highlight=False)
        out.print(f"  rule: {test.rule}", highlight=False)
        out.print(
            f"  train with: mnistnet {command} ... --lr {test.suggestion:.2g}", highlight=False
        )
    if plot:
        out.print(f"Picture: {literal(plot)}", highlight=False)
