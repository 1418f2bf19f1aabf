"""The team's own checks (extra_checks in monorepo.yml): declaration, planning (selection,
placeholders, "cannot start"), running (exit code and output to findings, timeouts) and the
test-all / extra-checks tasks end to end, with the two shipped examples."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import git
import pytest

from monostack.checks import ERROR, MONOREPO, WARNING
from monostack.checks.extra import (
    ExtraCheck,
    load_extra_checks,
    parse_extra_checks,
    plan_extra_checks,
    run_extra_checks,
    run_invocation,
)
from monostack.config import load_config, parse_config
from monostack.errors import UserError
from monostack.runner import EXTRA, run_checks
from tests.conftest import REPO_ROOT, assert_user_error, git_status, invoke, root_of

EXAMPLES = REPO_ROOT / "examples" / "extra-checks"
BASE = {
    "cloud": "aws",
    "cicd_platform": "github_actions",
    "workspaces": {"staging": "https://s.example.com", "prod": "https://p.example.com"},
}


def parse(items):
    return parse_extra_checks(items, "monorepo.yml")


def add_project(root: Path, name: str) -> Path:
    path = root / "projects" / name
    path.mkdir(parents=True)
    (path / "databricks.yml").write_text(f"bundle:\n  name: {name}\n", encoding="utf-8")
    (path / ".stack-answers.yml").write_text(f"project_name: {name}\n", encoding="utf-8")
    return path


def set_checks(root: Path, block: str) -> None:
    """Append an ``extra_checks:`` block to the repo's monorepo.yml."""
    with (root / "monorepo.yml").open("a", encoding="utf-8") as handle:
        handle.write("\n" + textwrap.dedent(block))


@pytest.fixture
def two(repo: git.Repo) -> git.Repo:
    """Projects alpha and beta, committed, on branch ``feature``."""
    root = root_of(repo)
    add_project(root, "alpha")
    add_project(root, "beta")
    repo.git.add(A=True)
    repo.index.commit("two projects")
    repo.git.checkout("-b", "feature")
    return repo


# A check that fails in the project named beta and prints why; passes elsewhere.
FAIL_IN_BETA = (
    "import os, sys; name = os.environ['MONOSTACK_PROJECT']; "
    "print('checked', name, 'in', os.getcwd()); "
    "sys.exit(3 if name == 'beta' else 0)"
)


POLICY = f'extra_checks:\n  - name: policy\n    run: ["python", "-c", "{FAIL_IN_BETA}"]\n'


# -- declaration --------------------------------------------------------------------------------


def test_a_declaration_with_defaults():
    (check,) = parse([{"name": "smoke", "run": "python -m pytest -q {project_dir}/tests"}])
    assert check.run == ("python", "-m", "pytest", "-q", "{project_dir}/tests")
    assert (check.scope, check.severity, check.when_exists, check.inputs) == (
        "project",
        ERROR,
        None,
        (),
    )
    assert check.command == "python -m pytest -q {project_dir}/tests"
    listed = parse([{"name": "x", "run": ["a b", "{root}"], "scope": "repo", "timeout": 5}])
    assert listed[0].run == ("a b", "{root}") and listed[0].timeout == 5.0


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ({"name": "x", "run": "a", "colour": 1}, "unknown key 'colour'"),
        ({"run": "a"}, "name: None is not valid"),
        ({"name": "-x", "run": "a"}, "name: '-x' is not valid"),
        ({"name": "lint", "run": "a"}, "taken by a built-in check"),
        ({"name": "x"}, "missing required key 'run'"),
        ({"name": "x", "run": ""}, "run: is empty"),
        ({"name": "x", "run": "a 'b"}, "cannot split"),
        ({"name": "x", "run": 3}, "expected a command line or a list of words"),
        ({"name": "x", "run": "a", "scope": "all"}, "scope: 'all' is not allowed"),
        ({"name": "x", "run": "a", "severity": "info"}, "severity: 'info' is not allowed"),
        ({"name": "x", "run": "a", "timeout": 0}, "timeout: expected a number of seconds"),
        ({"name": "x", "run": "a", "timeout": True}, "timeout: expected a number of seconds"),
        ({"name": "x", "run": "a {proj}"}, "unknown placeholder {proj}"),
        ({"name": "x", "run": "a {project_dirs}"}, "{project_dirs} is only for scope: repo"),
        ({"name": "x", "run": "a x{projects}", "scope": "repo"}, "must be a word of its own"),
        ({"name": "x", "run": "a {project}", "scope": "repo"}, "use {projects}"),
        ({"name": "x", "run": "a", "when_exists": "../*"}, "must stay inside the project"),
        ({"name": "x", "run": "a", "scope": "repo", "when_exists": "a"}, "only applies"),
        ({"name": "x", "run": "a", "inputs": [1]}, "inputs: expected a list"),
        ("python x.py", "expected a mapping with name and run"),
    ],
)
def test_bad_declarations_name_the_check_and_the_key(item, needle):
    with pytest.raises(UserError) as info:
        parse([item])
    assert needle in info.value.message
    assert info.value.message.startswith("monorepo.yml: extra_checks")


