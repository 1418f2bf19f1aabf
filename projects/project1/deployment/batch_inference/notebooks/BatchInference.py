# Databricks notebook source
# MAGIC %md
# MAGIC # Batch inference (project1)
# MAGIC
# MAGIC Scores `input_table_name` with the model version deployed in this target
# MAGIC (the version in the target's stage) and appends the predictions, with the version
# MAGIC and the run time, to `output_table_name`. Run daily by `batch_inference_job`
# MAGIC (`resources/batch-inference-workflow-resource.yml`).

# COMMAND ----------

dbutils.widgets.dropdown("env", "dev", ["dev", "staging", "prod", "test"], "Environment")
dbutils.widgets.text(
    "input_table_name",
    "delta.`dbfs:/databricks-datasets/nyctaxi-with-zipcodes/subsampled`",
    "Input table",
)
dbutils.widgets.text("output_table_name", "", "Output table (catalog.schema.table)")
dbutils.widgets.text("model_name", "", "Model (empty: the dev default)")
dbutils.widgets.text("git_source_info", "", "Git source")

# COMMAND ----------

import os
import sys
from datetime import datetime, timezone

# Databricks runs a notebook in its own folder: the project root is three levels up.
sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "..", "..")))

from mlflow.tracking import MlflowClient

from deployment.batch_inference.predict import predict_batch
from deployment.model_deployment.deploy import deployed_version
from utils import check_env, default_model_name

env = check_env(dbutils.widgets.get("env"))
model_name = dbutils.widgets.get("model_name") or default_model_name(env)
input_table_name = dbutils.widgets.get("input_table_name")
output_table_name = dbutils.widgets.get("output_table_name")
client = MlflowClient()

# COMMAND ----------

version = deployed_version(client, model_name, env)
if version is None:
    raise RuntimeError(f"no version of {model_name} is deployed in {env}; run the training job")
model_uri = f"models:/{model_name}/{version}"
run_time = datetime.now(timezone.utc)
predict_batch(spark, model_uri, str(version), input_table_name, output_table_name, run_time)
print(f"Appended the predictions of {model_uri} to {output_table_name}")
