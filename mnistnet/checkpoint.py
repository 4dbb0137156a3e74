"""Saving and loading models: one ``.npz`` holding the weights and their story.

Arrays ``W1, b1, W2, b2`` plus ``metadata``: a 0-d string array holding
one JSON object (format, format_version, mnistnet_version, task, classes,
class_names, layers, activations, loss, pixels, dtype, config, dataset with
file hashes, metrics, created, epochs_trained, interrupted). A trained
run's file also holds its resume state: the metadata's ``resume`` section
and arrays named ``resume_*`` (:mod:`mnistnet.trainstate`), checked by
:func:`_check_resume` on every load and read by :func:`load_resume`.
Everything loads with ``np.load(path, allow_pickle=False)``: no pickle, ever.
"""

import json
import zipfile

import numpy as np

from mnistnet import trainstate
from mnistnet.errors import ModelFileError
from mnistnet.fileio import atomic_path
from mnistnet.model import PARAM_NAMES, pack

FORMAT = "mnistnet-model"
FORMAT_VERSION = 1
TASK_OUTPUTS = {"binary": (2, 1), "multiclass": (10, 10)}  # task -> (classes, output units)
REQUIRED_METADATA = ("format", "format_version", "task", "classes", "layers", "pixels", "dtype")


def save_model(path, params, metadata, resume_arrays=None):
    """Write ``params`` and ``metadata`` (a JSON-able dict) to ``path`` atomically.

    ``resume_arrays``: the ``resume_*`` arrays of the metadata's ``resume``
    section (:func:`mnistnet.trainstate.to_file`).
    """
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    arrays = {name: params[name] for name in PARAM_NAMES}
    for name, value in (resume_arrays or {}).items():
        if not name.startswith(trainstate.PREFIX):
            raise ValueError(f"resume array {name!r} must start with {trainstate.PREFIX!r}")
        arrays[name] = value
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # A file object, not a name: np.savez would append ".npz" to a name.
        np.savez(f, metadata=np.array(json.dumps(meta)), **arrays)


