"""Plan and apply ``invoke sync-workflows``: root CI files made from every project's CI files.

:func:`plan_sync` only reads; it returns every create/update/delete and every conflict.
:func:`apply_sync` writes a conflict-free plan all or nothing. Running the two again right
after changes nothing, byte for byte: the managed root file is a fixed function of its source.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from monostack.checks import ERROR, MONOREPO, Finding
from monostack.config import MonorepoConfig
from monostack.errors import UserError, not_utf8
from monostack.journal import JOURNAL_FILE, stray_files
from monostack.projects import PROJECTS_DIR, discover_projects
from monostack.repolock import LOCK_FILE, repo_lock
from monostack.safeio import read_file
from monostack.treeio import apply_changes
from monostack.workflows.gitlab import GITLAB_ROOT, compose_sources, pipeline_files, taken_message
from monostack.workflows.gitlab_rules import gitlab_conflicts
from monostack.workflows.header import damaged_header, managed_file, parse_managed
from monostack.workflows.rules import (
    Conflict,
    Entry,
    collision_conflicts,
    parse,
    scope_conflicts,
)
from monostack.workflows.sources import CI_DIRS, Source, collect_sources, is_doc, scan_root

CHECK_NAME = "sync-workflows"
CREATE, UPDATE, DELETE = "create", "update", "delete"
COMMAND = "invoke sync-workflows"


@dataclass(frozen=True)
class Change:
    """One root file to create, update (``data`` is the new content) or delete (``data`` None)."""

    action: str
    path: str
    origin: str  # the source file, or for a delete the source its header names
    project: str  # project name, or MONOREPO
    data: bytes | None
    before: bytes | None  # the content the plan was made against (None: no file)
    forced: bool = False  # overwrites or deletes hand edits because of --force

    def describe(self) -> str:
        if self.action == DELETE:
            text = f"delete {self.path} (its source {self.origin} is gone)"
        else:
            text = f"{self.action} {self.path} (from {self.origin})"
        return text + (" [discarding hand edits: --force]" if self.forced else "")


@dataclass
class SyncPlan:
    changes: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # managed root files already up to date

    @property
    def in_sync(self) -> bool:
        return not self.changes and not self.conflicts

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    def lines(self) -> list[str]:
        return [change.describe() for change in self.changes]


def _in_ci_dir(path: str) -> bool:
    return path.rpartition("/")[0] in CI_DIRS


def _project_of_origin(projects: dict[str, str], origin: str) -> str:
    """The project a deleted file's header names (by directory), if it still exists."""
    parts = origin.split("/")
    if len(parts) > 2 and parts[0] == PROJECTS_DIR:
        return projects.get(parts[1], MONOREPO)
    return MONOREPO


def _edited(path: str, origin: str, gone: bool) -> str:
    what = (
        f"its source {origin} is gone, and deleting it would lose those edits; pass --force "
        "to delete it anyway, or remove its three monostack header lines to keep it as a "
        "hand-written file"
        if gone
        else f"move your edit into {origin} (the source), then run {COMMAND} again, or pass "
        "--force to overwrite the root file"
    )
    return f"{path}: edited by hand in the root (it no longer matches its monostack-hash); {what}"


def _taken(path: str, source: Source, damaged: bool) -> str:
    if path == GITLAB_ROOT and not damaged:
        return taken_message(source)
    why = (
        "has a damaged monostack header (so sync no longer knows it as its own)"
        if damaged
        else "is a hand-written file (no monostack header)"
    )
    return (
        f"{path} {why}, but {source.origin} would be synced to that name; rename "
        f"{source.origin}, or rename or delete {path} (if it is an old hand copy of that "
        f"file, delete it and run {COMMAND} again)"
    )


def _copy(path: str, twin: Source) -> str:
    return (
        f"{path} carries the monostack header of {twin.origin}, which is synced to "
        f"{twin.path}: it looks like a copy; delete it, or remove its three '# ...monostack' "
        "header lines to keep it as a hand-written file"
    )


