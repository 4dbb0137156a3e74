"""Optimizers: objects with state and one method, ``update(theta, grad, lr)``.

``theta`` is the whole parameter vector and ``grad`` the gradient laid out
the same way (see :func:`mnistnet.model.pack`): the update rules are
elementwise, so one step is a handful of whole-vector operations, not a
handful per parameter. ``update`` changes ``theta`` in place and may
overwrite ``grad`` (a scratch buffer of the training loop).

Each class declares ``grad_includes_lr``. When True, ``update`` expects the
gradient already multiplied by the learning rate (and ignores ``lr``): the
training loop has backward fold ``lr`` into its small output delta, which
saves a pass over every weight per step. Adam divides by its own running
averages of the gradient, so it takes the plain gradient and ``lr``.

The state an optimizer keeps between steps is plain arrays and ints, named
in each class's ``STATE``: :func:`get_state` copies it out and
:func:`set_state` puts it back, so a run can be saved and resumed exactly.

Learning-rate schedules are pure functions of the time elapsed, in epochs
(nanoGPT's ``get_lr``): :func:`scheduled_lr`.
"""

import math

import numpy as np

OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adam")
SCHEDULES = ("constant", "cosine", "step", "onecycle")


class GradientDescent:
    """Plain gradient descent: ``theta <- theta - lr * g``.

    ``gd`` (one step per epoch on the full batch, the notebook's) and
    ``sgd`` (one step per mini-batch) share this update. No state.
    """

    grad_includes_lr = True
    STATE = ()

    def update(self, theta, grad, lr):
        theta -= grad  # grad is lr * g


class Momentum:
    """Heavy-ball momentum: ``v <- mu * v - lr * g``; ``theta <- theta + v``.

    The form of sklearn's ``SGDOptimizer`` (without Nesterov).

    State: ``velocity``, an array shaped as ``theta`` (None before the first
    step).
    """

    grad_includes_lr = True
    STATE = ("velocity",)

    def __init__(self, momentum=0.9):
        self.momentum = momentum
        self.velocity = None

    def update(self, theta, grad, lr):
        theta += self._advance(theta, grad)

    def _advance(self, theta, grad):
        """``v <- mu * v - lr * g`` in place (``grad`` is ``lr * g``); returns ``v``."""
        if self.velocity is None:
            self.velocity = np.zeros_like(theta)
        v = self.velocity
        v *= self.momentum
        v -= grad
        return v


class Nesterov(Momentum):
    """Nesterov momentum: ``v <- mu * v - lr * g``; ``theta <- theta + mu * v - lr * g``.

    The gradient is taken at ``theta``, and the step looks ahead along the
    new velocity: the form of sklearn's ``SGDOptimizer(nesterovs_momentum=True)``
    (Sutskever, Martens, Dahl & Hinton, 2013, eq. 3-4, rewritten for the
    parameters actually stored). Same state as :class:`Momentum`.
    """

    def update(self, theta, grad, lr):
        v = self._advance(theta, grad)
        theta -= grad
        np.multiply(v, self.momentum, out=grad)  # grad is scratch now
        theta += grad


class Adam:
    """Adam (Kingma & Ba, 2015, Algorithm 1), defaults from the paper.

    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)`` with the bias
    corrections ``m_hat = m / (1 - b1^t)`` and ``v_hat = v / (1 - b2^t)``.

    State: ``m`` and ``v``, arrays shaped as ``theta`` (None before the
    first step), and ``t``, the number of steps taken.
    """

    grad_includes_lr = False
    STATE = ("m", "v", "t")

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.m = self.v = None
        self._work = None  # scratch, not state

    def update(self, theta, grad, lr):
        if self.m is None:
            self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        if self._work is None:
            self._work = np.empty_like(theta)
        self.t += 1
        m_correction = 1 - self.beta1**self.t
        v_correction = 1 - self.beta2**self.t
        m, v, work = self.m, self.v, self._work
        m *= self.beta1
        np.multiply(grad, 1 - self.beta1, out=work)
        m += work
        v *= self.beta2
        np.multiply(grad, grad, out=work)
        work *= 1 - self.beta2
        v += work
        # work <- sqrt(v_hat) + eps; grad <- lr * m_hat (grad is scratch now)
        np.multiply(v, 1 / v_correction, out=work)
        np.sqrt(work, out=work)
        work += self.eps
        np.multiply(m, lr / m_correction, out=grad)
        grad /= work
        theta -= grad


def make_optimizer(name, *, momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8):
    """The optimizer called ``name`` (one of :data:`OPTIMIZERS`)."""
    if name in ("gd", "sgd"):
        return GradientDescent()
    if name == "momentum":
        return Momentum(momentum)
    if name == "nesterov":
        return Nesterov(momentum)
    if name == "adam":
        return Adam(beta1, beta2, eps)
    raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def get_state(optimizer):
    """A copy of ``optimizer``'s state: ``{name: array or int}`` for each name of its STATE."""
    state = {}
    for name in optimizer.STATE:
        value = getattr(optimizer, name)
        state[name] = value.copy() if isinstance(value, np.ndarray) else value
    return state


def set_state(optimizer, state):
    """Give ``optimizer`` the state :func:`get_state` took (a copy of it)."""
    if set(state) != set(optimizer.STATE):
        raise ValueError(f"state {sorted(state)} does not fit {type(optimizer).__name__}")
    for name, value in state.items():
        setattr(optimizer, name, value.copy() if isinstance(value, np.ndarray) else value)


def scheduled_lr(lr, t, epochs, schedule="constant", warmup=0.0):
    """The learning rate at time ``t``, in epochs elapsed (0 <= t <= epochs), of ``epochs``.

    The training loop asks at the middle of each step (``epoch - 1 + (i + 0.5) / batches``).
    ``constant``: ``lr``. ``cosine``: from ``lr`` down to 0 over the run,
    ``lr * (1 + cos(pi * e / epochs)) / 2``, and ``step``: halved after every
    third of the run; both hold for a whole epoch ``e = floor(t)``.
    ``onecycle``: a straight line, step by step, from ``lr`` at the end of
    the warmup down to 0 at the end of the run; with a warmup, the triangle
    of Smith's one-cycle policy (Smith & Topin, 2017).

    ``warmup`` (epochs): the rate rises linearly from 0 over the first
    ``warmup`` epochs, step by step (Goyal et al., 2017), multiplying the
    schedule's rate.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose from {SCHEDULES}")
    if warmup and t < warmup:
        lr = lr * t / warmup
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * math.floor(t) / epochs))
    if schedule == "step":
        return lr * 0.5 ** (3 * math.floor(t) // epochs)
    if schedule == "onecycle" and t > warmup:
        return lr * max(0.0, epochs - t) / (epochs - warmup)
    return lr
