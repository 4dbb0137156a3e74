"""Early stopping and the target accuracy, in the training loop and on the command line."""

import json

import numpy as np
import pytest
from helpers import run

from mnistnet import model, training
from mnistnet.checkpoint import load_model
from mnistnet.optimizers import make_optimizer
from mnistnet.pipeline import load_training_data
from mnistnet.stopping import StoppingRules
from mnistnet.training import fit, score

PATIENCE = 5


@pytest.fixture(scope="module")
def small():
    """300 real digits (30 a class): 200 to train on, 100 held out; quick to overfit."""
    return load_training_data(
        "mnist-sample", tuple(range(10)), samples_per_class=30, validation=100, pixels="unit"
    )


def _fit(small, epochs=60, **kwargs):
    train, val = small
    params = model.init_params(784, 16, 10, method="xavier", seed=0)
    history = fit(params, train.X, train.y, task="multiclass", optimizer=make_optimizer("adam"),
                  epochs=epochs, lr=0.01, batch_size=32, reduction="mean",
                  rng=np.random.default_rng(0), X_val=val.X, y_val=val.y, **kwargs)  # fmt: skip
    return params, history


def test_early_stopping_restores_the_best_epoch_of_the_history(small):
    params, history = _fit(small, early_stopping=PATIENCE)
    val_losses = history.column("val_loss")
    best = int(np.argmin(val_losses)) + 1  # the first lowest validation loss
    assert history.stop_reason == "early_stopping"
    assert history.weights_epoch == best < len(val_losses) == best + PATIENCE
    assert all(loss >= val_losses[best - 1] for loss in val_losses[best:])
    # The weights kept score exactly the validation loss recorded at the best epoch ...
    _, val = small
    assert score(params, val.X, val.y, "multiclass")[0] == val_losses[best - 1]
    # ... and are the weights of a run stopped there, byte for byte.
    at_best, _ = _fit(small, epochs=best)
    assert all(params[k].tobytes() == at_best[k].tobytes() for k in params)
    assert history.state.epoch == len(val_losses)  # a resume goes on from the last epoch


def test_without_early_stopping_the_last_weights_stay(small):
    params, history = _fit(small, epochs=8)
    assert history.stop_reason == "epochs" and history.weights_epoch == 8
    assert np.array_equal(model.pack(params)[0], history.state.theta)


def test_ctrl_c_with_early_stopping_keeps_the_best_weights(small):
    def interrupt(record):
        if record.epoch == 50:
            raise KeyboardInterrupt

    whole, history = _fit(small, early_stopping=100, epochs=50)
    params, stopped = _fit(small, early_stopping=100, on_epoch=interrupt)
    assert stopped.interrupted and stopped.stop_reason == "interrupted"
    assert stopped.weights_epoch == history.weights_epoch < 50
    assert all(params[k].tobytes() == whole[k].tobytes() for k in params)


def test_early_stopping_needs_a_validation_set(small):
    train, _ = small
    params = model.init_params(784, 4, 10, seed=0)
    with pytest.raises(ValueError, match="needs a validation set"):
        fit(params, train.X, train.y, task="multiclass", optimizer=make_optimizer("gd"),
            epochs=1, lr=1e-5, early_stopping=3)  # fmt: skip


def test_target_accuracy_stops_at_the_first_epoch_reaching_it(small):
    _, full = _fit(small, epochs=20)
    accuracies = full.column("val_acc")
    target = sorted(accuracies)[len(accuracies) // 2]  # reached about half-way
    first = next(r.epoch for r in full.records if r.val_acc >= target)
    _, history = _fit(small, epochs=20, target_accuracy=target)
    assert history.stop_reason == "target_accuracy"
    assert history.target_epoch == first == len(history.records)
    assert history.column("val_acc") == accuracies[:first]


def test_target_accuracy_without_validation_watches_the_test_set():
    rules = StoppingRules(target=0.5, target_metric="test_acc")
    record = training.EpochRecord(1, 1.0, 0.9, None, None, 1.0, 0.6, 0.1, 0.1)
    assert rules.after_epoch(record, np.zeros(3)) == "target_accuracy"
    assert rules.target_epoch == 1
    with pytest.raises(ValueError, match="unknown target metric"):
        StoppingRules(target=0.5, target_metric="loss")


SAMPLE = ["--dataset", "mnist-sample", "--samples-per-class", "30", "--hidden", "16",
          "--pixels", "unit", "--reduction", "mean", "--init", "xavier", "--optimizer", "adam",
          "--lr", "0.01", "--batch-size", "32", "--no-plots"]  # fmt: skip


def test_cli_early_stopping_records_the_best_epoch(tmp_path):
    out = tmp_path / "run"
    result = run("train-multiclass", *SAMPLE, "--validation", "100", "--early-stopping",
                 PATIENCE, "--epochs", "60", "--out", out, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    _, meta = load_model(out / "model.npz")
    stopping = meta["stopping"]
    assert stopping == doc["stopping"]
    assert stopping["reason"] == "early_stopping" and stopping["early_stopping"] == PATIENCE
    assert stopping["best_epoch"] == stopping["weights_epoch"] == meta["epochs_trained"] - PATIENCE
    best = stopping["best_epoch"]
    assert "Stopped early after epoch" in result.stderr
    assert f" {meta['epochs_trained']}/60 " in result.stderr  # the last row, off the interval
    assert f"Saved the weights of epoch {best}, the lowest validation loss" in result.stderr
    history = (out / "history.csv").read_text().splitlines()
    val_loss = float(history[best].split(",")[3])
    assert meta["metrics"]["validation"]["loss"] == pytest.approx(val_loss, rel=1e-7)
    assert meta["validation"]["n"] == 100 and sum(meta["validation"]["per_class"]) == 100


def test_cli_early_stopping_without_validation_is_a_usage_error(tmp_path):
    result = run("train-multiclass", *SAMPLE, "--early-stopping", "3", "--out", tmp_path)
    assert result.exit_code == 2
    assert "--early-stopping: early stopping watches the validation loss" in result.stderr
    assert "--validation N" in result.stderr


@pytest.mark.parametrize(
    "extra,what",
    [
        (["--validation", "100"], "validation accuracy"),
        ([], "test accuracy (no validation split)"),
    ],
)
def test_cli_target_accuracy_prints_when_it_was_reached(tmp_path, extra, what):
    result = run("train-multiclass", *SAMPLE, *extra, "--target-accuracy", "0.5",
                 "--epochs", "30", "--out", tmp_path, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    stopping = json.loads(result.stdout)["stopping"]
    epoch = stopping["target_epoch"]
    assert stopping["reason"] == "target_accuracy" and 1 <= epoch < 30
    assert stopping["target_metric"] == ("val_acc" if extra else "test_acc")
    line = f"Target 50.00% {what}: reached at epoch {epoch}, after "
    assert line in result.stderr
    assert f"{stopping['target_seconds']:.1f} s." in result.stderr
