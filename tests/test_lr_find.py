"""The learning-rate range test: a sane rate where the good rates are known, and the command."""

import json

import numpy as np
import pytest
from helpers import run
from test_training import _blobs

from mnistnet import lr_find, model
from mnistnet.errors import DivergenceError
from mnistnet.optimizers import make_optimizer
from mnistnet.training import fit, score

N = 300


@pytest.fixture(scope="module")
def blobs():
    """Three classes of raw 0..255 "pixels": the notebook's regime (gd, summed loss)."""
    return _blobs(n=N, n_classes=3, seed=0)


def _params():
    return model.init_params(784, 16, 3, method="notebook", seed=1)


def _final_loss(X, y, lr, reduction="sum", epochs=20):
    params = _params()
    try:
        fit(params, X, y, task="multiclass", optimizer=make_optimizer("gd"), epochs=epochs,
            lr=lr, reduction=reduction)  # fmt: skip
    except DivergenceError:
        return np.inf, 0.0
    loss, acc, _ = score(params, X, y, "multiclass")
    return loss, acc


def _range_test(X, y, reduction="sum", **kwargs):
    optimizer = make_optimizer("gd")
    return lr_find.lr_range_test(
        _params(), X, y, task="multiclass", optimizer=optimizer, reduction=reduction, **kwargs
    )


def test_suggests_a_rate_near_the_best_of_a_grid_of_real_runs(blobs):
    X, y = blobs
    # The rates that train well, found the slow way: 20 epochs at each rate of a grid.
    grid = 10.0 ** np.arange(-6, -1.49, 0.5)
    losses = {lr: _final_loss(X, y, lr)[0] for lr in grid}
    best = min(losses, key=losses.get)
    test = _range_test(X, y)
    assert best / 3 <= test.suggestion <= best * 3
    loss, acc = _final_loss(X, y, test.suggestion)
    assert acc == 1.0 and loss < 0.6 * _final_loss(X, y, test.suggestion, epochs=0)[0]
    assert _final_loss(X, y, 30 * test.suggestion)[0] > 10 * loss  # far above it: no good
    assert test.lr_min < test.suggestion < test.lowest and test.rule == lr_find.RULE


def test_the_summed_loss_needs_a_rate_batch_size_times_smaller(blobs):
    # gd on the sum of N losses takes the same steps as on their mean at N times the rate.
    X, y = blobs
    on_sum, on_mean = _range_test(X, y, "sum"), _range_test(X, y, "mean")
    assert (on_sum.lr_min, on_sum.lr_max) == (1e-6 / N, 10 / N)
    assert (on_mean.lr_min, on_mean.lr_max) == lr_find.MEAN_RANGE
    assert on_sum.suggestion * N == pytest.approx(on_mean.suggestion, rel=0.2)


def test_the_weights_given_are_not_changed(blobs):
    X, y = blobs
    params = _params()
    before = {k: v.copy() for k, v in params.items()}
    lr_find.lr_range_test(params, X, y, task="multiclass", optimizer=make_optimizer("gd"),
                          steps=20)  # fmt: skip
    assert all(np.array_equal(before[k], params[k]) for k in params)


def test_no_suggestion_when_the_loss_never_falls(blobs):
    X, y = blobs
    test = _range_test(X, y, lr_min=1e-14, lr_max=1e-13, steps=20)
    assert test.suggestion is None and test.index is None and "fell by less than 5%" in test.rule


def test_smoothing_window_spans_a_third_of_a_decade():
    assert lr_find.smoothing_window(301, 1e-6, 10) == 13  # 300 steps over 7 decades
    assert lr_find.smoothing_window(100, 1e-10, 1e-3) == 5
    assert lr_find.smoothing_window(10, 1e-3, 1e3) == 3  # never under 3


SAMPLE = ["--dataset", "mnist-sample", "--samples-per-class", "20", "--hidden", "8"]


def test_cli_prints_the_suggestion_and_draws_the_picture(tmp_path):
    result = run("lr-find", *SAMPLE, "--pixels", "unit", "--reduction", "mean", "--optimizer",
                 "momentum", "--batch-size", "16", "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Suggested learning rate: " in result.stdout
    assert f"rule: {lr_find.RULE}" in result.stdout.replace("\n", " ").replace("  ", " ")
    assert "--lr " in result.stdout and (tmp_path / "lr-find.png").stat().st_size > 10_000


def test_cli_json_and_the_binary_task_from_digits(tmp_path):
    result = run("lr-find", *SAMPLE, "--digits", 5, 8, "--json", "--no-plots", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["task"] == "binary" and doc["config"]["digits"] == [5, 8]
    assert doc["steps"] == 100 and 3 <= doc["steps_run"] <= 100 and doc["plot"] is None
    n = doc["config"]["samples_per_class"] * 2  # gd, summed loss: the range over the batch
    assert doc["lr_min"] == pytest.approx(1e-6 / n) and doc["lr_max"] == pytest.approx(10 / n)
    assert doc["lr_min"] < doc["suggestion"] < doc["lowest_loss_lr"] <= doc["lr_max"]
    assert not list(tmp_path.iterdir())  # --no-plots


@pytest.mark.parametrize(
    "args,message",
    [
        (["--lr-min", "0"], "'0' is not a number > 0"),
        (["--lr-min", "nan"], "'nan' is not a number > 0"),
        (["--lr-min", "1", "--lr-max", "0.1"], "--lr-min must be smaller than --lr-max"),
        (["--steps", "5"], "--steps"),
        (["--batch-size", "8"], "optimizer 'gd' is full-batch"),
    ],
)
def test_cli_usage_errors(args, message):
    result = run("lr-find", *SAMPLE, *args)
    assert result.exit_code == 2 and message in result.stderr


def test_cli_when_nothing_falls_exit_1(tmp_path):
    result = run("lr-find", *SAMPLE, "--lr-min", "1e-14", "--lr-max", "1e-13", "--steps", "20",
                 "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 1
    assert "Range test: 784-8-10 multiclass, gd," in result.stderr  # the whole network
    assert "Error: no learning rate to suggest: the loss fell by less than 5%" in result.stderr
    assert result.stderr.rstrip().endswith("widen it, with a larger maximum rate (--lr-max)")


def test_cli_when_the_loss_rises_at_once_the_error_names_lr_min(tmp_path):
    result = run("lr-find", *SAMPLE, "--optimizer", "momentum", "--batch-size", "32",
                 "--reduction", "mean", "--pixels", "unit", "--lr-min", "50", "--lr-max", "5000",
                 "--steps", "20", "--no-plots")  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.rstrip().endswith("start lower, with a smaller minimum rate (--lr-min)")


def test_help_lists_the_training_options_and_its_own():
    result = run("lr-find", "--help", terminal_width=200, max_content_width=200)
    assert result.exit_code == 0
    for flag in ("--digits A B", "--optimizer", "--reduction", "--pixels", "--validation",
                 "--lr-min X", "--lr-max X", "--steps N", "--json", "--config FILE"):  # fmt: skip
        assert flag in result.output
    assert "Accepted, so a training command line works as it is; not used here." in result.output


def test_cli_quiet_prints_nothing(tmp_path):
    result = run("lr-find", *SAMPLE, "--digits", 5, 8, "--out", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""
    assert (tmp_path / "lr-find.png").exists()
