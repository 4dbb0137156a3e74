"""--resume: a run stopped after k epochs and resumed to n is the uninterrupted n-epoch run.

Byte for byte: the weights, every history column but the wall-clock seconds,
and the state saved for the next resume (optimizer arrays, random generator).
"""

import csv
import json

import numpy as np
import pytest
from helpers import run

from mnistnet import checkpoint, history, training
from mnistnet.checkpoint import load_model, load_resume, save_model
from mnistnet.errors import ModelFileError
from mnistnet.model import PARAM_NAMES

TINY = ["--hidden", "6", "--no-plots", "--quiet", "--samples-per-class", "all"]
MODERN = ["--reduction", "mean", "--pixels", "unit", "--init", "xavier"]
RECIPES = {
    "gd": ["--optimizer", "gd", "--lr", "0.5"],
    "momentum": ["--optimizer", "momentum", "--lr", "0.05", "--batch-size", "8"],
    "adam": ["--optimizer", "adam", "--lr", "0.01", "--batch-size", "8"],
}


def _train(data, out, *args):
    result = run("train-multiclass", "--dataset", "idx", "--data-dir", data, "--out", out,
                 *TINY, *MODERN, *args)  # fmt: skip
    assert result.exit_code in (0, 130), result.output
    return result


def _resume(path, *args):
    result = run("train-multiclass", "--resume", path, "--quiet", "--no-plots", *args)
    assert result.exit_code == 0, result.output
    return result


def _saved(out):
    """Everything a run leaves that must not depend on where it was stopped."""
    params, meta, resume = load_resume(out / "model.npz")
    with np.load(out / "model.npz") as npz:
        arrays = {name: npz[name] for name in npz.files if name.startswith("resume_")}
    arrays["resume_history"][:, history.COLUMNS.index("seconds")] = 0  # wall-clock time
    with open(out / "history.csv") as f:
        # wall-clock time, and the run id (every run has its own): the rest must agree
        rows = [
            {k: v for k, v in row.items() if k not in ("seconds", "run_id")}
            for row in csv.DictReader(f)
        ]
    section = {k: v for k, v in meta["resume"].items()}
    return params, arrays, rows, section, meta["epochs_trained"]


def _assert_same(a, b):
    params_a, arrays_a, rows_a, section_a, epochs_a = a
    params_b, arrays_b, rows_b, section_b, epochs_b = b
    for name in PARAM_NAMES:
        assert params_a[name].tobytes() == params_b[name].tobytes(), name
    assert arrays_a.keys() == arrays_b.keys()
    for name in arrays_a:
        assert arrays_a[name].tobytes() == arrays_b[name].tobytes(), name
    assert rows_a == rows_b and section_a == section_b and epochs_a == epochs_b


@pytest.mark.parametrize("shift", ["0", "2"])
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_stopped_then_resumed_is_the_uninterrupted_run(tmp_path, idx_dataset, optimizer, shift):
    args = [*RECIPES[optimizer], "--augment-shift", shift, "--validation", "5"]
    _train(idx_dataset, tmp_path / "whole", *args, "--epochs", "5")
    _train(idx_dataset, tmp_path / "parts", *args, "--epochs", "2")
    _resume(tmp_path / "parts", "--epochs", "4")  # a run folder ...
    _resume(tmp_path / "parts" / "model.npz", "--epochs", "5")  # ... or its model file
    _assert_same(_saved(tmp_path / "whole"), _saved(tmp_path / "parts"))


def test_the_best_recipes_ingredients_resume_exactly(tmp_path, idx_dataset):
    """Nesterov, the per-step one-cycle rate with its warmup, distortions, label smoothing and
    dropout (its masks come from the run's generator, whose state is saved)."""
    args = ["--optimizer", "nesterov", "--lr", "0.2", "--batch-size", "8", "--lr-schedule",
            "onecycle", "--warmup-epochs", "1.5", "--augment-rotate", "10", "--elastic-alpha",
            "8", "--augment-shift", "1", "--label-smoothing", "0.1",
            "--dropout", "0.2"]  # fmt: skip
    _train(idx_dataset, tmp_path / "whole", *args, "--epochs", "4")
    _train(idx_dataset, tmp_path / "parts", *args, "--epochs", "1")
    _resume(tmp_path / "parts", "--epochs", "4")
    _assert_same(_saved(tmp_path / "whole"), _saved(tmp_path / "parts"))


def test_a_run_with_a_moving_average_is_not_resumed(tmp_path, idx_dataset):
    _train(idx_dataset, tmp_path / "r", *RECIPES["momentum"], "--ema", "0.9", "--epochs", "2")
    result = run("train-multiclass", "--resume", tmp_path / "r", "--epochs", "3")
    assert result.exit_code == 2, result.output
    assert "trained with --ema" in result.stderr and "Traceback" not in result.output


