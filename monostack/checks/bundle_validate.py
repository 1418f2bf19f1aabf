"""``bundle-validate``: what ``databricks bundle validate`` would say, offline, for every project,
plus what it cannot say: that projects sharing a workspace do not overwrite each other.

Per project: the bundle loads (valid YAML, includes exist), names itself, has exactly one default
target and the staging/prod/test targets on the hosts of ``monorepo.yml``, declares every
``${var.X}`` it uses, points ``${resources...}`` at resources it defines and task paths at files
it has, and every resource fits the typed models of ``databricks-bundles``. Across projects, per
workspace: no two deploy the same bundle, job, experiment, model, monitor or output table name.
Every finding names the file (repo-relative) and line of the offending key.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import posixpath
import re
import shutil
import subprocess
import time
import typing
from collections.abc import Collection, Iterable, Mapping
from enum import Enum
from pathlib import Path
from types import NoneType, UnionType
from typing import TYPE_CHECKING, Any

from monostack.bundle import (
    BUNDLE_FILE,
    BUNDLE_KEYS,
    TARGET_KEYS,
    TOP_LEVEL_KEYS,
    VARIABLE_KEYS,
    WORKSPACE_KEYS,
    DiskTree,
    LoadedBundle,
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
    load_bundle,
    loc_of,
    plain,
    references,
)
from monostack.checks import ERROR, INFO, MONOREPO, WARNING, CaseResult, Finding
from monostack.config import workspace_host
from monostack.errors import UserError, message_location

if TYPE_CHECKING:  # pragma: no cover
    from monostack.config import MonorepoConfig
    from monostack.projects import Project

CHECK = "bundle-validate"
CROSS_PROJECT = "cross-project"
REQUIRED_TARGETS = ("staging", "prod", "test")
TARGET_MODES = ("development", "production")
ONLINE_TIMEOUT = 300
SKIPPED_ONLINE = "skipped: no databricks CLI or credentials"

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
NOTEBOOK_EXTENSIONS = (".py", ".ipynb", ".sql", ".scala", ".r", ".R")
_THREE_LEVEL = re.compile(r"^[^.\s]+\.[^.\s]+\.[^.\s]+$")
_OUTPUT_TABLE_KEY = re.compile(r"output.*table|table.*output", re.IGNORECASE)


# ==================================================================================== public API
def load_project_bundle(
    tree: Mapping[str, bytes],
    project_name: str,
    config: MonorepoConfig,
    file_prefix: str = "",
) -> LoadedBundle:
    """Load one project's bundle (see :func:`monostack.bundle.load_bundle`) for the checks
    here; ``config`` is accepted so callers need not care what loading depends on."""
    del config  # loading is the same for every monorepo
    return load_bundle(tree, project_name, file_prefix)


def validate_project_tree(
    tree: Mapping[str, bytes],
    project_name: str,
    config: MonorepoConfig,
    file_prefix: str = "",
) -> list[Finding]:
    """All single-project checks on a project's files (paths relative to the project dir)."""
    return project_findings(load_project_bundle(tree, project_name, config, file_prefix), config)


def project_findings(bundle: LoadedBundle, config: MonorepoConfig) -> list[Finding]:
    """Single-project findings of a loaded bundle, sorted by file and line."""
    problems = list(bundle.problems)
    if bundle.base is not None:
        problems += _check_structure(bundle)
        problems += _check_hosts(bundle, config)
        problems += _check_variable_references(bundle)
        memo: dict[Any, list[Problem]] = {}  # targets mostly repeat the same resources
        for view in bundle.targets.values():
            problems += _check_resource_references(bundle, view)
            problems += _check_task_paths(bundle, view)
            problems += _check_resource_models(bundle, view, memo)
    return _to_findings(bundle.project, problems)


