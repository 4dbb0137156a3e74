"""Atomic writes: the one write-to-a-temporary-then-rename of the package."""

import os

import pytest

from mnistnet.fileio import atomic_path, move_into_place, temporary_path, write_text


def test_atomic_write_replaces_the_file_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    write_text(target, "old")
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        raise ValueError("the writer failed")
    assert target.read_text() == "old"
    assert os.listdir(target.parent) == ["metrics.json"]  # no temporary left
    write_text(target, "new")
    assert target.read_text() == "new" and os.listdir(target.parent) == ["metrics.json"]


def test_temporary_is_hidden_next_to_the_target_and_removed_unless_moved(tmp_path):
    with temporary_path(tmp_path / "a.gz") as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)
        assert os.path.basename(tmp).startswith(".a.gz.") and os.path.getsize(tmp) == 0
    assert list(tmp_path.iterdir()) == []
    with temporary_path(tmp_path / "a.gz") as tmp:
        move_into_place(tmp, tmp_path / "a")  # the final name may differ from the hint
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


def test_a_failed_rename_names_the_target_not_the_temporary(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("a folder that is not empty")
    with pytest.raises(OSError) as info, atomic_path(tmp_path / "taken") as tmp:
        open(tmp, "w").close()
    assert info.value.filename == str(tmp_path / "taken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_full_disk_names_the_file_being_written(tmp_path, monkeypatch):
    import errno

    class FullDisk:  # write() errors carry no file name; the target's is added
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("mnistnet.fileio.open", FullDisk, raising=False)
    with pytest.raises(OSError) as info:
        write_text(tmp_path / "metrics.json", "{}")
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(tmp_path / "metrics.json")
    assert list(tmp_path.iterdir()) == []


def test_checking_a_folder_creates_nothing_and_never_races(tmp_path):
    import threading

    from mnistnet.errors import MnistnetError
    from mnistnet.fileio import check_writable_dir

    errors = []

    def check(i):  # six checks of the same new folders at once (two runs starting together)
        for n in range(30):
            try:
                check_writable_dir(tmp_path / f"new{n}" / "sub", "--out")
            except MnistnetError as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=check, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "afile").write_text("")
    with pytest.raises(MnistnetError, match="cannot write files there"):
        check_writable_dir(tmp_path / "afile" / "sub", "--plots-dir")
