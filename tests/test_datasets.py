"""The registry, data directories, local verification and splits (no network)."""

import gzip
import hashlib

import numpy as np
import pytest

from mnistnet import datasets
from mnistnet.datasets import (
    DATASETS,
    DatasetSpec,
    FileSpec,
    class_names,
    fetch,
    load_split,
    resolve_data_dir,
    resolve_mirrors,
)
from mnistnet.errors import DatasetError, IdxFormatError
from mnistnet.idx import write_idx

SAMPLE_TRAIN_COUNTS = [795, 906, 788, 811, 799, 702, 798, 853, 753, 795]
SAMPLE_TEST_COUNTS = [206, 221, 203, 221, 181, 161, 216, 217, 191, 183]


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _pinned_registry(directory, name="tiny"):
    """A registry pinning the files in ``directory`` (as a test's 'official' dataset)."""
    files = []
    for spec in DATASETS["idx"].files:
        raw = (directory / spec.name).read_bytes()
        files.append(FileSpec(spec.role, spec.name, _sha(raw), _sha(gzip.decompress(raw))))
    return {name: DatasetSpec(name=name, files=tuple(files))}


def test_registry_has_the_four_datasets_with_both_hashes():
    assert set(DATASETS) == {"mnist", "fashion-mnist", "mnist-sample", "idx"}
    for name in ("mnist", "fashion-mnist"):
        spec = DATASETS[name]
        assert [f.role for f in spec.files] == list(datasets.ROLES)
        assert all(len(f.sha256) == 64 and len(f.content_sha256) == 64 for f in spec.files)
        assert spec.mirrors and all(m.endswith("/") for m in spec.mirrors)
    assert DATASETS["mnist"].mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"


def test_class_names():
    assert class_names("mnist") == [str(d) for d in range(10)]
    assert class_names("mnist-sample") == class_names("idx") == class_names("mnist")
    names = class_names("fashion-mnist")
    assert len(names) == 10 and names[0] == "T-shirt/top" and names[9] == "Ankle boot"
    with pytest.raises(DatasetError, match="unknown dataset 'emnist'"):
        class_names("emnist")


@pytest.mark.parametrize(
    ("split", "n", "counts"),
    [("train", 8000, SAMPLE_TRAIN_COUNTS), ("test", 2000, SAMPLE_TEST_COUNTS)],
)
def test_mnist_sample_splits(split, n, counts):
    data = load_split("mnist-sample", split)
    assert data.images.shape == (n, 28, 28) and data.images.dtype == np.uint8
    assert data.labels.shape == (n,) and data.labels.dtype == np.uint8
    assert np.bincount(data.labels, minlength=10).tolist() == counts
    assert [f.role for f in data.files] == ["train-images", "train-labels"]
    assert all(f.verified for f in data.files)


def test_mnist_sample_ignores_data_dir_and_needs_no_network(tmp_path):
    files = fetch("mnist-sample", data_dir=tmp_path / "unused", mirrors=["http://127.0.0.1:9/"])
    assert [f.name for f in files] == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert files[0].sha256 == DATASETS["mnist-sample"].files[0].sha256
    assert not (tmp_path / "unused").exists()


