"""Pickup features: per pickup zip, the mean fare and the number of trips over the last hour,
refreshed every 15 minutes. Run by GenerateAndWriteFeatures with
``features_transform_module: pickup_features``."""

from __future__ import annotations

from datetime import date
from typing import Any

from feature_engineering.windows import PICKUP_SLIDE_MINUTES, PICKUP_WINDOW_MINUTES

FEATURE_NAMES = ("mean_fare_window_1h_pickup_zip", "count_trips_window_1h_pickup_zip")


def compute_features_fn(
    input_df: Any, timestamp_column: str, start_date: date | None, end_date: date | None
) -> Any:
    """One row per (zip, window end): the features, keyed by ``zip`` and ``timestamp_column``."""
    from pyspark.sql import functions as F

    df = input_df
    if start_date is not None:
        df = df.filter(F.col(timestamp_column) >= F.lit(start_date.isoformat()))
    if end_date is not None:
        df = df.filter(F.col(timestamp_column) < F.lit(end_date.isoformat()))
    window = F.window(
        timestamp_column, f"{PICKUP_WINDOW_MINUTES} minutes", f"{PICKUP_SLIDE_MINUTES} minutes"
    )
    return (
        df.groupBy(F.col("pickup_zip").alias("zip"), window.alias("window"))
        .agg(
            F.mean("fare_amount").alias(FEATURE_NAMES[0]),
            F.count("*").cast("int").alias(FEATURE_NAMES[1]),
        )
        .select(
            "zip",
            F.col("window.end").alias(timestamp_column),
            *FEATURE_NAMES,
        )
    )