def _interrupt_in_epoch(monkeypatch, epoch):
    """Ctrl-C in the middle of ``epoch`` (its first mini-batch has been trained on)."""
    real_step = training._step
    calls = {"epoch": 0}

    def end_of_epoch(*args, **kwargs):
        calls["epoch"] = args[5] if len(args) > 5 else kwargs["epoch"]
        return real_end(*args, **kwargs)

    def step(*args, **kwargs):
        loss = real_step(*args, **kwargs)
        if calls["epoch"] == epoch - 1:
            raise KeyboardInterrupt
        return loss

    real_end = training._end_of_epoch
    monkeypatch.setattr(training, "_end_of_epoch", end_of_epoch)
    monkeypatch.setattr(training, "_step", step)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_ctrl_c_with_save_on_interrupt_then_resume(tmp_path, idx_dataset, monkeypatch, optimizer):
    # A cosine schedule: the resumed epochs must take up the schedule where it stopped.
    args = [*RECIPES[optimizer], "--augment-shift", "1", "--lr-schedule", "cosine"]
    _train(idx_dataset, tmp_path / "whole", *args, "--epochs", "5")
    with monkeypatch.context() as patch:
        _interrupt_in_epoch(patch, 3)
        result = _train(idx_dataset, tmp_path / "parts", *args, "--epochs", "5",
                        "--save-on-interrupt")  # fmt: skip
    assert result.exit_code == 130
    _, meta = load_model(tmp_path / "parts" / "model.npz")
    assert meta["interrupted"] and meta["epochs_trained"] == 2
    assert meta["stopping"]["reason"] == "interrupted"
    _resume(tmp_path / "parts")  # the saved --epochs 5: nothing to give
    _assert_same(_saved(tmp_path / "whole"), _saved(tmp_path / "parts"))


def test_an_interrupted_resume_leaves_the_saved_run_whole(tmp_path, idx_dataset, monkeypatch):
    _train(idx_dataset, tmp_path / "r", *RECIPES["adam"], "--epochs", "2")
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    _interrupt_in_epoch(monkeypatch, 4)
    result = run("train-multiclass", "--resume", tmp_path / "r", "--epochs", "5", "--quiet")
    assert result.exit_code == 130
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before


def test_early_stopping_run_resumes_from_its_last_epoch(tmp_path, idx_dataset):
    # With early stopping the file holds the best epoch's weights; the last ones go on.
    args = [*RECIPES["adam"], "--validation", "5", "--early-stopping", "50"]
    _train(idx_dataset, tmp_path / "whole", *args, "--epochs", "8")
    _train(idx_dataset, tmp_path / "parts", *args, "--epochs", "4")
    _, meta = load_model(tmp_path / "parts" / "model.npz")
    assert meta["stopping"]["weights_epoch"] == 2  # the best epoch, not the last
    assert "resume_weights" in meta["resume"]["arrays"]
    _resume(tmp_path / "parts", "--epochs", "8")
    _assert_same(_saved(tmp_path / "whole"), _saved(tmp_path / "parts"))


