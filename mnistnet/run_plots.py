"""Pictures about choosing a run rather than about one model.

``lr-find.png`` (:func:`plot_lr_find`): the learning-rate range test's loss
against the learning rate, the suggestion marked. ``compare-<metric>.png``
(:func:`plot_compare`): one metric's curves of several runs, overlaid.

As in :mod:`mnistnet.plots` (whose helpers these use), matplotlib is
imported only when drawing and every file is written atomically.
"""

import numpy as np

from mnistnet.plots import _epoch_ticks, _pyplot, _save

SIZE = (8, 5)  # inches: 800x500 pixels at plots.DPI


def plot_lr_find(test, out_dir, title):
    """``lr-find.png`` from a :class:`mnistnet.lr_find.RangeTest`; returns its path.

    Each step's loss is a faint dot, the smoothed loss a line, the learning
    rate on a log scale; a dashed line marks the suggestion. The y axis
    stops a little above the first loss, so an explosion does not flatten
    the rest.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE, layout="constrained")
    ax.plot(test.lrs, test.losses, ".", color="C0", alpha=0.3, markersize=3, label="loss per step")
    ax.plot(test.lrs, test.smoothed, color="C0", label="smoothed loss")
    if test.suggestion is not None:
        ax.axvline(test.suggestion, color="C3", linestyle="--", linewidth=1)
        ax.plot(
            [test.suggestion],
            [test.smoothed[test.index]],
            "o",
            color="C3",
            label=f"suggested lr {test.suggestion:.2g}",
        )
    ax.set_xscale("log")
    if len(test.losses):
        top = max(test.smoothed[0], np.min(test.smoothed)) * 1.25
        ax.set_ylim(max(0.0, np.min(test.losses) * 0.9), min(np.max(test.losses), top) * 1.02)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("mean loss per image of the step's batch")
    ax.set_title(f"{title}: learning-rate range test")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, out_dir, "lr-find.png")


def plot_compare(curves, ylabel, out_dir, name, title):
    """Several runs' curves of one metric in one picture; returns its path.

    ``curves``: ``(label, epochs, values)`` for each run, values None where
    the run did not measure the metric (not drawn). Accuracies (0..1) are
    drawn in percent when ``ylabel`` says so.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE, layout="constrained")
    scale = 100 if "%" in ylabel else 1
    for i, (label, epochs, values) in enumerate(curves):
        points = [(e, v) for e, v in zip(epochs, values, strict=True) if v is not None]
        if points:
            e, v = zip(*points, strict=True)
            ax.plot(e, scale * np.asarray(v, dtype=float), color=f"C{i % 10}", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    _epoch_ticks(ax)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, out_dir, name)
