"""``invoke update-projects``: bring projects up to date with a template that moved on.

For each selected project: render the template it was born with (its recorded base tree, read
from git) and the current template, both with its answers, and merge the difference into the
project three ways (:mod:`monostack.merge`). Planning is pure; applying rewrites each project
in one atomic step (:func:`monostack.dirswap.rewrite_directory`), then records the new base in
``.stack-answers.yml`` (also for a project with conflicts: once the user resolves the markers
and commits, it is up to date).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from monostack import basetree
from monostack.config import MonorepoConfig, load_config
from monostack.dirswap import rewrite_directory
from monostack.errors import UserError
from monostack.merge import CONFLICT, FileMerge, Labels, merge_trees
from monostack.projects import (
    ANSWERS_FILE,
    PROJECTS_DIR,
    TEMPLATE_DIR,
    TEMPLATE_VERSION_KEY,
    Project,
    discover_projects,
    recorded_answers_problem,
    render_answers_file,
)
from monostack.repolock import repo_lock
from monostack.template import RESERVED_NAMES, StackTemplate, load_template
from monostack.yamlutil import load_yaml_text

CI_PREFIXES = (".github/", ".azure/", ".gitlab/")
# In .stack-answers.yml: fnmatch globs of the only paths update-projects merges (adopted
# projects: their CI files; their code is the team's, not the template's).
MANAGED_KEY = "_managed_paths"
COMMAND = "invoke update-projects"
SCRATCH = "monostack/tmp"  # under the git directory: invisible to git status, same file system


@dataclass
class ProjectPlan:
    """What updating one project means. ``error`` set: the project cannot be updated."""

    project: Project
    base_version: str = ""
    new_version: str = ""
    files: list[FileMerge] = field(default_factory=list)
    answers_file: bytes | None = None  # the new .stack-answers.yml, when it changes
    added: dict[str, Any] = field(default_factory=dict)  # new parameters and their values
    removed: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def conflicts(self) -> list[FileMerge]:
        return [f for f in self.files if f.action == CONFLICT]

    @property
    def behind(self) -> bool:
        return self.error is None and (self.answers_file is not None or bool(self.files))

    def changes(self) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {f.path: f.data for f in self.files if f.writes}
        if self.answers_file is not None:
            out[ANSWERS_FILE] = self.answers_file
        return out

    @property
    def touches_ci(self) -> bool:
        return any(f.path.startswith(CI_PREFIXES) and f.writes for f in self.files)


def user_answers(recorded: dict[str, Any]) -> dict[str, Any]:
    """The answers proper: no ``_template_*`` bookkeeping, no names the engine derives."""
    return {k: v for k, v in recorded.items() if not k.startswith("_") and k not in RESERVED_NAMES}


def _local_files(project: Project, paths: Iterable[str]) -> dict[str, bytes | None]:
    """The project's content of ``paths`` (None: absent). A symlink is never read through."""
    local: dict[str, bytes | None] = {}
    for rel in paths:
        path = project.path / rel
        if path.is_symlink() or any(p.is_symlink() for p in path.parents if p != project.path):
            raise UserError(
                f"{project.rel}/{rel}: is or lies under a symlink, which update-projects does "
                "not follow; replace it with a real file"
            )
        local[rel] = path.read_bytes() if path.is_file() else None
    return local


def plan_project(
    root: Path,
    project: Project,
    current: StackTemplate,
    current_tree: str,
    config: MonorepoConfig,
    base_tree: str | None = None,
    templates: dict[str, StackTemplate] | None = None,
) -> ProjectPlan:
    """Plan one project's update; writes nothing. ``templates`` caches base templates by tree."""
    plan = ProjectPlan(project, new_version=current.version)
    where = f"{project.rel}/{ANSWERS_FILE}"
    base_tree = base_tree or project.answers.get(basetree.TREE_KEY)
    if not project.answers:
        plan.error = f"{where}: not found, so its answers and base are unknown; adopt it first"
        return plan
    if not isinstance(base_tree, str) or not base_tree:
        plan.error = (
            f"{where}: records no {basetree.TREE_KEY} (the template it was rendered from); "
            "pass --base REF, a commit whose stack_template/ it was rendered from "
            "(e.g. --base HEAD if the template has not changed since)"
        )
        return plan
    try:
        cache = templates if templates is not None else {}
        if base_tree not in cache:
            cache[base_tree] = basetree.load_base_template(root, base_tree)
        base = cache[base_tree]
        plan.base_version = base.version
        given = user_answers(project.answers)
        if base_tree == current_tree:  # rendered from this very template: answers must fit it
            why = recorded_answers_problem(project.answers, current)
            if why:
                raise UserError(f"{where}: {why}")
        unknown = [k for k in given if k not in base.parameters and k not in current.parameters]
        if unknown:
            raise UserError(
                f"{where}: unknown key {unknown[0]!r}: neither template {base.version} (its "
                f"base) nor {current.version} has such a parameter; correct its name or remove it"
            )
        try:
            base_answers = base.resolve_recorded(given, config)
        except UserError as exc:
            raise UserError(
                f"{where}: template {base.version} (its base) rejects its answers: {exc}"
            ) from None
        try:
            new_answers = current.resolve_recorded(given, config)
        except UserError as exc:
            raise UserError(f"{where}: the current template rejects its answers: {exc}") from None
        plan.removed = [k for k in given if k not in current.parameters]
        plan.added = {
            k: v for k, v in new_answers.items() if k in current.parameters and k not in given
        }
        base_render = base.render_project(base_answers, config)
        new_render = current.render_project(new_answers, config)
    except UserError as exc:
        plan.error = exc.message
        return plan
    managed = project.answers.get(MANAGED_KEY)
    for render in (base_render, new_render):
        render.pop(ANSWERS_FILE, None)
        if isinstance(managed, list):
            for rel in [r for r in render if not any(fnmatchcase(r, str(g)) for g in managed)]:
                del render[rel]
    short = lambda tree: tree[:7]  # noqa: E731
    labels = Labels(
        local=f"{project.rel} (yours)",
        base=f"template {plan.base_version} ({short(base_tree)})",
        new=f"template {current.version} ({short(current_tree)})",
    )
    local = _local_files(project, set(base_render) | set(new_render))
    plan.files = merge_trees(base_render, new_render, local, labels)
    extra = {
        k: v
        for k, v in project.answers.items()
        if k.startswith("_") and k not in (TEMPLATE_VERSION_KEY, basetree.TREE_KEY)
    }
    answers = render_answers_file(new_answers, current.version, current_tree, extra)
    if not _same_answers(project.path / ANSWERS_FILE, answers):
        plan.answers_file = answers
    return plan


