"""Optimizer updates against the formulas, written out by hand for two steps."""

import math

import numpy as np
import pytest

from mnistnet.optimizers import Adam, GradientDescent, Momentum, make_optimizer, scheduled_lr


def _params():
    return {
        "W1": np.array([[1.0, -2.0]]),
        "b1": np.array([0.5]),
        "W2": np.array([[3.0]]),
        "b2": np.array([0.0]),
    }


def _grads(scale):
    return {
        "W1": np.array([[0.1, 0.2]]) * scale,
        "b1": np.array([-0.3]) * scale,
        "W2": np.array([[1.0]]) * scale,
        "b2": np.array([2.0]) * scale,
    }


def test_gradient_descent():
    p = _params()
    GradientDescent().step(p, _grads(1), lr=0.5)
    assert p["W1"].tolist() == [[1.0 - 0.05, -2.0 - 0.1]]
    assert p["b1"].tolist() == [0.5 + 0.15]
    assert p["b2"].tolist() == [-1.0]


def test_momentum_two_steps():
    p = _params()
    opt = Momentum(momentum=0.9)
    opt.step(p, _grads(1), lr=0.1)
    opt.step(p, _grads(2), lr=0.1)
    v1 = -0.1 * 1.0
    v2 = 0.9 * v1 - 0.1 * 2.0
    assert p["W2"][0, 0] == pytest.approx(3.0 + v1 + v2)
    v1 = -0.1 * 2.0
    v2 = 0.9 * v1 - 0.1 * 4.0
    assert p["b2"][0] == pytest.approx(v1 + v2)


def test_adam_two_steps_as_in_the_paper():
    p = _params()
    opt = Adam()  # beta1 0.9, beta2 0.999, eps 1e-8
    lr = 0.01
    opt.step(p, _grads(1), lr=lr)
    opt.step(p, _grads(-3), lr=lr)
    w = 3.0
    m = v = 0.0
    for t, g in ((1, 1.0), (2, -3.0)):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        w -= lr * m_hat / (math.sqrt(v_hat) + 1e-8)
    assert p["W2"][0, 0] == pytest.approx(w, rel=1e-12)
    assert opt.t == 2


def test_prescaled_steps_equal_steps():
    for name in ("gd", "momentum"):
        a, b = _params(), _params()
        opt_a, opt_b = make_optimizer(name), make_optimizer(name)
        for scale in (1, -2):
            opt_a.step(a, _grads(scale), lr=0.1)
            opt_b.step_prescaled(b, {k: 0.1 * v for k, v in _grads(scale).items()})
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-15)


def test_float32_stays_float32():
    p = {k: v.astype(np.float32) for k, v in _params().items()}
    for name in ("sgd", "momentum", "adam"):
        opt = make_optimizer(name)
        opt.step(p, {k: v.astype(np.float32) for k, v in _grads(1).items()}, lr=0.1)
        assert all(v.dtype == np.float32 for v in p.values())


def test_schedules():
    assert scheduled_lr(0.1, 5, 10, "constant") == 0.1
    assert scheduled_lr(0.1, 0, 10, "cosine") == pytest.approx(0.1)
    assert scheduled_lr(0.1, 5, 10, "cosine") == pytest.approx(0.05)
    assert scheduled_lr(0.1, 0, 9, "step") == 0.1
    assert scheduled_lr(0.1, 3, 9, "step") == 0.05
    assert scheduled_lr(0.1, 8, 9, "step") == 0.025
    with pytest.raises(ValueError):
        scheduled_lr(0.1, 0, 1, "bogus")
    with pytest.raises(ValueError):
        make_optimizer("rmsprop")
