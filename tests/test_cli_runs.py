"""Run folders through the CLI: numbering, --overwrite, interrupts, SIGTERM, two runs, full disks.

The rule (README, "Run folders"): a run folder holds one run, whole, and
every file in it records the same run id.
"""

import csv
import errno
import json
import os
import signal
import subprocess
import sys

import pytest
from helpers import run

from mnistnet import checkpoint, experiment, fileio, plots
from mnistnet.checkpoint import load_model

FAST = ["--hidden", "8", "--epochs", "3", "--quiet"]


def on(data_dir):
    return ["--dataset", "idx", "--data-dir", data_dir]


def _train(data, out, *extra):
    return run("train-multiclass", *on(data), "--out", out, *FAST, *extra)


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _no_leftovers(parent):
    """No staging folder, no temporary file: nothing hidden anywhere under ``parent``."""
    hidden = [p for p in parent.rglob(".*")]
    assert hidden == [], hidden
    assert list(parent.rglob("*.tmp")) == []


def _run_ids(folder):
    """The run id every file of ``folder`` records (a set: one element if they agree)."""
    ids = {load_model(folder / "model.npz")[1]["run_id"]}
    with open(folder / "history.csv") as f:
        ids |= {row["run_id"] for row in csv.DictReader(f)}
    ids.add(json.loads((folder / "metrics.json").read_text())["run_id"])
    ids.add(json.loads((folder / "run.json").read_text())["run_id"])
    return ids


