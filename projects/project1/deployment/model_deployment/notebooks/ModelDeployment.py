# Databricks notebook source
# MAGIC %md
# MAGIC # Model deployment (project1)
# MAGIC
# MAGIC Last task of `model_training_job`: promotes the version the Train task registered
# MAGIC into the target's stage (`Production` for prod, `Staging` elsewhere), unless it failed
# MAGIC an enforced validation or is older than the version in that stage. Batch inference
# MAGIC scores with the version in the stage.
# MAGIC The policy lives in `deployment/model_deployment/deploy.py`.

# COMMAND ----------

dbutils.widgets.dropdown("env", "dev", ["dev", "staging", "prod", "test"], "Environment")
dbutils.widgets.text("model_name", "", "Model (empty: the dev default)")
dbutils.widgets.text("model_version", "", "Version (empty: from the Train task, else latest)")
dbutils.widgets.text("git_source_info", "", "Git source")

# COMMAND ----------

import os
import sys

# Databricks runs a notebook in its own folder: the project root is three levels up.
sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "..", "..")))

from mlflow.tracking import MlflowClient

from deployment.model_deployment.deploy import deploy
from utils import check_env, default_model_name, latest_version

env = check_env(dbutils.widgets.get("env"))
model_name = dbutils.widgets.get("model_name") or default_model_name(env)
client = MlflowClient()
model_version = dbutils.widgets.get("model_version") or dbutils.jobs.taskValues.get(
    "Train", "model_version", debugValue=""
)
if not model_version:
    model_version = latest_version(client.search_model_versions(f"name='{model_name}'"))

# COMMAND ----------

decision = deploy(client, model_name, model_version, env)
print(decision.reason)
dbutils.notebook.exit(decision.reason)
