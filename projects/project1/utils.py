"""Helpers shared by the notebooks of project1.

Plain Python on purpose: the unit tests in tests/ run them with pytest alone (no Spark, MLflow
or workspace). Code that needs those libraries imports them inside the function using them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PROJECT_NAME = "project1"

# Whether this project registers its model in Unity Catalog (chosen when it was created).
USES_UNITY_CATALOG = False

# Bundle targets (databricks.yml); each one is an environment the jobs run in.
ENVIRONMENTS = ("dev", "staging", "prod", "test")

# Unity Catalog aliases: validation marks a new version "challenger", deployment promotes it to
# "champion", the alias batch inference loads.
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"

# The example model: predict a taxi fare from the trip distance and its pickup/dropoff zips.
LABEL_COLUMN = "fare_amount"
RAW_FEATURE_COLUMNS = ("trip_distance", "pickup_zip", "dropoff_zip")

# Model version tag the validation notebook writes and the deployment notebook reads.
VALIDATION_STATUS_TAG = "model_validation_status"


def check_env(env: str) -> str:
    """Refuse an environment name that is not a bundle target (a typo would otherwise deploy
    to the wrong stage)."""
    if env not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {env!r}; expected one of {', '.join(ENVIRONMENTS)}")
    return env


def model_stage_for_env(env: str) -> str:
    """Workspace model registry stage a target deploys to: prod serves "Production", every
    other target "Staging"."""
    return "Production" if check_env(env) == "prod" else "Staging"


def default_model_name(env: str) -> str:
    """The model name the jobs of ``env`` use (databricks.yml), for running a notebook by hand."""
    check_env(env)
    return f"{env}-{PROJECT_NAME}-model"


def default_experiment_name(user: str, env: str) -> str:
    """The experiment the jobs of ``env`` log to when deployed by ``user`` (databricks.yml)."""
    check_env(env)
    return f"/Users/{user}/{env}-{PROJECT_NAME}-experiment"


def parse_bool(text: str | bool) -> bool:
    """Notebook widgets are strings: accept true/false, yes/no, 1/0 (any case)."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_git_source_info(text: str) -> dict[str, str]:
    """``url:...;branch:...;commit:...`` (from the job's base parameters) as a dict of run
    tags. Empty parts, as when deploying from outside a git checkout, are left out."""
    info = {}
    for part in text.split(";"):
        key, sep, value = part.strip().partition(":")
        if sep and key.strip() and value.strip():
            info[f"git_{key.strip()}"] = value.strip()
    return info


def latest_version(versions: Iterable[Any]) -> int:
    """Highest version number among MLflow model versions (objects with ``.version``)."""
    numbers = [int(v.version) for v in versions]
    if not numbers:
        raise ValueError("the model has no versions yet; run the training task first")
    return max(numbers)