def plan_sync(root: Path, force: bool = False, config: MonorepoConfig | None = None) -> SyncPlan:
    """Compare what the sources want in the root with what is there. Writes nothing.
    ``config``: ``monorepo.yml`` when the caller has loaded it already."""
    root = Path(root)
    projects = discover_projects(root)
    sources = collect_sources(root, projects, config)
    existing = scan_root(root)
    plan = SyncPlan()
    gitlab_base = next((s for s in sources if s.path == GITLAB_ROOT and s.project is None), None)
    if gitlab_base is not None:
        plan.conflicts += gitlab_conflicts(pipeline_files(root, gitlab_base, projects))
        sources = compose_sources(root, sources, projects)
    by_name: dict[str, list[Source]] = {}
    for source in sources:
        by_name.setdefault(source.path.casefold(), []).append(source)
    blocked: set[str] = set()  # root paths whose sources cannot be written
    desired: dict[str, Source] = {}
    for group in by_name.values():
        if len(group) > 1:
            blocked.update(s.path for s in group)
            origins = " and ".join(s.origin for s in group)
            plan.conflicts.append(
                Conflict(
                    f"{origins} would both be synced to {group[0].path}; rename one of them "
                    "(root names are the file name, prefixed with '<project name>-' unless "
                    "it already starts with it)",
                    group[1].origin,
                    None,
                    group[1].project_name,
                )
            )
            continue
        desired[group[0].path] = group[0]

    existing_folded = {path.casefold(): path for path in existing}
    handled: set[str] = set()
    for path, source in sorted(desired.items()):
        data = managed_file(source.origin, source.body, markdown=is_doc(path))
        current_path = path if path in existing else existing_folded.get(path.casefold())
        current = existing.get(current_path) if current_path else None
        header = parse_managed(current) if current is not None else None
        if current is None or (current_path != path and header is not None):
            plan.changes.append(
                Change(CREATE, path, source.origin, source.project_name, data, None)
            )
            continue
        handled.add(current_path)
        if header is None:
            blocked.add(path)
            plan.conflicts.append(
                Conflict(
                    _taken(current_path, source, damaged_header(current)),
                    source.origin,
                    None,
                    source.project_name,
                )
            )
        elif current == data:
            plan.unchanged.append(path)
        elif header.intact or header.body == source.body or force:
            forced = not (header.intact or header.body == source.body)
            plan.changes.append(
                Change(UPDATE, path, source.origin, source.project_name, data, current, forced)
            )
        else:
            blocked.add(path)
            plan.conflicts.append(
                Conflict(_edited(path, source.origin, False), path, None, source.project_name)
            )

    names = {project.dir: project.name for project in projects}
    by_origin = {source.origin: source for source in desired.values()}
    created = {change.path for change in plan.changes if change.action == CREATE}
    for path, current in sorted(existing.items()):
        header = parse_managed(current)
        if path in handled or path in desired or header is None or path in blocked:
            continue
        project = _project_of_origin(names, header.origin)
        twin = by_origin.get(header.origin)
        if twin is not None and twin.path not in created:
            # Its source still exists and already has its root file: a copy made by hand (or a
            # workflow parked elsewhere), not a leftover of a removed or renamed source.
            plan.conflicts.append(Conflict(_copy(path, twin), path, None, project))
            continue
        if header.intact or force:
            plan.changes.append(
                Change(DELETE, path, header.origin, project, None, current, not header.intact)
            )
        else:
            plan.conflicts.append(Conflict(_edited(path, header.origin, True), path, None, project))

    plan.conflicts.extend(_content_conflicts(sources, existing, blocked))
    plan.conflicts.extend(_stray_conflicts(root))
    plan.changes.sort(key=lambda c: c.path)
    plan.conflicts.sort(key=lambda c: (c.file, c.line or 0, c.message))
    return plan


def _stray_conflicts(root: Path) -> list[Conflict]:
    """Files an interrupted (killed) run left behind: the next writing run cleans up what its
    journal names; anything else is reported so it is never committed by accident."""
    found = stray_files(root)
    journaled = any(path.endswith(JOURNAL_FILE) for path in found)
    conflicts = []
    for path in found:
        if journaled or path.endswith(LOCK_FILE):
            what = f"run {COMMAND} (or any writing task): it finishes or rolls back that run"
        else:
            what = "compare it with the file it sits beside, keep what you need, then delete it"
        message = f"{path}: left behind by an interrupted monostack run; {what}"
        conflicts.append(Conflict(message, path, None, MONOREPO))
    return conflicts


def _content_conflicts(
    sources: list[Source], existing: dict[str, bytes], blocked: set[str]
) -> list[Conflict]:
    """Parse every root CI file as it would be after the sync and apply the rules to it."""
    own_paths: dict[str, set[str]] = {}
    for source in sources:
        if source.project is not None:
            own_paths.setdefault(source.project.dir, set()).add(source.path)
    entries: list[Entry] = []
    conflicts: list[Conflict] = []
    for source in sources:
        if is_doc(source.path):
            continue  # a guide, not a CI file: no CI rules apply
        try:
            text = source.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            conflicts.append(
                Conflict(
                    f"{source.origin}: {not_utf8(exc)}",
                    source.origin,
                    None,
                    source.project_name,
                )
            )
            continue
        own = frozenset(own_paths.get(source.project.dir, ())) if source.project else frozenset()
        entries.append(Entry(source.path, text, source.origin, source.project, own))
    for path, data in existing.items():
        if _in_ci_dir(path) and parse_managed(data) is None:
            entries.append(Entry(path, data.decode("utf-8", errors="replace"), None, None))
    parsed = []
    for entry in entries:
        doc, problem = parse(entry)
        if problem is not None:
            conflicts.append(problem)
            continue
        conflicts.extend(scope_conflicts(entry, doc))
        if not (entry.generated and entry.path in blocked):
            parsed.append((entry, doc))
    conflicts.extend(collision_conflicts(parsed))
    return conflicts


