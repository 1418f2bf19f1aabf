"""Promote a validated model version so batch inference picks it up.

This project uses the workspace model registry: the deployed version is the one in the target's
stage ("Production" for prod, "Staging" elsewhere); promoting a version moves it into that
stage and archives the version it replaces.

:func:`decide` is the whole policy, in plain Python; :func:`deploy` applies it through an
``MlflowClient`` (any object with the same methods, which is how the unit tests drive it).
Like every module of the project, it imports from the project root (notebooks put the root on
``sys.path``; pytest does it through ``pyproject.toml``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from utils import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    USES_UNITY_CATALOG,
    VALIDATION_STATUS_TAG,
    check_env,
    model_stage_for_env,
)
from validation.validation import FAILED


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(candidate: int, validation_status: str | None, deployed: int | None) -> Decision:
    """Whether to promote version ``candidate`` over the ``deployed`` one (None: nothing is
    deployed yet).

    A version that failed an enforced validation is never promoted. An older version than the
    deployed one is not promoted either: that is a rerun of an old training run, and rolling
    back is a decision for a person, not for a schedule.
    """
    if validation_status == FAILED:
        return Decision(False, f"version {candidate} failed validation; it stays undeployed")
    if deployed is None:
        return Decision(True, f"version {candidate} is the first version to deploy")
    if candidate == deployed:
        return Decision(False, f"version {candidate} is already deployed")
    if candidate < deployed:
        return Decision(
            False,
            f"version {candidate} is older than the deployed version {deployed}; roll back by "
            "hand if you mean to",
        )
    return Decision(True, f"version {candidate} replaces version {deployed}")


def deployed_version(
    client: Any, model_name: str, env: str, uc: bool = USES_UNITY_CATALOG
) -> int | None:
    """The version serving ``env`` now, or None."""
    if uc:
        aliases = client.get_registered_model(model_name).aliases or {}
        version = aliases.get(CHAMPION_ALIAS)
        return int(version) if version is not None else None
    current = client.get_latest_versions(model_name, stages=[model_stage_for_env(env)])
    return max((int(v.version) for v in current), default=None)


def deploy(
    client: Any, model_name: str, version: int | str, env: str, uc: bool = USES_UNITY_CATALOG
) -> Decision:
    """Promote ``version`` of ``model_name`` in ``env`` if :func:`decide` says so."""
    check_env(env)
    candidate = int(version)
    model_version = client.get_model_version(model_name, str(candidate))
    status = (model_version.tags or {}).get(VALIDATION_STATUS_TAG)
    decision = decide(candidate, status, deployed_version(client, model_name, env, uc))
    if not decision.promote:
        return decision
    if uc:
        client.set_registered_model_alias(model_name, CHAMPION_ALIAS, str(candidate))
        if CHALLENGER_ALIAS in (model_version.aliases or []):
            client.delete_registered_model_alias(model_name, CHALLENGER_ALIAS)
    else:
        client.transition_model_version_stage(
            model_name, str(candidate), model_stage_for_env(env), archive_existing_versions=True
        )
    return decision
