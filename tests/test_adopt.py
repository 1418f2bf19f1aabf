"""adopt-project: upstream-layout projects (built by tests/upstream_fixture.py) brought into real
monorepos, then checked with the real sync-workflows, test-all and update-projects."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from monostack.adopt import adopt_project, report_lines
from monostack.checks import MONOREPO
from monostack.errors import UserError
from monostack.projects import ANSWERS_FILE
from monostack.update import update_projects
from tests.conftest import (
    assert_user_error,
    git_status,
    invoke,
    invoke_in_process,
    root_of,
    seed_matrix_cache,
)
from tests.test_update import commit
from tests.upstream_fixture import HOSTS, build_upstream

# name, upstream version, CI platform, Unity Catalog, feature store
VARIANTS = [
    ("plain-gh", "0.5", "github_actions", False, False),
    ("uc-fs-gh", "0.5", "github_actions", True, True),
    ("fs-ado", "0.4", "azure_devops", False, True),
    ("uc-ghes", "0.4", "github_actions_for_github_enterprise_servers", True, False),
    ("uc-ado", "0.5", "azure_devops", True, False),
]


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def answers_of(project: Path) -> dict:
    return yaml.safe_load((project / ANSWERS_FILE).read_text())


@pytest.mark.parametrize("name, version, cicd, uc, fs", VARIANTS)
def test_answers_are_inferred_from_the_projects_own_files(
    repo, tmp_path, name, version, cicd, uc, fs
):
    source = build_upstream(tmp_path / "up", name, version=version, cicd=cicd, uc=uc, fs=fs)
    before = snapshot(source)
    result = adopt_project(root_of(repo), source)
    assert snapshot(source) == before  # PATH is never modified
    answers = answers_of(result.path)
    assert answers["project_name"] == name
    assert answers["include_models_in_unity_catalog"] is uc
    assert answers["include_feature_store"] is fs
    assert answers["_managed_paths"] == [".github/*", ".azure/*", ".gitlab/*"]
    assert answers["_template_tree"] == repo.git.rev_parse("HEAD:stack_template")
    schema = name.replace("-", "_")
    # the monitored table is only an answer with Unity Catalog (its table part is used)
    expected_table = f"dev.{schema}.predictions" if uc else "predictions"
    assert answers["inference_table_name"] == expected_table
    # upstream 0.5 runs its jobs on serverless environments, 0.4 on job clusters
    assert answers["compute"] == ("serverless" if version == "0.5" else "classic")
    if uc:
        assert answers["schema_name"] == schema
    bundle = source / schema
    for rel, data in snapshot(bundle).items():  # the team's code, byte for byte
        assert (result.path / rel).read_bytes() == data, rel
    ci = sorted(
        p.relative_to(result.path).as_posix()
        for d in (".github", ".azure")
        for p in (result.path / d).rglob("*")
        if p.is_file()
    )
    assert ci == sorted(result.ci_files)
    assert all(p.startswith(".github/workflows/" + name + "-") for p in ci)  # the monorepo's
    assert f".github/workflows/{name}-bundle-cd-prod.yml" in ci
    upstream_ci = [r for r in result.replaced if r.startswith((".github/", ".azure/"))]
    assert upstream_ci and set(result.replaced) == set(upstream_ci)
    assert (result.path / "ruff.toml").is_file() and (result.path / ".yamllint.yml").is_file()
    assert (result.path / "test-requirements.txt").read_bytes() == (
        source / "test-requirements.txt"
    ).read_bytes()
    lines = report_lines(result, root_of(repo))
    assert (
        f"  include_feature_store: {fs!r}  (from project_params.json / cicd_params.json)" in lines
    )
    assert "Next: `invoke sync-workflows`, then `invoke test-all`, and commit." in lines


def test_adopted_projects_pass_sync_and_test_all_and_take_updates(repo, tmp_path, shipped_matrix):
    root = root_of(repo)
    for i, (name, version, cicd, uc, fs) in enumerate(VARIANTS):
        source = build_upstream(
            tmp_path / "up", name, version=version, cicd=cicd, uc=uc, fs=fs, root_dir=f"r_{name}"
        )
        run = invoke if i == 0 else invoke_in_process  # the real CLI once
        result = run(repo, "adopt-project", str(source))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Adopted project '{name}' into projects/{name.replace('-', '_')}/" in result.stdout
    synced = invoke_in_process(repo, "sync-workflows")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    seed_matrix_cache(shipped_matrix, repo)  # the template's matrix is not what is tested here
    checked = invoke_in_process(repo, "test-all")
    assert checked.returncode == 0, checked.stdout[-6000:] + checked.stderr
    assert "0 failed" in checked.stdout
    assert "cases unchanged: results from the cache" in checked.stdout  # the matrix, seeded
    commit(repo, "adopt five upstream projects")

    # a later template change: CI files are merged in, the team's code is left alone
    ci = root / "stack_template/project/.github/workflows/{{ project_name }}-bundle-ci.yml.j2"
    ci.write_text(ci.read_text() + "# reviewed by the platform team\n")
    readme = root / "stack_template/project/README.md.j2"
    readme.write_text(readme.read_text() + "\nTemplate note.\n")
    commit(repo, "template change")
    result = update_projects(root, sync=True)
    assert result.exit_code == 0, [p.error for p in result.plans]
    for plan in result.plans:
        assert [f.path for f in plan.files] == [
            f".github/workflows/{plan.project.name}-bundle-ci.yml"
        ]
        assert answers_of(plan.project.path)["_managed_paths"] == [
            ".github/*",
            ".azure/*",
            ".gitlab/*",
        ]
    assert invoke_in_process(repo, "sync-workflows", "--check").returncode == 0
    commit(repo, "update")
    assert update_projects(root, check=True).exit_code == 0


@pytest.mark.parametrize(
    "platform, folder", [("azure_devops", ".azure/devops-pipelines/"), ("gitlab", ".gitlab/")]
)
def test_monorepo_platform_decides_the_ci_files(repo, tmp_path, platform, folder):
    root = root_of(repo)
    config = root / "monorepo.yml"
    text = config.read_text()
    assert "\ncicd_platform: github_actions\n" in text
    config.write_text(
        text.replace("\ncicd_platform: github_actions\n", f"\ncicd_platform: {platform}\n")
    )
    commit(repo, platform)
    source = build_upstream(tmp_path / "up", "scorer", cicd="github_actions", uc=True)
    result = adopt_project(root, source)
    assert result.ci_files and all(c.startswith(folder) for c in result.ci_files)
    assert all("scorer-" in c for c in result.ci_files)
    assert invoke_in_process(repo, "sync-workflows").returncode == 0
    # as CI checks the change that adopts it: the project, its CI files and the sync state
    # (the template's matrix does not depend on the platform monorepo.yml names: it renders
    # every platform, and is checked as shipped in tests/test_render_matrix.py)
    junit = tmp_path / "junit.xml"
    selected = ("--project", "scorer", "--changed-since", "HEAD", "--junit-xml", str(junit))
    checked = invoke_in_process(repo, "test-all", *selected)
    assert checked.returncode == 0, checked.stdout[-6000:] + checked.stderr
    cases = {(c.get("classname"), c.get("name")) for c in ET.parse(junit).iter("testcase")}
    expected = {("lint", "scorer"), ("bundle-validate", "scorer"), ("sync-workflows", MONOREPO)}
    assert expected <= cases


def test_different_workspace_host_is_one_clear_error_and_nothing_written(repo, tmp_path):
    other = "https://adb-9999999999999999.19.azuredatabricks.net"
    source = build_upstream(tmp_path / "up", "elsewhere", hosts={"prod": other})
    result = invoke(repo, "adopt-project", str(source))
    assert_user_error(
        result, "targets.prod.workspace.host is " + other, "monorepo.yml workspaces.prod is"
    )
    assert HOSTS["prod"] in result.stderr
    assert git_status(repo) == ""
    assert not (root_of(repo) / "projects").exists()


def test_empty_host_and_other_cloud_are_refused(repo, tmp_path):
    source = build_upstream(tmp_path / "a", "nohost", hosts={"staging": ""})
    with pytest.raises(UserError, match=r"targets.staging.workspace.host is empty; set it to"):
        adopt_project(root_of(repo), source)
    source = build_upstream(tmp_path / "b", "awsproj", cloud="aws")
    with pytest.raises(UserError, match="for cloud 'aws' but monorepo.yml cloud is 'azure'"):
        adopt_project(root_of(repo), source)
    assert git_status(repo) == ""


def test_name_option_dry_run_and_collisions(repo, tmp_path):
    root = root_of(repo)
    source = build_upstream(tmp_path / "up", "churn")
    dry = adopt_project(root, source, dry_run=True)
    assert dry.dry_run and "databricks.yml" in dry.files
    assert git_status(repo) == ""
    adopt_project(root, source)
    with pytest.raises(UserError, match="project 'churn' already exists"):
        adopt_project(root, source)
    second = adopt_project(root, source, name="churn-two")
    assert second.path == root / "projects/churn_two"
    assert answers_of(second.path)["project_name"] == "churn-two"
    assert any("the bundle keeps its name 'churn'" in n for n in second.notes)


def test_bad_paths_are_refused(repo, tmp_path):
    root = root_of(repo)
    source = build_upstream(tmp_path / "up", "linky")
    with pytest.raises(UserError, match="holds databricks.yml itself; pass the rendered root"):
        adopt_project(root, source / "linky")
    with pytest.raises(UserError, match="no <project>/databricks.yml inside"):
        adopt_project(root, source / "docs")
    with pytest.raises(UserError, match="not a directory"):
        adopt_project(root, tmp_path / "missing")
    (source / "linky" / "secrets.txt").symlink_to("/etc/hostname")
    with pytest.raises(UserError, match="secrets.txt: is a symlink"):
        adopt_project(root, source)
    assert git_status(repo) == ""


def test_failed_write_leaves_the_monorepo_as_it_was(repo, tmp_path, monkeypatch):
    from monostack import adopt, treeio

    def failing(target, tree):
        treeio.write_new_directory(target, tree, on_file=_fail_on_third())

    monkeypatch.setattr(adopt, "write_new_directory", failing)
    source = build_upstream(tmp_path / "up", "fragile")
    with pytest.raises(UserError, match="disk full"):  # one line, not a traceback
        adopt_project(root_of(repo), source)
    assert git_status(repo) == ""
    assert not (root_of(repo) / "projects").exists()


def _fail_on_third():
    calls = []

    def hook(rel):
        calls.append(rel)
        if len(calls) == 3:
            raise OSError("disk full (injected)")

    return hook
