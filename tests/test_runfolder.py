"""Run folders: one run per folder, written whole or not at all (mnistnet.runfolder)."""

import os
import signal
import threading

import pytest

from mnistnet.errors import MnistnetError
from mnistnet.runfolder import (
    RunFolderTaken,
    deferred_signals,
    open_run_folder,
    run_folder_receiving,
)

NAMES = ("model.npz", "history.csv", "a.png")


def _write_run(folder, text):
    for name in NAMES[:2]:
        with open(folder.file(name), "w") as f:
            f.write(f"{text} {folder.run_id}")
    return folder.commit()


def _hidden(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_files_appear_together_at_the_commit_and_nothing_is_left_beside(tmp_path):
    target = tmp_path / "runs" / "a"
    with open_run_folder(target, NAMES, last="history.csv") as folder:
        assert target.is_dir() and _visible(target) == []  # reserved, still empty
        for name in ("model.npz", "history.csv"):
            with open(folder.file(name), "w") as f:
                f.write("data")
        assert _visible(target) == []  # staged inside it, hidden
        assert os.path.dirname(folder.staging) == str(target)
        assert os.path.basename(folder.staging).startswith(".mnistnet-partial-")
        assert folder.commit() == str(target)
    assert sorted(os.listdir(target)) == ["history.csv", "model.npz"]
    assert os.listdir(tmp_path / "runs") == ["a"]


def _visible(folder):
    return [p.name for p in folder.iterdir() if not p.name.startswith(".")]


def test_the_folder_asked_for_is_used_itself(tmp_path, monkeypatch):
    # An existing empty folder (a mount point, the current folder) is filled, not replaced.
    here = tmp_path / "empty"
    here.mkdir()
    inode = here.stat().st_ino
    monkeypatch.chdir(here)
    with open_run_folder(".", NAMES) as folder:
        _write_run(folder, "run")
    assert sorted(os.listdir(here)) == ["history.csv", "model.npz"]
    assert here.stat().st_ino == inode


def test_a_staging_folder_left_by_a_killed_run_is_removed(tmp_path):
    with open_run_folder(tmp_path / "a", NAMES) as folder:
        _write_run(folder, "old")
    (tmp_path / "a" / ".mnistnet-partial-dead").mkdir()  # kill -9 while training
    (tmp_path / "a" / ".mnistnet-partial-dead" / "model.npz").write_text("half")
    with open_run_folder(tmp_path / "a", NAMES, overwrite=True) as folder:
        _write_run(folder, "new")
    assert sorted(os.listdir(tmp_path / "a")) == ["history.csv", "model.npz"]


def test_a_run_that_fails_leaves_nothing_not_even_the_folders_it_made(tmp_path):
    with pytest.raises(ValueError), open_run_folder(tmp_path / "new" / "deep" / "a", NAMES) as f:
        open(f.file("model.npz"), "w").close()
        raise ValueError("training diverged")
    assert list(tmp_path.iterdir()) == []


def test_an_earlier_run_stays_whole_until_the_new_one_is_complete(tmp_path):
    target = tmp_path / "a"
    with open_run_folder(target, NAMES) as folder:
        old_id = folder.run_id
        _write_run(folder, "old")
    before = {p.name: p.read_text() for p in target.iterdir()}
    with pytest.raises(KeyboardInterrupt):  # interrupted while writing the new run
        with open_run_folder(target, NAMES, overwrite=True) as folder:
            assert folder.replaces
            open(folder.file("model.npz"), "w").close()
            raise KeyboardInterrupt
    assert {p.name: p.read_text() for p in target.iterdir()} == before
    assert all(old_id in text for text in before.values())
    assert _hidden(target) == []
    with open_run_folder(target, NAMES, overwrite=True) as folder:
        new_id = _write_run(folder, "new") and folder.run_id
    after = {p.name: p.read_text() for p in target.iterdir()}
    assert set(after) == set(before) and all(new_id in t for t in after.values())
    assert new_id != old_id and _hidden(target) == []


def test_a_named_folder_holding_a_run_needs_overwrite(tmp_path):
    with open_run_folder(tmp_path / "a", NAMES) as folder:
        _write_run(folder, "old")
    with pytest.raises(RunFolderTaken, match="holds a run already; pass --overwrite"):
        open_run_folder(tmp_path / "a", NAMES)
    assert _hidden(tmp_path / "a") == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_holding_anything_else_is_never_touched(tmp_path, overwrite):
    (tmp_path / "a" / "data").mkdir(parents=True)
    (tmp_path / "a" / "model.npz").write_text("mine")
    (tmp_path / "a" / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderTaken, match=r"than a run's files \(data/, notes.txt\)"):
        open_run_folder(tmp_path / "a", NAMES, overwrite=overwrite)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["data", "model.npz", "notes.txt"]


def test_replacing_a_run_deletes_only_the_files_of_the_run(tmp_path):
    # A file that appears in the folder while the new run trains is not the old run's.
    with open_run_folder(tmp_path / "a", NAMES) as folder:
        _write_run(folder, "old")
    with open_run_folder(tmp_path / "a", NAMES, overwrite=True, last="history.csv") as folder:
        (tmp_path / "a" / "lr-find.png").write_text("mine")
        new_id = _write_run(folder, "new") and folder.run_id
    after = {p.name: p.read_text() for p in (tmp_path / "a").iterdir()}
    assert after == {
        "history.csv": f"new {new_id}",
        "model.npz": f"new {new_id}",
        "lr-find.png": "mine",
    }


def _run_folder(path):
    with open_run_folder(path, NAMES) as folder:
        return _write_run(folder, "run")


@pytest.mark.parametrize(
    "make,out,receiving",
    [
        (_run_folder, "a", "a"),  # the run folder itself
        (_run_folder, "a/new/deep", "a"),  # a folder that would be made inside it
        (lambda p: _run_folder(p) and os.mkdir(p / "sub"), "a/sub", None),  # already in it
        (lambda p: os.makedirs(p / ".mnistnet-partial-x"), "a", "a"),  # a run being written
        (lambda p: p.mkdir(), "a", None),  # empty
        (lambda p: p.mkdir() or (p / "a.png").write_text("x"), "a", None),  # no model
        (lambda p: p.mkdir() or (p / "model.npz").write_text("x"), "a", "a"),  # a model only
        (lambda p: p.mkdir() or (p / "notes.txt").write_text("x"), "a", None),
        (lambda p: None, "a/b", None),  # nothing there yet
    ],
)
def test_the_run_folder_that_files_written_into_a_folder_land_in(
    tmp_path, monkeypatch, make, out, receiving
):
    monkeypatch.chdir(tmp_path)
    make(tmp_path / "a")
    assert run_folder_receiving(out, NAMES, marks=("model.npz",)) == receiving


def test_numbered_folders_never_replace_anything(tmp_path):
    base = tmp_path / "runs" / "multiclass"
    paths = []
    for _ in range(3):
        with open_run_folder(base, NAMES, numbered=True) as folder:
            paths.append(_write_run(folder, "run"))
    assert paths == [str(base), f"{base}-2", f"{base}-3"]
    (tmp_path / "runs" / "multiclass-4").write_text("a file, not a folder")
    (tmp_path / "runs" / "multiclass-5").mkdir()  # empty: free
    with open_run_folder(base, NAMES, numbered=True) as folder:
        assert folder.path == f"{base}-5"


def test_a_folder_being_written_is_locked(tmp_path):
    with open_run_folder(tmp_path / "a", NAMES):
        with pytest.raises(MnistnetError, match="another mnistnet run is writing there"):
            open_run_folder(tmp_path / "a", NAMES)
        with open_run_folder(tmp_path / "a", NAMES, numbered=True) as second:
            assert second.path == f"{tmp_path / 'a'}-2"


def test_concurrent_runs_into_one_numbered_name_each_get_their_own(tmp_path):
    base = tmp_path / "runs" / "m"
    got, errors = [], []

    def one_run():
        try:
            with open_run_folder(base, NAMES, numbered=True) as folder:
                got.append(_write_run(folder, "run"))
        except Exception as exc:  # collected: the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(got)) == 8
    for path in got:  # each folder holds one run: both files name the same run id
        texts = {open(os.path.join(path, n)).read() for n in NAMES[:2]}
        assert len(texts) == 1
    assert all(_hidden(tmp_path / "runs" / p) == [] for p in os.listdir(tmp_path / "runs"))


def test_an_unwritable_place_fails_at_once(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(MnistnetError, match="cannot write files in the output folder .*Not a dir"):
        open_run_folder(tmp_path / "afile" / "a", NAMES)
    with pytest.raises(RunFolderTaken, match="is a file, not a folder"):
        open_run_folder(tmp_path / "afile", NAMES)


def test_deferred_signals_arrive_after_the_block():
    seen = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            seen.append("the block ran to its end")
    assert seen == ["the block ran to its end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _stage(folder, names, text):
    for name in names:
        with open(folder.file(name), "w") as f:
            f.write(text)


def test_ctrl_c_during_the_moves_waits_for_them_and_run_json_moves_last(tmp_path, monkeypatch):
    names = ("history.csv", "model.npz", "run.json")
    target = tmp_path / "a"
    with open_run_folder(target, names, last="run.json") as folder:
        _stage(folder, names, "old")
        folder.commit()
    moves = []
    real_replace = os.replace

    def replace(src, dst):
        if not moves:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the first file moves
        moves.append(("out" if os.path.dirname(src) == str(target) else "in", src[-8:]))
        real_replace(src, dst)

    with open_run_folder(target, names, overwrite=True, last="run.json") as folder:
        _stage(folder, names, "new")
        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(KeyboardInterrupt):  # raised once every file is in place
            folder.commit()
        monkeypatch.undo()
    assert {p.name: p.read_text() for p in target.iterdir()} == dict.fromkeys(names, "new")
    assert [m[0] for m in moves] == ["out"] * 3 + ["in"] * 3
    assert moves[0][1] == "run.json" and moves[-1][1] == "run.json"
