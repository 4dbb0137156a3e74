"""Test-time augmentation: the copies are the shifted images, the scores their mean."""

import numpy as np
import pytest
from helpers import run, strict_json

from mnistnet import model, parallel, tta
from mnistnet.checkpoint import load_model
from mnistnet.pipeline import load_task_data


def test_translate_moves_pixels_and_shifts_in_zeros():
    X = np.zeros((1, 784))
    X[0, 0] = 1.0  # top-left
    X[0, 5 * 28 + 27] = 2.0  # row 5, last column
    moved = tta.translate(X, 2, -1).reshape(28, 28)
    assert moved[7, 26] == 2.0  # down 2, left 1
    assert moved.sum() == 2.0  # the top-left pixel left the image
    centre = np.zeros((1, 784))
    centre[0, 14 * 28 + 14] = 1.0
    back = tta.translate(tta.translate(centre, 3, 4), -3, -4)
    assert np.array_equal(back, centre)


def _rolled(X, dy, dx):
    """The same move written another way: roll, then blank what wrapped around."""
    images = np.roll(X.reshape(-1, 28, 28), (dy, dx), axis=(1, 2))
    if dy > 0:
        images[:, :dy] = 0
    elif dy < 0:
        images[:, dy:] = 0
    if dx > 0:
        images[:, :, :dx] = 0
    elif dx < 0:
        images[:, :, dx:] = 0
    return images.reshape(len(X), -1)


@pytest.mark.parametrize("task,n_out", [("binary", 1), ("multiclass", 10)])
def test_probabilities_are_the_mean_over_the_image_and_four_shifted_copies(task, n_out):
    rng = np.random.default_rng(0)
    params = model.init_params(784, 12, n_out, method="xavier", seed=1)
    X = rng.random((30, 784))
    y = rng.integers(0, max(n_out, 2), 30)
    copies = [(0, 0), (-2, 0), (2, 0), (0, -2), (0, 2)]
    assert tta.offsets(2) == copies
    copies_P = [model.predict_proba(params, _rolled(X, dy, dx), task) for dy, dx in copies]
    expected = np.mean(copies_P, axis=0)
    loss, accuracy, P = tta.score(params, X, y, task, 2)
    np.testing.assert_allclose(P, expected, rtol=1e-12)
    assert accuracy == np.mean(model.predict(expected) == y)
    if n_out > 1:
        p_true = expected[np.arange(30), y]
    else:
        p_true = np.where(y == 1, expected[:, 0], 1 - expected[:, 0])
    assert loss == pytest.approx(-np.mean(np.log(p_true)), rel=1e-9)


@pytest.mark.parametrize("task,n_out", [("binary", 1), ("multiclass", 10)])
def test_tta_on_a_split_network_matches_one_thread(task, n_out):
    rng = np.random.default_rng(2)
    params = model.init_params(784, 64, n_out, method="xavier", seed=3)
    X = rng.random((50, 784))
    y = rng.integers(0, max(n_out, 2), 50)
    plain = tta.score(params, X, y, task, 1)
    calls = []
    with parallel.network(2) as net:
        assert isinstance(net, parallel.SplitNetwork)
        forward = net.forward
        net.forward = lambda *args: calls.append(1) or forward(*args)
        split = tta.score(params, X, y, task, 1, net)
    assert len(calls) == 5  # the image and its four copies, through the split passes
    np.testing.assert_allclose(split[2], plain[2], rtol=1e-12)
    assert split[0] == pytest.approx(plain[0], rel=1e-12) and split[1] == plain[1]


def test_evaluate_tta_shift_scores_the_averaged_probabilities(multiclass_model):
    result = run("evaluate", multiclass_model, "--json", "--tta-shift", "1")
    assert result.exit_code == 0, result.stderr
    report = strict_json(result.stdout)
    assert report["tta"] == {"shift": 1, "copies": 5}
    params, meta = load_model(multiclass_model)
    data = load_task_data("mnist-sample", "test", meta["classes"], pixels="unit",
                          dtype="float64")  # fmt: skip
    _, accuracy, _ = tta.score(params, data.X, data.y, "multiclass", 1)
    assert report["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    plain = strict_json(run("evaluate", multiclass_model, "--json").stdout)
    assert "tta" not in plain and plain["accuracy"] != report["accuracy"]


def test_tta_shift_out_of_range_is_a_usage_error(multiclass_model):
    result = run("evaluate", multiclass_model, "--tta-shift", "9")
    assert result.exit_code == 2 and "--tta-shift" in result.stderr
