"""Importing any module of the package touches no disk and no network.

pytest imports every module under mnistnet/ to run the docstring examples
(``--doctest-modules``), and ``mnistnet --help`` imports the command line.
"""

import os
import subprocess
import sys

IMPORT_ALL = """
import importlib, pkgutil, socket

def offline(*args, **kwargs):
    raise RuntimeError("network used at import")

socket.socket.connect = socket.socket.connect_ex = offline
import mnistnet

for module in pkgutil.walk_packages(mnistnet.__path__, "mnistnet."):
    importlib.import_module(module.name)
print(module.name)
"""


def test_importing_every_module_writes_nothing_and_stays_offline(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for name in ("MNISTNET_DATA_DIR", "MPLCONFIGDIR"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("mnistnet.")  # the walk found the modules
    assert list(tmp_path.iterdir()) == []
