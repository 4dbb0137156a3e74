"""Dropout of the hidden units (Srivastava, Hinton, Krizhevsky, Sutskever &
Salakhutdinov, *Dropout: A Simple Way to Prevent Neural Networks from
Overfitting*, JMLR 2014), in its "inverted" form.

At every training step each hidden unit of each image is kept with
probability ``q = 1 - rate`` and its activation divided by ``q``, or dropped
(set to 0)::

    M = B / q,  B ~ Bernoulli(q) elementwise    H = sigmoid(Z1) * M

so the expected activation stays ``sigmoid(Z1)`` and scoring uses every unit
as is, with no rescaling. The backward pass needs only ``H`` and ``q``: the
derivative of ``H`` with respect to ``Z1`` is ``M * A * (1 - A)``, which is
``H * (1 - q * H)`` (0 where the unit was dropped, since then ``H = 0``), see
:func:`mnistnet.functions.sigmoid_derivative_inplace`.
"""

from typing import NamedTuple

import numpy as np


class DropMask(NamedTuple):
    """One step's mask ``M`` (n_samples, n_hidden): 0 or ``1 / keep_prob``."""

    mask: np.ndarray
    keep_prob: float


class Dropout:
    """Draws the dropout masks of a training run, into buffers allocated once.

    ``rate`` in [0, 1): the probability of dropping a unit; ``rng`` (a
    :class:`numpy.random.Generator`) draws every mask, so the same state
    gives the same masks; ``capacity`` samples of ``n_hidden`` units in
    ``dtype``.
    """

    def __init__(self, rate, rng, capacity, n_hidden, dtype):
        if not 0 <= rate < 1:
            raise ValueError(f"the dropout rate must be in [0, 1), got {rate}")
        self.rate, self.rng = float(rate), rng
        self.keep_prob = 1.0 - self.rate
        self._uniform = np.empty((capacity, n_hidden), dtype)
        self._mask = np.empty((capacity, n_hidden), dtype)

    def draw(self, n):
        """A fresh :class:`DropMask` for ``n`` samples (a view, overwritten by the next draw)."""
        uniform = self.rng.random(dtype=self._uniform.dtype, out=self._uniform[:n])
        mask = np.greater_equal(uniform, self.rate, out=self._mask[:n])  # 1 where kept, else 0
        mask *= 1 / self.keep_prob
        return DropMask(mask, self.keep_prob)
