"""Score a table with the deployed model and append the predictions to a Delta table.

The output carries what a quality monitor of type inference log needs (see
``resources/monitoring-resource.yml``): the prediction, the label when the input has it, the id
of the model version that predicted and when the batch ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from utils import LABEL_COLUMN, RAW_FEATURE_COLUMNS

PREDICTION_COLUMN = "prediction"
MODEL_ID_COLUMN = "model_id"
TIMESTAMP_COLUMN = "timestamp"


def check_table_name(name: str) -> str:
    """Refuse an output table name that is not ``catalog.schema.table`` (a two-level name would
    land in whatever catalog the cluster defaults to)."""
    parts = name.split(".")
    if len(parts) != 3 or not all(part.strip() for part in parts):
        raise ValueError(f"output table {name!r} is not a three-level catalog.schema.table name")
    return name


def output_columns(input_columns: Sequence[str]) -> list[str]:
    """Columns of the predictions table, in order: the model's inputs, the label if present,
    then prediction, model id and timestamp."""
    missing = [c for c in RAW_FEATURE_COLUMNS if c not in input_columns]
    if missing:
        raise ValueError(f"the input has no column {missing[0]!r}; the model needs it")
    label = [LABEL_COLUMN] if LABEL_COLUMN in input_columns else []
    return [*RAW_FEATURE_COLUMNS, *label, PREDICTION_COLUMN, MODEL_ID_COLUMN, TIMESTAMP_COLUMN]


def predict_batch(
    spark: Any,
    model_uri: str,
    model_version: str,
    input_table_name: str,
    output_table_name: str,
    run_time: datetime,
) -> None:
    """Score ``input_table_name`` with ``model_uri`` (version ``model_version``) and append
    the result to ``output_table_name``."""
    import mlflow
    from pyspark.sql import functions as F

    check_table_name(output_table_name)
    table = spark.table(input_table_name)
    columns = output_columns(table.columns)
    score = mlflow.pyfunc.spark_udf(spark, model_uri=model_uri, result_type="double")
    scored = table.withColumn(PREDICTION_COLUMN, score(*RAW_FEATURE_COLUMNS))
    output = scored.withColumn(MODEL_ID_COLUMN, F.lit(str(model_version))).withColumn(
        TIMESTAMP_COLUMN, F.lit(run_time).cast("timestamp")
    )
    output = output.select(*columns)
    output.write.format("delta").mode("append").option("mergeSchema", "true").saveAsTable(
        output_table_name
    )
