"""`invoke sync-workflows`: project CI files merged into the root, safely and idempotently."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

from monostack.checks import ERROR, MONOREPO
from monostack.config import load_config
from monostack.errors import UserError
from monostack.projects import discover_projects, new_project
from monostack.template import load_template
from monostack.workflows import (
    CHECK_NAME,
    apply_sync,
    managed_file,
    parse_managed,
    plan_sync,
    root_name,
    sync_findings,
    sync_workflows,
)
from monostack.writesteps import reset_steps, set_fault_hook
from tests.conftest import (
    VENV_BIN,
    assert_user_error,
    fail_on_nth_file,
    git_status,
    invoke,
    invoke_in_process,
    root_of,
)

GH = ".github/workflows"
AZ = ".azure/devops-pipelines"

CUSTOM = """\
# Hand-written: monostack must never touch this file.
name: Custom checks   # keep this comment
on:
  push:
    branches: [main]
permissions: {}
jobs:
  hello:
    runs-on: ubuntu-latest
    steps:
      - run: echo "hello"   # trailing comment
"""


# ------------------------------------------------------------------------ helpers
def commit(repo, message: str = "change") -> None:
    repo.git.add(A=True)
    repo.index.commit(message)


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sync(repo, *args: str) -> subprocess.CompletedProcess:
    """``invoke sync-workflows ARGS``, in-process (the CLI end to end: see the tests below that
    call :func:`invoke`)."""
    return invoke_in_process(repo, "sync-workflows", *args)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file outside .git, as bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts[:1]
    }


def root_ci(root: Path) -> dict[str, bytes]:
    """The root files sync manages: CI files and the monorepo's guides in docs/."""
    return {
        rel: data
        for rel, data in snapshot(root).items()
        if rel.startswith((GH, AZ)) or (rel.startswith("docs/") and rel.endswith(".md"))
    }


def project_ci(root: Path) -> dict[str, tuple[str, bytes]]:
    """root path -> (source path, source bytes) for every project CI file on disk."""
    found = {}
    for project in discover_projects(root):
        for folder in (GH, AZ):
            base = project.path / folder
            for path in sorted(base.glob("*")) if base.is_dir() else []:
                if path.suffix in (".yml", ".yaml"):
                    target = f"{folder}/{root_name(project.name, path.name)}"
                    found[target] = (f"{project.rel}/{folder}/{path.name}", path.read_bytes())
    return found


def monorepo_ci(root: Path) -> dict[str, bytes]:
    return load_template(root / "stack_template").render_monorepo(load_config(root))


def project_workflow(project_dir: str, name: str, group: str, body: str = "") -> str:
    """A small, valid project workflow that stays inside its project."""
    return f"""\
# {name}: a project workflow written by hand in the project
name: {name}
on:
  pull_request:
    paths:
      - "projects/{project_dir}/**"
  workflow_dispatch:
permissions:
  contents: read
concurrency:
  group: {group}
  cancel-in-progress: true
defaults:
  run:
    working-directory: projects/{project_dir}
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo ok
{body}"""


