"""Pictures of a run and of a model, written as PNG files.

``plot_history`` draws the learning curves (``loss.png``, ``accuracy.png``);
``plot_report`` draws what a model gets right and wrong on some data:

=====================  ==========  ==================================================
file                   task        what it shows
=====================  ==========  ==================================================
examples-<split>.png   binary      4 rows (TP, TN, FP, FN) of 5 digits, captioned
confusion.png          multiclass  10x10 counts, colour normalised per true class
errors.png             multiclass  the most confidently wrong digits (up to 30)
examples.png           multiclass  the most confident correct digit of each class
hidden-units.png       both        incoming weights of the first 64 hidden units
=====================  ==========  ==================================================

Which digits a grid shows is decided by the ``select_*`` functions, pure
functions returning indices, so tests count panels without reading pixels.

matplotlib is imported inside the functions: ``import mnistnet.plots``
stays cheap, and ``mnistnet --help`` and ``mnistnet info`` never load
matplotlib. Figures are made outside pyplot (no window, no global state),
and a grid of digits or weights is one composed image on one axes
(:class:`DigitGrid`): drawing dozens of axes took most of a run's picture
time. Every file is written atomically. Digits are drawn white on black (as
MNIST stores them) in every figure.
"""

import math
import os

import numpy as np

from mnistnet import __version__
from mnistnet.fileio import atomic_path
from mnistnet.model import INIT_METHODS, init_params, predict
from mnistnet.tasks import display_names, task_title

DPI = 100  # figure sizes below are in inches; pixels = inches * DPI
SIZES = {  # (width, height) in inches: about 800-1000 pixels, fits a laptop screen
    "loss": (8, 5),
    "accuracy": (8, 5),
    "examples-binary": (9, 9),
    "confusion": (8.5, 7.5),
    "errors": (10, 9.5),
    "examples": (10, 5),
    "hidden-units": (9, 10),
}
# Every file a model's pictures may be written to (history and report).
PICTURE_FILES = (
    "loss.png",
    "accuracy.png",
    "examples-train.png",
    "examples-test.png",
    "confusion.png",
    "errors.png",
    "examples.png",
    "hidden-units.png",
)
RUN_ID_KEY = "mnistnet run id"  # PNG text chunk: the run a picture belongs to
DIGIT_CMAP = "gray"  # white digit on black, MNIST's own convention
WEIGHT_CMAP = "RdBu_r"  # red excites, blue inhibits, white is zero
RIGHT, WRONG = "#1a7f37", "#c62828"  # caption colours: correct, wrong
CURVE_MARGINS = {"left": 0.09, "right": 0.97, "bottom": 0.1, "top": 0.92}  # of the figure


# --- selections: pure functions returning indices ------------------------------------


def predicted_confidence(P):
    """Predicted labels and the probability the model gives its prediction.

    Parameters
    ----------
    P : ndarray of shape (n, 1) (binary: probability of label 1) or (n, K)

    Returns
    -------
    y_pred : ndarray of shape (n,), int
    confidence : ndarray of shape (n,), float in [0.5, 1] (binary) or [1/K, 1]
    """
    P = np.asarray(P)
    y_pred = predict(P)
    if P.shape[1] == 1:  # the probability of label 1; of label 0 it is 1 - p
        return y_pred, np.where(y_pred == 1, P[:, 0], 1 - P[:, 0])
    return y_pred, P[np.arange(len(P)), y_pred]


def select_binary_examples(y, P, per_row=5):
    """Up to ``per_row`` indices of each outcome of a binary model (positive = label 1).

    True positives and true negatives are the first ones in data order (a
    fair sample, not the best-looking ones); false positives and false
    negatives are the most confidently wrong, the most telling mistakes.

    Returns
    -------
    dict with keys ``"tp", "tn", "fp", "fn"`` (in that order), each an int
    ndarray of at most ``per_row`` indices into ``y``.
    """
    y = np.asarray(y)
    y_pred, conf = predicted_confidence(P)
    masks = {
        "tp": (y == 1) & (y_pred == 1),
        "tn": (y == 0) & (y_pred == 0),
        "fp": (y == 0) & (y_pred == 1),
        "fn": (y == 1) & (y_pred == 0),
    }
    out = {}
    for key, mask in masks.items():
        idx = np.flatnonzero(mask)
        if key in ("fp", "fn"):
            idx = idx[np.argsort(-conf[idx], kind="stable")]
        out[key] = idx[:per_row]
    return out


