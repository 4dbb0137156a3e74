"""--validation: held out of the training images, never shown to the optimizer, recorded."""

import csv
import json

import numpy as np
from helpers import run

from mnistnet import experiment, training
from mnistnet.checkpoint import load_model
from mnistnet.data import prepare_inputs, select_indices
from mnistnet.datasets import load_split

SAMPLE = ["--dataset", "mnist-sample", "--samples-per-class", "50", "--hidden", "8",
          "--epochs", "2", "--no-plots", "--quiet"]  # fmt: skip


def test_the_optimizer_never_sees_the_validation_images(tmp_path, monkeypatch):
    seen, splits = [], {}

    class SpyBatches(training.Batches):
        def __init__(self, X, y, *args, **kwargs):
            seen.append(X)
            super().__init__(X, y, *args, **kwargs)

    def spy_run_training(config, train, test, *args, validation=None, **kwargs):
        splits.update(train=train, validation=validation)
        return real_run_training(config, train, test, *args, validation=validation, **kwargs)

    real_run_training = experiment.run_training
    monkeypatch.setattr(training, "Batches", SpyBatches)
    monkeypatch.setattr(experiment, "run_training", spy_run_training)
    out = tmp_path / "run"
    result = run("train-multiclass", *SAMPLE, "--validation", "0.1", "--out", out)
    assert result.exit_code == 0, result.output
    train, val = splits["train"], splits["validation"]
    assert len(seen) == 1 and seen[0] is train.X  # the optimizer's batches come from train only
    assert len(train) == 450 and len(val) == 50
    # Disjoint, and together the 500 selected images: the last 5 of each digit held out.
    raw = load_split("mnist-sample", "train")
    index, y = select_indices(raw.labels, tuple(range(10)), 50)
    assert not set(train.index) & set(val.index)
    assert sorted([*train.index, *val.index]) == sorted(index)
    for digit in range(10):
        assert val.index[val.y == digit].tolist() == index[y == digit][-5:].tolist()
    assert np.array_equal(val.X, prepare_inputs(raw.images, "raw", np.float64, index=val.index))
    _, meta = load_model(out / "model.npz")
    assert meta["validation"]["n"] == 50 and meta["validation"]["requested"] == 0.1
    assert meta["validation"]["per_class"] == [5] * 10
    assert "last per_class[c]" in meta["validation"]["rule"]
    assert meta["metrics"]["train"]["n"] == 450 and meta["metrics"]["validation"]["n"] == 50


def test_history_and_jsonl_have_validation_columns(tmp_path):
    out = tmp_path / "run"
    result = run("train-multiclass", *SAMPLE, "--validation", "100", "--out", out, "--jsonl")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    for line, row in zip(lines, rows, strict=True):
        assert 0 < line["val_loss"] and 0 <= line["val_acc"] <= 1 and line["test_loss"] > 0
        assert float(row["val_loss"]) == float(f"{line['val_loss']:.8g}")
        assert float(row["val_acc"]) == round(line["val_acc"], 6)


def test_the_progress_table_shows_validation_columns_only_with_a_split(tmp_path):
    args = [*SAMPLE[:-1]]  # not --quiet
    without = run("train-multiclass", *args, "--out", tmp_path / "a")
    with_val = run("train-multiclass", *args, "--validation", "100", "--out", tmp_path / "b")
    assert without.exit_code == with_val.exit_code == 0
    assert "val loss" not in without.stderr and "test loss" in without.stderr
    header = next(line for line in with_val.stderr.splitlines() if "epoch" in line)
    assert header.split() == ["epoch", "loss", "train", "acc", "val", "loss", "val", "acc",
                              "test", "loss", "test", "acc", "seconds"]  # fmt: skip
    assert "100 validation" in with_val.stderr


def test_a_validation_split_too_large_is_an_error_naming_the_flag(tmp_path):
    result = run("train-multiclass", *SAMPLE, "--validation", "500", "--out", tmp_path)
    assert result.exit_code == 1
    assert "cannot hold out 500 of the 500 training images (--validation)" in result.stderr


def test_validation_values_from_flags_and_files(tmp_path):
    for bad in ("1.0", "-1", "0.5x", "1e9"):
        result = run("train-multiclass", "--validation", bad)
        assert result.exit_code == 2
        assert "is not a whole number from 0 to 1000000 or a fraction in (0, 1)" in result.stderr
    config = tmp_path / "c.toml"
    config.write_text("validation = 0.25\n")
    result = run("train-multiclass", *SAMPLE, "--config", config, "--out", tmp_path / "o",
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["config"]["validation"] == 0.25 and doc["validation"]["n"] == 125