def schema_check(root: Path, schema: str, files: list[str]) -> subprocess.CompletedProcess:
    """check-jsonschema's vendored schema, with the options its own pre-commit hook uses (the
    Azure schema needs non-unicode regexes and its expression transform)."""
    extra = ["--regex-variant", "nonunicode", "--data-transform", "azure-pipelines"]
    return subprocess.run(
        [
            str(VENV_BIN / "check-jsonschema"),
            "--builtin-schema",
            schema,
            *(extra if schema == "vendor.azure-pipelines" else []),
            *files,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _alpha_with_extra(repo) -> None:
    root = root_of(repo)
    new_project(root, "alpha")
    write(
        root,
        f"projects/alpha/{GH}/extra.yml",
        project_workflow("alpha", "alpha extra", "alpha-extra-${{ github.ref }}"),
    )
    commit(repo, "alpha")


@pytest.fixture
def alpha(built_repo):
    """A repo with project alpha (from the real template) plus one hand-made workflow, committed."""
    return built_repo("workflows-alpha", _alpha_with_extra)


# ---------------------------------------------------------------- acceptance
def test_shipped_repo_sync_then_check_and_second_sync_is_clean(shipped_repo):
    first = sync(shipped_repo)
    assert first.returncode == 0, first.stderr
    assert sync(shipped_repo, "--check").returncode == 0
    commit(shipped_repo, "sync")
    again = sync(shipped_repo)
    assert again.returncode == 0, again.stderr
    assert git_status(shipped_repo) == ""
    assert "in sync" in again.stdout


def test_two_new_projects_sync_into_the_root(repo):
    """End to end through the real ``invoke`` CLI (the other sync tests run it in-process)."""
    root = root_of(repo)
    for name in ("alpha", "beta"):
        assert invoke(repo, "new-project", "--name", name).returncode == 0
    commit(repo, "two projects")
    expected = project_ci(root)
    assert any(p.startswith(f"{GH}/alpha-") for p in expected)
    assert any(p.startswith(f"{GH}/beta-") for p in expected)

    check = invoke(repo, "sync-workflows", "--check")
    assert check.returncode == 1
    for path, (origin, _) in expected.items():
        assert f"create {path} (from {origin})" in check.stdout
    assert "out of date" in check.stdout
    assert git_status(repo) == ""

    result = invoke(repo, "sync-workflows")
    assert result.returncode == 0, result.stderr
    assert "Synced root CI files" in result.stdout
    ci = root_ci(root)
    assert set(ci) == set(expected) | set(monorepo_ci(root))
    for path, (origin, body) in expected.items():
        managed = parse_managed(ci[path])
        assert managed is not None and managed.intact
        assert managed.origin == origin
        assert managed.body == body  # copied byte for byte, comments and all

    workflows = sorted(p for p in ci if p.startswith(GH))
    checked = schema_check(root, "vendor.github-workflows", workflows)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    names, groups = [], []
    for path in workflows:
        doc = yaml.load(ci[path], Loader=yaml.BaseLoader)  # keeps `on` a string
        names.append(doc.get("name") or path)
        for holder in [doc, *(doc.get("jobs") or {}).values()]:
            group = holder.get("concurrency")
            group = group.get("group") if isinstance(group, dict) else group
            if group:
                groups.append(group)
    assert len(names) == len(set(names)), names
    assert len(groups) == len(set(groups)), groups

    assert sync(repo, "--check").returncode == 0
    commit(repo, "sync")
    before = snapshot(root)
    again = sync(repo)
    assert again.returncode == 0
    assert git_status(repo) == ""
    assert snapshot(root) == before
    assert plan_sync(root).in_sync


def test_header_format(alpha):
    root = root_of(alpha)
    apply_sync(root, plan_sync(root))
    source = (root / f"projects/alpha/{GH}/extra.yml").read_bytes()
    data = (root / GH / "alpha-extra.yml").read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    assert data == (
        b'# Generated by monostack ("invoke sync-workflows"): edit the source, not this file.\n'
        b"# monostack-source: projects/alpha/.github/workflows/extra.yml\n"
        b"# monostack-hash: sha256:" + digest.encode() + b"\n" + source
    )
    assert max(len(line) for line in data.decode().splitlines()[:3]) <= 120  # yamllint
    assert data == managed_file("projects/alpha/.github/workflows/extra.yml", source)


def test_root_names_keep_or_get_the_project_prefix(alpha):
    assert root_name("alpha", "alpha-ci.yml") == "alpha-ci.yml"
    assert root_name("alpha", "ci.yml") == "alpha-ci.yml"
    assert root_name("my-proj", "my-proj-x.yaml") == "my-proj-x.yaml"
    assert root_name("alpha", "alphabet.yml") == "alpha-alphabet.yml"
    root = root_of(alpha)
    write(root, f"projects/alpha/{GH}/alpha-own.yaml", project_workflow("alpha", "own", "own"))
    apply_sync(root, plan_sync(root))
    assert (root / GH / "alpha-own.yaml").is_file()
    assert (root / GH / "alpha-extra.yml").is_file()
    assert not (root / GH / "alpha-alpha-own.yaml").exists()


def test_hand_written_workflow_is_never_touched(alpha):
    root = root_of(alpha)
    custom = write(root, f"{GH}/custom.yml", CUSTOM)
    commit(alpha, "custom")
    original = custom.read_bytes()

    assert sync(alpha).returncode == 0
    assert custom.read_bytes() == original
    extra = root / f"projects/alpha/{GH}/extra.yml"
    extra.write_text(extra.read_text() + "# changed\n")
    assert sync(alpha).returncode == 0
    assert custom.read_bytes() == original
    commit(alpha, "changed alpha")
    alpha.git.rm("-r", "projects/alpha")
    commit(alpha, "remove alpha")
    assert sync(alpha, "--force").returncode == 0
    assert custom.read_bytes() == original
    assert sorted(p.name for p in (root / GH).iterdir()) == sorted(
        ["custom.yml", *(Path(p).name for p in monorepo_ci(root) if p.startswith(GH))]
    )


def test_removed_project_loses_its_root_files(repo):
    root = root_of(repo)
    new_project(root, "alpha")
    new_project(root, "beta")
    commit(repo, "projects")
    assert sync(repo).returncode == 0
    commit(repo, "sync")
    beta_files = [p for p in root_ci(root) if "/beta-" in p]
    alpha_files = [p for p in root_ci(root) if "/alpha-" in p]
    assert beta_files and alpha_files

    repo.git.rm("-r", "projects/beta")
    commit(repo, "remove beta")
    check = sync(repo, "--check")
    assert check.returncode == 1
    for path in beta_files:
        assert f"delete {path} (its source projects/beta/" in check.stdout
    result = sync(repo)
    assert result.returncode == 0, result.stderr
    assert all(not (root / p).exists() for p in beta_files)
    assert all((root / p).is_file() for p in alpha_files)
    assert sorted(git_status(repo).splitlines()) == sorted(f" D {p}" for p in beta_files)
    commit(repo, "sync")
    assert sync(repo, "--check").returncode == 0

    repo.git.rm("-r", "projects/alpha")
    commit(repo, "remove alpha")
    assert sync(repo).returncode == 0
    assert set(root_ci(root)) == set(monorepo_ci(root))
    if not monorepo_ci(root):
        assert not (root / ".github").exists()  # emptied folders go too


def test_changed_project_workflow_is_caught_by_check(alpha):
    root = root_of(alpha)
    assert sync(alpha).returncode == 0
    commit(alpha, "sync")
    source = root / f"projects/alpha/{GH}/extra.yml"
    source.write_text(source.read_text() + "      # a new comment, kept as is\n      - run: ls\n")
    check = sync(alpha, "--check")
    assert check.returncode == 1
    assert f"update {GH}/alpha-extra.yml (from projects/alpha/{GH}/extra.yml)" in check.stdout
    assert git_status(alpha) == f" M projects/alpha/{GH}/extra.yml"
    assert sync(alpha).returncode == 0
    managed = parse_managed((root / GH / "alpha-extra.yml").read_bytes())
    assert managed.body == source.read_bytes()
    assert b"# a new comment, kept as is" in managed.body


def test_hand_edited_managed_file_is_refused_unless_forced(alpha):
    root = root_of(alpha)
    assert sync(alpha).returncode == 0
    commit(alpha, "sync")
    target = root / GH / "alpha-extra.yml"
    edited = target.read_text().replace("echo ok", "echo edited in the root")
    target.write_text(edited)

    for args in ((), ("--check",), ("--dry-run",)):
        result = sync(alpha, *args)
        assert_user_error(
            result,
            f"{GH}/alpha-extra.yml",
            "edited by hand",
            f"projects/alpha/{GH}/extra.yml",
            "--force",
        )
        assert target.read_text() == edited
        assert git_status(alpha) == f" M {GH}/alpha-extra.yml"

    forced = sync(alpha, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "discarding hand edits" in forced.stdout
    assert git_status(alpha) == ""

    # Following the advice: the same edit moved into the source syncs without --force.
    target.write_text(edited)
    source = root / f"projects/alpha/{GH}/extra.yml"
    source.write_text(source.read_text().replace("echo ok", "echo edited in the root"))
    assert sync(alpha).returncode == 0
    assert parse_managed(target.read_bytes()).intact


def test_hand_edited_file_of_a_removed_project_is_kept_unless_forced(alpha):
    root = root_of(alpha)
    apply_sync(root, plan_sync(root))
    target = root / GH / "alpha-extra.yml"
    target.write_text(target.read_text() + "# my note\n")
    alpha.git.rm("-r", "projects/alpha")
    plan = plan_sync(root)
    assert [c.message for c in plan.conflicts if "alpha-extra" in c.message] == [
        f"{GH}/alpha-extra.yml: edited by hand in the root (it no longer matches its "
        f"monostack-hash); its source projects/alpha/{GH}/extra.yml is gone, and deleting it "
        "would lose those edits; pass --force to delete it anyway, or remove its three "
        "monostack header lines to keep it as a hand-written file"
    ]
    with pytest.raises(UserError, match="conflict"):
        apply_sync(root, plan)
    assert target.is_file()
    apply_sync(root, plan_sync(root, force=True))
    assert not target.exists()


# ------------------------------------------------------------------- conflicts
def test_reusing_a_hand_written_workflow_name_is_refused(alpha):
    root = root_of(alpha)
    write(root, f"{GH}/custom.yml", CUSTOM.replace("name: Custom checks", "name: alpha extra"))
    commit(alpha, "custom")
    result = sync(alpha)
    assert_user_error(
        result,
        "workflow name 'alpha extra'",
        f"projects/alpha/{GH}/extra.yml:2",
        f"{GH}/custom.yml:2 (hand-written)",
        "change it in",
    )
    assert git_status(alpha) == ""
    assert not (root / GH / "alpha-extra.yml").exists()
    # the plan is shown as what would happen, not as if it had
    out = result.stdout.splitlines()
    assert out[0] == "Planned, once the conflicts are resolved:"
    assert f"  create {GH}/alpha-extra.yml (from projects/alpha/{GH}/extra.yml)" in out
    assert out[-1] == "Nothing written: 1 conflict(s) to resolve first."


@pytest.mark.parametrize(
    "concurrency",
    [
        "concurrency: alpha-extra-${{ github.ref }}\n",
        "concurrency:\n  group: alpha-extra-${{ github.ref }}\n",
        "concurrency:\n  group: ALPHA-EXTRA-${{ github.ref }}\n",  # GitHub ignores case
        None,  # job level
    ],
)
def test_reusing_a_concurrency_group_is_refused(alpha, concurrency):
    root = root_of(alpha)
    if concurrency is None:
        text = CUSTOM.replace(
            "    runs-on: ubuntu-latest\n",
            "    runs-on: ubuntu-latest\n"
            "    concurrency:\n      group: alpha-extra-${{ github.ref }}\n",
        )
    else:
        text = CUSTOM.replace("permissions: {}\n", "permissions: {}\n" + concurrency)
    write(root, f"{GH}/custom.yml", text)
    commit(alpha, "custom")
    result = sync(alpha)
    assert_user_error(
        result,
        "concurrency group",
        "alpha-extra-${{ github.ref }}",
        f"projects/alpha/{GH}/extra.yml:11",
        f"{GH}/custom.yml",
        "hand-written",
    )
    assert git_status(alpha) == ""


def test_groups_keyed_by_the_workflow_name_do_not_clash(alpha):
    root = root_of(alpha)
    group = "${{ github.workflow }}-${{ github.ref }}"
    write(root, f"projects/alpha/{GH}/one.yml", project_workflow("alpha", "alpha one", group))
    write(root, f"projects/alpha/{GH}/two.yml", project_workflow("alpha", "alpha two", group))
    write(root, f"{GH}/custom.yml", CUSTOM.replace("permissions: {}\n", f"concurrency: {group}\n"))
    assert plan_sync(root).conflicts == []
    # ... but two workflows with the same name do clash, on the name and on the group.
    write(root, f"projects/alpha/{GH}/two.yml", project_workflow("alpha", "alpha one", group))
    messages = [c.message for c in plan_sync(root).conflicts]
    assert len(messages) == 2
    assert messages[0].startswith("workflow name 'alpha one'") or messages[1].startswith(
        "workflow name 'alpha one'"
    )
    assert any(m.startswith("concurrency group") for m in messages)


def test_two_hand_written_files_are_left_to_their_owner(alpha):
    root = root_of(alpha)
    write(root, f"{GH}/custom.yml", CUSTOM)
    write(root, f"{GH}/custom-copy.yml", CUSTOM)
    assert plan_sync(root).conflicts == []


def test_root_name_held_by_a_hand_written_file_is_refused(alpha):
    root = root_of(alpha)
    target = write(root, f"{GH}/alpha-extra.yml", CUSTOM)
    commit(alpha, "hand copy")
    result = sync(alpha)
    assert_user_error(
        result,
        f"{GH}/alpha-extra.yml is a hand-written file",
        f"projects/alpha/{GH}/extra.yml would be synced to that name",
    )
    assert git_status(alpha) == ""
    assert target.read_text() == CUSTOM


def test_case_only_differences_and_damaged_headers_count_as_hand_written(alpha):
    root = root_of(alpha)
    write(root, f"{GH}/ALPHA-extra.yml", CUSTOM)
    assert "ALPHA-extra.yml is a hand-written file" in plan_sync(root).conflicts[0].message
    (root / GH / "ALPHA-extra.yml").unlink()
    apply_sync(root, plan_sync(root))
    target = root / GH / "alpha-extra.yml"
    lines = target.read_text().splitlines(keepends=True)
    target.write_text("".join(lines[:2] + lines[3:]))  # hash line lost
    (conflict,) = plan_sync(root).conflicts
    assert "damaged monostack header" in conflict.message


def test_two_sources_for_one_root_name_are_refused(alpha):
    root = root_of(alpha)
    write(root, f"projects/alpha/{GH}/alpha-extra.yml", project_workflow("alpha", "x", "x"))
    commit(alpha, "second source")
    result = sync(alpha)
    assert_user_error(
        result,
        f"projects/alpha/{GH}/alpha-extra.yml and projects/alpha/{GH}/extra.yml",
        f"would both be synced to {GH}/alpha-extra.yml",
        "rename one",
    )
    assert git_status(alpha) == ""


def test_prefix_collision_between_projects_is_refused(repo):
    root = root_of(repo)
    for name in ("abc", "abc-d"):
        new_project(root, name)
    write(root, f"projects/abc/{GH}/d-x.yml", project_workflow("abc", "abc d x", "g1"))
    write(root, f"projects/abc_d/{GH}/x.yml", project_workflow("abc_d", "abc-d x", "g2"))
    (conflict,) = plan_sync(root).conflicts
    assert f"would both be synced to {GH}/abc-d-x.yml" in conflict.message


# ------------------------------------------------------------------- scope rules
def _scope(root: Path, text: str) -> list[str]:
    write(root, f"projects/alpha/{GH}/extra.yml", text)
    return [c.message for c in plan_sync(root).conflicts]


BASE = project_workflow("alpha", "alpha extra", "alpha-extra")


@pytest.mark.parametrize(
    "old, new, needles",
    [
        ('"projects/alpha/**"', '"projects/**"', ["'projects/**' points outside projects/alpha/"]),
        ('"projects/alpha/**"', "projects/beta/**", ["'projects/beta/**' points outside"]),
        ('"projects/alpha/**"', "projects/alpha*/**", ["'projects/alpha*/**' points outside"]),
        ('"projects/alpha/**"', "projects/alpha/../beta/**", ["points outside"]),
        ('"projects/alpha/**"', "'**'", ["'**' points outside"]),
        (
            '    paths:\n      - "projects/alpha/**"\n',
            "    branches: [main]\n",
            ["extra.yml:4: on.pull_request has no paths filter", "every change"],
        ),
        (
            '    paths:\n      - "projects/alpha/**"\n',
            '    paths-ignore:\n      - "docs/**"\n',
            ["on.pull_request has only paths-ignore"],
        ),
        (
            "  workflow_dispatch:\n",
            "  push:\n  workflow_dispatch:\n",
            ["on.push has no paths filter", 'add paths: ["projects/alpha/**"]'],
        ),
        (
            "    working-directory: projects/alpha\n",
            "    working-directory: projects/beta\n",
            ["extra.yml:15: working-directory 'projects/beta' points outside projects/alpha/"],
        ),
        (
            "    working-directory: projects/alpha\n",
            "    working-directory: ${{ github.workspace }}/projects/beta\n",
            ["points outside"],
        ),
        ("      - run: echo ok\n", "      - run: ls\n        working-directory: ..\n", ["'..'"]),
        ("      - run: echo ok\n", "      - run: ls\n        working-directory: /tmp\n", ["/tmp"]),
        (
            "    runs-on: ubuntu-latest\n",
            "    runs-on: ubuntu-latest\n    defaults:\n      run:\n        working-directory: .\n",
            ["working-directory '.' points outside"],
        ),
    ],
)
def test_project_workflow_reaching_outside_its_folder_is_refused(alpha, old, new, needles):
    assert old in BASE
    messages = _scope(root_of(alpha), BASE.replace(old, new))
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"projects/alpha/{GH}/extra.yml:")
    for needle in needles:
        assert needle in messages[0]


def test_project_workflow_scope_accepts_what_stays_inside(alpha):
    text = BASE.replace(
        '      - "projects/alpha/**"\n',
        '      - "projects/alpha/**"\n      - "!projects/alpha/docs/**"\n'
        "      - ./projects/alpha/src/*.py\n      - .github/workflows/alpha-extra.yml\n",
    ).replace(
        "  workflow_dispatch:\n",
        "  workflow_dispatch:\n  push:\n    tags: ['alpha-v*']\n"
        "  schedule:\n    - cron: '0 1 * * *'\n",
    )
    text += (
        "      - run: ls\n        working-directory: ${{ github.workspace }}/projects/alpha/src\n"
        "      - run: ls\n        working-directory: ./projects/alpha\n"
    )
    assert _scope(root_of(alpha), text) == []


def test_path_filter_outside_is_refused_by_the_cli(alpha):
    root = root_of(alpha)
    write(root, f"projects/alpha/{GH}/extra.yml", BASE.replace("projects/alpha/**", "src/**"))
    commit(alpha, "bad filter")
    result = sync(alpha)
    assert_user_error(result, f"projects/alpha/{GH}/extra.yml:6", "'src/**'", "outside")
    assert git_status(alpha) == ""


# ------------------------------------------------------------------ azure devops
PIPELINE = """\
# Nightly checks of alpha (a pipeline written by hand in the project).
trigger:
  branches:
    include: [main]
  paths:
    include:
      - projects/alpha/*
pr: none
pool:
  vmImage: ubuntu-latest
steps:
  - script: echo nightly
    workingDirectory: $(Build.SourcesDirectory)/projects/alpha
"""


def test_azure_devops_pipelines_sync_into_the_root_folder(repo):
    root = root_of(repo)
    config = root / "monorepo.yml"
    config.write_text(
        config.read_text().replace("cicd_platform: github_actions", "cicd_platform: azure_devops")
    )
    assert load_config(root).cicd_platform == "azure_devops"
    new_project(root, "alpha")
    write(root, f"projects/alpha/{AZ}/nightly.yml", PIPELINE)
    commit(repo, "azure")
    expected = project_ci(root)
    assert f"{AZ}/alpha-nightly.yml" in expected
    assert not any(p.startswith(GH) for p in expected)

    result = sync(repo)
    assert result.returncode == 0, result.stderr
    assert f"create {AZ}/alpha-nightly.yml (from projects/alpha/{AZ}/nightly.yml)" in result.stdout
    ci = root_ci(root)
    assert set(ci) == set(expected) | set(monorepo_ci(root))
    for path, (_, body) in expected.items():
        assert parse_managed(ci[path]).body == body
    pipelines = sorted(p for p in ci if p.startswith(AZ))
    checked = schema_check(root, "vendor.azure-pipelines", pipelines)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    commit(repo, "sync")
    assert sync(repo, "--check").returncode == 0
    assert sync(repo).returncode == 0
    assert git_status(repo) == ""


@pytest.mark.parametrize(
    "old, new, needle",
    [
        ("pr: none\n", "", "has no pr: section"),
        (
            "trigger:\n  branches:\n    include: [main]\n  paths:\n    include:\n"
            "      - projects/alpha/*\n",
            "",
            "has no trigger: section",
        ),
        ("  paths:\n    include:\n      - projects/alpha/*\n", "", "trigger has no paths.include"),
        ("      - projects/alpha/*\n", "      - projects/*\n", "'projects/*' points outside"),
        ("pr: none\n", "pr:\n  paths:\n    include: [/projects]\n", "pr.paths.include entry"),
        ("pr: none\n", "pr: [main]\n", "pr has no paths.include"),
        (
            "$(Build.SourcesDirectory)/projects/alpha",
            "$(Build.SourcesDirectory)/projects/beta",
            "workingDirectory '$(Build.SourcesDirectory)/projects/beta' points outside",
        ),
        ("$(Build.SourcesDirectory)/projects/alpha", "$(Agent.TempDirectory)", "points outside"),
    ],
)
def test_azure_pipeline_reaching_outside_its_folder_is_refused(alpha, old, new, needle):
    root = root_of(alpha)
    assert old in PIPELINE
    write(root, f"projects/alpha/{AZ}/nightly.yml", PIPELINE.replace(old, new))
    messages = [c.message for c in plan_sync(root).conflicts]
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"projects/alpha/{AZ}/nightly.yml")
    assert needle in messages[0]


def test_azure_pipeline_inside_its_folder_is_accepted(alpha):
    root = root_of(alpha)
    text = PIPELINE.replace(
        "$(Build.SourcesDirectory)/projects/alpha",
        "$(System.DefaultWorkingDirectory)/projects/alpha/src",
    ).replace("pr: none\n", "pr:\n  paths:\n    include: [/projects/alpha]\n")
    text = text.replace("trigger:\n  branches:", "trigger:\n  batch: true\n  branches:")
    text += "  - script: ls\n    workingDirectory: $(Pipeline.Workspace)/s/projects/alpha\n"
    write(root, f"projects/alpha/{AZ}/nightly.yml", text)
    write(
        root, f"projects/alpha/{AZ}/manual.yml", "trigger: none\npr: none\nsteps:\n  - script: ls\n"
    )
    assert plan_sync(root).conflicts == []


# --------------------------------------------------------------- monorepo part
MONOREPO_WORKFLOW = """\
# The monorepo's own checks (rendered from monorepo.yml).
name: monorepo checks
on:
  push:
    branches: [{{ monorepo.default_branch }}]
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo "{{ gh('github.sha') }}"
"""


def test_monorepo_part_keeps_its_names_and_follows_monorepo_yml(alpha):
    root = root_of(alpha)
    src = "stack_template/monorepo/.github/workflows/zz-monorepo-checks.yml.j2"
    write(root, src, MONOREPO_WORKFLOW)
    commit(alpha, "monorepo part")
    result = sync(alpha)
    assert result.returncode == 0, result.stderr
    assert f"create {GH}/zz-monorepo-checks.yml (from {src})" in result.stdout
    managed = parse_managed((root / GH / "zz-monorepo-checks.yml").read_bytes())
    assert managed.origin == src
    assert b"branches: [main]" in managed.body
    assert b'echo "${{ github.sha }}"' in managed.body
    commit(alpha, "sync")

    config = root / "monorepo.yml"
    config.write_text(config.read_text().replace("default_branch: main", "default_branch: trunk"))
    check = sync(alpha, "--check")
    assert check.returncode == 1
    assert f"update {GH}/zz-monorepo-checks.yml (from {src})" in check.stdout


def test_monorepo_part_and_project_wanting_one_name_is_refused(alpha):
    root = root_of(alpha)
    write(
        root,
        "stack_template/monorepo/.github/workflows/alpha-extra.yml",
        MONOREPO_WORKFLOW.replace("{{ monorepo.default_branch }}", "main").replace(
            "{{ gh('github.sha') }}", "x"
        ),
    )
    (conflict,) = plan_sync(root).conflicts
    assert conflict.message.startswith(
        f"stack_template/monorepo/{GH}/alpha-extra.yml and projects/alpha/{GH}/extra.yml "
        f"would both be synced to {GH}/alpha-extra.yml"
    )


def test_monorepo_part_rendering_a_non_ci_file_is_a_clear_error(alpha):
    root = root_of(alpha)
    write(root, "stack_template/monorepo/NOTES.md", "notes\n")
    commit(alpha, "bad monorepo part")
    assert_user_error(sync(alpha), "stack_template/monorepo/NOTES.md", "cannot manage")
    assert git_status(alpha) == ""


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "text, needles",
    [
        ("name: [unclosed\non: push\n", [f"projects/alpha/{GH}/extra.yml:", "invalid YAML"]),
        ("name: a\nname: b\n", [f"projects/alpha/{GH}/extra.yml:2", "duplicate key 'name'"]),
    ],
)
def test_unparseable_source_is_a_clear_error(alpha, text, needles):
    root = root_of(alpha)
    write(root, f"projects/alpha/{GH}/extra.yml", text)
    commit(alpha, "broken")
    result = sync(alpha)
    assert_user_error(result, *needles, "fix the source file")
    assert git_status(alpha) == ""


