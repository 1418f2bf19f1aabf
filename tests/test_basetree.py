"""basetree: the template tree a project was rendered from, recorded in and read back from git."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from monostack import basetree
from monostack.config import load_config
from monostack.errors import UserError
from monostack.template import load_template
from tests.conftest import REPO_ROOT, git_status, root_of


def test_clean_template_records_heads_tree_and_touches_no_index(repo):
    root = root_of(repo)
    (root / "untracked.txt").write_text("x")
    repo.git.add("untracked.txt")
    staged_before = repo.git.diff("--cached", "--name-only")
    tree = basetree.record_template_tree(root)
    assert tree == repo.git.rev_parse("HEAD:stack_template")
    assert repo.git.diff("--cached", "--name-only") == staged_before
    assert repo.git.rev_parse(f"{basetree.BASE_REF_PREFIX}{tree}^{{tree}}") == tree


def test_dirty_template_gets_its_own_tree_without_a_ref_when_not_kept(repo):
    root = root_of(repo)
    (root / "stack_template/project/EXTRA.md").write_text("extra\n")
    tree = basetree.record_template_tree(root, keep=False)
    assert tree != repo.git.rev_parse("HEAD:stack_template")
    assert basetree.read_tree(root, tree)["project/EXTRA.md"] == b"extra\n"
    assert basetree.BASE_REF_PREFIX not in repo.git.show_ref()
    assert git_status(repo) == "?? stack_template/project/EXTRA.md"


def test_template_from_git_renders_exactly_as_from_disk(repo):
    root = root_of(repo)
    config = load_config(root)
    disk = load_template(root / "stack_template")
    memory = basetree.load_base_template(root, basetree.resolve_base(root, "HEAD"))
    assert memory.version == disk.version and memory.files is not None
    for combo in disk.iter_choice_combinations({"project_name": "demo"}, config):
        given = {"project_name": "demo", "project_uuid": "0" * 8 + "-0000-0000-0000-" + "0" * 12}
        answers = disk.resolve_answers({**given, **combo}, config)
        assert memory.render_project(answers, config) == disk.render_project(answers, config)
    assert memory.render_monorepo(config) == disk.render_monorepo(config)


def test_template_errors_name_the_tree(repo):
    root = root_of(repo)
    path = root / "stack_template/project/broken.txt.j2"
    path.write_text("{{ nope }}\n")
    repo.git.add(A=True)
    repo.index.commit("broken")
    template = basetree.load_base_template(root, basetree.resolve_base(root, "HEAD"))
    answers = template.resolve_answers({"project_name": "demo"}, load_config(root))
    with pytest.raises(UserError, match=r"stack_template@[0-9a-f]{12}/project/broken.txt.j2:1"):
        template.render_project(answers, load_config(root))


def test_resolve_base_errors(repo):
    root = root_of(repo)
    for ref, needle in (("-x", "give a commit"), ("nope", "no such commit")):
        with pytest.raises(UserError, match=needle):
            basetree.resolve_base(root, ref)
    repo.git.rm("-r", "-q", "stack_template")
    repo.index.commit("no template")
    with pytest.raises(UserError, match="has no stack_template/"):
        basetree.resolve_base(root, "HEAD")


def _git_tree_of(root, folder: str) -> str:
    """What git itself records for ``folder`` (a temporary index, as record_template_tree)."""
    env = {**os.environ, "GIT_INDEX_FILE": str(root / ".git" / "test-index")}
    subprocess.run(["git", "add", "--all", "--force", "--", folder], cwd=root, env=env, check=True)
    out = subprocess.run(
        ["git", "write-tree", f"--prefix={folder}/"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    os.unlink(root / ".git" / "test-index")
    return out.stdout.strip()


def test_hashed_tree_is_gits_tree(repo):
    root = root_of(repo)
    assert basetree.hashed_tree(root / "stack_template") == repo.git.rev_parse(
        "HEAD:stack_template"
    )
    # git's order ("a-b" < "a.txt" < "a/" < "a0"), executable bits, empty folders, bytes
    odd = root / "odd"
    for rel, data in {
        "a-b": b"x",
        "a.txt": b"",
        "a/b/c": b"\x00\xff binary",
        "a0": b"y\r\n",
        "é ü.txt": b"non-ASCII\n",
        "deep/er/still/f": b"z",
    }.items():
        (odd / rel).parent.mkdir(parents=True, exist_ok=True)
        (odd / rel).write_bytes(data)
    (odd / "run.sh").write_text("#!/bin/sh\n")
    (odd / "run.sh").chmod(0o755)
    (odd / "empty/inner").mkdir(parents=True)
    (odd / ".gitignore").write_text("*.txt\n")  # ignored files are the template's too (--force)
    assert basetree.hashed_tree(odd) == _git_tree_of(root, "odd")
    (odd / "link").symlink_to("a0")
    assert basetree.hashed_tree(odd) is None  # git records links its own way: git decides
    assert basetree.hashed_tree(root / "nothing") is None


def test_a_held_template_is_recorded_without_running_git(repo, monkeypatch):
    root = root_of(repo)
    tree = basetree.record_base(root)
    assert tree == repo.git.rev_parse("HEAD:stack_template")
    calls = []
    real = basetree._run
    monkeypatch.setattr(basetree, "_run", lambda *a: calls.append(a[1]) or real(*a))
    assert basetree.record_base(root) == tree
    assert basetree.record_template_tree(root) == tree
    repo.git.pack_refs("--all")  # as git gc does: the ref is a line of packed-refs now
    assert basetree.record_base(root) == tree
    assert calls == []
    # where .git cannot be read plainly, git itself is asked: one call
    monkeypatch.setenv("GIT_DIR", str(root / ".git"))
    assert basetree.record_base(root) == tree
    assert [c[0] for c in calls] == ["rev-parse"]
    monkeypatch.delenv("GIT_DIR")
    # a ref file that does not hold an object id is not trusted either
    ref = root / ".git" / f"{basetree.BASE_REF_PREFIX}{tree}"
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text("ref: refs/heads/main\n")
    assert basetree.record_base(root) == tree  # git's answer (the ref names another tree)
    assert [c[0] for c in calls][:2] == ["rev-parse", "rev-parse"]
    # a change is a new tree, written by git and kept by its own ref
    (root / "stack_template/project/EXTRA.md").write_text("extra\n")
    changed = basetree.record_base(root)
    assert changed not in (None, tree)
    assert repo.git.rev_parse(f"{basetree.BASE_REF_PREFIX}{changed}^{{tree}}") == changed
    assert basetree.read_tree(root, changed)["project/EXTRA.md"] == b"extra\n"


def test_a_filter_that_changes_bytes_is_left_to_git(repo):
    """With a checkout filter git stores other bytes than the file holds: the Python hash is
    not git's, so git records the tree (and a ref for its id, not the Python one)."""
    root = root_of(repo)
    (root / ".gitattributes").write_text("*.md text eol=crlf\n")
    (root / "stack_template/project/NOTE.md").write_bytes(b"one\r\ntwo\r\n")
    tree = basetree.record_base(root)
    assert basetree.read_tree(root, tree)["project/NOTE.md"] == b"one\ntwo\n"
    assert tree != basetree.hashed_tree(root / "stack_template")
    assert basetree.record_base(root) == tree  # every time, whatever the fast path computes


def test_record_base_outside_git_is_none(tmp_path):
    shutil.copytree(REPO_ROOT / "stack_template", tmp_path / "stack_template")
    assert basetree.record_base(tmp_path) is None