def load_model(path):
    """Read and check a model file.

    Returns
    -------
    params : dict of ndarray (``W1, b1, W2, b2``)
    metadata : dict

    Raises
    ------
    ModelFileError
        Naming the file and the problem: not an npz, pickled (object)
        arrays, missing arrays, bad metadata, unknown format version,
        shapes or dtypes that disagree with the metadata.
    """

    def bad(problem):
        return ModelFileError(f"model file {path}: {problem}")

    _sniff(path, bad)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise bad("not an .npz archive (a single .npy array)")
            names = set(npz.files)
            missing = [n for n in (*PARAM_NAMES, "metadata") if n not in names]
            if missing:
                raise bad(f"missing array(s) {', '.join(missing)}; not an mnistnet model?")
            arrays = {name: npz[name] for name in (*PARAM_NAMES, "metadata")}
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise bad("no such file") from None
    except IsADirectoryError:
        raise bad("is a directory") from None
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise bad("holds pickled object arrays, which are never loaded (unsafe)") from None
        raise bad(f"not a valid .npz model ({exc})") from None
    except zipfile.BadZipFile as exc:
        raise bad(f"corrupt or truncated .npz archive ({exc})") from None
    except (OSError, EOFError, KeyError) as exc:
        raise bad(f"not a readable .npz archive ({type(exc).__name__}: {exc})") from None

    raw = arrays.pop("metadata")
    if raw.dtype.kind != "U" or raw.shape != ():
        raise bad("'metadata' is not a JSON string")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise bad(f"metadata is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(meta, dict):
        raise bad("metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise bad(f"metadata format is {meta.get('format')!r}, expected {FORMAT!r}")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # JSON true == 1: reject it
        raise bad(
            f"unknown format version {meta.get('format_version')!r} "
            f"(this mnistnet reads version {FORMAT_VERSION}); upgrade mnistnet?"
        )
    absent = [key for key in REQUIRED_METADATA if key not in meta]
    if absent:
        raise bad(f"metadata lacks {', '.join(absent)}")
    _check_consistency(arrays, meta, bad)
    _check_resume(meta, bad)
    return arrays, meta


def _check_resume(meta, bad, optimizer=None):
    """The ``resume`` section, when there is one (:func:`mnistnet.trainstate.check_section`).

    ``optimizer``: the optimizer it must be the state of (checked when resuming).
    """
    if "resume" not in meta:
        return
    try:
        trainstate.check_section(meta["resume"], optimizer)
    except ValueError as exc:
        raise bad(f"metadata 'resume' {exc}") from None


def load_resume(path):
    """Read a model file with its resume state.

    Returns
    -------
    params : dict of ndarray, the saved weights (the best epoch's, with early stopping)
    metadata : dict
    resume : :class:`mnistnet.trainstate.Resume`, without ``best`` (the caller decides)

    Raises
    ------
    ModelFileError
        As :func:`load_model`; also when the file holds no resume state (saved
        before mnistnet kept one), or its ``resume_*`` arrays do not fit.
    """
    params, meta = load_model(path)

    def bad(problem):
        return ModelFileError(f"model file {path}: {problem}")

    if "resume" not in meta:
        raise bad("holds no resume state (saved by an older mnistnet, or not by training)")
    config = meta.get("config")
    _check_resume(meta, bad, config.get("optimizer") if isinstance(config, dict) else "?")
    names = trainstate.expected_arrays(meta["resume"])
    try:
        with np.load(path, allow_pickle=False) as npz:
            extra = [n for n in npz.files if n.startswith(trainstate.PREFIX) and n not in names]
            if extra:
                raise ValueError(f"holds array {extra[0]}, which 'resume' does not name")
            arrays = {name: npz[name] for name in names if name in npz.files}
        theta, _ = pack(params)
        state, records = trainstate.from_file(meta["resume"], arrays, theta)
    except ValueError as exc:
        raise bad(f"resume state {exc}") from None
    return params, meta, trainstate.Resume(state, records)


def _sniff(path, bad):
    """Look at the first bytes: np.load would take anything else for a pickle."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except FileNotFoundError:
        raise bad("no such file") from None
    except IsADirectoryError:
        raise bad("is a directory") from None
    except OSError as exc:
        raise bad(f"cannot read: {exc.strerror or exc}") from None
    if head.startswith(b"PK"):
        return
    if not head:
        raise bad("empty file, not an .npz archive")
    if head.startswith(b"\x93NUMPY"):
        raise bad("a single .npy array, not an .npz archive")
    if head.startswith(b"\x80"):
        raise bad("a Python pickle, which is never loaded (unsafe); not an .npz archive")
    raise bad("not an .npz archive (it is not a ZIP file)")


def _check_consistency(params, meta, bad):
    task = meta["task"]
    if not isinstance(task, str) or task not in TASK_OUTPUTS:
        raise bad(f"unknown task {task!r}")
    n_classes, n_out = TASK_OUTPUTS[task]
    classes = meta["classes"]
    if (
        not isinstance(classes, list)
        or len(classes) != n_classes
        or not all(isinstance(c, int) and 0 <= c <= 9 for c in classes)
        or len(set(classes)) != n_classes
    ):
        raise bad(f"'classes' must be {n_classes} different digits for a {task} model")
    layers = meta["layers"]
    if (
        not isinstance(layers, list)
        or len(layers) != 3
        or not all(isinstance(v, int) and v > 0 for v in layers)
    ):
        raise bad("'layers' must be three positive sizes [inputs, hidden, outputs]")
    n_in, n_hidden, n_layer_out = layers
    if n_in != 784 or n_layer_out != n_out:
        raise bad(f"layers {layers} do not fit a {task} model on 28x28 images")
    if meta["dtype"] not in ("float32", "float64"):
        raise bad(f"unknown dtype {meta['dtype']!r}")
    if meta["pixels"] not in ("raw", "unit"):
        raise bad(f"unknown pixel scaling {meta['pixels']!r}")
    expected = {"W1": (n_in, n_hidden), "b1": (n_hidden,), "W2": (n_hidden, n_out), "b2": (n_out,)}
    for name, shape in expected.items():
        arr = params[name]
        if arr.shape != shape:
            raise bad(f"array {name} has shape {arr.shape}, the metadata says {shape}")
        if arr.dtype != np.dtype(meta["dtype"]):
            raise bad(f"array {name} has dtype {arr.dtype}, the metadata says {meta['dtype']}")
        if not np.isfinite(arr).all():
            raise bad(f"array {name} holds NaN or infinite values")
