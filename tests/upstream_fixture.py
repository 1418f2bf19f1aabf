# ruff: noqa: E501 - fixture text keeps the long lines upstream files have
"""Builds projects in the layout `databricks bundle init mlops-stacks` renders (0.4 and 0.5).

Written for monostack's tests from the layout alone: a rendered root holding the bundle folder
``<project_dir>/`` (``databricks.yml``, ``resources/``, code, notebooks, ``project_params.json``)
beside the repo-level CI files (``.github/workflows/`` or ``.azure/devops-pipelines/``), docs,
``cicd_params.json`` and ``test-requirements.txt``. In 0.4 notebooks sit in ``notebooks/``
folders and jobs run on job clusters; in 0.5 notebooks sit beside their modules and jobs run on
serverless environments. Resource files keep upstream's habit of YAML anchor holders at the top.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

HOSTS = {
    "staging": "https://adb-1111111111111111.11.azuredatabricks.net",
    "prod": "https://adb-2222222222222222.12.azuredatabricks.net",
}

NOTEBOOK_HEAD = "# Databricks notebook source\n"
CELL = "\n# COMMAND ----------\n\n"


def _notebook(title: str, widgets: list[tuple[str, str]], body: str, depth: int) -> str:
    """A Databricks source notebook: not formatted by ruff's rules, Databricks globals used."""
    up = "/".join([".."] * depth)
    cells = [
        f"##################################################################################\n"
        f"# {title}\n"
        f"##################################################################################",
        f"# MAGIC %pip install -r {up}/requirements.txt",
        "dbutils.library.restartPython()",
        "\n".join(f"dbutils.widgets.text('{k}', '{v}', label='{k}')" for k, v in widgets),
        f"import os\nimport sys\nsys.path.append(os.path.abspath('{up}'))\n" + body,
    ]
    return NOTEBOOK_HEAD + CELL.join(cells) + "\n"


def _layout(version: str, folder: str, name: str) -> str:
    return f"{folder}/notebooks/{name}" if version == "0.4" else f"{folder}/{name}"


def _depth(path: str) -> int:
    return path.count("/")


def _compute(version: str, key: str) -> tuple[str, str]:
    """(job-level YAML, task-level YAML) for a job: a job cluster (0.4) or serverless (0.5)."""
    if version == "0.4":
        job = f"      job_clusters:\n        - job_cluster_key: {key}\n          <<: *new_cluster\n"
        return job, f"          job_cluster_key: {key}\n"
    job = (
        "      environments:\n"
        "        - environment_key: default\n"
        "          spec:\n"
        '            environment_version: "3"\n'
        "            dependencies:\n"
        '              - "-r ../requirements.txt"\n'
    )
    return job, "          environment_key: default\n"


def _anchors(version: str, cloud: str) -> str:
    node = {"azure": "Standard_D3_v2", "aws": "i3.xlarge", "gcp": "n2-highmem-4"}[cloud]
    cluster = (
        "new_cluster: &new_cluster\n"
        "  new_cluster:\n"
        "    num_workers: 3\n"
        "    spark_version: 15.3.x-cpu-ml-scala2.12\n"
        f"    node_type_id: {node}\n"
        "    data_security_mode: SINGLE_USER\n"
        "    custom_tags:\n"
        f"      clusterSource: mlops-stacks_{version}\n\n"
        if version == "0.4"
        else ""
    )
    return cluster + (
        "common_permissions: &permissions\n"
        "  permissions:\n"
        "    - level: CAN_VIEW\n"
        "      group_name: users\n\n"
    )


