from __future__ import annotations

import os
import shutil
import stat

import pytest
import yaml

from monostack.errors import UserError
from monostack.projects import ANSWERS_FILE, discover_projects, new_project
from tests.bundle_schema import merged_bundle, schema_errors
from tests.conftest import (
    BUNDLE_SCHEMA,
    assert_user_error,
    fail_on_nth_file,
    git_status,
    invoke,
    invoke_in_process,
    root_of,
)


def test_new_project_cli_creates_bundle_and_answers(repo):
    result = invoke(repo, "new-project", "--name", "project2")
    assert result.returncode == 0, result.stderr
    root = root_of(repo)
    project = root / "projects" / "project2"
    assert (project / "databricks.yml").is_file()
    answers = yaml.safe_load((project / ANSWERS_FILE).read_text())
    assert answers["project_name"] == "project2"
    assert answers["_template_version"]
    assert answers["include_models_in_unity_catalog"] is False
    assert "invoke sync-workflows" in result.stdout
    assert "projects/project2/databricks.yml" in result.stdout
    bundle = yaml.safe_load((project / "databricks.yml").read_text())
    assert bundle["bundle"]["name"] == "project2"
    assert set(bundle["targets"]) >= {"dev", "staging", "prod", "test"}
    assert [t for t, v in bundle["targets"].items() if v.get("default")] == ["dev"]


@pytest.mark.skipif(not BUNDLE_SCHEMA.exists(), reason="../shared/reference not present")
@pytest.mark.parametrize("flags", [[], ["--unity-catalog"], ["--feature-store", "--unity-catalog"]])
def test_new_project_bundle_is_schema_valid(repo, flags):
    assert invoke_in_process(repo, "new-project", "--name", "churn", *flags).returncode == 0
    document = merged_bundle(root_of(repo) / "projects" / "churn")
    assert document.get("resources"), "includes were not merged"
    assert schema_errors(document) == []


def test_project_ci_is_rendered_inside_the_project(repo):
    assert invoke_in_process(repo, "new-project", "--name", "project2").returncode == 0
    workflows = root_of(repo) / "projects" / "project2" / ".github" / "workflows"
    assert sorted(p.name.startswith("project2-") for p in workflows.iterdir())
    assert not (root_of(repo) / ".github").exists()


@pytest.mark.parametrize(
    "name, needle",
    [
        ("a", "3 or more characters"),
        ("has space", "no space"),
        ("../evil", "path separator"),
        ("a/b", "path separator"),
        ("a.b", "dot"),
        ("-x", "starts with '-'"),
        ("a\\bc", "path separator"),
        ("$$$", "contains '$'"),
        ("${{x}}", "use only letters, digits"),
        ("ab:c", "contains ':'"),
        ("___", "at least one letter or digit"),
    ],
)
def test_bad_names_are_refused_cleanly(repo, name, needle):
    result = invoke_in_process(repo, "new-project", f"--name={name}")
    assert_user_error(result, needle)
    assert git_status(repo) == ""


def test_existing_and_colliding_names_are_refused(repo):
    assert invoke_in_process(repo, "new-project", "--name", "my-proj").returncode == 0
    repo.git.add(A=True)
    repo.index.commit("add my-proj")
    assert_user_error(invoke_in_process(repo, "new-project", "--name", "my-proj"), "already exists")
    assert_user_error(
        invoke_in_process(repo, "new-project", "--name", "my_proj"), "projects/my_proj", "'my-proj'"
    )
    assert git_status(repo) == ""


@pytest.mark.parametrize(
    "content, needle",
    [
        ("colour: blue\n", "unknown key 'colour'"),
        ("cloud: mars\n", "'mars' is not allowed"),
        (
            "workspaces:\n  staging: http://x.example.com\n  prod: https://p.example.com\n",
            "workspaces.staging",
        ),
    ],
)
def test_broken_monorepo_yml_is_refused(repo, content, needle):
    config = root_of(repo) / "monorepo.yml"
    original = yaml.safe_load(config.read_text())
    patch = yaml.safe_load(content)
    config.write_text(yaml.safe_dump({**original, **patch}))
    repo.git.add(A=True)
    repo.index.commit("break config")
    result = invoke_in_process(repo, "new-project", "--name", "project2")
    assert_user_error(result, "monorepo.yml", needle)
    assert git_status(repo) == ""


