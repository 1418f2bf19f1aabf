"""Should the model be retrained? The decision behind the monitoring retraining job.

The quality monitor (``resources/monitoring-resource.yml``) writes, per time window, model
quality metrics of the predictions table to ``<table>_profile_metrics``. The check reads the
last ``num_evaluation_windows`` windows of one metric and calls for retraining when at least
``num_violation_windows`` of them are worse than the threshold. One bad window is noise; a
run of them is drift. Plain Python except :func:`recent_metric_values`, which queries Spark.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TABLE_PART = re.compile(r"^(`[^`]+`|[A-Za-z0-9_-]+)$")


@dataclass(frozen=True)
class MetricRule:
    """When a metric counts as violated (see the module docstring)."""

    metric: str
    threshold: float
    higher_is_better: bool
    num_evaluation_windows: int
    num_violation_windows: int

    def __post_init__(self) -> None:
        if not _IDENTIFIER.match(self.metric):
            raise ValueError(f"metric {self.metric!r} is not a column name of the metrics table")
        if self.num_evaluation_windows < 1:
            raise ValueError("num_evaluation_windows must be at least 1")
        if not 1 <= self.num_violation_windows <= self.num_evaluation_windows:
            raise ValueError(
                "num_violation_windows must be between 1 and num_evaluation_windows "
                f"({self.num_evaluation_windows}), got {self.num_violation_windows}"
            )

    def is_violation(self, value: float | None) -> bool:
        """One window's value is worse than the threshold (a missing value is not)."""
        if value is None:
            return False
        return value < self.threshold if self.higher_is_better else value > self.threshold

    def should_retrain(self, recent_values: Sequence[float | None]) -> bool:
        """``recent_values``: the metric of the latest windows, newest first."""
        window = list(recent_values)[: self.num_evaluation_windows]
        return sum(1 for v in window if self.is_violation(v)) >= self.num_violation_windows


def profile_metrics_table(table_name: str) -> str:
    """The monitor's profile metrics table of a monitored ``catalog.schema.table``."""
    parts = table_name.split(".")
    if len(parts) != 3 or not all(_TABLE_PART.match(p) for p in parts):
        raise ValueError(f"{table_name!r} is not a catalog.schema.table name")
    return f"{table_name}_profile_metrics"


def metric_query(table_name: str, rule: MetricRule) -> str:
    """SQL for the metric of the latest windows, newest first: the table-level row of each
    window (no slice, all model versions) of the monitor's input data."""
    return (
        f"SELECT window.end AS window_end, {rule.metric} AS value "
        f"FROM {profile_metrics_table(table_name)} "
        "WHERE column_name = ':table' AND slice_key IS NULL AND model_id = '*' "
        "AND log_type = 'INPUT' "
        f"ORDER BY window.end DESC LIMIT {int(rule.num_evaluation_windows)}"
    )


def recent_metric_values(spark: Any, table_name: str, rule: MetricRule) -> list[float | None]:
    """Run :func:`metric_query`; values newest first."""
    rows = spark.sql(metric_query(table_name, rule)).collect()
    return [None if row["value"] is None else float(row["value"]) for row in rows]
