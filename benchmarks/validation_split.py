"""Write a validation dataset: a dataset's training images, cut in two.

    python benchmarks/validation_split.py /usr/share/datasets/fashion-mnist DIR/fashion-val

Reads ``train-images-idx3-ubyte[.gz]`` and ``train-labels-idx1-ubyte[.gz]``
from the source folder and writes, gzipped, into a new folder: the first
``n - holdout`` images (default: all but the last 10,000) as its train
split, the last ``holdout`` as its test split (``t10k-*``). Train on it with
``--dataset idx --data-dir DIR/fashion-val``: the "test" figures mnistnet
prints are then validation figures, from images of the training set, and
the official test set stays untouched until a recipe is finished. On
MNIST's 60,000 training digits it makes the same cut as the project's
``mnist-train-set`` tool (``DIR/val``).

The folder is written whole or not at all: the files go into a hidden
folder beside it, renamed to the destination at the end. A destination
that exists and is not empty is refused. Errors are one line (exit 1).
Not a test.
"""

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mnistnet.errors import MnistnetError  # noqa: E402
from mnistnet.idx import read_pair, write_idx  # noqa: E402

HOLDOUT = 10_000


class SplitError(Exception):
    """A one-line reason the split cannot be made."""


def _source(folder, role):
    for name in (f"train-{role}", f"train-{role}.gz"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise SplitError(f"{folder}: no train-{role}[.gz] there")


def _check_destination(out):
    if os.path.exists(out) and not (os.path.isdir(out) and not os.listdir(out)):
        what = "a folder that is not empty" if os.path.isdir(out) else "not a folder"
        raise SplitError(f"{out}: {what}; give a new or empty folder")


def split(source, out, holdout=HOLDOUT):
    """Write the validation dataset of ``source`` into ``out``; return (train, held out) sizes."""
    _check_destination(out)
    try:
        images, labels = read_pair(
            _source(source, "images-idx3-ubyte"), _source(source, "labels-idx1-ubyte")
        )
    except (MnistnetError, OSError) as exc:
        raise SplitError(str(exc)) from None
    if not 0 < holdout < len(images):
        raise SplitError(f"--holdout must be between 1 and {len(images) - 1} for {source}")
    cut = len(images) - holdout
    parent = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(parent, exist_ok=True)
        # mkdir, not mkdtemp: the folder gets the mode any new folder gets
        staging = os.path.join(parent, f".{os.path.basename(out)}.{os.getpid()}.tmp")
        os.mkdir(staging)
    except OSError as exc:
        raise SplitError(f"{out}: cannot write there ({exc.strerror or exc})") from None
    try:
        for name, rows in (("train", slice(None, cut)), ("t10k", slice(cut, None))):
            write_idx(os.path.join(staging, f"{name}-images-idx3-ubyte.gz"), images[rows])
            write_idx(os.path.join(staging, f"{name}-labels-idx1-ubyte.gz"), labels[rows])
        if os.path.isdir(out):
            os.rmdir(out)  # empty (checked): the rename takes its place
        os.rename(staging, out)
    except OSError as exc:
        raise SplitError(f"{out}: cannot write there ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cut, holdout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="folder with train-images-idx3-ubyte[.gz] and labels")
    parser.add_argument("out", help="new (or empty) folder for the validation dataset")
    parser.add_argument(
        "--holdout", type=int, default=HOLDOUT, help=f"images held out (default {HOLDOUT:,})"
    )
    args = parser.parse_args(argv)
    try:
        train, held = split(args.source, args.out, args.holdout)
    except SplitError as exc:
        sys.exit(f"error: {exc}")
    print(f"{args.out}: {train} training and {held} validation images")


if __name__ == "__main__":
    main()