def _same_answers(path: Path, new: bytes) -> bool:
    """Same data (comments and the header may differ: they are not what an update changes)."""
    if not path.is_file():
        return False
    old = path.read_bytes()
    if old == new:
        return True
    try:
        before = load_yaml_text(old.decode("utf-8"), str(path))
    except (UserError, UnicodeDecodeError):
        return False
    return before == load_yaml_text(new.decode("utf-8"), str(path))


def dirty_projects(root: Path, projects: list[Project]) -> dict[str, list[str]]:
    """Uncommitted (staged, unstaged, untracked) files per project directory."""
    if not projects:
        return {}
    out = basetree.git(
        root, "status", "--porcelain", "-z", "--untracked-files=all", "--",
        *(p.rel for p in projects),
    )  # fmt: skip
    dirty: dict[str, list[str]] = {}
    prefix = basetree.work_tree_prefix(root)  # porcelain paths start at the top of the repo
    entries = out.split(b"\0")
    i = 0
    while i < len(entries):
        entry = entries[i].decode("utf-8", "replace")
        i += 1
        if not entry:
            continue
        if entry[0] in "RC":
            i += 1  # a rename's source path follows
        path = entry[3:].removeprefix(prefix)
        parts = path.split("/")
        if len(parts) > 1 and parts[0] == PROJECTS_DIR:
            dirty.setdefault(parts[1], []).append(path)
    return dirty


@dataclass
class UpdateResult:
    plans: list[ProjectPlan]
    mode: str  # "apply", "check" or "dry-run"
    synced: list[str] = field(default_factory=list)  # sync-workflows output, with --sync
    sync_skipped: str = ""

    @property
    def exit_code(self) -> int:
        if any(p.error or p.conflicts for p in self.plans):
            return 1
        return 1 if self.mode == "check" and any(p.behind for p in self.plans) else 0


def select(root: Path, names: list[str] | None) -> list[Project]:
    projects = discover_projects(root, check_answers=False)  # reconciled per project below
    if not names:
        return projects
    chosen = []
    for name in names:
        match = [p for p in projects if name in (p.name, p.dir)]
        if not match:
            known = ", ".join(p.name for p in projects) or "none"
            raise UserError(f"--project {name!r}: no such project (projects: {known})")
        if match[0] not in chosen:
            chosen.append(match[0])
    return chosen


def update_projects(
    root: Path,
    names: list[str] | None = None,
    base: str | None = None,
    check: bool = False,
    dry_run: bool = False,
    sync: bool = False,
    on_file: Callable[[str], None] | None = None,
) -> UpdateResult:
    """The whole task: plan every selected project, then (unless checking) apply each plan."""
    root = Path(root)
    if not basetree.in_git_repo(root):
        raise UserError(f"{root}: not a git repository; update-projects reads bases from git")
    mode = "check" if check else "dry-run" if dry_run else "apply"
    projects = select(root, names)
    if not projects:
        raise UserError(f"no projects under {root / PROJECTS_DIR}; nothing to update")
    config = load_config(root)
    current = load_template(root / TEMPLATE_DIR)
    # the current template is the new base: in the object database (and kept) before use
    current_tree = basetree.record_template_tree(root) if mode == "apply" else current_tree_id(root)
    base_tree = basetree.resolve_base(root, base) if base else None
    cache: dict[str, StackTemplate] = {}
    plans = [
        plan_project(root, p, current, current_tree, config, base_tree, cache) for p in projects
    ]
    result = UpdateResult(plans, mode)
    if mode != "apply":
        return result
    with repo_lock(root):  # one writer at a time; recovers what a killed run left
        _apply(root, plans, result, sync, on_file)
    return result


