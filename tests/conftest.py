"""Shared fixtures. Each block belongs to one part of the tool; add yours in a new block."""

import gzip
import hashlib
import socket
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from pytest_httpserver import HTTPServer

# Timing is not what these tests check: a busy CI machine must not fail them.
settings.register_profile("mnistnet", deadline=None)
settings.load_profile("mnistnet")

# --- data layer (issue 2): offline isolation and tiny IDX datasets ----------------------


@pytest.fixture(autouse=True)
def _isolated_data_env(tmp_path_factory, monkeypatch):
    """No test writes to the real user cache or reads the user's mirror list."""
    monkeypatch.setenv("MNISTNET_DATA_DIR", str(tmp_path_factory.mktemp("mnistnet-cache")))
    monkeypatch.delenv("MNISTNET_MIRROR", raising=False)


IDX_NAMES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "test-images": "t10k-images-idx3-ubyte",
    "test-labels": "t10k-labels-idx1-ubyte",
}


def write_idx_dataset(directory, n_train=20, n_test=10, gz=True, seed=0):
    """Write four tiny IDX files (official names) of random 28x28 digits into ``directory``.

    Labels cycle through 0..9 so every class is present; pixels are random uint8.
    Returns ``directory`` as a Path.
    """
    from mnistnet.idx import write_idx

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        write_idx(directory / (IDX_NAMES[f"{split}-images"] + suffix), images)
        write_idx(directory / (IDX_NAMES[f"{split}-labels"] + suffix), labels)
    return directory


@pytest.fixture
def make_idx_dataset():
    """``make_idx_dataset(dir, n_train=20, n_test=10, gz=True, seed=0) -> dir``."""
    return write_idx_dataset


@pytest.fixture
def idx_dataset(tmp_path):
    """A directory holding a tiny gzipped IDX dataset: 20 train, 10 test images."""
    return write_idx_dataset(tmp_path / "idx-data")


@pytest.fixture(scope="module")
def _module_server():
    # One server per module: stopping one takes werkzeug's 0.5 s poll interval.
    with HTTPServer(host="127.0.0.1", port=0) as httpserver:
        yield httpserver


@pytest.fixture
def server(_module_server):
    """An HTTP server on 127.0.0.1 with no handlers and an empty log."""
    _module_server.clear()
    yield _module_server
    _module_server.clear()


@pytest.fixture
def dead_url():
    """A 127.0.0.1 URL with nothing listening: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture
def pinned_idx_dataset(make_idx_dataset, tmp_path):
    """A tiny gzipped dataset as ``({file name: bytes}, FileSpecs pinning both hashes)``."""
    from mnistnet.datasets import DATASETS, FileSpec

    directory = make_idx_dataset(tmp_path / "official", n_train=20, n_test=10)
    payload, files = {}, []
    for spec in DATASETS["idx"].files:
        raw = (directory / spec.name).read_bytes()
        payload[spec.name] = raw
        content_sha256 = hashlib.sha256(gzip.decompress(raw)).hexdigest()
        files.append(
            FileSpec(spec.role, spec.name, hashlib.sha256(raw).hexdigest(), content_sha256)
        )
    return payload, tuple(files)


# --- end of data layer block ------------------------------------------------------------


# --- evaluate, info and pictures (issue 4): tiny trained models on disk -----------------


def train_tiny_model(out_dir, task, classes, *, hidden=16, epochs=8, samples_per_class=300, seed=0):
    """Train a small model on the bundled sample as ``mnistnet train-*`` does; a few tenths of s.

    The run goes through :mod:`mnistnet.experiment` (``run_training``, then
    ``save_run`` with the real ``build_metadata``), so ``evaluate`` and
    ``info`` see exactly what a training run writes. Returns the model's path.
    """
    from mnistnet import experiment
    from mnistnet.config import TrainConfig

    config = TrainConfig(
        task=task,
        digits=tuple(classes) if task == "binary" else None,
        dataset="mnist-sample",
        samples_per_class=samples_per_class,
        hidden=hidden,
        epochs=epochs,
        lr=1e-3,
        optimizer="adam",
        batch_size=64,
        pixels="unit",
        init="xavier",
        seed=seed,
        out=str(out_dir),
    )
    train, _, test = experiment.load_data(config)  # no validation split
    result = experiment.run_training(config, train, test)
    paths, _ = experiment.save_run(result, config.out_dir)
    return Path(paths["model"])


@pytest.fixture(scope="session")
def binary_model(tmp_path_factory):
    """Path of a 784-16-1 model of 5 vs 8 (5 -> label 0, 8 -> label 1), trained once."""
    return train_tiny_model(tmp_path_factory.mktemp("binary"), "binary", [5, 8])


@pytest.fixture(scope="session")
def multiclass_model(tmp_path_factory):
    """Path of a 784-16-10 model of the ten digits, trained once."""
    return train_tiny_model(tmp_path_factory.mktemp("multiclass"), "multiclass", range(10))


# --- end of evaluate block --------------------------------------------------------------


# --- serve (issue 14): one small model trained by the CLI, for the API and the browser ---


@pytest.fixture(scope="session")
def serve_model(tmp_path_factory):
    """A ten-class model trained by ``mnistnet train-multiclass`` on the bundled digits.

    The fast recipe, shortened (64 hidden units, 6 epochs, about half a
    second): good enough to read a digit drawn on the page (~90% on the
    test digits).
    """
    from helpers import run

    out = tmp_path_factory.mktemp("serve-model")
    config = Path(__file__).resolve().parents[1] / "configs" / "multiclass-fast.toml"
    result = run(
        *("train-multiclass", "--config", config, "--dataset", "mnist-sample"),
        *("--epochs", 6, "--hidden", 64, "--out", out, "--no-plots", "--quiet"),
    )
    assert result.exit_code == 0, result.output
    return out / "model.npz"


# --- end of serve block -----------------------------------------------------------------
