"""Helpers shared by several test modules (pooch keeps its own in ``tests/utils.py``)."""

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
