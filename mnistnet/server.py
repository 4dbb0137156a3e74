"""The HTTP side of ``mnistnet serve``: the page and its API on the standard library's server.

    server = make_server("runs/multiclass/model.npz", "127.0.0.1", 0)
    print(server.url)        # http://127.0.0.1:PORT/, the port the system picked
    server.serve_forever()   # one thread per connection

Routes (anything else is 404; methods other than GET and POST are 405):

- ``GET /``, ``/app.js``, ``/style.css``, ``/favicon.svg``: the page, from
  :data:`ASSETS`, read once from the package into memory. The table is the
  only way from a request to a file: no part of a request's path ever
  reaches the file system.
- ``GET /api/model``: :attr:`mnistnet.webapp.DigitReader.facts`.
- ``POST /api/predict`` with a PNG or JPEG body:
  :meth:`mnistnet.webapp.DigitReader.read`. A bad request gets
  ``400 {"error": "..."}`` and the server goes on.

Every response carries :data:`SECURITY_HEADERS`. Served on a loopback
address, requests must name a loopback host (``Host: localhost:8000``), so
that a web site cannot reach the server through a DNS name of its own
pointed at 127.0.0.1 (DNS rebinding).
"""

import errno
import http.server
import ipaddress
import json
import os
import socket
import socketserver
import sys
import urllib.parse
from http import HTTPStatus
from importlib import resources

from mnistnet.errors import MnistnetError
from mnistnet.webapp import MAX_BODY, DigitReader, RequestError, check_request

