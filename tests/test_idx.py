"""IDX reading and writing: round trips, every bad-file error, bounded reading."""

import gzip
import os
import resource
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from helpers import memory_peak, run
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mnistnet.datasets import DatasetSpec, load_split
from mnistnet.errors import DatasetError, IdxFormatError
from mnistnet.idx import (
    MAX_DATA_BYTES,
    parse_idx,
    read_idx,
    read_images,
    read_labels,
    read_pair,
    to_bytes,
    write_idx,
)


def _header(code, *shape):
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("gz", [True, False])
def test_images_and_labels_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 7], dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(tmp_path / f"img{suffix}", images)
    write_idx(tmp_path / f"lab{suffix}", labels)

    got_images, got_labels = read_pair(tmp_path / f"img{suffix}", tmp_path / f"lab{suffix}")

    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_images.dtype == np.uint8 and got_images.flags.writeable
    assert (tmp_path / f"img{suffix}").read_bytes()[:2] == (b"\x1f\x8b" if gz else b"\x00\x00")


def test_header_is_the_official_layout():
    data = to_bytes(np.zeros((2, 28, 28), dtype=np.uint8))
    assert data[:16] == bytes.fromhex("00000803 00000002 0000001c 0000001c")
    assert len(data) == 16 + 2 * 784


def test_gzip_is_detected_by_magic_not_by_name(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "plain-name", labels, compress=True)
    write_idx(tmp_path / "gz-name.gz", labels, compress=False)
    np.testing.assert_array_equal(read_labels(tmp_path / "plain-name"), labels)
    np.testing.assert_array_equal(read_labels(tmp_path / "gz-name.gz"), labels)


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from(["u1", "i1", ">i2", "<i4", "f4", ">f8"]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    )
)
def test_any_supported_array_round_trips(array):
    got = parse_idx(to_bytes(array))
    assert got.shape == array.shape
    assert got.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, array)


def test_write_rejects_what_idx_cannot_store(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="shape"):
        write_idx(tmp_path / "x", np.uint8(3))