def test_names_are_unique_ignoring_case():
    with pytest.raises(UserError, match="'Smoke'.*declared twice"):
        parse([{"name": "smoke", "run": "a"}, {"name": "Smoke", "run": "b"}])


def test_literal_braces_are_written_doubled():
    (check,) = parse([{"name": "x", "run": "python -c 'print({{1: 2}})'"}])
    assert check.run == ("python", "-c", "print({{1: 2}})")


def test_config_keeps_checks_or_the_file_that_holds_them():
    inline = parse_config({**BASE, "extra_checks": [{"name": "x", "run": "true"}]})
    assert [c.name for c in inline.extra_checks] == ["x"]
    assert "extra_checks" not in inline.as_context()  # nothing a template renders
    assert parse_config({**BASE, "extra_checks": "ci/checks.yml"}).extra_checks == "ci/checks.yml"
    assert parse_config(BASE).extra_checks == ()
    with pytest.raises(UserError, match="extra_checks: '/etc/checks.yml': give a path inside"):
        parse_config({**BASE, "extra_checks": "/etc/checks.yml"})
    with pytest.raises(UserError, match="expected a list of checks"):
        parse_config({**BASE, "extra_checks": {"name": "x"}})


def test_checks_file_is_read_with_messages_naming_it(tmp_path):
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "checks.yml").write_text("- name: x\n  run: echo\n", encoding="utf-8")
    assert [c.source for c in load_extra_checks(tmp_path, "ci/checks.yml")] == ["ci/checks.yml"]
    wrapped = "extra_checks:\n  - name: y\n    run: echo\n"
    (tmp_path / "ci" / "wrapped.yml").write_text(wrapped, encoding="utf-8")
    assert [c.name for c in load_extra_checks(tmp_path, "ci/wrapped.yml")] == ["y"]
    (tmp_path / "ci" / "bad.yml").write_text("- name: x\n  run: echo\n  when: 1\n", "utf-8")
    with pytest.raises(UserError, match=r"^ci/bad.yml: extra_checks\[0\]: unknown key 'when'"):
        load_extra_checks(tmp_path, "ci/bad.yml")
    with pytest.raises(UserError, match="ci/none.yml not found"):
        load_extra_checks(tmp_path, "ci/none.yml")
    (tmp_path / "ci" / "out.yml").symlink_to(tmp_path.parent / "elsewhere.yml")
    with pytest.raises(UserError, match="leads outside the repository"):
        load_extra_checks(tmp_path, "ci/out.yml")


# -- planning -----------------------------------------------------------------------------------


def projects_of(repo):
    from monostack.projects import discover_projects

    return discover_projects(root_of(repo))


