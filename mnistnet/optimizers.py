"""Optimizers: objects with state and one method, ``step(params, grads, lr)``.

Each updates the arrays in ``params`` in place from the arrays in ``grads``
(dicts with the same keys). ``grads`` may be overwritten: they are scratch
buffers of the training loop. The update rules are elementwise, so the
training loop hands them the whole parameter vector as one array (see
:func:`mnistnet.model.pack`): one step is then a handful of whole-vector
operations, not a handful per parameter.

Learning-rate schedules are pure functions of the epoch (nanoGPT's
``get_lr``): :func:`scheduled_lr`.
"""

import math

import numpy as np

OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "step")


class GradientDescent:
    """Plain gradient descent: ``W <- W - lr * g``.

    ``gd`` (one step per epoch on the full batch, the notebook's) and
    ``sgd`` (one step per mini-batch) share this update.
    """

    def step(self, params, grads, lr):
        for g in grads.values():
            g *= lr
        self.step_prescaled(params, grads)

    def step_prescaled(self, params, lr_grads):
        """The same step from gradients already multiplied by ``lr``.

        The training loop has backward fold ``lr`` into its output delta,
        which saves a pass over every weight per step.
        """
        for name, g in lr_grads.items():
            params[name] -= g


class Momentum:
    """Heavy-ball momentum: ``v <- mu * v - lr * g``; ``W <- W + v``.

    The form of sklearn's ``SGDOptimizer`` (without Nesterov).
    """

    def __init__(self, momentum=0.9):
        self.momentum = momentum
        self.velocities = None

    def step(self, params, grads, lr):
        for g in grads.values():
            g *= lr
        self.step_prescaled(params, grads)

    def step_prescaled(self, params, lr_grads):
        """The same step from gradients already multiplied by ``lr`` (see GradientDescent)."""
        if self.velocities is None:
            self.velocities = {name: np.zeros_like(p) for name, p in params.items()}
        for name, g in lr_grads.items():
            v = self.velocities[name]
            v *= self.momentum
            v -= g
            params[name] += v


class Adam:
    """Adam (Kingma & Ba, 2015, Algorithm 1), defaults from the paper.

    ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``W <- W - lr * m_hat / (sqrt(v_hat) + eps)`` with the bias corrections
    ``m_hat = m / (1 - b1^t)`` and ``v_hat = v / (1 - b2^t)``.
    """

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.ms = self.vs = self._work = None

    def step(self, params, grads, lr):
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
            # work <- sqrt(v_hat) + eps; g <- lr * m_hat (g is scratch now)
            np.multiply(v, 1 / v_correction, out=work)
            np.sqrt(work, out=work)
            work += self.eps
            np.multiply(m, lr / m_correction, out=g)
            g /= work
            params[name] -= g


def make_optimizer(name, *, momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8):
    """The optimizer called ``name`` (one of :data:`OPTIMIZERS`)."""
    if name in ("gd", "sgd"):
        return GradientDescent()
    if name == "momentum":
        return Momentum(momentum)
    if name == "adam":
        return Adam(beta1, beta2, eps)
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
