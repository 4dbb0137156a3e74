"""``mnistnet serve``: the API over real HTTP on 127.0.0.1, and the command.

One server (port 0, in a thread) serves the session's small model for the
whole module; every test that sends a bad request checks that it still
answers afterwards. The page itself is tested in a real browser in
``tests/test_browser.py``.
"""

import functools
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import numpy as np
import pytest
from helpers import run, serving
from PIL import Image
from synthetic import photo
from test_evaluate import check_schema
from test_imagefiles import png_bytes
from test_predict import ANSWER

from mnistnet import checkpoint, prediction
from mnistnet.datasets import load_split
from mnistnet.images import to_mnist
from mnistnet.server import PAGES, SECURITY_HEADERS, Server, is_loopback, is_wildcard
from mnistnet.webapp import MAX_BODY, RequestError, check_request, model_facts

DOCUMENT = {
    "schema": str,
    "model": {"path": str, "sha256": str, "task": str, "classes": [int]},
    "preprocess": str,
    "convention": str,
    "predictions": [{"path": str, "index": type(None), **ANSWER, "image": [int]}],
}


@pytest.fixture(scope="module")
def served(serve_model):
    """The module's running server (conftest's ``server`` is pytest-httpserver's)."""
    with serving(serve_model) as server:
        yield server


@pytest.fixture(scope="module")
def digits():
    """Twelve bundled test digits (images, labels)."""
    split = load_split("mnist-sample", "test")
    return split.images[:12], split.labels[:12]


def connect(server):
    return http.client.HTTPConnection(*server.server_address[:2], timeout=10)


def ask(conn, method, path, body=None, headers=None):
    """One request on ``conn``: (response, body bytes)."""
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response, response.read()


def post(conn, body, content_type="image/png"):
    response, data = ask(conn, "POST", "/api/predict", body, {"Content-Type": content_type})
    return response.status, json.loads(data)


def png(pixels, scale=1):
    """PNG bytes of grey ``pixels``, enlarged ``scale`` times (the page's canvas is 10x)."""
    image = Image.fromarray(pixels)
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def still_serving(server, conn=None):
    """The server answers (on ``conn`` when given: the connection is still usable)."""
    response, data = ask(conn or connect(server), "GET", "/api/model")
    assert response.status == 200
    assert json.loads(data)["task"] == "multiclass"
    return True


# --- answers agree with `mnistnet predict` ----------------------------------------------


def test_predictions_agree_with_predict(served, serve_model, digits, tmp_path):
    images, _ = digits
    params, meta = checkpoint.load_model(serve_model)
    conn = connect(served)
    for i, digit in enumerate(images):
        body = png(digit, scale=10 if i % 2 else 1)
        (tmp_path / f"{i:02d}.png").write_bytes(body)
        status, doc = post(conn, body)
        assert status == 200, doc
        check_schema(doc, DOCUMENT)
        assert doc["schema"] == "mnistnet-predictions/1"
        assert doc["model"]["path"] == "model.npz"  # the name only: no folder of the served
        (entry,) = doc["predictions"]
        seen = to_mnist(tmp_path / f"{i:02d}.png")
        assert np.array_equal(np.array(entry["image"], np.uint8).reshape(28, 28), seen)
        P = prediction.predict_proba(params, meta, seen[None])[0]
        assert entry == {
            **prediction.entry(entry["path"], None, P, meta, top=10),
            "image": entry["image"],
        }
    # ... and with the command itself, on the same files.
    result = run("predict", serve_model, tmp_path, "--json", "--top", 10)
    assert result.exit_code == 0, result.output
    command = json.loads(result.stdout)["predictions"]
    for i, expected in enumerate(command):
        _, doc = post(conn, (tmp_path / f"{i:02d}.png").read_bytes())
        answer = doc["predictions"][0]
        # predict runs the twelve in one batch: float32 sums in another order, ~1e-7 apart.
        assert (answer["prediction"], answer["class_name"]) == (
            expected["prediction"],
            expected["class_name"],
        )
        assert answer["probability"] == pytest.approx(expected["probability"], rel=1e-4)
        assert {
            t["class"]: pytest.approx(t["probability"], rel=1e-4, abs=1e-7) for t in expected["top"]
        } == {t["class"]: t["probability"] for t in answer["top"]}