def test_plan_fills_placeholders_and_environment_per_project(two):
    root = root_of(two).resolve()
    alpha, beta = projects_of(two)
    checks = parse([{"name": "x", "run": "python {root}/t.py {project} {project_dir} {check}"}])
    plan = plan_extra_checks(root, checks, [alpha, beta], [alpha, beta])
    first = plan.invocations[0]
    assert first.case == "alpha" and first.cwd == str(root / "projects/alpha")
    assert first.argv == ("python", f"{root}/t.py", "alpha", str(root / "projects/alpha"), "x")
    env = dict(first.env)
    assert env["MONOSTACK_PROJECT"] == "alpha"
    assert env["MONOSTACK_PROJECT_DIR"] == str(root / "projects/alpha")
    assert env["MONOSTACK_ROOT"] == str(root)
    assert env["PATH"].startswith(str(Path(sys.executable).parent))


def test_repo_scope_runs_once_with_every_selected_project(two):
    root = root_of(two).resolve()
    alpha, beta = projects_of(two)
    checks = parse([{"name": "x", "scope": "repo", "run": "python t.py {project_dirs} --"}])
    (inv,) = plan_extra_checks(root, checks, [alpha, beta], [alpha, beta]).invocations
    assert inv.case == MONOREPO and inv.cwd == str(root)
    dirs = (str(root / "projects/alpha"), str(root / "projects/beta"))
    assert inv.argv == ("python", "t.py", *dirs, "--")
    assert dict(inv.env)["MONOSTACK_PROJECTS"] == "alpha beta"
    nothing = plan_extra_checks(root, checks, [], [alpha, beta])
    assert not nothing.invocations
    assert [r.skipped for r in nothing.skipped] == ["no project selected"]


def test_when_exists_keeps_only_projects_where_the_glob_matches(two):
    root = root_of(two)
    (root / "projects/beta/contracts").mkdir()
    (root / "projects/beta/contracts/t.yml").write_text("x: 1\n", encoding="utf-8")
    checks = parse([{"name": "x", "run": "python", "when_exists": "contracts/*.yml"}])
    every = projects_of(two)
    assert [i.case for i in plan_extra_checks(root, checks, every, every).invocations] == ["beta"]


def test_a_changed_input_reruns_the_check_on_every_project(two):
    root = root_of(two)
    alpha, beta = projects_of(two)
    checks = parse([{"name": "x", "run": "python", "inputs": ["tools/**"]}])
    cases = lambda changed: [  # noqa: E731
        i.case for i in plan_extra_checks(root, checks, [beta], [alpha, beta], changed).invocations
    ]
    assert cases({"projects/beta/a.py"}) == ["beta"]
    assert cases({"projects/beta/a.py", "tools/contract/check.py"}) == ["alpha", "beta"]
    assert cases({"monorepo.yml"}) == ["alpha", "beta"]  # its declaration changed


@pytest.mark.parametrize(
    ("run", "needle"),
    [
        ("no-such-command-xyz --flag", "'no-such-command-xyz' is not a command found on PATH"),
        ("./missing.sh", "'./missing.sh' does not exist"),
        ("./not-executable.sh", "is not executable"),
    ],
)
def test_a_command_that_cannot_start_is_one_error_before_anything_runs(two, run, needle):
    root = root_of(two)
    for name in ("alpha", "beta"):
        (root / "projects" / name / "not-executable.sh").write_text("echo hi\n", encoding="utf-8")
    checks = parse([{"name": "contract", "run": run}])
    every = projects_of(two)
    with pytest.raises(UserError) as info:
        plan_extra_checks(root, checks, every, every)
    message = info.value.message
    assert message.startswith("monorepo.yml: extra_checks 'contract': cannot start")
    assert needle in message and run in message


# -- running ------------------------------------------------------------------------------------


def run_plan(repo, items, selected=None):
    root = root_of(repo)
    every = projects_of(repo)
    return run_extra_checks(plan_extra_checks(root, parse(items), selected or every, every))


def test_exit_code_and_output_become_findings(two):
    results = run_plan(two, [{"name": "policy", "run": ["python", "-c", FAIL_IN_BETA]}])
    assert [(r.check, r.case, r.failed) for r in results] == [
        ("policy", "alpha", False),
        ("policy", "beta", True),
    ]
    assert results[0].findings == []
    (finding,) = results[1].findings
    assert (finding.check, finding.project, finding.severity) == ("policy", "beta", ERROR)
    assert "exited with code 3" in finding.message
    assert "checked beta in" in finding.message and "projects/beta" in finding.message


