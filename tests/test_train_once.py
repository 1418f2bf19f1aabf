"""Train once, promote (template choice ``train_once``): staging trains, prod gets staging's
validated version through a promotion job; Unity Catalog only; every CI platform runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monostack.bundle import load_bundle
from monostack.checks.bundle_validate import run_bundle_validate
from monostack.checks.render_matrix import matrix_combinations
from monostack.config import CICD_PLATFORMS, parse_config
from monostack.errors import UserError
from monostack.projects import TEMPLATE_DIR, discover_projects, new_project
from monostack.template import load_template
from tests.conftest import REPO_ROOT, make_repo

BASE = {
    "cloud": "azure",
    "cicd_platform": "github_actions",
    "workspaces": {"staging": "https://s.example.com", "prod": "https://p.example.com"},
}
TEMPLATE = load_template(REPO_ROOT / TEMPLATE_DIR)
PROMOTE = "databricks bundle run -t prod model_promotion_job"


def render(platform="github_actions", compute="serverless", **answers):
    config = parse_config({**BASE, "cicd_platform": platform})
    given = {"project_name": "churn", "compute": compute, **answers}
    resolved = TEMPLATE.resolve_answers(given, config)
    return TEMPLATE.render_project(resolved, config)


def promote_tree(**kw):
    return render(include_models_in_unity_catalog=True, train_once=True, **kw)


@pytest.mark.parametrize(
    "answers",
    [{}, {"include_models_in_unity_catalog": True, "include_feature_store": True}],
)
def test_refused_without_unity_catalog_or_with_the_feature_store(answers):
    with pytest.raises(UserError) as info:
        render(train_once=True, **answers)
    message = info.value.message
    assert "'train_once' does not apply here" in message
    assert "needs Unity Catalog" in message and "feature store" in message


def test_off_by_default_and_nothing_of_it_rendered():
    tree = render(include_models_in_unity_catalog=True)
    assert not [p for p in tree if "promotion" in p or p.endswith("test_promote.py")]
    assert all(PROMOTE not in data.decode() for data in tree.values())


def _jobs(bundle, target):
    return set((bundle.targets[target].doc.get("resources") or {}).get("jobs") or {})


@pytest.mark.parametrize("compute", ["serverless", "classic"])
def test_prod_promotes_and_the_other_targets_train(compute):
    tree = promote_tree(compute=compute)
    for path in (
        "deployment/model_promotion/promote.py",
        "deployment/model_promotion/notebooks/PromoteModel.py",
        "resources/model-promotion-resource.yml",
        "tests/test_promote.py",
    ):
        assert path in tree
    bundle = load_bundle(tree, "churn")
    assert bundle.problems == []
    for target in ("dev", "staging", "test"):
        jobs = _jobs(bundle, target)
        assert "model_training_job" in jobs and "model_promotion_job" not in jobs, target
    prod = _jobs(bundle, "prod")
    assert "model_promotion_job" in prod and "model_training_job" not in prod
    assert "batch_inference_job" in prod
    job = bundle.targets["prod"].doc["resources"]["jobs"]["model_promotion_job"]
    params = job["tasks"][0]["notebook_task"]["base_parameters"]
    assert params["source_model_name"] == "staging.churn.${var.model_name}"
    assert params["model_name"] == "${var.catalog_name}.churn.${var.model_name}"
    assert job["permissions"] == [{"level": "CAN_VIEW", "group_name": "users"}]


@pytest.mark.parametrize("platform", CICD_PLATFORMS)
def test_every_ci_platform_runs_the_promotion_after_deploying_prod(platform):
    tree = promote_tree(platform=platform)
    ci_dirs = (".github/", ".azure/", ".gitlab/")
    runs = [p for p, data in tree.items() if p.startswith(ci_dirs) and PROMOTE in data.decode()]
    assert len(runs) == 1, runs
    text = tree[runs[0]].decode()
    assert text.index("bundle deploy -t prod") < text.index(PROMOTE)
    assert "staging" not in runs[0] or "cicd" in runs[0]


def test_bundle_validate_accepts_a_train_once_project(tmp_path):
    root = tmp_path / "mono"
    make_repo(root)
    new_project(root, "churn", {"include_models_in_unity_catalog": True, "train_once": True})
    results = run_bundle_validate(root, discover_projects(root))
    assert [f.message for r in results for f in r.errors] == []


def test_render_matrix_covers_it_where_it_applies():
    config = parse_config(BASE)
    combos = matrix_combinations(TEMPLATE, config)
    promoting = [answers for _, _, answers in combos if answers.get("train_once")]
    assert promoting
    assert all(a["include_models_in_unity_catalog"] for a in promoting)
    assert not any(a["include_feature_store"] for a in promoting)
    # one per compute and CI platform x cloud of this config's combinations
    assert len(promoting) == len({(c.cloud, c.cicd_platform, a["compute"]) for _, c, a in combos})


def test_the_rendered_unit_tests_pass(tmp_path):
    for rel, data in promote_tree().items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_promote.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_when_message_explains_a_parameter_that_does_not_apply(tmp_path):
    stack = Path(tmp_path / "tpl")
    (stack / "project").mkdir(parents=True)
    (stack / "stack.yml").write_text(
        'version: "1.0.0"\n'
        "parameters:\n"
        "  project_name: {}\n"
        "  uc: {type: bool, default: false}\n"
        "  promote: {type: bool, default: false, when: uc, when_message: it needs uc=yes}\n",
        encoding="utf-8",
    )
    template = load_template(stack)
    with pytest.raises(UserError, match=r"'promote' does not apply here \(it needs uc=yes\)"):
        template.resolve_answers({"project_name": "abc", "promote": True}, parse_config(BASE))
