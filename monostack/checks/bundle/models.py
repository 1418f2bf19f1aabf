"""Every resource fits its typed model in ``databricks-bundles`` (fields, types, enums)."""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from enum import Enum
from types import NoneType, UnionType
from typing import Any

from monostack.bundle import (
    Loc,
    Path_,
    Problem,
    TargetView,
    YMap,
    YSeq,
    describe,
    format_path,
    is_pure_reference,
    iter_strings,
    loc_of,
    plain,
)
from monostack.checks import WARNING
from monostack.checks.bundle.common import suggest, unknown_field

# Resource type (the key under `resources:`) -> typed model in databricks-bundles.
RESOURCE_CLASSES = {
    "alerts": ("alerts", "Alert"),
    "apps": ("apps", "App"),
    "catalogs": ("catalogs", "Catalog"),
    "cluster_policies": ("cluster_policies", "ClusterPolicy"),
    "clusters": ("clusters", "Cluster"),
    "dashboards": ("dashboards", "Dashboard"),
    "database_catalogs": ("database_catalogs", "DatabaseCatalog"),
    "database_instances": ("database_instances", "DatabaseInstance"),
    "experiments": ("experiments", "MlflowExperiment"),
    "external_locations": ("external_locations", "ExternalLocation"),
    "features": ("features", "Feature"),
    "genie_spaces": ("genie_spaces", "GenieSpace"),
    "instance_pools": ("instance_pools", "InstancePool"),
    "job_runs": ("job_runs", "JobRun"),
    "jobs": ("jobs", "Job"),
    "mcp_services": ("mcp_services", "McpService"),
    "model_provider_services": ("model_provider_services", "ModelProviderService"),
    "model_services": ("model_services", "ModelService"),
    "model_serving_endpoints": ("model_serving_endpoints", "ModelServingEndpoint"),
    "models": ("models", "MlflowModel"),
    "pipelines": ("pipelines", "Pipeline"),
    "quality_monitors": ("quality_monitors", "QualityMonitor"),
    "registered_models": ("registered_models", "RegisteredModel"),
    "schemas": ("schemas", "Schema"),
    "secret_scopes": ("secret_scopes", "SecretScope"),
    "secrets": ("secrets", "Secret"),
    "sql_warehouses": ("sql_warehouses", "SqlWarehouse"),
    "synced_database_tables": ("synced_database_tables", "SyncedDatabaseTable"),
    "vector_search_endpoints": ("vector_search_endpoints", "VectorSearchEndpoint"),
    "vector_search_indexes": ("vector_search_indexes", "VectorSearchIndex"),
    "volumes": ("volumes", "Volume"),
}
# Types the CLI accepts that this databricks-bundles version has no model for (not type-checked).
UNTYPED_RESOURCE_TYPES = (
    "postgres_branches",
    "postgres_catalogs",
    "postgres_databases",
    "postgres_endpoints",
    "postgres_projects",
    "postgres_roles",
    "postgres_synced_tables",
)

_MISSING = "is missing the required field"
_KNOWN_RESOURCE_TYPES = frozenset(RESOURCE_CLASSES) | frozenset(UNTYPED_RESOURCE_TYPES)


def known_resource_types() -> frozenset[str]:
    return _KNOWN_RESOURCE_TYPES


@functools.cache
def resource_class(rtype: str) -> type | None:
    """The databricks-bundles dataclass for a resource type, or None when there is none (a type
    this monostack does not map, or a databricks-bundles without that module)."""
    import importlib

    spec = RESOURCE_CLASSES.get(rtype)
    if spec is None:
        return None
    try:
        module = importlib.import_module(f"databricks.bundles.{spec[0]}")
    except ImportError:  # pragma: no cover - depends on the installed version
        return None
    return getattr(module, spec[1], None)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _fields(cls: type) -> tuple[dict[str, dataclasses.Field], tuple[str, ...]]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = tuple(
        f.name
        for f in fields.values()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    return fields, required


def _is_variable(tp: Any) -> bool:
    from databricks.bundles.core import Variable

    return typing.get_origin(tp) is Variable


# The strings the CLI takes for a boolean field (libs/dyn/convert: normalizeBool, after yaml.v3).
_TRUE_FALSE = frozenset(
    ("true", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON")
    + ("false", "n", "N", "no", "No", "NO", "off", "Off", "OFF")
)


def _type_errors(tp: Any, value: Any, path: Path_, loc: Loc, out: list[Problem]) -> None:
    """Check ``value`` against a databricks-bundles type annotation, collecting problems;
    deploy-time references (``${...}``) are accepted."""
    if tp is Any:
        return
    where = format_path(path)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, UnionType):
        args = typing.get_args(tp)
        if is_pure_reference(value) and any(_is_variable(a) for a in args):
            return
        concrete = [a for a in args if a is not NoneType and not _is_variable(a)]
        if value is None and (
            NoneType in args or any(typing.get_origin(a) in (list, dict) for a in concrete)
        ):
            return
        if concrete:
            _type_errors(concrete[0], value, path, loc, out)
        return
    if dataclasses.is_dataclass(tp):
        name = tp.__name__
        if not isinstance(value, dict):
            out.append(Problem(*loc, f"{where} must be a mapping ({name}), got {describe(value)}"))
            return
        fields, required = _fields(tp)
        hints = _hints(tp)
        for key, item in value.items():
            item_loc = loc_of(value, key, loc)
            if key not in fields:
                problem = unknown_field(value, key, fields, f"{where} ({name})")
                if problem is not None:
                    out.append(problem)
                continue
            _type_errors(hints[key], item, (*path, key), item_loc, out)
        for key in required:
            if key not in value:
                out.append(Problem(*loc, f"{where} ({name}) {_MISSING} {key!r}"))
        return
    if origin in (list, dict):
        if value is None:
            return
        kind, want = (list, "a list") if origin is list else (dict, "a mapping")
        if not isinstance(value, kind):
            out.append(Problem(*loc, f"{where} must be {want}, got {describe(value)}"))
            return
        item_tp = typing.get_args(tp)[-1]
        for key, item in enumerate(value) if origin is list else value.items():
            _type_errors(item_tp, item, (*path, key), loc_of(value, key, loc), out)
        return
    deferred = isinstance(value, str) and "${" in value
    if tp is str:
        if isinstance(value, (dict, list)):
            out.append(Problem(*loc, f"{where} must be a string, got {describe(value)}"))
    elif tp is bool:
        word = isinstance(value, str) and value in _TRUE_FALSE
        if not (isinstance(value, bool) or deferred or word):
            out.append(Problem(*loc, f"{where} must be true or false, got {describe(value)}"))
    elif tp is int:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or deferred
        ok = ok or (isinstance(value, float) and value.is_integer())
        ok = ok or (isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()) is not None)
        if not ok:
            out.append(Problem(*loc, f"{where} must be an integer, got {describe(value)}"))
    elif tp is float:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or deferred
        if not ok and isinstance(value, str):
            try:
                float(value)
                ok = True
            except ValueError:
                ok = False
        if not ok:
            out.append(Problem(*loc, f"{where} must be a number, got {describe(value)}"))
    elif isinstance(tp, type) and issubclass(tp, Enum):
        allowed = [str(member.value) for member in tp]
        if not deferred and (isinstance(value, (dict, list)) or str(value) not in allowed):
            out.append(
                Problem(
                    *loc,
                    f"{where}: {describe(value)} is not a valid {tp.__name__}; use one of: "
                    f"{', '.join(allowed)}",
                )
            )


