"""Classify a person's images with a saved model, and describe the answers as JSON.

With a trained model, ``params, meta = load_model("runs/multiclass/model.npz")``;
here a random one, which is as good as a guess:

    >>> import numpy as np
    >>> from mnistnet.images import to_mnist
    >>> from mnistnet.model import init_params
    >>> params = init_params(784, 16, 10, method="xavier", seed=0)
    >>> meta = {"task": "multiclass", "classes": list(range(10)), "pixels": "unit",
    ...         "dtype": "float64"}
    >>> page = np.full((60, 40), 255, np.uint8)
    >>> page[10:50, 18:22] = 0                      # a "1" drawn on white paper
    >>> P = predict_proba(params, meta, to_mnist(page)[None])
    >>> P.shape, round(float(P.sum()), 6)
    ((1, 10), 1.0)

The images are prepared for the network exactly as its training data was
(:func:`mnistnet.data.prepare_inputs` with the model's pixel scaling and
dtype), then :func:`mnistnet.model.predict_proba` runs the network.
"""

import os
from dataclasses import dataclass

import numpy as np

from mnistnet.data import prepare_inputs
from mnistnet.errors import MnistnetError
from mnistnet.evaluation import file_sha256
from mnistnet.imagefiles import ImageError, read_pictures
from mnistnet.images import split_digits, to_mnist
from mnistnet.model import predict_proba as network_proba
from mnistnet.tasks import display_names

#: Version of the ``predict --json`` document; bumped when a field changes meaning.
SCHEMA = "mnistnet-predictions/1"


def predict_proba(params, meta, images, tta_shift=0):
    """Class probabilities of 28x28 images under a loaded model.

    Parameters
    ----------
    params, meta : the two values of :func:`mnistnet.checkpoint.load_model`
    images : ndarray of shape (n, 28, 28), uint8, white ink on black
        (as :func:`mnistnet.images.to_mnist` makes them)
    tta_shift : int
        > 0: test-time augmentation, the mean probabilities of each image and
        its four copies moved by that many pixels (:mod:`mnistnet.tta`).

    Returns
    -------
    ndarray of shape (n, n_classes), float64
        Column k is the probability of ``meta["classes"][k]``. A binary
        model's network gives P(second class) (column 1); column 0 is its
        complement.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape (n, 28, 28), found {images.shape}")
    X = prepare_inputs(images, meta["pixels"], np.dtype(meta["dtype"]).type)
    if tta_shift:
        from mnistnet import tta

        P = tta.predict_proba(params, X, meta["task"], tta_shift).astype(np.float64)
    else:
        P = network_proba(params, X, meta["task"]).astype(np.float64)
    if meta["task"] == "binary":
        return np.column_stack([1 - P[:, 0], P[:, 0]])
    return P


def as_seen(images, meta):
    """The 28x28 uint8 images (n, 28, 28) as the network of ``meta`` sees them, for pictures.

    The images themselves, or for a model trained on ``deskewed`` pixels
    their deskewed copies (:func:`mnistnet.deskew.deskew`), back in 0..255.
    """
    images = np.asarray(images)
    if meta.get("pixels") != "deskewed" or not len(images):
        return images
    X = prepare_inputs(images, "deskewed", np.float32)
    return np.rint(X * 255).astype(np.uint8).reshape(images.shape)


def convention(meta):
    """The preprocessing convention a model expects: ``"fashion"`` or ``"mnist"``."""
    dataset = meta.get("dataset")
    name = dataset.get("name") if isinstance(dataset, dict) else None
    return "fashion" if name == "fashion-mnist" else "mnist"


def model_summary(path, meta):
    """The ``model`` object of the JSON document."""
    return {
        "path": os.path.abspath(path),
        "sha256": file_sha256(path),
        "task": meta["task"],
        "classes": list(meta["classes"]),
    }


def describe(p, meta, top=2):
    """The answer for one image, from its class probabilities ``p`` (n_classes,).

    Returns
    -------
    dict with ``prediction`` (the class label), ``class_name``,
    ``probability`` (of the prediction) and ``top`` (the ``top`` most
    probable classes, most probable first: ``{"class", "probability"}``).
    """
    classes, names = meta["classes"], display_names(meta)
    order = np.argsort(-p, kind="stable")
    best = int(order[0])
    return {
        "prediction": classes[best],
        "class_name": names[best],
        "probability": float(p[best]),
        "top": [{"class": classes[k], "probability": float(p[k])} for k in order[:top]],
    }


def entry(path, index, p, meta, top=2):
    """One element of ``predictions``: an image and its answer."""
    return {"path": path, "index": index, **describe(p, meta, top)}


def reading_entry(path, index, P, boxes, meta, top=2):
    """One element of ``predictions`` for a row of digits (``--split-digits``).

    ``P`` holds one row of class probabilities per digit, left to right;
    ``boxes`` their ``(x0, y0, x1, y1)`` in the picture. The whole reading
    has no single class: ``prediction`` and ``class_name`` are None, ``top``
    is empty, ``probability`` is the product of the digits' probabilities
    (the chance that every digit is right, were their errors independent),
    and ``text`` joins the digits' names.
    """
    digits = [
        {"position": i, "box": list(map(int, box)), **describe(p, meta, top)}
        for i, (p, box) in enumerate(zip(P, boxes, strict=True))
    ]
    return {
        "path": path,
        "index": index,
        "prediction": None,
        "class_name": None,
        "probability": float(np.prod([d["probability"] for d in digits])),
        "top": [],
        "text": "".join(d["class_name"] for d in digits),
        "digits": digits,
    }


# --- from files to answers ---------------------------------------------------------------

PREPROCESS_MODES = ("auto", "none")


@dataclass(frozen=True, eq=False)
class Prepared:
    """One image read from a file, ready for the network.

    ``images`` (k, 28, 28) uint8: one image, or one per digit with
    ``split``; ``boxes``: each digit's ``(x0, y0, x1, y1)`` in the picture
    (None without ``split``); ``original``: the grey picture as read, kept
    only when asked (pictures can be large).
    """

    path: str
    index: int | None
    images: np.ndarray
    boxes: list | None
    original: np.ndarray | None

    @property
    def name(self):
        return self.path if self.index is None else f"{self.path}[{self.index}]"


@dataclass(frozen=True, eq=False)
class Failure:
    """An image that could not be read or used, kept as data by :func:`prepare`.

    ``path`` and ``index`` as in :class:`Prepared` (``index`` is None when
    the whole file failed); ``message`` is the one-line error, naming the
    image (``"a.png: no ink found (...)"``); ``at`` is how many images were
    prepared before it: in reading order it comes just before the ``at``-th.
    """

    path: str
    index: int | None
    message: str
    at: int

    @property
    def name(self):
        return self.path if self.index is None else f"{self.path}[{self.index}]"

    @property
    def reason(self):
        """What is wrong, without the image's name: ``"no ink found (...)"``."""
        head = f"{self.name}: "
        return self.message[len(head) :] if self.message.startswith(head) else self.message