def _apply(
    root: Path,
    plans: list[ProjectPlan],
    result: UpdateResult,
    sync: bool,
    on_file: Callable[[str], None] | None,
) -> None:
    # a project with nothing to do may be dirty (e.g. conflicts being resolved); one to write
    # may not: the update must be reviewable, and undoable, with git
    dirty = dirty_projects(root, [p.project for p in plans if p.behind])
    if dirty:
        first = next(iter(dirty.values()))
        raise UserError(
            f"{', '.join(f'{PROJECTS_DIR}/{d}' for d in dirty)}: uncommitted changes "
            f"({', '.join(first[:3])}{', ...' if len(first) > 3 else ''}); commit or stash "
            "them first, so the update can be reviewed and undone with git; nothing written"
        )
    scratch = basetree.git_dir(root) / SCRATCH
    for plan in plans:
        if plan.behind:
            rewrite_directory(plan.project.path, plan.changes(), scratch, on_file=on_file)
    if sync and any(p.touches_ci for p in plans):
        if any(p.conflicts for p in plans):
            result.sync_skipped = "conflicts to resolve first"
        else:
            from monostack.workflows import sync_workflows

            outcome = sync_workflows(root)
            result.synced = outcome.output_lines() + outcome.error_lines()


def current_tree_id(root: Path) -> str:
    """The current template's tree id without keeping anything (for --check / --dry-run)."""
    clean = _clean_template(root)
    if clean is not None:
        return clean
    return basetree.record_template_tree(root, keep=False)


def _clean_template(root: Path) -> str | None:
    """HEAD's stack_template/ tree when the work tree has no changes to it, else None."""
    status = basetree.git(
        root, "status", "--porcelain", "--untracked-files=all", "--ignored", "--", TEMPLATE_DIR
    )
    if status.strip():
        return None
    try:
        return basetree.resolve_base(root, "HEAD")
    except UserError:
        return None


# --------------------------------------------------------------------------- report
def _param_lines(plan: ProjectPlan) -> list[str]:
    lines = [f"    new parameter {k}: {v!r} (its default)" for k, v in plan.added.items()]
    lines += [f"    removed parameter {k}: dropped from {ANSWERS_FILE}" for k in plan.removed]
    return lines


def report_lines(result: UpdateResult) -> list[str]:
    """One report for all projects: per project its state and files, then a summary."""
    done = result.mode == "apply"
    lines: list[str] = []
    counts = {"updated": 0, "conflicts": 0, "up to date": 0, "failed": 0}
    for plan in result.plans:
        head = f"{plan.project.rel} ({plan.project.name})"
        if plan.error:
            counts["failed"] += 1
            lines.append(f"{head}: error: {plan.error}")
            continue
        if not plan.behind:
            counts["up to date"] += 1
            lines.append(f"{head}: up to date (template {plan.new_version})")
            continue
        state = "conflicts" if plan.conflicts else "updated"
        counts[state] += 1
        verb = {"updated": "updated", "conflicts": "updated with conflicts"}[state]
        if not done:
            verb = "behind: would be " + verb
        versions = f"template {plan.base_version} -> {plan.new_version}"
        lines.append(f"{head}: {verb} ({versions})")
        lines += [f"    {f.describe()}" for f in plan.files]
        if plan.answers_file is not None:
            lines.append(f"    {'update':<8} {ANSWERS_FILE}  (new base recorded)")
        lines += _param_lines(plan)
    lines.append(_summary(result, counts))
    lines += _next_steps(result)
    return lines


def _summary(result: UpdateResult, counts: dict[str, int]) -> str:
    behind = [p.project.name for p in result.plans if p.behind]
    failed = [p.project.name for p in result.plans if p.error]
    if result.mode == "check":
        if failed:
            ahead = f"{len(behind)} behind the template, " if behind else ""
            return f"{ahead}{len(failed)} could not be checked: {', '.join(failed)} (see above)."
        if not behind:
            return f"All {len(result.plans)} project(s) are up to date with the template."
        return f"{len(behind)} project(s) behind the template: {', '.join(behind)}; run {COMMAND}."
    if result.mode == "dry-run":
        counts = {
            "to update": counts["updated"],
            "would conflict": counts["conflicts"],
            "up to date": counts["up to date"],
            "failed": counts["failed"],
        }
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    prefix = "Dry run, nothing written: " if result.mode == "dry-run" else ""
    return prefix + ", ".join(parts) + "."


def _next_steps(result: UpdateResult) -> list[str]:
    if result.mode != "apply":
        return []
    lines = []
    if any(p.conflicts for p in result.plans):
        lines.append(
            "Resolve the conflict markers (<<<<<<< ... >>>>>>>) in the files above, then commit; "
            "the new base is already recorded."
        )
    if result.synced:
        lines += ["sync-workflows:", *(f"  {line}" for line in result.synced)]
    elif any(p.touches_ci for p in result.plans):
        why = f" ({result.sync_skipped})" if result.sync_skipped else ""
        lines.append(f"CI files changed: run `invoke sync-workflows` next{why}.")
    return lines
