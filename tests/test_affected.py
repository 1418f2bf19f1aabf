"""invoke affected / --changed-since: projects touched, global changes, root CI files by owner."""

from __future__ import annotations

import json

from monostack.affected import affected, is_global_path
from tests.conftest import assert_user_error, invoke, invoke_in_process, root_of
from tests.test_runner import add_project, commit_all


def managed_copy(root, project_dir: str, name: str) -> None:
    """A root copy as sync writes it (header naming the project's source)."""
    from monostack.workflows.header import managed_file

    origin = f"projects/{project_dir}/.github/workflows/{name}"
    target = root / ".github/workflows" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(managed_file(origin, b"name: x\non: push\njobs: {}\n"))


def setup(repo):
    root = root_of(repo)
    add_project(root, "alpha")
    add_project(root, "beta")
    managed_copy(root, "alpha", "alpha-ci.yml")
    (root / ".github/workflows/hand-written.yml").write_text("name: mine\n")
    commit_all(repo, "two projects")
    repo.git.checkout("-b", "feature")
    return root


def test_a_project_change_affects_only_that_project(repo):
    root = setup(repo)
    (root / "projects/beta/src/train.py").write_text("v2\n")
    found = affected(root, "main")
    assert [p.name for p in found.projects] == ["beta"]
    assert not found.global_change and not found.monorepo


def test_a_global_change_affects_every_project(repo):
    root = setup(repo)
    (root / "monorepo.yml").write_text((root / "monorepo.yml").read_text() + "\n")
    found = affected(root, "main")
    assert [p.name for p in found.projects] == ["alpha", "beta"]
    assert found.global_change and found.global_paths == ["monorepo.yml"]
    assert is_global_path("stack_template/stack.yml") and not is_global_path("README.md")


def test_root_ci_files_count_for_their_owner_or_for_the_monorepo(repo):
    root = setup(repo)
    copy = root / ".github/workflows/alpha-ci.yml"
    copy.write_bytes(copy.read_bytes() + b"# edited in the root\n")
    found = affected(root, "main")
    assert [p.name for p in found.projects] == ["alpha"] and not found.monorepo
    (root / ".github/workflows/hand-written.yml").write_text("name: mine, changed\n")
    found = affected(root, "main")
    assert found.monorepo and found.root_ci_paths == [".github/workflows/hand-written.yml"]


def test_nothing_changed_affects_nothing_and_no_ref_affects_everything(repo):
    root = setup(repo)
    (root / "README.md").write_text("docs only\n")
    found = affected(root, "main")
    assert found.projects == [] and not found.monorepo and not found.global_change
    everything = affected(root, None)
    assert len(everything.projects) == 2 and everything.global_change


def test_cli_json_for_scripts_and_errors(repo):
    root = setup(repo)
    (root / "projects/alpha/databricks.yml").write_text("bundle:\n  name: alpha2\n")
    result = invoke(repo, "affected", "--changed-since", "main", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["global"] is False and data["monorepo"] is False
    assert data["projects"] == [{"name": "alpha", "dir": "alpha", "path": "projects/alpha"}]
    text = invoke_in_process(repo, "affected", "--changed-since", "main")
    assert "1 project(s) affected since main" in text.stdout and "alpha" in text.stdout
    assert_user_error(
        invoke_in_process(repo, "affected", "--changed-since", "nope"), "--changed-since"
    )
    assert_user_error(invoke_in_process(repo, "affected", "--format", "xml"), "--format")
