"""Issue 12's reproductions, one test (or a few) each: hostile input and faults give one
``error:`` line, no traceback, nothing read or written outside the repository, and a repository
exactly as it was."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from monostack import writesteps
from monostack.errors import UserError
from monostack.projects import ANSWERS_FILE, discover_projects, new_project
from monostack.repolock import lock_path, repo_lock
from monostack.report import output_path
from monostack.template import load_template
from monostack.workflows import plan_sync, sync_workflows
from tests.conftest import (
    VENV_BIN,
    assert_user_error,
    git_status,
    invoke,
    invoke_in_process,
    root_of,
)
from tests.test_update import commit

GH = ".github/workflows"


def workflow(name: str) -> str:
    return (
        f"name: {name}\non:\n  push:\n    paths: ['projects/alpha/**']\njobs:\n  x:\n"
        "    runs-on: ubuntu-latest\n    steps:\n      - run: echo ok\n"
    )


BOMB = 'a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n' + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


def _alpha_synced(repo) -> None:
    root = root_of(repo)
    new_project(root, "alpha")
    sync_workflows(root)
    commit(repo, "alpha, synced")


@pytest.fixture
def alpha(built_repo):
    return built_repo("hostile-alpha", _alpha_synced)


def set_config(root: Path, old: str, new: str) -> None:
    path = root / "monorepo.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


# 1. ------------------------------------------------------------------- symlinks
def test_sync_refuses_a_workflow_symlinked_out_of_the_repo(alpha, tmp_path):
    root = root_of(alpha)
    secret = tmp_path / "secret.yml"
    secret.write_text("name: secret\non: push\njobs: {}\n")
    (root / "projects/alpha" / GH / "alpha-x.yml").symlink_to(secret)
    result = invoke_in_process(alpha, "sync-workflows")
    assert_user_error(result, "alpha-x.yml", "symbolic link")
    assert not (root / GH / "alpha-x.yml").exists()
    assert invoke_in_process(alpha, "sync-workflows", "--check").returncode != 0


def test_sync_refuses_a_project_directory_symlinked_outside(alpha, tmp_path):
    root = root_of(alpha)
    outside = tmp_path / "elsewhere"
    (root / "projects/alpha").rename(outside)
    (root / "projects/alpha").symlink_to(outside)
    with pytest.raises(UserError, match="projects/alpha: is a symbolic link"):
        sync_workflows(root)


@pytest.mark.parametrize("link", [".github", GH])
def test_sync_never_writes_through_a_symlinked_ci_folder(alpha, tmp_path, link):
    root = root_of(alpha)
    outside = tmp_path / "outside"
    (root / link).rename(outside)
    (root / link).symlink_to(outside)
    before = sorted(p.name for p in outside.rglob("*"))
    with pytest.raises(UserError, match="symbolic link") as exc:
        sync_workflows(root)
    assert "changed while" not in exc.value.message
    assert sorted(p.name for p in outside.rglob("*")) == before


def test_new_project_refuses_a_symlink_in_the_template(repo):
    root = root_of(repo)
    (root / "stack_template/project/passwd.txt").symlink_to("/etc/passwd")
    with pytest.raises(UserError, match="passwd.txt: is a symbolic link"):
        new_project(root, "alpha")
    assert not (root / "projects").exists()


def test_a_fifo_is_refused_not_waited_on(alpha):
    root = root_of(alpha)
    os.mkfifo(root / "projects/alpha" / GH / "alpha-fifo.yml")
    started = time.monotonic()
    with pytest.raises(UserError, match="not a regular file"):
        sync_workflows(root)
    assert time.monotonic() - started < 10


# 2. -------------------------------------------- stray files (see also test_kill.py)
def test_full_disk_mid_sync_leaves_no_partial_file(alpha):
    root = root_of(alpha)
    src = root / "projects/alpha" / GH / "alpha-new.yml"
    src.write_text(workflow("new"))
    commit(alpha, "new workflow")
    result = invoke(alpha, "sync-workflows", env={writesteps.FAIL_AT_STEP_ENV: "3:ENOSPC"})
    assert_user_error(result, "disk is full", "nothing was changed")
    assert git_status(alpha) == ""
    assert not [p for p in root.rglob("*") if ".monostack-" in p.name]


def test_check_fails_while_stray_files_exist(alpha):
    root = root_of(alpha)
    stray = root / GH / ".alpha-bundle-ci.yml.monostack-tmp"
    stray.write_text("half")
    result = invoke_in_process(alpha, "sync-workflows", "--check")
    assert result.returncode != 0
    assert ".alpha-bundle-ci.yml.monostack-tmp: left behind by an interrupted" in result.stderr


# 3. ------------------------------------------------------------------------ SIGINT
@pytest.mark.parametrize("at", [1, 3, 6])
def test_sigint_during_sync_is_reported_truthfully(alpha, at):
    from invoke.exceptions import Exit

    from monostack.cli import user_errors

    root = root_of(alpha)
    for name in ("a", "b"):
        (root / "projects/alpha" / GH / f"alpha-{name}.yml").write_text(workflow(name))
    commit(alpha, "two workflows")
    before = {p: p.read_bytes() for p in (root / GH).iterdir()}

    def interrupt(step):
        if step == at:
            os.kill(os.getpid(), signal.SIGINT)

    writesteps.set_fault_hook(interrupt)
    try:
        user_errors(lambda: sync_workflows(root))()
        interrupted = None
    except Exit as exc:
        interrupted = str(exc.message)
    finally:
        writesteps.set_fault_hook(None)
    after = {p: p.read_bytes() for p in (root / GH).iterdir()}
    if interrupted is not None and "nothing was written" in interrupted:
        assert after == before
    else:  # held until the renames were done: complete, and said so (or finished normally)
        assert plan_sync(root).in_sync
    assert not [p for p in root.rglob("*") if ".monostack-" in p.name]


# 4. ------------------------------------------------------------------- alias bombs
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("default_branch: main", "default_branch: *a8"),
        ("  staging: https://adb-1111111111111111.11.azuredatabricks.net", "  staging: *a8"),
        ("  staging: staging", "  staging: *a8"),
    ],
)
def test_alias_bomb_in_monorepo_yml_is_refused_fast(repo, old, new):
    root = root_of(repo)
    set_config(root, old, new)
    path = root / "monorepo.yml"
    path.write_text(BOMB + path.read_text())
    started = time.monotonic()
    with pytest.raises(UserError, match="alias bomb") as exc:
        new_project(root, "alpha")
    assert time.monotonic() - started < 1
    assert len(exc.value.message) < 300 and exc.value.message.startswith("monorepo.yml:")


def test_alias_bomb_in_stack_yml_and_answers_is_refused_fast(alpha):
    root = root_of(alpha)
    answers = root / "projects/alpha" / ANSWERS_FILE
    answers.write_text(answers.read_text() + BOMB + "extra: *a8\n")
    started = time.monotonic()
    with pytest.raises(UserError, match="alias bomb"):
        discover_projects(root)
    stack = root / "stack_template/stack.yml"
    stack.write_text(BOMB + stack.read_text())
    with pytest.raises(UserError, match="alias bomb"):
        load_template(root / "stack_template")
    assert time.monotonic() - started < 1


# 5. ------------------------------------------------------------ values where they land
@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("default_branch: main", 'default_branch: "main\\non: [push]"', "default_branch"),
        (
            "default_branch: main",
            'default_branch: "${{ github.event.issue.title }}"',
            "CI expression",
        ),
        ("release_branch: release", "release_branch: rel..ease", "git's ref rules"),
        (
            "staging: https://adb-1111111111111111.11.azuredatabricks.net",
            'staging: "https://adb-1 ;x.net"',
            "workspaces.staging",
        ),
        ("staging: staging", "staging: stag.ing", "catalogs.staging"),
        ("staging: staging", 'staging: "st;aging"', "catalogs.staging"),
    ],
)
def test_bad_values_are_blamed_on_monorepo_yml(repo, old, new, needle):
    root = root_of(repo)
    set_config(root, old, new)
    result = invoke_in_process(repo, "new-project", "--name", "alpha")
    assert_user_error(result, "monorepo.yml", needle)
    assert not (root / "projects").exists()


# 6. ------------------------------------------------------------- one-line OS errors
@pytest.mark.parametrize("code", ["ENOSPC", "EROFS", "EACCES", "EPERM"])
def test_os_errors_while_writing_are_one_line(repo, code):
    result = invoke(
        repo, "new-project", "--name", "alpha", env={writesteps.FAIL_AT_STEP_ENV: f"4:{code}"}
    )
    assert_user_error(result, "cannot write")
    assert git_status(repo) == ""


def test_unreadable_file_is_one_line(alpha, monkeypatch):
    from monostack import safeio

    real_open = os.open

    def denied(path, flags, *args):
        if str(path).endswith("monorepo.yml"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(safeio.os, "open", denied)
    with pytest.raises(UserError, match=r"monorepo.yml: cannot read it \(permission denied"):
        sync_workflows(root_of(alpha))


def test_over_long_project_name_is_refused(repo):
    result = invoke_in_process(repo, "new-project", "--name", "p" * 240)
    assert_user_error(result, "longer than 100 characters")
    assert git_status(repo) == ""


def test_closed_pipe_is_not_a_traceback(repo):
    proc = subprocess.Popen(
        [str(VENV_BIN / "invoke"), "new-project", "--name", "alpha"],
        cwd=root_of(repo),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # like `| true`: the reader is gone before anything is printed
    _, err = proc.communicate(timeout=300)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err
    assert proc.returncode == 0
    assert (root_of(repo) / "projects/alpha/databricks.yml").is_file()


# 7. ----------------------------------------------------------------------- races
def test_a_held_lock_is_a_clear_error_and_a_dead_owners_lock_is_cleared(repo):
    root = root_of(repo)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # holds the lock until told to stop
        with repo_lock(root):
            os.write(write, b"x")
            time.sleep(30)
        os._exit(0)
    os.read(read, 1)
    try:
        with pytest.raises(UserError, match=rf"another monostack command \(pid {pid}\)"):
            new_project(root, "alpha")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert lock_path(root).exists()  # left behind by the killed owner
    assert plan_sync(root).conflicts  # reported by --check
    new_project(root, "alpha")  # taken over: its owner is dead
    assert not lock_path(root).exists()


def test_concurrent_new_projects_with_clashing_names_create_one(repo):
    root = root_of(repo)
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    procs = [
        subprocess.Popen(
            [str(VENV_BIN / "invoke"), "new-project", "--name", name],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        for name in ("qq-r", "qq_r", "Qq-r")
    ]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert sorted(p.name for p in (root / "projects").iterdir()) in (["qq_r"], ["Qq_r"])
    assert sum(p.returncode == 0 for p in procs) == 1
    for err in errors:
        assert "Traceback" not in err


# 8. ---------------------------------------------------------------- template checks
def _edit_stack(root: Path, old: str, new: str) -> None:
    path = root / "stack_template/stack.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_when_naming_an_undefined_variable_is_a_load_error(repo):
    root = root_of(repo)
    _edit_stack(root, "when: include_models_in_unity_catalog", "when: include_modles_in_uc")
    result = invoke_in_process(repo, "new-project", "--name", "alpha")
    assert_user_error(result, "stack.yml", "include_modles_in_uc")


def test_default_outside_choices_is_caught_by_loading_and_render_matrix(repo):
    from monostack.checks.render_matrix import run_render_matrix

    root = root_of(repo)
    _edit_stack(
        root,
        "  include_feature_store:\n    type: bool\n    default: false",
        "  include_feature_store:\n    type: bool\n    default: sometimes",
    )
    with pytest.raises(UserError, match="default: 'sometimes' is not true or false"):
        load_template(root / "stack_template")
    _edit_stack(root, "default: sometimes", "default: \"{{ 'sometimes' }}\"")
    (case,) = run_render_matrix(root, jobs=1)
    assert case.case == "defaults"
    assert "new-project with the default answers fails" in case.findings[0].message


def test_redos_pattern_is_refused_at_once(repo):
    root = root_of(repo)
    _edit_stack(root, "pattern: '^[^ .\\\\/]{3,}$'", "pattern: '^(a+)+$'")
    started = time.monotonic()
    with pytest.raises(UserError, match="repeats a group that itself repeats"):
        load_template(root / "stack_template")
    assert time.monotonic() - started < 1


# 9. -------------------------------------------------------------- output validation
def test_template_rendering_invalid_yaml_writes_nothing(repo):
    root = root_of(repo)
    path = root / "stack_template/project/databricks.yml.j2"
    path.write_text(path.read_text() + "\nbroken: [unclosed\n")
    result = invoke_in_process(repo, "new-project", "--name", "alpha")
    assert_user_error(result, "databricks.yml.j2", "renders invalid YAML")
    assert not (root / "projects").exists()


@pytest.mark.parametrize("body", ["just a string\n", "- a\n- b\n", ""])
def test_project_workflow_that_is_not_a_mapping_is_not_synced(alpha, body):
    root = root_of(alpha)
    (root / "projects/alpha" / GH / "alpha-odd.yml").write_text(body)
    result = sync_workflows(root)
    assert result.exit_code == 1
    assert any("not a CI file" in c.message for c in result.plan.conflicts)
    assert not (root / GH / "alpha-odd.yml").exists()


# 10. ----------------------------------------------------------------------- other
def test_junit_xml_never_overwrites_a_non_report(repo):
    root = root_of(repo)
    with pytest.raises(UserError, match="not a JUnit XML report"):
        output_path(root / "monorepo.yml")
    report = root / "reports/old.xml"
    report.parent.mkdir()
    report.write_text('<?xml version="1.0"?>\n<testsuites/>\n')
    assert output_path(report) == report  # an old report may be replaced


def test_reused_project_uuid_is_refused(alpha):
    root = root_of(alpha)
    new_project(root, "beta")
    uuid = discover_projects(root)[0].answers["project_uuid"]
    answers = root / "projects/beta" / ANSWERS_FILE
    text = answers.read_text()
    old = discover_projects(root)[1].answers["project_uuid"]
    answers.write_text(text.replace(old, uuid))
    with pytest.raises(UserError, match="project_uuid .* is also the uuid of projects/alpha"):
        discover_projects(root)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("_template_colour: red\n", "unknown key '_template_colour'"),
        ("include_feature_store: [1, 2]\n", "expected a plain value"),
        ("'bad key': 1\n", "is not a parameter name"),
        ("project_uuid: 12\n", "not a lower-case UUID"),
        # against the template version the file records
        ("include_feature_stor: true\n", "unknown key 'include_feature_stor': template"),
        ("include_feature_store: maybe\n", "'maybe' is not a yes/no value"),
        ("compute: gpu\n", "'gpu' is not one of: serverless, classic"),
        ("schema_name: true\n", "'schema_name': expected a string"),
    ],
)
def test_answers_file_with_unknown_keys_or_wrong_types_is_refused(alpha, line, needle):
    root = root_of(alpha)
    answers = root / "projects/alpha" / ANSWERS_FILE
    lines = answers.read_text().splitlines(keepends=True)
    key = line.split(":")[0].strip("'")
    answers.write_text("".join(ln for ln in lines if not ln.startswith(key + ":")) + line)
    with pytest.raises(UserError, match=needle):
        discover_projects(root)


@pytest.mark.parametrize(
    "command",
    [
        ["new-project", "--name", "beta"],
        ["sync-workflows", "--check"],
        ["list-projects"],
        ["bundle-validate"],
        ["adopt-project", "--dry-run", "--path"],
    ],
)
def test_every_reader_refuses_a_misspelt_answer_in_one_line(alpha, command, tmp_path):
    from tests.upstream_fixture import build_upstream

    root = root_of(alpha)
    answers = root / "projects/alpha" / ANSWERS_FILE
    answers.write_text(answers.read_text() + "inference_tabel_name: scores\n")
    if command[0] == "adopt-project":
        command = [*command, str(build_upstream(tmp_path / "up", "churn"))]
    result = invoke_in_process(alpha, *command)
    assert_user_error(result, f"projects/alpha/{ANSWERS_FILE}", "'inference_tabel_name'")


def test_update_projects_reports_a_misspelt_answer_for_its_project(alpha):
    """update-projects reconciles answers per project (a template changed without a version
    bump must not block it): the project's own error line, and a failing exit."""
    root = root_of(alpha)
    answers = root / "projects/alpha" / ANSWERS_FILE
    answers.write_text(answers.read_text() + "inference_tabel_name: scores\n")
    commit(alpha, "a misspelt answer")
    result = invoke_in_process(alpha, "update-projects", "--check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"projects/alpha/{ANSWERS_FILE}: unknown key 'inference_tabel_name'" in result.stdout


def test_answers_of_another_template_version_are_left_to_update_projects(alpha):
    from monostack.update import update_projects

    root = root_of(alpha)
    answers = root / "projects/alpha" / ANSWERS_FILE
    text = re.sub(r"(?m)^_template_version: .*$", "_template_version: 0.0.9", answers.read_text())
    answers.write_text(text + "inference_tabel_name: scores\n")
    commit(alpha, "answers of an older template version")
    assert discover_projects(root)[0].answers["inference_tabel_name"] == "scores"
    result = update_projects(root, check=True)
    (plan,) = result.plans
    assert "unknown key 'inference_tabel_name': neither template" in plan.error


def test_an_immutable_root_file_is_one_line_and_the_undo_completes(alpha, monkeypatch):
    from monostack import journal, treeio

    root = root_of(alpha)
    target = root / GH / "alpha-bundle-ci.yml"
    src = root / "projects/alpha" / GH / "alpha-bundle-ci.yml"
    src.write_text(src.read_text() + "# changed\n")
    before = target.read_bytes()
    real_replace = os.replace

    def immutable(src_path, dst_path):  # what `chattr +i` does to a rename over the file
        if Path(dst_path) == target:
            raise PermissionError(1, "Operation not permitted", str(src_path))
        return real_replace(src_path, dst_path)

    monkeypatch.setattr(treeio.os, "replace", immutable)
    with pytest.raises(UserError) as exc:
        sync_workflows(root)
    message = exc.value.message
    assert message.startswith(f"{GH}/alpha-bundle-ci.yml: cannot write it (operation not permitted")
    assert message.endswith("nothing was changed")
    assert target.read_bytes() == before
    assert not [p for p in root.rglob("*") if ".monostack-" in p.name]
    assert not journal.journal_path(root).exists()