def cross_project_findings(
    bundles: list[LoadedBundle],
    config: MonorepoConfig,
    selected: Collection[str] | None = None,
) -> list[Finding]:
    """Names two or more projects would deploy into the same workspace.

    ``selected``: project names (or file prefixes such as ``projects/p1/``) to report for; a
    collision is reported when at least one side is selected (``None``: every project).
    """
    del config  # hosts come from the bundles, which the host check ties to monorepo.yml
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
        findings.append(
            Finding(
                CHECK,
                sides[chosen[-1]][0],
                file,
                line,
                ERROR,
                f"{file}: {kinds} {what} {verb} deployed by {listing(parts)} in {spaces} "
                f"{', '.join(hosts)}; they would overwrite each other: rename one "
                "(put the project name in it)",
            )
        )
    return findings


def _target_order(name: str) -> tuple[int, str]:
    order = ("dev", *REQUIRED_TARGETS)
    return (order.index(name) if name in order else len(order), name)


def run_bundle_validate(
    root: Path, projects: list[Project], online: bool = False
) -> list[CaseResult]:
    """One case per selected project, then one ``cross-project`` case.

    Collisions are looked for among all projects of the repo, reported when a selected project
    is involved. With ``online``, ``databricks bundle validate -t T`` runs per project and
    target when the CLI and credentials are there; otherwise an info finding says it was skipped.
    """
    from monostack.config import load_config
    from monostack.projects import discover_projects

    root = Path(root)
    try:
        config = load_config(root)
    except UserError as exc:
        reason = "monorepo.yml is invalid; see the cross-project case"
        results = [CaseResult(CHECK, p.name, skipped=reason) for p in projects]
        line = message_location(exc.message)[1]
        finding = Finding(CHECK, MONOREPO, "monorepo.yml", line, ERROR, exc.message)
        return [*results, CaseResult(CHECK, CROSS_PROJECT, [finding])]
    try:
        everyone = discover_projects(root)
    except UserError:
        everyone = []
    by_dir = {p.dir: p for p in everyone}
    for project in projects:
        by_dir.setdefault(project.dir, project)
    skip_reason = online_skip_reason() if online else None

    bundles: dict[str, LoadedBundle] = {}
    results: dict[str, CaseResult] = {}
    selected = {p.dir for p in projects}
    for project_dir in sorted(by_dir):
        project = by_dir[project_dir]
        started = time.perf_counter()
        bundle = load_project_bundle(
            DiskTree(project.path), project.name, config, f"{project.rel}/"
        )
        bundles[project_dir] = bundle
        if project_dir not in selected:
            continue
        findings = project_findings(bundle, config)
        if online and skip_reason:
            findings.append(
                Finding(CHECK, project.name, "", None, INFO, f"{SKIPPED_ONLINE} ({skip_reason})")
            )
        elif online:
            findings += online_findings(project, bundle)
        results[project_dir] = CaseResult(
            CHECK, project.name, findings, seconds=time.perf_counter() - started
        )
    started = time.perf_counter()
    cross = cross_project_findings(
        list(bundles.values()), config, selected={f"{by_dir[d].rel}/" for d in selected}
    )
    ordered = [results[p.dir] for p in projects if p.dir in results]
    return [
        *ordered,
        CaseResult(CHECK, CROSS_PROJECT, cross, seconds=time.perf_counter() - started),
    ]


# ==================================================================================== helpers
def _to_findings(project: str, problems: Iterable[Problem]) -> list[Finding]:
    seen = set()
    findings = []
    for p in problems:
        key = (p.file, p.line, p.severity, p.message)
        if key in seen:
            continue
        seen.add(key)
        findings.append(Finding(CHECK, project, p.file, p.line, p.severity, p.message))
    return sorted(findings, key=Finding.order)


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else "remove it or fix its spelling"


def _unknown_keys(
    mapping: Any, known: tuple[str, ...], where: str, severity: str = WARNING
) -> list[Problem]:
    if not isinstance(mapping, dict):
        return []
    out = []
    for key in mapping:
        if key not in known:
            file, line = loc_of(mapping, key, ("", None))
            out.append(
                Problem(
                    file,
                    line,
                    f"{file}: unknown key {key!r} in {where}; the Databricks CLI ignores it "
                    f"({_suggest(str(key), known)})",
                    severity,
                )
            )
    return out


