"""Model files: a round trip, and every kind of bad file rejected with its own message."""

import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest
from helpers import memory_peak, run

from mnistnet import checkpoint, metadata, model
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
    "unknown task": "'task' must be one of 'binary', 'multiclass', not a list",
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


# --- what today's training writes, and what older files lack ----------------------------


def test_metadata_written_by_training_loads_unchanged(tmp_path):
    """What save_run writes (validation, stopping and resume sections included) loads as is."""
    from mnistnet import experiment
    from mnistnet.config import TrainConfig

    config = TrainConfig(
        task="binary", digits=(5, 8), dataset="mnist-sample", samples_per_class=20, hidden=4,
        epochs=2, optimizer="adam", batch_size=16, validation=10, early_stopping=1, lr=1e-3,
    )  # fmt: skip
    splits = experiment.load_data(config)
    result = experiment.run_training(
        config, splits.train, splits.test, validation=splits.validation
    )
    written = experiment.build_metadata(result, "20261127-000000-0123abcd")
    written["resume"], resume_arrays = experiment.resume_section(result)
    checkpoint.save_model(tmp_path / "m.npz", result.params, written, resume_arrays)
    expected = json.loads(json.dumps({"format": checkpoint.FORMAT, "format_version": 1, **written}))
    assert checkpoint.load_model(tmp_path / "m.npz")[1] == expected
    assert sorted(expected) == sorted({*metadata.SCHEMA} - {"resumed_from"})  # all documented
    _, _, resume = checkpoint.load_resume(tmp_path / "m.npz")
    assert resume.state.epoch == len(result.history.records)


def test_optional_metadata_may_be_absent_or_null(saved):
    path, _ = saved
    arrays = _arrays(path)
    meta = {k: v for k, v in _meta_of(arrays).items() if k in metadata.REQUIRED}
    assert sorted(meta) == sorted(metadata.REQUIRED)
    for extra in ({}, {key: None for key in metadata.SCHEMA if key not in metadata.REQUIRED}):
        arrays["metadata"] = np.array(json.dumps({**meta, **extra}))
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        assert checkpoint.load_model(path)[1] == {**meta, **extra}


# --- metadata that breaks its schema or its limits --------------------------------------

BAD_METADATA = {  # case: (change to the metadata, words of the message)
    "nested 100,000 deep": ({"config": "DEEP"}, "nested more than 16 levels"),
    "nested 20 deep": ({"extra": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}, "nested more than"),
    "5,000-digit integer": ({"epochs_trained": "BIGINT"}, "integer of 5,000 digits"),
    "huge float": ({"seconds": "HUGEFLOAT"}, "too large for a float"),
    "NaN": ({"seconds": "NAN"}, "holds NaN"),
    "config a string": ({"config": "lr=1"}, "'config' must be an object, not a string"),
    "config value an object": ({"config": {"lr": {"a": 1}}}, "'config.lr' must be a setting"),
    "data_dir a list": ({"config": {"data_dir": ["/"]}}, "'config.data_dir' must be a string"),
    "dataset name a list": ({"dataset": {"name": ["mnist"]}}, "'dataset.name' must be a string"),
    "seconds fast": ({"seconds": "fast"}, "'seconds' must be a number >= 0, not a string ('fast')"),
    "class_names 5": ({"class_names": 5}, "'class_names' must be a list, not an integer (5)"),
    "class_names ints": ({"class_names": [5, 8]}, "'class_names[0]' must be a string"),
    "class_names too few": ({"class_names": ["5"]}, "'class_names' must name the 2 classes, not 1"),
    "file role a list": (
        {"dataset": {"name": "mnist", "files": [{"role": ["train-images"]}]}},
        "'dataset.files[0].role' must be a string, not a list",
    ),
    "classes booleans": (
        {"classes": [False, True]},
        "'classes[0]' must be an integer from 0 to 9, not false",
    ),
    "layers boolean": ({"layers": [784, 4, True]}, "'layers[2]' must be an integer >= 1, not true"),
    "hidden beyond the limit": ({"layers": [784, 10**6, 1]}, "1,000,000 hidden units, more than"),
    "activations of the other task": (
        {"activations": ["sigmoid", "softmax"]},
        "a binary model has",
    ),
    "metrics accuracy 2": (
        {"metrics": {"test": {"accuracy": 2}}},
        "'metrics.test.accuracy' must be",
    ),
    "interrupted 1": (
        {"interrupted": 1},
        "'interrupted' must be true or false, not an integer (1)",
    ),
    "format_version true": ({"format_version": True}, "unknown format version True"),
    "NUL in a path": ({"config": {"data_dir": "a\0b"}}, "NUL character"),
    "required null": ({"pixels": None}, "lacks pixels"),
}


