"""Weight averaging: the model is a moving average of the weights training visits.

An exponential moving average of the parameters (Polyak & Juditsky, 1992,
in the exponential form of TensorFlow's ``ExponentialMovingAverage``) after
every step::

    average <- decay * average + (1 - decay) * theta

starting from the initial weights. It smooths out the noise of the last
mini-batch steps; with ``decay`` d it remembers about ``1 / (1 - d)`` steps.
"""

import numpy as np


class ExponentialAverage:
    """The moving average of a parameter vector, updated in place.

    ``theta`` (n_parameters,) is the average's own vector, ``views`` its named
    views (as :func:`mnistnet.model.pack` returns them), ``decay`` in [0, 1).
    """

    def __init__(self, theta, views, decay):
        if not 0 <= decay < 1:
            raise ValueError(f"the decay of a moving average must be in [0, 1), got {decay}")
        self.theta, self.views, self.decay = theta, views, decay
        self._work = np.empty_like(theta)

    def update(self, theta):
        """``average += (1 - decay) * (theta - average)``: the formula above, in two passes."""
        work = np.subtract(theta, self.theta, out=self._work)
        work *= 1 - self.decay
        self.theta += work
