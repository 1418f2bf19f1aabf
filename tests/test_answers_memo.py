"""answers_memo: new-project remembers each project's answers while its file is unchanged,
and still refuses a copied project, a changed or broken answers file, as without the memo."""

from __future__ import annotations

import os
import shutil

import pytest

from monostack import answers_memo, filestat, projects
from monostack.errors import UserError
from monostack.projects import ANSWERS_FILE, new_project
from tests.conftest import root_of


@pytest.fixture
def counted(monkeypatch):
    """Files older than an instant count as settled; each real read of answers is recorded."""
    monkeypatch.setattr(filestat, "RACY_SECONDS", -1)
    reads: list[str] = []
    real = projects.read_answers

    def counting(path, *args):
        reads.append(path.name)
        return real(path, *args)

    monkeypatch.setattr(projects, "read_answers", counting)
    return reads


def _memo(root):
    return list((root / ".git/monostack").glob(f"jinja-*/{answers_memo.MEMO_FILE}"))


def test_unchanged_answers_are_not_read_again(repo, counted):
    root = root_of(repo)
    for name in ("alpha", "beta", "gamma"):
        new_project(root, name)
    counted.clear()
    new_project(root, "delta")
    assert "delta" not in counted and set(counted) <= {"gamma"}  # gamma: first seen last run
    counted.clear()
    result = new_project(root, "epsilon")
    assert counted == ["delta"] and result.project_dir == "epsilon"
    assert len(_memo(root)) == 1


def test_a_copied_project_is_refused_with_the_original_remembered(repo, counted):
    root = root_of(repo)
    new_project(root, "alpha")
    new_project(root, "beta")  # alpha's answers are now remembered
    shutil.copytree(root / "projects/alpha", root / "projects/alpha_copy")
    with pytest.raises(UserError, match="project_name 'alpha' is also the name of projects/alpha"):
        new_project(root, "gamma")


def test_an_edit_with_the_old_size_and_times_put_back_is_read(repo, counted):
    root = root_of(repo)
    new_project(root, "alpha")
    new_project(root, "beta")
    path = root / "projects/alpha" / ANSWERS_FILE
    st = os.stat(path)
    text = path.read_text()
    path.write_text(text.replace("project_name: alpha", "project_name: al/ha"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the change time still moves
    with pytest.raises(UserError, match="project_name 'al/ha' is not valid"):
        new_project(root, "gamma")
    path.write_text(text.replace("project_name: alpha", "project_name: beta"))
    with pytest.raises(UserError, match="project_name 'beta' is also the name of"):
        new_project(root, "gamma")


def test_a_fresh_file_is_never_remembered(repo, monkeypatch):
    monkeypatch.setattr(filestat, "RACY_SECONDS", 3600)  # every file was just written
    root = root_of(repo)
    new_project(root, "alpha")
    new_project(root, "beta")
    assert _memo(root) == []


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"format": 1, "projects": 3}'])
def test_a_damaged_memo_only_means_reading_again(repo, counted, content):
    root = root_of(repo)
    new_project(root, "alpha")
    new_project(root, "beta")
    (memo,) = _memo(root)
    memo.write_bytes(content)
    counted.clear()
    new_project(root, "gamma")
    assert sorted(counted) == ["alpha", "beta"]


def test_a_link_in_place_of_the_memo_is_neither_read_nor_written(repo, counted, tmp_path):
    root = root_of(repo)
    new_project(root, "alpha")
    new_project(root, "beta")
    (memo,) = _memo(root)
    outside = tmp_path / "outside.json"
    outside.write_bytes(memo.read_bytes())
    memo.unlink()
    memo.symlink_to(outside)
    before = outside.read_bytes()
    counted.clear()
    new_project(root, "gamma")
    assert sorted(counted) == ["alpha", "beta"] and outside.read_bytes() == before


def test_a_changed_template_drops_the_remembered_answers(repo, counted):
    """Answers are checked against stack.yml: another stack.yml means checking them again."""
    root = root_of(repo)
    new_project(root, "alpha")
    new_project(root, "beta")
    stack = root / "stack_template/stack.yml"
    stack.write_text(stack.read_text() + "\n# edited\n")
    counted.clear()
    new_project(root, "gamma")
    assert sorted(counted) == ["alpha", "beta"]


def test_the_memo_is_written_as_a_swept_temporary_and_a_killed_writers_one_is_removed(
    repo, counted, monkeypatch
):
    """A kill between writing the memo and its rename leaves a temporary the next run removes."""
    from monostack import tempfiles

    root = root_of(repo)
    new_project(root, "alpha")
    written: list[str] = []
    real_replace = os.replace

    def dying_replace(src, dst):
        written.append(os.fspath(src))
        if os.fspath(dst).endswith(answers_memo.MEMO_FILE):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(tempfiles.os, "replace", dying_replace)
    new_project(root, "beta")  # the memo cannot be saved: new-project still succeeds
    monkeypatch.setattr(tempfiles.os, "replace", real_replace)
    memo_tmp = [w for w in written if answers_memo.MEMO_FILE in os.path.basename(w)]
    assert memo_tmp and all(tempfiles.is_part(os.path.basename(w)) for w in memo_tmp)
    folder = next((root / ".git/monostack").glob("jinja-*"))
    orphan = folder / f".{answers_memo.MEMO_FILE}.999999999.x{tempfiles.PART_SUFFIX}"
    orphan.write_text("{}")
    new_project(root, "gamma")
    assert not orphan.exists() and not [p for p in folder.iterdir() if ".tmp" in p.name]
