"""Unit tests of validation/validation.py: the custom metric, thresholds and run modes."""

import pytest

from validation import validation
from validation.validation import Threshold


def test_within_tolerance_rate():
    assert validation.within_tolerance_rate([10.0, 12.5, 20.0], [11.0, 10.0, 20.0]) == 2 / 3
    assert validation.within_tolerance_rate([1.0], [5.0], tolerance=4.0) == 1.0


def test_within_tolerance_rate_refuses_bad_input():
    with pytest.raises(ValueError, match="2 predictions for 1 targets"):
        validation.within_tolerance_rate([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="no predictions"):
        validation.within_tolerance_rate([], [])


def test_lower_is_better_threshold():
    rmse = Threshold("root_mean_squared_error", limit=5.0, higher_is_better=False)
    assert rmse.check(4.0) == []
    assert rmse.check(5.0) == []
    assert rmse.check(6.0) == ["root_mean_squared_error: 6 should be at most 5"]


def test_higher_is_better_threshold():
    rate = Threshold("within_tolerance_rate", limit=0.5, higher_is_better=True)
    assert rate.check(0.7) == []
    assert rate.check(0.4) == ["within_tolerance_rate: 0.4 should be at least 0.5"]


def test_missing_metric_fails():
    rmse = Threshold("root_mean_squared_error", limit=5.0, higher_is_better=False)
    problems = rmse.check(None)
    assert problems == ["root_mean_squared_error: the evaluation did not produce this metric"]


def test_baseline_comparison():
    mae = Threshold("mean_absolute_error", 10.0, higher_is_better=False, min_absolute_change=0.5)
    assert mae.check(3.0, baseline=4.0) == []
    problems = mae.check(3.8, baseline=4.0)
    assert len(problems) == 1 and "by 0.2, less than 0.5" in problems[0]
    relative = Threshold("r2_score", 0.0, higher_is_better=True, min_relative_change=0.1)
    assert relative.check(0.9, baseline=0.8) == []
    assert "less than 10.0%" in relative.check(0.85, baseline=0.8)[0]


def test_check_thresholds_collects_every_problem():
    thresholds = validation.validation_thresholds()
    good = {"root_mean_squared_error": 3, "mean_absolute_error": 2, "within_tolerance_rate": 0.6}
    assert validation.check_thresholds(good, thresholds) == []
    bad = {"root_mean_squared_error": 30.0, "mean_absolute_error": 2.0}
    failed = [p.split(":")[0] for p in validation.check_thresholds(bad, thresholds)]
    assert failed == ["root_mean_squared_error", "within_tolerance_rate"]


def test_check_thresholds_against_a_better_baseline():
    thresholds = validation.validation_thresholds()
    baseline = {
        "root_mean_squared_error": 3,
        "mean_absolute_error": 2,
        "within_tolerance_rate": 0.6,
    }
    candidate = {**baseline, "mean_absolute_error": 2.5}
    problems = validation.check_thresholds(candidate, thresholds, baseline)
    assert problems and problems[0].startswith("mean_absolute_error: improves on the deployed")


def test_custom_metric_names_are_found():
    metrics = {"within_tolerance_rate/within_tolerance_rate": 0.4, "r2_score": 0.9}
    assert validation.find_metric(metrics, "within_tolerance_rate") == 0.4
    assert validation.find_metric(metrics, "r2_score") == 0.9
    assert validation.find_metric(metrics, "max_error") is None


@pytest.mark.parametrize(
    ("run_mode", "problems", "status", "stop"),
    [
        ("disabled", ["bad"], validation.SKIPPED, False),
        ("dry_run", [], validation.PASSED, False),
        ("dry_run", ["bad"], validation.FAILED_DRY_RUN, False),
        ("enabled", [], validation.PASSED, False),
        ("enabled", ["bad"], validation.FAILED, True),
    ],
)
def test_validation_outcome(run_mode, problems, status, stop):
    outcome = validation.validation_outcome(run_mode, problems)
    assert (outcome.status, outcome.stop_job) == (status, stop)


def test_unknown_run_mode_is_refused():
    with pytest.raises(ValueError, match="run_mode 'on' is not one of"):
        validation.validation_outcome("on", [])


def test_loader_functions_named_by_the_job_exist():
    for name in ("custom_metrics", "validation_thresholds", "evaluator_config"):
        assert callable(validation.load_function(validation, name))
    with pytest.raises(ValueError, match="no function 'custom_metric'"):
        validation.load_function(validation, "custom_metric")
    assert validation.evaluator_config() == {"log_model_explainability": False}
