"""``mnistnet predict``: read a person's own digits (photos, scans, drawings) with a model.

\b
  mnistnet predict runs/multiclass/model.npz photo.jpg
  mnistnet predict model.npz my-digits/ --show why.png
  mnistnet predict model.npz number.png --split-digits --json

Parse, call :mod:`mnistnet.prediction` (which reads the files with
:mod:`mnistnet.imagefiles` and preprocesses them with
:mod:`mnistnet.images`), render. Every image is read and preprocessed
before anything is printed or written. An image that cannot be read does
not stop the others: it is a row of the table (an entry of ``errors`` in
the JSON) naming it and why, and the command ends with ``Error: ...`` and
exit status 1. When no image at all can be read, there is no table: one
error names the image (or lists them).
"""

import os

import click

from mnistnet.cli._common import handle_errors, json_option, quiet_option, tta_option
from mnistnet.errors import MnistnetError
from mnistnet.fileio import check_writable_dir


@click.command()
@click.argument("model", metavar="MODEL.npz", type=click.Path(path_type=str))
@click.argument("paths", metavar="PATH...", nargs=-1, required=True, type=click.Path())
@click.option(
    "--split-digits",
    "split",
    is_flag=True,
    help="Each image holds a row of digits (a number): read them one by one, left to right.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    metavar="K",
    help="Show the K most probable classes (2: the prediction and the runner-up).",
)
@click.option(
    "--show",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    metavar="PICTURE.png",
    help="Draw each image, the 28x28 image the network saw and its probabilities.",
)
@click.option(
    "--save-preprocessed",
    "save_dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    metavar="DIR",
    help="Write each 28x28 image the network saw as a PNG into DIR.",
)
@click.option(
    "--preprocess",
    type=click.Choice(["auto", "none"]),
    default="auto",
    show_default=True,
    help="auto: make each image look like MNIST (see the README); "
    "none: take 28x28 images as they are.",
)
@tta_option
@json_option
@quiet_option
@handle_errors
def predict(model, paths, split, top, show, save_dir, preprocess, tta_shift, as_json, quiet):
    """Classify your own images of digits with a trained model.

    PATH is a picture (PNG, JPEG, BMP, GIF, TIFF, WebP; any size, colour or
    grey), a folder (its pictures and .npy files, by name), a .npy file or
    an IDX images file (one image or a stack). Pictures are preprocessed as
    MNIST's were: inverted when the ink is dark, contrast stretched,
    cropped to the ink, scaled to 20 pixels and centred by mass in 28x28
    (Fashion-MNIST models: scaled to fill 28x28, centred).

    \b
    Examples:
      mnistnet predict runs/multiclass/model.npz photo.jpg
      mnistnet predict model.npz my-digits/ --show why.png --top 3
      mnistnet predict model.npz number.jpg --split-digits --json

    An image that cannot be read (or has no ink) is listed with the reason,
    and the others are still classified.

    Exit codes: 0 every image classified, 1 a bad model file or an image
    that could not be read (or had no ink), 2 usage error.
    """
    if split and preprocess == "none":
        raise click.UsageError("--split-digits needs --preprocess auto")
    from mnistnet import prediction
    from mnistnet.checkpoint import load_model
    from mnistnet.console import literal, make_console
    from mnistnet.predict_plots import MAX_ROWS

    console = make_console(quiet or as_json)
    params, meta = load_model(model)
    if save_dir is not None:
        check_writable_dir(save_dir, "--save-preprocessed")
    if show is not None:
        check_writable_dir(os.path.dirname(os.path.abspath(show)), "--show")
    files = _expand(paths, quiet)
    failures = []  # images that cannot be read: rows of their own, and exit status 1
    prepared = list(
        prediction.prepare(
            files,
            preprocess,
            prediction.convention(meta),
            split,
            keep=MAX_ROWS if show else 0,
            failures=failures,
        )
    )
    if not prepared:
        raise MnistnetError(_none_read(failures))
    top = min(top, len(meta["classes"]))
    P, entries = prediction.answer(params, meta, prepared, top, tta_shift)

    if save_dir is not None:
        written = _save_preprocessed(prepared, save_dir, meta)
        console.print(f"Wrote {written:,} images into {literal(save_dir)}", soft_wrap=True)
    if show is not None:
        _show(prepared, P, meta, show)
        console.print(f"Wrote {literal(show)}", soft_wrap=True)
    if as_json:
        from mnistnet.console import print_json

        print_json(prediction.document(model, meta, entries, failures, preprocess, tta_shift))
    elif not quiet:
        from mnistnet.console import stdout_console

        rows = prediction.in_reading_order(entries, failures)
        _print_table(stdout_console(), rows, meta, top, split)
    if failures:
        shown_in = '"errors" in the JSON' if as_json else None if quiet else "the table"
        raise MnistnetError(_some_failed(failures, len(prepared), shown_in))


