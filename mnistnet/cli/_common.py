"""What every command shares: error translation and common options."""

import contextlib
import functools
import os
import sys

import click

from mnistnet.cli.signals import interrupt_status, sigterm_as_interrupt
from mnistnet.datasets import DATASETS
from mnistnet.errors import EXIT_FAILURE, MnistnetError


def handle_errors(func):
    """Turn expected failures into one-line errors and documented exit codes.

    ``MnistnetError`` -> ``Error: ...`` on stderr, exit 1.
    ``KeyboardInterrupt`` -> ``Interrupted.`` on stderr, exit 130; SIGTERM is
    handled the same way (``Terminated.``, exit 143: :mod:`mnistnet.cli.signals`).
    ``OSError`` (a file that cannot be read or written) -> one line naming
    the file, exit 1. ``MemoryError`` (a run too large for the machine) ->
    one line, exit 1.
    Anything else is a bug and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with sigterm_as_interrupt():
                return func(*args, **kwargs)
        except MnistnetError as exc:
            from mnistnet.console import escape_control  # rich stays out of `mnistnet --help`

            # Messages name files and quote their contents: never let them drive the terminal.
            raise click.ClickException(escape_control(_with_flag(exc), keep="\n")) from None
        except KeyboardInterrupt as exc:
            status, word = interrupt_status(exc)
            click.echo(f"{word}.", err=True)
            sys.exit(status)
        except MemoryError:
            raise click.ClickException(
                "out of memory: this machine cannot hold the arrays this run needs; try a "
                "smaller hidden layer (--hidden), mini-batches (--batch-size) or fewer images"
            ) from None
        except BrokenPipeError:
            # The reader went away (`mnistnet info m.npz | head -1`): stop quietly,
            # and point stdout at devnull so the final flush cannot fail again.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_FAILURE)
        except OSError as exc:  # a file we could not read or write
            from mnistnet.console import escape_control

            where = f"{exc.filename}: " if exc.filename else ""
            message = escape_control(f"{where}{exc.strerror or exc}")
            raise click.ClickException(message) from None

    return wrapper


def refuse_run_folder(out, what, default):
    """A usage error (exit 2) when ``what``, written into ``out``, would land in a run folder.

    A training run's folder holds its run's files and nothing else: one
    file more, and --resume and --overwrite refuse the folder (README, "Run
    folders"). ``default`` is the command's own folder, suggested instead
    unless it is a run folder too.
    """
    from mnistnet.console import escape_control
    from mnistnet.experiment import training_run_receiving

    folder = training_run_receiving(out)
    if folder is None:
        return
    if os.path.normpath(out) == folder:
        where = f"{out} is a training run's folder; {what} there"
    else:
        where = f"{out} is inside the training run's folder {folder}; a folder there"
    instead = "." if training_run_receiving(default) is not None else f", such as {default}."
    message = f"{where} would keep --resume and --overwrite from replacing the run. "
    message += f"Choose another folder{instead}"
    raise click.BadParameter(escape_control(message), param_hint="'--out'")


def _with_flag(exc):
    """The error's message, with the flag of the setting it concerns: "... (--lr)".

    Library errors speak of "the learning rate" and carry ``setting="lr"``;
    the flag is looked up among the running command's options.
    """
    message = str(exc)
    ctx = click.get_current_context(silent=True)
    if exc.setting is None or ctx is None:
        return message
    for param in ctx.command.params:
        if param.name == exc.setting and isinstance(param, click.Option):
            flag = max(param.opts, key=len)
            return message if flag in message else f"{message} ({flag})"
    return message


def option_bundle(*decorators):
    """One decorator applying ``decorators``; their options show in the order given."""

    def decorator(func):
        for option in reversed(decorators):
            func = option(func)
        return func

    return decorator


mirror_option = click.option(
    "--mirror",
    "mirrors",
    multiple=True,
    metavar="URL",
    help="Base URL to try before the built-in mirrors (repeatable; "
    "also MNISTNET_MIRROR, space-separated).",
)


def dataset_options(default="mnist", default_help=None, data_dir_help=None):
    """``--dataset``, ``--data-dir`` and ``--mirror``, shared by every command that reads data."""

    return option_bundle(
        click.option(
            "--dataset",
            type=click.Choice(tuple(DATASETS)),
            default=default,
            show_default=default is not None,
            help=default_help or "Dataset to use.",
        ),
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=str),
            default=None,
            help=data_dir_help
            or "Directory holding (or to receive) the IDX files. "
            "Default: $MNISTNET_DATA_DIR/<dataset>, else the user cache.",
        ),
        mirror_option,
    )


def quiet_option(func):
    return click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")(func)


def json_option(func):
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(func)


def tta_option(func):
    """``--tta-shift N`` of ``evaluate`` and ``predict`` (see :mod:`mnistnet.tta`)."""
    return click.option(
        "--tta-shift",
        type=click.IntRange(0, 8),
        default=0,
        show_default=True,
        metavar="N",
        help="Test-time augmentation: average the probabilities of each image and its 4 copies "
        "moved by N pixels up, down, left and right (0: off).",
    )(func)