def test_a_jpeg_photo(served, serve_model, digits, tmp_path):
    images, labels = digits
    body = photo(images[3], np.random.default_rng(0))
    status, doc = post(connect(served), body, "image/jpeg; charset=binary")
    assert status == 200, doc
    (tmp_path / "photo.jpg").write_bytes(body)
    expected = json.loads(run("predict", serve_model, tmp_path / "photo.jpg", "--json").stdout)
    assert doc["predictions"][0]["probability"] == expected["predictions"][0]["probability"]


def test_model_facts(served, serve_model):
    response, data = ask(connect(served), "GET", "/api/model")
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    facts = json.loads(data)
    _, meta = checkpoint.load_model(serve_model)
    summary = prediction.model_summary(serve_model, meta)
    assert facts["path"] == "model.npz"
    assert (facts["sha256"], facts["classes"]) == (summary["sha256"], list(range(10)))
    assert facts["title"] == "ten classes"
    assert facts["layers"] == [784, 64, 10]
    assert facts["test_accuracy"] == meta["metrics"]["test"]["accuracy"]
    assert facts["recipe"]["hidden"] == 64 and facts["recipe"]["optimizer"] == "momentum"
    assert facts["recipe"]["epochs"] == 6


def test_model_facts_show_no_paths_and_no_nan():
    meta = {
        "task": "binary",
        "classes": [5, 8],
        "layers": [784, 8, 1],
        "metrics": {"test": {"accuracy": float("nan"), "n": 10}},
        "config": {"hidden": 8, "out": "/home/me/secret", "data_dir": "/data", "lr": float("inf")},
    }
    facts = model_facts({"path": "m.npz"}, meta)
    assert facts["title"] == "binary 5 vs 8"
    assert facts["test_accuracy"] is None
    assert facts["recipe"] == {"hidden": 8}
    json.dumps(facts, allow_nan=False)


# --- bad requests: 400 with a JSON error, and the server goes on -------------------------


@functools.cache
def _first_digit_png():
    return png(load_split("mnist-sample", "test").images[0])


BAD = [
    ("text/plain", lambda: _first_digit_png(), "must be a PNG or JPEG picture"),
    (None, lambda: _first_digit_png(), "not untyped data"),
    ("image/gif", lambda: b"GIF89a" + bytes(100), "not image/gif"),
    ("image/png", lambda: b"", "the body is empty"),
    ("image/png", lambda: b"this is not a picture", "not a PNG file"),
    ("image/jpeg", lambda: _first_digit_png(), "not a JPEG file"),
    ("image/png", lambda: _first_digit_png()[:60], "cannot decode the picture"),
    ("image/png", lambda: png(np.zeros((28, 28), np.uint8)), "no ink"),
    ("image/png", lambda: png_bytes(100_000, 100_000), "refused: more than"),
    ("image/png", lambda: b"\x89PNG\r\n\x1a\n" + bytes(MAX_BODY), "the limit is"),
]


@pytest.mark.parametrize("content_type, body, words", BAD)
def test_bad_bodies_get_400_and_the_server_goes_on(served, content_type, body, words):
    conn = connect(served)
    headers = {} if content_type is None else {"Content-Type": content_type}
    response, data = ask(conn, "POST", "/api/predict", body(), headers)
    assert response.status == 400
    assert response.getheader("Content-Type") == "application/json"
    error = json.loads(data)["error"]
    assert words in error
    assert "\n" not in error and os.sep + "tmp" not in error
    assert still_serving(served, conn)  # the same connection: the body was read, not left behind
    status, _ = post(connect(served), _first_digit_png())
    assert status == 200


@pytest.mark.parametrize(
    "headers",
    [
        "Transfer-Encoding: chunked\r\n\r\n4\r\n\x89PNG\r\n0\r\n\r\n",
        "Content-Length: -5\r\n\r\n",
        "Content-Length: many\r\n\r\n",
    ],
)
def test_bodies_without_a_usable_length_are_refused(served, headers):
    raw = f"POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n{headers}"
    with socket.create_connection(served.server_address[:2], timeout=10) as sock:
        sock.sendall(raw.encode("latin-1"))
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 400
        assert "Content-Length" in json.loads(response.read())["error"]
        assert response.getheader("Connection") == "close"  # what follows cannot be trusted
    assert still_serving(served)


