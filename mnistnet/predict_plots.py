"""The ``predict --show`` picture: what each image looked like, what the network saw, its answer.

One row per image (or per digit with ``--split-digits``), up to
:data:`MAX_ROWS`: the picture as read (grey, with the digit's box drawn
when split), the 28x28 image the network was given (white on black, as
MNIST), and a bar chart of the probabilities of every class, the predicted
one highlighted. It is the picture to look at when an answer is wrong: a
bad crop, a lost stroke or a wrong polarity shows in the middle column.

matplotlib is imported inside the function (Agg backend, files only); the
file is written atomically.
"""

from dataclasses import dataclass

import numpy as np

from mnistnet.fileio import atomic_path

MAX_ROWS = 12
DPI = 100
ROW_HEIGHT = 1.7  # inches
WIDTH = 9.0  # inches
PREDICTED, OTHER = "#1a7f37", "#9e9e9e"


@dataclass(frozen=True, eq=False)
class ShowRow:
    """One row of the picture.

    ``label``: the image's name (and digit); ``original``: grey pixels as
    read (None when not kept); ``box``: ``(x0, y0, x1, y1)`` to outline on
    it, or None; ``image``: the (28, 28) network input; ``p``: class
    probabilities.
    """

    label: str
    original: np.ndarray | None
    box: tuple | None
    image: np.ndarray
    p: np.ndarray


def plot_predictions(rows, class_names, path, title, total=None):
    """Draw ``rows`` (at most :data:`MAX_ROWS` are drawn) into the PNG file ``path``.

    ``total``: how many rows there were in all, for the title when some
    were left out.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    rows = list(rows)[:MAX_ROWS]
    total = len(rows) if total is None else total
    fig, axes = plt.subplots(
        len(rows),
        3,
        figsize=(WIDTH, 0.6 + ROW_HEIGHT * len(rows)),
        gridspec_kw={"width_ratios": [1.2, 1, 2.2]},
        squeeze=False,
    )
    shown = f" (the first {len(rows)} of {total})" if total > len(rows) else ""
    fig.suptitle(_literal(title + shown), fontsize=11)
    for ax_row, row in zip(axes, rows, strict=True):
        _draw_row(ax_row, row, class_names)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _draw_row(axes, row, names):
    from matplotlib.patches import Rectangle

    picture, seen, bars = axes
    for ax in (picture, seen):
        ax.set_xticks([])
        ax.set_yticks([])
    if row.original is not None:
        picture.imshow(row.original, cmap="gray", vmin=0, vmax=255)
        if row.box is not None:
            x0, y0, x1, y1 = row.box
            picture.add_patch(
                Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color="#e53935")
            )
    picture.set_title(_literal(_shorten(row.label)), fontsize=8)
    seen.imshow(row.image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    seen.set_title("the network saw", fontsize=8)
    best = int(np.argmax(row.p))
    positions = np.arange(len(names))
    colours = [PREDICTED if k == best else OTHER for k in positions]
    bars.bar(positions, row.p, color=colours)
    bars.set_xticks(positions, [_literal(n) for n in names], fontsize=7, rotation=_rotation(names))
    bars.set_ylim(0, 1)
    bars.tick_params(axis="y", labelsize=7)
    bars.set_title(_literal(f"{names[best]} ({row.p[best]:.2f})"), fontsize=9, color=PREDICTED)


def _rotation(names):
    return 45 if max(len(n) for n in names) > 2 else 0


def _shorten(text, width=40):
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _literal(text):
    """Text drawn as it is: a ``$`` in a file name must not start matplotlib's mathtext."""
    return text.replace("$", r"\$")
