"""``mnistnet predict``: read a person's own digits (photos, scans, drawings) with a model.

\b
  mnistnet predict runs/multiclass/model.npz photo.jpg
  mnistnet predict model.npz my-digits/ --show why.png
  mnistnet predict model.npz number.png --split-digits --json

Parse, call :mod:`mnistnet.prediction` (which reads the files with
:mod:`mnistnet.imagefiles` and preprocesses them with
:mod:`mnistnet.images`), render. Every image is read and preprocessed
before anything is printed or written: a bad file stops the command
with one line naming it, and no half a table.
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

    Exit codes: 0 ok, 1 bad model file or an unreadable image (or one with
    no ink), 2 usage error.
    """
    if split and preprocess == "none":
        raise click.UsageError("--split-digits needs --preprocess auto")
    from mnistnet import prediction
    from mnistnet.checkpoint import load_model
    from mnistnet.console import literal, make_console
    from mnistnet.imagefiles import expand_paths

    console = make_console(quiet or as_json)
    params, meta = load_model(model)
    if save_dir is not None:
        check_writable_dir(save_dir, "--save-preprocessed")
    if show is not None:
        check_writable_dir(os.path.dirname(os.path.abspath(show)), "--show")
    files, skipped = expand_paths(paths)
    notices = make_console(quiet)  # skipped files are listed even with --json
    for path in skipped:
        notices.print(f"Skipped {literal(path)} (not a picture or .npy file)", soft_wrap=True)
    if not files:
        raise MnistnetError(f"no pictures or .npy files in {', '.join(paths)}")
    from mnistnet.predict_plots import MAX_ROWS

    convention = prediction.convention(meta)
    prepared = list(
        prediction.prepare(files, preprocess, convention, split, keep=MAX_ROWS if show else 0)
    )
    top = min(top, len(meta["classes"]))
    P, entries = prediction.answer(params, meta, prepared, top, tta_shift)

    if save_dir is not None:
        written = _save_preprocessed(prepared, save_dir)
        console.print(f"Wrote {written:,} images into {literal(save_dir)}", soft_wrap=True)
    if show is not None:
        _show(prepared, P, meta, show)
        console.print(f"Wrote {literal(show)}", soft_wrap=True)
    if as_json:
        from mnistnet.console import print_json

        print_json(
            {
                "schema": prediction.SCHEMA,
                "model": prediction.model_summary(model, meta),
                "preprocess": preprocess,
                "convention": convention,
                "predictions": entries,
                **({"tta": {"shift": tta_shift, "copies": 5}} if tta_shift else {}),
            }
        )
    elif not quiet:
        from mnistnet.console import stdout_console

        _print_table(stdout_console(), entries, meta, top, split)


def _save_preprocessed(prepared, folder):
    """Write every 28x28 image as ``<name>[-<index>][-digit<k>].png``; return how many."""
    from PIL import Image

    from mnistnet.fileio import atomic_path

    used = set()
    for p in prepared:
        stem = os.path.splitext(os.path.basename(p.path))[0]
        if p.index is not None:
            stem += f"-{p.index}"
        for k, image in enumerate(p.images):
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
    from mnistnet.predict_plots import ShowRow, plot_predictions
    from mnistnet.tasks import display_names, task_title

    rows = []
    for p, Pi in zip(prepared, P, strict=True):
        for k, image in enumerate(p.images):
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

    def alternatives(answer):
        others = answer["top"][1:] if top == 2 else answer["top"]
        return ", ".join(f"{literal(name_of[t['class']])} ({t['probability']:.3f})" for t in others)

    for e in entries:
        name = literal(e["path"] if e["index"] is None else f"{e['path']}[{e['index']}]")
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
            )
    out.print(table)
