"""Dropoff features: per dropoff zip, the number of trips in each half hour and whether the
half hour falls on a weekend. Run by GenerateAndWriteFeatures with
``features_transform_module: dropoff_features``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from feature_engineering.windows import DROPOFF_SLIDE_MINUTES, DROPOFF_WINDOW_MINUTES

FEATURE_NAMES = ("count_trips_window_30m_dropoff_zip", "dropoff_is_weekend")


def is_weekend(moment: date | datetime) -> bool:
    """Saturday or Sunday."""
    return moment.weekday() >= 5


def compute_features_fn(
    input_df: Any, timestamp_column: str, start_date: date | None, end_date: date | None
) -> Any:
    """One row per (zip, window end): the features, keyed by ``zip`` and ``timestamp_column``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType

    df = input_df
    if start_date is not None:
        df = df.filter(F.col(timestamp_column) >= F.lit(start_date.isoformat()))
    if end_date is not None:
        df = df.filter(F.col(timestamp_column) < F.lit(end_date.isoformat()))
    window = F.window(
        timestamp_column, f"{DROPOFF_WINDOW_MINUTES} minutes", f"{DROPOFF_SLIDE_MINUTES} minutes"
    )
    weekend = F.udf(is_weekend, BooleanType())
    return (
        df.groupBy(F.col("dropoff_zip").alias("zip"), window.alias("window"))
        .agg(F.count("*").cast("int").alias(FEATURE_NAMES[0]))
        .select(
            "zip",
            F.col("window.end").alias(timestamp_column),
            F.col(FEATURE_NAMES[0]),
            weekend(F.col("window.end")).alias(FEATURE_NAMES[1]),
        )
    )
