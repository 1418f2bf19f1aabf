"""Unit tests of monitoring/metric_check.py: when the retraining job retrains."""

import pytest

from monitoring.metric_check import MetricRule, metric_query, profile_metrics_table

RMSE = MetricRule("root_mean_squared_error", 100.0, False, 5, 2)


def test_two_bad_windows_out_of_five_trigger_retraining():
    assert RMSE.should_retrain([120.0, 90.0, 130.0, 80.0, 70.0])
    assert not RMSE.should_retrain([120.0, 90.0, 100.0, 80.0, 70.0])


def test_only_the_latest_windows_count():
    # newest first: the two violations are older than the five windows evaluated
    assert not RMSE.should_retrain([1.0, 1.0, 1.0, 1.0, 1.0, 500.0, 500.0])


def test_missing_values_are_not_violations():
    assert not RMSE.should_retrain([None, None, 150.0])
    assert RMSE.should_retrain([None, 150.0, 150.0])


def test_higher_is_better_metric():
    r2 = MetricRule("r2_score", 0.5, True, 3, 1)
    assert r2.should_retrain([0.9, 0.4, 0.9])
    assert not r2.should_retrain([0.9, 0.5, 0.9])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "rmse; DROP TABLE x"}, "is not a column name"),
        ({"num_evaluation_windows": 0, "num_violation_windows": 0}, "at least 1"),
        ({"num_violation_windows": 6}, "between 1 and num_evaluation_windows"),
    ],
)
def test_bad_rules_are_refused(kwargs, message):
    settings = {
        "metric": "root_mean_squared_error",
        "threshold": 1.0,
        "higher_is_better": False,
        "num_evaluation_windows": 5,
        "num_violation_windows": 2,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        MetricRule(**settings)


def test_query_reads_the_profile_metrics_of_the_table():
    assert profile_metrics_table("dev.churn.predictions") == "dev.churn.predictions_profile_metrics"
    query = metric_query("dev.churn.predictions", RMSE)
    assert "root_mean_squared_error AS value" in query
    assert "FROM dev.churn.predictions_profile_metrics" in query
    assert query.endswith("ORDER BY window.end DESC LIMIT 5")


def test_query_refuses_a_bad_table_name():
    for bad in ("predictions", "dev.churn", "dev.churn.x; DROP TABLE y"):
        with pytest.raises(ValueError, match="catalog.schema.table"):
            profile_metrics_table(bad)
