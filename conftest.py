"""pytest set-up for the doctests in mnistnet/ (the tests' own fixtures: tests/conftest.py)."""

from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent / "mnistnet"


@pytest.fixture(autouse=True)
def _doctests_run_in_a_temporary_folder(request, monkeypatch):
    """A docstring example that writes a file writes it there, not into the checkout."""
    if PACKAGE in request.node.path.parents:
        monkeypatch.chdir(request.getfixturevalue("tmp_path"))
