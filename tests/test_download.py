"""Downloads against local HTTP servers on 127.0.0.1 (never the internet)."""

import gzip
import time

import pytest

from mnistnet.datasets import DatasetSpec, fetch, load_split
from mnistnet.errors import DownloadError

HTML = b"<!DOCTYPE html><html><body><h1>Oops, an error page</h1></body></html>"


def _registry(files, *mirrors):
    return {"tiny": DatasetSpec(name="tiny", files=files, mirrors=tuple(mirrors))}


def _serve(server, prefix, payload, **override):
    """Serve every file of ``payload`` under ``prefix``; ``override`` maps a name to bytes."""
    for name, data in {**payload, **override}.items():
        server.expect_request(f"{prefix}{name}").respond_with_data(
            data, content_type="application/octet-stream"
        )
    return server.url_for(prefix)


def _requested(server):
    return [request.path for request, _ in server.log]


def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTNET_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tiny"


def test_download_then_cache_hit(server, pinned_idx_dataset, tmp_path, monkeypatch):
    payload, files = pinned_idx_dataset
    cache = _cache(tmp_path, monkeypatch)
    registry = _registry(files, _serve(server, "/mnist/", payload))

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
    base = _serve(server, "/mnist/", payload, **{"train-labels-idx1-ubyte.gz": wrong})

    with pytest.raises(DownloadError, match="sha256 mismatch") as info:
        fetch("tiny", registry=_registry(files, base))

    assert "train-labels-idx1-ubyte.gz" in str(info.value)
    assert not (cache / "train-labels-idx1-ubyte.gz").exists()
    assert not list(cache.glob("*.part"))


@pytest.mark.parametrize("first", ["html", "404", "down", "corrupt gzip"])
def test_next_mirror_is_used_when_the_first_fails(
    server, pinned_idx_dataset, dead_url, first, tmp_path
):
    payload, files = pinned_idx_dataset
    if first == "html":
        bad = _serve(server, "/bad/", {name: HTML for name in payload})
    elif first == "404":
        bad = server.url_for("/missing/")  # no handler: pytest-httpserver answers 500
    elif first == "corrupt gzip":
        bad = _serve(server, "/bad/", {name: data[:-20] for name, data in payload.items()})
    else:
        bad = dead_url
    good = _serve(server, "/good/", payload)

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
    html = _serve(server, "/html/", {name: HTML for name in payload})
    missing = server.url_for("/missing/")
    registry = _registry(files, dead_url, html, missing, "gopher://example.invalid/")

    start = time.perf_counter()
    with pytest.raises(DownloadError) as info:
        fetch("tiny", registry=registry)
    assert time.perf_counter() - start < 5

    lines = str(info.value).splitlines()
    assert lines[0] == "could not download train-images-idx3-ubyte.gz of tiny from any mirror:"
    assert lines[1] == f"  {dead_url}: connection refused"
    assert lines[2] == f"  {html}: got an HTML or XML page (a server's error page?)"
    assert lines[3].startswith(f"  {missing}: HTTP 500")
    assert lines[4] == "  gopher://example.invalid/: unsupported URL scheme 'gopher'"
    assert "--dataset mnist-sample" in lines[5] and "--data-dir" in lines[5]
    assert not cache.parent.exists()  # no partial files, no empty directories


def test_environment_mirror_is_tried_before_built_in(
    server, pinned_idx_dataset, dead_url, monkeypatch
):
    payload, files = pinned_idx_dataset
    good = _serve(server, "/env/", payload)
    monkeypatch.setenv("MNISTNET_MIRROR", f"{dead_url} {good}")
    files_ = fetch("tiny", registry=_registry(files, "http://127.0.0.1:9/never-reached/"))
    assert all(f.verified for f in files_)
    assert set(_requested(server)) == {f"/env/{name}" for name in payload}


def test_data_dir_receives_the_files_directly(server, pinned_idx_dataset, tmp_path):
    payload, files = pinned_idx_dataset
    registry = _registry(files)
    mirror = _serve(server, "/m/", payload)
    target = tmp_path / "new" / "dir"
    got = fetch("tiny", data_dir=target, mirrors=[mirror], registry=registry)
    assert [f.path for f in got] == [str(target / name) for name in payload]


def test_load_split_fetches_only_its_two_files(server, pinned_idx_dataset, tmp_path):
    payload, files = pinned_idx_dataset
    mirror = _serve(server, "/m/", payload)
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
    mirror = _serve(server, "/m/", plain)
    got = fetch("tiny", data_dir=tmp_path, registry=_registry(files, mirror))
    assert [f.name for f in got] == [name.removesuffix(".gz") for name in payload]
    assert all(f.verified for f in got)


def test_progress_bar_draws_without_a_terminal(server, pinned_idx_dataset, tmp_path):
    payload, files = pinned_idx_dataset
    mirror = _serve(server, "/m/", payload)
    got = fetch("tiny", data_dir=tmp_path, registry=_registry(files, mirror), progress=True)
    assert len(got) == 4
