"""Conflict rules over the root CI files as they would be after a sync.

Works on PyYAML node trees rather than loaded data: nodes carry line numbers, and GitHub's
``on:`` key stays the string ``on`` (a YAML 1.1 loader would turn it into ``True``). Values are
compared as literal text; CI expressions are never evaluated, except that
``${{ github.workflow }}`` in a concurrency group stands for the workflow's own name.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from monostack.checks import MONOREPO
from monostack.errors import UserError
from monostack.projects import Project
from monostack.workflows.sources import AZURE_DIR, GITHUB_DIR
from monostack.yamlutil import compose_yaml, load_yaml_text

_NULL_TAG = "tag:yaml.org,2002:null"
_PUSH_EVENTS = ("push", "pull_request", "pull_request_target")
_WORKFLOW_EXPR = re.compile(r"\$\{\{\s*github\.workflow\s*\}\}")
# Groups that hold one of these differ per workflow (or per run), so they cannot clash.
_PER_WORKFLOW = re.compile(r"github\.(workflow|workflow_ref|run_id)(?!\w)")
_GITHUB_WORKSPACE = re.compile(r"^\$\{\{\s*github\.workspace\s*\}\}/*")
# Azure variables that name the checkout of this repository (lower case).
_AZURE_SOURCE_ROOTS = (
    "$(build.sourcesdirectory)",
    "$(system.defaultworkingdirectory)",
    "$(build.repository.localpath)",
    "$(pipeline.workspace)/s",
)


@dataclass(frozen=True)
class Conflict:
    """One reason sync refuses to write: a single line naming both sides and the fix."""

    message: str
    file: str  # the file to fix, repo-relative
    line: int | None
    project: str  # project name, or MONOREPO


@dataclass(frozen=True)
class Entry:
    """One root CI file as it would be after the sync."""

    path: str  # root path
    text: str
    origin: str | None  # source file for generated entries; None for hand-written ones
    project: Project | None
    own_paths: frozenset[str] = frozenset()  # root paths of the same project's CI files

    @property
    def generated(self) -> bool:
        return self.origin is not None

    @property
    def file(self) -> str:
        """Where to fix it: the source for generated files, the root file otherwise."""
        return self.origin or self.path

    @property
    def project_name(self) -> str:
        return self.project.name if self.project is not None else MONOREPO

    def describe(self, node: yaml.Node | None) -> str:
        """``source:line (synced to root path)`` or ``root path:line (hand-written)``."""
        if self.origin is None:
            return f"{self.at(node)} (hand-written)"
        return f"{self.at(node)} (synced to {self.path})"

    def at(self, node: yaml.Node | None) -> str:
        return f"{self.file}:{line_of(node)}" if node is not None else self.file


# ------------------------------------------------------------------------- nodes
def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def mapping_items(node: yaml.Node | None) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """(key text, key node, value node) of a mapping node; [] for anything else."""
    if not isinstance(node, yaml.MappingNode):
        return []
    return [(k.value, k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]


def get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    for name, _, value in mapping_items(node):
        if name == key:
            return value
    return None


def scalar(node: yaml.Node | None) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG:
        return node.value
    return None


def scalars(node: yaml.Node | None) -> list[yaml.ScalarNode]:
    """A scalar or a list of scalars, as a list."""
    if isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG:
        return [node]
    if isinstance(node, yaml.SequenceNode):
        return [n for n in node.value if isinstance(n, yaml.ScalarNode) and n.tag != _NULL_TAG]
    return []


def walk(node: yaml.Node) -> Iterator[tuple[str, yaml.Node]]:
    """Every (key, value) pair of every mapping below ``node``."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    yield key.value, value
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


# ------------------------------------------------------------------------- parse
def parse(entry: Entry) -> tuple[yaml.Node | None, Conflict | None]:
    """The node tree of ``entry``, or the conflict saying it is not valid YAML."""
    try:
        data = load_yaml_text(entry.text, entry.file)  # strict: duplicate keys, unknown tags
        if entry.generated and not isinstance(data, dict):
            # GitHub and Azure refuse such a file; sync will not copy it into the root
            what = (
                "empty" if data is None else f"a {'list' if isinstance(data, list) else 'scalar'}"
            )
            raise UserError(f"{entry.file}:1: is {what}, not a CI file (a mapping of keys)")
        return compose_yaml(entry.text), None
    except (UserError, yaml.YAMLError) as exc:
        message = exc.message if isinstance(exc, UserError) else f"{entry.file}: {exc}"
        match = re.match(r"^.*?:(\d+): ", message)
        line = int(match.group(1)) if match else None
        if entry.generated:
            fix = "fix the source file, then run invoke sync-workflows again"
        else:
            fix = f"fix {entry.path} (hand-written: sync checks it but never changes it)"
        return None, Conflict(f"{message}; {fix}", entry.file, line, entry.project_name)


