"""The learning-rate range test: grow the rate step by step and watch the loss.

Leslie Smith's test ("Cyclical Learning Rates for Training Neural Networks",
2017), as fastai's ``lr_find`` runs it: from a fresh network, take one
training step per learning rate, the rates growing exponentially from
``lr_min`` to ``lr_max`` (mini-batch steps, or full-batch steps for ``gd``),
and record each batch's loss before its step. Stop when the loss explodes:
no longer finite, or its running average past :data:`STOP_FACTOR` times
its lowest.

The suggestion (:func:`suggest`) is the rate at which the smoothed loss has
made half of its fall, from the first steps to its lowest point: large
enough to learn quickly, well below the rates where the loss turns. On the
bundled sample it lands within a factor of 3 of the rates that train well,
for the notebook's full-batch ``gd`` on raw pixels (about 1e-5) and for
mini-batch momentum (about 0.1) or Adam (about 0.001) on scaled ones; the
steepest fall, another common rule, jumps by a factor of 10 between seeds
on the noisy mini-batch curves.

The default range is per *mean* loss, 1e-6 to 10 (:data:`MEAN_RANGE`). With
``reduction="sum"`` a step's gradient is the batch size times the mean's,
so the range is divided by the batch size: the notebook's full-batch ``gd``
on 10,000 images looks at 1e-10 to 1e-3.
"""

import itertools
import math
from dataclasses import dataclass

import numpy as np

from mnistnet import model
from mnistnet.optimizers import make_optimizer
from mnistnet.parallel import one_blas_thread
from mnistnet.training import DIVERGED_LOSS, Batches, _step  # one training step, as fit takes it

MEAN_RANGE = (1e-6, 10.0)
STEPS = {"mini-batch": 300, "full-batch": 100}
STOP_FACTOR = 4.0  # the running average of the loss past 4 times its lowest: exploded
SMOOTH_DECADES = 0.3  # the moving average spans 0.3 decade of learning rates
FALL = 0.5  # the suggestion: where the smoothed loss has made this part of its fall
MIN_FALL = 0.05  # a fall under 5% of the first loss is no fall
RULE = (
    f"the rate at which the smoothed loss (a moving average over {SMOOTH_DECADES:g} decade "
    f"of rates) has made {FALL:.0%} of its fall from the first steps to its lowest point"
)
# Why there is no suggestion (the rule of such a test), and the setting that would help
ROSE = "the loss rose from the first steps: start lower, with a smaller minimum rate"
NO_FALL = (
    f"the loss fell by less than {MIN_FALL:.0%} of its first value over the range: "
    "widen it, with a larger maximum rate"
)
FIX = {ROSE: "lr_min", NO_FALL: "lr_max"}


@dataclass
class RangeTest:
    """The result of :func:`lr_range_test`.

    ``lrs`` and ``losses`` (mean per image, before each step) of the steps
    taken; ``smoothed``, their centred moving average over ``window``
    steps; ``suggestion`` (None when the loss never fell) at ``lrs[index]``
    by ``rule``; ``stopped``: why the test ended, in words.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    window: int
    suggestion: float | None
    index: int | None
    rule: str
    stopped: str
    lr_min: float
    lr_max: float
    steps: int

    @property
    def lowest(self):
        """The learning rate at the smoothed loss's lowest point."""
        return float(self.lrs[int(np.argmin(self.smoothed))])


def default_range(reduction, batch):
    """``(lr_min, lr_max)``: :data:`MEAN_RANGE`, divided by ``batch`` images for the summed loss."""
    low, high = MEAN_RANGE
    return (low / batch, high / batch) if reduction in ("sum", "example") else (low, high)


def lr_range_test(
    params,
    X,
    y,
    *,
    task,
    optimizer,
    batch_size=None,
    reduction="sum",
    weight_decay=0.0,
    augment_shift=0,
    rng=None,
    lr_min=None,
    lr_max=None,
    steps=None,
):
    """Run the range test on a copy of ``params`` (they stay as they are).

    ``lr_min``, ``lr_max`` default to :func:`default_range`; ``steps`` to
    :data:`STEPS` (300 mini-batch steps, 100 full-batch ones). Mini-batches
    come as in training (:class:`~mnistnet.training.Batches`), epoch after
    epoch as long as the test needs.

    Returns
    -------
    RangeTest
    """
    batches = Batches(X, y, params["W2"].shape[1], batch_size, augment_shift, rng)
    if lr_min is None or lr_max is None:
        low, high = default_range(reduction, batches.size)
        lr_min, lr_max = lr_min or low, lr_max or high
    if not 0 < lr_min < lr_max:
        raise ValueError(f"need 0 < lr_min < lr_max, got {lr_min:g} and {lr_max:g}")
    steps = steps or STEPS["full-batch" if batches.full else "mini-batch"]
    lrs = lr_min * (lr_max / lr_min) ** (np.arange(steps) / max(steps - 1, 1))
    window = smoothing_window(steps, lr_min, lr_max)
    with one_blas_thread():  # as training does (mnistnet.parallel)
        losses, stopped = _run(
            params, batches, task, optimizer, reduction, weight_decay, lrs, window
        )
    lrs = lrs[: len(losses)]
    losses = np.asarray(losses)
    smoothed = smooth(losses, window)
    index, rule = suggest(smoothed)
    suggestion = None if index is None else float(lrs[index])
    return RangeTest(
        lrs, losses, smoothed, window, suggestion, index, rule, stopped, lr_min, lr_max, steps
    )


