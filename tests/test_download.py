"""Downloads against local HTTP servers on 127.0.0.1 (never the internet)."""

import gzip
import os
import threading
import time

import pytest
import requests
from helpers import serve

from mnistnet import datasets
from mnistnet.datasets import DatasetSpec, fetch, load_split
from mnistnet.errors import DatasetError, DownloadError

HTML = b"<!DOCTYPE html><html><body><h1>Oops, an error page</h1></body></html>"


def _registry(files, *mirrors):
    return {"tiny": DatasetSpec(name="tiny", files=files, mirrors=tuple(mirrors))}


class FakeSleep:
    """Records the seconds anyone asks to sleep, instead of sleeping (pooch's tests do this)."""

    def __init__(self, monkeypatch):
        self.times = []
        self._sleep = time.sleep
        self._main = threading.get_ident()
        monkeypatch.setattr(time, "sleep", self.sleep)

    def sleep(self, seconds):
        if threading.get_ident() != self._main:  # the test server's own threads
            return self._sleep(seconds)
        self.times.append(seconds)


def _record_timeouts(monkeypatch):
    """The ``timeout`` of every HTTP request made (the list fills as requests go out)."""
    timeouts, get = [], requests.get

    def recording_get(url, *args, **kwargs):
        timeouts.append(kwargs.get("timeout"))
        return get(url, *args, **kwargs)

    monkeypatch.setattr(requests, "get", recording_get)
    return timeouts


def _requested(server):
    return [request.path for request, _ in server.log]


def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTNET_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tiny"


def test_download_then_cache_hit(server, pinned_idx_dataset, tmp_path, monkeypatch):
    payload, files = pinned_idx_dataset
    cache = _cache(tmp_path, monkeypatch)
    registry = _registry(files, serve(server, "/mnist/", payload))

    first = fetch("tiny", registry=registry)

    assert len(server.log) == 4
    assert [f.path for f in first] == [str(cache / f.name) for f in files]
    assert all(f.verified for f in first)
    for info in first:
        assert (cache / info.name).read_bytes() == payload[info.name]
    assert sorted(p.name for p in cache.iterdir()) == sorted(payload)  # no .part left

    second = fetch("tiny", registry=registry)
    assert second == first
    assert len(server.log) == 4  # nothing downloaded again


def test_hash_mismatch_is_rejected_and_not_cached(
    server, pinned_idx_dataset, tmp_path, monkeypatch
):
    payload, files = pinned_idx_dataset
    cache = _cache(tmp_path, monkeypatch)
    wrong = payload["t10k-labels-idx1-ubyte.gz"]  # a valid IDX file, but not this one
    base = serve(server, "/mnist/", payload, **{"train-labels-idx1-ubyte.gz": wrong})

    with pytest.raises(DownloadError, match="sha256 mismatch") as info:
        fetch("tiny", registry=_registry(files, base))

    assert "train-labels-idx1-ubyte.gz" in str(info.value)
    # The first file verified and stays; the wrong one and every temporary are gone.
    assert [p.name for p in cache.iterdir()] == ["train-images-idx3-ubyte.gz"]


@pytest.mark.parametrize("first", ["html", "404", "down", "corrupt gzip"])
def test_next_mirror_is_used_when_the_first_fails(
    server, pinned_idx_dataset, dead_url, first, tmp_path
):
    payload, files = pinned_idx_dataset
    if first == "html":
        bad = serve(server, "/bad/", {name: HTML for name in payload})
    elif first == "404":
        bad = server.url_for("/missing/")  # no handler: pytest-httpserver answers 500
    elif first == "corrupt gzip":
        bad = serve(server, "/bad/", {name: data[:-20] for name, data in payload.items()})
    else:
        bad = dead_url
    good = serve(server, "/good/", payload)

    split = load_split(
        "tiny", "train", data_dir=tmp_path / "d", registry=_registry(files, bad, good)
    )

    assert split.images.shape == (20, 28, 28) and split.labels.shape == (20,)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    good_requests = [path for path in _requested(server) if path.startswith("/good/")]
    assert good_requests == ["/good/train-images-idx3-ubyte.gz", "/good/train-labels-idx1-ubyte.gz"]


def test_all_mirrors_fail_with_one_message(
    server, pinned_idx_dataset, dead_url, tmp_path, monkeypatch
):
    payload, files = pinned_idx_dataset
    cache = _cache(tmp_path, monkeypatch)
    html = serve(server, "/html/", {name: HTML for name in payload})
    missing = server.url_for("/missing/")
    registry = _registry(files, dead_url, html, missing, "gopher://example.invalid/")
    sleep = FakeSleep(monkeypatch)
    timeouts = _record_timeouts(monkeypatch)

    with pytest.raises(DownloadError) as info:
        fetch("tiny", registry=registry)

    # Offline it fails in seconds: each mirror once, no retries, no waiting, short timeouts.
    assert sleep.times == []
    assert _requested(server) == ["/html/train-images-idx3-ubyte.gz"] + [
        "/missing/train-images-idx3-ubyte.gz"
    ]
    assert timeouts == [(5, 30)] * 3  # connect, read: as the README says
    assert info.value.setting == "data_dir"
    lines = str(info.value).splitlines()
    assert lines[0] == "could not download train-images-idx3-ubyte.gz of tiny from any mirror:"
    assert lines[1] == f"  {dead_url}: connection refused"
    assert lines[2] == f"  {html}: got an HTML or XML page (a server's error page?)"
    assert lines[3].startswith(f"  {missing}: HTTP 500")
    assert lines[4] == "  gopher://example.invalid/: unsupported URL scheme 'gopher'"
    assert lines[5] == (
        "To work offline use the bundled digits (the mnist-sample dataset), "
        "or a data directory that already holds the files."
    )
    assert not cache.parent.exists()  # no partial files, no empty directories


