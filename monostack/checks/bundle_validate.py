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

import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monostack.bundle import DiskTree, LoadedBundle, Problem, load_bundle
from monostack.checks import INFO, MONOREPO, CaseResult, Finding
from monostack.checks.bundle.collisions import cross_project_findings
from monostack.checks.bundle.common import CHECK, to_findings
from monostack.checks.bundle.models import check_resource_models
from monostack.checks.bundle.online import SKIPPED_ONLINE, online_findings, online_skip_reason
from monostack.checks.bundle.paths import check_task_paths
from monostack.checks.bundle.references import (
    check_resource_references,
    check_variable_references,
)
from monostack.checks.bundle.resources import (
    check_duplicate_keys,
    check_job_references,
    python_resources_info,
)
from monostack.checks.bundle.structure import check_hosts, check_structure
from monostack.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from monostack.config import MonorepoConfig
    from monostack.projects import Project

CROSS_PROJECT = "cross-project"


def validate_project_tree(
    tree: Mapping[str, bytes],
    project_name: str,
    config: MonorepoConfig,
    file_prefix: str = "",
) -> list[Finding]:
    """All single-project checks on a project's files (paths relative to the project dir)."""
    return project_findings(load_bundle(tree, project_name, file_prefix), config)


def project_findings(bundle: LoadedBundle, config: MonorepoConfig) -> list[Finding]:
    """Single-project findings of a loaded bundle, sorted by file and line.

    When an include could not be loaded, its finding stands alone: checks for what is missing
    (variables, resources, targets) would only repeat the same cause.
    """
    problems = list(bundle.problems)
    if bundle.base is not None and not bundle.incomplete:
        problems += check_structure(bundle)
        problems += check_hosts(bundle, config)
        problems += check_variable_references(bundle)
        problems += check_duplicate_keys(bundle)
        problems += python_resources_info(bundle)
        memo: dict[Any, list[Problem]] = {}  # targets mostly repeat the same resources
        for view in bundle.targets.values():
            problems += check_resource_references(bundle, view)
            problems += check_job_references(view)
            problems += check_task_paths(bundle, view)
            problems += check_resource_models(view, memo)
    return to_findings(bundle.project, problems)


def run_bundle_validate(
    root: Path,
    projects: list[Project],
    online: bool = False,
    config: MonorepoConfig | None = None,
    cross: bool = True,
    only: Collection[str] | None = None,
) -> list[CaseResult]:
    """One case per selected project, then one ``cross-project`` case (``cross=False``: none,
    and only the selected projects are loaded). ``only``: the project directories to give
    their own case (the others still count as selected for cross-project).

    Collisions are looked for among all projects of the repo, reported when a selected project
    is involved. With ``online``, ``databricks bundle validate -t T`` runs per project and
    target when the CLI and credentials are there; otherwise an info finding says it was skipped.
    ``config``: ``monorepo.yml`` when the caller has loaded it already.
    """
    from monostack.config import load_config
    from monostack.projects import discover_projects

    root = Path(root)
    try:
        config = config if config is not None else load_config(root)
    except UserError as exc:
        reason = "monorepo.yml is invalid; see the cross-project case"
        results = [CaseResult(CHECK, p.name, skipped=reason) for p in projects]
        finding = Finding.from_error(CHECK, MONOREPO, exc, root)
        return [*results, CaseResult(CHECK, CROSS_PROJECT, [finding])]
    try:
        everyone = discover_projects(root) if cross else []
    except UserError:
        everyone = []
    by_dir = {p.dir: p for p in everyone}
    for project in projects:
        by_dir.setdefault(project.dir, project)
    skip_reason = online_skip_reason() if online else None
    repo = DiskTree(root)  # for includes that leave a project (a shared ../common/)

    bundles: dict[str, LoadedBundle] = {}
    results: dict[str, CaseResult] = {}
    selected = {p.dir for p in projects}
    for project_dir in sorted(by_dir):
        project = by_dir[project_dir]
        started = time.perf_counter()
        tree = DiskTree(project.path, boundary=root)
        bundle = load_bundle(tree, project.name, f"{project.rel}/", repo=repo)
        bundles[project_dir] = bundle
        if project_dir not in selected or (only is not None and project_dir not in only):
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
    ordered = [results[p.dir] for p in projects if p.dir in results]
    if not cross:
        return ordered
    started = time.perf_counter()
    collisions = cross_project_findings(
        list(bundles.values()), selected={f"{by_dir[d].rel}/" for d in selected}
    )
    return [
        *ordered,
        CaseResult(CHECK, CROSS_PROJECT, collisions, seconds=time.perf_counter() - started),
    ]