def select_confident_errors(y, P, k=30):
    """Indices of the ``k`` wrong predictions made with the highest confidence, highest first."""
    y = np.asarray(y)
    y_pred, conf = predicted_confidence(P)
    wrong = np.flatnonzero(y_pred != y)
    return wrong[np.argsort(-conf[wrong], kind="stable")][:k]


def select_one_per_class(y, P, n_classes=None):
    """For each class, the correctly classified sample the model is most sure of.

    Returns
    -------
    ndarray of shape (n_classes,), int: an index into ``y``, or -1 when no
    sample of that class was classified correctly.
    """
    y = np.asarray(y)
    y_pred, conf = predicted_confidence(P)
    n_classes = max(P.shape[1], 2) if n_classes is None else n_classes
    out = np.full(n_classes, -1, dtype=np.intp)
    for c in range(n_classes):
        idx = np.flatnonzero((y == c) & (y_pred == c))
        if len(idx):
            out[c] = idx[np.argmax(conf[idx])]
    return out


# --- figures --------------------------------------------------------------------------


def plot_history(history, out_dir, title, run_id=None, marks=None):
    """Learning curves of a training run.

    Parameters
    ----------
    history : dict of lists
        Columns ``epoch``, ``loss``, ``train_acc`` and, when measured,
        ``val_loss``, ``val_acc`` and ``test_acc`` (a missing column, or
        None entries, draw nothing).
    out_dir : str or path-like
    title : str
        Names the task and dataset, e.g. ``"binary 5 vs 8 · mnist-sample"``.
    run_id : str, optional
        Recorded in each PNG (text key :data:`RUN_ID_KEY`).
    marks : dict, optional
        ``{label: epoch}``: a dashed vertical line on both pictures (the
        best epoch of early stopping).

    Returns
    -------
    list of str
        The files written: ``loss.png`` (training and validation loss) and
        ``accuracy.png`` (train, validation and test accuracy); none when
        the history holds no epoch.
    """
    epochs = list(history.get("epoch", []))
    if not epochs:
        return []
    marker = "o" if len(epochs) <= 30 else None
    return [
        _plot_loss(epochs, history, marker, out_dir, title, (run_id, marks)),
        _plot_accuracy(epochs, history, marker, out_dir, title, (run_id, marks)),
    ]


def _plot_loss(epochs, history, marker, out_dir, title, tags):
    fig = _figure(SIZES["loss"])
    ax = fig.subplots(gridspec_kw=CURVE_MARGINS)
    curves = (("loss", "training"), ("val_loss", "validation"))
    loss = _draw_curves(ax, epochs, history, curves, marker)
    if np.all(loss > 0) and loss.max() / loss.min() > 100:
        ax.set_yscale("log")  # the first epochs would flatten everything else
    ax.set_ylabel("mean loss per image")
    return _finish_curves(fig, ax, f"{title}: loss", out_dir, "loss.png", tags)


def _plot_accuracy(epochs, history, marker, out_dir, title, tags):
    fig = _figure(SIZES["accuracy"])
    ax = fig.subplots(gridspec_kw=CURVE_MARGINS)
    curves = (("train_acc", "train"), ("val_acc", "validation"), ("test_acc", "test"))
    _draw_curves(ax, epochs, history, curves, marker, scale=100)
    ax.set_ylabel("accuracy (%)")
    return _finish_curves(fig, ax, f"{title}: accuracy", out_dir, "accuracy.png", tags)