def test_check_request_alone():
    check_request("IMAGE/PNG; x=y", 10)
    for content_type, length in (("image/webp", 10), ("image/png", 0), ("image/png", MAX_BODY + 1)):
        with pytest.raises(RequestError):
            check_request(content_type, length)


# --- routes, methods, headers ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/index.html",
        "/web/app.js",
        "/mnistnet/web/app.js",
        "/../pyproject.toml",
        "/%2e%2e/pyproject.toml",
        "/api",
        "/api/model/",
        "/app.js/",
        "/favicon.ico",
    ],
)
def test_unknown_paths_are_404(served, path):
    response, data = ask(connect(served), "GET", path)
    assert response.status == 404
    assert json.loads(data) == {"error": f"no such page: {path}"}


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"])
@pytest.mark.parametrize("path", ["/", "/api/predict", "/nope"])
def test_only_get_and_post(served, method, path):
    conn = connect(served)
    response, data = ask(conn, method, path, b"body")
    assert response.status == 405
    assert response.getheader("Allow") == "GET, POST"
    assert method in json.loads(data)["error"]
    assert still_serving(served, conn)


def test_head_is_405_without_a_body(served):
    """Bytes after HEAD's headers would be read as the next answer: there must be none."""
    with socket.create_connection(served.server_address[:2], timeout=10) as sock:
        sock.sendall(
            b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n"
            b"GET /api/model HTTP/1.1\r\nHost: localhost\r\n\r\n"
        )
        data = b""
        while b'"recipe"' not in data:
            chunk = sock.recv(1 << 16)
            assert chunk, data
            data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 405 ")
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize(
    "method, path, allow",
    [("GET", "/api/predict", "POST"), ("POST", "/", "GET"), ("POST", "/api/model", "GET")],
)
def test_wrong_method_for_a_route(served, method, path, allow):
    conn = connect(served)
    response, _ = ask(conn, method, path, b"x" if method == "POST" else None)
    assert (response.status, response.getheader("Allow")) == (405, allow)
    assert still_serving(served, conn)


def test_the_page_is_served_from_the_package(served):
    web = resources.files("mnistnet").joinpath("web")
    conn = connect(served)
    types = {"/": "text/html", "/app.js": "text/javascript", "/style.css": "text/css"}
    for url, name in PAGES.items():
        response, data = ask(conn, "GET", url + "?v=1")
        assert response.status == 200
        assert data == web.joinpath(name).read_bytes()
        assert response.getheader("Content-Type").startswith(types.get(url, "image/svg+xml"))
        for key, value in SECURITY_HEADERS.items():
            assert response.getheader(key) == value
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe" not in csp
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    page = web.joinpath("index.html").read_text()
    assert "http" not in page.replace('"http-equiv"', "")  # no CDN, no external font
    assert "innerHTML" not in web.joinpath("app.js").read_text()


def test_no_request_touches_the_file_system(served, digits):
    """Every page and answer comes from memory: the served opens no file while it serves."""
    opened, me = [], threading.get_ident()

    def hook(event, args):
        if (
            recording
            and threading.get_ident() != me
            and event in ("open", "os.listdir", "os.scandir")
        ):
            opened.append((event, args[0]))

    recording = False
    sys.addaudithook(hook)  # hooks cannot be removed: this one records only below
    body = png(digits[0][0], scale=10)

    def everything():
        conn = connect(served)
        for url in (*PAGES, "/api/model", "/../pyproject.toml", "/etc/passwd"):
            ask(conn, "GET", url)
        assert post(conn, body)[0] == 200
        assert post(conn, b"junk")[0] == 400

    everything()  # first use imports Pillow's plugins (which opens files): not a request's doing
    recording = True
    everything()
    recording = False
    assert opened == []


def test_host_must_be_local_on_a_loopback_server(served):
    port = served.server_address[1]
    for host, status in (
        ("evil.example", 403),
        (f"evil.example:{port}", 403),
        (f"localhost:{port}", 200),
        (f"127.0.0.1:{port}", 200),
        (f"[::1]:{port}", 200),
    ):
        response, data = ask(connect(served), "GET", "/api/model", headers={"Host": host})
        assert response.status == status, (host, data)


