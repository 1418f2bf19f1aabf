"""Which projects a run checks: ``--project`` names, ``--changed-since`` changes, or all.

A :class:`Selection` also says whether the repo-wide inputs (the template, the tool) are in
scope, and keeps every project, for the checks that compare them all (cross-project, sync).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from monostack.errors import UserError
from monostack.projects import PROJECTS_DIR, TEMPLATE_DIR, Project, discover_projects


@dataclass(frozen=True)
class Selection:
    """The projects to check, and whether the repo-wide inputs (template, tool) are in scope."""

    projects: list[Project]
    everything: bool  # False when --changed-since saw no change to the template or the tool
    reason: str = ""  # why the repo-wide checks are out of scope, when they are
    monorepo: bool = True  # lint's <monorepo> case: tool, template, unowned root CI files
    all_projects: list[Project] | None = None
    named: tuple[Project, ...] = ()  # the projects --project allows, changed or not
    changed: frozenset[str] | None = None  # paths changed since --changed-since, if given


def _by_name(projects: list[Project], names: Iterable[str]) -> list[Project]:
    wanted: set[str] = set()
    for raw in names:
        name = raw.strip().rstrip("/")
        name = name.removeprefix(PROJECTS_DIR + "/")
        match = [p for p in projects if name in (p.name, p.dir)]
        if not match:
            known = ", ".join(p.name for p in projects) or f"none yet in {PROJECTS_DIR}/"
            raise UserError(
                f"--project {raw!r}: no such project (known: {known}); give a project name or "
                f"its directory under {PROJECTS_DIR}/"
            )
        wanted.update(p.dir for p in match)
    return [p for p in projects if p.dir in wanted]


def select(root: Path, names: list[str] | None, changed_since: str | None) -> Selection:
    """Projects named by ``names`` (name or directory) and/or touched since ``changed_since``.

    Both given: the intersection. Neither: every project. Lint's ``<monorepo>`` case is in
    scope with neither, or when ``--changed-since`` saw a global change or a change to a root
    CI file no project owns; ``--project`` alone leaves it out.
    """
    projects = discover_projects(root)
    everything = True
    reason = ""
    monorepo = not names
    chosen = projects
    changed = None
    if names:
        chosen = _by_name(projects, names)
    named = tuple(chosen)
    if changed_since is not None:
        from monostack.affected import affected

        found = affected(root, changed_since, projects)
        monorepo = found.monorepo
        changed = found.changed
        if not found.global_change:
            everything = False
            reason = f"no change to {TEMPLATE_DIR}/, monorepo.yml or the tool since {changed_since}"
            wanted = {p.dir for p in found.projects}
            chosen = [p for p in chosen if p.dir in wanted]
    return Selection(chosen, everything, reason, monorepo, projects, named, changed)


def select_projects(
    root: Path, names: list[str] | None, changed_since: str | None
) -> list[Project]:
    """The projects to check: see :func:`select`."""
    return select(root, names, changed_since).projects