_KNOWN_RESOURCE_TYPES = frozenset(RESOURCE_CLASSES) | frozenset(UNTYPED_RESOURCE_TYPES)


def known_resource_types() -> frozenset[str]:
    return _KNOWN_RESOURCE_TYPES


# ------------------------------------------------------------------------------ structure
def _check_structure(bundle: LoadedBundle) -> list[Problem]:
    base = bundle.base
    assert base is not None
    root_file = bundle.root_file
    out: list[Problem] = []
    for doc in bundle.files.values():
        out += _unknown_keys(doc, TOP_LEVEL_KEYS, "the top level")

    section = base.get("bundle")
    name = section.get("name") if isinstance(section, dict) else None
    if section is not None and not isinstance(section, dict):
        pass  # reported by the loader: `bundle` must be a mapping
    elif not isinstance(section, dict):
        file, line = loc_of(base, "bundle", (root_file, 1)) if "bundle" in base else (root_file, 1)
        out.append(
            Problem(
                file, line, f"{file}: bundle.name is missing; add `bundle:` with `name: <project>`"
            )
        )
    elif not isinstance(name, str) or not name.strip():
        file, line = section.loc_of("name")
        what = "is missing"
        if "name" in section:
            what = f"must be a non-empty string, got {describe(name)}"
        out.append(Problem(file, line, f"{file}: bundle.name {what}; set it to the project name"))
    out += _unknown_keys(section, BUNDLE_KEYS, "bundle")
    out += _unknown_keys(base.get("workspace"), WORKSPACE_KEYS, "workspace")

    declared = bundle.declared_variables
    for var, decl in declared.items():
        file, line = loc_of(base.get("variables"), var, (root_file, None))
        if decl is None or isinstance(decl, dict):
            out += _unknown_keys(decl, VARIABLE_KEYS, f"variables.{var}")
            continue
        out.append(
            Problem(
                file,
                line,
                f"{file}: variables.{var} must be a mapping (e.g. `default: ...`, "
                f"`description: ...`), got {describe(decl)}",
            )
        )

    targets = base.get("targets")
    if targets is not None and not isinstance(targets, dict):
        return out  # reported by the loader: `targets` must be a mapping
    if not targets:
        file, line = (
            loc_of(base, "targets", (root_file, 1)) if "targets" in base else (root_file, 1)
        )
        out.append(
            Problem(
                file,
                line,
                f"{file}: no targets are defined; add `targets:` with dev (default: true), "
                "staging, prod and test",
            )
        )
        return out
    defaults = []
    for tname, spec in targets.items():
        file, line = targets.loc_of(tname) if isinstance(targets, YMap) else (root_file, None)
        if spec is not None and not isinstance(spec, dict):
            out.append(
                Problem(
                    file, line, f"{file}: targets.{tname} must be a mapping, got {describe(spec)}"
                )
            )
            continue
        if not isinstance(spec, dict):
            continue
        out += _unknown_keys(spec, TARGET_KEYS, f"targets.{tname}")
        out += _unknown_keys(spec.get("bundle"), BUNDLE_KEYS, f"targets.{tname}.bundle")
        out += _unknown_keys(spec.get("workspace"), WORKSPACE_KEYS, f"targets.{tname}.workspace")
        default = spec.get("default")
        if default is True:
            defaults.append((tname, loc_of(spec, "default", (file, line))))
        elif "default" in spec and default is not False:
            dfile, dline = loc_of(spec, "default", (file, line))
            out.append(
                Problem(
                    dfile,
                    dline,
                    f"{dfile}: targets.{tname}.default must be true or false, "
                    f"got {describe(default)}",
                )
            )
        mode = spec.get("mode")
        if "mode" in spec and mode not in TARGET_MODES:
            mfile, mline = loc_of(spec, "mode", (file, line))
            out.append(
                Problem(
                    mfile,
                    mline,
                    f"{mfile}: targets.{tname}.mode is {describe(mode)}; use one of: "
                    f"{', '.join(TARGET_MODES)}",
                )
            )
        target_vars = spec.get("variables")
        if target_vars is not None and not isinstance(target_vars, dict):
            vfile, vline = loc_of(spec, "variables", (file, line))
            out.append(
                Problem(
                    vfile,
                    vline,
                    f"{vfile}: targets.{tname}.variables must be a mapping, got "
                    f"{describe(target_vars)}",
                )
            )
        elif isinstance(target_vars, dict):
            for var in target_vars:
                if var not in declared:
                    vfile, vline = loc_of(target_vars, var, (file, line))
                    out.append(
                        Problem(
                            vfile,
                            vline,
                            f"{vfile}: targets.{tname}.variables.{var} sets variable {var!r}, "
                            "which is not declared under `variables`; declare it in "
                            f"{BUNDLE_FILE} or fix the name",
                        )
                    )
    if not defaults:
        file, line = loc_of(base, "targets", (root_file, None))
        out.append(
            Problem(
                file,
                line,
                f"{file}: no target has `default: true`; mark exactly one (usually dev) as default",
            )
        )
    elif len(defaults) > 1:
        names = ", ".join(name for name, _ in defaults)
        for _tname, (file, line) in defaults[1:]:
            out.append(
                Problem(
                    file,
                    line,
                    f"{file}: targets {names} have `default: true`; keep it on exactly one target",
                )
            )

    # A variable without a default must get a value from every target that deploys.
    for tname in REQUIRED_TARGETS:
        view = bundle.targets.get(tname)
        if view is None:
            continue
        for var, decl in declared.items():
            if var in view.values or (isinstance(decl, dict) and "lookup" in decl):
                continue
            file, line = loc_of(base.get("variables"), var, (root_file, None))
            out.append(
                Problem(
                    file,
                    line,
                    f"{file}: variable {var!r} has no default and target {tname!r} gives it no "
                    f"value; deploying {tname} needs --var={var}=... or BUNDLE_VAR_{var}",
                    WARNING,
                )
            )
    return out


