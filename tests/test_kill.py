"""Kill tests: SIGKILL a writing task at its Nth write step (a deterministic hook, no timing),
then run the task normally: the repository is consistent and holds no stray file.

A forked child sets ``MONOSTACK_KILL_AT_STEP=N`` and runs the task in-process; the write path
(:mod:`monostack.writesteps`) kills it right before step N. Every step is covered for sync;
new-project and update-projects, whose step count grows with the template, are sampled
(each phase: journal, folders, staging, commit, clean-up); ``MONOSTACK_KILL_EVERY_STEP=1``
runs every step.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from monostack import writesteps
from monostack.errors import UserError
from monostack.journal import stray_files
from monostack.projects import new_project
from monostack.repolock import repo_lock, state_dir
from monostack.workflows import plan_sync, sync_workflows
from tests.conftest import git_status, root_of
from tests.test_update import change_template, commit

GH = ".github/workflows"


def run_killed(task: Callable[[], object], step: int) -> bool:
    """Run ``task`` in a forked child killed before write step ``step``; True if it was killed
    (False: the task finished before reaching that step)."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.environ[writesteps.KILL_AT_STEP_ENV] = str(step)
            writesteps.reset_steps()
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the child exits right after
            task()
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, "the task failed instead of being killed"
    return False


def count_steps(task: Callable[[], object]) -> int:
    seen = []
    writesteps.set_fault_hook(seen.append)
    writesteps.reset_steps()
    try:
        task()
    finally:
        writesteps.set_fault_hook(None)
    return len(seen)


