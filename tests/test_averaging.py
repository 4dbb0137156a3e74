"""Weight averaging: the moving average matches its formula, in the optimizer loop and in fit."""

import numpy as np
import pytest

from mnistnet import model
from mnistnet.averaging import ExponentialAverage
from mnistnet.optimizers import make_optimizer
from mnistnet.training import fit, score


def test_three_updates_match_the_formula():
    start = np.array([1.0, -2.0, 4.0])
    average = ExponentialAverage(start.copy(), {}, decay=0.75)
    steps = [np.array([3.0, 0.0, 4.0]), np.array([-1.0, 2.0, 0.0]), np.array([5.0, 5.0, 5.0])]
    for theta in steps:
        average.update(theta)
    t1, t2, t3 = steps
    expected = 0.75**3 * start + 0.25 * (0.75**2 * t1 + 0.75 * t2 + t3)
    np.testing.assert_allclose(average.theta, expected, rtol=1e-15)


def test_the_decay_must_be_below_one():
    with pytest.raises(ValueError):
        ExponentialAverage(np.zeros(2), {}, decay=1.0)


def _data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    X = rng.random((90, 784))
    for c in range(3):
        X[y == c, c * 200 : c * 200 + 200] += 1
    return X, y


def _train(epochs, ema=0.0):
    X, y = _data()
    params = model.init_params(784, 8, 3, method="xavier", seed=2)
    history = fit(params, X, y, task="multiclass", optimizer=make_optimizer("gd"),
                  epochs=epochs, lr=0.5, reduction="mean", ema=ema, X_test=X, y_test=y)  # fmt: skip
    return params, history


def test_fit_returns_and_scores_the_moving_average_of_its_weights():
    """Full-batch gd: one step per epoch, so the weights after k epochs are the k-epoch run's."""
    decay = 0.6
    trajectory = [_train(k)[0] for k in (1, 2, 3)]
    start = model.init_params(784, 8, 3, method="xavier", seed=2)
    averaged, history = _train(3, ema=decay)
    for name in averaged:
        t1, t2, t3 = (p[name] for p in trajectory)
        expected = decay**3 * start[name] + (1 - decay) * (decay**2 * t1 + decay * t2 + t3)
        np.testing.assert_allclose(averaged[name], expected, rtol=1e-12, atol=1e-15)
        assert not np.allclose(averaged[name], t3)  # not the last weights
    X, y = _data()
    assert history.last.test_acc == score(averaged, X, y, "multiclass")[1]