BAD_FILES = {
    "wrong magic": (b"\x12\x34\x08\x01" + bytes(10), "not an IDX file"),
    "wrong dtype code": (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "data type code 0x07"),
    "zero dimensions": (b"\x00\x00\x08\x00", "zero dimensions"),
    "255 dimensions": (_header(0x08, *[0] * 255), "255 dimensions .* at most 32"),
    "truncated header": (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated header"),
    "truncated data": (_header(0x08, 2, 28, 28) + bytes(1000), "truncated: header says 2x28x28"),
    "too long": (_header(0x08, 3) + bytes(5), "too long: more data after the 3 uint8 "),
    "html page": (b"<!DOCTYPE html><html><body>Not Found</body></html>", "HTML or XML page"),
    "s3 xml error": (b'<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>', "HTML or XML"),
    "text": (b"Access denied\n", "not an IDX file but text"),
    "empty": (b"", "empty file"),
    "other bytes": (b"\x89PNG\r\n\x1a\n" + bytes(20), "unknown bytes starting 89 50 4e 47"),
    "corrupt gzip": (b"\x1f\x8b\x08\x00" + bytes(30), "corrupt gzip data"),
    "truncated gzip": (gzip.compress(to_bytes(np.zeros(100, np.uint8)))[:-12], "corrupt gzip"),
    "gzip twice": (gzip.compress(gzip.compress(to_bytes(np.zeros(3, np.uint8)))), "twice"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_names_the_file_and_the_problem(tmp_path, case):
    data, message = BAD_FILES[case]
    path = _write(tmp_path / "train-labels-idx1-ubyte", data)
    with pytest.raises(IdxFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_labels_outside_0_to_9(tmp_path):
    write_idx(tmp_path / "labels", np.array([1, 2, 10, 3], dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="labels outside 0..9: 10 at index 2"):
        read_labels(tmp_path / "labels")


def test_labels_must_be_uint8_and_1d(tmp_path):
    write_idx(tmp_path / "f", np.zeros(3, dtype=np.float32))
    with pytest.raises(IdxFormatError, match="uint8"):
        read_labels(tmp_path / "f")
    write_idx(tmp_path / "img", np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="is this an images file"):
        read_labels(tmp_path / "img")


def test_images_must_be_28x28_uint8(tmp_path):
    write_idx(tmp_path / "big", np.zeros((2, 32, 32), dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="32x32, expected 28x28"):
        read_images(tmp_path / "big")
    write_idx(tmp_path / "labels", np.zeros(3, dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="is this a labels file"):
        read_images(tmp_path / "labels")
    write_idx(tmp_path / "float", np.zeros((2, 28, 28), dtype=np.float64))
    with pytest.raises(IdxFormatError, match="uint8"):
        read_images(tmp_path / "float")


def test_image_and_label_counts_must_agree(tmp_path):
    write_idx(tmp_path / "images", np.zeros((3, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "labels", np.zeros(4, dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="counts differ: .*3 images.*4 labels"):
        read_pair(tmp_path / "images", tmp_path / "labels")


def test_unreadable_file(tmp_path):
    with pytest.raises(IdxFormatError, match="cannot read"):
        read_idx(tmp_path / "missing")
    with pytest.raises(IdxFormatError, match="cannot read"):
        read_idx(tmp_path)


def test_huge_sizes_in_a_header_do_not_allocate():
    data = _header(0x0E, 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(8)
    with pytest.raises(IdxFormatError, match="more than mnistnet reads"):
        parse_idx(data)


def test_gzip_twice_is_named_not_undone(tmp_path, make_idx_dataset):
    twice = gzip.compress(gzip.compress(to_bytes(np.zeros(20, np.uint8))))
    path = _write(tmp_path / "labels.gz", twice)
    with pytest.raises(IdxFormatError, match="compressed twice"):
        read_idx(path)
    # The datasets gunzip while hashing, then parse: the parse must not gunzip again.
    directory = make_idx_dataset(tmp_path / "data")
    _write(directory / "train-labels-idx1-ubyte.gz", twice)
    with pytest.raises(IdxFormatError, match="compressed twice"):
        load_split("idx", "train", data_dir=directory)


# --- bounded reading: a file costs what its header announces, never what it inflates to --


BOMB_BYTES = 64 * 2**20  # what the bombs below inflate to
BOUND = 4 * 2**20  # what reading them may cost


def _gzip_bomb(head, inflated=BOMB_BYTES):
    """Gzip of ``head`` then zeros up to ``inflated`` bytes: ~300 KB on disk."""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    chunks = [z.compress(head)]
    zeros = bytes(2**20)
    chunks += [z.compress(zeros) for _ in range((inflated - len(head)) // len(zeros))]
    return b"".join([*chunks, z.flush()])


@pytest.fixture(scope="module")
def labels_bomb():
    """300 labels, says the header; 64 MiB of zeros, says the gzip stream."""
    return _gzip_bomb(_header(0x08, 300))


def test_gzip_bomb_is_not_inflated(tmp_path, labels_bomb):
    path = _write(tmp_path / "train-labels-idx1-ubyte.gz", labels_bomb)
    for read in (read_idx, read_labels, lambda p: parse_idx(p.read_bytes())):
        with memory_peak() as mem, pytest.raises(IdxFormatError, match="too long"):
            read(path)
        assert mem.peak < BOUND


def test_header_beyond_the_limit_is_rejected_before_the_data(tmp_path):
    n = MAX_DATA_BYTES // 784 + 1  # one image too many
    path = _write(tmp_path / "images.gz", _gzip_bomb(_header(0x08, n, 28, 28)))
    with memory_peak() as mem, pytest.raises(IdxFormatError, match="more than mnistnet reads"):
        read_images(path)
    assert mem.peak < BOUND


def test_sparse_multi_gigabyte_files_are_not_read_whole(tmp_path):
    """5 GB files (sparse: no disk used) are rejected reading a few bytes of each.

    In a child process with 512 MiB of address space: reading one whole ends in
    MemoryError there, not in swapping here.
    """
    size = 5 * 2**30
    heads = {  # name: (first bytes, read_idx's error, how much read_file may return)
        "text": (b"not IDX at all", "not an IDX file", 512),
        "labels": (_header(0x08, 3) + bytes(3), "too long", 8 + 3 + 1),
        "gzip": (b"\x1f\x8b\x08\x00", "bytes of gzip data, more than", None),
    }
    for name, (head, _, _) in heads.items():
        with open(tmp_path / name, "wb") as f:
            f.write(head)
            f.truncate(size)
    script = textwrap.dedent(
        f"""
        from mnistnet.errors import IdxFormatError
        from mnistnet.idx import read_idx, read_file
        for name in {list(heads)!r}:
            for read in (read_idx, read_file):
                try:
                    print(name, read.__name__, len(read({str(tmp_path)!r} + "/" + name)))
                except IdxFormatError as exc:
                    print(name, read.__name__, exc)
        """
    )

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (512 * 2**20, 512 * 2**20))

    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        preexec_fn=limit_memory,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for name, (_, message, read_bytes) in heads.items():
        assert message in lines.pop(0), out.stdout  # read_idx
        expected = f"{name} read_file {read_bytes}" if read_bytes else message
        assert expected in lines.pop(0), out.stdout


def test_idx_dataset_reads_through_the_bounded_reader(tmp_path, make_idx_dataset, labels_bomb):
    directory = make_idx_dataset(tmp_path / "data")
    _write(directory / "train-labels-idx1-ubyte.gz", labels_bomb)
    with memory_peak() as mem, pytest.raises(IdxFormatError, match="too long"):
        load_split("idx", "train", data_dir=directory)
    assert mem.peak < BOUND
    with memory_peak() as mem:
        result = run("download", "--dataset", "idx", "--data-dir", directory)
    assert result.exit_code == 1 and "too long" in result.output
    assert mem.peak < BOUND + 2**20  # the CLI's own imports


def test_pinned_dataset_in_the_cache_reads_through_the_bounded_reader(
    tmp_path, pinned_idx_dataset, labels_bomb
):
    payload, files = pinned_idx_dataset
    registry = {"tiny": DatasetSpec(name="tiny", files=files)}
    cache = tmp_path / "cache"
    cache.mkdir()
    for name, data in payload.items():
        _write(cache / name, data)
    _write(cache / "train-labels-idx1-ubyte.gz", labels_bomb)
    with memory_peak() as mem, pytest.raises(DatasetError, match="does not match the pinned"):
        load_split("tiny", "train", data_dir=cache, registry=registry)
    assert mem.peak < BOUND