def test_every_file_of_a_run_records_one_run_id_and_run_json_lists_them(tmp_path, idx_dataset):
    out = tmp_path / "o"
    result = _train(idx_dataset, out, "--no-plots", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert _run_ids(out) == {doc["run_id"]}
    record = json.loads((out / "run.json").read_text())
    assert record["pictures"] == "skipped"
    assert set(record["files"]) == {"model.npz", "history.csv", "metrics.json"}
    import hashlib

    for name, entry in record["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]


def test_default_folders_are_numbered_and_a_named_run_folder_needs_overwrite(
    tmp_path, idx_dataset, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    outs = []
    for _ in range(2):
        result = run("train-multiclass", *on(idx_dataset), *FAST, "--no-plots", "--json")
        assert result.exit_code == 0, result.output
        outs.append(json.loads(result.stdout)["config"]["out"])
    assert outs == ["runs/multiclass", "runs/multiclass-2"]  # the config records where it went
    first = _files(tmp_path / "runs" / "multiclass")

    result = _train(idx_dataset, "runs/multiclass", "--no-plots")
    assert result.exit_code == 2
    assert "runs/multiclass holds a run already; pass --overwrite" in result.stderr
    assert _files(tmp_path / "runs" / "multiclass") == first

    result = run("train-multiclass", *on(idx_dataset), *FAST, "--no-plots", "--overwrite")
    assert result.exit_code == 0, result.output  # --overwrite alone: the default folder
    assert _files(tmp_path / "runs" / "multiclass") != first
    assert sorted(os.listdir("runs")) == ["multiclass", "multiclass-2"]
    _no_leftovers(tmp_path / "runs")


def test_a_folder_with_other_files_is_refused_even_with_overwrite(tmp_path, idx_dataset):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "notes.txt").write_text("mine")
    result = _train(idx_dataset, tmp_path / "o", "--overwrite")
    assert result.exit_code == 2
    assert "holds other things than a run's files (notes.txt)" in result.stderr
    assert _files(tmp_path / "o") == {"notes.txt": b"mine"}


def _refused(where, default):
    return (
        f"Error: Invalid value for '--out': {where} would keep --resume and --overwrite from "
        f"replacing the run. Choose another folder, such as runs/{default}.\n"
    )


def test_lr_find_compare_and_sweep_keep_out_of_run_folders(tmp_path, idx_dataset, monkeypatch):
    # A picture beside a run would keep --resume and --overwrite from replacing the run.
    monkeypatch.chdir(tmp_path)
    assert _train(idx_dataset, "a", "--epochs", 1, "--no-plots").exit_code == 0
    assert _train(idx_dataset, "b", "--epochs", 1, "--no-plots").exit_code == 0
    before = _files(tmp_path / "a")
    itself = "a is a training run's folder; {} there"
    inside = "a/lr is inside the training run's folder a; a folder there"
    for args, where, default in [
        (["lr-find", *on(idx_dataset), "--out", "a"], itself.format("lr-find.png"), "lr-find"),
        (["lr-find", *on(idx_dataset), "--out", "a/lr"], inside, "lr-find"),
        (["compare", "a", "b", "--out", "a"], itself.format("compare-test_acc.png"), "compare"),
        (["sweep", "--grid", "lr=0.1,0.2", "--out", "a"], itself.format("the sweep's runs"),
         "sweep"),
    ]:  # fmt: skip
        result = run(*args)
        assert result.exit_code == 2, result.output
        assert result.stderr.endswith(_refused(where, default))
    assert _files(tmp_path / "a") == before and sorted(os.listdir()) == ["a", "b", "idx-data"]
    assert run("compare", "a", "b", "--out", "a", "--no-plots").exit_code == 0  # writes nothing
    result = run("train-multiclass", "--resume", "a", "--epochs", 2, "--quiet", "--no-plots")
    assert result.exit_code == 0, result.output  # the run goes on in its folder


def test_a_run_folder_holding_another_file_is_not_resumed_in_place(tmp_path, idx_dataset):
    out, before = _earlier_run(tmp_path, idx_dataset, "--no-plots")
    (out / "lr-find.png").write_text("mine")  # written there by an earlier version
    for extra in ([], ["--overwrite"]):
        result = run("train-multiclass", "--resume", out, "--epochs", 2, "--quiet", *extra)
        assert result.exit_code == 2
        assert result.stderr.endswith(
            f"Error: Invalid value for '--resume': the output folder {out} holds other things "
            "than a run's files (lr-find.png), which mnistnet never deletes; move them out, "
            "or choose another folder\n"
        )
        assert _files(out) == {**before, "lr-find.png": b"mine"}
    result = run("train-multiclass", "--resume", out, "--epochs", 2, "--quiet", "--out", out)
    assert result.exit_code == 2 and "Invalid value for '--out': the output" in result.stderr
    result = run("train-multiclass", "--resume", out, "--epochs", 2, "--quiet", "--no-plots",
                 "--out", tmp_path / "p")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _files(out) == {**before, "lr-find.png": b"mine"}


def test_a_folder_a_run_is_being_written_to_is_a_run_folder(tmp_path, idx_dataset, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default folder itself: no folder to suggest
    (tmp_path / "runs" / "lr-find" / ".mnistnet-partial-x").mkdir(parents=True)
    result = run("lr-find", *on(idx_dataset))
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "runs/lr-find is a training run's folder; lr-find.png there would keep --resume and "
        "--overwrite from replacing the run. Choose another folder.\n"
    )


def _earlier_run(tmp_path, idx_dataset, *extra):
    out = tmp_path / "o"
    assert _train(idx_dataset, out, "--epochs", 1, *extra).exit_code == 0
    return out, _files(out)


def test_ctrl_c_while_saving_keeps_the_earlier_run_whole(tmp_path, idx_dataset, monkeypatch):
    out, before = _earlier_run(tmp_path, idx_dataset, "--no-plots")
    real_write_text = experiment.write_text

    def write_text(path, text):  # model.npz is staged: Ctrl-C while writing history.csv
        real_write_text(path, text[: len(text) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "write_text", write_text)
    result = _train(idx_dataset, out, "--overwrite")
    assert result.exit_code == 130
    assert result.stderr.endswith(
        f"Interrupted while saving; nothing saved, {out} still holds its earlier run.\n"
    )
    assert _files(out) == before and len(_run_ids(out)) == 1
    _no_leftovers(tmp_path)


def _draw_loss_only(monkeypatch, report_error):
    """Pictures without matplotlib: loss.png is "drawn", then the report raises ``report_error``."""

    def plot_history(columns, out_dir, title, run_id=None, marks=None):
        path = os.path.join(out_dir, "loss.png")
        fileio.write_text(path, "a picture")
        return [path]

    def plot_report(*args, **kwargs):
        raise report_error

    monkeypatch.setattr(plots, "plot_history", plot_history)
    monkeypatch.setattr(plots, "plot_report", plot_report)


def test_ctrl_c_while_drawing_keeps_the_run_without_pictures(tmp_path, idx_dataset, monkeypatch):
    out, before = _earlier_run(tmp_path, idx_dataset, "--no-plots")
    for name in ("loss.png", "confusion.png"):  # the earlier run's pictures
        (out / name).write_text("stale")
    _draw_loss_only(monkeypatch, KeyboardInterrupt())
    result = _train(idx_dataset, out, "--overwrite")
    assert result.exit_code == 130
    assert result.stderr.endswith(
        f"Interrupted while drawing the pictures; the run was saved in {out} without pictures.\n"
    )
    assert sorted(_files(out)) == ["history.csv", "metrics.json", "model.npz", "run.json"]
    assert json.loads((out / "run.json").read_text())["pictures"] == "interrupted"
    assert len(_run_ids(out)) == 1 and _files(out)["run.json"] != before["run.json"]
    _no_leftovers(tmp_path)


def test_a_picture_that_fails_leaves_the_run_without_pictures(tmp_path, idx_dataset, monkeypatch):
    _draw_loss_only(monkeypatch, RuntimeError("no font"))
    out = tmp_path / "o"
    result = _train(idx_dataset, out)
    assert result.exit_code == 1
    assert f"the run was saved in {out} without pictures: drawing them failed: no font" in (
        result.stderr
    )
    assert sorted(_files(out)) == ["history.csv", "metrics.json", "model.npz", "run.json"]
    assert json.loads((out / "run.json").read_text())["pictures"] == "failed"


def test_a_full_disk_names_the_file_and_saves_nothing(tmp_path, idx_dataset, monkeypatch):
    real_open = open

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(fileio, "open", lambda *a, **k: FullDisk(real_open(*a, **k)), raising=False)
    out = tmp_path / "o"
    result = _train(idx_dataset, out, "--no-plots")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out / 'history.csv'}: No space left on device; nothing saved\n"
    )
    assert not out.exists()
    _no_leftovers(tmp_path)


def test_a_full_disk_while_writing_the_model_names_it(tmp_path, idx_dataset, monkeypatch):
    def savez(f, **arrays):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.np, "savez", savez)
    result = _train(idx_dataset, tmp_path / "o", "--no-plots")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {tmp_path / 'o' / 'model.npz'}: No space left")