def test_concurrent_requests(served, digits):
    """Eight clients at once get the answers one client gets alone."""
    bodies = [png(digit, scale=8) for digit in digits[0]]
    conn = connect(served)
    alone = [post(conn, body)[1] for body in bodies]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda i: post(connect(served), bodies[i % 12]), range(24)))
    for i, (status, doc) in enumerate(together):
        assert status == 200
        assert doc == alone[i % 12]


# --- the command -------------------------------------------------------------------------


def test_help():
    result = run("serve", "--help")
    assert result.exit_code == 0
    for word in ("MODEL.npz", "--host", "127.0.0.1", "--port", "--open"):
        assert word in result.output


@pytest.mark.parametrize(
    "signum, status, line",
    [(signal.SIGINT, 130, "Interrupted."), (signal.SIGTERM, 143, "Terminated.")],
)
def test_serve_prints_the_address_and_stops_on_a_signal(serve_model, signum, status, line):
    """A real process: the default host, port 0, a request, then Ctrl-C (or kill): one line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mnistnet", "serve", str(serve_model), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell without job control starts background jobs ignoring SIGINT; undo that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        address = process.stdout.readline()
        assert address.startswith("Serving the page at http://127.0.0.1:"), address
        url = address.split()[4]
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        assert ask(conn, "GET", "/")[0].status == 200
    finally:
        process.send_signal(signum)
        out, err = process.communicate(timeout=20)
    assert process.returncode == status
    assert err == f"{line}\n"


@pytest.fixture
def stopped_at_once(monkeypatch):
    """serve_forever raises KeyboardInterrupt at once, as Ctrl-C would; returns opened URLs."""
    opened = []

    def interrupted(self, poll_interval=0.5):
        raise KeyboardInterrupt

    monkeypatch.setattr(Server, "serve_forever", interrupted)
    monkeypatch.setattr("webbrowser.open", opened.append)
    return opened


def test_open_opens_the_page(serve_model, stopped_at_once):
    result = run("serve", serve_model, "--port", 0, "--open")
    assert result.exit_code == 130
    (url,) = stopped_at_once
    assert url.startswith("http://127.0.0.1:")
    assert result.output.splitlines() == [
        f"Serving the page at {url} (Ctrl-C stops)",
        "Interrupted.",
    ]


def test_every_interface_prints_a_warning(serve_model, stopped_at_once, monkeypatch):
    import mnistnet.server

    real = mnistnet.server.make_server

    def on_loopback_but_told_otherwise(model, host, port):
        # The tests listen on 127.0.0.1 only; the warning depends on the host asked for.
        assert host == "0.0.0.0"
        server = real(model, "127.0.0.1", port)
        server.loopback = False
        return server

    monkeypatch.setattr(mnistnet.server, "make_server", on_loopback_but_told_otherwise)
    result = run("serve", serve_model, "--host", "0.0.0.0", "--port", 0)
    assert result.exit_code == 130
    assert "Warning: listening on every network interface" in result.output
    assert run("serve", serve_model, "--port", 0).output.count("Warning") == 0


def test_addresses():
    for host in (
        "127.0.0.1",
        "127.1.2.3",
        "localhost",
        "LOCALHOST",
        "::1",
        "[::1]",
        "app.localhost",
    ):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.2", "example.com", "localhost.example.com"):
        assert not is_loopback(host), host
    assert is_wildcard("0.0.0.0") and is_wildcard("::") and not is_wildcard("127.0.0.1")


def test_a_port_in_use_is_one_line(serve_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run("serve", serve_model, "--port", taken.getsockname()[1])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot listen on 127.0.0.1:")
    assert "the port is in use" in result.output and len(result.output.splitlines()) == 1


def test_bad_model_and_bad_port(tmp_path):
    (tmp_path / "m.npz").write_bytes(b"not a model")
    result = run("serve", tmp_path / "m.npz", "--port", 0)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: model file {tmp_path / 'm.npz'}:")
    assert run("serve", tmp_path / "m.npz", "--port", 70000).exit_code == 2
