"""Names two or more projects would deploy into the same workspace: bundle, job,
experiment, model, quality-monitor and output-table names."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

from monostack.bundle import LoadedBundle, Loc, TargetView, loc_of
from monostack.checks import ERROR, WARNING, Finding
from monostack.checks.bundle.common import CHECK, REQUIRED_TARGETS
from monostack.checks.bundle.paths import iter_tasks

_THREE_LEVEL = re.compile(r"^[^.\s]+\.[^.\s]+\.[^.\s]+$")
_OUTPUT_TABLE_KEY = re.compile(r"output.*table|table.*output", re.IGNORECASE)


def cross_project_findings(
    bundles: list[LoadedBundle],
    selected: Collection[str] | None = None,
) -> list[Finding]:
    """Names two or more projects would deploy into the same workspace.

    ``selected``: project names (or file prefixes such as ``projects/p1/``) to report for; a
    collision is reported when at least one side is selected (``None``: every project).
    """
    # (host, kind, name key) -> {side: [(target, loc, name as written)]}
    seen: dict[tuple[str, str, str], dict[tuple[str, str], list[tuple[str, Loc, str]]]] = {}
    for bundle in bundles:
        side = (bundle.project, bundle.file_prefix)
        for host, target, kind, name, loc in _deployed_names(bundle):
            # Unity Catalog identifiers ignore case: Churn.Model and churn.model are one model.
            key = name.casefold() if kind in _UC_KINDS else name
            seen.setdefault((host, kind, key), {}).setdefault(side, []).append((target, loc, name))
    # One finding per pair of colliding definitions: names that differ only by target
    # (staging-x, prod-x, test-x) collide in every workspace and are reported together.
    groups: dict[tuple, dict[str, Any]] = {}
    for (host, kind, name), sides in seen.items():
        if len(sides) < 2:
            continue
        ordered = tuple(sorted(sides))
        key = (kind, ordered, tuple(sides[side][0][1] for side in ordered))
        group = groups.setdefault(
            key, {"names": set(), "hosts": set(), "targets": {side: set() for side in ordered}}
        )
        group["names"].update(name for side in ordered for _, _, name in sides[side])
        group["hosts"].add(host)
        for side in ordered:
            group["targets"][side].update(target for target, _, _ in sides[side])

    def is_selected(side: tuple[str, str]) -> bool:
        return selected is None or side[0] in selected or side[1] in selected

    def listing(items: list[str]) -> str:
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

    findings = []
    for (kind, sides, locs), group in sorted(groups.items(), key=lambda item: item[0][:2]):
        chosen = [i for i, side in enumerate(sides) if is_selected(side)]
        if not chosen:
            continue
        parts = []
        for side, (file, line) in zip(sides, locs, strict=True):
            targets = ", ".join(sorted(group["targets"][side], key=_target_order))
            plural = "s" if len(group["targets"][side]) > 1 else ""
            parts.append(f"project {side[0]!r} ({file}:{line}, target{plural} {targets})")
        names = sorted(group["names"])
        what = listing([repr(n) for n in names])
        verb = "is" if len(names) == 1 else "are"
        kinds = kind if len(names) == 1 else f"{kind}s"
        hosts = sorted(group["hosts"])
        spaces = "workspace" if len(hosts) == 1 else "workspaces"
        file, line = locs[chosen[-1]]
        severity, outcome = OUTCOMES[kind]
        findings.append(
            Finding(
                CHECK,
                sides[chosen[-1]][0],
                file,
                line,
                severity,
                f"{kinds} {what} {verb} deployed by {listing(parts)} in {spaces} "
                f"{', '.join(hosts)}; {outcome}: rename one (put the project name in it)",
            )
        )
    return findings


# What really happens when two projects deploy the same name, per kind, and how bad it is.
OUTCOMES = {
    "bundle name": (
        ERROR,
        "both deploy into one bundle folder and state (~/.bundle/<name>/<target>), so each "
        "deploy overwrites or deletes what the other deployed",
    ),
    "job name": (
        WARNING,
        "both jobs exist with that name (job names need not be unique), so people, alerts and "
        "`databricks jobs list --name` cannot tell them apart",
    ),
    "experiment name": (
        ERROR,
        "an experiment name is unique in a workspace: the second project fails to deploy",
    ),
    "workspace model name": (
        ERROR,
        "a registered model name is unique in a workspace: the second project fails to deploy",
    ),
    "Unity Catalog model": (
        ERROR,
        "the model already exists in Unity Catalog: the second project fails to deploy",
    ),
    "quality-monitor table": (
        ERROR,
        "a table has one quality monitor: the second project fails to deploy",
    ),
    "output table": (
        ERROR,
        "both jobs write that table and overwrite each other's data",
    ),
}


def _target_order(name: str) -> tuple[int, str]:
    order = ("dev", *REQUIRED_TARGETS)
    return (order.index(name) if name in order else len(order), name)


# ------------------------------------------------------------------------------ cross-project
_UC_KINDS = frozenset({"Unity Catalog model", "quality-monitor table", "output table"})


def _deployed_names(bundle: LoadedBundle) -> Iterable[tuple[str, str, str, str, Loc]]:
    """(workspace host, target, kind, name, loc) of every name the bundle deploys."""
    if bundle.base is None:
        return
    for view in bundle.targets.values():
        host = view.host
        if host is None:
            continue  # a target without a host deploys wherever the CLI profile points

        def emit(kind: str, value: Any, loc: Loc, view: TargetView = view, host: str = host):
            resolved = view.resolve(value)
            if isinstance(resolved, str) and resolved.strip():
                yield host, view.name, kind, resolved.strip(), loc

        bundle_section = view.doc.get("bundle")
        if isinstance(bundle_section, dict):
            yield from emit(
                "bundle name",
                bundle_section.get("name"),
                loc_of(bundle_section, "name", view.doc.loc),
            )
        resources = view.doc.get("resources")
        if not isinstance(resources, dict):
            continue
        for rtype, kind in (
            ("jobs", "job name"),
            ("experiments", "experiment name"),
            ("models", "workspace model name"),
        ):
            group = resources.get(rtype)
            for res in group.values() if isinstance(group, dict) else ():
                if isinstance(res, dict) and "name" in res:
                    yield from emit(kind, res["name"], loc_of(res, "name", view.doc.loc))
        group = resources.get("registered_models")
        for res in group.values() if isinstance(group, dict) else ():
            if not isinstance(res, dict):
                continue
            parts = [view.resolve(res.get(k)) for k in ("catalog_name", "schema_name", "name")]
            if all(isinstance(p, str) and p for p in parts):
                yield from emit(
                    "Unity Catalog model", ".".join(parts), loc_of(res, "name", view.doc.loc)
                )
        group = resources.get("quality_monitors")
        for res in group.values() if isinstance(group, dict) else ():
            if isinstance(res, dict) and "table_name" in res:
                yield from emit(
                    "quality-monitor table",
                    res["table_name"],
                    loc_of(res, "table_name", view.doc.loc),
                )
        jobs = resources.get("jobs")
        for jkey, job in jobs.items() if isinstance(jobs, dict) else ():
            if not isinstance(job, dict):
                continue
            for _key, value, loc in _output_table_parameters(job, jkey):
                resolved = view.resolve(value)
                if (
                    isinstance(resolved, str)
                    and "${" not in resolved
                    and _THREE_LEVEL.match(resolved)
                ):
                    yield host, view.name, "output table", resolved, loc


def _output_table_parameters(job: dict, jkey: str) -> Iterable[tuple[str, Any, Loc]]:
    """Parameters that name a table the job writes (``output_table_name`` and the like)."""
    for _, task in iter_tasks(job.get("tasks"), ("resources", "jobs", jkey, "tasks")):
        for kind in ("notebook_task", "run_job_task"):
            spec = task.get(kind)
            params = None
            if isinstance(spec, dict):
                params = spec.get("base_parameters") or spec.get("job_parameters")
            for key, value in params.items() if isinstance(params, dict) else ():
                if _OUTPUT_TABLE_KEY.search(str(key)):
                    yield key, value, loc_of(params, key, ("", None))
    params = job.get("parameters")
    for index, param in enumerate(params if isinstance(params, list) else ()):
        if isinstance(param, dict) and _OUTPUT_TABLE_KEY.search(str(param.get("name", ""))):
            yield param["name"], param.get("default"), loc_of(params, index, ("", None))
