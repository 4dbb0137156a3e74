"""Seconds `mnistnet predict` takes on 10,000 PNG digits, start-up included.

    python benchmarks/bench_predict.py                          # trains a small model first
    python benchmarks/bench_predict.py --model runs/multiclass/model.npz --json

Not a test. Writes the 10,000 bundled MNIST digits (mnist-sample, train and
test) as 28x28 PNG files into a temporary folder, then times
``python -m mnistnet predict MODEL FOLDER --json > /dev/null`` as a fresh
process, several times, and reports each run and the best. Every file is
decoded and preprocessed (``--preprocess auto``) and one JSON document of
10,000 answers is written. Goal: under 10 s on 2 cores. The CPU seconds
(user + system) of each run are reported too: on a busy machine they vary
less than the wall time.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mnistnet.datasets import load_split

GOAL_SECONDS = 10.0
ROOT = Path(__file__).resolve().parents[1]


def write_pngs(folder):
    digits = np.concatenate([load_split("mnist-sample", s).images for s in ("train", "test")])
    for i, digit in enumerate(digits):
        Image.fromarray(digit).save(os.path.join(folder, f"{i:05d}.png"))
    return len(digits)


def train_model(folder):
    """The ten-class fast recipe, 5 epochs: speed does not depend on how well it learnt."""
    out = os.path.join(folder, "model")
    config = ROOT / "configs" / "multiclass-fast.toml"
    subprocess.run(
        [sys.executable, "-m", "mnistnet", "train-multiclass", "--config", str(config)]
        + ["--dataset", "mnist-sample", "--epochs", "5", "--no-plots", "--quiet", "--out", out],
        check=True,
    )
    return os.path.join(out, "model.npz")


def time_predict(model, folder):
    """Wall seconds and CPU seconds (user + system) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mnistnet", "predict", model, folder, "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: train a small one)")
    parser.add_argument("--repeat", type=int, default=3, help="runs to time")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pngs = os.path.join(tmp, "png")
        os.mkdir(pngs)
        n = write_pngs(pngs)
        model = args.model or train_model(tmp)
        timings = [time_predict(model, pngs) for _ in range(args.repeat)]
    runs = [wall for wall, _ in timings]
    result = {
        "images": n,
        "seconds": runs,
        "cpu_seconds": [cpu for _, cpu in timings],
        "best_seconds": min(runs),
        "images_per_second": n / min(runs),
        "goal_seconds": GOAL_SECONDS,
        "met": min(runs) < GOAL_SECONDS,
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"mnistnet predict on {n:,} PNG digits, start-up included: "
            + ", ".join(f"{s:.2f}" for s in runs)
            + f" s; best {min(runs):.2f} s ({n / min(runs):,.0f} images/s); "
            f"goal < {GOAL_SECONDS:g} s: {'met' if result['met'] else 'NOT met'}. CPU seconds: "
            + ", ".join(f"{s:.2f}" for s in result["cpu_seconds"])
        )


if __name__ == "__main__":
    main()
