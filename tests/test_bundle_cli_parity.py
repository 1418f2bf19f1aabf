"""bundle-validate agrees with the Databricks CLI on bundles written by hand in the shapes teams
use (not our renders): YAML 1.2 values, severities, includes, file-defined resources, and what
the CLI refuses inside and across resources. Each bundle is a small real project on disk."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from monostack.checks import ERROR, INFO, WARNING
from monostack.checks.bundle_validate import run_bundle_validate
from monostack.config import load_config
from monostack.projects import discover_projects
from tests.conftest import REPO_ROOT

STAGING = "https://adb-1111111111111111.11.azuredatabricks.net"
PROD = "https://adb-2222222222222222.12.azuredatabricks.net"
TARGETS = f"""\
targets:
  dev:
    default: true
    mode: development
  staging:
    workspace: {{host: {STAGING}}}
  prod:
    mode: production
    workspace: {{host: {PROD}}}
  test:
    workspace: {{host: {STAGING}}}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "mono"
    root.mkdir()
    (root / "monorepo.yml").write_bytes((REPO_ROOT / "monorepo.yml").read_bytes())
    return root


def project(root: Path, files: dict[str, str], name: str = "ppp") -> Path:
    path = root / "projects" / name
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(textwrap.dedent(text), encoding="utf-8")
    (path / ".stack-answers.yml").write_text(f"project_name: {name}\n", encoding="utf-8")
    return path


def findings(root: Path, severity: str | None = None):
    config = load_config(root)
    results = run_bundle_validate(root, discover_projects(root), config=config)
    return [f for r in results for f in r.findings if severity is None or f.severity == severity]


def bundle(body: str = "", head: str = "") -> str:
    return f"bundle: {{name: ppp}}\n{head}{textwrap.dedent(body)}{TARGETS}"


# -- YAML 1.2 -----------------------------------------------------------------------------------
def test_yaml_12_values_validate_clean(repo: Path):
    project(
        repo,
        {
            "databricks.yml": bundle(
                """\
                variables:
                  flag: {default: on}
                  code: {default: 017}
                resources:
                  jobs:
                    j:
                      name: job-${var.flag}
                      tags: {approved: no, window: 1:30, code: 0017}
                      max_concurrent_runs: 0o2
                """
            )
        },
    )
    assert findings(repo) == []


# -- severities ---------------------------------------------------------------------------------
def test_unknown_field_warns_near_miss_fails_anchor_only_key_is_silent(repo: Path):
    project(
        repo,
        {
            "databricks.yml": bundle(
                """\
                include: [resources/*.yml]
                """
            ),
            "resources/r.yml": """\
                resources:
                  experiments:
                    e:
                      name: /Shared/e
                      description: written by upstream's template
                  jobs:
                    j:
                      x-defaults: &defaults {timeout_seconds: 60}
                      name: j
                      max_concurent_runs: 2
                      tasks:
                        - task_key: t
                          <<: *defaults
                          notebook_task: {notebook_path: ../nb.py}
                """,
            "nb.py": "print(1)\n",
        },
    )
    found = findings(repo)
    warnings = [f for f in found if f.severity == WARNING]
    errors = [f for f in found if f.severity == ERROR]
    assert [(f.file, f.line) for f in warnings] == [("projects/ppp/resources/r.yml", 5)]
    assert "unknown field 'description'" in warnings[0].message
    assert [(f.file, f.line) for f in errors] == [("projects/ppp/resources/r.yml", 10)]
    assert "did you mean 'max_concurrent_runs'?" in errors[0].message
    assert not [f for f in found if "x-defaults" in f.message]


# -- includes -----------------------------------------------------------------------------------
def test_include_of_a_shared_file_inside_the_repo_is_loaded(repo: Path):
    (repo / "projects/common").mkdir(parents=True)
    (repo / "projects/common/targets.yml").write_text(TARGETS)
    (repo / "projects/common/vars.yml").write_text("variables:\n  env: {default: x}\n")
    project(
        repo,
        {
            "databricks.yml": "bundle: {name: ppp}\n"
            "include: [../common/targets.yml, ../common/v*.yml]\n"
            "resources:\n  jobs:\n    j: {name: 'j-${var.env}'}\n"
        },
    )
    assert findings(repo) == []


def test_include_outside_the_repo_is_one_error_and_nothing_else(repo: Path, tmp_path: Path):
    (tmp_path / "targets.yml").write_text(TARGETS)
    project(
        repo,
        {
            "databricks.yml": "bundle: {name: ppp}\ninclude: [../../../targets.yml]\n"
            "resources:\n  jobs:\n    j: {name: 'j-${var.env}'}\n"
        },
    )
    found = findings(repo)
    assert len(found) == 1, found
    assert (found[0].severity, found[0].file, found[0].line) == (
        ERROR,
        "projects/ppp/databricks.yml",
        2,
    )
    assert "outside the repository" in found[0].message


