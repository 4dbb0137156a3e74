"""Helpers shared by several test modules (pooch keeps its own in ``tests/utils.py``)."""

import contextlib
import threading
import tracemalloc
import types

from click.testing import CliRunner

from mnistnet.cli import main


def run(*args, **kwargs):
    """Invoke ``mnistnet ARGS...`` in-process; every argument is passed as a string."""
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


def serve(server, prefix, payload, **override):
    """Serve every file of ``payload`` under ``prefix`` on a local pytest-httpserver.

    ``override`` maps a file name to other bytes (a corrupt or wrong file).
    Returns the base URL.
    """
    for name, data in {**payload, **override}.items():
        server.expect_request(f"{prefix}{name}").respond_with_data(
            data, content_type="application/octet-stream"
        )
    return server.url_for(prefix)


def copy_model(src, dst, **changes):
    """Copy the model file ``src`` to ``dst`` with metadata keys replaced by ``changes``.

    Written with ``json.dumps`` as is (NaN stays a bare NaN), the way a
    hand-made or hostile file would be. Returns ``dst``.
    """
    import json

    import numpy as np

    with np.load(src) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = {**json.loads(str(arrays["metadata"])), **changes}
    arrays["metadata"] = np.array(json.dumps(meta))
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


def strict_json(text):
    """Parse ``text`` as RFC 8259 JSON: bare NaN, Infinity and -Infinity are errors."""
    import json

    def reject(constant):
        raise ValueError(f"not strict JSON: bare {constant}")

    return json.loads(text, parse_constant=reject)


@contextlib.contextmanager
def serving(model, host="127.0.0.1"):
    """``mnistnet serve MODEL --port 0`` in a thread: yields the running Server."""
    from mnistnet.server import make_server

    server = make_server(model, host, 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def memory_peak():
    """Measure the peak of Python and NumPy allocations inside the block (tracemalloc).

    ``with memory_peak() as mem: ...`` then ``mem.peak`` is in bytes.
    """
    result = types.SimpleNamespace(peak=None)
    tracemalloc.start()
    try:
        yield result
    finally:
        result.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
