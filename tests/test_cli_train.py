"""train-binary / train-multiclass end to end through click's CliRunner."""

import csv
import json
import re

import numpy as np
import pytest
from helpers import run

from mnistnet import experiment, training
from mnistnet.checkpoint import load_model
from mnistnet.cli import main
from mnistnet.config import MAX_SEED, SETTINGS
from mnistnet.errors import DivergenceError

FAST = ["--hidden", "8", "--epochs", "3", "--no-plots", "--quiet"]


def on(data_dir):
    """The options that train on the tiny IDX dataset in ``data_dir``."""
    return ["--dataset", "idx", "--data-dir", data_dir]


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_help_shows_every_setting_with_its_default(task):
    result = run(f"train-{task}", "--help", terminal_width=1000, max_content_width=1000)
    assert result.exit_code == 0
    options = result.output.split("Options:")[1]
    lines = {block.split()[0]: block for block in re.split(r"\n(?=  -)", options) if block}
    assert "--config" in lines
    for setting in SETTINGS.values():
        if task not in setting.tasks:
            assert setting.flag not in lines
        elif setting.required:
            assert "[required, or in --config" in lines[setting.flag]
        else:
            assert f"[default: {setting.default_text(task)}" in lines[setting.flag]
    assert "--samples-per-class N|all " in result.output  # as the README writes it
    assert "--batch-size N|full " in result.output
    assert "ALL" not in result.output and "FULL" not in result.output
    assert f"0..{MAX_SEED}" in lines["--seed"]


