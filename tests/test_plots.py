"""Pictures: which digits each grid shows (pure selections), and the PNG files themselves."""

import subprocess
import sys

import numpy as np
import pytest

from mnistnet import checkpoint, plots
from mnistnet.pipeline import load_task_data

# --- selections ------------------------------------------------------------------------

# Binary: label 1 is the positive class; P is the probability of label 1.
Y_BIN = np.array([1, 1, 1, 0, 0, 0, 0, 1, 0, 1])
P_BIN = np.array([0.9, 0.8, 0.3, 0.1, 0.2, 0.7, 0.95, 0.6, 0.4, 0.45])[:, None]


def test_select_binary_examples_groups_and_counts():
    picked = plots.select_binary_examples(Y_BIN, P_BIN, per_row=5)
    assert list(picked) == ["tp", "tn", "fp", "fn"]
    assert picked["tp"].tolist() == [0, 1, 7]  # data order
    assert picked["tn"].tolist() == [3, 4, 8]
    assert picked["fp"].tolist() == [6, 5]  # most confidently wrong first: 0.95, 0.7
    assert picked["fn"].tolist() == [2, 9]  # P(8) 0.3 -> 0.7 sure of 5; 0.45 -> 0.55
    two = plots.select_binary_examples(Y_BIN, P_BIN, per_row=2)
    assert [len(v) for v in two.values()] == [2, 2, 2, 2]


def test_select_binary_examples_caps_at_five_per_row():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    P = rng.random((500, 1))
    picked = plots.select_binary_examples(y, P)
    assert all(len(v) == 5 for v in picked.values())
    y_pred, _ = plots.predicted_confidence(P)
    assert np.all(y[picked["fp"]] == 0) and np.all(y_pred[picked["fp"]] == 1)
    assert np.all(y[picked["fn"]] == 1) and np.all(y_pred[picked["fn"]] == 0)


def _softmax_like(rng, n, k):
    P = rng.random((n, k)) ** 4
    return P / P.sum(axis=1, keepdims=True)


def test_select_confident_errors():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 300)
    P = _softmax_like(rng, 300, 10)
    picked = plots.select_confident_errors(y, P, k=30)
    y_pred, conf = plots.predicted_confidence(P)
    assert len(picked) == 30
    assert np.all(y_pred[picked] != y[picked])
    assert np.all(np.diff(conf[picked]) <= 0)  # most confident first
    others = np.setdiff1d(np.flatnonzero(y_pred != y), picked)
    assert conf[others].max() <= conf[picked].min()
    # Fewer errors than k: all of them.
    y_right = y_pred.copy()
    y_right[:3] = (y_right[:3] + 1) % 10
    assert sorted(plots.select_confident_errors(y_right, P, k=30)) == [0, 1, 2]


def test_select_one_per_class():
    P = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.2, 0.8, 0.0], [0.7, 0.3, 0.0]])
    y = np.array([0, 0, 1, 2])  # class 2's only image is called 0
    assert plots.select_one_per_class(y, P).tolist() == [0, 2, -1]


def test_display_names():
    assert plots.display_names({"classes": [5, 8], "class_names": ["5", "8"]}) == ["5", "8"]
    ten = [f"c{i}" for i in range(10)]
    assert plots.display_names({"classes": [3, 1], "class_names": ten}) == ["c3", "c1"]
    assert plots.display_names({"classes": [3, 1]}) == ["3", "1"]


# --- files ------------------------------------------------------------------------------


def _png_size(path):
    import matplotlib.image

    image = matplotlib.image.imread(path)  # fails unless it is a PNG
    return image.shape[1], image.shape[0]


def _expected(kind):
    w, h = plots.SIZES[kind]
    return round(w * plots.DPI), round(h * plots.DPI)


