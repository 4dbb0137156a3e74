"""Write a validation dataset: a dataset's training images, cut in two.

    python benchmarks/validation_split.py /usr/share/datasets/fashion-mnist DIR/fashion-val

Reads ``train-images-idx3-ubyte[.gz]`` and ``train-labels-idx1-ubyte[.gz]``
from the source folder and writes, gzipped, into the new folder: the first
``n - holdout`` images (default: all but the last 10,000) as its train
split, the last ``holdout`` as its test split (``t10k-*``). Train on it with
``--dataset idx --data-dir DIR/fashion-val``: the "test" figures mnistnet
prints are then validation figures, from images of the training set, and
the official test set stays untouched until a recipe is finished. The same
cut as ``../shared/tools/mnist-train-set`` makes of MNIST (``DIR/val``).
Not a test.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mnistnet.idx import read_pair, write_idx  # noqa: E402


def _source(folder, role):
    for name in (f"train-{role}", f"train-{role}.gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    sys.exit(f"error: {folder} has no train-{role}[.gz]")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="folder with train-images-idx3-ubyte[.gz] and labels")
    parser.add_argument("out", help="new folder for the validation dataset")
    parser.add_argument("--holdout", type=int, default=10_000, help="images to hold out")
    args = parser.parse_args(argv)
    images, labels = read_pair(
        _source(args.source, "images-idx3-ubyte"), _source(args.source, "labels-idx1-ubyte")
    )
    if not 0 < args.holdout < len(images):
        sys.exit(f"error: --holdout must be between 1 and {len(images) - 1}")
    cut = len(images) - args.holdout
    os.makedirs(args.out, exist_ok=True)
    parts = {"train": slice(None, cut), "t10k": slice(cut, None)}
    for split, rows in parts.items():
        write_idx(os.path.join(args.out, f"{split}-images-idx3-ubyte.gz"), images[rows])
        write_idx(os.path.join(args.out, f"{split}-labels-idx1-ubyte.gz"), labels[rows])
    print(f"{args.out}: {cut} training and {args.holdout} validation images")


if __name__ == "__main__":
    main()
