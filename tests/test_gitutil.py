"""changed_paths: what a branch changed since REF, in real git repositories."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from monostack.errors import UserError
from monostack.gitutil import changed_paths
from tests.conftest import root_of


def write(root: Path, rel: str, text: str = "x\n") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def commit(repo: git.Repo, message: str) -> None:
    repo.git.add(A=True)
    repo.index.commit(message)


@pytest.fixture
def small(tmp_path: Path) -> git.Repo:
    """A tiny repo: two files committed on main."""
    repo = git.Repo.init(tmp_path / "r", initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "t")
        cw.set_value("user", "email", "t@example.invalid")
    root = root_of(repo)
    write(root, "projects/a/a.py")
    write(root, "projects/b/b.py")
    write(root, ".gitignore", "*.log\n")
    commit(repo, "seed")
    return repo


def test_clean_tree_has_no_changes(small):
    assert changed_paths(root_of(small), "main") == set()
    assert changed_paths(root_of(small), "HEAD") == set()


def test_commits_on_a_branch_since_ref(small):
    root = root_of(small)
    small.git.checkout("-b", "feature")
    write(root, "projects/a/new.py")
    commit(small, "a: new file")
    write(root, "projects/a/a.py", "changed\n")
    commit(small, "a: edit")
    assert changed_paths(root, "main") == {"projects/a/new.py", "projects/a/a.py"}


def test_uses_merge_base_so_later_commits_on_ref_do_not_count(small):
    root = root_of(small)
    small.git.checkout("-b", "feature")
    write(root, "projects/a/a.py", "feature\n")
    commit(small, "feature edit")
    small.git.checkout("main")
    write(root, "projects/b/b.py", "main moved on\n")
    commit(small, "main edit")
    small.git.checkout("feature")
    # projects/b/b.py differs between main and feature, but the branch never touched it.
    assert changed_paths(root, "main") == {"projects/a/a.py"}


def test_staged_unstaged_untracked_deleted_and_renamed(small):
    root = root_of(small)
    write(root, "projects/a/a.py", "unstaged\n")
    write(root, "projects/c/staged.py")
    small.git.add("projects/c/staged.py")
    write(root, "projects/d/untracked.py")
    write(root, "projects/d/debug.log")  # ignored by .gitignore
    (root / "projects/e").mkdir()
    small.git.mv("projects/b/b.py", "projects/e/moved.py")
    assert changed_paths(root, "HEAD") == {
        "projects/a/a.py",
        "projects/c/staged.py",
        "projects/d/untracked.py",
        "projects/b/b.py",
        "projects/e/moved.py",
    }
    (root / "projects/a/a.py").unlink()
    assert "projects/a/a.py" in changed_paths(root, "HEAD")


def test_unusual_file_names_come_back_unquoted(small):
    root = root_of(small)
    write(root, "projects/a/with space.py")
    write(root, "projects/a/naïve.py")
    assert changed_paths(root, "HEAD") == {"projects/a/with space.py", "projects/a/naïve.py"}


def test_root_below_the_repository_top_gives_paths_relative_to_root(small):
    top = root_of(small)
    write(top, "mono/projects/x/x.py")
    write(top, "elsewhere/y.py")
    assert changed_paths(top / "mono", "HEAD") == {"projects/x/x.py"}


def test_unknown_ref_is_a_clear_user_error(small):
    with pytest.raises(UserError) as info:
        changed_paths(root_of(small), "origin/nope")
    assert "--changed-since 'origin/nope'" in info.value.message
    assert "fetch" in info.value.message
    with pytest.raises(UserError, match="HEAD~5"):
        changed_paths(root_of(small), "HEAD~5")
    with pytest.raises(UserError, match="give a branch, tag or commit"):
        changed_paths(root_of(small), "--output=x")


def test_not_a_git_directory_is_a_clear_user_error(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UserError) as info:
        changed_paths(plain, "main")
    assert str(plain) in info.value.message
    assert "not inside a git repository" in info.value.message
