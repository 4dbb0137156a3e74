"""Model files: a round trip, and every kind of bad file rejected with its own message."""

import json
import os

import numpy as np
import pytest

from mnistnet import checkpoint, model
from mnistnet.errors import ModelFileError


def _meta(task="binary"):
    return {
        "task": task,
        "classes": [5, 8] if task == "binary" else list(range(10)),
        "class_names": ["5", "8"] if task == "binary" else [str(d) for d in range(10)],
        "layers": [784, 4, 1 if task == "binary" else 10],
        "pixels": "unit",
        "dtype": "float64",
        "dataset": {"name": "mnist-sample", "files": []},
    }


@pytest.fixture
def saved(tmp_path):
    params = model.init_params(784, 4, 1, seed=1)
    path = tmp_path / "model.npz"
    checkpoint.save_model(path, params, _meta())
    return path, params


def _arrays(path):
    with np.load(path) as npz:
        return {name: npz[name] for name in npz.files}


def _meta_of(arrays):
    return json.loads(str(arrays["metadata"]))


def test_round_trip(saved, tmp_path):
    path, params = saved
    loaded, meta = checkpoint.load_model(path)
    for name in model.PARAM_NAMES:
        np.testing.assert_array_equal(loaded[name], params[name])
    assert meta["format"] == checkpoint.FORMAT
    assert meta["format_version"] == checkpoint.FORMAT_VERSION
    assert meta["classes"] == [5, 8]
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind


def test_save_keeps_the_name_given(tmp_path):
    checkpoint.save_model(tmp_path / "weights.bin", model.init_params(784, 4, 1), _meta())
    assert os.listdir(tmp_path) == ["weights.bin"]
    checkpoint.load_model(tmp_path / "weights.bin")


def _tamper(path, case):
    """Rewrite ``path`` as the tampered file ``case``."""
    arrays = _arrays(path)
    meta = _meta_of(arrays)
    raw = path.read_bytes()
    if case == "object array":
        arrays["W1"] = np.array([{"evil": 1}, None], dtype=object)
    elif case == "missing array":
        del arrays["b2"]
    elif case == "wrong shape":
        arrays["W1"] = arrays["W1"][:, :3]
    elif case == "wrong dtype":
        arrays["W2"] = arrays["W2"].astype(np.float32)
    elif case == "nan weights":
        arrays["b1"] = np.full_like(arrays["b1"], np.nan)
    elif case == "bad json":
        arrays["metadata"] = np.array("{'task': 'binary'")
    elif case == "metadata not text":
        arrays["metadata"] = np.zeros(3)
    elif case == "unknown version":
        meta["format_version"] = 2
    elif case == "foreign format":
        meta["format"] = "keras"
    elif case == "unknown task":
        meta["task"] = ["binary"]
    elif case == "bad classes":
        meta["classes"] = [5, 5]
    elif case == "lacks pixels":
        del meta["pixels"]
    elif case == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
        return
    elif case == "empty":
        path.write_bytes(b"")
        return
    elif case == "text file":
        path.write_text("W1,b1,W2,b2\n1,2,3,4\n")
        return
    elif case == "npy file":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
        return
    elif case == "pickle":
        import pickle

        path.write_bytes(pickle.dumps({"W1": [1, 2]}))
        return
    else:
        raise AssertionError(case)
    if case in ("unknown version", "foreign format", "unknown task", "bad classes", "lacks pixels"):
        arrays["metadata"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


TAMPERED = {  # case -> words of its own message
    "object array": "pickled object arrays",
    "missing array": "missing array(s) b2",
    "wrong shape": "array W1 has shape (784, 3), the metadata says (784, 4)",
    "wrong dtype": "array W2 has dtype float32",
    "nan weights": "array b1 holds NaN",
    "bad json": "metadata is not valid JSON",
    "metadata not text": "'metadata' is not a JSON string",
    "unknown version": "unknown format version 2",
    "foreign format": "metadata format is 'keras'",
    "unknown task": "unknown task ['binary']",
    "bad classes": "'classes' must be 2 different digits",
    "lacks pixels": "metadata lacks pixels",
    "truncated": "corrupt or truncated .npz archive",
    "empty": "empty file",
    "text file": "not an .npz archive (it is not a ZIP file)",
    "npy file": "a single .npy array",
    "pickle": "a Python pickle, which is never loaded",
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_files_raise_their_own_message(saved, case):
    path, _ = saved
    _tamper(path, case)
    with pytest.raises(ModelFileError) as info:
        checkpoint.load_model(path)
    message = str(info.value)
    assert message.startswith(f"model file {path}: ")
    assert TAMPERED[case] in message
    assert "\n" not in message


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        checkpoint.load_model(tmp_path / "nope.npz")
    with pytest.raises(ModelFileError, match="is a directory"):
        checkpoint.load_model(tmp_path)
