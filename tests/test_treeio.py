from __future__ import annotations

import os

import pytest

from monostack.errors import UserError
from monostack.treeio import apply_changes, write_new_directory


def snapshot(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_write_new_directory_writes_everything(tmp_path):
    target = tmp_path / "a" / "b" / "proj"
    write_new_directory(target, {"x.txt": b"x", "deep/er/y.bin": b"\x00\xff"})
    assert snapshot(target) == {"x.txt": b"x", "deep/er/y.bin": b"\x00\xff"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["proj"]


def test_write_new_directory_refuses_existing(tmp_path):
    (tmp_path / "proj").mkdir()
    with pytest.raises(UserError, match="already exists"):
        write_new_directory(tmp_path / "proj", {"x": b"x"})


def test_write_new_directory_failure_removes_staging_and_created_parents(tmp_path):
    target = tmp_path / "new" / "proj"

    def boom(rel):
        if rel == "b":
            raise OSError("injected")

    with pytest.raises(UserError, match="injected"):
        write_new_directory(target, {"a": b"1", "b": b"2", "c": b"3"}, on_file=boom)
    assert list(tmp_path.iterdir()) == []


def test_apply_changes_creates_updates_deletes(tmp_path):
    (tmp_path / "keep.txt").write_text("keep")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "gone.yml").write_text("gone")
    (tmp_path / "upd.yml").write_text("v1")
    os.chmod(tmp_path / "upd.yml", 0o600)
    apply_changes(tmp_path, {"upd.yml": b"v2", "new/dir/n.yml": b"n", "old/gone.yml": None})
    assert snapshot(tmp_path) == {"keep.txt": b"keep", "upd.yml": b"v2", "new/dir/n.yml": b"n"}
    assert not (tmp_path / "old").exists(), "emptied directory is removed"
    assert (tmp_path / "upd.yml").stat().st_mode & 0o777 == 0o600


def test_apply_changes_is_all_or_nothing(tmp_path):
    (tmp_path / "a.yml").write_text("a1")
    (tmp_path / "b.yml").write_text("b1")
    before = snapshot(tmp_path)

    def boom(rel):
        if rel == "c/new.yml":
            raise OSError("injected")

    changes = {"a.yml": b"a2", "b.yml": None, "c/new.yml": b"c", "d.yml": b"d"}
    with pytest.raises(UserError, match="injected"):
        apply_changes(tmp_path, changes, on_file=boom)
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yml", "b.yml"]


def test_apply_changes_rolls_back_after_partial_renames(tmp_path, monkeypatch):
    (tmp_path / "a.yml").write_text("a1")
    (tmp_path / "b.yml").write_text("b1")
    before = snapshot(tmp_path)
    real_replace = os.replace
    renamed = []

    def flaky_replace(src, dst):
        if str(dst).endswith("b.yml") and renamed == [tmp_path / "a.yml"]:
            renamed.append("failed")  # a.yml installed, then installing b.yml fails, once
            raise OSError("rename failed (injected)")
        real_replace(src, dst)
        if str(dst).endswith(".yml"):
            renamed.append(dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(UserError, match="injected"):
        apply_changes(tmp_path, {"a.yml": b"a2", "b.yml": b"b2"})
    monkeypatch.setattr(os, "replace", real_replace)
    assert renamed, "the fault came after a rename"
    assert snapshot(tmp_path) == before
