"""What "good enough to deploy" means for this model: custom metrics, thresholds, the evaluator
configuration and the pass/fail decision of the ModelValidation notebook.

The job's base parameters name the loader functions (``custom_metrics_loader_function`` and so
on), so another set-up is another function here plus a changed parameter. Everything except
:func:`custom_metrics` is plain Python and unit tested in ``tests/test_validation.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

RUN_MODES = ("disabled", "dry_run", "enabled")

# Values of the model version tag utils.VALIDATION_STATUS_TAG.
PASSED = "PASSED"
FAILED = "FAILED"
FAILED_DRY_RUN = "FAILED_DRY_RUN"
SKIPPED = "SKIPPED"

# A prediction this close to the real fare (in dollars) counts as accurate.
ACCURATE_WITHIN = 2.0


def within_tolerance_rate(
    predictions: Sequence[float], targets: Sequence[float], tolerance: float = ACCURATE_WITHIN
) -> float:
    """Share of predictions within ``tolerance`` of the target: a metric a fare estimate shown to
    riders cares about more than the squared error does."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    if not predictions:
        raise ValueError("no predictions to evaluate")
    hits = sum(1 for p, t in zip(predictions, targets, strict=True) if abs(p - t) <= tolerance)
    return hits / len(predictions)


def custom_metrics() -> list:
    """Extra metrics for ``mlflow.evaluate`` (MLflow is imported here, not at module level)."""
    from mlflow.metrics import MetricValue, make_metric

    def _rate(predictions, targets, metrics):  # pandas Series in, MetricValue out
        rate = within_tolerance_rate(list(predictions), list(targets))
        return MetricValue(aggregate_results={"within_tolerance_rate": rate})

    return [make_metric(eval_fn=_rate, greater_is_better=True, name="within_tolerance_rate")]


@dataclass(frozen=True)
class Threshold:
    """A bound on one metric; optionally also a minimum improvement over the deployed model
    (used when baseline comparison is enabled and a deployed model exists)."""

    metric: str
    limit: float
    higher_is_better: bool
    min_absolute_change: float | None = None
    min_relative_change: float | None = None

    def check(self, value: float | None, baseline: float | None = None) -> list[str]:
        """Why ``value`` fails this threshold; an empty list means it passes."""
        if value is None:
            return [f"{self.metric}: the evaluation did not produce this metric"]
        problems = []
        worse = value < self.limit if self.higher_is_better else value > self.limit
        if worse:
            bound = "at least" if self.higher_is_better else "at most"
            problems.append(f"{self.metric}: {value:g} should be {bound} {self.limit:g}")
        if baseline is not None:
            gain = value - baseline if self.higher_is_better else baseline - value
            if self.min_absolute_change is not None and gain < self.min_absolute_change:
                problems.append(
                    f"{self.metric}: improves on the deployed model ({baseline:g}) by {gain:g}, "
                    f"less than {self.min_absolute_change:g}"
                )
            if self.min_relative_change is not None:
                relative = gain / abs(baseline) if baseline else float("inf")
                if relative < self.min_relative_change:
                    problems.append(
                        f"{self.metric}: improves on the deployed model by {relative:.1%}, "
                        f"less than {self.min_relative_change:.1%}"
                    )
        return problems


def validation_thresholds() -> list[Threshold]:
    """The bounds a new model must meet (metric names as ``mlflow.evaluate`` reports them)."""
    return [
        Threshold("root_mean_squared_error", limit=20.0, higher_is_better=False),
        Threshold(
            "mean_absolute_error",
            limit=15.0,
            higher_is_better=False,
            min_absolute_change=0.0,
        ),
        Threshold("within_tolerance_rate", limit=0.2, higher_is_better=True),
    ]


def evaluator_config() -> dict:
    """Settings for MLflow's default evaluator (no SHAP explanations: they are slow)."""
    return {"log_model_explainability": False}


def load_function(module: object, name: str) -> Callable:
    """The loader function a base parameter names, with a clear error for a typo."""
    function = getattr(module, name, None)
    if not callable(function):
        raise ValueError(f"validation/validation.py has no function {name!r}")
    return function


def find_metric(metrics: Mapping[str, float], name: str) -> float | None:
    """A metric from ``mlflow.evaluate`` results. Custom metrics may be reported under
    ``<name>/<aggregation>``; a single such entry counts as the metric itself."""
    if name in metrics:
        return metrics[name]
    nested = [key for key in metrics if key.startswith(f"{name}/")]
    return metrics[nested[0]] if len(nested) == 1 else None


def check_thresholds(
    metrics: Mapping[str, float],
    thresholds: Sequence[Threshold],
    baseline: Mapping[str, float] | None = None,
) -> list[str]:
    """Every threshold violation of a candidate's metrics (and against the deployed model's
    metrics when ``baseline`` is given)."""
    problems = []
    for threshold in thresholds:
        base = find_metric(baseline, threshold.metric) if baseline is not None else None
        problems += threshold.check(find_metric(metrics, threshold.metric), base)
    return problems


@dataclass(frozen=True)
class Outcome:
    """The tag value to record on the model version and whether the job must stop here."""

    status: str
    stop_job: bool


def check_run_mode(run_mode: str) -> str:
    if run_mode not in RUN_MODES:
        raise ValueError(f"run_mode {run_mode!r} is not one of {', '.join(RUN_MODES)}")
    return run_mode


def validation_outcome(run_mode: str, problems: Sequence[str]) -> Outcome:
    """``enabled`` stops a failing model; ``dry_run`` records the failure and lets deployment
    go ahead; ``disabled`` never validates."""
    check_run_mode(run_mode)
    if run_mode == "disabled":
        return Outcome(SKIPPED, stop_job=False)
    if not problems:
        return Outcome(PASSED, stop_job=False)
    if run_mode == "dry_run":
        return Outcome(FAILED_DRY_RUN, stop_job=False)
    return Outcome(FAILED, stop_job=True)
