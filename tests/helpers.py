"""Helpers shared by several test modules (pooch keeps its own in ``tests/utils.py``)."""

import contextlib
import threading
import tracemalloc
import types

import numpy as np
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


def numeric_gradients(params, objective, eps=1e-6):
    """Central differences of ``objective()`` with respect to every entry of every parameter.

    ``params`` (a dict of float64 arrays) are moved entry by entry and put back.
    """
    numeric = {}
    for name, value in params.items():
        grad = numeric[name] = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            old = value[i]
            value[i] = old + eps
            plus = objective()
            value[i] = old - eps
            minus = objective()
            value[i] = old
            grad[i] = (plus - minus) / (2 * eps)
    return numeric


def relative_error(a, b):
    """``|a - b| / (|a| + |b|)``, the norms of the flattened arrays."""
    return np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b))


def random_params(rng, n_in, n_hidden, n_out):
    """A small network's parameters with weights large enough to exercise every term."""
    return {
        "W1": rng.normal(0, 0.8, (n_in, n_hidden)),
        "b1": rng.normal(0, 0.5, n_hidden),
        "W2": rng.normal(0, 0.8, (n_hidden, n_out)),
        "b2": rng.normal(0, 0.5, n_out),
    }