def _check_hosts(bundle: LoadedBundle, config: MonorepoConfig) -> list[Problem]:
    """staging/prod/test must deploy to the workspaces of monorepo.yml (test: workspaces.test,
    or staging's when it is not set)."""
    base = bundle.base
    assert base is not None
    root_file = bundle.root_file
    targets = base.get("targets") if isinstance(base.get("targets"), dict) else {}
    expected = {
        "staging": (config.workspaces.staging, "workspaces.staging"),
        "prod": (config.workspaces.prod, "workspaces.prod"),
        "test": (config.workspaces.test, f"workspaces.{config.workspaces.test_env}"),
    }
    if config.workspaces.dev:
        expected["dev"] = (config.workspaces.dev, "workspaces.dev")
    out = []
    for tname, (want, source) in expected.items():
        want_norm = workspace_host(want)
        shared = tname == "test" and config.workspaces.test_env == "staging"
        note = "; test runs in the staging workspace" if shared else ""
        if tname not in targets:
            if tname == "dev":
                continue
            file, line = (
                loc_of(base, "targets", (root_file, 1)) if "targets" in base else (root_file, 1)
            )
            out.append(
                Problem(
                    file,
                    line,
                    f"{file}: target {tname!r} is missing; add `targets.{tname}` with "
                    f"workspace.host {want} (monorepo.yml {source}){note}",
                )
            )
            continue
        view = bundle.targets[tname]
        workspace = view.doc.get("workspace")
        host = workspace.get("host") if isinstance(workspace, dict) else None
        tfile, tline = loc_of(targets, tname, (root_file, None))
        if host is None:
            if tname == "dev":
                continue  # dev may use each developer's own CLI profile
            out.append(
                Problem(
                    tfile,
                    tline,
                    f"{tfile}: targets.{tname} has no workspace.host; set it to {want} "
                    f"(monorepo.yml {source}){note}",
                )
            )
            continue
        hfile, hline = loc_of(workspace, "host", (tfile, tline))
        got = workspace_host(host)
        if got is None:
            out.append(
                Problem(
                    hfile,
                    hline,
                    f"{hfile}: targets.{tname}.workspace.host {describe(host)} is not an "
                    f"https:// workspace URL; set it to {want} (monorepo.yml {source}){note}",
                )
            )
        elif got != want_norm:
            out.append(
                Problem(
                    hfile,
                    hline,
                    f"{hfile}: targets.{tname}.workspace.host is {host!r} but monorepo.yml "
                    f"{source} is {want}; make them the same (re-render or edit the host){note}",
                )
            )
    return out


