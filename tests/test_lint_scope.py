"""lint's scope: generated and project files strictly; the team's hand-written root CI files
only parsed (and conflict-checked by sync) unless ``lint_hand_written`` asks for full lint."""

from __future__ import annotations

from pathlib import Path

import pytest

from monostack.checks import ERROR, INFO, MONOREPO
from monostack.checks.ci_files import schema_findings
from monostack.checks.lint import run_lint
from monostack.projects import discover_projects
from monostack.runner import run_checks
from tests.conftest import invoke, root_of
from tests.third_party_workflows import third_party_workflows


@pytest.fixture(scope="module")
def crowded(tmp_path_factory) -> Path:
    """The shipped monorepo plus 100 hand-written third-party-style workflows in its root."""
    from tests.conftest import make_repo

    root = root_of(make_repo(tmp_path_factory.mktemp("crowded") / "mono", with_projects=True))
    for name, text in third_party_workflows(100).items():
        (root / ".github" / "workflows" / name).write_text(text, encoding="utf-8")
    return root


def test_third_party_workflows_keep_the_checks_green_by_default(crowded: Path):
    results = run_checks(crowded, ["lint", "sync-workflows"], jobs=1, progress=None)
    errors = [f for r in results for f in r.errors]
    assert errors == []
    notes = [f for r in results for f in r.findings if f.severity == INFO]
    assert any("100 hand-written" in f.message and "lint_hand_written" in f.message for f in notes)


def test_with_the_opt_in_lint_reports_their_problems(crowded: Path):
    results = run_lint(crowded, discover_projects(crowded), lint_hand_written=True)
    mono = next(r for r in results if r.case == MONOREPO)
    third = [f for f in mono.findings if "/team-" in f.file]
    assert any(f.severity == ERROR for f in third)
    assert any("yamllint" in f.message for f in third)
    # ... but never for syntax GitHub accepts: a string filter, a strategy without a matrix
    assert not [f for f in third if "schema" in f.message], [f.message for f in third][:5]


def test_a_hand_written_file_that_does_not_parse_is_still_an_error(crowded: Path, tmp_path):
    import shutil

    root = Path(shutil.copytree(crowded, tmp_path / "copy", symlinks=True))
    (root / ".github/workflows/broken.yml").write_text("on: [push\njobs: {}\n")
    results = run_lint(root, [], lint_hand_written=False)
    [found] = [f for r in results for f in r.errors]
    assert found.file == ".github/workflows/broken.yml" and "invalid YAML" in found.message


@pytest.mark.parametrize(
    "text",
    [
        "on:\n  push:\n    branches: main\njobs:\n  a:\n    runs-on: x\n"
        "    steps: [{run: 'true'}]\n",
        "on: push\njobs:\n  a:\n    runs-on: x\n    strategy: {fail-fast: false}\n"
        "    steps: [{run: 'true'}]\n",
        "on:\n  pull_request:\n    types: opened\n    paths: src/**\njobs:\n  a:\n"
        "    runs-on: x\n    steps: [{run: 'true'}]\n",
    ],
)
def test_syntax_github_accepts_is_never_a_schema_error(text: str):
    assert schema_findings(".github/workflows/x.yml", text, "github-workflows", "p", "lint") == []


def test_the_cli_lints_hand_written_files_when_invoke_yaml_asks(crowded: Path, tmp_path):
    import shutil

    root = Path(shutil.copytree(crowded, tmp_path / "copy", symlinks=True))
    default = invoke(root, "lint")
    assert default.returncode == 0, default.stdout[-2000:] + default.stderr
    (root / "invoke.yaml").write_text("monostack:\n  lint_hand_written: true\n")
    strict = invoke(root, "lint")
    assert strict.returncode == 1
    assert ".github/workflows/team-" in strict.stdout