def prepare(files, preprocess="auto", convention="mnist", split=False, keep=0, failures=None):
    """Read every image of ``files`` and preprocess it; yield :class:`Prepared`, in order.

    Parameters
    ----------
    files : iterable of str
        Picture, ``.npy`` and IDX files (see :func:`mnistnet.imagefiles.expand_paths`).
    preprocess : {"auto", "none"}
        ``auto``: :func:`mnistnet.images.to_mnist` (or :func:`split_digits`
        with ``split``); ``none``: 28x28 images are taken as they are.
    convention : {"mnist", "fashion"}
    split : bool
        Read a row of digits from each image.
    keep : int
        Keep the original pixels of the first ``keep`` images (for pictures).
    failures : list, optional
        Where to collect the images that cannot be read or used: each is
        appended as a :class:`Failure` and skipped, and the others are
        still yielded. Without it, the first one raises.

    Raises
    ------
    ImageError, IdxFormatError
        Without ``failures``: a file cannot be read, holds no ink, or
        (``none``) is not 28x28.
    """
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(f"unknown preprocessing {preprocess!r}; choose from {PREPROCESS_MODES}")
    if split and preprocess == "none":
        raise MnistnetError(
            "splitting digits needs the automatic preprocessing", setting="preprocess"
        )
    n = 0
    for path in files:
        try:
            pictures = read_pictures(path)
        except MnistnetError as exc:
            _collect(failures, exc, Failure(os.fspath(path), None, str(exc), n))
            continue
        for picture in pictures:
            try:
                images, boxes = _preprocess(picture, preprocess, convention, split)
            except MnistnetError as exc:
                _collect(failures, exc, Failure(picture.path, picture.index, str(exc), n))
                continue
            original = picture.pixels if n < keep else None
            n += 1
            yield Prepared(picture.path, picture.index, images, boxes, original)


def _collect(failures, exc, failure):
    """Keep ``failure`` in ``failures``; without a list to keep it in, raise ``exc``."""
    if failures is None:
        raise exc
    failures.append(failure)


def _preprocess(picture, preprocess, convention, split):
    pixels, name = picture.pixels, picture.name
    if preprocess == "none":
        if pixels.shape != (28, 28):
            h, w = pixels.shape
            raise ImageError(
                f"{name}: is {w}x{h}; without preprocessing only 28x28 images are taken",
            )
        return pixels[None], None
    if split:
        digits = split_digits(pixels, convention, name=name)
        return np.stack([d.image for d in digits]), [d.box for d in digits]
    return to_mnist(pixels, convention, name=name)[None], None


def answer(params, meta, prepared, top=2, tta_shift=0):
    """Classify every prepared image in one pass of the network (``tta_shift``: as
    :func:`predict_proba`).

    Returns
    -------
    P : list of ndarray (k, n_classes), one per prepared image
    entries : list of dict, the ``predictions`` of the JSON document
    """
    counts = [len(p.images) for p in prepared]
    if not prepared:
        return [], []
    P_all = predict_proba(params, meta, np.concatenate([p.images for p in prepared]), tta_shift)
    P = np.split(P_all, np.cumsum(counts)[:-1])
    entries = [
        entry(p.path, p.index, Pi[0], meta, top)
        if p.boxes is None
        else reading_entry(p.path, p.index, Pi, p.boxes, meta, top)
        for p, Pi in zip(prepared, P, strict=True)
    ]
    return P, entries


def error_entry(failure):
    """One element of ``errors``: an image that could not be read or used, and why."""
    return {"path": failure.path, "index": failure.index, "error": failure.reason}


def in_reading_order(entries, failures):
    """The ``entries`` of :func:`answer` and the ``failures`` of the same :func:`prepare`
    (as :func:`error_entry`), merged in the order the images were read."""
    rows = list(entries)
    for k, failure in enumerate(failures):  # k failures already inserted before this one
        rows.insert(failure.at + k, error_entry(failure))
    return rows


def document(model_path, meta, entries, failures=(), preprocess="auto", tta_shift=0):
    """The ``predict --json`` document (``"schema": "mnistnet-predictions/1"``)."""
    return {
        "schema": SCHEMA,
        "model": model_summary(model_path, meta),
        "preprocess": preprocess,
        "convention": convention(meta),
        "predictions": entries,
        "errors": [error_entry(f) for f in failures],
        **({"tta": {"shift": tta_shift, "copies": 5}} if tta_shift else {}),
    }