def apply_sync(root: Path, plan: SyncPlan, on_file: Callable[[str], None] | None = None) -> None:
    """Write ``plan``, all or nothing. Refuses a plan with conflicts or a root that moved on."""
    root = Path(root)
    if plan.conflicts:
        raise UserError(
            f"{len(plan.conflicts)} conflict(s) in the root CI files; nothing written: "
            f"fix them and run {COMMAND} again"
        )
    for change in plan.changes:
        target = root / change.path
        current = read_file(root, change.path) if os.path.lexists(target) else None
        if current != change.before:
            raise UserError(
                f"{change.path}: changed while {COMMAND} was running; nothing written: run it again"
            )
    apply_changes(root, {c.path: c.data for c in plan.changes}, on_file=on_file)


# ----------------------------------------------------------------------- the task
@dataclass
class SyncResult:
    """What ``invoke sync-workflows`` prints and its exit code."""

    plan: SyncPlan
    mode: str  # "apply", "check" or "dry-run"
    applied: bool

    @property
    def exit_code(self) -> int:
        if self.plan.conflicts:
            return 1
        return 1 if self.mode == "check" and self.plan.changes else 0

    def _counts(self) -> str:
        plan = self.plan
        return (
            f"{plan.count(CREATE)} to create, {plan.count(UPDATE)} to update, "
            f"{plan.count(DELETE)} to delete, {len(plan.unchanged)} up to date"
        )

    def output_lines(self) -> list[str]:
        plan = self.plan
        lines = plan.lines()
        if plan.conflicts:
            if lines:  # say plainly that none of it happened
                lines = ["Planned, once the conflicts are resolved:", *(f"  {ln}" for ln in lines)]
            lines.append(f"Nothing written: {len(plan.conflicts)} conflict(s) to resolve first.")
        elif self.applied:
            lines.append(
                f"Synced root CI files: {plan.count(CREATE)} created, {plan.count(UPDATE)} "
                f"updated, {plan.count(DELETE)} deleted, {len(plan.unchanged)} unchanged."
            )
        elif not plan.changes:
            lines.append(
                f"Root CI files are in sync ({len(plan.unchanged)} generated file(s) up to date)."
            )
        elif self.mode == "check":
            lines.append(f"Root CI files are out of date ({self._counts()}): run {COMMAND}.")
        else:
            lines.append(f"Dry run, nothing written: {self._counts()}.")
        return lines

    def error_lines(self) -> list[str]:
        return [f"error: {conflict.message}" for conflict in self.plan.conflicts]


def sync_workflows(
    root: Path, check: bool = False, dry_run: bool = False, force: bool = False
) -> SyncResult:
    """The whole ``invoke sync-workflows`` task: plan, and apply unless checking or dry-running."""
    mode = "check" if check else "dry-run" if dry_run else "apply"
    if mode != "apply":
        return SyncResult(plan=plan_sync(root, force=force), mode=mode, applied=False)
    with repo_lock(Path(root)):  # plan and apply against one state of the root
        plan = plan_sync(root, force=force)
        applied = False
        if plan.changes and not plan.conflicts:
            apply_sync(root, plan)
            applied = True
    return SyncResult(plan=plan, mode=mode, applied=applied)


def sync_findings(root: Path, config: MonorepoConfig | None = None) -> list[Finding]:
    """For ``invoke test-all``: an error per conflict and per pending change; none when in sync."""
    try:
        plan = plan_sync(Path(root), config=config)
    except UserError as exc:
        return [Finding.from_error(CHECK_NAME, MONOREPO, exc, Path(root))]
    findings = [
        Finding(CHECK_NAME, c.project, c.file, c.line, ERROR, c.message) for c in plan.conflicts
    ]
    findings += [
        Finding(
            CHECK_NAME,
            c.project,
            c.path,
            None,
            ERROR,
            f"root CI files are out of date: run {COMMAND} ({c.describe()})",
        )
        for c in plan.changes
    ]
    return sorted(findings, key=lambda f: (f.project, f.file, f.line or 0, f.message))