def _finish_curves(fig, ax, title, out_dir, name, tags):
    """Marks, axis, title, integer epoch ticks, grid and legend of a learning curve; save it.

    ``tags``: the run id to record in the PNG, and the marks to draw.
    """
    run_id, marks = tags
    for label, epoch in (marks or {}).items():
        ax.axvline(epoch, color="0.4", linestyle="--", linewidth=1, label=f"{label} ({epoch})")
    ax.set_xlabel("epoch")
    ax.set_title(title)
    _epoch_ticks(ax)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, out_dir, name, run_id)


def _draw_curves(ax, epochs, history, curves, marker, scale=1):
    """Draw each ``(column, label)`` of ``history`` that has values; return every value drawn.

    A column that is missing, or None entries (a split not scored), draw nothing.
    """
    drawn = []
    for i, (column, label) in enumerate(curves):
        points = [
            (e, v) for e, v in zip(epochs, history.get(column) or [], strict=False) if v is not None
        ]
        if points:
            e, v = zip(*points, strict=True)
            values = scale * np.asarray(v, dtype=float)
            ax.plot(e, values, marker=marker, color=f"C{i}", label=label)
            drawn.extend(values)
    return np.asarray(drawn)


def plot_report(params, meta, test, out_dir, train=None):
    """Every picture of a model on some data (see the module docstring).

    Parameters
    ----------
    params : dict of ndarray (``W1, b1, W2, b2``)
    meta : dict, the model's metadata (``task``, ``classes``, ``dataset``, ...)
    test : pipeline.TaskData
        The data evaluated (normally the test split; its ``split`` names
        ``examples-<split>.png``).
    out_dir : str or path-like
    train : pipeline.TaskData, optional
        Binary models only: also writes ``examples-<its split>.png``.

    Returns
    -------
    list of str, the files written.
    """
    from mnistnet.model import predict_proba

    task = meta["task"]
    names = display_names(meta)
    paths = []
    if task == "binary":
        for data in (test, train):
            if data is not None:
                P = predict_proba(params, data.X, task)
                paths.append(plot_binary_examples(data, P, names, meta, out_dir))
    else:
        P = predict_proba(params, test.X, task)
        paths.append(plot_confusion(test, P, names, meta, out_dir))
        paths.append(plot_errors(test, P, names, meta, out_dir))
        paths.append(plot_examples(test, P, names, meta, out_dir))
    paths.append(plot_hidden_units(params, meta, out_dir))
    return paths


def plot_binary_examples(data, P, names, meta, out_dir, per_row=5):
    """``examples-<split>.png``: rows of true positives, true negatives, FPs, FNs."""
    from mnistnet.metrics import binary_counts, confusion_matrix

    picked = select_binary_examples(data.y, P, per_row)
    y_pred, conf = predicted_confidence(P)
    neg, pos = names
    counts = binary_counts(confusion_matrix(data.y, y_pred, 2))
    sep = " as " if len(neg) + len(pos) <= 6 else "\nas "  # long names: one per line
    rows = {
        "tp": f"true positives\n{pos}{sep}{pos} ({counts['tp']:,})",
        "tn": f"true negatives\n{neg}{sep}{neg} ({counts['tn']:,})",
        "fp": f"false positives\n{neg}{sep}{pos} ({counts['fp']:,})",
        "fn": f"false negatives\n{pos}{sep}{neg} ({counts['fn']:,})",
    }
    cells = [(r, c, i) for r, key in enumerate(rows) for c, i in enumerate(picked[key])]
    images = _images(data, [i for _, _, i in cells])
    grid = DigitGrid("examples-binary", len(rows), per_row, left=0.2)
    grid.draw(images, [r * per_row + c for r, c, _ in cells], DIGIT_CMAP, 0, 255)
    for r, c, i in cells:
        grid.caption(r * per_row + c, *_caption(names[data.y[i]], names[y_pred[i]], conf[i]))
    for r, (key, label) in enumerate(rows.items()):
        grid.row_label(r, label, fontsize=11)
        if not len(picked[key]):
            grid.note(r * per_row, "none", color="0.4")
    fig = grid.fig
    fig.suptitle(
        f"{_heading(meta, names, data)}: examples\n"
        f"positive = {pos}; errors are the most confident ones; (p) = probability of "
        "the prediction",
        fontsize=12,
    )
    return _save(fig, out_dir, f"examples-{data.split}.png", meta.get("run_id"))