# ------------------------------------------------------------------------------ references
def _check_variable_references(bundle: LoadedBundle) -> list[Problem]:
    declared = bundle.declared_variables
    out = []
    for doc in bundle.files.values():
        for path, text, (file, line) in iter_strings(doc, doc.loc):
            for ref in references(text):
                head, _, rest = ref.partition(".")
                if head not in ("var", "variables"):
                    continue
                name = re.split(r"[.\[]", rest, maxsplit=1)[0]
                if name in declared:
                    continue
                out.append(
                    Problem(
                        file,
                        line,
                        f"{file}: ${{{ref}}} at {format_path(path)} uses variable {name!r}, "
                        f"which is not declared under `variables`; declare it in {BUNDLE_FILE} "
                        "or fix the name",
                    )
                )
    return out


def _check_resource_references(bundle: LoadedBundle, view: TargetView) -> list[Problem]:
    resources = view.doc.get("resources")
    out = []
    for path, text, (file, line) in iter_strings(view.doc, view.doc.loc):
        for ref in references(text):
            parts = ref.split(".")
            if parts[0] != "resources":
                continue
            where = f"{file}: ${{{ref}}} at {format_path(path)}"
            if len(parts) < 3:
                out.append(
                    Problem(
                        file,
                        line,
                        f"{where} is incomplete; use ${{resources.<type>.<key>.<field>}}",
                    )
                )
                continue
            rtype, key = parts[1], re.sub(r"\[[0-9]+\]$", "", parts[2])
            if rtype not in known_resource_types():
                out.append(
                    Problem(
                        file,
                        line,
                        f"{where} names the unknown resource type {rtype!r} "
                        f"({_suggest(rtype, known_resource_types())})",
                    )
                )
                continue
            group = resources.get(rtype) if isinstance(resources, dict) else None
            if isinstance(group, dict) and key in group:
                continue
            elsewhere = [
                other.name
                for other in bundle.targets.values()
                if _has_resource(other, rtype, key) and other.name != view.name
            ]
            only = f" in target {view.name!r} (only in {', '.join(elsewhere)})" if elsewhere else ""
            out.append(
                Problem(
                    file,
                    line,
                    f"{where} refers to resources.{rtype}.{key}, which is not defined{only}; "
                    "define it or fix the reference",
                )
            )
    return out


def _has_resource(view: TargetView, rtype: str, key: str) -> bool:
    resources = view.doc.get("resources")
    group = resources.get(rtype) if isinstance(resources, dict) else None
    return isinstance(group, dict) and key in group


# ------------------------------------------------------------------------------ task paths
def _iter_tasks(tasks: Any, path: Path_) -> Iterable[tuple[Path_, dict]]:
    if not isinstance(tasks, list):
        return
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        yield (*path, index), task
        nested = task.get("for_each_task")
        if isinstance(nested, dict) and isinstance(nested.get("task"), dict):
            yield (*path, index, "for_each_task", "task"), nested["task"]