def test_plot_history_with_validation_and_a_mark(tmp_path, monkeypatch):
    drawn = {}
    real = plots._draw_curves

    def spy(ax, epochs, history, curves, *args, **kwargs):
        values = real(ax, epochs, history, curves, *args, **kwargs)
        drawn[curves[0][0]] = [line.get_label() for line in ax.get_lines()]
        return values

    monkeypatch.setattr(plots, "_draw_curves", spy)
    history = {
        "epoch": [1, 2, 3],
        "loss": [0.9, 0.5, 0.3],
        "train_acc": [0.6, 0.8, 0.9],
        "val_loss": [0.8, 0.6, 0.7],
        "val_acc": [0.7, 0.8, 0.75],
        "test_acc": [0.7, 0.8, 0.8],
    }
    paths = plots.plot_history(history, tmp_path, "ten classes", marks={"best epoch": 2})
    assert drawn == {"loss": ["training", "validation"],
                     "train_acc": ["train", "validation", "test"]}  # fmt: skip
    assert _png_size(paths[0]) == _expected("loss")
    history["val_loss"] = history["val_acc"] = [None] * 3  # no validation split: not drawn
    plots.plot_history(history, tmp_path, "ten classes")
    assert drawn["loss"] == ["training"] and drawn["train_acc"] == ["train", "test"]


def test_plot_history(tmp_path):
    history = {
        "epoch": [1, 2, 3],
        "loss": [0.9, 0.5, 0.3],
        "train_acc": [0.6, 0.8, 0.9],
        "test_acc": [None, 0.75, 0.85],
    }
    paths = plots.plot_history(history, tmp_path, "binary 5 vs 8 on mnist-sample")
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["loss.png", "accuracy.png"]
    assert _png_size(paths[0]) == _expected("loss")
    assert _png_size(paths[1]) == _expected("accuracy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accuracy.png", "loss.png"]
    assert plots.plot_history({"epoch": []}, tmp_path / "none", "x") == []


@pytest.fixture(scope="module")
def binary_report(binary_model, tmp_path_factory):
    params, meta = checkpoint.load_model(binary_model)
    test = load_task_data("mnist-sample", "test", meta["classes"], pixels="unit")
    train = load_task_data(
        "mnist-sample", "train", meta["classes"], samples_per_class=200, pixels="unit"
    )
    out = tmp_path_factory.mktemp("binary-plots")
    return plots.plot_report(params, meta, test, out, train=train), params, meta, test


@pytest.fixture(scope="module")
def multiclass_report(multiclass_model, tmp_path_factory):
    params, meta = checkpoint.load_model(multiclass_model)
    test = load_task_data("mnist-sample", "test", meta["classes"], pixels="unit")
    out = tmp_path_factory.mktemp("multiclass-plots")
    return plots.plot_report(params, meta, test, out), params, meta, test


def test_binary_report_files(binary_report):
    paths, *_ = binary_report
    names = [p.rsplit("/", 1)[-1] for p in paths]
    assert names == ["examples-test.png", "examples-train.png", "hidden-units.png"]
    assert _png_size(paths[0]) == _expected("examples-binary")
    assert _png_size(paths[1]) == _expected("examples-binary")
    assert _png_size(paths[2]) == _expected("hidden-units")


def test_binary_report_panels(binary_report):
    _, params, meta, test = binary_report
    from mnistnet.model import predict_proba

    P = predict_proba(params, test.X, "binary")
    picked = plots.select_binary_examples(test.y, P)
    # Each row: up to 5 digits of its own outcome, as many as the model produced.
    pred = P[:, 0] >= 0.5
    outcomes = {
        "tp": (test.y == 1) & pred,
        "tn": (test.y == 0) & ~pred,
        "fp": (test.y == 0) & pred,
        "fn": (test.y == 1) & ~pred,
    }
    for key, mask in outcomes.items():
        assert len(picked[key]) == min(5, mask.sum()), key
        assert mask[picked[key]].all(), key
    assert len(picked["fp"]) + len(picked["fn"]) > 0  # the model errs: those rows are drawn


