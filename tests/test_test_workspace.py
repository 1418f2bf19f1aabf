"""An optional ``workspaces.test`` in monorepo.yml: the ``test`` target, its CI credentials and
bundle-validate's host check use it; without it nothing changes; collisions are judged per real
workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monostack.checks import WARNING
from monostack.checks.bundle_validate import CROSS_PROJECT, run_bundle_validate
from monostack.checks.render_matrix import run_render_matrix
from monostack.config import CICD_PLATFORMS, CLOUDS, load_config, parse_config
from monostack.errors import UserError
from monostack.projects import TEMPLATE_DIR, discover_projects, new_project
from monostack.template import load_template
from tests.conftest import make_repo

STAGING = "https://adb-1111111111111111.11.azuredatabricks.net"
UUID = "0b9e1c2a-5f4d-4c1e-9a7b-3d2f1e0c9b8a"
TEST_HOST = "https://adb-3333333333333333.13.azuredatabricks.net"
BASE = {
    "cloud": "aws",
    "cicd_platform": "github_actions",
    "workspaces": {"staging": "https://s.example.com", "prod": "https://p.example.com"},
}


def with_test_workspace(root: Path, host: str = TEST_HOST + "/?o=3#job/1") -> None:
    """Add ``workspaces.test`` to the repo's monorepo.yml (pasted from a browser, suffix kept)."""
    path = root / "monorepo.yml"
    text = path.read_text(encoding="utf-8")
    anchor = "workspaces:\n"
    assert anchor in text
    path.write_text(text.replace(anchor, f"{anchor}  test: {host}\n", 1), encoding="utf-8")


# -- config -------------------------------------------------------------------------------------


def test_without_workspaces_test_the_test_target_stays_in_staging():
    config = parse_config(BASE)
    assert config.workspaces.test == "https://s.example.com"
    assert config.workspaces.test_env == "staging"
    context = config.as_context()
    assert context["workspaces"]["test"] == "https://s.example.com"
    assert context["test_env"] == "staging"
    assert "separate_test" not in context["workspaces"]


def test_workspaces_test_is_normalised_and_used_for_the_test_target():
    data = {**BASE, "workspaces": {**BASE["workspaces"], "test": "https://T.example.com/x?o=1"}}
    config = parse_config(data)
    assert config.workspaces.test == "https://t.example.com"
    assert config.workspaces.staging == "https://s.example.com"
    assert config.workspaces.test_env == "test"
    assert config.as_context()["test_env"] == "test"


@pytest.mark.parametrize("value", ["http://t.example.com", "t.example.com", 3])
def test_a_bad_test_workspace_names_the_key(value):
    data = {**BASE, "workspaces": {**BASE["workspaces"], "test": value}}
    with pytest.raises(UserError, match=r"monorepo.yml: workspaces\.test"):
        parse_config(data)


# -- rendered bundles and CI ---------------------------------------------------------------------


def _render(config, **answers):
    template = load_template(Path(__file__).resolve().parent.parent / TEMPLATE_DIR)
    given = {"project_name": "churn", "project_uuid": UUID, **answers}
    resolved = template.resolve_answers(given, config)
    return {k: v.decode() for k, v in template.render_project(resolved, config).items()}


