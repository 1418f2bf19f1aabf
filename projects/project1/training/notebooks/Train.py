# Databricks notebook source
# MAGIC %md
# MAGIC # Train (project1)
# MAGIC
# MAGIC Trains the example model (a taxi fare regressor) on a Delta table, logs it to the MLflow
# MAGIC experiment and registers a new version of the model
# MAGIC in the workspace model registry. First task of `model_training_job`
# MAGIC (`resources/model-workflow-resource.yml`); the next tasks read the new version from the
# MAGIC task values `model_name`, `model_version` and `model_uri`.
# MAGIC
# MAGIC Replace the data loading and the model below with your own; keep the registration and
# MAGIC the task values.

# COMMAND ----------

dbutils.widgets.dropdown("env", "dev", ["dev", "staging", "prod", "test"], "Environment")
dbutils.widgets.text(
    "training_data_path", "/databricks-datasets/nyctaxi-with-zipcodes/subsampled", "Training data"
)
dbutils.widgets.text("experiment_name", "", "Experiment (empty: the dev default)")
dbutils.widgets.text("model_name", "", "Model (empty: the dev default)")
dbutils.widgets.text("git_source_info", "", "Git source")

# COMMAND ----------

import os
import sys

# Databricks runs a notebook in its own folder: the project root is two levels up.
sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "..")))

import mlflow
from mlflow.models import infer_signature
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from utils import (
    LABEL_COLUMN,
    RAW_FEATURE_COLUMNS,
    check_env,
    default_experiment_name,
    default_model_name,
    parse_git_source_info,
)

env = check_env(dbutils.widgets.get("env"))
user = spark.sql("SELECT current_user()").first()[0]
experiment_name = dbutils.widgets.get("experiment_name") or default_experiment_name(user, env)
model_name = dbutils.widgets.get("model_name") or default_model_name(env)
training_data_path = dbutils.widgets.get("training_data_path")
git_tags = parse_git_source_info(dbutils.widgets.get("git_source_info"))

mlflow.set_experiment(experiment_name)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Load the data

# COMMAND ----------

columns = [*RAW_FEATURE_COLUMNS, LABEL_COLUMN]
data = spark.read.format("delta").load(training_data_path).select(*columns).dropna().toPandas()
train, test = train_test_split(data, test_size=0.2, random_state=42)
features = list(RAW_FEATURE_COLUMNS)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Train, log and register

# COMMAND ----------

params = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31}
with mlflow.start_run(tags={"env": env, **git_tags}) as run:
    model = HistGradientBoostingRegressor(random_state=42, **params)
    model.fit(train[features], train[LABEL_COLUMN])
    predictions = model.predict(test[features])
    mlflow.log_params(params)
    mlflow.log_metric("test_rmse", mean_squared_error(test[LABEL_COLUMN], predictions) ** 0.5)
    logged = mlflow.sklearn.log_model(
        model,
        artifact_path="model",
        signature=infer_signature(test[features], predictions),
        input_example=test[features].head(5),
    )

version = mlflow.register_model(logged.model_uri, model_name, tags=git_tags).version
model_uri = f"models:/{model_name}/{version}"
print(f"Registered {model_uri} from run {run.info.run_id}")

# COMMAND ----------

dbutils.jobs.taskValues.set("model_name", model_name)
dbutils.jobs.taskValues.set("model_version", str(version))
dbutils.jobs.taskValues.set("model_uri", model_uri)
dbutils.notebook.exit(model_uri)