def test_multiclass_report_files(multiclass_report):
    paths, *_ = multiclass_report
    names = [p.rsplit("/", 1)[-1] for p in paths]
    assert names == ["confusion.png", "errors.png", "examples.png", "hidden-units.png"]
    for path, kind in zip(paths, ["confusion", "errors", "examples", "hidden-units"], strict=True):
        assert _png_size(path) == _expected(kind), path


def test_multiclass_report_panels(multiclass_report):
    _, params, meta, test = multiclass_report
    from mnistnet.model import predict_proba

    P = predict_proba(params, test.X, "multiclass")
    assert len(plots.select_confident_errors(test.y, P, k=30)) == 30
    assert np.all(plots.select_one_per_class(test.y, P) >= 0)  # every digit has one


def test_no_temporary_files_left(multiclass_report):
    paths, *_ = multiclass_report
    folder = paths[0].rsplit("/", 1)[0]
    import os

    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["info", "--help"],
        ["evaluate", "--help"],
        ["info", "MODEL"],
        ["lr-find", "--help"],
        ["compare", "--help"],
    ],
)
def test_help_and_info_never_import_matplotlib(args, binary_model):
    args = [str(binary_model) if a == "MODEL" else a for a in args]
    code = (
        "import sys\n"
        "from mnistnet.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "bad = [m for m in sys.modules if m.split('.')[0] == 'matplotlib']\n"
        "assert not bad, bad[:3]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- run ids and what training changed (issue 9) ----------------------------------------


def _png_text(path):
    from PIL import Image

    with Image.open(path) as image:
        return dict(image.text)


def test_every_picture_records_the_run_id(binary_report, multiclass_report, tmp_path):
    for paths, _, meta, _ in (binary_report, multiclass_report):
        assert meta["run_id"]
        for path in paths:
            assert _png_text(path)[plots.RUN_ID_KEY] == meta["run_id"], path
    history = {"epoch": [1], "loss": [0.5], "train_acc": [0.8], "test_acc": [0.7]}
    for path in plots.plot_history(history, tmp_path, "t", run_id="20261127-101500-3fa2c91b"):
        assert _png_text(path)[plots.RUN_ID_KEY] == "20261127-101500-3fa2c91b"


def test_the_recorded_init_and_seed_rebuild_the_initial_weights(tmp_path, monkeypatch):
    from helpers import run

    from mnistnet import training

    started = {}
    real_fit = training.fit

    def fit(params, *args, **kwargs):
        started.update({k: v.copy() for k, v in params.items()})
        return real_fit(params, *args, **kwargs)

    monkeypatch.setattr("mnistnet.experiment.fit", fit)
    out = tmp_path / "o"
    args = ["--dataset", "mnist-sample", "--samples-per-class", 20, "--hidden", 8, "--epochs", 2]
    for init in ("notebook", "xavier"):
        result = run("train-binary", "--digits", 3, 7, *args, "--init", init, "--seed", 11,
                     "--dtype", "float32", "--out", out / init, "--no-plots", "-q")  # fmt: skip
        assert result.exit_code == 0, result.output
        params, meta = checkpoint.load_model(out / init / "model.npz")
        W1_init = plots.initial_W1(meta)
        assert W1_init.dtype == np.float32 and np.array_equal(W1_init, started["W1"])
        assert not np.array_equal(params["W1"], W1_init)  # training moved them


def _tiles(canvas):
    """The 28x28 images of a composed grid, row by row: the blocks of finite pixels."""
    finite = np.isfinite(np.ma.filled(canvas, np.nan))
    rows = [
        i for i in range(finite.shape[0]) if finite[i].any() and (i == 0 or not finite[i - 1].any())
    ]
    cols = [
        j
        for j in range(finite.shape[1])
        if finite[:, j].any() and (j == 0 or not finite[:, j - 1].any())
    ]
    return [np.ma.filled(canvas, np.nan)[i : i + 28, j : j + 28] for i in rows for j in cols
            if finite[i : i + 28, j : j + 28].all()]  # fmt: skip


def _drawn_units(monkeypatch, params, meta, tmp_path):
    """The 28x28 arrays and the title hidden-units.png shows."""
    drawn = {}

    def save(fig, out_dir, name, run_id=None):
        grid = next(ax for ax in fig.axes if ax.images)  # the colour bar has none
        drawn["units"] = _tiles(grid.images[0].get_array())
        drawn["title"] = fig._suptitle.get_text()
        return name

    monkeypatch.setattr(plots, "_save", save)
    plots.plot_hidden_units(params, meta, tmp_path, n_units=4, cols=2)
    return drawn


def test_hidden_units_show_what_training_changed(binary_model, tmp_path, monkeypatch):
    params, meta = checkpoint.load_model(binary_model)
    change = params["W1"] - plots.initial_W1(meta)
    drawn = _drawn_units(monkeypatch, params, meta, tmp_path)
    assert len(drawn["units"]) == 4
    for j, image in enumerate(drawn["units"]):
        assert np.allclose(image, change[:, j].reshape(28, 28))
    assert "what training changed" in drawn["title"]
    assert "final minus initial incoming weights (xavier init, seed 0)" in drawn["title"]

    del meta["config"]  # no recorded init: the weights as they are, and the title says so
    drawn = _drawn_units(monkeypatch, params, meta, tmp_path)
    assert np.allclose(drawn["units"][0], params["W1"][:, 0].reshape(28, 28))
    assert "(no recorded init and seed: as they are)" in drawn["title"]


# --- drawing fast: one composed image per grid (issue 12) --------------------------------


def test_a_grid_is_one_image_with_each_digit_in_its_cell():
    grid = plots.DigitGrid("errors", 2, 3)
    images = np.arange(4 * 28 * 28, dtype=float).reshape(4, 28, 28)
    canvas = grid.compose(images, [0, 1, 2, 4])  # cell 3 stays empty
    assert canvas.shape == grid.shape
    for image, cell in zip(images, [0, 1, 2, 4], strict=True):
        x, y = grid.origin(cell)
        assert np.array_equal(canvas[y : y + 28, x : x + 28], image)
    assert np.isnan(canvas).sum() == canvas.size - 4 * 28 * 28  # the rest is background
    assert [t.tolist() for t in _tiles(canvas)] == [i.tolist() for i in images]
    assert grid.top > 0  # room for the captions above each digit


def test_every_digit_grid_is_drawn_as_one_axes(multiclass_model, tmp_path, monkeypatch):
    params, meta = checkpoint.load_model(multiclass_model)
    test = load_task_data("mnist-sample", "test", meta["classes"], pixels="unit")
    axes = {}

    def save(fig, out_dir, name, run_id=None):
        axes[name] = [len(ax.images) for ax in fig.axes]
        return name

    monkeypatch.setattr(plots, "_save", save)
    plots.plot_report(params, meta, test, tmp_path)
    assert axes["errors.png"] == [1] and axes["examples.png"] == [1]
    assert axes["hidden-units.png"] == [1, 0]  # and its colour bar


def test_a_ten_class_run_lets_its_training_inputs_go_before_the_pictures(tmp_path):
    from mnistnet import experiment
    from mnistnet.config import resolve_config

    results = {}
    for task, digits in (("multiclass", None), ("binary", (3, 7))):
        flags = {"dataset": "mnist-sample", "samples_per_class": 30, "hidden": 8, "epochs": 1,
                 "digits": digits, "out": str(tmp_path / task)}  # fmt: skip
        config = resolve_config(task, {}, flags)
        data = experiment.load_data(config)
        results[task] = experiment.run_training(config, data.train, data.test)
        results[task].release_training_inputs()
    ten = results["multiclass"]
    assert ten.train.X is None and ten.train.source_images is None
    assert len(ten.train) == 300  # what the metadata needs stays
    paths, _ = experiment.save_run(ten, plots=True)  # the pictures need only the test split
    assert {"errors", "confusion", "examples", "hidden-units"} <= set(paths)
    assert results["binary"].train.X is not None  # examples-train.png shows training digits
