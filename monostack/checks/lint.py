"""``invoke lint``: ruff, yamllint, CI schemas, zizmor and Jinja2 syntax, one case per project.

Cases: one per project (ruff check + ruff format --check on its Python, yamllint on its CI YAML,
``databricks.yml`` and ``resources/`` YAML, and GitLab's schema on its GitLab pipelines, which
the root includes in place rather than copies) and one for the monorepo itself (ruff on the tool,
every CI check on the root CI files, every template file parses as Jinja2, ``stack.yml``
loads). Ruff runs as few times as possible over many paths, in the background while the
in-process checks run; its findings are then split back per project.

The files each case covers are chosen in :mod:`monostack.checks.lint_scope`, ruff runs in
:mod:`monostack.checks.ruff_batch`, the template's checks are :mod:`monostack.checks.template_lint`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path

from monostack.checks import ERROR, MONOREPO, CaseResult, Finding
from monostack.checks.ci_files import (
    GITLAB_CI,
    YAMLLINT_FILES,
    YamllintSetup,
    check_ci_file_sets,
    is_ci_path,
    process_context,
    schema_findings,
    schema_for,
    yaml_parse_findings,
    yamllint_findings,
    yamllint_setup,
)
from monostack.checks.lint_scope import (
    CHECK,
    parse_only_findings,
    project_yaml_files,
    root_ci_files,
    split_hand_written,
)
from monostack.checks.ruff_batch import RuffBatch
from monostack.checks.template_lint import template_findings
from monostack.errors import not_utf8
from monostack.projects import PROJECTS_DIR, TEMPLATE_DIR, Project

TOOL_PATHS = ("monostack", "tasks.py", "tests")  # the tool itself, linted with the repo's config
PARALLEL_YAML_FILES = 60  # per extra worker process: below this, one process is faster


def run_lint(
    root: Path,
    projects: list[Project],
    jobs: int | None = None,
    monorepo: bool = True,
    lint_hand_written: bool = False,
) -> list[CaseResult]:
    """Lint each project and (``monorepo``) the monorepo; one case per project, then MONOREPO.

    A project's case covers its own files, every CI check on its CI files, and the root
    copies sync made of them: a copy that is exactly its source under the sync header is not
    checked again (its source's findings stand for it); an edited or stale copy is checked
    as it is. The MONOREPO case covers the tool, the template, ``monorepo.yml`` and the root
    CI files no project owns: the monorepo's own are linted, the team's hand-written ones only
    parsed (sync checks them for conflicts) unless ``lint_hand_written``
    (``monostack.lint_hand_written`` in ``invoke.yaml``). Ruff runs in the background
    meanwhile; many project YAML files are spread over ``jobs`` worker processes.
    """
    root = Path(root)
    cases = {p.name: CaseResult(CHECK, p.name) for p in projects}
    if monorepo:
        cases[MONOREPO] = CaseResult(CHECK, MONOREPO)
    owners = {p.rel: p.name for p in projects}

    tool = [t for t in TOOL_PATHS if (root / t).exists()] if monorepo else []
    ruff = RuffBatch(root, projects, tool)
    t0 = time.perf_counter()
    ruff.start()
    try:
        setup = yamllint_setup(root, CHECK)
        items = [
            (p.name, rel)
            for p in projects
            for rel in _rel_paths(root, project_yaml_files(p))
            if not is_ci_path(rel.removeprefix(p.rel + "/"))
        ]
        pool, pending = _start_yamllint(root, items, jobs)
        try:
            if pending is None:  # few files: here, sharing the memo with the CI files
                project_findings = _yamllint_items(root, items, setup)
            ci_sets = _ci_file_sets(root, projects, monorepo)
            hand_written: dict[str, bytes] = {}
            if monorepo and not lint_hand_written:
                ci_sets[MONOREPO], hand_written = split_hand_written(ci_sets[MONOREPO])
            own = {p.name: _project_yamllint(root, p.rel, p.name) for p in projects}
            own = {name: found for name, found in own.items() if found is not None}
            for finding in check_ci_file_sets(ci_sets, CHECK, root, setup, own):
                cases[finding.project].findings.append(finding)
            if monorepo:
                mono = cases[MONOREPO]
                mono.findings += parse_only_findings(hand_written)
                mono.findings += template_findings(root / TEMPLATE_DIR, root)
            if pending is not None:
                project_findings = [f for future in pending for f in future.result()]
        finally:
            if pool is not None:
                pool.shutdown()
        for finding in project_findings:
            cases[finding.project].findings.append(finding)
    finally:
        ruff_findings, _ = ruff.collect()
    for finding in ruff_findings:
        owner = _owner(finding.file, owners)
        if owner in cases:
            cases[owner].findings.append(_with_project(finding, owner))
    elapsed = round((time.perf_counter() - t0) / max(1, len(cases)), 3)  # shared, split evenly
    for case in cases.values():
        case.findings.sort(key=Finding.order)
        case.seconds = elapsed
    return [cases[p.name] for p in projects] + ([cases[MONOREPO]] if monorepo else [])


def _ci_file_sets(
    root: Path, projects: list[Project], monorepo: bool
) -> dict[str, dict[str, bytes]]:
    """Case name -> the CI files (repo-relative path -> bytes) it checks in full: each
    project's own CI files and its root copies that differ from them; for MONOREPO the root
    CI files that no project owns."""
    from monostack.workflows.header import managed_file, parse_managed

    by_rel = {p.rel: p for p in projects}
    sets: dict[str, dict[str, bytes]] = {MONOREPO: {}} if monorepo else {}
    sets.update({p.name: {} for p in projects})
    for p in projects:
        for path in project_yaml_files(p):
            rel = path.relative_to(root).as_posix()
            if is_ci_path(rel.removeprefix(p.rel + "/")):
                sets[p.name][rel] = path.read_bytes()
    for rel, data in root_ci_files(root).items():
        managed = parse_managed(data)
        parts = managed.origin.split("/") if managed else []
        owner = by_rel.get("/".join(parts[:2])) if parts[:1] == [PROJECTS_DIR] else None
        if owner is None:
            if (managed is None or parts[:1] != [PROJECTS_DIR]) and monorepo:
                sets[MONOREPO][rel] = data
            continue  # a copy of an unselected project's file: that project's business
        source = sets[owner.name].get(managed.origin)
        if source is not None and managed_file(managed.origin, source) == data:
            continue  # exactly its source plus the header: checked at the source
        sets[owner.name][rel] = data
    return sets


def _rel_paths(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def _start_yamllint(root: Path, items: list[tuple[str, str]], jobs: int | None):
    """Spread many files over worker processes; None, None when not worth a process."""
    jobs = min(jobs or os.cpu_count() or 1, len(items) // PARALLEL_YAML_FILES)
    if jobs < 2:
        return None, None
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=process_context())
    chunks = [items[i::jobs] for i in range(jobs)]
    return pool, [pool.submit(_yamllint_chunk, str(root), chunk) for chunk in chunks]


def _yamllint_chunk(root: str, items: list[tuple[str, str]]) -> list[Finding]:
    return _yamllint_items(Path(root), items, yamllint_setup(Path(root), CHECK))


def _yamllint_items(
    root: Path, items: list[tuple[str, str]], setup: YamllintSetup
) -> list[Finding]:
    """yamllint each (project, repo-relative path); a broken config is reported once, by the
    MONOREPO case. A project with a yamllint config of its own (e.g. an adopted one) is linted
    with that instead."""
    findings = []
    own: dict[str, YamllintSetup] = {}
    for project, rel in items:
        folder = "/".join(rel.split("/")[:2])
        if folder not in own:
            own[folder] = _project_yamllint(root, folder, project) or setup
            if own[folder].error is not None and own[folder] is not setup:
                findings.append(own[folder].error)
        setup_here = own[folder]
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            findings.append(Finding(CHECK, project, rel, None, ERROR, not_utf8(exc)))
            continue
        findings += yamllint_findings(rel, text, project, CHECK, setup_here)
        if schema_for(rel) == GITLAB_CI:  # included in place by the root: checked here
            parsed = yaml_parse_findings(rel, text, project, CHECK)
            findings += parsed or schema_findings(rel, text, GITLAB_CI, project, CHECK)
    return findings


def _project_yamllint(root: Path, folder: str, project: str) -> YamllintSetup | None:
    """The project's own yamllint config (``projects/<dir>/.yamllint.yml``), if it has one."""
    if not any((root / folder / name).is_file() for name in YAMLLINT_FILES):
        return None
    found = yamllint_setup(root / folder, CHECK)
    if found.error is None:
        return found
    error = found.error
    where = Finding(CHECK, project, f"{folder}/{error.file}", None, ERROR, error.message)
    return dataclasses.replace(found, error=where)


def _owner(file: str, owners: Mapping[str, str]) -> str:
    parts = file.split("/")
    if len(parts) >= 2 and parts[0] == PROJECTS_DIR:
        return owners.get(f"{parts[0]}/{parts[1]}", MONOREPO)
    return MONOREPO


def _with_project(finding: Finding, project: str) -> Finding:
    from dataclasses import replace

    return replace(finding, project=project)