#: URL path -> file of ``mnistnet/web``; nothing else is served.
PAGES = {
    "/": "index.html",
    "/app.js": "app.js",
    "/style.css": "style.css",
    "/favicon.svg": "favicon.svg",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
API = {"/api/model": "GET", "/api/predict": "POST"}
SECURITY_HEADERS = {
    # Scripts, styles, pictures and requests from this server only; no inline code,
    # no plug-ins, no framing, no <base> or form tricks.
    "Content-Security-Policy": (
        "default-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
DRAIN_LIMIT = (
    4 * MAX_BODY
)  # a refused body up to this size is read and dropped (see Handler._drop_body)
TIMEOUT = 30  # seconds a connection may stay silent


def load_assets():
    """The page's files, read from the package: {URL path: (content type, bytes)}."""
    web = resources.files("mnistnet").joinpath("web")
    return {
        url: (CONTENT_TYPES[os.path.splitext(name)[1]], web.joinpath(name).read_bytes())
        for url, name in PAGES.items()
    }


def is_loopback(host):
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_wildcard(host):
    """True for the addresses that mean every interface: ``0.0.0.0``, ``::``, empty."""
    return host.strip("[]") in ("", "0.0.0.0", "::")


class Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server holding one :class:`~mnistnet.webapp.DigitReader`.

    ``loopback`` is True when only this machine can reach it.
    """

    daemon_threads = True  # Ctrl-C does not wait for a browser's idle connections

    def __init__(self, reader, host, port):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.reader = reader
        self.assets = load_assets()
        self.loopback = is_loopback(host)
        super().__init__((host.strip("[]"), port), Handler)

    def server_bind(self):
        # HTTPServer.server_bind asks DNS for this host's full name, which can hang offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        # A browser that closes a tab mid-answer is no error; anything else is a bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self):
        """The page's address; for a wildcard address, its address on this machine."""
        host, port = self.server_address[:2]
        if is_wildcard(host):
            host = "::1" if self.address_family == socket.AF_INET6 else "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def make_server(model_path, host="127.0.0.1", port=8000):
    """Load the model and listen on ``host:port`` (0: a free port); nothing is served yet.

    Raises
    ------
    ModelFileError
        The model file cannot be used.
    MnistnetError
        The address cannot be listened on (in use, not this machine's, no permission).
    """
    reader = DigitReader(model_path)
    try:
        return Server(reader, host, port)
    except OSError as exc:
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise MnistnetError(
                f"cannot listen on {where}: the port is in use (--port 0 picks a free one)",
                setting="port",
            ) from None
        if exc.errno == errno.EACCES:
            raise MnistnetError(
                f"cannot listen on {where}: permission denied (ports below 1024 need root)",
                setting="port",
            ) from None
        reason = exc.strerror or str(exc)
        raise MnistnetError(f"cannot listen on {where}: {reason}", setting="host") from None


class Handler(http.server.BaseHTTPRequestHandler):
    """One connection: GET the page and the facts, POST pictures; every answer in JSON or an asset.

    A body left unread would be taken for the next request on a kept-alive
    connection: every answer either reads the body or closes the connection.
    """

    protocol_version = "HTTP/1.1"  # keep-alive: the page posts often
    server_version = "mnistnet"
    sys_version = ""
    timeout = TIMEOUT
    # Headers and body leave in two writes; with Nagle's algorithm the body would
    # wait for the client's delayed ACK, 40 ms on Linux.
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version

    def parse_request(self):
        self._body_read = False
        return super().parse_request()

    def do_GET(self):
        path = self._path()
        if path is None:
            return
        if path in self.server.assets:
            self._send(HTTPStatus.OK, *self.server.assets[path])
        elif API.get(path) == "GET":
            self._send_json(HTTPStatus.OK, self.server.reader.facts)
        else:
            self._not_found_or_not_allowed(path)

    def do_POST(self):
        path = self._path()
        if path is None:
            return
        if API.get(path) != "POST":
            self._not_found_or_not_allowed(path)
            return
        length = self._content_length()
        if length is None:
            message = "send the picture with a Content-Length header giving its size in bytes"
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": message})
            return
        content_type = self.headers.get("Content-Type")
        try:
            check_request(content_type, length)
        except RequestError as exc:
            self._drop_body(length)
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        body = self.rfile.read(length)
        self._body_read = True
        try:
            answer = self.server.reader.read(body, content_type)
        except RequestError as exc:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        except Exception:
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})
            raise  # Server.handle_error prints the traceback: a bug
        self._send_json(HTTPStatus.OK, answer)

    def __getattr__(self, name):
        # BaseHTTPRequestHandler looks for do_<METHOD>: every method but GET and POST
        # (HEAD, PUT, OPTIONS, made-up ones) is answered here.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    # --- answers -----------------------------------------------------------------------

    def _path(self):
        """The request's path without its query, or None after refusing a foreign Host."""
        host = self.headers.get("Host")
        if self.server.loopback and host is not None:
            name = urllib.parse.urlsplit(f"//{host}").hostname or ""
            if not is_loopback(name):
                error = {"error": "this server answers to localhost only (see --host)"}
                self._send_json(HTTPStatus.FORBIDDEN, error)
                return None
        return urllib.parse.urlsplit(self.path).path

    def _not_found_or_not_allowed(self, path):
        method = API.get(path) or ("GET" if path in self.server.assets else None)
        if method is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})
        else:
            self._method_not_allowed(allow=method)

    def _method_not_allowed(self, allow="GET, POST"):
        self._send_json(
            HTTPStatus.METHOD_NOT_ALLOWED,
            {"error": f"method {self.command} is not allowed here; use {allow}"},
            {"Allow": allow},
        )

    def _content_length(self):
        """The declared body size, or None when it is missing among chunks or malformed."""
        if self.headers.get("Transfer-Encoding"):
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        return length if length >= 0 else None

    def _drop_body(self, length):
        """Read a refused body and throw it away, so that the client sees the answer.

        A server that closes its socket with data unread makes the system
        send a reset, and the client may lose the 400 it was sent. Bodies
        over :data:`DRAIN_LIMIT` are not worth it: that connection is closed.
        """
        if self._body_read or length > DRAIN_LIMIT:
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                break
            length -= len(chunk)
        self._body_read = True

    def _body_unread(self):
        headers = getattr(self, "headers", None)  # None when the request line was bad
        if headers is None or getattr(self, "_body_read", False):
            return False
        return bool(headers.get("Transfer-Encoding")) or headers.get("Content-Length", "0") != "0"

    def _send_json(self, status, obj, headers=None):
        body = json.dumps(obj, allow_nan=False).encode("utf-8")
        self._send(status, "application/json", body, headers)

    def _send(self, status, content_type, body, headers=None):
        if self._body_unread():
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code, message=None, explain=None):
        # The standard library's own refusals (a malformed request line, headers too
        # long) in JSON like every other answer, with the same headers.
        self.close_connection = True
        self._send_json(code, {"error": message or HTTPStatus(code).phrase})

    def log_message(self, format, *args):
        # A line per request would bury the address the user needs; bugs still
        # print their traceback (Server.handle_error).
        pass