# ------------------------------------------------------------------ inside check
def _inside(path: str, project_rel: str) -> bool:
    """Whether a repo-relative path or glob stays within ``projects/<dir>/``."""
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    path = path.lstrip("/")  # Azure allows a leading slash; GitHub paths are relative anyway
    literal = re.split(r"\$\{\{|\$\(", path, maxsplit=1)
    if len(literal) > 1:  # an expression: its literal start must already be inside
        head = literal[0]
        return head.startswith(project_rel + "/") and ".." not in head.split("/")
    if ".." in path.split("/"):
        path = posixpath.normpath(path)
        if path.startswith("../") or path == "..":
            return False
    return (
        path == project_rel or path.rstrip("/") == project_rel or path.startswith(project_rel + "/")
    )


def _workdir_inside(value: str, project_rel: str, azure: bool) -> bool:
    value = value.strip().replace("\\", "/")
    if azure:
        lowered = value.lower()
        for prefix in _AZURE_SOURCE_ROOTS:
            if lowered == prefix or lowered.startswith(prefix + "/"):
                value = value[len(prefix) :].lstrip("/")
                break
    else:
        value = _GITHUB_WORKSPACE.sub("", value)
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value) or value.startswith("~"):
        return False
    return _inside(value, project_rel)


# ---------------------------------------------------------------- project scope
def scope_conflicts(entry: Entry, doc: yaml.Node) -> list[Conflict]:
    """A project's CI file must only react to, and only work in, its own project folder."""
    if entry.project is None or not isinstance(doc, yaml.MappingNode):
        return []
    folder = entry.path.rpartition("/")[0]
    if folder == GITHUB_DIR:
        return _github_triggers(entry, doc) + _workdirs(entry, doc, azure=False)
    if folder == AZURE_DIR:
        return _azure_triggers(entry, doc) + _workdirs(entry, doc, azure=True)
    return []


def _conflict(entry: Entry, node: yaml.Node | None, text: str) -> Conflict:
    line = line_of(node) if node is not None else None
    return Conflict(f"{entry.at(node)}: {text}", entry.file, line, entry.project_name)


def _github_triggers(entry: Entry, doc: yaml.Node) -> list[Conflict]:
    assert entry.project is not None
    rel = entry.project.rel
    on = get(doc, "on")
    events: list[tuple[str, yaml.Node, yaml.Node | None]] = []
    if isinstance(on, yaml.MappingNode):
        events = [(name, key, value) for name, key, value in mapping_items(on)]
    else:
        events = [(n.value, n, None) for n in scalars(on)]
    found = []
    fix = f'add paths: ["{rel}/**"]'
    for event, key, config in events:
        if event not in _PUSH_EVENTS:
            continue
        keys = {name for name, _, _ in mapping_items(config)}
        paths = get(config, "paths")
        if paths is None:
            if (
                event == "push"
                and keys & {"tags", "tags-ignore"}
                and not keys
                & {
                    "branches",
                    "branches-ignore",
                }
            ):
                continue  # tag pushes: GitHub does not evaluate path filters for them
            why = "only paths-ignore" if "paths-ignore" in keys else "no paths filter"
            found.append(
                _conflict(
                    entry,
                    key,
                    f"on.{event} has {why}, so from the repo root it would run (and deploy) on "
                    f"every change in the monorepo, not only changes to {rel}/; {fix}",
                )
            )
            continue
        for pattern in scalars(paths):
            text = pattern.value
            if text.startswith("!") or _inside(text, rel) or text in entry.own_paths:
                continue
            found.append(
                _conflict(
                    entry,
                    pattern,
                    f"on.{event}.paths entry {text!r} points outside {rel}/, so this project's "
                    f"workflow would run for other projects' changes; limit it to '{rel}/**'",
                )
            )
    return found


