"""update-projects: three-way merges of template changes into real projects in real git repos."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from monostack import basetree
from monostack.errors import UserError
from monostack.projects import ANSWERS_FILE, new_project
from monostack.template import load_template
from monostack.update import report_lines, update_projects
from tests.conftest import (
    REPO_ROOT,
    assert_user_error,
    git_status,
    invoke,
    invoke_in_process,
    root_of,
)

DEPLOY_LINE = "# Deploy with `databricks bundle deploy -t <target>` from this directory"
MODEL_LINE = "    description: Name of the registered model."


def commit(repo, message: str) -> None:
    repo.git.add(A=True)
    repo.index.commit(message)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "projects").rglob("*"))
        if p.is_file()
    }


def answers_of(root: Path, project: str) -> dict:
    return yaml.safe_load((root / "projects" / project / ANSWERS_FILE).read_text())


def _bumped(version: str) -> str:
    major, minor, *_ = version.split(".")
    return f"{major}.{int(minor) + 1}.0"


# The shipped template's version (what new projects record) and the one change_template makes.
OLD = load_template(REPO_ROOT / "stack_template").version
NEW = _bumped(OLD)


def change_template(root: Path, version: str = NEW) -> None:
    """Edit a file, add a file (using a new parameter), remove a file, bump the version."""
    tpl = root / "stack_template"
    edit(tpl / "stack.yml", f'version: "{OLD}"', f'version: "{version}"')
    edit(
        tpl / "stack.yml",
        "\nskip:",
        "\n  owner_team:\n    description: Team that owns the project.\n"
        "    default: ml-platform\n\nskip:",
    )
    edit(tpl / "project/databricks.yml.j2", "from this directory", "from this folder")
    (tpl / "project/CODEOWNERS.j2").write_text("* @{{ owner_team }}\n", encoding="utf-8")
    (tpl / "project/tests/test_predict.py").unlink()


@pytest.fixture
def three(built_repo):
    """alpha (workspace registry), beta (Unity Catalog), gamma (feature store), each with a
    committed local change; then a committed template change."""
    return built_repo("update-three", _three)


def _three(repo) -> None:
    root = root_of(repo)
    new_project(root, "alpha")
    new_project(root, "beta", {"include_models_in_unity_catalog": True})
    new_project(root, "gamma", {"include_feature_store": True})
    commit(repo, "three projects")
    with (root / "projects/alpha/utils.py").open("a") as fh:
        fh.write("\n\n# alpha's own helper comment\n")
    edit(root / "projects/beta/databricks.yml", MODEL_LINE, MODEL_LINE + " Owned by beta.")
    edit(root / "projects/gamma/databricks.yml", DEPLOY_LINE, DEPLOY_LINE + " (gamma: see wiki)")
    commit(repo, "local changes")
    change_template(root)
    commit(repo, "template 0.2.0")


def test_check_names_every_project_behind(three):
    result = invoke_in_process(three, "update-projects", "--check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "3 project(s) behind the template: alpha, beta, gamma" in result.stdout
    assert git_status(three) == ""


def test_update_merges_reports_conflict_and_second_run_is_noop(three):
    root = root_of(three)
    result = invoke(three, "update-projects")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"projects/alpha (alpha): updated (template {OLD} -> {NEW})" in out
    assert f"projects/beta (beta): updated (template {OLD} -> {NEW})" in out
    assert "projects/gamma (gamma): updated with conflicts" in out
    assert "conflict databricks.yml" in out
    assert "new parameter owner_team: 'ml-platform'" in out
    assert "2 updated, 1 conflicts." in out

    for name in ("alpha", "beta", "gamma"):
        project = root / "projects" / name
        assert (project / "CODEOWNERS").read_text() == "* @ml-platform\n"  # added, new param
        assert not (project / "tests/test_predict.py").exists()  # removed
        answers = answers_of(root, name)
        assert answers["_template_version"] == NEW
        assert answers["owner_team"] == "ml-platform"
        assert answers["_template_tree"] == basetree.resolve_base(root, "HEAD")
    alpha_utils = (root / "projects/alpha/utils.py").read_text()
    assert "# alpha's own helper comment" in alpha_utils
    assert "from this folder" in (root / "projects/alpha/databricks.yml").read_text()
    beta = (root / "projects/beta/databricks.yml").read_text()
    assert "from this folder" in beta and "Owned by beta." in beta  # both sides merged
    assert "<<<<<<<" not in beta

    gamma = (root / "projects/gamma/databricks.yml").read_text()
    assert "<<<<<<< projects/gamma (yours)" in gamma
    assert f"||||||| template {OLD} (" in gamma
    assert f">>>>>>> template {NEW} (" in gamma
    committed = three.git.show("HEAD:projects/gamma/databricks.yml").splitlines()
    assert all(line in gamma.splitlines() for line in committed)  # every local line kept

    before = snapshot(root)
    again = invoke_in_process(three, "update-projects")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 up to date." in again.stdout
    assert snapshot(root) == before
    commit(three, "update")
    assert invoke_in_process(three, "update-projects", "--check").returncode == 0


def test_dry_run_prints_plan_and_writes_nothing(three):
    result = update_projects(root_of(three), dry_run=True)
    lines = report_lines(result)
    assert result.exit_code == 1  # a conflict is predicted
    assert "Dry run, nothing written: 2 to update, 1 would conflict." in lines
    assert any("create   CODEOWNERS" in line for line in lines)
    assert git_status(three) == ""


def test_project_selection_and_unknown_project(three):
    root = root_of(three)
    result = update_projects(root, ["alpha"])
    assert [p.project.name for p in result.plans] == ["alpha"]
    assert result.exit_code == 0
    assert answers_of(root, "beta")["_template_version"] == OLD
    with pytest.raises(UserError, match="--project 'nope': no such project"):
        update_projects(root, ["nope"])


def test_dirty_project_is_refused_and_nothing_written(three):
    root = root_of(three)
    (root / "projects/beta/notes.txt").write_text("wip\n")
    before = snapshot(root)
    result = invoke_in_process(three, "update-projects")
    assert_user_error(result, "projects/beta: uncommitted changes", "notes.txt", "commit or stash")
    assert snapshot(root) == before


def test_removed_parameter_is_dropped_and_reported(repo):
    root = root_of(repo)
    change_template(root)
    commit(repo, "template with owner_team")
    new_project(root, "alpha", {"owner_team": "fraud-squad"})
    commit(repo, "alpha")
    edit(root / "stack_template/stack.yml", "  owner_team:", "  unused_owner:")
    (root / "stack_template/project/CODEOWNERS.j2").unlink()
    commit(repo, "template drops owner_team")
    result = update_projects(root)
    lines = report_lines(result)
    assert result.exit_code == 0, lines
    assert "    removed parameter owner_team: dropped from .stack-answers.yml" in lines
    assert "    new parameter unused_owner: 'ml-platform' (its default)" in lines
    answers = answers_of(root, "alpha")
    assert "owner_team" not in answers and answers["unused_owner"] == "ml-platform"
    assert not (root / "projects/alpha/CODEOWNERS").exists()


def test_answer_the_new_template_rejects_is_an_error_for_that_project(repo):
    root = root_of(repo)
    new_project(root, "alpha")
    new_project(root, "beta-two", {"include_models_in_unity_catalog": True})
    commit(repo, "projects")
    edit(
        root / "stack_template/stack.yml",
        "kind: unity_catalog_name",
        "kind: unity_catalog_name\n    pattern: '^[a-z]+$'",
    )
    commit(repo, "stricter schema names")
    result = update_projects(root)
    assert result.exit_code == 1
    (alpha, beta) = result.plans
    assert alpha.error is None and beta.error is not None
    assert "projects/beta_two/.stack-answers.yml: the current template rejects" in beta.error
    assert "'beta_two'" in beta.error
    assert answers_of(root, "beta_two")["_template_tree"] != basetree.resolve_base(root, "HEAD")


BINARY_V1 = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR-v1"
BINARY_V2 = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR-v2"


def test_binary_file_replaced_only_when_unchanged_locally(repo):
    root = root_of(repo)
    (root / "stack_template/project/logo.png").write_bytes(BINARY_V1)
    commit(repo, "template with a logo")
    new_project(root, "alpha")
    new_project(root, "beta")
    (root / "projects/beta/logo.png").write_bytes(b"\x00beta's own logo")
    commit(repo, "projects; beta changed its logo")
    (root / "stack_template/project/logo.png").write_bytes(BINARY_V2)
    commit(repo, "new logo")
    result = update_projects(root)
    assert result.exit_code == 1
    assert (root / "projects/alpha/logo.png").read_bytes() == BINARY_V2
    assert (root / "projects/beta/logo.png").read_bytes() == b"\x00beta's own logo"
    (conflict,) = result.plans[1].conflicts
    assert conflict.path == "logo.png" and "binary" in conflict.note


def test_removed_template_file_changed_locally_is_kept(repo):
    root = root_of(repo)
    new_project(root, "alpha")
    with (root / "projects/alpha/tests/test_predict.py").open("a") as fh:
        fh.write("\n# alpha keeps this test\n")
    commit(repo, "alpha")
    (root / "stack_template/project/tests/test_predict.py").unlink()
    commit(repo, "drop a test")
    result = update_projects(root)
    assert result.exit_code == 0
    assert (root / "projects/alpha/tests/test_predict.py").is_file()
    assert any("kept     tests/test_predict.py" in line for line in report_lines(result))


def test_base_ref_for_a_project_recorded_without_one(repo):
    """project1 today: no _template_tree. --base names the commit it was rendered from."""
    root = root_of(repo)
    new_project(root, "alpha")
    answers = root / "projects/alpha" / ANSWERS_FILE
    answers.write_text(
        "".join(ln for ln in answers.read_text().splitlines(True) if "_template_tree" not in ln)
    )
    with (root / "projects/alpha/utils.py").open("a") as fh:
        fh.write("\n# local\n")
    commit(repo, "alpha without a base")
    rendered_from = repo.head.commit.hexsha
    plan = update_projects(root, check=True).plans[0]
    assert "records no _template_tree" in plan.error and "--base REF" in plan.error
    # the template has not changed: --base HEAD only records the base
    result = update_projects(root, base="HEAD")
    assert [f.path for f in result.plans[0].files] == []
    assert result.exit_code == 0
    commit(repo, "record base")
    change_template(root)
    commit(repo, "template 0.2.0")
    result = update_projects(root, base=rendered_from, check=True)
    assert result.plans[0].behind
    with pytest.raises(UserError, match="--base 'no-such-ref': no such commit"):
        update_projects(root, base="no-such-ref")


def test_uncommitted_template_base_survives_gc(repo):
    root = root_of(repo)
    edit(root / "stack_template/project/README.md.j2", "\n", "\n<!-- local template edit -->\n")
    new_project(root, "alpha")
    tree = answers_of(root, "alpha")["_template_tree"]
    assert tree != basetree.resolve_base(root, "HEAD")  # not the committed template
    repo.git.checkout("--", "stack_template")
    commit(repo, "alpha")
    repo.git.gc("--prune=now", "--quiet")
    assert repo.git.rev_parse(f"{basetree.BASE_REF_PREFIX}{tree}^{{tree}}") == tree
    files = basetree.read_tree(root, tree)
    assert b"<!-- local template edit -->" in files["project/README.md.j2"]
    result = update_projects(root)
    assert result.exit_code == 0
    readme = result.plans[0].files
    assert [f.path for f in readme if f.path == "README.md"] == ["README.md"]


def test_missing_base_is_a_clear_error(repo):
    root = root_of(repo)
    new_project(root, "alpha")
    answers = root / "projects/alpha" / ANSWERS_FILE
    edit(answers, answers_of(root, "alpha")["_template_tree"], "deadbeef" * 5)
    commit(repo, "alpha")
    result = update_projects(root, check=True)
    plan = result.plans[0]
    assert result.exit_code == 1
    assert "1 could not be checked: alpha (see above)." in report_lines(result)
    assert "template tree deadbeefdead is not in this repository" in plan.error
    assert "--base REF" in plan.error


def test_sync_runs_when_ci_files_changed(repo):
    root = root_of(repo)
    new_project(root, "alpha")
    assert invoke_in_process(repo, "sync-workflows").returncode == 0
    commit(repo, "alpha")
    ci = "stack_template/project/.github/workflows/{{ project_name }}-bundle-ci.yml.j2"
    with (root / ci).open("a") as fh:
        fh.write("# template CI note\n")
    commit(repo, "CI note")
    result = invoke_in_process(repo, "update-projects")
    assert "CI files changed: run `invoke sync-workflows` next." in result.stdout
    repo.git.reset("--hard")
    result = invoke_in_process(repo, "update-projects", "--sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sync-workflows:" in result.stdout
    assert "# template CI note" in (root / ".github/workflows/alpha-bundle-ci.yml").read_text()
    assert invoke_in_process(repo, "sync-workflows", "--check").returncode == 0


KILLER = """
import os, signal, sys
from monostack.update import update_projects
seen = []
def hook(rel):
    seen.append(rel)
    if len(seen) == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
