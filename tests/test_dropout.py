"""Dropout of the hidden units: the masks, the gradient by finite differences, training."""

import numpy as np
import pytest
from helpers import numeric_gradients, random_params, relative_error

from mnistnet import model
from mnistnet.data import targets
from mnistnet.dropout import DropMask, Dropout
from mnistnet.functions import sigmoid, sigmoid_derivative_inplace
from mnistnet.optimizers import make_optimizer
from mnistnet.training import fit, score


def test_a_mask_drops_the_rate_and_scales_the_kept_units():
    dropper = Dropout(0.3, np.random.default_rng(0), 1000, 256, np.float32)
    drop = dropper.draw(1000)
    assert drop.mask.shape == (1000, 256) and drop.mask.dtype == np.float32
    assert set(np.unique(drop.mask)) == {np.float32(0), np.float32(1 / 0.7)}
    assert (drop.mask == 0).mean() == pytest.approx(0.3, abs=0.005)
    assert drop.mask.mean() == pytest.approx(1.0, abs=0.01)  # the activation's expectation
    assert drop.keep_prob == pytest.approx(0.7)


def test_masks_repeat_for_a_seed_and_change_from_step_to_step():
    a = Dropout(0.5, np.random.default_rng(7), 64, 32, np.float64)
    b = Dropout(0.5, np.random.default_rng(7), 64, 32, np.float64)
    first = a.draw(64).mask.copy()
    assert np.array_equal(first, b.draw(64).mask)
    assert not np.array_equal(first, a.draw(64).mask)
    assert a.draw(10).mask.shape == (10, 32)  # a short last batch


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_a_rate_outside_zero_to_one_is_refused(rate):
    with pytest.raises(ValueError, match="dropout rate"):
        Dropout(rate, np.random.default_rng(0), 4, 4, np.float64)


def test_the_derivative_from_the_masked_activation_is_mask_times_sigmoid_prime():
    rng = np.random.default_rng(1)
    Z = rng.normal(0, 2, (5, 6))
    A = sigmoid(Z)
    keep_prob = 0.6
    M = (rng.random(Z.shape) < keep_prob) / keep_prob
    delta = rng.normal(0, 1, Z.shape)
    got = sigmoid_derivative_inplace(delta.copy(), A * M, keep_prob=keep_prob)
    np.testing.assert_allclose(got, delta * M * A * (1 - A), rtol=1e-12, atol=1e-15)


def _net(n_out, seed=3):
    rng = np.random.default_rng(seed)
    n, n_in, n_hidden = 7, 5, 6
    params = random_params(rng, n_in, n_hidden, n_out)
    X = rng.normal(0, 1, (n, n_in))
    y = rng.integers(0, max(n_out, 2), n)
    return params, X, targets(y, n_out)


@pytest.mark.parametrize("task,n_out", [("binary", 1), ("multiclass", 4)])
def test_the_gradient_with_a_fixed_mask_matches_finite_differences(task, n_out):
    params, X, Y = _net(n_out)
    drop = Dropout(0.4, np.random.default_rng(5), len(X), 6, np.float64).draw(len(X))
    assert 0 < (drop.mask == 0).sum() < drop.mask.size  # some units dropped, some kept

    def objective():
        # the masked network written out directly, not through the model's code
        A1 = sigmoid(X @ params["W1"] + params["b1"]) * drop.mask
        Z2 = A1 @ params["W2"] + params["b2"]
        if task == "binary":
            P = sigmoid(Z2)
            return -(Y * np.log(P) + (1 - Y) * np.log(1 - P)).sum()
        P = np.exp(Z2 - Z2.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        return -(Y * np.log(P)).sum()

    _, cache = model.forward(params, X, task, drop=drop)
    assert model.loss(cache, Y, task).sum() == pytest.approx(objective(), rel=1e-12)
    grads = {k: v.copy() for k, v in model.backward(params, cache, Y).items()}
    numeric = numeric_gradients(params, objective)
    for name in params:
        rel = relative_error(grads[name], numeric[name])
        assert rel < 1e-6, f"{name}: relative error {rel:.2e}"


def test_a_mask_of_ones_is_the_plain_network():
    params, X, Y = _net(4)
    ones = DropMask(np.ones((len(X), 6)), 1.0)
    P_plain, cache = model.forward(params, X, "multiclass")
    P_plain = P_plain.copy()
    plain = {k: v.copy() for k, v in model.backward(params, cache, Y).items()}
    P, cache = model.forward(params, X, "multiclass", drop=ones)
    np.testing.assert_array_equal(P, P_plain)
    for name, value in model.backward(params, cache, Y).items():
        np.testing.assert_array_equal(value, plain[name])


def _train(X, y, dropout, seed=0, epochs=3):
    params = model.init_params(X.shape[1], 32, 3, method="xavier", seed=1)
    history = fit(params, X, y, task="multiclass", optimizer=make_optimizer("momentum"),
                  epochs=epochs, lr=0.5, batch_size=16, reduction="mean", dropout=dropout,
                  rng=np.random.default_rng(seed), X_test=X, y_test=y)  # fmt: skip
    return params, history


def test_training_with_dropout_learns_repeats_and_scores_every_unit():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 20))
    y = rng.integers(0, 3, 300)
    X = centres[y] + rng.normal(0, 0.5, (300, 20))
    params, history = _train(X, y, dropout=0.3)
    again, _ = _train(X, y, dropout=0.3)
    for name in model.PARAM_NAMES:
        np.testing.assert_array_equal(params[name], again[name])
    plain, _ = _train(X, y, dropout=0.0)
    assert not np.allclose(plain["W1"], params["W1"])  # the masks changed the run
    loss, acc, _ = score(params, X, y, "multiclass")
    assert acc > 0.9
    # scoring draws no mask: the recorded test scores are the full network's
    assert history.records[-1].test_loss == pytest.approx(loss, rel=1e-12)
