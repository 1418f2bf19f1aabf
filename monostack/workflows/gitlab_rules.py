"""Conflict rules for the composed GitLab pipeline (root file, project pipelines, team files).

GitLab merges everything the root includes into one configuration and never complains: two
jobs of one name become one job (the later include overrides the earlier one's keys), a second
``stages:`` replaces the first, and a project file's top-level ``variables:`` applies to every
project. So before sync writes the root, every file is checked:

* a job name (hidden ``.templates`` too) in two files, whoever wrote them, is a conflict naming
  both files;
* a project file may only hold jobs: global keywords belong to the monorepo part;
* ``stages``, ``workflow`` and the other non-merging global keywords are set by one file only;
* every job of a project runs only for changes to its own folder (``rules: changes:`` or
  ``only: changes:`` inside ``projects/<dir>/``), and
* a resource group belongs to one file (two projects sharing one would queue behind each other);
* every job's stage exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from monostack.checks import MONOREPO
from monostack.checks.ci_files import is_yaml
from monostack.errors import UserError, not_utf8
from monostack.projects import Project
from monostack.workflows.gitlab import (
    GITLAB_ROOT,
    PIPELINES_DIR,
    PROJECT,
    ROOT,
    TEAM,
    PipelineFile,
    compose,
)
from monostack.workflows.rules import (
    Conflict,
    _inside,
    get,
    line_of,
    mapping_items,
    scalar,
    scalars,
)
from monostack.yamlutil import FastSafeLoader, GitLabLoader, load_yaml_text

# Top-level keys that are not jobs (GitLab's global keywords).
GLOBAL_KEYWORDS = frozenset(
    {
        "default",
        "include",
        "stages",
        "variables",
        "workflow",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
    }
)
# Global keywords whose value GitLab replaces rather than merges when two files set them.
_REPLACED = GLOBAL_KEYWORDS - {"default", "include", "variables"}
DEFAULT_STAGES = (".pre", "build", "test", "deploy", ".post")
SYNC = "invoke sync-workflows"


@dataclass
class _Parsed:
    file: PipelineFile
    doc: yaml.Node | None  # the configuration document (the last one: a first may be `spec:`)

    def at(self, node: yaml.Node | None) -> str:
        where = f"{self.file.file}:{line_of(node)}" if node is not None else self.file.file
        if self.file.kind == ROOT:
            return f"{where} (rendered into {self.file.path})"
        if self.file.kind == TEAM:
            return f"{where} (hand-written)"
        return where

    @property
    def project_name(self) -> str:
        project = self.file.project
        return project.name if project is not None else MONOREPO

    def conflict(self, node: yaml.Node | None, text: str) -> Conflict:
        line = line_of(node) if node is not None else None
        return Conflict(f"{self.at(node)}: {text}", self.file.file, line, self.project_name)

    def jobs(self) -> list[tuple[str, yaml.Node, yaml.Node]]:
        return [item for item in mapping_items(self.doc) if item[0] not in GLOBAL_KEYWORDS]


def _parse(item: PipelineFile) -> tuple[_Parsed | None, Conflict | None]:
    project = item.project.name if item.project is not None else MONOREPO
    fix = (
        f"fix {item.path} (hand-written: sync checks it but never changes it)"
        if item.kind == TEAM
        else f"fix {item.file}, then run {SYNC} again"
    )
    try:
        text = item.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Conflict(f"{item.file}: {not_utf8(exc)}", item.file, None, project)
    try:
        load_yaml_text(text, item.file, GitLabLoader)  # duplicate keys, unknown tags
        docs = list(yaml.compose_all(text, Loader=FastSafeLoader))  # noqa: S506 - safe
    except UserError as exc:
        return None, Conflict(f"{exc.message}; {fix}", item.file, exc.line, project)
    except yaml.YAMLError as exc:  # several documents: load_yaml_text saw only the first
        line = exc.problem_mark.line + 1 if getattr(exc, "problem_mark", None) else None
        return None, Conflict(f"{item.file}: invalid YAML: {exc}; {fix}", item.file, line, project)
    doc = docs[-1] if docs else None
    parsed = _Parsed(item, doc)
    if doc is not None and not isinstance(doc, yaml.MappingNode) and scalar(doc) is not None:
        return None, parsed.conflict(doc, f"expected a mapping of jobs and keywords; {fix}")
    return parsed, None


def gitlab_conflicts(files: list[PipelineFile]) -> list[Conflict]:
    """Every reason the composed pipeline must not be written; [] when it is sound."""
    conflicts: list[Conflict] = []
    parsed: list[_Parsed] = []
    for item in files:
        result, problem = _parse(item)
        if problem is not None:
            conflicts.append(problem)
        if result is not None:
            parsed.append(result)
    for entry in parsed:
        if entry.file.kind == PROJECT:
            conflicts += _project_keywords(entry) + _project_scope(entry, parsed)
        elif entry.file.kind == ROOT and get(entry.doc, "include") is not None:
            conflicts.append(
                entry.conflict(
                    _key_node(entry.doc, "include"),
                    f"sets include:, which {SYNC} writes itself; move those includes into a file "
                    ".gitlab/pipelines/<name>.yml (GitLab follows includes inside included files)",
                )
            )
    conflicts += _job_collisions(parsed)
    conflicts += _keyword_collisions(parsed)
    conflicts += _resource_groups(parsed)
    conflicts += _stages(parsed)
    conflicts += _needs(parsed)
    return conflicts


def _key_node(doc: yaml.Node | None, key: str) -> yaml.Node | None:
    for name, key_node, _ in mapping_items(doc):
        if name == key:
            return key_node
    return None


# ------------------------------------------------------------------------ project files
def _project_keywords(entry: _Parsed) -> list[Conflict]:
    found = []
    for name, key, _ in mapping_items(entry.doc):
        if name not in GLOBAL_KEYWORDS:
            continue
        found.append(
            entry.conflict(
                key,
                f"top-level {name!r} is a global keyword: included from the root, it would "
                "apply to (or replace the setting of) the whole monorepo pipeline, every "
                "project's jobs included; set it inside this project's jobs instead",
            )
        )
    return found


def _rules_of(entry: _Parsed, job: yaml.Node, templates: dict[str, yaml.Node], depth: int = 0):
    """(the job's own or inherited ``rules``/``only`` node, which key) or (None, None);
    ``False`` when it inherits from a job sync cannot see (not judged)."""
    for key in ("rules", "only"):
        node = get(job, key)
        if node is not None:
            return node, key
    parents = scalars(get(job, "extends"))
    for parent in reversed(parents):  # the last one listed wins in GitLab
        template = templates.get(parent.value)
        if template is None or depth > 10:
            return False, None
        node, key = _rules_of(entry, template, templates, depth + 1)
        if node is not None:
            return node, key
    return None, None


def _project_scope(entry: _Parsed, parsed: list[_Parsed]) -> list[Conflict]:
    """Each job of a project runs only for changes under ``projects/<dir>/``."""
    project = entry.file.project
    assert project is not None
    rel = project.rel
    own = [p for p in parsed if p.file.project is project]
    templates = {name: job for p in own for name, _, job in p.jobs()}
    fix = f"add changes: paths: ['{rel}/**/*'] to it"
    found = []
    for name, key, job in entry.jobs():
        if name.startswith("."):
            continue  # a template: judged where a job uses it
        node, which = _rules_of(entry, job, templates)
        if node is False:
            continue
        if node is None:
            found.append(
                entry.conflict(
                    key,
                    f"job {name!r} has no rules:, so from the root pipeline it would run for "
                    f"every change in the monorepo, not only changes to {rel}/; add rules: with "
                    f"changes: paths: ['{rel}/**/*']",
                )
            )
            continue
        if which == "only":  # `only: {changes: [...]}` filters; `only: [refs]` does not
            items = [node]
        else:
            items = node.value if isinstance(node, yaml.SequenceNode) else []
        for index, rule in enumerate(items):
            if not isinstance(rule, yaml.MappingNode) and which == "rules":
                continue  # a !reference: not judged
            if (scalar(get(rule, "when")) or "") == "never":
                continue
            changes = get(rule, "changes")
            paths = get(changes, "paths") if isinstance(changes, yaml.MappingNode) else changes
            where = f"{which}[{index}]" if which == "rules" else "only"
            if paths is None:
                found.append(
                    entry.conflict(
                        rule,
                        f"job {name!r}: {where} has no changes: filter, so from the root "
                        f"pipeline it would run for every change in the monorepo, not only "
                        f"changes to {rel}/; {fix}",
                    )
                )
                continue
            for pattern in scalars(paths):
                if _inside(pattern.value, rel):
                    continue
                found.append(
                    entry.conflict(
                        pattern,
                        f"job {name!r}: {where} changes: entry {pattern.value!r} points outside "
                        f"{rel}/, so this project's job would run for other projects' changes; "
                        f"limit it to '{rel}/**/*'",
                    )
                )
    return found


# ----------------------------------------------------------------------------- collisions
def _blame(first: _Parsed, other: _Parsed) -> _Parsed:
    """The file to change: a project's before the monorepo part, before the team's own."""
    rank = {PROJECT: 0, ROOT: 1, TEAM: 2}
    return min((other, first), key=lambda p: rank[p.file.kind])


# What each collision means to GitLab, and what to do: {value} is the clashing name, {both}
# the two places, {files} the file(s) to change.
_JOB_CLASH = (
    "job {value!r} is defined in both {both}: GitLab merges jobs of one name across included "
    "files (the later one silently overrides the earlier one's keys); rename it in {files} "
    "(a project's job names start with the project name)"
)
_KEYWORD_CLASH = (
    "global keyword {value!r} is set in both {both}: GitLab keeps only one of them for the "
    "whole pipeline; set it in one file only ({files})"
)
_GROUP_CLASH = (
    "resource group {value!r} is used by both {both}, so their jobs would queue behind each "
    "other; change it in {files} (hold the project name in it)"
)


def _pairs(seen: dict[str, list[tuple[_Parsed, yaml.Node]]], text: str) -> list[Conflict]:
    """One conflict per later place of a value ``seen`` in several files, blamed on the file
    to change; ``text`` is one of the ``*_CLASH`` messages."""
    found = []
    for value, places in seen.items():
        first, first_node = places[0]
        for other, node in places[1:]:
            blame = _blame(first, other)
            blame_node = node if blame is other else first_node
            files = " or ".join(dict.fromkeys(p.file.file for p in (blame, first, other)))
            both = f"{first.at(first_node)} and {other.at(node)}"
            message = text.format(value=value, both=both, files=files)
            found.append(
                Conflict(message, blame.file.file, line_of(blame_node), blame.project_name)
            )
    return found


def _job_collisions(parsed: list[_Parsed]) -> list[Conflict]:
    seen: dict[str, list[tuple[_Parsed, yaml.Node]]] = {}
    for entry in parsed:
        for name, key, _ in entry.jobs():
            seen.setdefault(name, []).append((entry, key))
    return _pairs(seen, _JOB_CLASH)


def _keyword_collisions(parsed: list[_Parsed]) -> list[Conflict]:
    seen: dict[str, list[tuple[_Parsed, yaml.Node]]] = {}
    for entry in parsed:
        if entry.file.kind == PROJECT:
            continue  # reported as a project keyword already
        for name, key, _ in mapping_items(entry.doc):
            if name in _REPLACED:
                seen.setdefault(name, []).append((entry, key))
    return _pairs(seen, _KEYWORD_CLASH)


def _resource_groups(parsed: list[_Parsed]) -> list[Conflict]:
    seen: dict[str, list[tuple[_Parsed, yaml.Node]]] = {}
    for entry in parsed:
        own: set[str] = set()
        for _, _, job in entry.jobs():
            node = get(job, "resource_group")
            group = (scalar(node) or "").strip()
            if not group or "$" in group or group in own:
                continue  # per-run values cannot clash; one file reusing its group is its own
            own.add(group)
            seen.setdefault(group, []).append((entry, node))
    shared = {
        group: places
        for group, places in seen.items()
        if any(p.file.kind == PROJECT for p, _ in places)
    }
    return _pairs(shared, _GROUP_CLASH)


def _stages(parsed: list[_Parsed]) -> list[Conflict]:
    """GitLab refuses the whole pipeline when a job's stage is not declared."""
    stages: tuple[str, ...] = DEFAULT_STAGES
    for entry in parsed:  # root first: an included file's stages replace it (and clash above)
        node = get(entry.doc, "stages")
        if node is not None:
            stages = (".pre", *(n.value for n in scalars(node)), ".post")
    found = []
    for entry in parsed:
        for name, key, job in entry.jobs():
            if name.startswith(".") or not isinstance(job, yaml.MappingNode):
                continue
            node = get(job, "stage")
            stage = scalar(node) if node is not None else "test"  # GitLab's default stage
            if stage is None or "$" in stage or stage in stages:
                continue
            found.append(
                entry.conflict(
                    node if node is not None else key,
                    f"job {name!r} uses stage {stage!r}, which the pipeline does not declare "
                    f"(stages: {', '.join(stages)}), so GitLab would refuse the whole pipeline; "
                    "use one of those",
                )
            )
    return found


def _needs(parsed: list[_Parsed]) -> list[Conflict]:
    """GitLab refuses the whole pipeline when ``needs:`` names a job it does not have."""
    jobs = {name for entry in parsed for name, _, _ in entry.jobs()}
    found = []
    for entry in parsed:
        for name, _, job in entry.jobs():
            needs = get(job, "needs")
            items = needs.value if isinstance(needs, yaml.SequenceNode) else []
            for item in items:
                if isinstance(item, yaml.MappingNode):
                    optional = scalar(get(item, "optional")) == "true"
                    if optional or get(item, "pipeline") or get(item, "project"):
                        continue  # may be absent by design, or lives in another pipeline
                    item = get(item, "job")
                need = scalar(item)
                if need is None or need in jobs or "$" in need:
                    continue
                found.append(
                    entry.conflict(
                        item,
                        f"job {name!r} needs {need!r}, which no included file defines, so "
                        "GitLab would refuse the whole pipeline; name an existing job",
                    )
                )
    return found


def rendered_conflicts(
    base: bytes, projects: list[tuple[Project, Mapping[str, bytes]]]
) -> tuple[list[Conflict], bytes]:
    """For renders that were never written (render-matrix): the conflicts of the monorepo
    part's ``.gitlab-ci.yml`` composed with the projects' rendered trees (paths relative to
    ``projects/<dir>/``), and the composed root body. Files are named by their rendered path."""
    files = [PipelineFile(GITLAB_ROOT, base, ROOT)]
    for project, tree in projects:
        files += [
            PipelineFile(f"{project.rel}/{rel}", data, PROJECT, project)
            for rel, data in sorted(tree.items())
            if rel.rpartition("/")[0] == PIPELINES_DIR and is_yaml(rel)
        ]
    body = compose(base, [f for f in files if f.kind == PROJECT], [])
    return gitlab_conflicts(files), body