def test_data_dir_precedence(tmp_path, monkeypatch):
    import pooch

    monkeypatch.setattr(pooch, "os_cache", lambda project: tmp_path / "os-cache" / project)
    monkeypatch.setenv("MNISTNET_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir("mnist") == tmp_path / "env" / "mnist"
    assert resolve_data_dir("mnist", tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("MNISTNET_DATA_DIR")
    assert resolve_data_dir("fashion-mnist") == tmp_path / "os-cache" / "mnistnet" / "fashion-mnist"
    assert list(tmp_path.iterdir()) == []  # resolving creates nothing


def test_idx_needs_a_data_dir():
    with pytest.raises(DatasetError) as info:
        fetch("idx")
    assert str(info.value).startswith("dataset idx needs a data directory holding train-images-")
    assert info.value.setting == "data_dir"  # the command line names its flag


def test_mirror_order(monkeypatch):
    monkeypatch.setenv("MNISTNET_MIRROR", "http://env-a/ http://env-b/")
    got = resolve_mirrors("mnist", ["http://flag/", "http://env-b/"])
    assert got[:3] == ["http://flag/", "http://env-b/", "http://env-a/"]
    assert got[3:] == list(DATASETS["mnist"].mirrors)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_dataset_is_checked_and_hashed_not_pinned(make_idx_dataset, tmp_path, gz):
    directory = make_idx_dataset(tmp_path / "mine", n_train=12, n_test=5, gz=gz)
    files = fetch("idx", data_dir=directory)
    assert [f.role for f in files] == list(datasets.ROLES)
    assert not any(f.verified for f in files)
    for info in files:
        raw = (directory / info.name).read_bytes()
        assert info.size == len(raw) and info.sha256 == _sha(raw)
        assert info.name.endswith(".gz") == gz
    test = load_split("idx", "test", data_dir=directory)
    assert test.images.shape == (5, 28, 28) and test.labels.shape == (5,)
    assert [f.role for f in test.files] == ["test-images", "test-labels"]


def test_idx_dataset_with_missing_files(make_idx_dataset, tmp_path):
    directory = make_idx_dataset(tmp_path / "mine")
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]"):
        fetch("idx", data_dir=directory)
    with pytest.raises(DatasetError, match="does not exist"):
        fetch("idx", data_dir=tmp_path / "nowhere")


def test_idx_dataset_rejects_other_image_sizes(make_idx_dataset, tmp_path):
    directory = make_idx_dataset(tmp_path / "mine")
    write_idx(directory / "train-images-idx3-ubyte.gz", np.zeros((20, 32, 32), np.uint8))
    with pytest.raises(IdxFormatError, match="32x32, expected 28x28"):
        fetch("idx", data_dir=directory)


def test_idx_dataset_rejects_count_mismatch(make_idx_dataset, tmp_path):
    directory = make_idx_dataset(tmp_path / "mine")
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(IdxFormatError, match="counts differ"):
        load_split("idx", "test", data_dir=directory)


def test_recompressed_or_plain_copy_is_accepted_by_content_hash(make_idx_dataset, tmp_path):
    """Debian's case: different .gz bytes, identical IDX content."""
    official = make_idx_dataset(tmp_path / "official")
    registry = _pinned_registry(official)
    copy = tmp_path / "copy"
    copy.mkdir()
    for i, spec in enumerate(registry["tiny"].files):
        content = gzip.decompress((official / spec.name).read_bytes())
        if i % 2:  # recompressed
            (copy / spec.name).write_bytes(gzip.compress(content, compresslevel=1, mtime=1))
        else:  # plain IDX under the official name without .gz
            (copy / spec.name.removesuffix(".gz")).write_bytes(content)
    files = fetch("tiny", data_dir=copy, registry=registry)
    assert all(f.verified for f in files)
    assert [f.name.endswith(".gz") for f in files] == [False, True, False, True]
    split = load_split("tiny", "train", data_dir=copy, registry=registry)
    assert split.images.shape == (20, 28, 28)


def test_local_file_failing_verification_is_reported_not_deleted(make_idx_dataset, tmp_path):
    directory = make_idx_dataset(tmp_path / "official")
    registry = _pinned_registry(directory)
    bad = directory / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(b"<html><body>403 Forbidden</body></html>")
    with pytest.raises(DatasetError, match="does not match the pinned hashes.*HTML") as info:
        fetch("tiny", data_dir=directory, registry=registry)
    assert str(bad) in str(info.value) and "the idx dataset" in str(info.value)
    assert info.value.setting == "dataset"
    assert bad.exists()


def test_unknown_split():
    with pytest.raises(DatasetError, match="no split 'valid'"):
        load_split("mnist-sample", "valid")


def test_file_info_to_dict_is_json_ready():
    info = fetch("mnist-sample")[1]
    d = info.to_dict()
    assert set(d) == {"role", "name", "path", "size", "sha256", "content_sha256", "verified"}
    assert d["content_sha256"] == DATASETS["mnist-sample"].files[1].content_sha256