def _azure_triggers(entry: Entry, doc: yaml.Node) -> list[Conflict]:
    assert entry.project is not None
    rel = entry.project.rel
    found = []
    for key, what in (("trigger", "every push to every branch"), ("pr", "every pull request")):
        node = get(doc, key)
        fix = f"add {key}: none, or {key}.paths.include: ['{rel}/*']"
        if node is None:
            found.append(
                _conflict(
                    entry,
                    None,
                    f"has no {key}: section, so Azure DevOps would run it for {what} in the "
                    f"monorepo, not only changes to {rel}/; {fix}",
                )
            )
            continue
        if (scalar(node) or "").strip().lower() == "none":
            continue
        include = get(get(node, "paths"), "include")
        if include is None:
            found.append(
                _conflict(
                    entry,
                    node,
                    f"{key} has no paths.include filter, so it would run for {what} in the "
                    f"monorepo, not only changes to {rel}/; {fix}",
                )
            )
            continue
        for pattern in scalars(include):
            if not _inside(pattern.value, rel):
                found.append(
                    _conflict(
                        entry,
                        pattern,
                        f"{key}.paths.include entry {pattern.value!r} points outside {rel}/, so "
                        f"this project's pipeline would run for other projects' changes; "
                        f"limit it to '{rel}/*'",
                    )
                )
    return found


def _workdirs(entry: Entry, doc: yaml.Node, azure: bool) -> list[Conflict]:
    assert entry.project is not None
    rel = entry.project.rel
    found = []
    for key, value in walk(doc):
        matches = key.lower() == "workingdirectory" if azure else key == "working-directory"
        text = scalar(value)
        if not matches or text is None or _workdir_inside(text, rel, azure):
            continue
        found.append(
            _conflict(
                entry,
                value,
                f"{key} {text!r} points outside {rel}/; a project's CI must work inside its own "
                f"folder: use '{rel}' or a folder below it",
            )
        )
    return found


# -------------------------------------------------------------------- collisions
def workflow_name(entry: Entry, doc: yaml.Node) -> tuple[str, yaml.Node | None]:
    """GitHub names a workflow without ``name:`` by its path."""
    node = get(doc, "name")
    text = (scalar(node) or "").strip()
    return (text, node) if text else (entry.path, None)


def concurrency_groups(doc: yaml.Node) -> list[tuple[str, str, yaml.Node]]:
    """(where, group text, node) for the workflow-level and every job-level group."""
    places = [("workflow-level", get(doc, "concurrency"))]
    places += [
        (f"job {name}", get(job, "concurrency")) for name, _, job in mapping_items(get(doc, "jobs"))
    ]
    groups = []
    for where, node in places:
        group = node if isinstance(node, yaml.ScalarNode) else get(node, "group")
        text = scalar(group)
        if text is not None and text.strip():
            groups.append((where, text, group))
    return groups


def _pair_conflicts(
    kind: str, seen: dict[str, list[tuple[Entry, str, yaml.Node | None]]], why: str
) -> list[Conflict]:
    found = []
    for items in seen.values():
        first, first_text, first_node = items[0]
        for other, text, node in items[1:]:
            if not (first.generated or other.generated):
                continue  # two hand-written files: the user's own choice, not sync's doing
            fixable = [e.file for e in (first, other) if e.generated]
            fixable += [e.file for e in (first, other) if not e.generated]
            blame, blame_node = (other, node) if other.generated else (first, first_node)
            value = repr(text) if text == first_text else f"{first_text!r} / {text!r}"
            found.append(
                Conflict(
                    f"{kind} {value} is used by both {first.describe(first_node)} and "
                    f"{other.describe(node)}{why}; change it in {' or '.join(fixable)}",
                    blame.file,
                    line_of(blame_node) if blame_node is not None else None,
                    blame.project_name,
                )
            )
    return found


def collision_conflicts(parsed: list[tuple[Entry, yaml.Node]]) -> list[Conflict]:
    """Same workflow ``name:`` or same concurrency group in two root workflows (GitHub)."""
    names: dict[str, list] = {}
    groups: dict[str, list] = {}
    for entry, doc in sorted(parsed, key=lambda item: item[0].path):
        if entry.path.rpartition("/")[0] != GITHUB_DIR or not isinstance(doc, yaml.MappingNode):
            continue
        name, name_node = workflow_name(entry, doc)
        names.setdefault(name, []).append((entry, name, name_node))
        own: set[str] = set()
        for _, text, node in concurrency_groups(doc):
            key = _WORKFLOW_EXPR.sub(lambda _m, n=name: n, text).strip()
            if _PER_WORKFLOW.search(key):
                continue
            key = key.casefold()  # GitHub compares concurrency groups case-insensitively
            if key in own:
                continue  # the same file reusing its own group is its own business
            own.add(key)
            groups.setdefault(key, []).append((entry, text, node))
    return _pair_conflicts(
        "workflow name",
        names,
        ", so the Actions tab and workflow_run triggers cannot tell them apart",
    ) + _pair_conflicts(
        "concurrency group", groups, ", so their runs would cancel or queue behind each other"
    )
