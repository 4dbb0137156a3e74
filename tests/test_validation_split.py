"""benchmarks/validation_split.py: the training images cut into a validation dataset."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mnistnet.idx import read_pair, write_idx

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "validation_split.py"


def _script():
    spec = importlib.util.spec_from_file_location("validation_split", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_last_images_become_the_test_split_and_the_rest_the_train_split(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 30).astype(np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)  # plain and gzipped sources both work
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    _script().main([str(tmp_path), str(tmp_path / "val"), "--holdout", "8"])
    train = read_pair(tmp_path / "val/train-images-idx3-ubyte.gz",
                      tmp_path / "val/train-labels-idx1-ubyte.gz")  # fmt: skip
    test = read_pair(tmp_path / "val/t10k-images-idx3-ubyte.gz",
                     tmp_path / "val/t10k-labels-idx1-ubyte.gz")  # fmt: skip
    np.testing.assert_array_equal(train[0], images[:22])
    np.testing.assert_array_equal(train[1], labels[:22])
    np.testing.assert_array_equal(test[0], images[22:])
    np.testing.assert_array_equal(test[1], labels[22:])


def test_a_holdout_as_large_as_the_dataset_is_refused(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(SystemExit, match="between 1 and 4"):
        _script().main([str(tmp_path), str(tmp_path / "val"), "--holdout", "5"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]  # nothing written  # fmt: skip


def _source(folder, n=12):
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", np.full((n, 28, 28), 7, np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 10)
    return folder


def test_a_destination_that_holds_files_is_refused_and_left_alone(tmp_path):
    source = _source(tmp_path / "src")
    out = tmp_path / "val"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not empty"):
        _script().main([str(source), str(out), "--holdout", "2"])
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit, match="not a folder"):
        _script().main([str(source), str(tmp_path / "file"), "--holdout", "2"])


def test_an_empty_destination_is_filled(tmp_path):
    source = _source(tmp_path / "src")
    (tmp_path / "val").mkdir()
    _script().main([str(source), str(tmp_path / "val"), "--holdout", "2"])
    assert len(list((tmp_path / "val").iterdir())) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "val"]  # no staging left


def test_a_broken_source_is_one_line_and_writes_nothing(tmp_path):
    source = _source(tmp_path / "src")
    data = (source / "train-images-idx3-ubyte.gz").read_bytes()
    (source / "train-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SystemExit) as exc:
        _script().main([str(source), str(tmp_path / "val"), "--holdout", "2"])
    message = str(exc.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert "train-images-idx3-ubyte.gz" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    with pytest.raises(SystemExit, match="no train-images"):
        _script().main([str(tmp_path / "missing"), str(tmp_path / "val")])
