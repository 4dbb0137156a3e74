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