def test_unparseable_hand_written_root_file_is_a_clear_error(alpha):
    root = root_of(alpha)
    write(root, f"{GH}/custom.yml", "jobs:\n  - : :\n\t bad")
    commit(alpha, "broken custom")
    result = sync(alpha)
    assert_user_error(result, f"{GH}/custom.yml:", "invalid YAML", "hand-written")
    assert git_status(alpha) == ""


def test_broken_monorepo_yml_is_a_clear_error(alpha):
    config = root_of(alpha) / "monorepo.yml"
    config.write_text(config.read_text().replace("cloud: azure", "cloud: mars"))
    commit(alpha, "broken config")
    assert_user_error(sync(alpha), "monorepo.yml", "mars")
    assert git_status(alpha) == ""


# ---------------------------------------------------------- writing is all-or-nothing
def test_dry_run_writes_nothing(alpha):
    result = sync(alpha, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"create {GH}/alpha-extra.yml" in result.stdout
    assert "Dry run, nothing written" in result.stdout
    assert git_status(alpha) == ""
    write(root_of(alpha), f"{GH}/alpha-extra.yml", CUSTOM)
    assert sync(alpha, "--dry-run").returncode == 1  # conflicts still fail


def test_failure_while_staging_leaves_the_root_unchanged(alpha):
    root = root_of(alpha)
    explode, calls = fail_on_nth_file(2)
    with pytest.raises(UserError, match="injected"):
        apply_sync(root, plan_sync(root), on_file=explode)
    assert len(calls) == 2
    assert git_status(alpha) == ""
    assert not (root / ".github").exists()


def test_failure_while_renaming_restores_every_file(alpha, monkeypatch):
    root = root_of(alpha)
    new_project(root, "beta")
    write(root, f"{GH}/custom.yml", CUSTOM)
    commit(alpha, "beta")
    apply_sync(root, plan_sync(root))
    commit(alpha, "synced")
    source = root / f"projects/alpha/{GH}/extra.yml"
    source.write_text(source.read_text() + "# changed\n")
    alpha.git.rm("-r", "projects/beta")
    commit(alpha, "change alpha, remove beta")
    before = snapshot(root)
    plan = plan_sync(root)
    assert {c.action for c in plan.changes} == {"update", "delete"}

    # Fail at every write step of the transaction in turn (journal, staging, backups, renames):
    # each failure restores the root exactly; past the last step the apply succeeds.
    steps = 0
    for fail_at in range(1, 200):

        def fail(step, fail_at=fail_at):
            if step == fail_at:
                raise OSError("rename failed (injected)")

        set_fault_hook(fail)
        reset_steps()
        try:
            apply_sync(root, plan)
        except UserError as exc:
            assert "injected" in exc.message
        else:
            steps = fail_at - 1
            break
        finally:
            set_fault_hook(None)
        assert snapshot(root) == before, f"not restored after failing step {fail_at}"
        assert git_status(alpha) == ""
    assert steps >= 8, "every step of the write was exercised"
    sync_workflows(root)  # finishes the clean-up the last injected fault interrupted
    assert plan_sync(root).in_sync


def test_root_changed_between_plan_and_apply_is_refused(alpha):
    root = root_of(alpha)
    plan = plan_sync(root)
    write(root, f"{GH}/alpha-extra.yml", "# appeared meanwhile\n")
    with pytest.raises(UserError, match="changed while"):
        apply_sync(root, plan)
    assert (root / GH / "alpha-extra.yml").read_text() == "# appeared meanwhile\n"


def test_crlf_sources_stay_crlf_and_stay_in_sync(alpha):
    root = root_of(alpha)
    source = root / f"projects/alpha/{GH}/extra.yml"
    source.write_bytes(source.read_bytes().replace(b"\n", b"\r\n"))
    apply_sync(root, plan_sync(root))
    data = (root / GH / "alpha-extra.yml").read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")
    assert parse_managed(data).body == source.read_bytes()
    assert plan_sync(root).in_sync


def test_bom_source_gives_a_valid_root_file_and_stays_in_sync(alpha):
    root = root_of(alpha)
    source = root / f"projects/alpha/{GH}/extra.yml"
    source.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    apply_sync(root, plan_sync(root))
    data = (root / GH / "alpha-extra.yml").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf# Generated by monostack")
    assert yaml.safe_load(data.decode("utf-8-sig"))["name"] == "alpha extra"
    assert parse_managed(data).body == source.read_bytes()
    assert plan_sync(root).in_sync


def test_hand_copy_of_a_generated_file_is_refused_not_deleted(alpha):
    root = root_of(alpha)
    assert sync(alpha).returncode == 0
    commit(alpha, "sync")
    copy = root / GH / "my-ci-copy.yml"
    copy.write_bytes((root / GH / "alpha-extra.yml").read_bytes())
    parked = root / GH / "parked" / "alpha-extra.yml"
    parked.parent.mkdir()
    parked.write_bytes(copy.read_bytes())
    before = snapshot(root)
    for args in ((), ("--force",)):
        result = sync(alpha, *args)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert [e.split()[1] for e in errors] == [
            f"{GH}/my-ci-copy.yml",
            f"{GH}/parked/alpha-extra.yml",
        ]
        assert all("looks like a copy" in e for e in errors)
        assert snapshot(root) == before


def test_renamed_source_moves_its_root_file(alpha):
    root = root_of(alpha)
    assert sync(alpha).returncode == 0
    commit(alpha, "sync")
    old = root / f"projects/alpha/{GH}/extra.yml"
    old.rename(old.with_name("alpha-more.yml"))
    # same origin file name changed: the old root file goes, the new one comes
    check = sync(alpha, "--check")
    assert f"create {GH}/alpha-more.yml" in check.stdout
    assert f"delete {GH}/alpha-extra.yml" in check.stdout
    assert sync(alpha).returncode == 0
    assert not (root / GH / "alpha-extra.yml").exists()


def test_recorded_project_name_cannot_steer_files_outside_the_root(alpha, tmp_path):
    root = root_of(alpha)
    answers = root / "projects/alpha/.stack-answers.yml"
    text = answers.read_text()
    answers.write_text(text.replace("project_name: alpha", "project_name: ../../../pwned"))
    before = snapshot(root)
    result = sync(alpha)
    assert_user_error(result, ".stack-answers.yml", "project_name '../../../pwned'")
    assert snapshot(root) == before
    assert not list(root.parent.glob("**/pwned*"))


# ------------------------------------------------------------------ test-all
def test_sync_findings_for_test_all(alpha):
    root = root_of(alpha)
    pending = sync_findings(root)
    assert pending and all(f.severity == ERROR and f.check == CHECK_NAME for f in pending)
    extra = [f for f in pending if f.file == f"{GH}/alpha-extra.yml"]
    assert extra[0].project == "alpha"
    assert "root CI files are out of date: run invoke sync-workflows" in extra[0].message

    sync_workflows(root)
    assert sync_findings(root) == []

    write(root, f"{GH}/custom.yml", CUSTOM.replace("name: Custom checks", "name: alpha extra"))
    (finding,) = sync_findings(root)
    assert finding.project == "alpha"
    assert finding.file == f"projects/alpha/{GH}/extra.yml"
    assert finding.line == 2
    assert "workflow name 'alpha extra'" in finding.message

    (root / "monorepo.yml").write_text("cloud: mars\n")
    (finding,) = sync_findings(root)
    assert finding.project == MONOREPO and finding.file == "monorepo.yml"


def test_help_documents_the_options(repo):
    result = invoke(repo, "--help", "sync-workflows")
    assert result.returncode == 0
    for option in ("--check", "--dry-run", "--force"):
        assert option in result.stdout


def test_the_monorepo_guide_is_synced_as_markdown_and_guarded_like_a_workflow(repo):
    root = root_of(repo)
    write(root, "docs/team-notes.md", "# Our notes\n")  # hand-written: never touched
    commit(repo, "notes")
    assert sync(repo).returncode == 0
    guide = (root / "docs/mlops-setup.md").read_bytes()
    lines = guide.decode().splitlines()
    assert lines[0].startswith("<!-- Generated by monostack") and lines[0].endswith("-->")
    assert lines[1] == "<!-- monostack-source: stack_template/monorepo/docs/mlops-setup.md.j2 -->"
    assert lines[3] == "# MLOps set-up guide"
    managed = parse_managed(guide)
    assert managed is not None and managed.intact
    assert managed.body == monorepo_ci(root)["docs/mlops-setup.md"]
    assert (root / "docs/team-notes.md").read_text() == "# Our notes\n"
    commit(repo, "sync")
    assert sync(repo, "--check").returncode == 0

    (root / "docs/mlops-setup.md").write_bytes(guide + b"\nmy edit\n")
    result = sync(repo)
    assert result.returncode == 1
    assert "docs/mlops-setup.md: edited by hand" in result.stderr
    assert (root / "docs/mlops-setup.md").read_bytes().endswith(b"my edit\n")
    assert sync(repo, "--force").returncode == 0
    assert (root / "docs/mlops-setup.md").read_bytes() == guide
