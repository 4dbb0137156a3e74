"""``mnistnet download``: fetch a dataset and verify every file.

mnistnet download                                   # MNIST into the user cache
mnistnet download --dataset mnist-sample            # bundled digits, offline
mnistnet download --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist
mnistnet download --dataset idx --data-dir ~/emnist-digits --json
"""

import click

from mnistnet.cli._common import dataset_options, handle_errors, json_option, quiet_option


@click.command()
@dataset_options(default="mnist")
@json_option
@quiet_option
@handle_errors
def download(dataset, data_dir, mirrors, as_json, quiet):
    """Fetch DATASET and verify each file against its pinned sha256.

    A file already present and verified is not downloaded again. Prints, per
    file, its name, size, whether a pinned hash matched, and its path.

    \b
    Data directory: --data-dir, else $MNISTNET_DATA_DIR/<dataset>,
    else the user cache. mnist-sample ships inside the package.
    Mirrors: --mirror, then $MNISTNET_MIRROR, then the built-in ones.
    """
    # Imported here: pooch and NumPy are not needed for `mnistnet --help`.
    from mnistnet import datasets
    from mnistnet.cli.progress import download_progress
    from mnistnet.console import make_console, print_json

    if dataset == "idx" and data_dir is None:
        raise click.UsageError(
            "--dataset idx needs --data-dir DIR (a directory holding the four IDX files)."
        )
    console = make_console(quiet=quiet)
    spec = datasets.get_spec(dataset)
    if spec.bundled and data_dir is not None:
        console.print(f"Note: --data-dir is ignored: {dataset} ships inside the package.")
    directory = datasets.resolve_data_dir(dataset, data_dir)
    with download_progress(console) as progress:
        files = datasets.fetch(
            dataset,
            data_dir=data_dir,
            mirrors=mirrors,
            progress=progress,
            # Without a terminal (logs, CI): one plain line per download instead of a bar.
            report=None if progress is not None or quiet else _plain_printer(console),
        )
    if as_json:
        print_json(
            {
                "dataset": dataset,
                "data_dir": str(directory),
                "files": [info.to_dict() for info in files],
            }
        )
    elif not quiet:
        _print_table(_table(dataset, directory, files))


def _plain_printer(console):
    from mnistnet.console import escape_control

    return lambda line: console.print(escape_control(line), markup=False, soft_wrap=True)


def _print_table(table):
    """Print ``table`` on stdout; on a pipe or in a file, without rich's trailing blanks."""
    from mnistnet.console import stdout_console

    console = stdout_console()
    if console.is_terminal:
        console.print(table)
        return
    # rich pads every line to the table's width: fine on a screen, noise in a log.
    with console.capture() as capture:
        console.print(table)
    click.echo("\n".join(line.rstrip() for line in capture.get().splitlines()))


def _table(dataset, directory, files):
    from rich import box
    from rich.table import Table

    from mnistnet.console import literal

    table = Table(
        title=f"{dataset}: {literal(directory)}", title_justify="left", box=box.SIMPLE_HEAD
    )
    table.add_column("file", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("verified")
    table.add_column("path", overflow="fold")
    for info in files:
        verified = "yes" if info.verified else "no (not pinned: hashes computed)"
        table.add_row(literal(info.name), f"{info.size:,}", verified, literal(info.path))
    return table
