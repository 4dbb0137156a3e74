"""Fuzzing the readers of untrusted files: only mnistnet's own errors, bounded memory.

Three entry points, each fed random bytes, mutated valid files, hand-made
headers, archives and tables, and gzip or deflate bombs:

- IDX files: ``read_idx``, ``read_images``, ``read_labels``, ``parse_idx`` on
  the bytes, and the datasets' way (``read_file``, ``decompress``,
  ``parse_content``);
- model files: ``load_model`` and ``load_resume`` (the resume state);
- config files: ``read_config_file``, then ``resolve_config`` for each task.

Every case must end in a returned value that is right, or a
:class:`~mnistnet.errors.MnistnetError` of one line; anything else fails the
test, and Hypothesis shrinks it to a small example. Each case's memory (what
tracemalloc sees: Python objects and NumPy arrays) must stay under a few MiB,
whatever the file claims.

The normal suite runs a small budget. The long mode runs N cases per entry
point and prints a summary line for each::

    MNISTNET_FUZZ_EXAMPLES=10000 /usr/bin/time -v pytest tests/test_fuzz.py -s -p no:cacheprovider
"""

import gzip
import io
import json
import math
import os
import struct
import tracemalloc
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mnistnet import checkpoint, idx, metadata, model, trainstate
from mnistnet.config import SETTINGS, read_config_file, resolve_config
from mnistnet.errors import MnistnetError
from mnistnet.history import EpochRecord
from mnistnet.tasks import TASKS

LONG = int(os.environ.get("MNISTNET_FUZZ_EXAMPLES", "0"))
MEMORY_BOUND = 8 * 2**20  # bytes one case may cost; no input inflates to more than 1 MiB


CHUNK = 500  # cases per Hypothesis run in the long mode: a run keeps all its cases in memory