def _envs(doc) -> list[dict]:
    """Every step/job ``env`` mapping of a GitHub workflow or Azure DevOps pipeline."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("env", "variables"):  # GitLab jobs take theirs as `variables:`
                if isinstance(node.get(key), dict):
                    found.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    return found


@pytest.mark.parametrize("platform", CICD_PLATFORMS)
@pytest.mark.parametrize("cloud", CLOUDS)
def test_test_target_and_its_ci_use_the_test_workspace_and_secrets(cloud, platform):
    data = {**BASE, "cloud": cloud, "cicd_platform": platform}
    data["workspaces"] = {**BASE["workspaces"], "test": "https://t.example.com"}
    tree = _render(parse_config(data))
    bundle = yaml.safe_load(tree["databricks.yml"])
    hosts = {name: t["workspace"]["host"] for name, t in bundle["targets"].items() if name != "dev"}
    assert hosts == {
        "staging": "https://s.example.com",
        "prod": "https://p.example.com",
        "test": "https://t.example.com",
    }
    tests_file = next(p for p in tree if p.endswith(("-run-tests.yml", "-tests-ci.yml")))
    text = tree[tests_file]
    envs = [e for e in _envs(yaml.safe_load(text)) if "DATABRICKS_HOST" in e]
    assert envs and all(e["DATABRICKS_HOST"] == "https://t.example.com" for e in envs)
    secret = "TEST_AZURE_SP_CLIENT_SECRET" if cloud == "azure" else "TEST_WORKSPACE_TOKEN"
    assert all(secret in str(e) for e in envs)
    assert "STAGING_" not in text  # neither used nor documented there
    doc_line = "Variables" if platform == "gitlab" else "Secrets"  # GitLab: CI/CD variables
    assert (
        f"# {doc_line} for test: {'TEST_AZURE_SP_TENANT_ID' if cloud == 'azure' else secret}"
        in text
    )
    # staging and prod deployments keep their own workspaces and secrets
    others = "\n".join(v for p, v in tree.items() if "/workflows/" in p or "pipelines/" in p)
    assert "STAGING_" in others and "PROD_" in others


def test_without_it_the_render_is_unchanged():
    config = parse_config(BASE)
    same_host = {**BASE, "workspaces": {**BASE["workspaces"], "test": None}}
    assert _render(config) == _render(parse_config(same_host))
    text = next(v for p, v in _render(config).items() if p.endswith("-run-tests.yml"))
    assert "TEST_WORKSPACE_TOKEN" not in text and "STAGING_WORKSPACE_TOKEN" in text


def test_render_matrix_passes_every_judge_with_a_test_workspace(tmp_path):
    root = tmp_path / "mono"
    make_repo(root)
    with_test_workspace(root)
    results = run_render_matrix(root, jobs=1)
    assert len(results) > 1
    failed = {r.case: [f.message for f in r.errors] for r in results if r.failed}
    assert failed == {}


# -- bundle-validate ----------------------------------------------------------------------------


def test_bundle_validate_accepts_and_checks_the_test_host(tmp_path):
    root = tmp_path / "mono"
    make_repo(root)
    with_test_workspace(root)
    new_project(root, "alpha")
    results = run_bundle_validate(root, discover_projects(root))
    assert [f.message for r in results for f in r.errors] == []
    # a test host that no longer matches monorepo.yml is caught, naming workspaces.test
    path = root / "monorepo.yml"
    text = path.read_text(encoding="utf-8").replace(TEST_HOST, "https://other.example.com")
    path.write_text(text, encoding="utf-8")
    assert load_config(root).workspaces.test == "https://other.example.com"
    [found] = [f for r in run_bundle_validate(root, discover_projects(root)) for f in r.errors]
    assert "targets.test.workspace.host" in found.message
    assert "monorepo.yml workspaces.test is https://other.example.com" in found.message
    assert "runs in the staging workspace" not in found.message


def _name_job(project: Path, name: str) -> None:
    """Give the project's training job a fixed name (the same in every target)."""
    path = project / "resources" / "model-workflow-resource.yml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.strip().startswith("name: "))
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines[index] = f"{indent}name: {name}\n"
    path.write_text("".join(lines), encoding="utf-8")


@pytest.mark.parametrize("separate", [False, True])
def test_collisions_are_judged_per_real_workspace(tmp_path, separate):
    """alpha deploys ``${bundle.target}-report``; beta deploys ``test-report`` in every target.
    They meet where alpha's test target really goes: staging's workspace (beta's staging and
    test targets) or, with workspaces.test, the test workspace (beta's test target only)."""
    root = tmp_path / "mono"
    make_repo(root)
    if separate:
        with_test_workspace(root)
    alpha = new_project(root, "alpha").path
    beta = new_project(root, "beta").path
    _name_job(alpha, "${bundle.target}-report")
    _name_job(beta, "test-report")
    results = run_bundle_validate(root, discover_projects(root))
    [found] = [f for r in results if r.case == CROSS_PROJECT for f in r.findings]
    # two jobs with one name both exist: a warning (issue 11)
    assert found.severity == WARNING and "job name 'test-report'" in found.message
    assert "project 'alpha'" in found.message and "target test)" in found.message
    if separate:
        assert f"project 'beta' ({found.file}:" in found.message
        assert "target test) in workspace " + TEST_HOST in found.message
        assert STAGING not in found.message
    else:
        assert "targets staging, test) in workspace " + STAGING in found.message
