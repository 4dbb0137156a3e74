"""Byte-identical weights: the same command and seed give the same W1..b2 as before.

The hashes below were recorded on main before the refactor of issue 8
(``sha256`` of each array's bytes, in the order W1, b1, W2, b2). A change
that alters any weight of these runs, however slightly, fails here:
refactoring and speed work must keep the arithmetic exactly as it was.
Floating-point results depend on the BLAS kernel; CI and development
machines pin OpenBLAS to its Haswell kernels (``OPENBLAS_CORETYPE``).
The runs pass ``--threads 1``: more threads split the products differently
(:mod:`mnistnet.parallel`), which changes the last bits.
"""

import hashlib

import numpy as np
import pytest
from click.testing import CliRunner

from mnistnet.cli import main

SAMPLE = ["--dataset", "mnist-sample", "--no-plots", "--quiet", "--threads", "1"]
MODERN = ["--reduction", "mean", "--pixels", "unit", "--init", "xavier"]

RUNS = {
    "notebook-binary": ["train-binary", "--digits", "5", "8"],
    "momentum-float32": [
        "train-multiclass",
        *MODERN,
        "--optimizer",
        "momentum",
        "--batch-size",
        "64",
        "--lr",
        "0.1",
        "--lr-schedule",
        "cosine",
        "--dtype",
        "float32",
        "--epochs",
        "2",
        "--samples-per-class",
        "200",
        "--hidden",
        "64",
    ],
    "adam": [
        "train-binary",
        "--digits",
        "3",
        "7",
        *MODERN,
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--batch-size",
        "32",
        "--epochs",
        "2",
        "--hidden",
        "32",
    ],
    "augment-shift": [
        "train-multiclass",
        *MODERN,
        "--optimizer",
        "sgd",
        "--batch-size",
        "50",
        "--lr",
        "0.2",
        "--augment-shift",
        "2",
        "--weight-decay",
        "0.0001",
        "--lr-schedule",
        "step",
        "--epochs",
        "3",
        "--samples-per-class",
        "100",
        "--hidden",
        "48",
        "--seed",
        "7",
    ],
}

# Recorded with one BLAS thread (what --threads 1 sets): OpenBLAS splits some
# products differently with more threads, which changes the last bits of float32 results.
GOLDEN = {
    "notebook-binary": [
        "6a2edf13094c7a33",
        "adc202943c18215a",
        "748cce3c7fef56a8",
        "1e3c38a823adaa1f",
    ],
    "momentum-float32": [
        "dc89f4d271442c80",
        "8130cdbde124450d",
        "5c0402de896cc42f",
        "64ae19254e55fdfd",
    ],
    "adam": ["f331a8d1710f1fcd", "7dc652bf2e15e87e", "96388dfd8e164999", "270ed3e844a93543"],
    "augment-shift": [
        "360c91e0fd2d5115",
        "1400d53a5ca013e7",
        "4fc59bde003afb2f",
        "2932f3bcba1b3982",
    ],
}


def weight_hashes(path):
    with np.load(path, allow_pickle=False) as z:
        return [
            hashlib.sha256(z[name].tobytes()).hexdigest()[:16] for name in ("W1", "b1", "W2", "b2")
        ]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_weights_are_byte_identical_to_the_recorded_run(name, tmp_path):
    out = tmp_path / name
    result = CliRunner().invoke(main, [*RUNS[name], *SAMPLE, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert weight_hashes(out / "model.npz") == GOLDEN[name]