def test_tiny_synthetic_run_writes_every_file(tmp_path, idx_dataset):
    out = tmp_path / "run"
    result = run(
        "train-multiclass",
        *on(idx_dataset),
        "--out",
        out,
        "--json",
        "--samples-per-class",
        "all",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["config"]["task"] == "multiclass" and doc["config"]["epochs"] == 3
    assert doc["metrics"]["train"]["n"] == 20 and doc["metrics"]["test"]["n"] == 10
    assert set(doc["paths"]) == {"model", "history", "metrics", "run"}
    params, meta = load_model(out / "model.npz")
    assert meta["layers"] == [784, 8, 10] and meta["config"]["dataset"] == "idx"
    assert len(meta["dataset"]["files"]) == 4
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert list(rows[0]) == ["epoch", "loss", "train_acc", "val_loss", "val_acc", "test_loss",
                             "test_acc", "seconds", "run_id"]  # fmt: skip
    assert rows[0]["val_loss"] == rows[0]["val_acc"] == ""  # no validation split: empty
    assert float(rows[0]["test_loss"]) > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final"] == doc["metrics"]
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


def test_notebook_recipe_learns_5_vs_8_on_the_real_sample(tmp_path):
    # The notebook's exact recipe on the bundled real digits: 1,455 train, 352 test.
    result = run(
        "train-binary",
        "--digits",
        5,
        8,
        "--lr",
        "1e-5",
        "--dataset",
        "mnist-sample",
        "--out",
        tmp_path,
        "--json",
        "--no-plots",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["metrics"]["train"]["n"] == 1455 and doc["metrics"]["test"]["n"] == 352
    assert doc["metrics"]["test"]["accuracy"] >= 0.935


def test_modern_recipe_learns_ten_classes_on_the_real_sample(tmp_path):
    result = run(
        "train-multiclass",
        "--dataset",
        "mnist-sample",
        "--samples-per-class",
        300,
        "--optimizer",
        "momentum",
        "--lr",
        "0.1",
        "--batch-size",
        32,
        "--reduction",
        "mean",
        "--pixels",
        "unit",
        "--dtype",
        "float32",
        "--init",
        "xavier",
        "--hidden",
        64,
        "--epochs",
        5,
        "--out",
        tmp_path,
        "--json",
        "--no-plots",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["test"]["accuracy"] >= 0.85


BEST_INGREDIENTS = {
    "--optimizer": "nesterov",
    "--lr-schedule": "onecycle",
    "--warmup-epochs": "0.5",
    "--augment-shift": "1",
    "--augment-rotate": "10",
    "--augment-scale": "0.1",
    "--augment-shear": "0.2",
    "--elastic-alpha": "15",
    "--elastic-sigma": "4",
    "--label-smoothing": "0.1",
    "--dropout": "0.1",
    "--ema": "0.9",
}


def test_every_ingredient_of_the_best_recipes_together_learns_and_repeats(tmp_path):
    flags = [x for pair in BEST_INGREDIENTS.items() for x in pair]
    args = ["train-multiclass", "--dataset", "mnist-sample", "--samples-per-class", 300,
            "--lr", "0.5", "--batch-size", 64, "--reduction", "mean", "--pixels", "unit",
            "--dtype", "float32", "--init", "xavier", "--hidden", 64, "--epochs", 5,
            *flags, "--json", "--no-plots", "--quiet"]  # fmt: skip
    reports = [json.loads(run(*args, "--out", tmp_path / n).stdout) for n in ("a", "b")]
    assert reports[0]["metrics"]["test"]["accuracy"] >= 0.85
    config = reports[0]["config"]
    for flag, value in BEST_INGREDIENTS.items():
        recorded = config[flag[2:].replace("-", "_")]
        assert recorded == (value if isinstance(recorded, str) else float(value))
    a, _ = load_model(tmp_path / "a" / "model.npz")
    b, _ = load_model(tmp_path / "b" / "model.npz")
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_same_options_give_identical_weights(tmp_path, idx_dataset):
    args = [
        "train-binary",
        "--digits",
        3,
        7,
        *on(idx_dataset),
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        2,
        "--augment-shift",
        1,
        *FAST,
    ]
    for name in ("a", "b"):
        assert run(*args, "--out", tmp_path / name).exit_code == 0
    a, _ = load_model(tmp_path / "a" / "model.npz")
    b, _ = load_model(tmp_path / "b" / "model.npz")
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_config_file_and_flags_win(tmp_path, idx_dataset):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'digits = [1, 2]\nepochs = 2\nhidden = 4\ndataset = "idx"\ndata_dir = "{idx_dataset}"\n'
    )
    result = run(
        "train-binary",
        "--config",
        cfg,
        "--epochs",
        1,
        "--out",
        tmp_path / "o",
        "--json",
        "--quiet",
        "--no-plots",
    )
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)["config"]
    assert config["digits"] == [1, 2] and config["hidden"] == 4 and config["epochs"] == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["train-binary", "--digits", 5, 5], "two different digits"),
        (["train-binary", "--digits", 5, 10], "--digits"),
        (["train-binary"], "--digits"),
        (["train-binary", "--digits", 5, 8, "--batch-size", 32], "full-batch"),
        (["train-multiclass", "--lr", "-1"], "--lr"),
        (["train-multiclass", "--samples-per-class", "many"], "--samples-per-class"),
        (["train-multiclass", "--optimizer", "rmsprop"], "--optimizer"),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_bad_config_key_exit_2(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("learning_rate = 0.1\n")
    result = run("train-multiclass", "--config", cfg)
    assert result.exit_code == 2 and "unknown key 'learning_rate'" in result.output


def test_divergence_exit_1_and_no_files(tmp_path, idx_dataset):
    out = tmp_path / "run"
    result = run(
        "train-multiclass",
        *on(idx_dataset),
        "--lr",
        "1e306",
        "--out",
        out,
        *FAST,
    )
    assert result.exit_code == 1
    assert "diverged" in result.output and "smaller learning rate" in result.output
    assert not out.exists()


def _interrupt_after_first_epoch(monkeypatch):
    calls = []
    real_score = training.score

    def score(*args, **kwargs):  # called once per epoch for the test accuracy
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_score(*args, **kwargs)

    monkeypatch.setattr(training, "score", score)


def test_ctrl_c_exits_130_and_writes_nothing(tmp_path, idx_dataset, monkeypatch):
    _interrupt_after_first_epoch(monkeypatch)
    out = tmp_path / "run"
    result = run("train-multiclass", *on(idx_dataset), "--out", out, *FAST)
    assert result.exit_code == 130
    assert not out.exists()


def test_ctrl_c_with_save_on_interrupt_keeps_the_model(tmp_path, idx_dataset, monkeypatch):
    _interrupt_after_first_epoch(monkeypatch)
    out = tmp_path / "run"
    result = run(
        "train-multiclass",
        *on(idx_dataset),
        "--out",
        out,
        "--save-on-interrupt",
        *FAST,
    )
    assert result.exit_code == 130
    params, meta = load_model(out / "model.npz")
    assert meta["interrupted"] is True and meta["epochs_trained"] == 1
    assert np.isfinite(params["W1"]).all()


def test_progress_rows_on_stderr_not_stdout(tmp_path, idx_dataset):
    result = run(
        "train-multiclass",
        *on(idx_dataset),
        "--out",
        tmp_path / "o",
        "--hidden",
        4,
        "--epochs",
        4,
        "--log-every",
        2,
        "--no-plots",
    )
    assert result.exit_code == 0
    assert result.stdout == ""
    rows = [line for line in result.stderr.splitlines() if "/4" in line]
    assert [r.split()[0] for r in rows] == ["1/4", "2/4", "4/4"]


def test_unwritable_out_fails_before_training(tmp_path, idx_dataset):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    result = run("train-multiclass", *on(idx_dataset), "--out", afile / "sub", *FAST)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot write files in the output folder ")
    assert result.stderr.endswith(": Not a directory (--out)\n")
    assert "Training" not in result.stderr  # it failed before any work
    assert len(result.stderr.strip().splitlines()) == 1


def test_files_get_the_usual_mode(tmp_path, idx_dataset):
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = tmp_path / "o"
        assert run("train-multiclass", *on(idx_dataset), "--out", out, *FAST).exit_code == 0
    finally:
        os.umask(old)
    for name in ("model.npz", "history.csv", "metrics.json", "run.json"):
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o755  # the staging folder was private


def test_words_are_case_insensitive(tmp_path, idx_dataset):
    result = run(
        "train-multiclass",
        *on(idx_dataset),
        "--samples-per-class",
        "ALL",
        "--optimizer",
        "sgd",
        "--batch-size",
        "FULL",
        "--out",
        tmp_path / "o",
        "--json",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)["config"]
    assert config["samples_per_class"] == "all" and config["batch_size"] == "full"


def test_idx_without_data_dir_is_a_usage_error():
    result = run("train-multiclass", "--dataset", "idx")
    assert result.exit_code == 2 and "'idx' needs --data-dir" in result.output


def test_a_class_missing_from_the_training_split(tmp_path, make_idx_dataset):
    import gzip

    from mnistnet.idx import read_idx, write_idx

    data = make_idx_dataset(tmp_path / "d")
    labels_path = data / "train-labels-idx1-ubyte.gz"
    labels = read_idx(labels_path)
    labels[labels == 8] = 4  # no 8 left among the training labels
    write_idx(labels_path, labels)
    assert gzip.open(labels_path).read(4) == b"\x00\x00\x08\x01"
    result = run("train-binary", "--digits", 4, 8, *on(data), "--out", tmp_path / "o", *FAST)
    assert result.exit_code == 1
    assert "Error: the train split of idx holds no images of 8" in result.stderr


def test_save_on_interrupt_before_the_first_epoch_saves_nothing(tmp_path, idx_dataset, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "score", interrupt)
    out = tmp_path / "run"
    result = run("train-multiclass", *on(idx_dataset), "--out", out, "--save-on-interrupt", *FAST)
    assert result.exit_code == 130 and not out.exists()


def test_jsonl_one_line_per_epoch_then_the_summary(tmp_path, idx_dataset):
    result = run("train-multiclass", *on(idx_dataset), "--out", tmp_path / "o", "--jsonl", "--json",
                 *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("epoch") for line in lines[:-1]] == [1, 2, 3]
    assert list(lines[0]) == ["epoch", "loss", "train_acc", "val_loss", "val_acc", "test_loss",
                              "test_acc", "seconds", "lr"]  # fmt: skip
    assert lines[0]["val_loss"] is None and lines[0]["test_loss"] > 0
    assert lines[-1]["epochs_trained"] == 3 and "paths" in lines[-1]


def test_an_output_file_that_is_a_folder_fails_before_training(tmp_path, idx_dataset):
    (tmp_path / "o" / "model.npz").mkdir(parents=True)
    for extra in ([], ["--overwrite"]):  # a folder named model.npz is no run's file
        result = run("train-multiclass", *on(idx_dataset), "--out", tmp_path / "o", *FAST, *extra)
        assert result.exit_code == 2
        assert "holds other things than a run's files (model.npz/)" in result.stderr
        assert "Training" not in result.stderr
    assert (tmp_path / "o" / "model.npz").is_dir()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--seed", str(2**32)], "--seed"),
        (["--out", ""], "'' is not a path (a non-empty string)"),
    ],
)
def test_more_usage_errors(args, message, idx_dataset):
    result = run("train-multiclass", *on(idx_dataset), *args, *FAST)
    assert result.exit_code == 2 and message in result.output