def _settings(normal_budget):
    return settings(
        max_examples=min(LONG, CHUNK) if LONG else normal_budget,
        deadline=None,
        database=None if LONG else settings.default.database,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _run(check):
    """Run the Hypothesis test ``check`` once, or in the long mode until LONG cases ran.

    The long mode traces memory through each run of CHUNK cases: starting and
    stopping tracemalloc around each call, as the normal suite does (it is
    faster), leaks about 37 KB a time in CPython 3.11 when the call recurses
    deeply (a config nested 5,000 deep), which 10,000 cases add up.
    """
    for _ in range(-(-LONG // CHUNK) if LONG else 1):
        if LONG:
            tracemalloc.start()
        try:
            check()
        finally:
            if LONG:
                tracemalloc.stop()


class Outcomes:
    """Counts what each case ended in, and the most memory one call took."""

    def __init__(self, name):
        self.name, self.counts, self.peak = name, Counter(), 0

    def run(self, func, *args):
        """``func(*args)`` under tracemalloc; its result, or None after a project error."""
        session = tracemalloc.is_tracing()  # the long mode traces whole Hypothesis runs
        if session:
            tracemalloc.reset_peak()
        else:
            tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        try:
            result = func(*args)
        except MnistnetError as exc:
            self.counts[type(exc).__name__] += 1
            assert "\n" not in str(exc), str(exc)
            return None
        finally:
            peak = tracemalloc.get_traced_memory()[1] - before
            if not session:
                tracemalloc.stop()
            self.peak = max(self.peak, peak)
            assert peak < MEMORY_BOUND, f"{func.__name__} took {peak:,} bytes"
        self.counts["accepted"] += 1
        return result

    def report(self, cases):
        errors = ", ".join(f"{n:,} {kind}" for kind, n in sorted(self.counts.items()))
        line = (
            f"{self.name}: {cases:,} cases, {sum(self.counts.values()):,} calls: {errors}; "
            f"0 foreign exceptions; peak traced memory of one call {self.peak / 2**20:.2f} MiB"
        )
        print("\n" + line)


# --- byte-level mutations -----------------------------------------------------------------


@st.composite
def mutated(draw, files):
    """A file from ``files`` with a few bytes flipped, cut, inserted or appended."""
    data = bytearray(draw(files))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "append"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            data += draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def _deflate(head, zeros, container):
    """``head`` then ``zeros`` zero bytes, deflated (a bomb when ``zeros`` is large)."""
    z = zlib.compressobj(1, zlib.DEFLATED, container)
    return z.compress(head) + z.compress(bytes(zeros)) + z.flush()


# --- IDX files ----------------------------------------------------------------------------


@st.composite
def idx_headers(draw):
    code = draw(st.sampled_from([*idx.DTYPES, 0x00, 0x07, 0x0A, 0xFF]))
    ndim = draw(st.integers(0, 4) | st.sampled_from([33, 255]))
    small = st.lists(st.integers(0, 40) | st.integers(0, 2**32 - 1), min_size=ndim, max_size=ndim)
    if ndim <= 4:
        return bytes([0, 0, code, ndim]) + struct.pack(f">{ndim}I", *draw(small))
    return bytes([0, 0, code, ndim]) + draw(st.binary(min_size=4 * ndim, max_size=4 * ndim))


@st.composite
def valid_idx(draw):
    """A well-formed IDX file of any supported dtype, its data drawn as one block of bytes."""
    dtype = np.dtype(draw(st.sampled_from(["u1", "i1", ">i2", "<i4", "f4", ">f8"])))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6))
    size = dtype.itemsize * int(np.prod(shape))
    data = draw(st.binary(min_size=size, max_size=size))
    return idx.to_bytes(np.frombuffer(data, dtype=dtype).reshape(shape))


VALID_IDX = valid_idx()
IDX_CONTENT = st.one_of(
    st.binary(max_size=1024),
    st.tuples(idx_headers(), st.binary(max_size=256)).map(b"".join),
    VALID_IDX,
    mutated(VALID_IDX),
)
IDX_FILES = st.one_of(
    IDX_CONTENT,
    IDX_CONTENT.map(gzip.compress),
    mutated(IDX_CONTENT.map(gzip.compress)),
    IDX_CONTENT.map(gzip.compress).map(gzip.compress),
    st.tuples(idx_headers(), st.integers(0, 2**20)).map(lambda t: _deflate(*t, container=31)),
    st.binary(max_size=256).map(lambda b: idx.GZIP_MAGIC + b),
)


def _the_datasets_way(path):
    return idx.parse_content(idx.decompress(idx.read_file(path), str(path)), str(path))


def _parse_the_bytes(path):
    return idx.parse_idx(path.read_bytes(), str(path))


IDX_READERS = (idx.read_idx, idx.read_images, idx.read_labels, _parse_the_bytes, _the_datasets_way)


def test_idx_readers_raise_only_their_own_errors(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "train-images-idx3-ubyte"
    outcomes, cases = Outcomes("IDX files"), Counter()

    @_settings(normal_budget=100)
    @given(IDX_FILES)
    def check(data):
        cases["n"] += 1
        path.write_bytes(data)
        for read in IDX_READERS:
            array = outcomes.run(read, path)
            if array is not None:  # accepted: then it must be exactly the file's content
                content = gzip.decompress(data) if data[:2] == idx.GZIP_MAGIC else data
                assert idx.to_bytes(array) == content
                assert array.flags.writeable and array.dtype.isnative

    _run(check)
    outcomes.report(cases["n"])


# --- model files --------------------------------------------------------------------------


PARAMS = model.init_params(784, 2, 1, seed=0)


def _resume_state():
    """The resume section and arrays of two epochs of adam, the last epoch's weights saved."""
    theta, _ = model.pack(PARAMS)
    optimizer = {"m": np.zeros_like(theta), "v": np.ones_like(theta), "t": 8}
    rng = np.random.default_rng(0).bit_generator.state
    state = trainstate.TrainingState(2, theta + 1, optimizer, rng)
    records = [EpochRecord(e, 0.5, 0.9, 0.6, 0.8, None, None, e * 1.0, 1e-3) for e in (1, 2)]
    return trainstate.to_file(state, records, 1, "adam")


RESUME_SECTION, RESUME_ARRAYS = _resume_state()


def _valid_metadata():
    return {
        "format": metadata.FORMAT,
        "format_version": metadata.FORMAT_VERSION,
        "mnistnet_version": "0.1.0",
        "run_id": "20260101-000000-0123abcd",
        "task": "binary",
        "classes": [5, 8],
        "class_names": ["5", "8"],
        "layers": [784, 2, 1],
        "activations": ["sigmoid", "sigmoid"],
        "loss": "binary_cross_entropy",
        "pixels": "unit",
        "dtype": "float64",
        "config": {
            "hidden": 2,
            "lr": 1e-3,
            "digits": [5, 8],
            "data_dir": None,
            "optimizer": "adam",
        },
        "dataset": {"name": "mnist-sample", "files": [{"role": "train-images", "size": 1}]},
        "validation": {"requested": 4, "n": 4, "per_class": [2, 2], "rule": "the last"},
        "metrics": {"test": {"loss": 0.5, "accuracy": 0.9, "n": 10}},
        "stopping": {"reason": "early_stopping", "weights_epoch": 1, "best_epoch": 1},
        "created": "2024-01-01T00:00:00+00:00",
        "epochs_trained": 2,
        "interrupted": False,
        "seconds": 1.5,
        "resume": RESUME_SECTION,
    }


def _npy(array):
    f = io.BytesIO()
    np.save(f, array, allow_pickle=False)
    return f.getvalue()


def _valid_members():
    members = {f"{name}.npy": _npy(PARAMS[name]) for name in model.PARAM_NAMES}
    members.update({f"{name}.npy": _npy(array) for name, array in RESUME_ARRAYS.items()})
    members["metadata.npy"] = _npy(np.array(json.dumps(_valid_metadata())))
    return members


def _archive(members, method=zipfile.ZIP_STORED):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", method, compresslevel=1) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return f.getvalue()


VALID_MEMBERS = _valid_members()
VALID_MODEL = _archive(VALID_MEMBERS)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
RAW_JSON = st.sampled_from(["NaN", "1e999", "9" * 5000, "[" * 5000 + "]" * 5000, '"\\ud800"'])


@st.composite
def metadata_texts(draw):
    """Valid metadata with a few keys changed, dropped or added; or not JSON at all."""
    meta = _valid_metadata()
    keys = st.sampled_from([*meta, "extra"])
    for _ in range(draw(st.integers(0, 3))):
        key = draw(keys)
        if draw(st.booleans()):
            meta.pop(key, None)
        else:
            meta[key] = draw(JSON)
    text = json.dumps(meta)
    if draw(st.booleans()):  # what json.dumps cannot write: NaN, 5,000 digits, ...
        text = text[:-1] + f', "{draw(keys)}": {draw(RAW_JSON)}}}'
    garbled = mutated(st.just(text.encode())).map(lambda b: b.decode("latin-1"))
    return draw(st.just(text) | garbled | st.text(max_size=64))


DESCRS = st.sampled_from(
    ["<f8", "<f4", ">f8", "|O", "<U10", "<U999999999", "V8", "<i4", "|b1", "<c16", "S3"]
)
SHAPES = st.one_of(
    st.sampled_from([(784, 2), (2,), (2, 1), (1,), ()]),
    st.lists(st.integers(-1, 2**63), max_size=3).map(tuple),
)


@st.composite
def npy_members(draw):
    """A .npy member with a made header: any descr, shape, version; data of any length."""
    header = {"descr": draw(DESCRS), "fortran_order": draw(st.booleans()), "shape": draw(SHAPES)}
    text = repr(header).encode() if draw(st.integers(0, 9)) else draw(st.binary(max_size=64))
    version = draw(st.sampled_from([(1, 0), (2, 0), (3, 0), (0, 7)]))
    length = struct.pack("<H" if version[0] == 1 else "<I", min(len(text), 2**16 - 1))
    data = (
        draw(st.binary(max_size=64)) if draw(st.booleans()) else bytes(draw(st.integers(0, 16000)))
    )
    return b"\x93NUMPY" + bytes(version) + length + text + data


@st.composite
def made_archives(draw):
    """The valid members, some replaced by made ones; stored or deflated; sizes patched."""
    members = dict(VALID_MEMBERS)
    for name in draw(st.lists(st.sampled_from(sorted(members)), max_size=3)):
        if name == "metadata.npy" and draw(st.booleans()):
            members[name] = _npy(np.array(draw(metadata_texts())))
        else:
            members[name] = draw(npy_members())
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    if draw(st.booleans()):  # a bomb: a member padded with up to 1 MiB of zeros, deflated
        name = draw(st.sampled_from(sorted(members)))
        members[name] = members[name][:128] + bytes(draw(st.integers(0, 2**20)))
        method = zipfile.ZIP_DEFLATED
    return _archive(members, method)


# (offset, format) in a central-directory entry: version needed, flags, method,
# compressed size, size, name length, local header offset.
DIRECTORY_FIELDS = [
    (6, "<H"),
    (8, "<H"),
    (10, "<H"),
    (20, "<I"),
    (24, "<I"),
    (28, "<H"),
    (42, "<I"),
]


@st.composite
def patched_directory(draw, archives):
    """An archive with one field of one central-directory entry overwritten."""
    data = bytearray(draw(archives))
    entries = [i for i in range(len(data)) if data[i : i + 4] == b"PK\x01\x02"]
    if entries:
        at = draw(st.sampled_from(entries))
        offset, fmt = draw(st.sampled_from(DIRECTORY_FIELDS))
        value = draw(st.integers(0, 2 ** (8 * struct.calcsize(fmt)) - 1))
        struct.pack_into(fmt, data, at + offset, value)
    return bytes(data)


MODEL_FILES = st.one_of(
    st.binary(max_size=512),
    st.binary(max_size=512).map(lambda b: b"PK\x03\x04" + b),
    mutated(st.just(VALID_MODEL)),
    made_archives(),
    patched_directory(made_archives() | st.just(VALID_MODEL)),
    st.just(VALID_MODEL),
)


def test_model_loader_raises_only_its_own_errors(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "model.npz"
    outcomes, cases = Outcomes("model files"), Counter()

    @_settings(normal_budget=100)
    @given(MODEL_FILES)
    def check(data):
        cases["n"] += 1
        path.write_bytes(data)
        loaded = outcomes.run(checkpoint.load_model, path)
        if loaded is not None:  # accepted: then everything after may trust it
            params, meta = loaded
            assert metadata.validate(meta) is meta
            json.dumps(meta, allow_nan=False)
            _, hidden, n_out = meta["layers"]
            assert params["W1"].shape == (784, hidden) and params["b2"].shape == (n_out,)
            assert all(np.isfinite(p).all() and p.flags.writeable for p in params.values())
        resumed = outcomes.run(checkpoint.load_resume, path)
        if resumed is not None:
            theta, _ = model.pack(resumed[0])
            assert resumed[2].state.theta.shape == theta.shape

    _run(check)
    outcomes.report(cases["n"])


@pytest.mark.parametrize("data", [VALID_MODEL, _archive(VALID_MEMBERS, zipfile.ZIP_DEFLATED)])
def test_the_fuzzers_valid_model_loads(tmp_path, data):
    """The valid file every mutation starts from does load: the fuzzing reaches past the checks."""
    (tmp_path / "m.npz").write_bytes(data)
    params, meta = checkpoint.load_model(tmp_path / "m.npz")
    assert meta == _valid_metadata() and params["W1"].shape == (784, 2)
    assert checkpoint.load_resume(tmp_path / "m.npz")[2].state.epoch == 2


# --- config files -------------------------------------------------------------------------


def _toml_float(x):
    return ("-" if x < 0 else "") + "inf" if math.isinf(x) else "nan" if math.isnan(x) else repr(x)


TOML_SCALARS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(_toml_float),
    st.sampled_from(["true", "false", "1979-05-27", "0x10", "1_000"]),
    st.text(max_size=30).map(json.dumps),  # a TOML basic string, mostly
    st.sampled_from(['"all"', '"full"', '"adam"', '"unit"', '"idx"', '"a\\u0000b"', '""']),
)
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2).map(
            lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=8,
)
DEEP_ARRAYS = st.integers(1, 5000).map(lambda n: "[" * n + "]" * n)
KEYS = st.sampled_from([*sorted(SETTINGS), "task", "unknown", '"lr"', "[table]"])
VALID_CONFIGS = st.sampled_from(
    [p.read_bytes() for p in sorted((Path(__file__).parents[1] / "configs").glob("*.toml"))]
)


@st.composite
def config_texts(draw):
    """Lines ``key = value`` of setting names (and others) with any TOML values."""
    lines = [
        f"{draw(KEYS)} = {draw(TOML_VALUES | DEEP_ARRAYS)}" for _ in range(draw(st.integers(0, 6)))
    ]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


CONFIG_FILES = st.one_of(
    st.binary(max_size=256),
    config_texts(),
    mutated(config_texts()),
    VALID_CONFIGS,
    mutated(VALID_CONFIGS),
)


def test_config_reader_raises_only_its_own_errors(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "config.toml"
    outcomes, cases = Outcomes("config files"), Counter()

    def resolve(task):
        return resolve_config(task, read_config_file(path), config_path=path)

    @_settings(normal_budget=60)
    @given(CONFIG_FILES)
    def check(data):
        cases["n"] += 1
        path.write_bytes(data)
        for task in TASKS:
            config = outcomes.run(resolve, task)
            if config is not None:  # accepted: every value is one a setting allows
                json.dumps(config.to_dict(), allow_nan=False)

    _run(check)
    outcomes.report(cases["n"])