def _file_refs(view: TargetView) -> Iterable[tuple[Path_, Any, Any, str]]:
    """(path, container, key, kind) of every local file a resource names; kind is
    "notebook", "file" or "directory"."""
    resources = view.doc.get("resources")
    if not isinstance(resources, dict):
        return
    jobs = resources.get("jobs")
    for jkey, job in jobs.items() if isinstance(jobs, dict) else ():
        if not isinstance(job, dict):
            continue
        from_git = isinstance(job.get("git_source"), dict)
        for tpath, task in _iter_tasks(job.get("tasks"), ("resources", "jobs", jkey, "tasks")):
            for kind_key, field_key, kind in (
                ("notebook_task", "notebook_path", "notebook"),
                ("spark_python_task", "python_file", "file"),
            ):
                spec = task.get(kind_key)
                if not isinstance(spec, dict) or field_key not in spec:
                    continue
                source = spec.get("source")
                if source == "GIT" or (from_git and source != "WORKSPACE"):
                    continue  # the path is inside the git repository, not this bundle
                yield (*tpath, kind_key, field_key), spec, field_key, kind
            sql = task.get("sql_task")
            sql_file = sql.get("file") if isinstance(sql, dict) else None
            if isinstance(sql_file, dict) and "path" in sql_file:
                source = sql_file.get("source")
                if not (source == "GIT" or (from_git and source != "WORKSPACE")):
                    yield (*tpath, "sql_task", "file", "path"), sql_file, "path", "file"
    pipelines = resources.get("pipelines")
    for pkey, pipeline in pipelines.items() if isinstance(pipelines, dict) else ():
        libraries = pipeline.get("libraries") if isinstance(pipeline, dict) else None
        for index, lib in enumerate(libraries if isinstance(libraries, list) else ()):
            if not isinstance(lib, dict):
                continue
            for lib_kind, kind in (("notebook", "notebook"), ("file", "file")):
                spec = lib.get(lib_kind)
                if isinstance(spec, dict) and "path" in spec:
                    path = ("resources", "pipelines", pkey, "libraries", index, lib_kind, "path")
                    yield path, spec, "path", kind
    dashboards = resources.get("dashboards")
    for dkey, dash in dashboards.items() if isinstance(dashboards, dict) else ():
        if isinstance(dash, dict) and "file_path" in dash:
            yield ("resources", "dashboards", dkey, "file_path"), dash, "file_path", "file"
    apps = resources.get("apps")
    for akey, app in apps.items() if isinstance(apps, dict) else ():
        if isinstance(app, dict) and "source_code_path" in app:
            path = ("resources", "apps", akey, "source_code_path")
            yield path, app, "source_code_path", "directory"


def _local_path(bundle: LoadedBundle, view: TargetView, value: str, yaml_file: str) -> str | None:
    """The project-relative path a resource path stands for; "" when it is not a local path
    (absolute workspace path, URL, or an unresolvable reference); None when it leaves the
    project."""
    prefix = "${workspace.file_path}"
    if value.startswith(prefix):
        value, base_dir = value[len(prefix) :].lstrip("/"), ""
    else:
        value = view.resolve(value)
        base_dir = posixpath.dirname(bundle.rel(yaml_file))
    if not isinstance(value, str) or not value or "${" in value:
        return ""
    if value.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
        return ""
    joined = posixpath.normpath(posixpath.join(base_dir, value))
    if joined == ".." or joined.startswith("../"):
        return None
    return joined


def _exists(tree: Mapping[str, bytes], rel: str, kind: str) -> bool:
    if kind == "directory":
        return rel in ("", ".") or any(path.startswith(rel + "/") for path in tree)
    if rel in tree:
        return True
    return kind == "notebook" and any(rel + ext in tree for ext in NOTEBOOK_EXTENSIONS)


def _check_task_paths(bundle: LoadedBundle, view: TargetView) -> list[Problem]:
    out = []
    for path, container, key, kind in _file_refs(view):
        value = container[key]
        file, line = loc_of(container, key, view.doc.loc)
        if not isinstance(value, str) or not value:
            continue  # the typed-model check reports a wrong type
        rel = _local_path(bundle, view, value, file)
        if rel == "":
            continue
        if rel is None:
            out.append(
                Problem(
                    file,
                    line,
                    f"{file}: {format_path(path)} {value!r} points outside the project "
                    "directory; files outside the bundle are not deployed unless sync.paths "
                    "includes them",
                    WARNING,
                )
            )
            continue
        if _exists(bundle.tree, rel, kind):
            continue
        out.append(
            Problem(
                file,
                line,
                f"{file}: {format_path(path)} names the {kind} {value!r}, but "
                f"{bundle.file_prefix}{rel} does not exist; fix the path (relative to {file}) "
                "or add the file",
            )
        )
    return out