@np.errstate(over="ignore", invalid="ignore")  # an exploding loss is what ends the test
def _run(params, batches, task, optimizer, reduction, weight_decay, lrs, window):
    """Take a step at each rate in ``lrs``; the losses recorded and why it stopped."""
    theta, views = model.pack(params)  # a copy: the caller's weights stay as they are
    ws = model.Workspace(views, batches.size)
    forever = itertools.chain.from_iterable(itertools.repeat(batches))
    beta = 1 - 2 / (window + 1)  # an exponential average as long as the window
    average, lowest, losses = 0.0, math.inf, []
    for i, lr in enumerate(lrs):
        X, Y, y = next(forever)
        total, _ = _step(
            model, views, theta, ws, optimizer, task, reduction, weight_decay, None, X, Y, y, lr
        )
        loss = total / len(X)
        if not math.isfinite(loss) or loss > DIVERGED_LOSS:
            return losses, f"the loss exploded at lr {lr:.3g} (step {i + 1})"
        losses.append(loss)
        average = beta * average + (1 - beta) * loss
        running = average / (1 - beta ** (i + 1))  # without the bias towards the start
        lowest = min(lowest, running)
        if running > STOP_FACTOR * lowest:
            return losses, f"the loss exploded at lr {lr:.3g} (step {i + 1})"
    return losses, f"the loss did not explode up to lr {lrs[-1]:.3g} (step {len(lrs)})"


def smoothing_window(steps, lr_min, lr_max):
    """An odd number of steps spanning about :data:`SMOOTH_DECADES` of learning rates (>= 3)."""
    per_decade = (steps - 1) / max(math.log10(lr_max / lr_min), 1e-12)
    return max(3, int(round(SMOOTH_DECADES * per_decade)) | 1)


def smooth(losses, window):
    """Centred moving average over ``window`` steps (fewer at the ends): no lag, unlike an EMA.

    >>> smooth(np.array([1.0, 2.0, 3.0, 10.0]), 3).tolist()
    [1.5, 2.0, 5.0, 6.5]
    """
    half = window // 2
    sums = np.concatenate([[0.0], np.cumsum(losses)])
    i = np.arange(len(losses))
    low, high = np.maximum(i - half, 0), np.minimum(i + half + 1, len(losses))
    return (sums[high] - sums[low]) / (high - low)


def suggest(smoothed):
    """The index of the suggested rate (the step) and the rule, in words (:data:`RULE`).

    The first step at which ``smoothed`` is down :data:`FALL` of the way from
    its first value to its lowest. None when the loss never fell (by less than
    :data:`MIN_FALL` of its first value, or its lowest point among the first
    three steps).

    >>> suggest(np.array([2.0, 1.9, 1.4, 1.0, 3.0]))[0]
    2
    """
    lowest = int(np.argmin(smoothed)) if len(smoothed) else 0
    fall = smoothed[0] - smoothed[lowest] if len(smoothed) else 0.0
    if lowest < 2:
        return None, ROSE
    if fall <= MIN_FALL * smoothed[0]:
        return None, NO_FALL
    reached = smoothed[: lowest + 1] <= smoothed[0] - FALL * fall
    return int(np.argmax(reached)), RULE


def range_test_for(config, train, *, lr_min=None, lr_max=None, steps=None):
    """:func:`lr_range_test` for a training config (a :class:`mnistnet.config.TrainConfig`).

    The network, optimizer, mini-batches and random generator are those a
    run of ``config`` starts with; ``train`` is its training split (a
    :class:`mnistnet.pipeline.TaskData`, without the validation images).
    """
    from mnistnet.experiment import initial_params  # the data and files side: only here

    return lr_range_test(
        initial_params(config),
        train.X,
        train.y,
        task=config.task,
        optimizer=make_optimizer(config.optimizer, momentum=config.momentum),
        batch_size=config.batch_size,
        reduction=config.reduction,
        weight_decay=config.weight_decay,
        augment_shift=config.augment_shift,
        rng=np.random.default_rng(config.seed),
        lr_min=lr_min,
        lr_max=lr_max,
        steps=steps,
    )
