"""The cases a run is made of, what each one reads, and what each one costs.

A :class:`Case` is one JUnit test case (a check on a project, on a render-matrix combination,
on ``<monorepo>`` or ``cross-project``). Listing them before anything runs lets the runner
look each one up in the result cache (:mod:`monostack.cache`) and split them over CI shards
(:mod:`monostack.shard`). ``inputs`` are the repo paths whose content decides the case's
outcome; the cache key adds the checker configurations and the tool versions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from monostack.checks import MONOREPO
from monostack.projects import PROJECTS_DIR, TEMPLATE_DIR, Project

LINT = "lint"
RENDER_MATRIX = "render-matrix"
BUNDLE_VALIDATE = "bundle-validate"
SYNC_WORKFLOWS = "sync-workflows"
EXTRA = "extra-checks"  # the team's own checks of monorepo.yml (monostack.checks.extra)
CHECKS = (LINT, RENDER_MATRIX, BUNDLE_VALIDATE, SYNC_WORKFLOWS, EXTRA)  # also the report order
CROSS_PROJECT = "cross-project"

CONFIG_FILE = "monorepo.yml"
TOOL_PATHS = ("monostack", "tasks.py", "tests")  # what lint's <monorepo> case runs ruff on
ROOT_CI_DIRS = (".github", ".azure", ".gitlab")
GITLAB_ROOT = ".gitlab-ci.yml"  # GitLab's one root file (it includes project pipelines in place)
# Seconds a case takes when no run has recorded it yet (measured on a 2-CPU machine, 100
# projects); recorded timings replace them after the first run.
DEFAULT_COST = {LINT: 0.3, RENDER_MATRIX: 0.1, BUNDLE_VALIDATE: 0.03, SYNC_WORKFLOWS: 0.5}
MONOREPO_LINT_COST = 0.6
CROSS_PROJECT_COST_PER_PROJECT = 0.01
SYNC_COST_PER_PROJECT = 0.025
# Seconds a check pays once in every shard that runs any of its cases, before its first case:
# ruff and zizmor processes and yamllint's set-up (lint), the template and zizmor
# (render-matrix), the bundle schema (bundle-validate). A run records the real figure under
# ``<check>/<start-up>``.
STARTUP = "<start-up>"
DEFAULT_STARTUP = {LINT: 0.4, RENDER_MATRIX: 0.6, BUNDLE_VALIDATE: 0.2, SYNC_WORKFLOWS: 0.0}


@dataclass(frozen=True)
class Case:
    check: str
    case: str  # project name, combination id, MONOREPO or CROSS_PROJECT
    inputs: tuple[str, ...] = ()
    project: Project | None = field(default=None, compare=False)
    extra: str = ""  # options that change the outcome (e.g. which projects cross-project sees)

    @property
    def id(self) -> str:
        return f"{self.check}/{self.case}"


# ---------------------------------------------------------------------------- root CI files
def root_ci_files(root: Path) -> list[str]:
    """Repo-relative paths of the root CI files: YAML under ``.github/``, ``.azure/`` and
    ``.gitlab/``, and ``.gitlab-ci.yml``."""
    found = [GITLAB_ROOT] if (Path(root) / GITLAB_ROOT).is_file() else []
    for top in ROOT_CI_DIRS:
        base = Path(root) / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix in (".yml", ".yaml") and path.is_file() and not path.is_symlink():
                found.append(path.relative_to(root).as_posix())
    return found


def root_owners(root: Path) -> dict[str, str | None]:
    """Root CI file -> the project directory (``projects/<dir>``) its sync header names as
    source, or None (the monorepo's own copies, hand-written files)."""
    from monostack.workflows.header import parse_managed

    owners: dict[str, str | None] = {}
    for rel in root_ci_files(root):
        try:
            with open(Path(root) / rel, "rb") as f:
                head = f.read(4096)
        except OSError:
            owners[rel] = None
            continue
        managed = parse_managed(head + b"\n")
        origin = managed.origin if managed else ""
        parts = origin.split("/")
        owners[rel] = "/".join(parts[:2]) if len(parts) > 2 and parts[0] == PROJECTS_DIR else None
    return owners


# ------------------------------------------------------------------------------- the cases
def lint_cases(
    root: Path, projects: Iterable[Project], monorepo: bool, owners: dict[str, str | None]
) -> list[Case]:
    """One case per project (its files and its root copies), and ``<monorepo>`` (the tool,
    the template, ``monorepo.yml`` and the root CI files no project owns) when in scope."""
    by_project: dict[str, list[str]] = {}
    unowned = []
    for rel, owner in owners.items():
        if owner is None:
            unowned.append(rel)
        else:
            by_project.setdefault(owner, []).append(rel)
    cases = [Case(LINT, p.name, (p.rel, *by_project.get(p.rel, ())), project=p) for p in projects]
    if monorepo:
        inputs = (*TOOL_PATHS, TEMPLATE_DIR, CONFIG_FILE, *unowned)
        cases.append(Case(LINT, MONOREPO, inputs))
    return cases


def bundle_cases(everyone: list[Project], projects: list[Project], online: bool) -> list[Case]:
    """One case per selected project; ``cross-project`` compares the bundles of all projects
    (and reports collisions that involve a selected one)."""
    tag = "online" if online else ""
    cases = [
        Case(BUNDLE_VALIDATE, p.name, (p.rel, CONFIG_FILE), project=p, extra=tag) for p in projects
    ]
    selected = ",".join(sorted(p.dir for p in projects))
    inputs = (CONFIG_FILE, *(p.rel for p in everyone))
    cases.append(Case(BUNDLE_VALIDATE, CROSS_PROJECT, inputs, extra=f"{tag};{selected}"))
    return cases


def sync_cases(everyone: list[Project]) -> list[Case]:
    inputs = (TEMPLATE_DIR, CONFIG_FILE, *ROOT_CI_DIRS, GITLAB_ROOT, *(p.rel for p in everyone))
    return [Case(SYNC_WORKFLOWS, MONOREPO, inputs)]


def matrix_cases(root: Path, cache, digests) -> list[Case]:
    """One case per render-matrix combination. Listing them means loading the template, so
    the list itself is remembered under the template's digest."""
    from monostack.cache import case_key

    inputs = (TEMPLATE_DIR, CONFIG_FILE)
    key = case_key(cache.fingerprint, digests, RENDER_MATRIX, "<combinations>", inputs)
    ids = cache.get_value(key)
    if not isinstance(ids, list):
        ids = combination_ids(root)
        if ids:
            cache.put_value(key, ids)
    return [Case(RENDER_MATRIX, case_id, inputs) for case_id in ids or [MONOREPO]]


def combination_ids(root: Path) -> list[str]:
    """The render-matrix case ids (empty when the template or monorepo.yml cannot load: the
    check then reports that as one ``<monorepo>`` case)."""
    from monostack.checks.render_matrix import _deterministic, matrix_combinations
    from monostack.config import load_config
    from monostack.errors import UserError
    from monostack.template import load_template

    try:
        template = _deterministic(load_template(Path(root) / TEMPLATE_DIR))
        return [c[0] for c in matrix_combinations(template, load_config(root))]
    except UserError:
        return []


def cost(case: Case, timings: dict[str, float], n_projects: int) -> float:
    """Recorded seconds when known, else an estimate by kind."""
    recorded = timings.get(case.id)
    if case.check == LINT and case.case == MONOREPO:
        # lint records one even share per case (its work is shared: one ruff, one zizmor);
        # this case also runs ruff on the tool and parses every template file
        return max(recorded or 0.0, MONOREPO_LINT_COST)
    if recorded is not None:
        return recorded
    if case.case == CROSS_PROJECT:
        return CROSS_PROJECT_COST_PER_PROJECT * n_projects
    if case.check == SYNC_WORKFLOWS:
        return DEFAULT_COST[SYNC_WORKFLOWS] + SYNC_COST_PER_PROJECT * n_projects
    return DEFAULT_COST[case.check]


def startup(case: Case, timings: dict[str, float]) -> tuple[str, float]:
    """(check, seconds its start-up takes in a shard): recorded when known, else estimated."""
    recorded = timings.get(f"{case.check}/{STARTUP}")
    return case.check, DEFAULT_STARTUP.get(case.check, 0.0) if recorded is None else recorded


def group(case: Case) -> str:
    """Cases that share work, and so belong in one shard: render-matrix combinations of one
    cloud and CI platform (``aws/github_actions/...``) render the same CI files, checked once
    per process; every other case stands alone."""
    if case.check == RENDER_MATRIX:
        return "/".join([case.check, *case.case.split("/")[:2]])
    return case.id


def describe(cases: Iterable[Case]) -> str:
    return json.dumps([c.id for c in cases])