def test_bad_options_are_refused(repo):
    assert_user_error(
        invoke_in_process(repo, "new-project", "--name", "abc", "--schema-name", "x"), "schema_name"
    )
    assert_user_error(
        invoke_in_process(
            repo, "new-project", "--name", "abc", "--unity-catalog", "--schema-name", "a.b"
        ),
        "schema_name",
    )
    assert_user_error(
        invoke_in_process(
            repo, "new-project", "--name", "abc", "--inference-table", "just_a_table"
        ),
        "inference_table_name",
        "include_models_in_unity_catalog",
    )
    assert_user_error(
        invoke_in_process(
            repo, "new-project", "--name", "abc", "--unity-catalog", "--inference-table", "a.b"
        ),
        "inference_table_name",
        "table name",
    )
    assert_user_error(
        invoke_in_process(repo, "new-project", "--name", "abc", "--answer", "compute=gpu"),
        "compute",
        "serverless, classic",
    )
    assert_user_error(
        invoke_in_process(repo, "new-project", "--name", "abc", "--answer", "x"), "NAME=VALUE"
    )
    assert git_status(repo) == ""


def test_options_reach_the_answers(repo):
    result = invoke(
        repo,
        "new-project",
        "--name",
        "fs-uc",
        "--unity-catalog",
        "--feature-store",
        "--schema-name",
        "fs_schema",
        "--inference-table",
        "main.fs.preds",
    )
    assert result.returncode == 0, result.stderr
    answers = yaml.safe_load((root_of(repo) / "projects/fs_uc" / ANSWERS_FILE).read_text())
    assert answers["include_models_in_unity_catalog"] is True
    assert answers["include_feature_store"] is True
    assert answers["schema_name"] == "fs_schema"
    assert answers["inference_table_name"] == "main.fs.preds"
    assert answers["project_dir"] == "fs_uc"