def _has_deferred(value: Any) -> bool:
    """True when a value holds a ``${...}`` inside a longer string (resolved at deploy time)."""
    return any(
        "${" in text and not is_pure_reference(text)
        for _, text, _ in iter_strings(value, ("", None))
    )


def _fingerprint(value: Any) -> Any:
    """A hashable key of a value and the locations it was read from: two targets' merged copies
    of one unchanged resource share it, so their type check runs once."""
    if isinstance(value, dict):
        locs = value.locs if isinstance(value, YMap) else {}
        return ("m", tuple((k, locs.get(k), _fingerprint(v)) for k, v in value.items()))
    if isinstance(value, list):
        locs = value.locs if isinstance(value, YSeq) else []
        return ("s", tuple(locs), tuple(_fingerprint(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return ("r", repr(value))
    return ("v", type(value).__name__, value)


def check_resource_models(
    view: TargetView, memo: dict[Any, list[Problem]] | None = None
) -> list[Problem]:
    resources = view.doc.get("resources")
    if not isinstance(resources, dict):
        return []
    out = []
    try:
        import databricks.bundles.core  # noqa: F401
    except ImportError:  # pragma: no cover - it is a declared dependency
        file, line = view.doc.loc
        return [
            Problem(
                file,
                line,
                "databricks-bundles is not installed; resources "
                "were not type-checked (pip install databricks-bundles)",
                WARNING,
            )
        ]
    for rtype, group in resources.items():
        file, line = loc_of(resources, rtype, view.doc.loc)
        if rtype not in known_resource_types() and resource_class(str(rtype)) is None:
            out.append(
                Problem(
                    file,
                    line,
                    f"unknown resource type resources.{rtype} "
                    f"({suggest(str(rtype), known_resource_types())})",
                )
            )
            continue
        if group is None:
            continue
        if not isinstance(group, dict):
            out.append(
                Problem(
                    file,
                    line,
                    f"resources.{rtype} must be a mapping of resource keys, got {describe(group)}",
                )
            )
            continue
        cls = resource_class(str(rtype))
        if cls is None:
            continue
        for key, resource in group.items():
            rloc = loc_of(group, key, (file, line))
            if memo is None:
                out += _check_one_resource(cls, str(rtype), str(key), resource, rloc)
                continue
            memo_key = (rtype, key, rloc, _fingerprint(resource))
            if memo_key not in memo:
                memo[memo_key] = _check_one_resource(cls, str(rtype), str(key), resource, rloc)
            out += memo[memo_key]
    return out


def _check_one_resource(cls: type, rtype: str, key: str, resource: Any, rloc: Loc) -> list[Problem]:
    """Type-check one resource against its databricks-bundles class."""
    out: list[Problem] = []
    _type_errors(cls, resource, ("resources", rtype, key), rloc, out)
    if isinstance(resource, dict) and "file_path" in resource:
        # defined in a file (a dashboard's .lvdash.json, an alert's .dbalert.json): the fields
        # that file holds are not missing; the paths check looks for the file itself
        where = f"resources.{rtype}.{key} ("
        return [
            p for p in out if not (p.message.startswith(where) and "required field" in p.message)
        ]
    if out or not isinstance(resource, dict) or _has_deferred(resource):
        return out  # the backstop below would only repeat what is found (unknown fields too)
    try:  # the library's own parser, as a backstop for anything the walk above misses
        cls.from_dict(plain(resource))
    except Exception as exc:  # noqa: BLE001 - any rejection is a finding, not a crash
        rfile, rline = rloc
        out.append(
            Problem(
                rfile,
                rline,
                f"resources.{rtype}.{key} is rejected by databricks-bundles {cls.__name__}: {exc}",
            )
        )
    return out