def test_sigterm_while_saving_is_an_interrupt_with_exit_143(tmp_path, idx_dataset, monkeypatch):
    out, before = _earlier_run(tmp_path, idx_dataset, "--no-plots")
    real_write_text = experiment.write_text

    def write_text(path, text):
        real_write_text(path, text)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(experiment, "write_text", write_text)
    result = _train(idx_dataset, out, "--overwrite")
    assert result.exit_code == 143
    assert result.stderr.endswith(
        f"Terminated while saving; nothing saved, {out} still holds its earlier run.\n"
    )
    assert _files(out) == before
    _no_leftovers(tmp_path)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # given back after the command


def test_sigterm_in_any_command_says_terminated_and_exits_143(binary_model, monkeypatch):
    def load_model(path):
        os.kill(os.getpid(), signal.SIGTERM)
        return checkpoint.load_model(path)

    monkeypatch.setattr(checkpoint, "load_model", load_model)
    result = run("evaluate", binary_model, "--dataset", "mnist-sample")
    assert result.exit_code == 143 and result.stderr == "Terminated.\n"


# --- real processes ----------------------------------------------------------------------

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def _start(*args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "mnistnet", *map(str, args)],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("save", [False, True])
def test_sigterm_during_training_exits_143_and_leaves_no_temporaries(tmp_path, save):
    out = tmp_path / "o"
    args = ["train-multiclass", "--dataset", "mnist-sample", "--samples-per-class", 50,
            "--hidden", 8, "--epochs", 100000, "--out", out, "--jsonl", "--no-plots",
            *(["--save-on-interrupt"] if save else [])]  # fmt: skip
    proc = _start(*args, cwd=tmp_path)
    first = proc.stdout.readline()  # the first epoch is done: the run folder is reserved
    assert json.loads(first)["epoch"] == 1, proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    if save:
        assert "Terminated after " in stderr and f"was saved in {out}." in stderr
        assert load_model(out / "model.npz")[1]["interrupted"] is True
        assert len(_run_ids(out)) == 1
    else:
        assert "epochs; nothing saved (--save-on-interrupt keeps them)." in stderr
        assert not out.exists()
    _no_leftovers(tmp_path)


def test_two_trainings_at_once_never_mix(tmp_path):
    # Same new --out: one saves there, the other fails at once, saying why. No default
    # --out: both save, into runs/multiclass and runs/multiclass-2.
    common = ["train-multiclass", "--dataset", "mnist-sample", "--samples-per-class", 30,
              "--hidden", 8, "--epochs", 30, "--no-plots", "-q"]  # fmt: skip
    named = [_start(*common, "--out", "same", cwd=tmp_path) for _ in range(2)]
    numbered = [_start(*common, cwd=tmp_path) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in named + numbered]
    for proc in named + numbered:
        proc.stdout.close()
        proc.stderr.close()
    codes = sorted(code for code, _ in results[:2])
    assert codes in ([0, 1], [0, 2]), results
    loser = next(err for code, err in results[:2] if code)
    assert "another mnistnet run is writing there" in loser or "holds a run already" in loser
    assert "File exists" not in loser
    assert [code for code, _ in results[2:]] == [0, 0], results
    assert sorted(os.listdir(tmp_path / "runs")) == ["multiclass", "multiclass-2"]
    for folder in (tmp_path / "same", *(tmp_path / "runs").iterdir()):
        assert len(_run_ids(folder)) == 1
    _no_leftovers(tmp_path)


def test_folder_names_in_messages_are_data(tmp_path, idx_dataset):
    out = tmp_path / "a\x1b[2J[red]b"
    assert _train(idx_dataset, out, "--no-plots").exit_code == 0
    result = _train(idx_dataset, out, "--no-plots")
    assert result.exit_code == 2
    assert "a\\x1b[2J[red]b holds a run already" in result.stderr
    assert "\x1b" not in result.stderr
