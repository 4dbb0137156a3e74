"""The console script's entry point: Ctrl-C while importing, closed standard streams."""

import importlib.metadata
import io
import os
import subprocess
import sys
import textwrap

from mnistnet import __main__ as entry
from mnistnet.console import ChatterStream
from mnistnet.errors import EXIT_INTERRUPTED

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def _mnistnet(*args, close_stdout=False):
    """Run ``python -m mnistnet ARGS`` (what the console script calls) in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "mnistnet", *map(str, args)],
        capture_output=not close_stdout,
        stderr=subprocess.PIPE if close_stdout else None,
        text=True,
        env=ENV,
        preexec_fn=(lambda: os.close(1)) if close_stdout else None,
        check=False,
    )


def test_the_console_script_is_the_wrapper():
    (script,) = importlib.metadata.entry_points(group="console_scripts", name="mnistnet")
    assert script.value == "mnistnet.__main__:main"
    assert entry._EXIT_INTERRUPTED == EXIT_INTERRUPTED


def test_closed_stdout_discards_the_output(binary_model):
    for args in ((), ("--json",)):
        result = _mnistnet("info", binary_model, *args, close_stdout=True)
        assert (result.returncode, result.stderr) == (0, "")
    result = _mnistnet("info", binary_model.parent / "nope.npz", close_stdout=True)
    assert result.returncode == 1 and result.stderr.startswith("Error: model file ")


def test_training_outlives_the_reader_of_its_log(tmp_path):
    """`mnistnet train-multiclass ... 2>&1 | head -3`: the reader quits, the run goes on."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistnet", "train-multiclass", "--dataset", "mnist-sample",
         "--samples-per-class", "20", "--hidden", "8", "--epochs", "5", "--log-every", "1",
         "--no-plots", "--out", str(tmp_path / "run")],
        stderr=subprocess.PIPE,
        env=ENV,
    )  # fmt: skip
    proc.stderr.close()  # before the child's first line: every line meets a broken pipe
    assert proc.wait(timeout=120) == 0
    assert (tmp_path / "run" / "model.npz").exists()


def test_a_console_whose_reader_has_gone_drops_its_output():
    class Gone(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    stream = ChatterStream(Gone())
    assert stream.write("epoch 1\n") == 8 and stream.broken
    assert stream.write("epoch 2\n") == 8  # dropped, no error
    stream.flush()
    assert stream.isatty() is False  # the rest is the wrapped stream's


def test_ctrl_c_while_importing_is_one_line_and_130():
    # A real SIGINT, delivered while `import click` runs (the slow first moments).
    script = textwrap.dedent(
        """
        import os, signal, sys

        class InterruptOnImport:
            def find_spec(self, name, path=None, target=None):
                if name == "click":
                    os.kill(os.getpid(), signal.SIGINT)
                return None

        sys.meta_path.insert(0, InterruptOnImport())
        sys.argv = ["mnistnet", "--version"]
        from mnistnet.__main__ import main
        main()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=ENV, check=False
    )
    assert result.returncode == EXIT_INTERRUPTED
    assert result.stderr == "Interrupted.\n"
    assert result.stdout == ""


def test_sigint_is_answered_even_when_the_shell_started_us_ignoring_it(binary_model):
    # A script's background job (`mnistnet serve M &`) starts with SIGINT ignored.
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistnet", "serve", binary_model, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert "Serving the page at" in proc.stdout.readline()  # it listens now
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == EXIT_INTERRUPTED
    finally:
        proc.kill()
        proc.wait()


def test_out_of_memory_is_one_line(monkeypatch):
    from helpers import run

    from mnistnet import experiment

    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 3.91 GiB")

    monkeypatch.setattr(experiment, "run_training", too_big)
    result = run("train-binary", "--digits", "5", "8", "--dataset", "mnist-sample", "--quiet")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: out of memory") and "Traceback" not in result.output