def plot_confusion(data, P, names, meta, out_dir):
    """``confusion.png``: counts in each cell, colour = fraction of the true class."""
    from mnistnet.metrics import confusion_matrix

    k = len(names)
    y_pred, _ = predicted_confidence(P)
    cm = confusion_matrix(data.y, y_pred, k)
    support = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, support, out=np.zeros(cm.shape), where=support != 0)
    fig = _figure(SIZES["confusion"])
    fig.set_layout_engine("constrained")  # one axes and its colour bar: quick to lay out
    ax = fig.subplots()
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if cm[i, j] or i == j:
                ax.text(
                    j,
                    i,
                    f"{cm[i, j]:,}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if frac[i, j] > 0.5 else "black",
                )
    ax.set_xticks(
        range(k),
        names,
        rotation=45 if _long(names) else 0,
        ha="right" if _long(names) else "center",
    )
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class", fontsize=11)
    ax.set_ylabel("true class", fontsize=11)
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(
        f"{_heading(meta, names, data)}: confusion matrix\n"
        f"{cm.sum():,} images, accuracy {100 * acc:.2f}%",
        fontsize=12,
    )
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of the true class")
    return _save(fig, out_dir, "confusion.png", meta.get("run_id"))


def plot_errors(data, P, names, meta, out_dir, k=30, cols=6):
    """``errors.png``: the most confidently wrong digits, each "true A → pred B (p)"."""
    picked = select_confident_errors(data.y, P, k)
    y_pred, conf = predicted_confidence(P)
    grid = DigitGrid("errors", max(1, -(-k // cols)), cols)
    grid.draw(_images(data, picked), range(len(picked)), DIGIT_CMAP, 0, 255)
    for n, i in enumerate(picked):
        grid.caption(n, *_caption(names[data.y[i]], names[y_pred[i]], conf[i]))
    if len(picked) == 0:
        grid.note(0, "no errors", fontsize=12)
    n_wrong = int(np.count_nonzero(y_pred != data.y))
    fig = grid.fig
    fig.suptitle(
        f"{_heading(meta, names, data)}: the {len(picked)} most "
        f"confident of {n_wrong:,} errors\n(p) = probability the model gave its wrong answer",
        fontsize=12,
    )
    return _save(fig, out_dir, "errors.png", meta.get("run_id"))


def plot_examples(data, P, names, meta, out_dir, cols=5):
    """``examples.png``: for each class, the correct digit the model is most sure of."""
    picked = select_one_per_class(data.y, P, len(names))
    _, conf = predicted_confidence(P)
    found = [c for c in range(len(names)) if picked[c] >= 0]
    grid = DigitGrid("examples", -(-len(names) // cols), cols, caption=1.2)
    grid.draw(_images(data, picked[found]), found, DIGIT_CMAP, 0, 255)
    for c in range(len(names)):
        if picked[c] >= 0:
            grid.caption(c, f"{names[c]} ({conf[picked[c]]:.2f})", 11, RIGHT)
        else:
            grid.note(c, f"no correct\n{names[c]}", color=WRONG)
    fig = grid.fig
    fig.suptitle(
        f"{_heading(meta, names, data)}: one correct example per class\n"
        "(p) = the model's probability for it, the highest of its class",
        fontsize=12,
    )
    return _save(fig, out_dir, "examples.png", meta.get("run_id"))


def plot_hidden_units(params, meta, out_dir, n_units=64, cols=8):
    """``hidden-units.png``: what training changed in the incoming weights of the first units.

    Each unit's final weights minus its initial ones, which the recorded
    ``init`` and ``seed`` rebuild exactly (:func:`initial_W1`). Drawn as they
    are, the weights of a short run at a small learning rate (the notebook's
    recipe) are almost all initial noise; their change is what was learnt.
    Without a recorded init and seed, the weights themselves are drawn, and
    the title says so. One shared colour scale (symmetric, clipped at the 99th
    percentile) so units can be compared with each other.
    """
    W1 = np.asarray(params["W1"], dtype=float)
    n = min(n_units, W1.shape[1])
    W1_init = initial_W1(meta)
    shown = W1[:, :n] if W1_init is None else W1[:, :n] - W1_init[:, :n]
    vmax = float(np.percentile(np.abs(shown), 99)) or 1.0
    grid = DigitGrid("hidden-units", -(-n // cols), cols, caption=0.8, gap=3, right=0.14)
    im = grid.draw(shown.T.reshape(n, 28, 28), range(n), WEIGHT_CMAP, -vmax, vmax)
    for j in range(n):
        grid.caption(j, str(j), 8, "black")
    fig = grid.fig
    dataset = (meta.get("dataset") or {}).get("name", "?")
    units = f"hidden units 0-{n - 1} (of {W1.shape[1]})"
    head = f"{task_title(meta['task'], display_names(meta))} on {dataset}"
    if W1_init is None:
        label = "weight (red: a brighter pixel raises the unit)"
        title = f"{head}: {units}\nincoming weights (no recorded init and seed: as they are)"
    else:
        config = meta["config"]
        label = "change (red: training made a brighter pixel raise the unit more)"
        title = (
            f"{head}: what training changed, {units}\n"
            f"final minus initial incoming weights ({config['init']} init, seed {config['seed']})"
        )
    fig.colorbar(im, cax=fig.add_axes((0.88, 0.2, 0.025, 0.6)), label=label)
    fig.suptitle(title, fontsize=12)
    return _save(fig, out_dir, "hidden-units.png", meta.get("run_id"))


def initial_W1(meta):
    """W1 as training started, rebuilt from the metadata's init and seed; None if unrecorded.

    :func:`mnistnet.model.init_params` draws from ``RandomState(seed)``, so
    the same init, seed, layers and dtype give the same numbers, bit for bit.
    """
    config = meta.get("config")
    if not isinstance(config, dict):
        return None
    method, seed, layers = config.get("init"), config.get("seed"), meta.get("layers")
    if method not in INIT_METHODS or type(seed) is not int or not 0 <= seed < 2**32:
        return None
    n_in, n_hidden, n_out = layers
    params = init_params(n_in, n_hidden, n_out, method=method, seed=seed, dtype=meta["dtype"])
    return params["W1"]


# --- helpers --------------------------------------------------------------------------


def _heading(meta, names, data):
    """``"binary 5 vs 8 on mnist-sample test"``: what a picture shows, on which data."""
    return f"{task_title(meta['task'], names)} on {data.dataset} {data.split}"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def _figure(size):
    """A figure of ``size`` inches outside pyplot: no window, no global state to close."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=DPI)


def _save(fig, out_dir, name, run_id=None):
    """Write ``fig`` to ``out_dir/name``; the PNG records the run id (text key ``RUN_ID_KEY``)."""
    path = os.path.join(os.fspath(out_dir), name)
    metadata = {"Software": f"mnistnet {__version__}"}
    if run_id is not None:
        metadata[RUN_ID_KEY] = str(run_id)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, metadata=metadata)
    finally:
        if fig.canvas.manager is not None:  # made by pyplot: it keeps it until closed
            import matplotlib.pyplot as plt

            plt.close(fig)
    return path


def _images(data, indices):
    """The selected images ``indices`` of ``data`` (n, 28, 28), without making all of them."""
    return data.source_images[data.index[np.asarray(indices, dtype=np.intp)]]


def _caption(true_name, pred_name, p):
    """A digit's caption: ``(text, fontsize, colour)``, green when right, red when wrong."""
    colour = RIGHT if true_name == pred_name else WRONG
    if len(true_name) + len(pred_name) <= 6:  # digits: "true 4 → pred 9 (0.97)" fits
        return f"true {true_name} → pred {pred_name}\n({p:.2f})", 9, colour
    # long class names (Fashion-MNIST) would run into the next panel
    return f"{true_name}\n→ {pred_name} ({p:.2f})", 8, colour


class DigitGrid:
    """A ``rows`` x ``cols`` grid of 28x28 images drawn as ONE composed image on one axes.

    One axes per digit made matplotlib lay out, draw and measure dozens of
    axes (most of the time a picture took); one image with the cells laid
    out in NumPy, and text at the cells' positions, looks the same and
    draws in a fraction of it. Cells are ``gap`` image pixels apart, with
    room above each for ``caption`` lines of text; what lies between the
    cells is NaN, drawn in the figure's background colour. The figure
    (``SIZES[kind]``) is :attr:`fig`, the grid's axes :attr:`ax`, below the
    title, with ``left`` and ``right`` (fractions of the width) for row
    labels and a colour bar.
    """

    SIDE = 28
    LINE_PX = 15  # figure pixels per caption line: 9-point text and its spacing at 100 dpi

    def __init__(self, kind, rows, cols, caption=2, gap=4, left=0.02, right=0.02):
        self.rows, self.cols = rows, cols
        self.pitch_x = self.SIDE + gap
        rect = (left, 0.02, 1 - left - right, 0.86)
        width, height = SIZES[kind]
        room = (rect[2] * width * DPI, rect[3] * height * DPI)  # the axes, in figure pixels
        top = 0
        for _ in range(3):  # the captions' room depends on the scale, the scale on the room
            height, width = rows * (self.SIDE + gap + top) - gap, cols * self.pitch_x - gap
            scale = min(room[0] / width, room[1] / height)  # figure pixels per image pixel
            top = math.ceil(caption * self.LINE_PX / scale)
        self.top = top
        self.pitch_y = self.SIDE + gap + top
        self.shape = (rows * self.pitch_y - gap, cols * self.pitch_x - gap)
        self.fig = _figure(SIZES[kind])
        self.ax = self.fig.add_axes(rect)
        self.ax.set_axis_off()
        self.ax.set_anchor("N")  # right under the title; what the grid does not fill is below

    def origin(self, cell):
        """Top-left pixel (x, y) of the image of ``cell`` (row-major)."""
        r, c = divmod(cell, self.cols)
        return c * self.pitch_x, r * self.pitch_y + self.top

    def compose(self, images, cells):
        """The grid as one float array: ``images[k]`` at ``cells[k]``, NaN elsewhere."""
        canvas = np.full(self.shape, np.nan, dtype=np.float32)
        for image, cell in zip(images, cells, strict=True):
            x, y = self.origin(cell)
            canvas[y : y + self.SIDE, x : x + self.SIDE] = image
        return canvas

    def draw(self, images, cells, cmap, vmin, vmax):
        """Draw ``images[k]`` in cell ``cells[k]``; returns the image (for a colour bar)."""
        import matplotlib

        cmap = matplotlib.colormaps[cmap].with_extremes(bad="white")
        canvas = self.compose(images, list(cells))
        return self.ax.imshow(canvas, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")

    def caption(self, cell, text, fontsize, colour):
        """Text centred above the image of ``cell``."""
        x, y = self.origin(cell)
        self.ax.text(x + self.SIDE / 2 - 0.5, y - 1.5, text, ha="center", va="bottom",
                fontsize=fontsize, color=colour, linespacing=1.1)  # fmt: skip

    def note(self, cell, text, fontsize=10, color="black"):
        """Text in the middle of an empty cell ("none", "no errors")."""
        x, y = self.origin(cell)
        self.ax.text(x + self.SIDE / 2, y + self.SIDE / 2, text, ha="center", va="center",
                fontsize=fontsize, color=color)  # fmt: skip

    def row_label(self, row, text, fontsize):
        """Text to the left of ``row``."""
        _, y = self.origin(row * self.cols)
        self.ax.text(-3, y + self.SIDE / 2, text, ha="right", va="center", fontsize=fontsize)


def _epoch_ticks(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _long(names):
    return max(len(s) for s in names) > 2