@pytest.mark.parametrize(
    "args,message",
    [
        (["--hidden", "7"], "the run being resumed has hidden = 6, not 7"),
        (["--optimizer", "sgd"], "has optimizer = momentum, not sgd"),
        (["--validation", "0"], "has validation = 5, not 0"),
        (["--epochs", "3"], "has trained 3 epochs; give --epochs N with N > 3"),
        (["--epochs", "2"], "has trained 3 epochs"),
    ],
)
def test_contradicting_settings_are_usage_errors(tmp_path, idx_dataset, args, message):
    _train(idx_dataset, tmp_path / "r", *RECIPES["momentum"], "--validation", "5",
           "--epochs", "3")  # fmt: skip
    result = run("train-multiclass", "--resume", tmp_path / "r", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_a_config_file_that_contradicts_the_saved_run(tmp_path, idx_dataset):
    _train(idx_dataset, tmp_path / "r", *RECIPES["momentum"], "--epochs", "2")
    config = tmp_path / "c.toml"
    config.write_text("epochs = 4\nmomentum = 0.5\n")
    result = run("train-multiclass", "--resume", tmp_path / "r", "--config", config)
    assert result.exit_code == 2
    assert (
        f"config file {config}: 'momentum': the run being resumed has momentum = 0.9, not 0.5"
        in (result.stderr.replace("\n", " "))
    )


def test_allowed_changes_and_the_same_settings_repeated(tmp_path, idx_dataset):
    _train(idx_dataset, tmp_path / "r", *RECIPES["momentum"], "--validation", "5",
           "--epochs", "2")  # fmt: skip
    result = run("train-multiclass", "--resume", tmp_path / "r", "--epochs", "4", "--hidden", "6",
                 "--lr", "0.05", "--early-stopping", "3", "--target-accuracy", "0.99",
                 "--out", tmp_path / "elsewhere", "--quiet", "--no-plots", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["config"]["early_stopping"] == 3 and doc["epochs_trained"] >= 3
    _, meta = load_model(tmp_path / "elsewhere" / "model.npz")
    saved_run_id = load_model(tmp_path / "r" / "model.npz")[1]["run_id"]
    assert meta["resumed_from"] == {
        "model": str(tmp_path / "r" / "model.npz"),
        "run_id": saved_run_id,
        "epoch": 2,
    }
    assert meta["run_id"] != saved_run_id
    assert load_model(tmp_path / "r" / "model.npz")[1]["epochs_trained"] == 2  # untouched


def test_other_task_and_other_data_are_refused(tmp_path, idx_dataset, make_idx_dataset):
    _train(idx_dataset, tmp_path / "r", *RECIPES["gd"], "--epochs", "1")
    result = run("train-binary", "--resume", tmp_path / "r", "--epochs", "2")
    assert result.exit_code == 2
    assert "a multiclass run; resume it with train-multiclass" in result.stderr
    other = make_idx_dataset(tmp_path / "other", seed=1)
    result = run("train-multiclass", "--resume", tmp_path / "r", "--epochs", "2",
                 "--data-dir", other, "--quiet")  # fmt: skip
    assert result.exit_code == 1
    assert "is not the file the saved run trained on" in result.stderr
    assert "a resumed run must see the same data" in result.stderr
    copy = make_idx_dataset(tmp_path / "copy", gz=False)  # same content, not gzipped: fine
    _resume(tmp_path / "r", "--epochs", "2", "--data-dir", copy)


def test_a_model_without_resume_state_is_refused(tmp_path, binary_model):
    params, meta = load_model(binary_model)
    del meta["resume"]  # as older mnistnet versions wrote them
    save_model(tmp_path / "old.npz", params, meta)
    result = run("train-binary", "--resume", tmp_path / "old.npz", "--epochs", "20")
    assert result.exit_code == 1
    assert "holds no resume state" in result.stderr


def _corrupt(tmp_path, idx_dataset, change):
    _train(idx_dataset, tmp_path / "r", *RECIPES["adam"], "--epochs", "2")
    path = tmp_path / "r" / "model.npz"
    params, meta = load_model(path)
    with np.load(path) as npz:
        arrays = {n: npz[n] for n in npz.files if n.startswith("resume_")}
    change(meta, arrays)
    save_model(path, params, meta, arrays)
    return path


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda m, a: m["resume"].update(epoch=0), "'epoch' must be a whole number >= 1"),
        (lambda m, a: m["resume"]["rng"].update(state="0xzz"), "'rng.state' must be a 128-bit"),
        (lambda m, a: m["resume"]["optimizer_state"].update(t=-1), "'optimizer_state' must"),
        (lambda m, a: m["resume"].update(arrays=[]), "'arrays' must be"),
        (lambda m, a: m["resume"].update(version=2), "has version 2"),
    ],
)
def test_a_bad_resume_section_is_refused_on_every_load(tmp_path, idx_dataset, change, message):
    path = _corrupt(tmp_path, idx_dataset, change)
    with pytest.raises(ModelFileError, match="metadata 'resume'") as info:
        load_model(path)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda m, a: a.update(resume_m=a["resume_m"][:-1]), "array resume_m must be float64"),
        (lambda m, a: a["resume_v"].__setitem__(0, np.nan), "resume_v holds NaN"),
        (lambda m, a: a.pop("resume_m"), "lacks the array resume_m"),
        (lambda m, a: a.update(resume_history=a["resume_history"][:1]), "1 epochs of history"),
        (lambda m, a: a["resume_history"].__setitem__((1, 0), 7), "row 2 is epoch 7.0"),
        (lambda m, a: a.update(resume_velocity=a["resume_m"]), "holds array resume_velocity"),
    ],
)
def test_bad_resume_arrays_are_refused_when_resuming(tmp_path, idx_dataset, change, message):
    path = _corrupt(tmp_path, idx_dataset, change)
    load_model(path)  # the model itself is fine: evaluate and info still read it
    with pytest.raises(ModelFileError, match="resume state") as info:
        load_resume(path)
    assert message in str(info.value)
    result = run("train-multiclass", "--resume", path, "--epochs", "3")
    assert result.exit_code == 1 and message in result.stderr


def test_resume_state_of_another_optimizer_is_refused_when_resuming(tmp_path, idx_dataset):
    path = _corrupt(tmp_path, idx_dataset, lambda m, a: m["config"].update(optimizer="sgd"))
    load_model(path)  # evaluate, info and serve read the model all the same
    with pytest.raises(
        ModelFileError, match="'optimizer' is 'adam', the model's config says 'sgd'"
    ):
        load_resume(path)


def test_save_model_refuses_a_resume_array_without_its_prefix(tmp_path):
    with pytest.raises(ValueError, match="must start with 'resume_'"):
        params = {name: np.zeros(2) for name in PARAM_NAMES}
        checkpoint.save_model(tmp_path / "m.npz", params, {}, {"velocity": np.zeros(2)})


def test_help_shows_resume():
    result = run("train-multiclass", "--help", terminal_width=200, max_content_width=200)
    assert "--resume RUN_DIR|MODEL.npz" in result.output
    assert "Continue a saved run where it stopped" in result.output