# ------------------------------------------------------------------------------ typed models
@functools.cache
def resource_class(rtype: str) -> type | None:
    """The databricks-bundles dataclass for a resource type, or None when there is none."""
    import importlib

    spec = RESOURCE_CLASSES.get(rtype)
    if spec is not None:
        module = importlib.import_module(f"databricks.bundles.{spec[0]}")
        return getattr(module, spec[1])
    try:  # a newer databricks-bundles may know more types
        from databricks.bundles.core._generated import _all_resource_types

        for resource_type in _all_resource_types():
            if resource_type.plural_name == rtype:
                return resource_type.resource_type
    except ImportError:  # pragma: no cover - depends on the installed version
        pass
    return None


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


_TRUE_FALSE = {"true", "false", "yes", "no", "on", "off", "y", "n"}


def _type_errors(tp: Any, value: Any, path: Path_, loc: Loc, out: list[tuple[Path_, Loc, str]]):
    """Check ``value`` against a databricks-bundles type annotation, collecting
    ``(path, loc, message)``; deploy-time references (``${...}``) are accepted."""
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
            out.append((path, loc, f"{where} must be a mapping ({name}), got {describe(value)}"))
            return
        fields, required = _fields(tp)
        hints = _hints(tp)
        for key, item in value.items():
            item_loc = loc_of(value, key, loc)
            if key not in fields:
                out.append(
                    (
                        (*path, key),
                        item_loc,
                        f"unknown field {key!r} in {where} ({name}); {_suggest(str(key), fields)}",
                    )
                )
                continue
            _type_errors(hints[key], item, (*path, key), item_loc, out)
        for key in required:
            if key not in value:
                out.append((path, loc, f"{where} ({name}) is missing the required field {key!r}"))
        return
    if origin is list:
        if value is None:
            return
        if not isinstance(value, list):
            out.append((path, loc, f"{where} must be a list, got {describe(value)}"))
            return
        (item_tp,) = typing.get_args(tp)
        for index, item in enumerate(value):
            _type_errors(item_tp, item, (*path, index), loc_of(value, index, loc), out)
        return
    if origin is dict:
        if value is None:
            return
        if not isinstance(value, dict):
            out.append((path, loc, f"{where} must be a mapping, got {describe(value)}"))
            return
        _, item_tp = typing.get_args(tp)
        for key, item in value.items():
            _type_errors(item_tp, item, (*path, key), loc_of(value, key, loc), out)
        return
    deferred = isinstance(value, str) and "${" in value
    if tp is str:
        if isinstance(value, (dict, list)):
            out.append((path, loc, f"{where} must be a string, got {describe(value)}"))
    elif tp is bool:
        word = isinstance(value, str) and value.lower() in _TRUE_FALSE
        if not (isinstance(value, bool) or deferred or word):
            out.append((path, loc, f"{where} must be true or false, got {describe(value)}"))
    elif tp is int:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or deferred
        ok = ok or (isinstance(value, float) and value.is_integer())
        ok = ok or (isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()) is not None)
        if not ok:
            out.append((path, loc, f"{where} must be an integer, got {describe(value)}"))
    elif tp is float:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or deferred
        if not ok and isinstance(value, str):
            try:
                float(value)
                ok = True
            except ValueError:
                ok = False
        if not ok:
            out.append((path, loc, f"{where} must be a number, got {describe(value)}"))
    elif isinstance(tp, type) and issubclass(tp, Enum):
        allowed = [str(member.value) for member in tp]
        if not deferred and (isinstance(value, (dict, list)) or str(value) not in allowed):
            out.append(
                (
                    path,
                    loc,
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


def _check_resource_models(
    bundle: LoadedBundle, view: TargetView, memo: dict[Any, list[Problem]] | None = None
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
                f"{file}: databricks-bundles is not installed; resources "
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
                    f"{file}: unknown resource type resources.{rtype} "
                    f"({_suggest(str(rtype), known_resource_types())})",
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
                    f"{file}: resources.{rtype} must be a mapping of resource keys, "
                    f"got {describe(group)}",
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
    errors: list[tuple[Path_, Loc, str]] = []
    _type_errors(cls, resource, ("resources", rtype, key), rloc, errors)
    out = [Problem(efile, eline, f"{efile}: {message}") for _, (efile, eline), message in errors]
    if errors or not isinstance(resource, dict) or _has_deferred(resource):
        return out
    try:  # the library's own parser, as a backstop for anything the walk above misses
        cls.from_dict(plain(resource))
    except Exception as exc:  # noqa: BLE001 - any rejection is a finding, not a crash
        rfile, rline = rloc
        out.append(
            Problem(
                rfile,
                rline,
                f"{rfile}: resources.{rtype}.{key} is rejected by databricks-bundles "
                f"{cls.__name__}: {exc}",
            )
        )
    return out


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
    for _, task in _iter_tasks(job.get("tasks"), ("resources", "jobs", jkey, "tasks")):
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


# ------------------------------------------------------------------------------ online
def _has_credentials(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("DATABRICKS_HOST") and (
        env.get("DATABRICKS_TOKEN")
        or (env.get("DATABRICKS_CLIENT_ID") and env.get("DATABRICKS_CLIENT_SECRET"))
        or (env.get("ARM_CLIENT_ID") and env.get("ARM_CLIENT_SECRET") and env.get("ARM_TENANT_ID"))
    ):
        return True
    cfg = env.get("DATABRICKS_CONFIG_FILE") or str(Path.home() / ".databrickscfg")
    return Path(cfg).is_file()


def online_skip_reason() -> str | None:
    """Why ``--online`` cannot run here, or None when it can."""
    if shutil.which("databricks") is None:
        return "the databricks CLI is not on PATH"
    if not _has_credentials():
        return (
            "no credentials: set DATABRICKS_HOST and DATABRICKS_TOKEN, or create ~/.databrickscfg"
        )
    return None


def online_findings(project: Project, bundle: LoadedBundle) -> list[Finding]:
    """Run ``databricks bundle validate -t T`` in the project for staging, prod and test."""
    exe = shutil.which("databricks")
    file = bundle.root_file
    out = []
    if exe is None:  # pragma: no cover - online_skip_reason() is checked first
        return [Finding(CHECK, project.name, "", None, INFO, SKIPPED_ONLINE)]
    for target in REQUIRED_TARGETS:
        if target not in bundle.targets:
            continue  # the offline check already reports the missing target
        command = f"databricks bundle validate -t {target}"
        try:
            proc = subprocess.run(
                [exe, "bundle", "validate", "-t", target],
                cwd=project.path,
                capture_output=True,
                text=True,
                timeout=ONLINE_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            out.append(
                Finding(
                    CHECK,
                    project.name,
                    file,
                    None,
                    ERROR,
                    f"{command} in {project.rel}: could not run: {exc}",
                )
            )
            continue
        lines = [line.strip() for line in (proc.stdout + "\n" + proc.stderr).splitlines()]
        errors = [line for line in lines if line.startswith("Error:")]
        warnings = [line for line in lines if line.startswith("Warning:")]
        for line in warnings:
            out.append(
                Finding(
                    CHECK, project.name, file, None, WARNING, f"{command} in {project.rel}: {line}"
                )
            )
        if proc.returncode != 0:
            detail = (
                "; ".join(errors)
                or " | ".join([line for line in lines if line][-5:])
                or (f"exit status {proc.returncode}")
            )
            out.append(
                Finding(
                    CHECK,
                    project.name,
                    file,
                    None,
                    ERROR,
                    f"{command} in {project.rel} failed: {detail}",
                )
            )
        elif errors:
            for line in errors:
                out.append(
                    Finding(
                        CHECK,
                        project.name,
                        file,
                        None,
                        ERROR,
                        f"{command} in {project.rel}: {line}",
                    )
                )
        else:
            out.append(
                Finding(CHECK, project.name, file, None, INFO, f"{command} in {project.rel}: OK")
            )
    return out
