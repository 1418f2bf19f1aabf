# Databricks notebook source
# MAGIC %md
# MAGIC # Model validation (project1)
# MAGIC
# MAGIC Evaluates the version the Train task registered with `mlflow.evaluate` (built-in metrics
# MAGIC of `model_type` plus the custom metrics of `validation/validation.py`), checks them
# MAGIC against the thresholds there and, with `enable_baseline_comparison`, against the version
# MAGIC deployed now. The result goes into the version's `model_validation_status` tag;
# MAGIC `run_mode` says what a failure does:
# MAGIC
# MAGIC * `disabled`: no validation (status `SKIPPED`);
# MAGIC * `dry_run`: the failure is recorded (`FAILED_DRY_RUN`) and deployment still runs;
# MAGIC * `enabled`: the task fails (`FAILED`) and the model is not deployed.

# COMMAND ----------

dbutils.widgets.dropdown("env", "dev", ["dev", "staging", "prod", "test"], "Environment")
dbutils.widgets.text("experiment_name", "", "Experiment (empty: the dev default)")
dbutils.widgets.text("model_name", "", "Model (empty: the dev default)")
dbutils.widgets.dropdown("run_mode", "dry_run", ["disabled", "dry_run", "enabled"], "Run mode")
dbutils.widgets.dropdown("enable_baseline_comparison", "false", ["true", "false"], "Baseline")
dbutils.widgets.text(
    "validation_input",
    "SELECT * FROM delta.`dbfs:/databricks-datasets/nyctaxi-with-zipcodes/subsampled`",
    "Validation input (SQL)",
)
dbutils.widgets.dropdown("model_type", "regressor", ["regressor", "classifier"], "Model type")
dbutils.widgets.text("targets", "fare_amount", "Targets column")
dbutils.widgets.text("custom_metrics_loader_function", "custom_metrics")
dbutils.widgets.text("validation_thresholds_loader_function", "validation_thresholds")
dbutils.widgets.text("evaluator_config_loader_function", "evaluator_config")
dbutils.widgets.text("git_source_info", "", "Git source")

# COMMAND ----------

import os
import sys

# Databricks runs a notebook in its own folder: the project root is two levels up.
sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "..")))

import mlflow
from mlflow.tracking import MlflowClient

from deployment.model_deployment.deploy import deployed_version
from utils import (
    RAW_FEATURE_COLUMNS,
    VALIDATION_STATUS_TAG,
    check_env,
    default_experiment_name,
    default_model_name,
    latest_version,
    parse_bool,
    parse_git_source_info,
)
from validation import validation

env = check_env(dbutils.widgets.get("env"))
user = spark.sql("SELECT current_user()").first()[0]
experiment_name = dbutils.widgets.get("experiment_name") or default_experiment_name(user, env)
model_name = dbutils.widgets.get("model_name") or default_model_name(env)
run_mode = validation.check_run_mode(dbutils.widgets.get("run_mode"))
compare_to_baseline = parse_bool(dbutils.widgets.get("enable_baseline_comparison"))
validation_input = dbutils.widgets.get("validation_input")
model_type = dbutils.widgets.get("model_type")
targets = dbutils.widgets.get("targets")
custom_metrics = validation.load_function(
    validation, dbutils.widgets.get("custom_metrics_loader_function")
)()
thresholds = validation.load_function(
    validation, dbutils.widgets.get("validation_thresholds_loader_function")
)()
evaluator_config = validation.load_function(
    validation, dbutils.widgets.get("evaluator_config_loader_function")
)()
git_tags = parse_git_source_info(dbutils.widgets.get("git_source_info"))

mlflow.set_experiment(experiment_name)
client = MlflowClient()

# The version the Train task registered; by hand, the latest version.
model_version = dbutils.jobs.taskValues.get("Train", "model_version", debugValue="")
if not model_version:
    model_version = str(latest_version(client.search_model_versions(f"name='{model_name}'")))
print(f"Validating {model_name} version {model_version} in run mode {run_mode}")

# COMMAND ----------


def scored_data(version):
    """The validation input with a ``prediction`` column from the given model version."""
    uri = f"models:/{model_name}/{version}"
    data = spark.sql(validation_input).toPandas()
    data["prediction"] = mlflow.pyfunc.load_model(uri).predict(data[list(RAW_FEATURE_COLUMNS)])
    return data


def evaluate(version, run_name):
    """Metrics of one version, logged in a nested run of the validation run."""
    with mlflow.start_run(run_name=run_name, nested=True):
        result = mlflow.evaluate(
            data=scored_data(version),
            targets=targets,
            predictions="prediction",
            model_type=model_type,
            extra_metrics=custom_metrics,
            evaluator_config=evaluator_config,
        )
    return result.metrics


# COMMAND ----------

problems = []
if run_mode != "disabled":
    run_tags = {"env": env, "model_version": model_version, **git_tags}
    with mlflow.start_run(run_name="model_validation", tags=run_tags):
        metrics = evaluate(model_version, "candidate")
        baseline = None
        if compare_to_baseline:
            deployed = deployed_version(client, model_name, env)
            if deployed is not None and str(deployed) != model_version:
                baseline = evaluate(deployed, f"deployed_version_{deployed}")
        problems = validation.check_thresholds(metrics, thresholds, baseline)
        mlflow.log_dict({"problems": problems}, "validation_problems.json")

outcome = validation.validation_outcome(run_mode, problems)
client.set_model_version_tag(model_name, model_version, VALIDATION_STATUS_TAG, outcome.status)
for problem in problems:
    print(f"validation problem: {problem}")
print(f"Validation status of version {model_version}: {outcome.status}")
if outcome.stop_job:
    raise RuntimeError(
        f"version {model_version} of {model_name} failed validation: " + "; ".join(problems)
    )
