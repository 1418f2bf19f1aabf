"""``invoke list-projects``: every project, its template version and state, in one view.

Cheap by design, for hundreds of projects: "behind" compares the recorded base tree with the
current template's tree id (no rendering), the sync state comes from one sync plan, and the last
commit of every project from one ``git log`` pass that stops once all are found.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from monostack import basetree
from monostack.errors import UserError
from monostack.projects import PROJECTS_DIR, TEMPLATE_DIR, TEMPLATE_VERSION_KEY, discover_projects
from monostack.template import load_template
from monostack.update import current_tree_id

UP_TO_DATE, BEHIND, NO_BASE = "up to date", "behind", "no base"
MAIN_ANSWERS = ("include_models_in_unity_catalog", "include_feature_store")
FORMATS = ("table", "json")


@dataclass
class ProjectInfo:
    name: str
    dir: str
    template_version: str | None
    template_tree: str | None
    template: str  # UP_TO_DATE, BEHIND or NO_BASE
    answers: dict[str, Any] = field(default_factory=dict)  # the main ones: UC, FS, choices
    ci_in_sync: bool | None = None  # None: no CI files of its own, or sync cannot tell
    last_commit: dict[str, str] | None = None  # hash, date, subject


@dataclass
class Listing:
    template_version: str
    template_tree: str | None
    projects: list[ProjectInfo]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"


def list_projects(root: Path) -> Listing:
    root = Path(root)
    template = load_template(root / TEMPLATE_DIR)
    in_git = basetree.in_git_repo(root)
    current = current_tree_id(root) if in_git else None
    projects = discover_projects(root)
    choices = [p.name for p in template.choice_parameters()]
    shown = list(MAIN_ANSWERS) + [c for c in choices if c not in MAIN_ANSWERS]
    sync = _sync_states(root, [p.name for p in projects])
    commits = _last_commits(root, [p.dir for p in projects]) if in_git else {}
    infos = []
    for project in projects:
        recorded = project.answers.get(basetree.TREE_KEY)
        if not isinstance(recorded, str) or not recorded:
            state = NO_BASE
        else:
            state = UP_TO_DATE if recorded == current else BEHIND
        version = project.answers.get(TEMPLATE_VERSION_KEY)
        infos.append(
            ProjectInfo(
                name=project.name,
                dir=project.rel,
                template_version=None if version is None else str(version),
                template_tree=recorded if isinstance(recorded, str) else None,
                template=state,
                answers={k: project.answers[k] for k in shown if k in project.answers},
                ci_in_sync=sync.get(project.name),
                last_commit=commits.get(project.dir),
            )
        )
    return Listing(template.version, current, infos)


def _sync_states(root: Path, names: list[str]) -> dict[str, bool | None]:
    """Per project: are its root CI copies as sync-workflows would write them?"""
    from monostack.workflows import plan_sync
    from monostack.workflows.sources import collect_sources

    try:
        plan = plan_sync(root)
        with_ci = {s.project_name for s in collect_sources(root)}
    except UserError:
        return {}
    behind = {c.project for c in plan.changes} | {c.project for c in plan.conflicts}
    return {n: (n not in behind) if n in with_ci or n in behind else None for n in names}


def _last_commits(root: Path, dirs: list[str]) -> dict[str, dict[str, str]]:
    """The newest commit touching each ``projects/<dir>/``, from one streamed ``git log``."""
    wanted = set(dirs)
    found: dict[str, dict[str, str]] = {}
    proc = subprocess.Popen(
        # --relative: paths from ``root`` even when it is a sub-folder of the repository
        [
            "git",
            "log",
            "--format=%x01%h%x00%cs%x00%s",
            "--name-only",
            "--relative",
            "--",
            f"{PROJECTS_DIR}/",
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    commit: dict[str, str] = {}
    try:
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("\x01"):
                sha, date, subject = (line[1:].split("\x00") + ["", ""])[:3]
                commit = {"hash": sha, "date": date, "subject": subject}
                continue
            parts = line.split("/")
            if len(parts) > 2 and parts[1] in wanted and parts[1] not in found:
                found[parts[1]] = commit
                if len(found) == len(wanted):
                    break
    finally:
        proc.kill()
        proc.wait()
    return found


def _yes_no(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else str(value)


def table_lines(listing: Listing) -> list[str]:
    """An aligned text table, then the current template's version."""
    head = ["project", "directory", "version", "template", "UC", "FS", "CI synced", "last commit"]
    rows = [head]
    for info in listing.projects:
        others = [f"{k}={_yes_no(v)}" for k, v in info.answers.items() if k not in MAIN_ANSWERS]
        commit = info.last_commit
        rows.append(
            [
                info.name,
                info.dir,
                info.template_version or "-",
                info.template,
                _yes_no(info.answers.get(MAIN_ANSWERS[0])),
                _yes_no(info.answers.get(MAIN_ANSWERS[1])),
                _yes_no(info.ci_in_sync),
                f"{commit['hash']} {commit['date']} {commit['subject']}" if commit else "-",
            ]
            + ([" ".join(others)] if others else [])
        )
    if any(len(r) > len(head) for r in rows):
        head.append("other choices")
    widths = [max(len(r[i]) for r in rows if len(r) > i) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
    tail = f"Template version {listing.template_version}"
    hints = ((BEHIND, "invoke update-projects"), (NO_BASE, "update-projects --base REF"))
    for state, hint in hints:
        names = [i.name for i in listing.projects if i.template == state]
        if names:
            tail += f"; {state}: {', '.join(names)} ({hint})"
    return [*lines, "", tail + "."]


def render_listing(listing: Listing, fmt: str) -> str:
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: choose one of: {', '.join(FORMATS)}")
    if fmt == "json":
        return listing.to_json()
    return "\n".join(table_lines(listing)) + "\n"
