"""The Invoke task layer, in-process with Invoke's MockContext: options, defaults from Invoke's
configuration (``invoke.yaml``: ``monostack.jobs``, ``junit_xml``, ``online``, ``strict``,
``lint_hand_written``), exit codes, and the pre-commit hooks that call the tasks."""

from __future__ import annotations

import importlib.util
import inspect
import shlex
from pathlib import Path

import pytest
import yaml
from invoke import Config, MockContext
from invoke.exceptions import Exit

from monostack import runner
from monostack.checks import ERROR, MONOREPO, WARNING, CaseResult, Finding
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def tasks():
    spec = importlib.util.spec_from_file_location("monorepo_tasks", REPO_ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def calls(monkeypatch):
    """run_checks replaced by a recorder that returns one warning."""
    seen: list[dict] = []

    def fake_run_checks(root, checks, **kwargs):
        seen.append({"checks": checks, **kwargs})
        warn = Finding("lint", MONOREPO, "x.yml", 3, WARNING, "something to look at")
        return [CaseResult(checks[0], MONOREPO, [warn])]

    monkeypatch.setattr(runner, "run_checks", fake_run_checks)
    return seen


def context(**settings) -> MockContext:
    return MockContext(config=Config(overrides={"monostack": settings} if settings else {}))


def test_defaults_come_from_invoke_configuration(tasks, calls, tmp_path, capsys):
    junit = tmp_path / "reports" / "junit.xml"
    c = context(jobs=3, junit_xml=str(junit), online=True, lint_hand_written=True)
    tasks.test_all(c)
    (call,) = calls
    assert call["jobs"] == 3 and call["online"] is True and call["lint_hand_written"] is True
    assert junit.is_file()
    assert "test-all: 1 case, 0 failed" in capsys.readouterr().out


def test_command_line_options_win_over_configuration(tasks, calls, tmp_path):
    c = context(jobs=3, junit_xml=str(tmp_path / "config.xml"))
    tasks.render_matrix(c, jobs="1", junit_xml=str(tmp_path / "flag.xml"))
    assert calls[0]["jobs"] == 1
    assert (tmp_path / "flag.xml").is_file() and not (tmp_path / "config.xml").exists()


def test_without_configuration_the_defaults_are_automatic(tasks, calls):
    tasks.bundle_validate(context())
    (call,) = calls
    assert call["jobs"] is None and call["online"] is False and call["lint_hand_written"] is False


@pytest.mark.parametrize("how", ["flag", "config"])
def test_strict_turns_warnings_into_failures(tasks, calls, how, capsys):
    tasks.lint(context())  # a warning alone passes
    c = context(strict=True) if how == "config" else context()
    with pytest.raises(Exit) as info:
        tasks.lint(c, strict=True) if how == "flag" else tasks.lint(c)
    assert info.value.code == 1
    assert "something to look at" in capsys.readouterr().out


def test_a_bad_jobs_setting_is_a_user_error(tasks, calls):
    with pytest.raises(Exit) as info:
        tasks.test_all(context(jobs="many"))
    assert info.value.code == 1 and "--jobs 'many'" in info.value.message


def test_an_error_finding_exits_non_zero(tasks, monkeypatch):
    def failing(root, checks, **kwargs):
        bad = Finding("lint", MONOREPO, "x.yml", 1, ERROR, "broken")
        return [CaseResult("lint", MONOREPO, [bad])]

    monkeypatch.setattr(runner, "run_checks", failing)
    with pytest.raises(Exit) as info:
        tasks.lint(context())
    assert info.value.code == 1


# -- pre-commit -------------------------------------------------------------------------------
def test_pre_commit_hooks_call_real_tasks_and_options(tasks):
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"monostack-sync-workflows", "monostack-bundle-validate"}
    for hook in hooks:
        assert set(hook) >= {"id", "name", "entry", "language", "files"}
        program, task_name, *options = shlex.split(hook["entry"])
        assert program == "invoke" and hook["pass_filenames"] is False
        body = getattr(tasks, task_name.replace("-", "_")).body
        params = inspect.signature(inspect.unwrap(body)).parameters
        for option in options:
            if option.startswith("--"):
                assert option[2:].replace("-", "_") in params, (hook["id"], option)


def test_pre_commit_entry_runs_in_a_monorepo(shipped_repo):
    """The bundle-validate hook's command, for real, on a clean repo: exit 0."""
    from tests.conftest import invoke, root_of

    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    entry = next(h["entry"] for h in hooks if h["id"] == "monostack-bundle-validate")
    root = root_of(shipped_repo)
    (root / "projects" / "project1" / "README.md").write_text("changed\n", encoding="utf-8")
    result = invoke(Path(root), *shlex.split(entry)[1:])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "project1" in result.stdout