def _expand(paths, quiet):
    """The files to read from PATH...; list the folders' other entries on stderr."""
    from mnistnet.console import literal, make_console
    from mnistnet.imagefiles import expand_paths

    files, skipped = expand_paths(paths)
    notices = make_console(quiet)  # skipped files are listed even with --json
    for path in skipped:
        notices.print(f"Skipped {literal(path)} (not a picture or .npy file)", soft_wrap=True)
    if not files:
        raise MnistnetError(f"no pictures or .npy files in {', '.join(paths)}")
    return files


def _none_read(failures):
    """The error when no image could be read: the image's own, or each of them listed."""
    if len(failures) == 1:
        return _one_line(failures[0])
    return f"could not read any of the {len(failures):,} images:" + _listed(failures)


def _some_failed(failures, n_read, shown_in):
    """The closing error when some images could not be read; ``shown_in``: where their
    errors are already shown (None: list them here)."""
    total = len(failures) + n_read
    head = f"could not read {len(failures):,} of {total:,} images; the rest were classified"
    return f"{head} (see {shown_in})" if shown_in else f"{head}:" + _listed(failures)


def _listed(failures):
    return "".join(f"\n  {_one_line(f)}" for f in failures)


def _one_line(failure):
    """A failure's message on one line: a newline in a file name is spelled out."""
    from mnistnet.console import escape_control

    return escape_control(failure.message)


def _save_preprocessed(prepared, folder, meta):
    """Write every 28x28 image, as the network saw it, as ``<name>[-<index>][-digit<k>].png``;
    return how many."""
    from PIL import Image

    from mnistnet import prediction
    from mnistnet.fileio import atomic_path

    used = set()
    for p in prepared:
        stem = os.path.splitext(os.path.basename(p.path))[0]
        if p.index is not None:
            stem += f"-{p.index}"
        for k, image in enumerate(prediction.as_seen(p.images, meta)):
            base = stem if p.boxes is None else f"{stem}-digit{k + 1}"
            name, n = base, 1
            while name in used:  # the same file name in two folders
                n += 1
                name = f"{base}-{n}"
            used.add(name)
            with atomic_path(os.path.join(folder, name + ".png")) as tmp:
                Image.fromarray(image).save(tmp, format="PNG")
    return len(used)


def _show(prepared, P, meta, path):
    from mnistnet import prediction
    from mnistnet.predict_plots import ShowRow, plot_predictions
    from mnistnet.tasks import display_names, task_title

    rows = []
    for p, Pi in zip(prepared, P, strict=True):
        for k, image in enumerate(prediction.as_seen(p.images, meta)):
            label = p.name if p.boxes is None else f"{p.name}, digit {k + 1}"
            box = None if p.boxes is None else p.boxes[k]
            rows.append(ShowRow(label, p.original, box, image, Pi[k]))
    names = display_names(meta)
    plot_predictions(rows, names, path, f"mnistnet predict: {task_title(meta['task'], names)}")


def _print_table(out, entries, meta, top, split):
    from rich.table import Table
    from rich.text import Text

    from mnistnet.console import escape_control, literal
    from mnistnet.tasks import display_names

    name_of = dict(zip(meta["classes"], display_names(meta), strict=True))
    table = Table(title_justify="left")
    table.add_column("image")
    if split:
        table.add_column("reads")
        table.add_column("digit", justify="right")
    table.add_column("prediction")
    table.add_column("probability", justify="right")
    table.add_column("runner-up" if top == 2 else f"top {top}")
    failed = any("error" in e for e in entries)
    if failed:
        table.add_column("error")

    def alternatives(answer):
        others = answer["top"][1:] if top == 2 else answer["top"]
        return ", ".join(f"{literal(name_of[t['class']])} ({t['probability']:.3f})" for t in others)

    for e in entries:
        name = literal(e["path"] if e["index"] is None else f"{e['path']}[{e['index']}]")
        if "error" in e:  # an image that could not be read: its name and why
            blanks = [""] * (len(table.columns) - 2)
            table.add_row(name, *blanks, Text(escape_control(e["error"]), style="red"))
            continue
        answers = e["digits"] if split else [e]
        for k, a in enumerate(answers):
            head = [name if k == 0 else ""]
            if split:
                head += [literal(e["text"]) if k == 0 else "", str(k + 1)]
            table.add_row(
                *head,
                Text(escape_control(a["class_name"]), style="bold"),
                f"{a['probability']:.3f}",
                alternatives(a),
                *([""] if failed else []),
            )
    out.print(table)
