"""What ``mnistnet serve`` answers: a posted picture's reading, and the model's facts.

    reader = DigitReader("runs/multiclass/model.npz")
    check_request("image/png", len(body))            # before the body is read
    reader.read(body, "image/png")["predictions"][0]  # {"prediction": 7, ...}

No HTTP here (that is :mod:`mnistnet.server`), and no preprocessing or
prediction of its own: a picture is decoded by
:func:`mnistnet.imagefiles.read_picture`, made to look like MNIST by
:func:`mnistnet.images.to_mnist` and classified by
:func:`mnistnet.prediction.predict_proba`, exactly as ``mnistnet predict``
does, and the answer is the same ``mnistnet-predictions/1`` document with
one entry. Anything wrong with a request raises :class:`RequestError`,
whose message is safe to send back: it names no file of the server.
"""

import io
import math
import os

from mnistnet import prediction
from mnistnet.checkpoint import load_model
from mnistnet.errors import MnistnetError
from mnistnet.imagefiles import ImageError, read_picture
from mnistnet.images import to_mnist
from mnistnet.tasks import display_names, task_title

MAX_BODY = 5 * 1024 * 1024  # bytes: a phone photo as JPEG; the page shrinks larger ones
UPLOAD_NAME = "the posted picture"  # how errors and the answer's "path" name a request's body
#: The formats the API takes, by content type, with the bytes each file starts with.
PICTURE_TYPES = {
    "image/png": ("PNG", b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": ("JPEG", b"\xff\xd8\xff"),
}
#: Settings of the training run shown as the model's recipe (paths are never shown).
RECIPE_KEYS = (
    "dataset",
    "samples_per_class",
    "hidden",
    "optimizer",
    "lr",
    "lr_schedule",
    "momentum",
    "batch_size",
    "epochs",
    "augment_shift",
    "pixels",
    "dropout",
    "seed",
)


class RequestError(MnistnetError):
    """A request that cannot be answered (HTTP 400); the message says why, for the client."""


def check_request(content_type, length):
    """Refuse a request by its headers alone, before its body is read.

    Parameters
    ----------
    content_type : str or None
        The ``Content-Type`` header (parameters after ``;`` are ignored).
    length : int
        The body's size in bytes (``Content-Length``).

    Raises
    ------
    RequestError
        Not ``image/png`` or ``image/jpeg``; an empty body; more than
        :data:`MAX_BODY` bytes.
    """
    kind = media_type(content_type)
    if kind not in PICTURE_TYPES:
        raise RequestError(
            f"the body must be a PNG or JPEG picture (Content-Type image/png or image/jpeg), "
            f"not {kind or 'untyped data'}"
        )
    if length == 0:
        raise RequestError("the body is empty: post a PNG or JPEG picture")
    if length > MAX_BODY:
        raise RequestError(
            f"the picture is {length:,} bytes; the limit is {MAX_BODY:,} (shrink it first)"
        )


def media_type(content_type):
    """``"image/png"`` from ``"Image/PNG; charset=x"``; None for a missing header."""
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower()


class DigitReader:
    """A loaded model that reads posted pictures, shared by every request (read only).

    Parameters
    ----------
    model_path : str
        A model file (:func:`mnistnet.checkpoint.load_model`).

    Attributes
    ----------
    summary : dict
        The ``model`` object of the predict document, with ``path`` reduced
        to the file's name: the page may be seen from other machines, which
        have no business knowing the server's folders.
    facts : dict
        ``summary`` and what the page shows about the model (see :func:`model_facts`).
    """

    def __init__(self, model_path):
        self.params, self.meta = load_model(model_path)
        self.convention = prediction.convention(self.meta)
        summary = prediction.model_summary(model_path, self.meta)
        self.summary = {**summary, "path": os.path.basename(summary["path"])}
        self.facts = model_facts(self.summary, self.meta)

    def read(self, body, content_type):
        """Classify the picture in a request's body.

        Returns
        -------
        dict
            The ``mnistnet-predictions/1`` document of ``mnistnet predict
            --json`` with one entry, whose ``path`` is :data:`UPLOAD_NAME`,
            whose ``top`` lists every class, and which carries one more
            field, ``image``: the 28x28 image the network saw, as 784 ints
            (0..255, row by row, white ink on black).

        Raises
        ------
        RequestError
            A wrong type, an empty or oversized body, a body that is not
            the declared format or cannot be decoded, a picture with no ink.
        """
        check_request(content_type, len(body))
        fmt, magic = PICTURE_TYPES[media_type(content_type)]
        if not body.startswith(magic):
            raise RequestError(f"{UPLOAD_NAME}: not a {fmt} file (its first bytes say otherwise)")
        try:
            pixels = read_picture(io.BytesIO(body), name=UPLOAD_NAME)
            image = to_mnist(pixels, self.convention, name=UPLOAD_NAME)
        except ImageError as exc:
            raise RequestError(str(exc)) from None
        p = prediction.predict_proba(self.params, self.meta, image[None])[0]
        found = prediction.entry(UPLOAD_NAME, None, p, self.meta, top=len(p))
        return {
            "schema": prediction.SCHEMA,
            "model": self.summary,
            "preprocess": "auto",
            "convention": self.convention,
            "predictions": [{**found, "image": self._seen(image)}],
        }

    def _seen(self, image):
        """``image`` (28, 28) as the network saw it (deskewed if it was), 784 ints row by row."""
        return prediction.as_seen(image[None], self.meta)[0].ravel().tolist()


def model_facts(summary, meta):
    """What ``GET /api/model`` returns: the model summary and the facts the page shows.

    Returns
    -------
    dict with the keys of ``summary`` (``path``, ``sha256``, ``task``,
    ``classes``) and ``class_names``, ``title`` (``"ten classes"``,
    ``"binary 5 vs 8"``), ``layers``, ``test_accuracy`` and ``test_size``
    (None when the file records no finite test score), and ``recipe``
    (the settings of :data:`RECIPE_KEYS` the file records, numbers and words only).
    """
    names = display_names(meta)
    test = (meta.get("metrics") or {}).get("test") or {}
    accuracy = test.get("accuracy")
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    recipe = {key: config[key] for key in RECIPE_KEYS if _is_plain(config.get(key))}
    if "epochs_trained" in meta and _is_plain(meta["epochs_trained"]):
        recipe["epochs"] = meta["epochs_trained"]
    return {
        **summary,
        "class_names": names,
        "title": task_title(meta["task"], names),
        "layers": list(meta["layers"]),
        "test_accuracy": accuracy
        if _is_plain(accuracy) and not isinstance(accuracy, str)
        else None,
        "test_size": test.get("n") if isinstance(test.get("n"), int) else None,
        "recipe": recipe,
    }


def _is_plain(value):
    """A JSON number (finite) or a string: safe to show, and valid strict JSON."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (int, str))
