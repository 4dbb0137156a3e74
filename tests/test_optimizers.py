"""Optimizer updates against the formulas, written out by hand for two steps."""

import copy
import math

import numpy as np
import pytest

from mnistnet.optimizers import (
    Adam,
    GradientDescent,
    Momentum,
    Nesterov,
    make_optimizer,
    scheduled_lr,
)


def _theta():
    return np.array([1.0, -2.0, 0.5, 3.0])


def _grad(scale):
    return np.array([0.1, 0.2, -0.3, 1.0]) * scale


def _update(opt, theta, grad, lr):
    """What the training loop hands ``update``: ``lr * grad`` when the optimizer asks for it."""
    opt.update(theta, lr * grad if opt.grad_includes_lr else grad.copy(), lr)


def test_gradient_descent_steps_on_the_learning_rate_times_the_gradient():
    theta = _theta()
    opt = GradientDescent()
    assert opt.grad_includes_lr
    _update(opt, theta, _grad(1), lr=0.5)
    assert theta.tolist() == [1.0 - 0.05, -2.0 - 0.1, 0.5 + 0.15, 3.0 - 0.5]


def test_momentum_two_steps():
    theta = _theta()
    opt = Momentum(momentum=0.9)
    assert opt.grad_includes_lr and opt.velocity is None
    _update(opt, theta, _grad(1), lr=0.1)
    _update(opt, theta, _grad(2), lr=0.1)
    v1 = -0.1 * 1.0
    v2 = 0.9 * v1 - 0.1 * 2.0
    assert theta[3] == pytest.approx(3.0 + v1 + v2, rel=1e-15)
    assert opt.velocity[3] == pytest.approx(v2, rel=1e-15)
    v1 = -0.1 * -0.3
    v2 = 0.9 * v1 - 0.1 * -0.6
    assert theta[2] == pytest.approx(0.5 + v1 + v2, rel=1e-15)


def test_nesterov_two_steps():
    """v <- mu v - lr g; theta <- theta + mu v - lr g (sklearn's nesterovs_momentum)."""
    theta = _theta()
    opt = make_optimizer("nesterov", momentum=0.9)
    assert isinstance(opt, Nesterov) and opt.grad_includes_lr
    _update(opt, theta, _grad(1), lr=0.1)
    _update(opt, theta, _grad(2), lr=0.1)
    w, v = 3.0, 0.0
    for g in (1.0, 2.0):
        v = 0.9 * v - 0.1 * g
        w = w + 0.9 * v - 0.1 * g
    assert theta[3] == pytest.approx(w, rel=1e-15)
    assert opt.velocity[3] == pytest.approx(v, rel=1e-15)
    plain = _theta()
    heavy_ball = Momentum(0.9)
    _update(heavy_ball, plain, _grad(1), lr=0.1)
    _update(heavy_ball, plain, _grad(2), lr=0.1)
    assert theta[3] != pytest.approx(plain[3])  # another method than heavy-ball momentum


def test_adam_two_steps_as_in_the_paper():
    theta = _theta()
    opt = Adam()  # beta1 0.9, beta2 0.999, eps 1e-8
    assert not opt.grad_includes_lr
    lr = 0.01
    _update(opt, theta, _grad(1), lr=lr)
    _update(opt, theta, _grad(-3), lr=lr)
    w = 3.0
    m = v = 0.0
    for t, g in ((1, 1.0), (2, -3.0)):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        w -= lr * m_hat / (math.sqrt(v_hat) + 1e-8)
    assert theta[3] == pytest.approx(w, rel=1e-12)
    assert opt.m[3] == pytest.approx(m, rel=1e-12) and opt.v[3] == pytest.approx(v, rel=1e-12)
    assert opt.t == 2


@pytest.mark.parametrize(
    "name,state",
    [("momentum", ("velocity",)), ("nesterov", ("velocity",)), ("adam", ("m", "v", "t"))],
)
def test_the_documented_state_is_all_a_resumed_run_needs(name, state):
    a, b = _theta(), _theta()
    opt_a, opt_b = make_optimizer(name), make_optimizer(name)
    _update(opt_a, a, _grad(1), lr=0.1)
    _update(opt_b, b, _grad(1), lr=0.1)
    resumed = make_optimizer(name)  # a fresh object, given only the documented state
    for attr in state:
        setattr(resumed, attr, copy.deepcopy(getattr(opt_b, attr)))
    _update(opt_a, a, _grad(-2), lr=0.1)
    _update(resumed, b, _grad(-2), lr=0.1)
    assert a.tolist() == b.tolist()


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam"])
def test_float32_stays_float32(name):
    theta = _theta().astype(np.float32)
    opt = make_optimizer(name)
    _update(opt, theta, _grad(1).astype(np.float32), lr=np.float32(0.1))
    assert theta.dtype == np.float32


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


def test_cosine_and_step_hold_for_a_whole_epoch():
    assert scheduled_lr(0.1, 5.9, 10, "cosine") == scheduled_lr(0.1, 5, 10, "cosine")
    assert scheduled_lr(0.1, 2.99, 9, "step") == 0.1


def test_onecycle_is_a_straight_line_down_to_zero_after_the_warmup():
    assert scheduled_lr(0.4, 0, 10, "onecycle") == pytest.approx(0.4)
    assert scheduled_lr(0.4, 2.5, 10, "onecycle") == pytest.approx(0.3)
    assert scheduled_lr(0.4, 10, 10, "onecycle") == 0
    # with a warmup of 2 epochs: up from 0 to 0.4 at epoch 2, then down to 0 at epoch 10
    assert scheduled_lr(0.4, 0.5, 10, "onecycle", warmup=2) == pytest.approx(0.1)
    assert scheduled_lr(0.4, 2, 10, "onecycle", warmup=2) == pytest.approx(0.4)
    assert scheduled_lr(0.4, 6, 10, "onecycle", warmup=2) == pytest.approx(0.2)


def test_warmup_rises_linearly_then_leaves_the_schedule_alone():
    assert scheduled_lr(0.2, 0.25, 10, "constant", warmup=1) == pytest.approx(0.05)
    assert scheduled_lr(0.2, 1.5, 10, "constant", warmup=1) == 0.2
    cosine_at_3 = scheduled_lr(0.2, 3, 10, "cosine")
    assert scheduled_lr(0.2, 3.5, 10, "cosine", warmup=1) == cosine_at_3
    assert scheduled_lr(0.2, 0.5, 10, "cosine", warmup=1) == pytest.approx(0.1)
