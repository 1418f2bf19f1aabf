"""The project part of the MLOps stack, rendered for every combination of cloud x CI platform x
compute x Unity Catalog x feature store (96), checked the way Databricks and CI would check it.

Each project is rendered in memory with the real template and written to a temp directory. The
checkers are plain functions (``undeclared_variables``, ``missing_code_paths``, ...) so that the
planted-defect tests at the end can show each of them failing on a broken project.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from monostack.checks.markdown_links import broken_links, relative_links
from monostack.config import CICD_PLATFORMS, CLOUDS, MonorepoConfig, Workspaces, parse_config
from monostack.template import load_template
from tests.bundle_schema import merged_bundle, schema_errors
from tests.conftest import BUNDLE_SCHEMA, REPO_ROOT, VENV_BIN

PROJECT = "churn-model"
PROJECT_DIR = "churn_model"
PROJECT_UUID = "0b9e1c2a-5f4d-4c1e-9a7b-3d2f1e0c9b8a"
MONITORING = "./resources/monitoring-resource.yml"
CI_DIRS = (".github", ".azure", ".gitlab")
CONFIG = parse_config(
    {
        "cloud": "azure",
        "cicd_platform": "github_actions",
        "workspaces": {
            "dev": "https://adb-3333333333333333.13.azuredatabricks.net",
            "staging": "https://adb-1111111111111111.11.azuredatabricks.net",
            "prod": "https://adb-2222222222222222.12.azuredatabricks.net",
        },
    }
)
NODE_TYPES = {"aws": "i3.xlarge", "azure": "Standard_D3_v2", "gcp": "n2-highmem-4"}


@dataclass(frozen=True)
class Case:
    """One rendered project."""

    cloud: str
    cicd: str
    compute: str
    uc: bool
    fs: bool
    answers: dict
    path: Path

    @property
    def once(self) -> bool:
        """Train once, promote (prod gets staging's model instead of retraining)."""
        return bool(self.answers.get("train_once"))

    @property
    def id(self) -> str:
        label = case_label(self.cloud, self.cicd, self.compute, self.uc, self.fs)
        return label + ("-once" if self.once else "")

    @property
    def extra_includes(self) -> tuple[str, ...]:
        """The opt-in monitoring file, which only Unity Catalog projects have."""
        return (MONITORING,) if self.uc else ()


def case_label(cloud: str, cicd: str, compute: str, uc: bool, fs: bool) -> str:
    return f"{cloud}-{cicd}-{compute}-{'uc' if uc else 'ws'}-{'fs' if fs else 'nofs'}"


def write_tree(target: Path, tree: dict[str, bytes]) -> None:
    for rel, data in tree.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@functools.cache
def template():
    """One template for the whole module: its Jinja2 environment caches compiled files."""
    return load_template(REPO_ROOT / "stack_template")


def render_case(
    root: Path, config: MonorepoConfig, given: dict, name: str | None = None
) -> tuple[dict, Path]:
    tpl = template()
    answers = tpl.resolve_answers(given, config)
    target = root / (name or answers["project_dir"])
    write_tree(target, tpl.render_project(answers, config))
    return answers, target


def render_all(root: Path, project: str = PROJECT) -> list[Case]:
    tpl = template()
    cases = []
    for cloud in CLOUDS:
        for cicd in CICD_PLATFORMS:
            config = CONFIG.replace(cloud=cloud, cicd_platform=cicd)
            for combo in tpl.iter_choice_combinations({"project_name": project}, config):
                # one uuid for all, so that identical bundles can be checked once
                given = {"project_name": project, "project_uuid": PROJECT_UUID, **combo}
                uc, fs = combo["include_models_in_unity_catalog"], combo["include_feature_store"]
                compute = combo["compute"]
                label = case_label(cloud, cicd, compute, uc, fs)
                label += "-once" if combo.get("train_once") else ""
                answers, path = render_case(root, config, given, label)
                cases.append(Case(cloud, cicd, compute, uc, fs, answers, path))
    return cases


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[Case]:
    return render_all(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="module")
def bundles(cases) -> dict[str, dict]:
    """Merged bundle of each case with the monitoring file (Unity Catalog) included (read-only:
    don't edit)."""
    return {case.id: merged_bundle(case.path, case.extra_includes) for case in cases}


def files(project: Path, suffixes: tuple[str, ...] = ()) -> Iterator[Path]:
    for path in sorted(project.rglob("*")):
        if path.is_file() and (not suffixes or path.suffix in suffixes):
            yield path


def bundle_yaml_files(project: Path) -> list[Path]:
    """databricks.yml and every resource file, included or not."""
    return [project / "databricks.yml", *sorted((project / "resources").glob("*.yml"))]


def unique(items: Iterator[tuple[str, Any]]) -> dict[str, Any]:
    """Drop items whose payload repeats (CI platforms share the same bundle, for instance)."""
    seen: dict[str, Any] = {}
    for label, payload in items:
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        seen.setdefault(digest, (label, payload))
    return dict(seen.values())


# ------------------------------------------------------------------------------------ checkers
def load_yaml(text: str) -> Any:
    """Safe YAML loading, with libyaml when available (the matrix parses a lot of YAML)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


VAR_REF = re.compile(r"\$\{var\.([A-Za-z_][A-Za-z0-9_-]*)")
RESOURCE_REF = re.compile(r"\$\{resources\.([a-z_]+)\.([A-Za-z0-9_-]+)\.")


def undeclared_variables(project: Path) -> list[str]:
    """``${var.X}`` uses in the bundle files (monitoring included) that databricks.yml does
    not declare."""
    declared = set(
        (load_yaml((project / "databricks.yml").read_text()) or {}).get("variables") or {}
    )
    problems = []
    for path in bundle_yaml_files(project):
        for name in sorted(set(VAR_REF.findall(path.read_text()))):
            if name not in declared:
                problems.append(f"{path.relative_to(project)}: ${{var.{name}}} is not declared")
    return problems


def dangling_resource_references(bundle: dict) -> list[str]:
    """``${resources.<type>.<key>.…}`` references, in the shared resources or a target's own,
    to resources that target does not define (a target has the shared resources and its own)."""
    shared = {k: v for k, v in bundle.items() if k != "targets"}
    problems = []
    for target, spec in (bundle.get("targets") or {"default": {}}).items():
        own = (spec or {}).get("resources") or {}
        resources = {
            kind: {**((shared.get("resources") or {}).get(kind) or {}), **(own.get(kind) or {})}
            for kind in {*(shared.get("resources") or {}), *own}
        }
        text = json.dumps([shared, own])
        problems += [
            f"{target}: ${{resources.{kind}.{key}}} is not defined"
            for kind, key in sorted(set(RESOURCE_REF.findall(text)))
            if key not in (resources.get(kind) or {})
        ]
    return problems


def jobs_per_target(bundle: dict) -> dict[str, dict[str, dict]]:
    """The jobs each target deploys: the bundle's top-level jobs plus those defined under
    ``targets.<name>.resources.jobs`` (train once, promote defines training per target)."""
    shared = (bundle.get("resources") or {}).get("jobs") or {}
    return {
        target: {**shared, **(((spec or {}).get("resources") or {}).get("jobs") or {})}
        for target, spec in bundle["targets"].items()
    }


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def missing_code_paths(project: Path) -> list[str]:
    """notebook_path / python_file values (relative to their resource file) that point at no
    file."""
    problems = []
    for path in bundle_yaml_files(project):
        for key, value in _walk(load_yaml(path.read_text())):
            if key in ("notebook_path", "python_file"):
                target = (path.parent / value).resolve()
                if not target.is_file():
                    problems.append(f"{path.relative_to(project)}: {key} {value} does not exist")
    return problems


def _code_path_places(node: Any, where: tuple = ()) -> Iterator[tuple]:
    """Where in a resource file a notebook_path / python_file is set, the ``targets.<name>``
    prefix left out (a job defined for several targets names its notebooks once per target)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("notebook_path", "python_file"):
                yield where
            inner = () if where == ("targets",) else (*where, key)
            yield from _code_path_places(value, inner)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _code_path_places(item, (*where, index))


def code_path_count(project: Path) -> int:
    return len(
        {
            (path, place)
            for path in bundle_yaml_files(project)
            for place in _code_path_places(load_yaml(path.read_text()))
        }
    )


def typed_model_errors(bundle: dict) -> list[str]:
    """Load every resource with the databricks-bundles typed model of its kind."""
    from databricks.bundles.experiments import MlflowExperiment
    from databricks.bundles.jobs import Job
    from databricks.bundles.models import MlflowModel
    from databricks.bundles.quality_monitors import QualityMonitor
    from databricks.bundles.registered_models import RegisteredModel

    typed = {
        "jobs": Job,
        "experiments": MlflowExperiment,
        "models": MlflowModel,
        "registered_models": RegisteredModel,
        "quality_monitors": QualityMonitor,
    }
    problems = []
    for kind, entries in (bundle.get("resources") or {}).items():
        if kind not in typed:
            problems.append(f"resources.{kind}: no typed model known for this resource kind")
            continue
        for key, value in entries.items():
            try:
                typed[kind].from_dict(value)
            except Exception as exc:  # noqa: BLE001 - report whatever the model rejects
                problems.append(f"resources.{kind}.{key}: {type(exc).__name__}: {exc}")
    return problems


CI_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)
TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")