def test_an_unreadable_include_is_a_finding(repo: Path, monkeypatch):
    path = project(repo, {"databricks.yml": bundle(head="include: [r.yml]\n"), "r.yml": "{}\n"})
    target = path / "r.yml"
    if os.geteuid() == 0:  # root reads any file (CI runs as root): the OS refuses it here
        read_bytes = Path.read_bytes

        def denied(self: Path) -> bytes:
            if self == target:
                raise PermissionError(13, "Permission denied", str(self))
            return read_bytes(self)

        monkeypatch.setattr(Path, "read_bytes", denied)
    target.chmod(0)
    try:
        found = findings(repo)
    finally:
        target.chmod(0o644)
    assert [(f.file, "cannot be read" in f.message) for f in found] == [
        ("projects/ppp/r.yml", True)
    ]


def test_an_include_through_a_symlink_out_of_the_repo_is_a_finding(repo: Path, tmp_path: Path):
    (tmp_path / "outside.yml").write_text(TARGETS)
    path = project(repo, {"databricks.yml": "bundle: {name: ppp}\ninclude: [r.yml]\n"})
    (path / "r.yml").symlink_to(tmp_path / "outside.yml")
    found = findings(repo)
    assert [(f.file, f.severity) for f in found] == [("projects/ppp/r.yml", ERROR)]
    assert "cannot be read" in found[0].message and "symlink" in found[0].message


def test_an_include_that_is_a_directory_or_broken_yaml_is_one_finding(repo: Path):
    path = project(repo, {"databricks.yml": bundle(head="include: [bad.yml]\n")})
    (path / "bad.yml").write_text("resources: [\n")
    found = findings(repo)
    assert len(found) == 1 and "invalid YAML" in found[0].message


# -- resources defined in a file ----------------------------------------------------------------
def test_file_defined_resources_need_only_their_file(repo: Path):
    project(
        repo,
        {
            "databricks.yml": bundle(
                """\
                resources:
                  dashboards:
                    d: {display_name: D, file_path: ./d.lvdash.json, warehouse_id: w}
                  alerts:
                    a: {file_path: ./a.dbalert.json, warehouse_id: w}
                    gone: {file_path: ./missing.dbalert.json, warehouse_id: w}
                """
            ),
            "d.lvdash.json": "{}\n",
            "a.dbalert.json": "{}\n",
        },
    )
    found = findings(repo, ERROR)
    assert [(f.file, f.line) for f in found] == [("projects/ppp/databricks.yml", 7)]
    assert "missing.dbalert.json" in found[0].message


# -- what the CLI catches -----------------------------------------------------------------------
def test_the_five_probes_each_with_file_and_line(repo: Path):
    project(
        repo,
        {
            "databricks.yml": bundle(
                """\
                python:
                  resources: ["resources:load_resources"]
                resources:
                  pipelines:
                    etl: {name: etl}
                  jobs:
                    etl:
                      name: etl-job
                      job_clusters:
                        - job_cluster_key: main
                          new_cluster: {spark_version: 15.4.x-scala2.12, num_workers: 1}
                      environments:
                        - environment_key: default
                          spec: {client: "1"}
                      tasks:
                        - task_key: a
                          job_cluster_key: mian
                          notebook_task: {notebook_path: ./nb.py}
                        - task_key: b
                          environment_key: gpu
                          depends_on: [{task_key: c}]
                          spark_python_task: {python_file: ./nb.py}
                """
            ),
            "nb.py": "print(1)\n",
        },
    )
    found = {(f.severity, f.line): f for f in findings(repo)}
    file = "projects/ppp/databricks.yml"
    assert all(f.file == file for f in found.values()), found
    key = found[(ERROR, 8)]  # resources.jobs.etl, the second `etl`
    assert "'etl'" in key.message and "resources.pipelines.etl" in key.message
    cluster = found[(ERROR, 18)]
    assert "job_cluster_key 'mian'" in cluster.message and "did you mean 'main'" in cluster.message
    env = found[(ERROR, 21)]
    assert "environment_key 'gpu'" in env.message
    upstream = found[(ERROR, 22)]
    assert "depends_on[0]" in upstream.message and "'c'" in upstream.message
    info = found[(INFO, 3)]  # python.resources
    assert "python.resources" in info.message and "not checked" in info.message
    assert len(found) == 5, found


def test_collision_messages_say_what_happens_per_resource_type(repo: Path):
    for name in ("ppp", "qqq"):
        project(
            repo,
            {
                "databricks.yml": f"bundle: {{name: {name}}}\n"
                + TARGETS
                + "resources:\n  jobs:\n    j: {name: shared-job}\n"
                "  experiments:\n    e: {name: /Shared/shared-exp}\n"
            },
            name,
        )
    found = [f for f in findings(repo) if f.project in ("ppp", "qqq") or "cross" in f.project]
    jobs = [f for f in found if "job name" in f.message]
    exps = [f for f in found if "experiment name" in f.message]
    assert len(jobs) == 1 and jobs[0].severity == WARNING
    assert "both jobs exist" in jobs[0].message
    assert len(exps) == 1 and exps[0].severity == ERROR
    assert "fails to deploy" in exps[0].message
