"""Train once, promote: copy the version staging validated into prod's catalog.

With this layout the model is trained (and validated and deployed) in staging only. Prod does not
retrain: ``model_promotion_job`` copies staging's ``champion`` version into prod's registered
model with MLflow's ``copy_model_version`` (both catalogs share one Unity Catalog metastore) and
points prod's ``champion`` alias at the copy, which batch inference then scores with.

:func:`plan` is the whole policy, in plain Python; :func:`promote` applies it through an
``MlflowClient`` (any object with the same methods, which is how the unit tests drive it).
Every copy carries a tag naming the version it came from, so running the job again does not copy
the same version twice, and a prod version can always be traced back to its training run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from utils import CHAMPION_ALIAS, VALIDATION_STATUS_TAG, check_env
from validation.validation import PASSED

# The environment each promoted environment takes its model from.
SOURCE_ENV = {"prod": "staging"}
# Tag on a copied version: "<source model>/<source version>".
PROMOTED_FROM_TAG = "promoted_from"

COPY = "copy"  # copy the source version, then alias the copy
ALIAS = "alias"  # the source version was copied before: alias that copy
NOTHING = "nothing"


@dataclass(frozen=True)
class Plan:
    action: str  # COPY, ALIAS or NOTHING
    reason: str
    version: int | None = None  # the destination version to alias (ALIAS, or NOTHING when live)
    ok: bool = True  # False: promotion was refused (the job run should fail and say why)


def origin(source_model: str, source_version: int | str) -> str:
    """The value of :data:`PROMOTED_FROM_TAG` for a copy of ``source_version``."""
    return f"{source_model}/{int(source_version)}"


def plan(
    source_model: str,
    source_version: int | str | None,
    validation_status: str | None,
    copies: dict[int, str | None],
    live: int | None,
) -> Plan:
    """What to do to serve ``source_version`` of ``source_model`` in the destination.

    ``copies`` maps each destination version to its :data:`PROMOTED_FROM_TAG` (None for a
    version not made by promotion); ``live`` is the destination version the alias points at now.
    Only a version whose validation PASSED is promoted: prod does not validate again, and a
    dry-run failure in staging must not reach it.
    """
    if source_version is None:
        return Plan(
            NOTHING,
            f"{source_model} has no {CHAMPION_ALIAS!r} version yet: run the training job in "
            f"{SOURCE_ENV['prod']} first",
            ok=False,
        )
    source_version = int(source_version)
    if validation_status != PASSED:
        return Plan(
            NOTHING,
            f"{source_model} version {source_version} did not pass validation (status "
            f"{validation_status or 'none recorded'}); only a version that passed is promoted "
            "(set the validation run_mode to dry_run or enabled where it trains)",
            ok=False,
        )
    wanted = origin(source_model, source_version)
    earlier = sorted(v for v, tag in copies.items() if tag == wanted)
    if not earlier:
        return Plan(COPY, f"copies {wanted} into a new version and serves it")
    version = earlier[-1]
    if live == version:
        return Plan(NOTHING, f"version {version} ({wanted}) is already served", version)
    return Plan(ALIAS, f"{wanted} was copied before as version {version}: serves it again", version)


def _copies(client: Any, model_name: str) -> dict[int, str | None]:
    """Destination version -> the version it was promoted from (None for other versions)."""
    found = {}
    for listed in client.search_model_versions(f"name='{model_name}'"):
        version = client.get_model_version(model_name, str(listed.version))
        found[int(listed.version)] = (version.tags or {}).get(PROMOTED_FROM_TAG)
    return found


def _aliased(client: Any, model_name: str, alias: str) -> int | None:
    version = (client.get_registered_model(model_name).aliases or {}).get(alias)
    return int(version) if version is not None else None


def promote(
    client: Any,
    source_model: str,
    model_name: str,
    env: str,
    alias: str = CHAMPION_ALIAS,
    source_alias: str = CHAMPION_ALIAS,
) -> Plan:
    """Serve ``source_model@source_alias`` as ``model_name@alias`` in ``env``, copying it with
    ``copy_model_version`` unless a copy exists already. Returns what was done and why."""
    if check_env(env) not in SOURCE_ENV:
        raise ValueError(
            f"environment {env!r} trains its own model; promotion serves "
            f"{', '.join(SOURCE_ENV)} only"
        )
    if source_model == model_name:
        raise ValueError(f"source and destination are both {model_name!r}: nothing to promote")
    source_version = _aliased(client, source_model, source_alias)
    status = None
    if source_version is not None:
        tags = client.get_model_version(source_model, str(source_version)).tags or {}
        status = tags.get(VALIDATION_STATUS_TAG)
    decision = plan(
        source_model,
        source_version,
        status,
        _copies(client, model_name),
        _aliased(client, model_name, alias),
    )
    if decision.action == COPY:
        uri = f"models:/{source_model}/{source_version}"
        copied = client.copy_model_version(src_model_uri=uri, dst_name=model_name)
        version = str(copied.version)
        wanted = origin(source_model, source_version)
        client.set_model_version_tag(model_name, version, PROMOTED_FROM_TAG, wanted)
        client.set_model_version_tag(model_name, version, VALIDATION_STATUS_TAG, status)
        client.set_registered_model_alias(model_name, alias, version)
        return Plan(COPY, f"copied {wanted} as version {version} and serves it", int(version))
    if decision.action == ALIAS:
        client.set_registered_model_alias(model_name, alias, str(decision.version))
    return decision