def test_warning_severity_and_declaration_order(two):
    items = [
        {"name": "zz-first", "run": ["python", "-c", "import sys; sys.exit(1)"]},
        {"name": "aa-second", "scope": "repo", "severity": "warning", "run": ["false"]},
    ]
    results = run_plan(two, items)
    assert [(r.check, r.case) for r in results] == [
        ("zz-first", "alpha"),
        ("zz-first", "beta"),
        ("aa-second", MONOREPO),
    ]
    assert results[2].findings[0].severity == WARNING and not results[2].failed


def test_long_output_keeps_its_end():
    script = "for i in range(5000): print('line', i)\nraise SystemExit(1)"
    check = parse([{"name": "x", "run": ["python", "-c", script]}])[0]
    from monostack.checks.extra import Invocation

    result = run_invocation(Invocation(check, "p", check.run, ".", ()))
    message = result.findings[0].message
    assert "line 4999" in message and "line 10\n" not in message
    assert "earlier lines cut]" in message and len(message) < 9000


def test_a_hung_check_is_stopped_with_its_children(tmp_path):
    marker = tmp_path / "child-alive"
    script = tmp_path / "hang.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "child = 'import time, pathlib; time.sleep(2); pathlib.Path(sys.argv[1]).touch()'\n"
        "subprocess.Popen([sys.executable, '-c', 'import sys; ' + child, sys.argv[1]])\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n",
        encoding="utf-8",
    )
    check = ExtraCheck("slow", ("python", str(script), str(marker)), timeout=0.5)
    from monostack.checks.extra import Invocation

    result = run_invocation(Invocation(check, "p", check.run, str(tmp_path), ()))
    (finding,) = result.findings
    assert "did not finish within 0.5 s" in finding.message and "started" in finding.message
    import time

    time.sleep(2.5)
    assert not marker.exists()  # the whole process group was stopped


def test_a_command_that_fails_to_start_at_run_time_is_an_error_case(tmp_path):
    script = tmp_path / "garbage"
    script.write_bytes(b"\x00\x01\x02 not a program")
    script.chmod(0o755)
    check = ExtraCheck("odd", (str(script),))
    from monostack.checks.extra import Invocation

    result = run_invocation(Invocation(check, "p", check.run, str(tmp_path), ()))
    assert result.failed and "cannot start" in result.findings[0].message


# -- through run_checks: selection --------------------------------------------------------------


def test_run_checks_respects_project_and_changed_since(two):
    root = root_of(two)
    set_checks(
        root, f'extra_checks:\n  - name: policy\n    run: ["python", "-c", "{FAIL_IN_BETA}"]\n'
    )
    two.git.add(A=True)
    two.index.commit("declare a check")
    everything = run_checks(root, [EXTRA], progress=None)
    assert [(r.case, r.failed) for r in everything] == [("alpha", False), ("beta", True)]
    assert [r.case for r in run_checks(root, [EXTRA], names=["alpha"], progress=None)] == ["alpha"]
    (root / "projects/alpha/new.py").write_text("x = 1\n", encoding="utf-8")
    changed = run_checks(root, [EXTRA], changed_since="HEAD", progress=None)
    assert [r.case for r in changed] == ["alpha"]


def test_no_declared_checks_means_no_cases_and_no_work(two):
    assert run_checks(root_of(two), [EXTRA], progress=None) == []


def test_run_checks_refuses_a_command_that_cannot_start(two):
    root = root_of(two)
    set_checks(root, "extra_checks:\n  - name: contract\n    run: pytset -q\n")
    with pytest.raises(UserError, match="extra_checks 'contract': cannot start 'pytset -q'"):
        run_checks(root, ["lint", EXTRA], progress=None)


# -- the shipped examples, end to end -----------------------------------------------------------