def test_dry_run_writes_nothing(repo):
    result = invoke_in_process(repo, "new-project", "--name", "project2", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Would create" in result.stdout
    assert "projects/project2/databricks.yml" in result.stdout
    assert git_status(repo) == ""


def test_failure_mid_render_leaves_no_trace(repo):
    root = root_of(repo)
    explode, calls = fail_on_nth_file(2)
    with pytest.raises(UserError, match="injected"):
        new_project(root, "project2", on_file=explode)
    assert len(calls) == 2
    assert not (root / "projects").exists()
    assert git_status(repo) == ""


def test_failure_with_existing_projects_dir_keeps_it(repo):
    root = root_of(repo)
    new_project(root, "project1")
    repo.git.add(A=True)
    repo.index.commit("p1")

    def explode(rel: str) -> None:
        raise OSError("injected")

    with pytest.raises(UserError):
        new_project(root, "project2", on_file=explode)
    assert sorted(p.name for p in (root / "projects").iterdir()) == ["project1"]
    assert git_status(repo) == ""


def test_directory_that_is_not_a_project_is_not_overwritten(repo):
    root = root_of(repo)
    (root / "projects" / "project2").mkdir(parents=True)
    (root / "projects" / "project2" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="already exists but is not a project"):
        new_project(root, "project2")
    assert (root / "projects" / "project2" / "notes.txt").read_text() == "mine"


def test_discover_projects_reads_names_from_answers(repo):
    root = root_of(repo)
    new_project(root, "my-proj")
    new_project(root, "other")
    found = discover_projects(root)
    assert [(p.name, p.dir, p.rel) for p in found] == [
        ("my-proj", "my_proj", "projects/my_proj"),
        ("other", "other", "projects/other"),
    ]


def test_invoke_help_documents_every_option(repo):
    result = invoke(repo, "--help", "new-project")
    assert result.returncode == 0
    for option in (
        "--name",
        "--unity-catalog",
        "--feature-store",
        "--schema-name",
        "--inference-table",
        "--answer",
        "--dry-run",
    ):
        assert option in result.stdout
    listing = invoke(repo, "--list").stdout
    assert "new-project" in listing


def test_names_differing_only_in_case_are_refused(repo):
    assert invoke_in_process(repo, "new-project", "--name", "my-proj").returncode == 0
    assert_user_error(
        invoke_in_process(repo, "new-project", "--name", "My-Proj"), "differ in more than case"
    )
    assert_user_error(
        invoke_in_process(repo, "new-project", "--name", "MY_PROJ"), "projects/MY_PROJ"
    )


def test_dangling_symlink_in_the_way_is_a_clear_error(repo):
    root = root_of(repo)
    (root / "projects").mkdir(exist_ok=True)
    (root / "projects" / "ghost").symlink_to(root / "nowhere")
    assert_user_error(invoke_in_process(repo, "new-project", "--name", "ghost"), "projects/ghost")
    assert (root / "projects" / "ghost").is_symlink()


def test_new_project_directories_follow_the_umask(repo):
    old = os.umask(0o022)
    try:
        new_project(root_of(repo), "perms")
    finally:
        os.umask(old)
    path = root_of(repo) / "projects" / "perms"
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert stat.S_IMODE((path / "databricks.yml").stat().st_mode) == 0o644


def test_broken_answers_file_is_one_line_in_every_task(repo):
    assert invoke_in_process(repo, "new-project", "--name", "alpha").returncode == 0
    answers = root_of(repo) / "projects" / "alpha" / ".stack-answers.yml"
    answers.write_bytes(b"project_name: alpha\nx: \xff\n")
    assert_user_error(invoke_in_process(repo, "sync-workflows"), ".stack-answers.yml", "not UTF-8")
    answers.write_text("project_name: 'a/b'\n")
    assert_user_error(
        invoke_in_process(repo, "new-project", "--name", "beta"), "project_name 'a/b'"
    )


def test_copied_project_with_the_same_recorded_name_is_refused(repo):
    assert invoke_in_process(repo, "new-project", "--name", "alpha").returncode == 0
    root = root_of(repo)
    shutil.copytree(root / "projects" / "alpha", root / "projects" / "alpha_copy")
    for task in ("sync-workflows", "lint", "bundle-validate"):
        result = invoke_in_process(repo, task)
        assert result.returncode != 0 and "Traceback" not in result.stderr + result.stdout
        assert "projects/alpha_copy/.stack-answers.yml: project_name 'alpha'" in (
            result.stdout + result.stderr
        ), task


def test_new_project_names_the_bundle_file_as_the_bundle_loader_does():
    from monostack import bundle, projects

    assert projects.BUNDLE_FILE == bundle.BUNDLE_FILE


def test_new_project_reads_each_template_file_once(repo, monkeypatch):
    """The template is read in one pass (hashed for the recorded base, then rendered from the
    same bytes): only stack.yml is read again, through the safe reader."""
    from monostack import basetree, safeio

    root = root_of(repo)
    reads: list[str] = []
    real = safeio.read_file

    def counting(base, rel):
        reads.append(rel)
        return real(base, rel)

    monkeypatch.setattr(safeio, "read_file", counting)
    monkeypatch.setattr("monostack.template_env.read_file", counting)
    result = new_project(root, "onepass")
    assert [r for r in reads if r.startswith(("project/", "macros/"))] == []
    assert "stack.yml" in reads
    recorded = yaml.safe_load((result.path / ANSWERS_FILE).read_text())["_template_tree"]
    assert (
        recorded
        == basetree.hashed_tree(root / "stack_template")
        == repo.git.rev_parse(f"{basetree.BASE_REF_PREFIX}{recorded}^{{tree}}")
    )


def test_a_linked_template_file_is_still_refused_when_read_in_one_pass(repo):
    root = root_of(repo)
    outside = root.parent / "secret.txt"
    outside.write_text("secret\n")
    link = root / "stack_template/project/README.md.j2"
    link.unlink()
    link.symlink_to(outside)
    with pytest.raises(UserError, match="link") as info:
        new_project(root, "linked")
    assert "README.md.j2" in info.value.message
    assert not (root / "projects/linked").exists()