update_projects(sys.argv[1], on_file=hook)
"""


# alpha, updated first, writes 4 files (answers, README, databricks.yml, CODEOWNERS): kills fall
# inside its rewrite
@pytest.mark.parametrize("nth", [1, 2, 4])
def test_kill_mid_update_leaves_project_untouched_and_no_stray_files(three, nth):
    root = root_of(three)
    before = snapshot(root)
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(root), str(nth)],
        cwd=REPO_ROOT,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.returncode == -9, proc.stderr
    changed = {p for p, data in snapshot(root).items() if before.get(p) != data}
    # the first project is written whole or not at all; later ones are untouched
    status = git_status(three)
    assert status == "" or all(" projects/alpha/" in ln for ln in status.splitlines()), status
    if status:
        assert {p.split("/")[1] for p in changed} == {"alpha"}
        assert answers_of(root, "alpha")["_template_version"] == NEW
        assert (root / "projects/alpha/CODEOWNERS").is_file()
    leftovers = list((basetree.git_dir(root) / "monostack/tmp").glob("rewrite-*"))
    assert leftovers  # the killed work is only under .git/, invisible to git status
    result = update_projects(root)  # the next run cleans up and completes
    assert not list((basetree.git_dir(root) / "monostack/tmp").glob("rewrite-*"))
    assert all(not p.behind or p.conflicts for p in update_projects(root, check=True).plans)
    assert result.exit_code == 1  # gamma's conflict


def test_failure_mid_update_leaves_project_untouched(three):
    root = root_of(three)
    before = snapshot(root)
    calls = []

    def explode(rel):
        calls.append(rel)
        if len(calls) == 2:
            raise OSError("disk full (injected)")

    with pytest.raises(OSError, match="disk full"):
        update_projects(root, on_file=explode)
    assert snapshot(root) == before
    assert git_status(three) == ""
    assert not list((basetree.git_dir(root) / "monostack/tmp").glob("rewrite-*"))


def test_fallback_swap_without_renameat2(three, monkeypatch):
    from monostack import dirswap

    monkeypatch.setattr(dirswap, "_exchange", lambda a, b: False)
    result = update_projects(root_of(three))
    assert result.exit_code == 1
    assert (root_of(three) / "projects/alpha/CODEOWNERS").is_file()
    assert not list((basetree.git_dir(root_of(three)) / "monostack/tmp").glob("rewrite-*"))


def test_clean_scratch_puts_back_a_directory_caught_between_renames(tmp_path):
    from monostack.dirswap import clean_scratch

    target = tmp_path / "proj"
    work = tmp_path / "scratch" / "rewrite-999999999-x"
    (work / "old").mkdir(parents=True)
    (work / "old" / "f.txt").write_text("kept")
    (work / "target").write_text(str(target))
    clean_scratch(tmp_path / "scratch")
    assert (target / "f.txt").read_text() == "kept"
    assert not work.exists()


def test_not_a_git_repo_is_refused(tmp_path):
    with pytest.raises(UserError, match="not a git repository"):
        update_projects(tmp_path)


def test_shipped_project1_with_base_head(shipped_repo):
    """The documented way in for projects recorded without a base (as project1 was before it
    moved to template 0.2.0 with update-projects)."""
    root = root_of(shipped_repo)
    assert (
        invoke_in_process(shipped_repo, "update-projects", "--check").returncode == 0
    )  # it records one
    answers = root / "projects/project1" / ANSWERS_FILE
    answers.write_text(
        "".join(ln for ln in answers.read_text().splitlines(True) if "_template_tree" not in ln)
    )
    commit(shipped_repo, "project1 without a base")
    result = invoke_in_process(shipped_repo, "update-projects", "--base", "HEAD")
    assert result.returncode == 0, result.stdout + result.stderr
    assert git_status(shipped_repo).split() == ["M", "projects/project1/.stack-answers.yml"]
    assert answers_of(root, "project1")["_template_tree"] == basetree.resolve_base(root, "HEAD")
    commit(shipped_repo, "record base")
    assert invoke_in_process(shipped_repo, "update-projects", "--check").returncode == 0


def test_monorepo_in_a_subfolder_of_the_git_repository(tmp_path):
    """Bases, dirty checks and last commits follow the monorepo, not the repository top."""
    import git

    from monostack.listing import list_projects
    from tests.conftest import _copy_seed

    outer = tmp_path / "outer"
    root = outer / "ml" / "mono"
    root.mkdir(parents=True)
    _copy_seed(root)
    repo = git.Repo.init(outer, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "t")
        cw.set_value("user", "email", "t@example.invalid")
    commit(repo, "seed")
    new_project(root, "alpha")
    assert answers_of(root, "alpha")["_template_tree"] == repo.git.rev_parse(
        "HEAD:ml/mono/stack_template"
    )
    commit(repo, "alpha")
    change_template(root)
    commit(repo, "template 0.2.0")
    (root / "projects/alpha/wip.txt").write_text("wip\n")
    with pytest.raises(UserError, match="projects/alpha: uncommitted changes"):
        update_projects(root)
    (root / "projects/alpha/wip.txt").unlink()
    assert update_projects(root).exit_code == 0
    assert (root / "projects/alpha/CODEOWNERS").is_file()
    commit(repo, "update")
    (info,) = list_projects(root).projects
    assert info.template == "up to date" and info.last_commit["subject"] == "update"