def test_shipped_examples_catch_a_broken_contract_and_a_broken_notebook(shipped_repo):
    root = root_of(shipped_repo)
    shutil.copytree(EXAMPLES, root / "examples" / "extra-checks")
    set_checks(root, "extra_checks: examples/extra-checks/checks.yml\n")
    contract = root / "projects/project1/contracts"
    contract.mkdir()
    (contract / "predictions.yml").write_text(
        "producer: deployment.batch_inference.predict:output_columns\n"
        "input_columns: [trip_distance, pickup_zip, dropoff_zip]\n"
        "columns: [trip_distance, prediction, model_id, timestamp]\n",
        encoding="utf-8",
    )
    assert load_config(root).extra_checks == "examples/extra-checks/checks.yml"
    ok = run_checks(root, [EXTRA], progress=None)
    assert [(r.check, r.case, r.failed) for r in ok] == [
        ("data-contract", "project1", False),
        ("notebook-smoke", MONOREPO, False),
    ]
    # rename a promised column and a function a notebook imports
    predict = root / "projects/project1/deployment/batch_inference/predict.py"
    predict.write_text(
        predict.read_text(encoding="utf-8").replace('"model_id"', '"model_uri"'), "utf-8"
    )
    utils = root / "projects/project1/utils.py"
    utils.write_text(
        utils.read_text(encoding="utf-8").replace("def check_env(", "def verify_env("), "utf-8"
    )
    broken = run_checks(root, [EXTRA], progress=None)
    assert [r.failed for r in broken] == [True, True]
    assert "column 'model_id' is promised" in broken[0].findings[0].message
    assert "'utils' has no 'check_env'" in broken[1].findings[0].message


def test_cli_failing_check_names_project_and_output_in_table_junit_and_annotations(two):
    root = root_of(two)
    set_checks(
        root, f'extra_checks:\n  - name: policy\n    run: ["python", "-c", "{FAIL_IN_BETA}"]\n'
    )
    result = invoke(
        two, "extra-checks", "--junit-xml", "out/junit.xml", env={"GITHUB_ACTIONS": "true"}
    )
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "policy / beta" in out and "exited with code 3" in out and "checked beta" in out
    assert "::error title=policy (beta)::" in out
    cases = ET.parse(root / "out/junit.xml").getroot().findall(".//testcase")
    assert [(c.get("classname"), c.get("name"), c.find("failure") is not None) for c in cases] == [
        ("policy", "alpha", False),
        ("policy", "beta", True),
    ]
    passing = invoke(two, "extra-checks", "--project", "alpha")
    assert passing.returncode == 0 and "1 cases" not in passing.stdout
    assert "extra-checks: 1 case, 0 failed" in passing.stdout


def test_cli_missing_command_is_one_clear_error_and_leaves_the_repo_alone(two):
    root = root_of(two)
    set_checks(root, "extra_checks:\n  - name: notebook-smoke\n    run: nbsmoke-missing .\n")
    two.git.add(A=True)
    two.index.commit("declare")
    result = invoke(two, "test-all", "--project", "alpha")
    assert_user_error(result, "extra_checks 'notebook-smoke'", "nbsmoke-missing", "cannot start")
    assert git_status(two) == ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_leaves_no_command_behind(two, tmp_path, signum):
    """Ctrl-C or a CI runner's SIGTERM: the commands (in their own process groups) stop too."""
    root = root_of(two)
    pids = tmp_path / "pids"
    pids.mkdir()
    sleeper = (
        "import os, pathlib, sys, time; "
        f"pathlib.Path({str(pids)!r}, str(os.getpid())).touch(); time.sleep(120)"
    )
    set_checks(root, f'extra_checks:\n  - name: hang\n    run: ["python", "-c", "{sleeper}"]\n')
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "invoke"), "extra-checks"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    started = [int(p.name) for p in pids.iterdir()]
    assert len(started) == 2, proc.stderr
    proc.send_signal(signum)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    time.sleep(0.5)
    alive = []
    for pid in started:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    assert alive == []
    assert git_status(two).strip() == "M monorepo.yml"  # nothing else left behind
