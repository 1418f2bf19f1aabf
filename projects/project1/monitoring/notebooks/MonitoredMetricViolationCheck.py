# Databricks notebook source
# MAGIC %md
# MAGIC # Metric violation check (project1)
# MAGIC
# MAGIC Task of `retraining_job` (`resources/monitoring-resource.yml`, opt-in). Reads the last
# MAGIC `num_evaluation_windows` windows of `metric_to_monitor` from the quality monitor's profile
# MAGIC metrics of `table_name_under_monitor`; when at least `num_violation_windows` of them are
# MAGIC worse than `metric_violation_threshold`, it starts the training job (`training_job_id`).
# MAGIC The decision lives in `monitoring/metric_check.py`.

# COMMAND ----------

# MAGIC %pip install -r ../../requirements.txt

# COMMAND ----------

dbutils.library.restartPython()

# COMMAND ----------

dbutils.widgets.dropdown("env", "dev", ["dev", "staging", "prod", "test"], "Environment")
dbutils.widgets.text("table_name_under_monitor", "", "Monitored table (catalog.schema.table)")
dbutils.widgets.text("metric_to_monitor", "root_mean_squared_error", "Metric")
dbutils.widgets.text("metric_violation_threshold", "100", "Threshold")
dbutils.widgets.dropdown("higher_is_better", "false", ["true", "false"], "Higher is better")
dbutils.widgets.text("num_evaluation_windows", "5", "Windows to look at")
dbutils.widgets.text("num_violation_windows", "2", "Violations that trigger retraining")
dbutils.widgets.text("training_job_id", "", "Training job id (empty: only report)")
dbutils.widgets.text("git_source_info", "", "Git source")

# COMMAND ----------

import os
import sys

# Databricks runs a notebook in its own folder: the project root is two levels up.
sys.path.insert(0, os.path.abspath(os.path.join(os.getcwd(), "..", "..")))

from monitoring.metric_check import MetricRule, recent_metric_values
from utils import check_env, parse_bool

env = check_env(dbutils.widgets.get("env"))
table_name = dbutils.widgets.get("table_name_under_monitor")
rule = MetricRule(
    metric=dbutils.widgets.get("metric_to_monitor"),
    threshold=float(dbutils.widgets.get("metric_violation_threshold")),
    higher_is_better=parse_bool(dbutils.widgets.get("higher_is_better")),
    num_evaluation_windows=int(dbutils.widgets.get("num_evaluation_windows")),
    num_violation_windows=int(dbutils.widgets.get("num_violation_windows")),
)
training_job_id = dbutils.widgets.get("training_job_id")

# COMMAND ----------

values = recent_metric_values(spark, table_name, rule)
violated = rule.should_retrain(values)
print(f"{rule.metric} of the latest windows (newest first): {values}")
dbutils.jobs.taskValues.set("is_metric_violated", violated)

# COMMAND ----------

if violated and training_job_id:
    from databricks.sdk import WorkspaceClient

    WorkspaceClient().jobs.run_now(job_id=int(training_job_id))
    print(f"{rule.metric} is violated: started the training job {training_job_id}")
elif violated:
    print(f"{rule.metric} is violated; no training_job_id given, so nothing was started")
else:
    print(f"{rule.metric} is within bounds; no retraining needed")