def test_relative_data_dir_is_recorded_absolute(tmp_path, idx_dataset, monkeypatch):
    monkeypatch.chdir(idx_dataset.parent)
    result = run("train-multiclass", "--dataset", "idx", "--data-dir", idx_dataset.name,
                 "--out", tmp_path / "o", "--json", *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config"]["data_dir"] == str(idx_dataset)
    monkeypatch.chdir(tmp_path)  # evaluate from elsewhere finds the data again
    assert run("evaluate", tmp_path / "o" / "model.npz", "-q").exit_code == 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--hidden", "1000000000"], "'1000000000' is not a whole number from 1 to 65536"),
        (["--epochs", str(2**63 - 1)], "is not a whole number from 1 to 100000"),
        (["--batch-size", "10000000", "--optimizer", "sgd"], 'from 1 to 1000000 or "full"'),
        (["--samples-per-class", "0"], "'0' is not a whole number from 1 to 1000000 or \"all\""),
        (["--log-every", "1000000"], "--log-every"),
        (["--lr", "nan"], "'nan' is not a number > 0"),
        (["--lr", "inf"], "'inf' is not a number > 0"),
        (["--momentum", "nan"], "'nan' is not a number in [0, 1)"),
        (["--weight-decay", "inf"], "'inf' is not a number >= 0"),
        (["--out", "runs/a\0b"], "is not a path without NUL characters"),
        (["--data-dir", "d\0"], "is not a path without NUL characters"),
    ],
)
def test_impossible_flags_are_one_line_usage_errors(args, message, idx_dataset, tmp_path):
    result = run("train-multiclass", "--out", tmp_path / "o", *on(idx_dataset)[:2], *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert result.stderr.splitlines()[-1].startswith("Error: Invalid value for '--")
    assert not (tmp_path / "o").exists()


def test_one_digit_says_that_digits_takes_two():
    result = run("train-binary", "--digits", 5, "--dataset", "mnist-sample")
    assert result.exit_code == 2
    assert "'--dataset' is not a digit; --digits takes two digits from 0 to 9" in result.stderr
    assert "integer range" not in result.stderr


def test_an_existing_file_is_not_an_output_folder(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    result = run("train-multiclass", "--out", afile)
    assert result.exit_code == 2
    assert f"Invalid value for '--out': '{afile}' is not a folder" in result.stderr


def test_mirror_is_one_option_shared_by_every_command():
    mirrors = [
        param
        for command in main.commands.values()
        for param in command.params
        if "--mirror" in param.opts
    ]
    # A model file; a person's own images; pictures posted to a web page; run folders.
    reads_no_dataset = {"info", "predict", "serve", "compare"}
    assert {c for c in main.commands if c not in reads_no_dataset} == {
        name for name, c in main.commands.items() if any(p in c.params for p in mirrors)
    }
    assert len({(p.help, p.multiple, p.metavar) for p in mirrors}) == 1


def test_a_library_error_names_the_flag_of_its_setting(tmp_path, idx_dataset, monkeypatch):
    def diverge(*args, **kwargs):
        raise DivergenceError("training diverged: the learning rate is too large", setting="lr")

    monkeypatch.setattr(experiment, "run_training", diverge)
    result = run("train-multiclass", *on(idx_dataset), "--out", tmp_path / "o", *FAST)
    assert result.exit_code == 1
    assert result.stderr == "Error: training diverged: the learning rate is too large (--lr)\n"
