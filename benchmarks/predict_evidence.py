"""The evidence that `mnistnet predict` reads people's digits: round trip, photos, numbers.

    python benchmarks/predict_evidence.py              # trains configs/multiclass-fast.toml first
    python benchmarks/predict_evidence.py --model runs/multiclass-fast/model.npz --json

Not a test (``tests/test_predict.py`` checks the same things with a
shorter-trained model and fewer photos). With the ten-class model of
``configs/multiclass-fast.toml`` (100 epochs, trained here on the bundled
sample's 8,000 training digits unless ``--model`` is given), on the 2,000
bundled test digits, through the command itself (``python -m mnistnet
predict ... --json``):

1. round trip: the digits as 28x28 PNG files, preprocessed (``auto``),
   against the same digits given to the network as they are (an IDX file
   with ``--preprocess none``, whose accuracy equals ``evaluate``'s);
   goal: at least 99.5% agree;
2. photos: each digit made into a phone-photo-like JPEG (``tests/synthetic.py``:
   10 to 20 times larger, dark ink on light paper, off-centre, blur, noise,
   a third in colour); goal: accuracy within 1.5 points of the originals';
3. numbers: 100 rows of 3 to 6 digits on a light page, read with
   ``--split-digits``; goals: the right count of digits in at least 98%,
   and exact readings no more than 3 points below the rate at which all the
   digits of a number, given as 28x28 originals, are classified right.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from synthetic import number_page, photo  # noqa: E402

from mnistnet import checkpoint, prediction  # noqa: E402
from mnistnet.datasets import load_split  # noqa: E402
from mnistnet.idx import write_idx  # noqa: E402

SEED = 2026
SHOWN = 5  # photos drawn with --show: the first four and the first one read wrong


def mnistnet(*args, stdout=None, cwd=None):
    command = [sys.executable, "-m", "mnistnet", *map(str, args)]
    return subprocess.run(command, check=True, stdout=stdout, text=True, cwd=cwd)


def predictions(model, *args):
    out = mnistnet("predict", model, *args, "--json", stdout=subprocess.PIPE).stdout
    return json.loads(out)["predictions"]


def folder_of(root, name, files):
    """Write ``{file name: bytes or uint8 array}`` into ``root/name``; return the folder."""
    folder = os.path.join(root, name)
    os.mkdir(folder)
    for file_name, content in files.items():
        path = os.path.join(folder, file_name)
        if isinstance(content, bytes):
            Path(path).write_bytes(content)
        else:
            Image.fromarray(content).save(path)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: train configs/multiclass-fast.toml)")
    parser.add_argument("--numbers", type=int, default=100, help="how many numbers to read")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--show", metavar="PNG", help="also draw the first photos with `predict --show` (README)"
    )
    args = parser.parse_args()
    test = load_split("mnist-sample", "test")
    images, labels = test.images, test.labels
    rng = np.random.default_rng(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            out = os.path.join(tmp, "model")
            config = ROOT / "configs" / "multiclass-fast.toml"
            mnistnet(
                *("train-multiclass", "--config", config, "--dataset", "mnist-sample"),
                *("--out", out, "--no-plots", "--quiet"),
            )
            model = os.path.join(out, "model.npz")
        result = {"model": os.path.abspath(model)}
        result.update(_round_trip(model, images, labels, tmp))
        result.update(_photos(model, images, labels, tmp, rng, args.show))
        result.update(_numbers(model, images, labels, tmp, rng, args.numbers))
    result["goals_met"] = {
        "round trip >= 99.5%": result["round_trip_agreement"] >= 0.995,
        "photos within 1.5 points": result["photos_accuracy"]
        >= result["originals_accuracy"] - 0.015,
        "right count >= 98%": result["numbers_right_count"] >= 0.98,
        "exact within 3 points": result["numbers_read_exactly"]
        >= result["numbers_all_originals_right"] - 0.03,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:32} {value:.4f}" if isinstance(value, float) else f"{key:32} {value}")


def _round_trip(model, images, labels, tmp):
    idx_file = os.path.join(tmp, "test-images.idx")
    write_idx(idx_file, images)
    direct = [e["prediction"] for e in predictions(model, "--preprocess", "none", idx_file)]
    pngs = folder_of(tmp, "png", {f"{i:04d}.png": d for i, d in enumerate(images)})
    via_png = [e["prediction"] for e in predictions(model, pngs)]
    return {
        "originals_accuracy": float(np.mean(np.array(direct) == labels)),
        "round_trip_agreement": float(np.mean(np.array(via_png) == np.array(direct))),
    }


def _photos(model, images, labels, tmp, rng, show=None):
    jpegs = folder_of(tmp, "photos", {f"{i:04d}.jpg": photo(d, rng) for i, d in enumerate(images)})
    on_photos = [e["prediction"] for e in predictions(model, jpegs)]
    if show:  # the first few, and the first one read wrong
        wrong = np.flatnonzero(np.array(on_photos) != labels)
        shown = [*range(SHOWN - 1), *wrong[:1]]
        names = [f"{i:04d}.jpg" for i in shown]
        show = os.path.abspath(show)
        mnistnet("predict", os.path.abspath(model), *names, "--show", show, "--quiet", cwd=jpegs)
    return {"photos": len(images), "photos_accuracy": float(np.mean(np.array(on_photos) == labels))}


def _numbers(model, images, labels, tmp, rng, n):
    picks = [rng.choice(len(images), size=rng.integers(3, 7), replace=False) for _ in range(n)]
    pages = {f"{i:04d}.png": number_page(images[pick], rng) for i, pick in enumerate(picks)}
    entries = predictions(model, "--split-digits", folder_of(tmp, "numbers", pages))
    params, meta = checkpoint.load_model(model)
    counted = read = originals_right = 0
    for e, pick in zip(entries, picks, strict=True):
        counted += len(e["digits"]) == len(pick)
        read += e["text"] == "".join(map(str, labels[pick]))
        P = prediction.predict_proba(params, meta, images[pick])
        originals_right += bool(np.all(np.array(meta["classes"])[P.argmax(1)] == labels[pick]))
    return {
        "numbers": n,
        "numbers_right_count": counted / n,
        "numbers_read_exactly": read / n,
        "numbers_all_originals_right": originals_right / n,
    }


if __name__ == "__main__":
    main()