def sample(total: int, request) -> list[int]:
    if os.environ.get("MONOSTACK_KILL_EVERY_STEP") or total <= 14:
        return list(range(1, total + 1))
    # the distinct phases: journal, folders, staging, (many alike file writes), commit, clean-up
    return sorted({1, 2, 3, total // 2, total - 3, total - 2, total - 1, total})


def strays(root: Path) -> list[str]:
    """Every leftover of a write anywhere in the work tree, and the lock/journal folder."""
    found = [
        os.path.relpath(os.path.join(folder, name), root)
        for folder, dirs, files in os.walk(root)
        if ".git" not in Path(folder).relative_to(root).parts
        for name in files + dirs
        if ".monostack-" in name
    ]
    state = state_dir(root)
    if state == root:
        return found
    # update-projects keeps an (empty) scratch folder there, new-project its compiled-template
    # cache (jinja-*, written atomically); anything else is a leftover
    return found + [
        str(p)
        for p in state.iterdir()
        if p.is_file() or (any(p.iterdir()) and not p.name.startswith("jinja-"))
    ]


def project_files(root: Path, name: str) -> list[str]:
    base = root / "projects" / name
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- new-project
def test_kill_new_project_at_every_step_then_rerun(repo, tmp_path, request):
    from tests.conftest import make_repo

    counting = root_of(make_repo(tmp_path / "count"))
    total = count_steps(lambda: new_project(counting, "alpha"))
    expected = project_files(counting, "alpha")
    assert total > len(expected)  # a step per file, plus journal and directories
    root = root_of(repo)
    for step in sample(total, request):
        assert run_killed(lambda: new_project(root, "alpha"), step), step
        leftovers = stray_files(root)
        if leftovers:  # sync --check (and test-all) fail while anything is left
            assert plan_sync(root).conflicts, step
        try:
            new_project(root, "alpha")  # the next run: recovers, then creates (or says exists)
        except UserError as exc:
            assert "already exists" in exc.message, (step, exc.message)
        assert project_files(root, "alpha") == expected, step
        assert strays(root) == [], step
        status = git_status(repo).splitlines()
        assert all(line.startswith("?? projects/alpha/") for line in status), (step, status)
        import shutil

        shutil.rmtree(root / "projects")


# --------------------------------------------------------------------------- sync-workflows
@pytest.fixture
def out_of_sync(repo):
    """alpha and beta synced and committed; then alpha's CI changed, a workflow added and beta
    removed (committed): sync has updates, a create and deletes to make."""
    root = root_of(repo)
    new_project(root, "alpha")
    new_project(root, "beta")
    sync_workflows(root)
    commit(repo, "two projects, synced")
    workflows = root / "projects/alpha" / GH
    first = sorted(workflows.iterdir())[0]
    first.write_text(first.read_text() + "# changed\n")
    (workflows / "alpha-extra.yml").write_text(
        "name: alpha extra\non: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ok\n"
    )
    repo.git.rm("-r", "-q", "projects/beta")
    commit(repo, "change alpha, remove beta")
    return repo


def ci_snapshot(root: Path) -> dict[str, bytes]:
    base = root / ".github"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


def test_kill_sync_at_every_step_is_all_old_or_all_new_then_rerun(out_of_sync, request):
    repo = out_of_sync
    root = root_of(repo)
    before = ci_snapshot(root)
    plan = plan_sync(root)
    assert {c.action for c in plan.changes} == {"create", "update", "delete"}
    total = count_steps(lambda: sync_workflows(root))
    after = ci_snapshot(root)
    repo.git.checkout("--", ".")
    repo.git.clean("-fdq")
    assert ci_snapshot(root) == before
    for step in sample(total, request):
        assert run_killed(lambda: sync_workflows(root), step), step
        # sync --check fails: leftovers to clean up, or changes still to make
        assert not plan_sync(root).in_sync, step
        with repo_lock(root):  # what any next run does first: finish or roll back
            pass
        assert ci_snapshot(root) in (before, after), f"half-applied after a kill at {step}"
        assert sync_workflows(root).exit_code == 0
        assert ci_snapshot(root) == after, step
        assert plan_sync(root).in_sync
        assert strays(root) == [], step
        repo.git.checkout("--", ".")
        repo.git.clean("-fdq")


# ------------------------------------------------------------------------- update-projects
def test_kill_update_projects_at_every_step_then_rerun(repo, request):
    from monostack.update import update_projects

    root = root_of(repo)
    new_project(root, "alpha")
    commit(repo, "alpha")
    change_template(root)
    commit(repo, "template 0.2.0")
    total = count_steps(lambda: update_projects(root))
    after = project_files(root, "alpha")
    updated = {p: (root / "projects/alpha" / p).read_bytes() for p in after}
    repo.git.checkout("--", ".")
    repo.git.clean("-fdq")
    for step in sample(total, request):
        assert run_killed(lambda: update_projects(root), step), step
        update_projects(root)  # the next run recovers and completes
        assert project_files(root, "alpha") == after, step
        assert {p: (root / "projects/alpha" / p).read_bytes() for p in after} == updated
        assert strays(root) == [], step
        repo.git.checkout("--", ".")
        repo.git.clean("-fdq")


# ----------------------------------------------------------- compiled templates (jinja-*)
def test_kill_new_project_while_it_stores_a_compiled_template_then_rerun(repo):
    """Compiled templates are written beside their final name and renamed; a kill in between
    leaves a temporary naming the dead writer, which the next run removes."""
    import shutil

    from monostack import tempfiles

    root = root_of(repo)
    for folder in state_dir(root).glob("jinja-*"):
        shutil.rmtree(folder)  # a cold cache: the run compiles, and stores, every template

    def killed_at_first_store():
        real = tempfiles.os.replace

        def replace(src, dst):
            if "jinja-" in str(dst):
                os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst)

        tempfiles.os.replace = replace
        new_project(root, "alpha")

    assert run_killed(killed_at_first_store, 1_000_000)
    (folder,) = state_dir(root).glob("jinja-*")
    assert len(list(folder.glob("*.monostack-part"))) == 1
    new_project(root, "alpha")
    assert not list(folder.glob("*.monostack-part"))
    assert list(folder.glob("__jinja2_*.cache"))  # compiled and stored this time
    assert strays(root) == []
