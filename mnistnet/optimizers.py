"""Optimizers: objects with state and one method, ``step(params, grads, lr)``.

Each updates ``params`` in place from ``grads`` (dicts with the same keys,
``W1, b1, W2, b2``). ``grads`` may be overwritten: they are scratch
buffers of the training loop. An L2 penalty ``weight_decay / 2 * ||W||^2``
on the weight matrices (not the biases) is added to their gradients first.

Learning-rate schedules are pure functions of the epoch (nanoGPT's
``get_lr``): :func:`scheduled_lr`.
"""

import math

import numpy as np

OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "step")
WEIGHT_NAMES = ("W1", "W2")


class GradientDescent:
    """Plain gradient descent: ``W <- W - lr * g``.

    ``gd`` (one step per epoch on the full batch, the notebook's) and
    ``sgd`` (one step per mini-batch) share this update.
    """

    def __init__(self, weight_decay=0.0):
        self.weight_decay = weight_decay

    def _decay(self, params, grads):
        if self.weight_decay:
            for name in WEIGHT_NAMES:
                grads[name] += self.weight_decay * params[name]

    def step(self, params, grads, lr):
        self._decay(params, grads)
        for name, g in grads.items():
            g *= lr
            params[name] -= g


class Momentum(GradientDescent):
    """Heavy-ball momentum: ``v <- mu * v - lr * g``; ``W <- W + v``.

    The form of sklearn's ``SGDOptimizer`` (without Nesterov).
    """

    def __init__(self, momentum=0.9, weight_decay=0.0):
        super().__init__(weight_decay)
        self.momentum = momentum
        self.velocities = None

    def step(self, params, grads, lr):
        self._decay(params, grads)
        if self.velocities is None:
            self.velocities = {name: np.zeros_like(p) for name, p in params.items()}
        for name, g in grads.items():
            v = self.velocities[name]
            v *= self.momentum
            g *= lr
            v -= g
            params[name] += v


class Adam(GradientDescent):
    """Adam (Kingma & Ba, 2015, Algorithm 1), defaults from the paper.

    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``W <- W - lr * m_hat / (sqrt(v_hat) + eps)`` with the bias corrections
    ``m_hat = m / (1 - b1^t)`` and ``v_hat = v / (1 - b2^t)``.
    """

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.ms = self.vs = self._work = None

    def step(self, params, grads, lr):
        self._decay(params, grads)
        if self.ms is None:
            self.ms = {name: np.zeros_like(p) for name, p in params.items()}
            self.vs = {name: np.zeros_like(p) for name, p in params.items()}
            self._work = {name: np.empty_like(p) for name, p in params.items()}
        self.t += 1
        m_correction = 1 - self.beta1**self.t
        v_correction = 1 - self.beta2**self.t
        for name, g in grads.items():
            m, v, work = self.ms[name], self.vs[name], self._work[name]
            m *= self.beta1
            np.multiply(g, 1 - self.beta1, out=work)
            m += work
            v *= self.beta2
            np.multiply(g, g, out=work)
            work *= 1 - self.beta2
            v += work
            # work <- sqrt(v_hat) + eps; g <- m_hat (g is scratch now)
            np.multiply(v, 1 / v_correction, out=work)
            np.sqrt(work, out=work)
            work += self.eps
            np.multiply(m, lr / m_correction, out=g)
            g /= work
            params[name] -= g


def make_optimizer(name, *, momentum=0.9, weight_decay=0.0, beta1=0.9, beta2=0.999, eps=1e-8):
    """The optimizer called ``name`` (one of :data:`OPTIMIZERS`)."""
    if name in ("gd", "sgd"):
        return GradientDescent(weight_decay)
    if name == "momentum":
        return Momentum(momentum, weight_decay)
    if name == "adam":
        return Adam(beta1, beta2, eps, weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def scheduled_lr(lr, epoch, epochs, schedule="constant"):
    """The learning rate for 0-based ``epoch`` of ``epochs``.

    ``constant``: ``lr``. ``cosine``: from ``lr`` down to 0 over the run,
    ``lr * (1 + cos(pi * epoch / epochs)) / 2``. ``step``: halved after
    every third of the run.
    """
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    if schedule == "step":
        return lr * 0.5 ** (3 * epoch // epochs)
    raise ValueError(f"unknown schedule {schedule!r}; choose from {SCHEDULES}")