def template_leftovers(text: str) -> list[str]:
    """Jinja2 syntax left in a rendered file; GitHub/Azure ``${{ }}`` expressions are fine."""
    stripped = CI_EXPRESSION.sub("", text)
    return [
        f"line {stripped[: m.start()].count(chr(10)) + 1}: {m.group()!r}"
        for m in TEMPLATE_SYNTAX.finditer(stripped)
    ]


def run_ruff(paths: list[Path]) -> tuple[str, str]:
    """ruff check and ruff format --check over ``paths`` (each file uses its nearest config,
    so every rendered project is checked with its own pyproject.toml)."""
    ruff = str(VENV_BIN / "ruff")
    env = {**os.environ, "NO_COLOR": "1"}
    args = [str(p) for p in paths]
    check = subprocess.run(
        [ruff, "check", "--no-cache", "--output-format", "concise", *args],
        capture_output=True,
        text=True,
        env=env,
    )
    fmt = subprocess.run(
        [ruff, "format", "--no-cache", "--check", *args], capture_output=True, text=True, env=env
    )
    return check.stdout + check.stderr, fmt.stdout + fmt.stderr


def run_project_tests(project: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


# --------------------------------------------------------------------------------------- tests
def test_every_combination_renders_the_whole_project(cases):
    # x2 compute; workspace registry or UC, with or without the feature store; and UC without
    # the feature store once more with train_once
    assert len(cases) == len(CLOUDS) * len(CICD_PLATFORMS) * 2 * 5 == 120
    assert len({c.id for c in cases}) == len(cases)
    always = [
        "databricks.yml",
        "README.md",
        "resources/README.md",
        "resources/ml-artifacts-resource.yml",
        "resources/model-workflow-resource.yml",
        "resources/batch-inference-workflow-resource.yml",
        "docs/ml-developer-guide.md",
        "docs/ml-pull-request.md",
        "validation/notebooks/ModelValidation.py",
        "validation/validation.py",
        "deployment/model_deployment/notebooks/ModelDeployment.py",
        "deployment/model_deployment/deploy.py",
        "deployment/batch_inference/notebooks/BatchInference.py",
        "deployment/batch_inference/predict.py",
        "utils.py",
        "requirements.txt",
        "test-requirements.txt",
        "pyproject.toml",
        "tests/test_utils.py",
    ]
    feature_store = [
        "training/notebooks/TrainWithFeatureStore.py",
        "resources/feature-engineering-workflow-resource.yml",
        "feature_engineering/notebooks/GenerateAndWriteFeatures.py",
        "feature_engineering/features/pickup_features.py",
        "feature_engineering/features/dropoff_features.py",
        "feature_engineering/windows.py",
        "tests/test_feature_windows.py",
    ]
    unity_catalog = [
        "resources/monitoring-resource.yml",
        "monitoring/notebooks/MonitoredMetricViolationCheck.py",
        "monitoring/metric_check.py",
        "tests/test_metric_check.py",
    ]
    for case in cases:
        present = {p.relative_to(case.path).as_posix() for p in files(case.path)}
        assert set(always) <= present, (case.id, set(always) - present)
        for rel in unity_catalog:
            assert (rel in present) == case.uc, (case.id, rel)
        for rel in feature_store:
            assert (rel in present) == case.fs, (case.id, rel)
        assert ("training/notebooks/Train.py" in present) != case.fs, case.id
        assert any(p.startswith("feature_engineering/") for p in present) == case.fs
        requirements = (case.path / "requirements.txt").read_text()
        assert ("databricks-feature-engineering" in requirements) == case.fs


def test_databricks_yml_targets_variables_and_includes(cases):
    for case in cases:
        text = (case.path / "databricks.yml").read_text()
        bundle = load_yaml(text)
        assert bundle["bundle"] == {"name": PROJECT, "uuid": case.answers["project_uuid"]}
        assert set(bundle["targets"]) == {"dev", "staging", "prod", "test"}
        assert bundle["targets"]["dev"]["mode"] == "development"
        assert bundle["targets"]["dev"]["workspace"]["host"] == CONFIG.workspaces.dev
        assert bundle["targets"]["test"]["workspace"]["host"] == CONFIG.workspaces.staging
        assert bundle["targets"]["prod"]["workspace"]["host"] == CONFIG.workspaces.prod
        variables = bundle["variables"]
        assert variables["experiment_name"]["default"] == (
            f"/Users/${{workspace.current_user.userName}}/${{bundle.target}}-{PROJECT}-experiment"
        )
        if case.uc:
            assert variables["model_name"]["default"] == f"{PROJECT}-model"
            catalogs = {t: v["variables"]["catalog_name"] for t, v in bundle["targets"].items()}
            assert catalogs == {"dev": "dev", "staging": "staging", "prod": "prod", "test": "test"}
        else:
            assert variables["model_name"]["default"] == f"${{bundle.target}}-{PROJECT}-model"
            assert "catalog_name" not in variables
            assert not any("variables" in t for t in bundle["targets"].values())
        # explicit include list; monitoring is present but commented out, as upstream
        expected = [
            "./resources/ml-artifacts-resource.yml",
            "./resources/model-workflow-resource.yml",
            "./resources/batch-inference-workflow-resource.yml",
        ]
        expected += ["./resources/model-promotion-resource.yml"] if case.once else []
        expected += ["./resources/feature-engineering-workflow-resource.yml"] if case.fs else []
        assert bundle["include"] == expected
        # monitoring (Unity Catalog only) is present but commented out, as upstream
        assert (f"  # - {MONITORING}\n" in text) == case.uc
        # CI's test target runs what it needs by hand: its schedules are paused
        assert bundle["targets"]["test"]["presets"] == {"trigger_pause_status": "PAUSED"}
        assert not any("presets" in bundle["targets"][t] for t in ("dev", "staging", "prod"))


def test_databricks_yml_without_a_dev_host(tmp_path):
    hosts = CONFIG.workspaces
    config = CONFIG.replace(workspaces=Workspaces(staging=hosts.staging, prod=hosts.prod))
    _, project = render_case(tmp_path, config, {"project_name": PROJECT})
    bundle = load_yaml((project / "databricks.yml").read_text())
    assert bundle["targets"]["dev"] == {"mode": "development", "default": True}


def test_jobs_follow_the_spec(cases, bundles):
    for case in cases:
        bundle = bundles[case.id]
        per_target = jobs_per_target(bundle)
        assert set(per_target) == {"dev", "staging", "prod", "test"}
        for target, jobs in per_target.items():
            check_jobs_of_a_target(case, bundle, target, jobs)


def check_jobs_of_a_target(case: Case, bundle: dict, target: str, jobs: dict) -> None:
    """Every job ``target`` deploys follows the spec; with train once, promote, prod copies the
    model instead of training it (and has no retraining job)."""
    promotes = case.once and target == "prod"
    expected = {"batch_inference_job"}
    expected |= {"model_promotion_job"} if promotes else {"model_training_job"}
    expected |= {"retraining_job"} if case.uc and not promotes else set()
    assert set(jobs) == expected | ({"write_feature_table_job"} if case.fs else set()), (
        case.id,
        target,
    )
    for key, job in jobs.items():
        assert job["name"].startswith(f"${{bundle.target}}-{PROJECT}-"), (case.id, key)
        if key != "model_promotion_job":  # run by the CD workflow, never on a schedule
            assert job["schedule"]["timezone_id"] == "UTC"
        assert job["permissions"] == [{"level": "CAN_VIEW", "group_name": "users"}]
        assert_compute(case, key, job)
        for task in job["tasks"]:
            params = task["notebook_task"]["base_parameters"]
            assert params["git_source_info"] == (
                "url:${bundle.git.origin_url};branch:${bundle.git.branch};"
                "commit:${bundle.git.commit}"
            )
            assert all(isinstance(v, str) for v in params.values()), (case.id, task)
    model = (
        f"${{var.catalog_name}}.{PROJECT_DIR}.${{var.model_name}}"
        if case.uc
        else "${var.model_name}"
    )
    if promotes:
        promotion = jobs["model_promotion_job"]
        assert promotion["name"] == f"${{bundle.target}}-{PROJECT}-model-promotion-job"
        [task] = promotion["tasks"]
        params = task["notebook_task"]["base_parameters"]
        assert params["model_name"] == model
        assert params["source_model_name"] == f"staging.{PROJECT_DIR}.${{var.model_name}}"
    else:
        check_training_job(case, jobs["model_training_job"], model)
    inference = jobs["batch_inference_job"]
    assert inference["name"] == f"${{bundle.target}}-{PROJECT}-batch-inference-job"
    if case.fs:
        feature_tasks = jobs["write_feature_table_job"]["tasks"]
        outputs = [
            t["notebook_task"]["base_parameters"]["output_table_name"] for t in feature_tasks
        ]
        schema = f"${{var.catalog_name}}.{PROJECT_DIR}." if case.uc else "hive_metastore.default."
        prefix = "" if case.uc else f"${{bundle.target}}_{PROJECT_DIR}_"
        assert outputs == [
            f"{schema}{prefix}trip_pickup_features",
            f"{schema}{prefix}trip_dropoff_features",
        ]
        train_params = jobs["model_training_job"]["tasks"][0]["notebook_task"]["base_parameters"]
        assert [
            train_params["pickup_features_table"],
            train_params["dropoff_features_table"],
        ] == outputs
    # monitoring (Unity Catalog): a monitor on the predictions table and a retraining job
    if case.uc:
        [monitor] = bundle["resources"]["quality_monitors"].values()
        table = f"${{var.catalog_name}}.{PROJECT_DIR}.predictions"
        assert monitor["table_name"] == table
        if not promotes:
            retrain = jobs["retraining_job"]["tasks"][0]["notebook_task"]["base_parameters"]
            assert retrain["training_job_id"] == "${resources.jobs.model_training_job.id}"
            assert retrain["table_name_under_monitor"] == table
    else:
        assert "quality_monitors" not in bundle["resources"]


def check_training_job(case: Case, training: dict, model: str) -> None:
    assert training["name"] == f"${{bundle.target}}-{PROJECT}-model-training-job"
    tasks = {t["task_key"]: t for t in training["tasks"]}
    assert list(tasks) == ["Train", "ModelValidation", "ModelDeployment"]
    assert tasks["ModelValidation"]["depends_on"] == [{"task_key": "Train"}]
    assert tasks["ModelDeployment"]["depends_on"] == [{"task_key": "ModelValidation"}]
    validation = tasks["ModelValidation"]["notebook_task"]["base_parameters"]
    assert validation["run_mode"] in ("disabled", "dry_run", "enabled")
    assert {
        "model_type": validation["model_type"],
        "targets": validation["targets"],
        "custom_metrics_loader_function": validation["custom_metrics_loader_function"],
        "validation_thresholds_loader_function": validation[
            "validation_thresholds_loader_function"
        ],
        "evaluator_config_loader_function": validation["evaluator_config_loader_function"],
    } == {
        "model_type": "regressor",
        "targets": "fare_amount",
        "custom_metrics_loader_function": "custom_metrics",
        "validation_thresholds_loader_function": "validation_thresholds",
        "evaluator_config_loader_function": "evaluator_config",
    }
    for task in tasks.values():
        assert task["notebook_task"]["base_parameters"]["model_name"] == model
        assert task["notebook_task"]["base_parameters"]["env"] == "${bundle.target}"
    train = tasks["Train"]["notebook_task"]
    assert train["notebook_path"].endswith("TrainWithFeatureStore.py" if case.fs else "/Train.py")


def assert_compute(case: Case, key: str, job: dict) -> None:
    """Serverless: one environment with requirements.txt, used by every task, no clusters.
    Classic: one job cluster on the LTS ML runtime, used by every task, no environments."""
    where = (case.id, key)
    if case.compute == "serverless":
        assert "job_clusters" not in job, where
        [environment] = job["environments"]
        assert environment["environment_key"] == "default", where
        assert environment["spec"]["environment_version"] == "5", where
        assert environment["spec"]["dependencies"] == ["-r ../requirements.txt"], where
        assert (case.path / "resources" / "../requirements.txt").is_file()
        for task in job["tasks"]:
            assert task["environment_key"] == "default", where
            assert "job_cluster_key" not in task and "new_cluster" not in task, where
        return
    assert "environments" not in job, where
    [cluster] = job["job_clusters"]
    spec = cluster["new_cluster"]
    assert spec["spark_version"] == "17.3.x-cpu-ml-scala2.13", where
    assert spec["node_type_id"] == NODE_TYPES[case.cloud], where
    assert spec["num_workers"] == 3
    assert spec["data_security_mode"] == "SINGLE_USER"
    assert spec["custom_tags"]["clusterSource"] == f"mlops-stacks_monostack_{template().version}"
    for task in job["tasks"]:
        assert task["job_cluster_key"] == cluster["job_cluster_key"], where
        assert "environment_key" not in task, where


def test_notebooks_and_requirements_fit_the_compute(cases):
    """Classic notebooks install requirements.txt themselves (the ML runtime has the rest);
    serverless notebooks leave it to the job environment, whose requirements list everything."""
    for case in cases:
        requirements = (case.path / "requirements.txt").read_text()
        for library in ("mlflow", "scikit-learn", "pandas", "databricks-sdk"):
            assert f"\n{library}>=" in requirements, (case.id, library)
        assert ("numpy>=" in requirements) == (case.compute == "serverless"), case.id
        for path in files(case.path, (".py",)):
            if path.parent.name != "notebooks":
                continue
            text = path.read_text()
            depth = len(path.relative_to(case.path).parts) - 1
            install = f"# MAGIC %pip install -r {'../' * depth}requirements.txt\n"
            assert (install in text) == (case.compute == "classic"), (case.id, path)
            assert ("dbutils.library.restartPython()" in text) == (case.compute == "classic")


def test_each_target_monitors_its_own_predictions(cases):
    """The monitor of each target watches the table batch inference writes in that target."""
    for case in (c for c in cases if c.uc):
        bundle = merged_bundle(case.path, (MONITORING,))
        catalogs = {t: v["variables"]["catalog_name"] for t, v in bundle["targets"].items()}
        jobs = bundle["resources"]["jobs"]
        output = jobs["batch_inference_job"]["tasks"][0]["notebook_task"]["base_parameters"][
            "output_table_name"
        ]
        monitor = bundle["resources"]["quality_monitors"]["predictions_monitor"]
        assert monitor["table_name"] == output
        watched = {
            t: monitor["table_name"].replace("${var.catalog_name}", c) for t, c in catalogs.items()
        }
        assert watched["staging"] != watched["prod"] != watched["test"] != watched["staging"]
        assert watched["prod"] == f"prod.{PROJECT_DIR}.predictions"
        assert monitor["output_schema_name"] == f"${{var.catalog_name}}.{PROJECT_DIR}"
        assert monitor["assets_dir"].endswith(f"/{PROJECT_DIR}/${{bundle.target}}")


def test_a_three_level_inference_table_answer_keeps_its_table_part(tmp_path):
    """Projects made before 0.2.0 recorded catalog.schema.table: only the table part is used."""
    given = {"project_name": PROJECT, "include_models_in_unity_catalog": True}
    given["inference_table_name"] = "dev.elsewhere.scored"
    _, project = render_case(tmp_path, CONFIG, given)
    bundle = merged_bundle(project, (MONITORING,))
    monitor = bundle["resources"]["quality_monitors"]["predictions_monitor"]
    assert monitor["table_name"] == f"${{var.catalog_name}}.{PROJECT_DIR}.scored"


def test_ml_artifacts(cases):
    for case in cases:
        resources = merged_bundle(case.path)["resources"]
        assert resources["experiments"]["experiment"]["name"] == "${var.experiment_name}"
        if case.uc:
            assert "models" not in resources
            model = resources["registered_models"]["model"]
            assert model["catalog_name"] == "${var.catalog_name}"
            assert model["schema_name"] == PROJECT_DIR
            assert model["grants"] == [{"privileges": ["EXECUTE"], "principal": "account users"}]
        else:
            assert "registered_models" not in resources
            assert resources["models"]["model"]["permissions"] == [
                {"level": "CAN_READ", "group_name": "users"}
            ]


@pytest.mark.skipif(not BUNDLE_SCHEMA.exists(), reason="../shared/reference not present")
def test_bundles_match_the_published_schema(cases):
    documents = unique(
        (f"{case.id}{' +monitoring' if extra else ''}", merged_bundle(case.path, extra))
        for case in cases
        for extra in {(), case.extra_includes}
    )
    # The CI platform does not change the bundle, nor does the cloud on serverless (no node
    # types): classic 3 clouds x (UC x FS, and train once), serverless the same 5, each UC one
    # also with monitoring.
    assert len(documents) == (3 * 5 + 3 * 3) + (5 + 3)
    failures = {label: schema_errors(doc) for label, doc in documents.items()}
    assert {label: errs for label, errs in failures.items() if errs} == {}


def test_variables_and_references_resolve(cases, bundles):
    for case in cases:
        assert undeclared_variables(case.path) == [], case.id
        assert dangling_resource_references(bundles[case.id]) == []


def test_notebook_paths_exist(cases):
    for case in cases:
        assert missing_code_paths(case.path) == [], case.id
        # with train once, promote, the promotion job's notebook too
        assert code_path_count(case.path) == 4 + case.uc + 2 * case.fs + case.once, case.id


def test_resources_load_with_the_typed_models(cases, bundles):
    distinct = unique((case.id, bundles[case.id]["resources"]) for case in cases)
    for label, resources in distinct.items():
        assert typed_model_errors({"resources": resources}) == [], label


def test_no_template_syntax_left(cases):
    for case in cases:
        for path in files(case.path):
            text = path.read_text(encoding="utf-8")
            assert template_leftovers(text) == [], path


def test_yaml_json_and_python_parse(cases):
    counts = {"yaml": 0, "py": 0}
    for case in cases:
        for path in files(case.path, (".yml", ".yaml")):
            load_yaml(path.read_text())
            counts["yaml"] += 1
        for path in files(case.path, (".json",)):
            json.loads(path.read_text())
        for path in files(case.path, (".py",)):
            ast.parse(path.read_text(), filename=str(path))
            counts["py"] += 1
    assert counts["yaml"] > len(cases) * 5 and counts["py"] > len(cases) * 11


def test_notebooks_are_databricks_source_files(cases):
    for case in cases:
        notebooks = [p for p in files(case.path, (".py",)) if p.parent.name == "notebooks"]
        assert len(notebooks) == 4 + case.uc + case.fs + case.once
        for path in notebooks:
            text = path.read_text()
            assert text.startswith("# Databricks notebook source\n"), path
            assert "\n# COMMAND ----------\n" in text, path


def test_rendered_python_passes_ruff_and_a_planted_defect_fails(cases, tmp_path):
    planted = tmp_path / "planted" / "bad.py"
    planted.parent.mkdir()
    planted.write_text("import os\nx=1\n")
    check, fmt = run_ruff([*(case.path for case in cases), planted.parent])
    flagged = {line.split(":", 1)[0] for line in check.splitlines() if ".py:" in line}
    assert flagged == {str(planted)}, check
    assert "F401" in check
    assert "1 file would be reformatted" in fmt, fmt
    assert str(planted) in fmt


def test_yamllint_accepts_the_bundle_files(cases):
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    config_file = REPO_ROOT / ".yamllint.yml"
    if not config_file.exists():
        pytest.skip(".yamllint.yml not in this checkout")
    config = YamlLintConfig(file=str(config_file))
    texts = unique(
        (str(path), path.read_text()) for case in cases for path in bundle_yaml_files(case.path)
    )
    problems = [
        f"{label}:{p.line}: {p.desc}"
        for label, text in texts.items()
        for p in linter.run(text, config)
        if p.level == "error"
    ]
    assert problems == []


def test_names_in_the_shared_workspace_carry_the_project(cases, bundles):
    for case in cases:
        bundle = bundles[case.id]
        for variable in ("experiment_name", "model_name"):
            assert PROJECT in bundle["variables"][variable]["default"]
        for job in bundle["resources"]["jobs"].values():
            assert PROJECT in job["name"]
            for task in job["tasks"]:
                for key, value in task["notebook_task"]["base_parameters"].items():
                    if "table" in key and not key.startswith("input_"):
                        assert PROJECT_DIR in value, (case.id, key, value)
        for monitor in (bundle["resources"].get("quality_monitors") or {}).values():
            assert PROJECT_DIR in monitor["table_name"] and PROJECT_DIR in monitor["assets_dir"]


def deployed_names(project: Path) -> set[str]:
    """Names a project creates in the shared workspaces and metastore (jobs, experiment,
    models, tables, monitor assets), before ${...} substitution."""
    monitoring = (MONITORING,) if (project / MONITORING).is_file() else ()
    bundle = merged_bundle(project, monitoring)
    names = {bundle["variables"][v]["default"] for v in ("experiment_name", "model_name")}
    for job in bundle["resources"]["jobs"].values():
        names.add(job["name"])
        for task in job["tasks"]:
            names |= {
                value
                for key, value in task["notebook_task"]["base_parameters"].items()
                if "table" in key and not key.startswith("input_")
            }
    for monitor in (bundle["resources"].get("quality_monitors") or {}).values():
        names |= {monitor["table_name"], monitor["assets_dir"]}
    return names


@pytest.mark.parametrize("uc", [False, True])
def test_two_projects_never_collide(tmp_path, uc):
    given = {"include_models_in_unity_catalog": uc, "include_feature_store": True}
    _, churn = render_case(tmp_path, CONFIG, {"project_name": "churn", **given})
    _, fraud = render_case(tmp_path, CONFIG, {"project_name": "fraud", **given})
    assert deployed_names(churn).isdisjoint(deployed_names(fraud))


def test_shared_schema_prefixes_table_names(tmp_path):
    given = {"project_name": PROJECT, "include_models_in_unity_catalog": True, "schema_name": "ml"}
    given["include_feature_store"] = True
    answers, project = render_case(tmp_path, CONFIG, given)
    assert answers["inference_table_name"] == f"{PROJECT_DIR}_predictions"
    bundle = merged_bundle(project, (MONITORING,))
    jobs = bundle["resources"]["jobs"]
    params = jobs["batch_inference_job"]["tasks"][0]["notebook_task"]["base_parameters"]
    table = f"${{var.catalog_name}}.ml.{PROJECT_DIR}_predictions"
    assert params["output_table_name"] == table
    assert params["model_name"] == "${var.catalog_name}.ml.${var.model_name}"
    assert bundle["resources"]["registered_models"]["model"]["schema_name"] == "ml"
    assert bundle["resources"]["quality_monitors"]["predictions_monitor"] == {
        **bundle["resources"]["quality_monitors"]["predictions_monitor"],
        "table_name": table,
        "output_schema_name": "${var.catalog_name}.ml",
    }


def test_gcp_with_unity_catalog_is_supported(cases):
    [case] = [
        c
        for c in cases
        if c.cloud == "gcp"
        and c.uc
        and c.fs
        and c.cicd == CICD_PLATFORMS[0]
        and c.compute == "classic"
    ]
    bundle = merged_bundle(case.path)
    assert (
        bundle["resources"]["registered_models"]["model"]["catalog_name"] == "${var.catalog_name}"
    )
    readme = (case.path / "README.md").read_text()
    assert "GCP" in readme and "Unity Catalog" in readme


def repository_tree(case: Case) -> dict[str, bytes]:
    """The case's project as it sits in a monorepo (projects/<dir>/) plus the monorepo part."""
    config = CONFIG.replace(cloud=case.cloud, cicd_platform=case.cicd)
    tree = dict(template().render_monorepo(config))
    prefix = f"projects/{case.answers['project_dir']}/"
    tree.update(
        {prefix + p.relative_to(case.path).as_posix(): p.read_bytes() for p in files(case.path)}
    )
    return tree


def test_every_relative_link_in_rendered_markdown_resolves(cases):
    checked = 0
    for case in cases:
        tree = repository_tree(case)
        assert broken_links(tree, "links", case.id) == [], case.id
        checked += sum(
            1
            for path, data in tree.items()
            if path.endswith(".md")
            for _ in relative_links(data.decode())
        )
    # README routing table, guides, resources/README.md, the set-up guide
    assert checked > len(cases) * 10


def test_a_broken_link_or_anchor_is_caught(cases):
    tree = repository_tree(cases[0])
    readme = f"projects/{PROJECT_DIR}/README.md"
    tree[readme] += b"\n[gone](docs/missing.md), [bad](resources/README.md#no-such-part)\n"
    tree[readme] += b"[out](../../../elsewhere.md) `[code](not/a/link.md)` [web](https://x.y/z)\n"
    found = broken_links(tree, "links", "case")
    assert [f.message for f in found] == [
        f"link 'docs/missing.md' points at projects/{PROJECT_DIR}/docs/missing.md, "
        "which does not exist",
        f"link 'resources/README.md#no-such-part' points at a heading #no-such-part that "
        f"projects/{PROJECT_DIR}/resources/README.md does not have",
        "link '../../../elsewhere.md' leaves the repository",
    ]
    assert {f.file for f in found} == {readme}


@pytest.mark.parametrize("name", ["yes", "123", "x:y#z'{w}\"", "a_b-c"])
def test_awkward_project_names_still_give_valid_files(tmp_path, name):
    given = {"project_name": name, "include_models_in_unity_catalog": True}
    answers, project = render_case(tmp_path, CONFIG, {**given, "include_feature_store": True})
    bundle = merged_bundle(project, (MONITORING,))
    assert bundle["bundle"]["name"] == name
    assert bundle["variables"]["model_name"]["default"] == f"{name}-model"
    if BUNDLE_SCHEMA.exists():
        assert schema_errors(bundle) == []
    assert typed_model_errors(bundle) == []
    for path in files(project, (".py",)):
        ast.parse(path.read_text(), filename=str(path))
    for path in files(project, (".yml",)):
        if path.relative_to(project).parts[0] not in CI_DIRS:
            load_yaml(path.read_text())
    assert "utils.py" in {p.name for p in files(project, (".py",))}


def test_the_project_unit_tests_pass(cases):
    # one combination by default; test_every_project_unit_test_passes (slow) runs all of them
    case = next(c for c in cases if c.uc and c.fs)
    result = run_project_tests(case.path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b\d{2,} passed\b", result.stdout), result.stdout


@pytest.mark.slow
def test_every_project_unit_test_passes(cases):
    failures = {}
    for case in cases:
        result = run_project_tests(case.path)
        if result.returncode != 0 or " passed" not in result.stdout:
            failures[case.id] = (result.stdout + result.stderr)[-2000:]
    assert failures == {}


# ------------------------------------------------------------------- the checks can fail
@pytest.fixture
def broken(cases, tmp_path) -> Path:
    """A writable copy of a rendered project (Unity Catalog + feature store) to break."""
    case = next(c for c in cases if c.uc and c.fs)
    return Path(shutil.copytree(case.path, tmp_path / "broken"))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_planted_undeclared_variable_is_caught(broken):
    _edit(
        broken / "resources/monitoring-resource.yml",
        "metric_to_monitor: root_mean_squared_error",
        "metric_to_monitor: ${var.metric}",
    )
    assert undeclared_variables(broken) == [
        "resources/monitoring-resource.yml: ${var.metric} is not declared"
    ]


def test_planted_missing_notebook_is_caught(broken):
    (broken / "validation/notebooks/ModelValidation.py").unlink()
    assert missing_code_paths(broken) == [
        "resources/model-workflow-resource.yml: notebook_path "
        "../validation/notebooks/ModelValidation.py does not exist"
    ]


def test_planted_dangling_job_reference_is_caught(broken):
    _edit(
        broken / "resources/monitoring-resource.yml",
        "${resources.jobs.model_training_job.id}",
        "${resources.jobs.training_job.id}",
    )
    bundle = merged_bundle(broken, (MONITORING,))
    assert dangling_resource_references(bundle) == [
        f"{target}: ${{resources.jobs.training_job}} is not defined" for target in bundle["targets"]
    ]


@pytest.mark.skipif(not BUNDLE_SCHEMA.exists(), reason="../shared/reference not present")
def test_planted_schema_violation_is_caught(broken):
    _edit(broken / "resources/model-workflow-resource.yml", "      schedule:\n", "      shedule:\n")
    errors = schema_errors(merged_bundle(broken))
    assert any("shedule" in e for e in errors), errors


def test_planted_typed_model_violation_is_caught(broken):
    _edit(broken / "resources/batch-inference-workflow-resource.yml", "notebook_path:", "notebook:")
    problems = typed_model_errors(merged_bundle(broken))
    assert len(problems) == 1 and "resources.jobs.batch_inference_job" in problems[0]
    assert typed_model_errors({"resources": {"pipelines": {"p": {}}}}) == [
        "resources.pipelines: no typed model known for this resource kind"
    ]


def test_planted_template_syntax_is_caught():
    assert template_leftovers("run: echo ${{ secrets.TOKEN }}\n") == []
    assert template_leftovers("a: 1\nname: {{ project_name }}\n") == ["line 2: '{{'"]
    assert template_leftovers("x\n{% if x %}\n{# note #}\n") == ["line 2: '{%'", "line 3: '{#'"]
    assert template_leftovers('print(f"{rate:.1%}")\n') == []


def test_merge_refuses_a_resource_defined_twice(broken):
    shutil.copy(
        broken / "resources/batch-inference-workflow-resource.yml", broken / "resources/copy.yml"
    )
    with pytest.raises(ValueError, match="batch_inference_job is defined twice"):
        merged_bundle(broken, ("./resources/copy.yml",))
    with pytest.raises(ValueError, match="matches no file"):
        merged_bundle(broken, ("./resources/nothing.yml",))


def test_planted_failing_project_test_is_caught(broken):
    _edit(
        broken / "validation/validation.py",
        "return Outcome(FAILED, stop_job=True)",
        "return Outcome(FAILED, stop_job=False)",
    )
    result = run_project_tests(broken)
    assert result.returncode == 1
    assert "test_validation_outcome" in result.stdout