def _metadata_text(meta, change):
    text = json.dumps({**meta, **change})
    replacements = {
        '"DEEP"': "[" * 100_000 + "]" * 100_000,
        '"BIGINT"': "9" * 5000,
        '"HUGEFLOAT"': "1e999",
        '"NAN"': "NaN",
    }
    for placeholder, value in replacements.items():
        text = text.replace(placeholder, value)
    return text


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_metadata_against_its_schema(saved, case):
    path, _ = saved
    change, words = BAD_METADATA[case]
    arrays = _arrays(path)
    arrays["metadata"] = np.array(_metadata_text(_meta_of(arrays), change))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ModelFileError) as info:
        checkpoint.load_model(path)
    message = str(info.value)
    assert message.startswith(f"model file {path}: metadata ")
    assert words in message
    assert "\n" not in message and len(message) < 300


@pytest.mark.parametrize("command", ["info", "evaluate"])
@pytest.mark.parametrize("case", ["config a string", "nested 100,000 deep", "class_names 5"])
def test_bad_metadata_is_one_line_on_the_command_line(saved, command, case):
    path, _ = saved
    arrays = _arrays(path)
    arrays["metadata"] = np.array(_metadata_text(_meta_of(arrays), BAD_METADATA[case][0]))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    result = run(command, path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: model file {path}: metadata ")
    assert result.stderr.count("\n") == 1


# --- bombs: sizes are checked before anything of that size is read ----------------------


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def _npy_header(shape, descr="<f8"):
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        f, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return f.getvalue()


def _zip(path, members, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", method, compresslevel=1) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _patch(path, member, **fields):
    """Rewrite ``member``'s fields in its local header and its directory entry."""
    raw = bytearray(path.read_bytes())
    offsets = {  # field: (offset in the local header, in the directory entry, format)
        "version": (4, 6, "<H"),
        "flags": (6, 8, "<H"),
        "file_size": (22, 24, "<I"),
    }
    name = member.encode()
    for signature, column, name_at in ((b"PK\x03\x04", 0, 30), (b"PK\x01\x02", 1, 46)):
        at = raw.find(signature)
        while raw[at + name_at : at + name_at + len(name)] != name:
            at = raw.find(signature, at + 1)
        for field, value in fields.items():
            struct.pack_into(offsets[field][2], raw, at + offsets[field][column], value)
    path.write_bytes(bytes(raw))


BOMB = 64 * 2**20  # bytes the bombs inflate to
BOUND = 4 * 2**20  # bytes loading them may cost


def _bomb(saved, header, inflated=BOMB, lie=False):
    """The saved model with W1.npy = ``header`` then zeros, deflated: ~300 KB on disk."""
    path, _ = saved
    members = _members(path)
    members["W1.npy"] = header + bytes(inflated - len(header))
    _zip(path, members, zipfile.ZIP_DEFLATED)
    if lie:  # the directory says the member is as long as the metadata's shape implies
        _patch(path, "W1.npy", file_size=len(header) + 784 * 4 * 8)
    return path


@pytest.mark.parametrize(
    "header, lie, words",
    [
        (
            (784, 10**12),
            False,
            "array W1 has shape (784, 1000000000000), the metadata says (784, 4)",
        ),
        ((784, BOMB // 784 // 8), False, "array W1 has shape (784, 10699)"),
        ((784, 4), False, "W1.npy holds 67,108,864 bytes; its .npy header implies 25,216"),
        ((784, 4), True, "Bad CRC-32"),
    ],
)
def test_bombs_are_rejected_before_inflating(saved, header, lie, words):
    path = _bomb(saved, _npy_header(header), lie=lie)
    assert path.stat().st_size < 1_000_000
    with memory_peak() as mem, pytest.raises(ModelFileError) as info:
        checkpoint.load_model(path)
    assert words in str(info.value)
    assert mem.peak < BOUND


def test_a_250_million_character_metadata_header_is_not_read(saved):
    path, _ = saved
    members = _members(path)
    members["metadata.npy"] = _npy_header((), descr="<U250000000") + b"{}"
    _zip(path, members)
    with memory_peak() as mem, pytest.raises(ModelFileError, match="250,000,000 characters"):
        checkpoint.load_model(path)
    assert mem.peak < BOUND


def test_metadata_over_a_million_characters(saved):
    path, _ = saved
    arrays = _arrays(path)
    meta = _meta_of(arrays)
    arrays["metadata"] = np.array(json.dumps({**meta, "note": "x" * metadata.MAX_CHARS}))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ModelFileError, match="characters long .at most 1,048,576"):
        checkpoint.load_model(path)


def test_info_on_a_bomb_is_one_line(saved):
    path = _bomb(saved, _npy_header((784, 10**12)), inflated=2**16)
    result = run("info", path)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "has shape (784, 1000000000000)" in result.stderr


def test_sparse_multi_gigabyte_model_file_is_not_read(tmp_path):
    path = tmp_path / "model.npz"
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(5 * 2**30)
    with memory_peak() as mem, pytest.raises(ModelFileError, match="more than any model"):
        checkpoint.load_model(path)
    assert mem.peak < BOUND


def test_an_archive_of_many_members(saved):
    path, _ = saved
    members = _members(path)
    members.update({f"x{i}.npy": b"" for i in range(1000)})
    _zip(path, members)
    with pytest.raises(ModelFileError, match="an archive of 1,005 members; a model file holds 5"):
        checkpoint.load_model(path)


# --- only our own errors come out -------------------------------------------------------


def _foreign(saved, case):
    """Rewrite the saved model as ``case``."""
    path, _ = saved
    members = _members(path)
    if case == "zip version 19.9":
        _patch(path, "W1.npy", version=199)
    elif case == "encrypted member":
        _patch(path, "W1.npy", flags=1)
    elif case == "bzip2 member":
        _zip(path, members, zipfile.ZIP_BZIP2)
    elif case in NPY_HEADERS:
        members["W1.npy"] = NPY_HEADERS[case]
        _zip(path, members)
    else:
        raise AssertionError(case)
    return path


def _raw_npy_header(text, version=(1, 0)):
    length = struct.pack("<H" if version == (1, 0) else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text


NPY_HEADERS = {
    "header unterminated": _raw_npy_header(b"{'descr': '<f8', 'fortran_order': (\n"),
    "header not a dict": _raw_npy_header(b"[1, 2, 3]\n"),
    "header deeply nested": _raw_npy_header(b"(" * 2000 + b")" * 2000 + b"\n"),
    "header bad descr": _raw_npy_header(
        b"{'descr': '<U99999999999999', 'fortran_order': False, 'shape': (784, 4)}\n"
    ),
    "header over NumPy's limit": _raw_npy_header(b" " * 20_000, version=(2, 0)),
    "header in version 3.0": _raw_npy_header(b"{}", version=(3, 0)),
    "not npy": b"hello",
}
FOREIGN = {
    "zip version 19.9": "uses a ZIP feature mnistnet does not read (zip file version 19.9)",
    "encrypted member": "W1.npy is encrypted",
    "bzip2 member": "uses ZIP compression method 12",
    "header unterminated": "W1.npy has a corrupt .npy header",
    "header not a dict": "W1.npy has a corrupt .npy header",
    "header deeply nested": "W1.npy has a corrupt .npy header",
    "header bad descr": "W1.npy has a corrupt .npy header",
    "header over NumPy's limit": "W1.npy has a 20,000-byte .npy header (at most 4,096)",
    "header in version 3.0": "W1.npy has .npy format version 3.0",
    "not npy": "W1.npy is not a .npy array",
}


@pytest.mark.parametrize("case", list(FOREIGN))
def test_foreign_errors_become_model_file_errors(saved, case):
    path = _foreign(saved, case)
    with pytest.raises(ModelFileError) as info:
        checkpoint.load_model(path)
    message = str(info.value)
    assert FOREIGN[case] in message
    assert "pickled" not in message and "\n" not in message


# --- the resume state: read within what its section allows -------------------------------


def _resumable(tmp_path):
    """A binary model file with the resume state of two epochs of adam (hand-made)."""
    from mnistnet import trainstate
    from mnistnet.history import EpochRecord

    params = model.init_params(784, 4, 1, seed=1)
    theta, _ = model.pack(params)
    optimizer = {"m": np.zeros_like(theta), "v": np.zeros_like(theta), "t": 8}
    rng = np.random.default_rng(0).bit_generator.state
    state = trainstate.TrainingState(2, theta, optimizer, rng)
    records = [EpochRecord(e, 0.5, 0.9, None, None, 0.4, 0.8, e * 1.0, 1e-3) for e in (1, 2)]
    section, arrays = trainstate.to_file(state, records, 2, "adam")
    meta = {**_meta(), "config": {"optimizer": "adam"}, "resume": section}
    checkpoint.save_model(tmp_path / "model.npz", params, meta, arrays)
    return tmp_path / "model.npz"


def test_a_resume_array_is_read_only_within_its_section(tmp_path):
    path = _resumable(tmp_path)
    assert checkpoint.load_resume(path)[2].state.epoch == 2
    members = _members(path)
    members["resume_m.npy"] = _npy_header((10**12,)) + bytes(64)
    _zip(path, members)
    checkpoint.load_model(path)  # the model itself is fine
    with memory_peak() as mem, pytest.raises(ModelFileError) as info:
        checkpoint.load_resume(path)
    assert "resume state array resume_m is float64 of shape (1000000000000,)" in str(info.value)
    assert mem.peak < BOUND


def test_a_resume_bomb_is_not_inflated(tmp_path):
    path = _resumable(tmp_path)
    members = _members(path)
    members["resume_v.npy"] = _npy_header((784 * 4 + 4 + 4 + 1,)) + bytes(BOMB)
    _zip(path, members, zipfile.ZIP_DEFLATED)
    with memory_peak() as mem, pytest.raises(ModelFileError, match="resume_v.npy holds 67,"):
        checkpoint.load_resume(path)
    assert mem.peak < BOUND


def test_a_resume_section_beyond_the_most_epochs(tmp_path):
    path = _resumable(tmp_path)
    arrays = _arrays(path)
    meta = _meta_of(arrays)
    meta["resume"]["epoch"] = meta["resume"]["weights_epoch"] = 10**9
    arrays["metadata"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ModelFileError, match="'resume.epoch' must be at most 100,000"):
        checkpoint.load_model(path)
