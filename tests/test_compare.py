"""mnistnet compare: the table of runs, the picture, and runs that do not compare."""

import json

import pytest
from helpers import run

from mnistnet.compare import CompareError, compare_runs, differing_settings
from mnistnet.history import read_csv

TINY = ["--hidden", "6", "--epochs", "4", "--no-plots", "--quiet", "--samples-per-class", "all",
        "--optimizer", "momentum", "--batch-size", "8", "--reduction", "mean",
        "--pixels", "unit"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three ten-class runs at three learning rates, one with early stopping; a binary run."""
    from conftest import write_idx_dataset

    root = tmp_path_factory.mktemp("runs")
    data = write_idx_dataset(root / "data")
    paths = {}
    for lr, extra in (("0.01", []), ("0.1", []), ("1", ["--early-stopping", "1"])):
        paths[lr] = root / f"lr-{lr}"
        result = run("train-multiclass", "--dataset", "idx", "--data-dir", data, *TINY,
                     "--validation", "5", "--lr", lr, *extra, "--out", paths[lr])  # fmt: skip
        assert result.exit_code == 0, result.output
    paths["noval"] = root / "noval"
    result = run("train-multiclass", "--dataset", "idx", "--data-dir", data, *TINY,
                 "--lr", "0.1", "--out", paths["noval"])  # fmt: skip
    assert result.exit_code == 0, result.output
    paths["binary"] = root / "binary"
    result = run("train-binary", "--digits", 1, 7, "--dataset", "idx", "--data-dir", data,
                 *TINY, "--out", paths["binary"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return paths


def test_compare_finds_what_differs_and_the_best_and_final_values(runs):
    comparison = compare_runs([runs["0.01"], runs["0.1"], runs["1"]])
    assert comparison.metric == "val_acc"  # every run has a validation split
    assert comparison.differing == ["lr", "early_stopping"]
    for row, lr in zip(comparison.rows, (0.01, 0.1, 1.0), strict=True):
        history = read_csv(f"{row['path']}/history.csv")
        acc = history["val_acc"]
        assert row["settings"]["lr"] == lr and row["epochs"] == len(acc)
        assert row["best"] == max(acc) and row["final"] == acc[-1]
        assert row["best_epoch"] == acc.index(max(acc)) + 1
        assert row["seconds"] == history["seconds"][-1]
    assert comparison.label(comparison.rows[0]) == "lr=0.01, early_stopping=0"


def test_a_loss_metric_is_best_when_lowest(runs):
    comparison = compare_runs([runs["0.01"], runs["0.1"]], "val_loss")
    for row in comparison.rows:
        losses = read_csv(f"{row['path']}/history.csv")["val_loss"]
        assert row["best"] == min(losses)


def test_differing_settings_ignore_where_runs_were_written():
    configs = [{"lr": 0.1, "out": "a", "seed": 1}, {"lr": 0.1, "out": "b", "seed": 2}]
    assert differing_settings(configs) == ["seed"]


def test_cli_table_picture_and_json(runs, tmp_path):
    dirs = [runs["0.01"], runs["0.1"], runs["1"]]
    result = run("compare", *dirs, "--out", tmp_path, terminal_width=200)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "run" in line and "best" in line)
    for heading in ("lr", "early_stopping", "best", "at epoch", "final", "trained", "seconds"):
        assert heading in header
    assert sum("lr-0.01" in line or "lr-0.1 " in line or "lr-1 " in line for line in lines) == 3
    assert (tmp_path / "compare-val_acc.png").stat().st_size > 10_000
    result = run("compare", *dirs, "--metric", "test_loss", "--json", "--no-plots")
    doc = json.loads(result.stdout)
    assert doc["metric"] == "test_loss" and doc["differing"] == ["lr", "early_stopping"]
    assert [r["run"] for r in doc["runs"]] == ["lr-0.01", "lr-0.1", "lr-1"] and not doc["plot"]


def test_runs_of_other_tasks_are_refused(runs):
    result = run("compare", runs["0.1"], runs["binary"], "--no-plots")
    assert result.exit_code == 1
    assert "binary 1 vs 7 on idx" in result.stderr and "multiclass on idx" in result.stderr
    assert "only runs of one task on the same data compare" in result.stderr


def test_runs_on_other_data_are_refused(runs, tmp_path, make_idx_dataset):
    other = make_idx_dataset(tmp_path / "other", seed=5)
    out = tmp_path / "other-run"
    result = run("train-multiclass", "--dataset", "idx", "--data-dir", other, *TINY,
                 "--out", out)  # fmt: skip
    assert result.exit_code == 0
    with pytest.raises(CompareError, match="only runs of one task on the same data"):
        compare_runs([runs["0.1"], out])


def test_bad_arguments(runs, tmp_path):
    single = run("compare", runs["0.1"])  # one run: nothing to compare, a usage error
    assert single.exit_code == 2 and "at least two run folders" in single.stderr
    result = run("compare", runs["0.1"], tmp_path)
    assert result.exit_code == 1 and "model.npz: no such file" in result.stderr
    result = run("compare", runs["0.1"], runs["binary"] / "model.npz")
    assert result.exit_code == 2  # a file, not a run folder
    result = run("compare", runs["0.1"], runs["binary"], "--metric", "nope")
    assert result.exit_code == 2


def test_a_run_without_validation_has_no_validation_values(runs, tmp_path):
    comparison = compare_runs([runs["0.1"], runs["noval"]])
    assert comparison.metric == "test_acc"  # not every run has a validation split
    assert "validation" in comparison.differing
    comparison = compare_runs([runs["0.1"], runs["noval"]], "val_acc")
    assert comparison.rows[1]["best"] is comparison.rows[1]["final"] is None
    result = run("compare", runs["0.1"], runs["noval"], "--metric", "val_acc", "--out", tmp_path)
    assert result.exit_code == 0 and " - " in result.stdout


def test_help():
    result = run("compare", "--help", terminal_width=200, max_content_width=200)
    assert result.exit_code == 0
    assert "Usage: compare [OPTIONS] RUN_DIR..." in result.output.replace("main ", "")
    assert "[val_acc|test_acc|train_acc|val_loss|test_loss|loss]" in result.output
    assert "compare-<metric>.png" in result.output and "--json" in result.output
