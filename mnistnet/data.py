"""From uint8 images and labels to the arrays the network trains on.

The course notebook's selection: the first ``samples_per_class`` training
images of each chosen class, class after class; labels become 0..K-1 in
the order the classes are given (for ``--digits 5 8``: 5 -> 0, 8 -> 1).
"""

import numpy as np

from mnistnet.deskew import deskew

PIXEL_SCALINGS = ("raw", "unit", "deskewed")


def select_indices(labels, classes, samples_per_class=None):
    """Indices of the first ``samples_per_class`` images of each class in ``classes``.

    Parameters
    ----------
    labels : ndarray of shape (n,)
    classes : sequence of int
        Original labels to keep; position in this sequence is the new label.
    samples_per_class : int or None
        None keeps every image of each class.

    Returns
    -------
    index : ndarray of shape (m,), intp, class after class, in file order within a class
    y : ndarray of shape (m,), intp, the new labels 0..len(classes)-1
    """
    picked = []
    for new_label, cls in enumerate(classes):
        idx = np.flatnonzero(labels == cls)
        if samples_per_class is not None:
            idx = idx[:samples_per_class]
        picked.append((idx, new_label))
    index = np.concatenate([idx for idx, _ in picked])
    y = np.concatenate([np.full(len(idx), lab, dtype=np.intp) for idx, lab in picked])
    return index, y


def prepare_inputs(images, pixels="raw", dtype=np.float64, index=None):
    """Flatten images to rows and scale them, converted to ``dtype`` once.

    ``raw`` keeps 0..255 (the notebook); ``unit`` divides by 255;
    ``deskewed`` divides by 255 and deskews every image
    (:func:`mnistnet.deskew.deskew`). With
    ``index``, only ``images[index]`` are converted, gathered a chunk at a
    time so no full uint8 copy of the selection is ever made (it would add
    47 MB at the peak for the 60,000 training images).

    Returns
    -------
    ndarray of shape (n, 784), C-contiguous, of ``dtype``
    """
    if pixels not in PIXEL_SCALINGS:
        raise ValueError(f"unknown pixel scaling {pixels!r}; choose from {PIXEL_SCALINGS}")
    flat = images.reshape(len(images), -1)
    if index is None:
        X = flat.astype(dtype)
    else:
        X = np.empty((len(index), flat.shape[1]), dtype=dtype)
        for start in range(0, len(index), _CHUNK):
            rows = index[start : start + _CHUNK]
            X[start : start + len(rows)] = np.take(flat, rows, axis=0)
    if pixels in ("unit", "deskewed"):
        X /= 255
    if pixels == "deskewed":
        deskew(X, out=X)
    return X


_CHUNK = 4096


def targets(y, n_out, dtype=np.float64, smoothing=0.0):
    """Targets for the network's output: a 0/1 column (``n_out == 1``) or one-hot rows.

    ``smoothing`` (label smoothing, Szegedy et al., 2016): every target moves
    that share of the way to the uniform one, ``Y (1 - smoothing) + smoothing / K``
    with ``K`` classes (2 for the one sigmoid output). The loss's gradient is
    still ``P - Y``, with these ``Y``.

    Returns
    -------
    ndarray of shape (n, n_out), of ``dtype``
    """
    if n_out == 1:
        Y = y.reshape(-1, 1).astype(dtype)
    else:
        Y = np.zeros((len(y), n_out), dtype=dtype)
        Y[np.arange(len(y)), y] = 1
    if smoothing:
        Y *= 1 - smoothing
        Y += smoothing / max(n_out, 2)
    return Y


def shift_images(X, max_shift, rng, side=28, out=None):
    """Translate each image (a row of ``X``) by its own random offset.

    Offsets ``dy, dx`` are drawn uniformly from ``-max_shift..max_shift``
    from ``rng``; pixel ``(i, j)`` moves to ``(i + dy, j + dx)`` and pixels
    shifted in from outside are 0 (the background).

    Parameters
    ----------
    X : ndarray of shape (n, side * side)
    max_shift : int
    rng : numpy.random.Generator
    out : ndarray like ``X``, optional (must not be ``X``)

    Returns
    -------
    ndarray of shape (n, side * side)
    """
    n = len(X)
    k = max_shift
    offsets = rng.integers(-k, k + 1, size=(n, 2))
    # Pad every image by k, then read each one's 28x28 window at (k - dy, k - dx):
    # one gather for the whole batch instead of one copy per image or offset.
    padded = np.zeros((n, side + 2 * k, side + 2 * k), dtype=X.dtype)
    padded[:, k : k + side, k : k + side] = X.reshape(n, side, side)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (side, side), axis=(1, 2))
    shifted = windows[np.arange(n), k - offsets[:, 0], k - offsets[:, 1]]
    if out is None:
        return shifted.reshape(n, side * side)
    out[...] = shifted.reshape(n, side * side)
    return out


def validation_split(y, n_classes, requested):
    """Hold out the last images of each class: positions to train on and to validate on.

    ``requested`` is a number of images (an int, 0 for none) or a fraction of
    them (a float in (0, 1), rounded to the nearest image). Stratified: class
    ``c`` gives ``k_c`` images, its share of the total (``requested * n_c / n``
    rounded down, then one more to the classes with the largest remainders,
    the lower label first on ties), and they are its *last* ``k_c`` images in
    the order of ``y`` (file order within a class, as :func:`select_indices`
    keeps it). Every class keeps at least one training image.

    Returns
    -------
    train : ndarray of int, the positions left for training, in their order
    held_out : ndarray of int, the validation positions, in their order
    per_class : list of int, ``k_c`` for each class 0..n_classes-1

    Raises
    ------
    ValueError
        In words, when the request cannot be met.

    >>> train, val, k = validation_split(np.array([0, 0, 0, 0, 1, 1]), 2, 3)
    >>> val.tolist(), train.tolist(), k
    ([2, 3, 5], [0, 1, 4], [2, 1])
    """
    y = np.asarray(y)
    n = len(y)
    counts = np.bincount(y, minlength=n_classes)
    total = requested if isinstance(requested, int) else int(round(requested * n))
    if total == 0 and requested != 0:
        raise ValueError(f"a validation fraction of {requested:g} of {n} images is no image")
    if total >= n:
        raise ValueError(f"cannot hold out {total} of the {n} training images")
    share = total * counts / n
    per_class = np.floor(share).astype(int)
    order = sorted(range(n_classes), key=lambda c: (-(share[c] - per_class[c]), c))
    for c in order[: total - int(per_class.sum())]:
        per_class[c] += 1
    emptied = [c for c in range(n_classes) if counts[c] and per_class[c] >= counts[c]]
    if emptied:
        raise ValueError(
            f"holding out {total} images leaves class {emptied[0]} without a training image"
        )
    held = np.zeros(n, dtype=bool)
    for c in range(n_classes):
        if per_class[c]:
            held[np.flatnonzero(y == c)[-per_class[c] :]] = True
    return np.flatnonzero(~held), np.flatnonzero(held), per_class.tolist()