def build_upstream(
    base: Path,
    name: str,
    *,
    version: str = "0.5",
    cicd: str = "github_actions",
    uc: bool = False,
    fs: bool = False,
    cloud: str = "azure",
    hosts: dict[str, str] | None = None,
    root_dir: str = "my_mlops_project",
) -> Path:
    """Write a rendered upstream project under ``base/root_dir``; returns that root."""
    hosts = {**HOSTS, **(hosts or {})}
    root = base / root_dir
    pdir = name.replace("-", "_")
    files: dict[str, str] = {}
    p = f"{pdir}/"

    # ---- repo-level files
    files["README.md"] = f"# {root_dir}\n\nML project {name}, rendered by MLOps Stacks {version}.\n"
    files[".gitignore"] = ".databricks/\n__pycache__/\n"
    files["test-requirements.txt"] = "pytest>=7.1.2\n"
    files["docs/mlops-setup.md"] = "# Set up CI/CD\n\nAdd the service principal secrets.\n"
    files["cicd_params.json"] = json.dumps(
        {
            "input_root_dir": root_dir,
            "input_cloud": cloud,
            "input_cicd_platform": cicd,
            "input_default_branch": "main",
            "input_release_branch": "release",
        },
        indent=2,
    )
    files[f"{p}project_params.json"] = json.dumps(
        {"input_cloud": cloud, "input_include_feature_store": "yes" if fs else "no"}, indent=2
    )
    if cicd == "azure_devops":
        for stem in ("tests-ci", "bundle-cicd"):
            files[f".azure/devops-pipelines/{name}-{stem}.yml"] = (
                f"# {stem} for {name}\ntrigger:\n  branches:\n    include: [main]\n"
                "pool:\n  vmImage: ubuntu-latest\nsteps:\n"
                f"  - script: databricks bundle validate -t staging\n"
                f"    workingDirectory: $(Build.SourcesDirectory)/{pdir}\n"
            )
        files[".azure/devops-pipelines/deploy-cicd.yml"] = (
            "trigger: none\nsteps:\n  - script: echo\n"
        )
    else:
        runner = "[self-hosted]" if cicd.endswith("servers") else "ubuntu-latest"
        for stem in ("run-tests", "bundle-ci", "bundle-cd-staging", "bundle-cd-prod"):
            files[f".github/workflows/{name}-{stem}.yml"] = (
                f"name: {stem} for {name}\non:\n  push:\n    branches: [main]\n"
                f"concurrency: {name}-training-integration-test\n"
                f"defaults:\n  run:\n    working-directory: ./{pdir}/\n"
                f"jobs:\n  run:\n    runs-on: {runner}\n    steps:\n"
                "      - uses: actions/checkout@v4\n"
                "      - run: databricks bundle validate -t staging\n"
            )
        for shared in ("deploy-cicd.yml", "lint-cicd-workflow-files.yml"):
            files[f".github/workflows/{shared}"] = (
                "name: shared\non: workflow_dispatch\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
                "    steps:\n      - run: echo\n"
            )

    # ---- the bundle
    model_default = name + "-model" if uc else "${bundle.target}-" + name + "-model"
    catalog_var = (
        "  catalog_name:\n    description: The catalog name to save the trained model\n"
        if uc
        else ""
    )
    includes = [
        "batch-inference-workflow-resource.yml",
        "ml-artifacts-resource.yml",
        "model-workflow-resource.yml",
    ] + (["feature-engineering-workflow-resource.yml"] if fs else [])

    def target(t: str, host_key: str, catalog: str) -> str:
        cat = f"    variables:\n      catalog_name: {catalog}\n" if uc else ""
        return f"  {t}:\n{cat}    workspace:\n      host: {hosts[host_key]}\n\n"

    files[f"{p}databricks.yml"] = (
        "# Bundle of the project; `databricks bundle schema` shows every setting.\n"
        "bundle:\n"
        "  # generated once; keep it\n"
        f"  uuid: {uuid.uuid5(uuid.NAMESPACE_URL, name)}\n"
        f"  name: {name}\n\n"
        "variables:\n"
        "  experiment_name:\n"
        "    description: Experiment the training runs log to.\n"
        f"    default: /Users/${{workspace.current_user.userName}}/${{bundle.target}}-{name}-experiment\n"
        "  model_name:\n"
        "    description: Model the training registers.\n"
        f"    default: {model_default}\n"
        f"{catalog_var}\n"
        "include:\n"
        + "".join(f"  - ./resources/{inc}\n" for inc in includes)
        + "  # - ./resources/monitoring-resource.yml\n\n"
        "targets:\n"
        "  dev:\n"
        "    mode: development\n"
        "    default: true\n"
        + ("    variables:\n      catalog_name: dev\n" if uc else "")
        + "    workspace:\n      # fill in the dev workspace\n      host:\n\n"
        + target("staging", "staging", "staging")
        + target("prod", "prod", "prod")
        + target("test", "staging", "test")
    )
    schema = pdir
    if uc:
        model_res = (
            "grants: &grants\n  grants:\n    - privileges:\n        - EXECUTE\n"
            "      principal: account users\n\n"
            "resources:\n  registered_models:\n    model:\n      name: ${var.model_name}\n"
            "      catalog_name: ${bundle.target}\n"
            f"      schema_name: {schema}\n"
            "      <<: *grants\n"
        )
    else:
        model_res = (
            "resources:\n  models:\n    model:\n      name: ${var.model_name}\n"
            "      <<: *permissions\n"
        )
    files[f"{p}resources/ml-artifacts-resource.yml"] = (
        "permissions: &permissions\n  permissions:\n    - level: CAN_READ\n      group_name: users\n\n"
        + model_res
        + "  experiments:\n    experiment:\n      name: ${var.experiment_name}\n"
        "      <<: *permissions\n"
        f"      description: Runs of the {name} project.\n"
    )
    model_full = (
        "${var.catalog_name}." + schema + ".${var.model_name}" if uc else "${var.model_name}"
    )
    train_nb = _layout(version, "training", "TrainWithFeatureStore.py" if fs else "Train.py")
    validate_nb = _layout(version, "validation", "ModelValidation.py")
    deploy_nb = _layout(version, "deployment/model_deployment", "ModelDeployment.py")
    batch_nb = _layout(version, "deployment/batch_inference", "BatchInference.py")
    monitor_nb = _layout(version, "monitoring", "MonitoredMetricViolationCheck.py")
    job_compute, task_compute = _compute(version, "model_training_job_cluster")
    files[f"{p}resources/model-workflow-resource.yml"] = (
        _anchors(version, cloud) + "resources:\n  jobs:\n    model_training_job:\n"
        f"      name: ${{bundle.target}}-{name}-model-training-job\n"
        + job_compute
        + "      tasks:\n"
        "        - task_key: Train\n"
        + task_compute
        + f"          notebook_task:\n            notebook_path: ../{train_nb}\n"
        "            base_parameters:\n              env: ${bundle.target}\n"
        "              experiment_name: ${var.experiment_name}\n"
        f"              model_name: {model_full}\n"
        "        - task_key: ModelValidation\n"
        + task_compute
        + "          depends_on:\n            - task_key: Train\n"
        f"          notebook_task:\n            notebook_path: ../{validate_nb}\n"
        "            base_parameters:\n              run_mode: dry_run\n"
        "        - task_key: ModelDeployment\n"
        + task_compute
        + "          depends_on:\n            - task_key: ModelValidation\n"
        f"          notebook_task:\n            notebook_path: ../{deploy_nb}\n"
        "            base_parameters:\n              env: ${bundle.target}\n"
        '      schedule:\n        quartz_cron_expression: "0 0 9 * * ?"\n        timezone_id: UTC\n'
        "      <<: *permissions\n"
    )
    job_compute, task_compute = _compute(version, "batch_inference_job_cluster")
    output = f"${{bundle.target}}.{schema}.predictions" if uc else f"{pdir}_predictions"
    files[f"{p}resources/batch-inference-workflow-resource.yml"] = (
        _anchors(version, cloud) + "resources:\n  jobs:\n    batch_inference_job:\n"
        f"      name: ${{bundle.target}}-{name}-batch-inference-job\n"
        + job_compute
        + "      tasks:\n        - task_key: batch_inference_job\n"
        + task_compute
        + f"          notebook_task:\n            notebook_path: ../{batch_nb}\n"
        "            base_parameters:\n              env: ${bundle.target}\n"
        f"              output_table_name: {output}\n"
        f"              model_name: {model_full}\n"
        '      schedule:\n        quartz_cron_expression: "0 0 11 * * ?"\n        timezone_id: UTC\n'
        "      <<: *permissions\n"
    )
    inference = f"dev.{schema}.predictions"
    job_compute, task_compute = _compute(version, "retraining_job_cluster")
    files[f"{p}resources/monitoring-resource.yml"] = (
        _anchors(version, cloud) + "resources:\n  quality_monitors:\n"
        f"    {pdir}_quality_monitor:\n"
        f"      table_name: {inference}\n"
        f"      output_schema_name: ${{bundle.target}}.{schema}\n"
        "      assets_dir: /Users/${workspace.current_user.userName}/databricks_lakehouse_monitoring\n"
        "      inference_log:\n        granularities: [1 day]\n        model_id_col: model_id\n"
        "        prediction_col: prediction\n        problem_type: PROBLEM_TYPE_REGRESSION\n"
        "        timestamp_col: timestamp\n"
        "  jobs:\n    retraining_job:\n"
        f"      name: ${{bundle.target}}-{name}-monitoring-retraining-job\n"
        + job_compute
        + "      tasks:\n        - task_key: monitored_metric_violation_check\n"
        + task_compute
        + f"          notebook_task:\n            notebook_path: ../{monitor_nb}\n"
        f"            base_parameters:\n              table_name_under_monitor: {inference}\n"
        "      <<: *permissions\n"
    )
    if fs:
        fe_nb = _layout(version, "feature_engineering", "GenerateAndWriteFeatures.py")
        job_compute, task_compute = _compute(version, "write_feature_table_job_cluster")
        table = (
            f"${{bundle.target}}.{schema}.trip_pickup_features"
            if uc
            else f"feature_store_taxi_example.${{bundle.target}}_{pdir}_trip_pickup_features"
        )
        files[f"{p}resources/feature-engineering-workflow-resource.yml"] = (
            _anchors(version, cloud) + "resources:\n  jobs:\n    write_feature_table_job:\n"
            f"      name: ${{bundle.target}}-{name}-write-feature-table-job\n"
            + job_compute
            + "      tasks:\n        - task_key: PickupFeatures\n"
            + task_compute
            + f"          notebook_task:\n            notebook_path: ../{fe_nb}\n"
            "            base_parameters:\n"
            f"              output_table_name: {table}\n"
            "              features_transform_module: pickup_features\n"
            "      <<: *permissions\n"
        )
        files[f"{p}{fe_nb}"] = _notebook(
            "Write features",
            [("output_table_name", ""), ("features_transform_module", "")],
            "from importlib import import_module\n"
            "module = import_module('features.' + dbutils.widgets.get('features_transform_module'))\n"
            "df = module.compute_features_fn(spark.table('samples.nyctaxi.trips'))\n"
            "display(df)\n",
            _depth(fe_nb),
        )
        for side in ("pickup", "dropoff"):
            files[f"{p}feature_engineering/features/{side}_features.py"] = (
                f'"""Features of trip {side}s."""\n\n\n'
                "def compute_features_fn(input_df):\n"
                f'    return input_df.groupBy("{side}_zip").count()\n'
            )
    # ---- code and notebooks
    files[f"{p}requirements.txt"] = "mlflow>=2.11\nscikit-learn\npandas\nlightgbm\n"
    files[f"{p}README.md"] = f"# {name}\n\nTrain, validate, deploy and score a model.\n"
    files[f"{p}resources/README.md"] = "# Resources\n\nJobs and ML artifacts of the bundle.\n"
    files[f"{p}{train_nb}"] = _notebook(
        "Model training",
        [("env", "staging"), ("experiment_name", ""), ("model_name", "")],
        "import mlflow\n"
        "mlflow.set_experiment(dbutils.widgets.get('experiment_name'))\n"
        "raw_data = spark.read.format('delta').load('/databricks-datasets/nyctaxi-with-zipcodes/subsampled')\n"
        "display(raw_data)\n",
        _depth(train_nb),
    )
    files[f"{p}{validate_nb}"] = _notebook(
        "Model validation",
        [("run_mode", "dry_run")],
        "from validation import validation_thresholds\n"
        "print(validation_thresholds(), dbutils.widgets.get('run_mode'))\n",
        _depth(validate_nb),
    )
    files[f"{p}validation/validation.py"] = (
        "def validation_thresholds():\n"
        '    return {"max_error": {"threshold": 500, "higher_is_better": False}}\n'
    )
    files[f"{p}{deploy_nb}"] = _notebook(
        "Model deployment",
        [("env", "staging")],
        "from deploy import deploy\n"
        "deploy(dbutils.jobs.taskValues.get('Train', 'model_uri', debugValue=''), "
        "dbutils.widgets.get('env'))\n",
        _depth(deploy_nb),
    )
    files[f"{p}deployment/model_deployment/deploy.py"] = (
        'def deploy(model_uri, env):\n    print(f"deploying {model_uri} to {env}")\n'
    )
    files[f"{p}{batch_nb}"] = _notebook(
        "Batch inference",
        [("env", "staging"), ("output_table_name", ""), ("model_name", "")],
        "from predict import predict_batch\n"
        "predict_batch(spark, dbutils.widgets.get('model_name'), "
        "dbutils.widgets.get('output_table_name'))\n",
        _depth(batch_nb),
    )
    files[f"{p}deployment/batch_inference/predict.py"] = (
        "def predict_batch(spark_session, model_uri, output_table_name):\n"
        "    table = spark_session.table(output_table_name)\n"
        "    return table\n"
    )
    files[f"{p}{monitor_nb}"] = _notebook(
        "Metric violation check",
        [("table_name_under_monitor", "")],
        "is_violated = spark.sql('select 1').collect()[0][0] == 1\n"
        "dbutils.jobs.taskValues.set('is_metric_violated', is_violated)\n",
        _depth(monitor_nb),
    )
    if not uc:
        files[f"{p}utils.py"] = (
            "def get_deployed_model_stage_for_env(env):\n"
            '    return {"dev": "None", "staging": "Staging", "prod": "Production"}[env]\n'
        )
    files[f"{p}tests/training/train_test.py"] = (
        "import pytest\n\n\n@pytest.mark.parametrize('x', [1, 2])\ndef test_sample(x):\n"
        "    assert x > 0\n"
    )
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