def test_environment_mirror_is_tried_before_built_in(
    server, pinned_idx_dataset, dead_url, monkeypatch
):
    payload, files = pinned_idx_dataset
    good = serve(server, "/env/", payload)
    monkeypatch.setenv("MNISTNET_MIRROR", f"{dead_url} {good}")
    files_ = fetch("tiny", registry=_registry(files, "http://127.0.0.1:9/never-reached/"))
    assert all(f.verified for f in files_)
    assert set(_requested(server)) == {f"/env/{name}" for name in payload}


def test_data_dir_receives_the_files_directly(server, pinned_idx_dataset, tmp_path):
    payload, files = pinned_idx_dataset
    registry = _registry(files)
    mirror = serve(server, "/m/", payload)
    target = tmp_path / "new" / "dir"
    got = fetch("tiny", data_dir=target, mirrors=[mirror], registry=registry)
    assert [f.path for f in got] == [str(target / name) for name in payload]


def test_load_split_fetches_only_its_two_files(server, pinned_idx_dataset, tmp_path):
    payload, files = pinned_idx_dataset
    mirror = serve(server, "/m/", payload)
    split = load_split("tiny", "test", data_dir=tmp_path, registry=_registry(files, mirror))
    assert split.labels.shape == (10,)
    assert sorted(_requested(server)) == [
        "/m/t10k-images-idx3-ubyte.gz",
        "/m/t10k-labels-idx1-ubyte.gz",
    ]


def test_a_gunzipped_answer_is_kept_as_plain_idx(server, pinned_idx_dataset, tmp_path):
    """Some servers decompress on the way; the content hash still matches."""
    payload, files = pinned_idx_dataset
    plain = {name: gzip.decompress(data) for name, data in payload.items()}
    mirror = serve(server, "/m/", plain)
    got = fetch("tiny", data_dir=tmp_path, registry=_registry(files, mirror))
    assert [f.name for f in got] == [name.removesuffix(".gz") for name in payload]
    assert all(f.verified for f in got)


class RecordingProgress:
    """A progress factory as the command line hands in: records each bar it gave out."""

    def __init__(self, interrupt_after=None):
        self.bars = []
        self.interrupt_after = interrupt_after  # bytes; then raise KeyboardInterrupt

    def __call__(self, name, url):
        self.bars.append(RecordingBar(name, url, self.interrupt_after))
        return self.bars[-1]


class RecordingBar:
    """What pooch's HTTPDownloader drives (total, update, reset, close), as a context manager."""

    def __init__(self, name, url, interrupt_after=None):
        self.name, self.url, self.interrupt_after = name, url, interrupt_after
        self.total, self.count, self.closed, self.failure = None, 0, False, "not exited"

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.failure = exc_type
        return False

    def update(self, n):
        self.count += n
        if self.interrupt_after is not None and self.count >= self.interrupt_after:
            raise KeyboardInterrupt

    def reset(self):
        self.count = 0

    def close(self):
        self.closed = True


def test_progress_gets_one_bar_per_attempt(server, pinned_idx_dataset, dead_url, tmp_path):
    payload, files = pinned_idx_dataset
    good = serve(server, "/m/", payload)
    progress = RecordingProgress()

    fetch("tiny", data_dir=tmp_path, registry=_registry(files, dead_url, good), progress=progress)

    attempts = [(bar.name, bar.url) for bar in progress.bars]
    assert attempts == [(name, base + name) for name in payload for base in (dead_url, good)]
    failed, done = progress.bars[0::2], progress.bars[1::2]
    for bar in failed:  # connection refused: exited with the error, never filled
        assert issubclass(bar.failure, requests.ConnectionError) and not bar.closed
    for bar, name in zip(done, payload, strict=True):
        assert bar.failure is None and bar.closed
        assert bar.total == bar.count == len(payload[name])


def test_nothing_on_disk_draws_no_bar(server, pinned_idx_dataset, tmp_path):
    payload, files = pinned_idx_dataset
    registry = _registry(files, serve(server, "/m/", payload))
    fetch("tiny", data_dir=tmp_path, registry=registry)
    progress = RecordingProgress()
    fetch("tiny", data_dir=tmp_path, registry=registry, progress=progress)
    assert progress.bars == []


def test_interrupted_download_leaves_no_file(server, pinned_idx_dataset, tmp_path):
    payload, files = pinned_idx_dataset
    registry = _registry(files, serve(server, "/m/", payload))
    with pytest.raises(KeyboardInterrupt):
        fetch("tiny", data_dir=tmp_path / "d", registry=registry, progress=RecordingProgress(1))
    assert list((tmp_path / "d").iterdir()) == []


def test_downloaded_files_get_the_mode_of_any_new_file(server, pinned_idx_dataset, tmp_path):
    """Not the private 0600 of a temporary file (mkstemp's)."""
    payload, files = pinned_idx_dataset
    got = fetch("tiny", data_dir=tmp_path, registry=_registry(files, serve(server, "/m/", payload)))
    umask = os.umask(0)
    os.umask(umask)
    assert {os.stat(f.path).st_mode & 0o777 for f in got} == {0o666 & ~umask}


def test_unwritable_data_dir_is_a_dataset_error(pinned_idx_dataset, tmp_path, monkeypatch):
    _, files = pinned_idx_dataset

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(datasets.fileio.tempfile, "mkstemp", refuse)
    with pytest.raises(DatasetError, match=f"cannot write to {tmp_path}: Permission denied"):
        fetch("tiny", data_dir=tmp_path, registry=_registry(files, "http://127.0.0.1:9/"))
