"""GitLab CI in a monorepo: one root ``.gitlab-ci.yml`` that includes every project's pipelines.

GitLab reads a single root file, so project pipelines cannot sit side by side as GitHub
workflows do: they stay in ``projects/<dir>/.gitlab/pipelines/`` and the root includes them with
``include: local:``. Sync writes that root file from the monorepo part of the template
(``stack_template/monorepo/.gitlab-ci.yml.j2``: the monorepo's own jobs) plus a generated
``include:`` list of

* every project's ``.gitlab/pipelines/*.yml`` (each with the sha256 of the version it was synced
  with, so ``--check`` notices a changed project pipeline as it notices a changed workflow), and
* the team's own files, ``.gitlab/pipelines/*.yml`` at the root: hand-written, never changed by
  sync, included as they are. This is where a team keeps its own jobs so they survive every sync.

The root file carries the usual monostack header; a hand-written ``.gitlab-ci.yml`` is never
overwritten (sync refuses and says how to move its jobs into ``.gitlab/pipelines/``).
The rules GitLab's silent job merging makes necessary live in :mod:`.gitlab_rules`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from monostack.checks.ci_files import is_yaml
from monostack.projects import Project
from monostack.safeio import list_files, read_file
from monostack.workflows.sources import Source

GITLAB_ROOT = ".gitlab-ci.yml"
PIPELINES_DIR = ".gitlab/pipelines"
ROOT, PROJECT, TEAM = "root", "project", "team"


@dataclass(frozen=True)
class PipelineFile:
    """One file of the composed GitLab pipeline."""

    path: str  # repo-relative: where GitLab reads it
    data: bytes
    kind: str  # ROOT (the monorepo part), PROJECT or TEAM (hand-written)
    project: Project | None = None
    origin: str | None = None  # for ROOT: the template file to fix

    @property
    def file(self) -> str:
        """Where to fix it."""
        return self.origin or self.path

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _pipeline_files(root: Path, folder: str, kind: str, project: Project | None) -> list:
    """The YAML files directly in ``folder``; a symlink there is a UserError naming it (safe
    reads never follow links)."""
    return [
        PipelineFile(rel, read_file(root, rel), kind, project)
        for rel in list_files(root, folder, recursive=False)
        if is_yaml(rel)
    ]


def project_pipelines(root: Path, project: Project) -> list[PipelineFile]:
    """``projects/<dir>/.gitlab/pipelines/*.yml|*.yaml`` (not subfolders), sorted."""
    return _pipeline_files(Path(root), f"{project.rel}/{PIPELINES_DIR}", PROJECT, project)


def team_pipelines(root: Path) -> list[PipelineFile]:
    """The team's own ``.gitlab/pipelines/*.yml|*.yaml`` at the repo root, sorted."""
    return _pipeline_files(Path(root), PIPELINES_DIR, TEAM, None)


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def compose(base: bytes, projects: list[PipelineFile], team: list[PipelineFile]) -> bytes:
    """The root file's body: the monorepo part, then the ``include:`` list sync maintains."""
    eol = "\r\n" if b"\r\n" in base else "\n"
    lines = [
        "",
        "# ---- Added by invoke sync-workflows: every project's pipelines (with the sha256 of the",
        "# version synced, so a changed pipeline is noticed) and the team's own",
        f"# {PIPELINES_DIR}/*.yml, which sync includes but never changes.",
    ]
    if projects or team:
        lines.append("include:")
        for item in projects:
            lines += [f"  # sha256:{item.digest}", f"  - local: {_yaml_str(item.path)}"]
        lines += [f"  - local: {_yaml_str(item.path)}" for item in team]
    else:
        lines.append("# (no project pipelines yet: run invoke new-project)")
    text = eol.join(lines) + eol
    body = base if base.endswith(b"\n") or not base else base + eol.encode()
    return body + text.encode("utf-8")


def compose_sources(root: Path, sources: list[Source], projects: list[Project]) -> list[Source]:
    """``sources`` with the monorepo part's ``.gitlab-ci.yml`` (if any) composed for the repo."""
    root = Path(root)
    out = []
    for source in sources:
        if source.path == GITLAB_ROOT and source.project is None:
            found = [f for project in projects for f in project_pipelines(root, project)]
            source = Source(
                source.path, source.origin, compose(source.body, found, team_pipelines(root)), None
            )
        out.append(source)
    return out


def _local_includes(item: PipelineFile) -> list[str]:
    """The ``include: local:`` paths (or globs) a file names; [] when it does not parse (the
    rules report that). Other include types live outside the repo: sync cannot see them."""
    from monostack.yamlutil import GitLabLoader

    try:
        doc = yaml.load(item.data.decode("utf-8"), Loader=GitLabLoader)  # noqa: S506 - safe
    except (UnicodeDecodeError, yaml.YAMLError):
        return []
    include = doc.get("include") if isinstance(doc, dict) else None
    entries = include if isinstance(include, list) else [include]
    found = []
    for entry in entries:
        local = entry.get("local") if isinstance(entry, dict) else entry
        if isinstance(local, str) and "$" not in local and "://" not in local:
            found.append(local.strip().lstrip("/"))
    return found


def _team_closure(root: Path, team: list[PipelineFile], taken: set[str]) -> list[PipelineFile]:
    """The team's files and, transitively, the local files they include themselves."""
    found: list[PipelineFile] = []
    queue = list(team)
    seen = set(taken) | {item.path for item in team}
    while queue:
        item = queue.pop(0)
        found.append(item)
        for pattern in _local_includes(item):
            if not pattern or ".." in Path(pattern).parts:
                continue  # outside the repo: GitLab itself refuses it
            paths = sorted(root.glob(pattern)) if "*" in pattern else [root / pattern]
            for rel in (path.relative_to(root).as_posix() for path in paths):
                if rel in seen or not is_yaml(rel) or not (root / rel).exists():
                    continue  # missing or not YAML: GitLab itself will say so
                seen.add(rel)
                queue.append(PipelineFile(rel, read_file(root, rel), TEAM))
    return found


def pipeline_files(root: Path, base: Source, projects: list[Project]) -> list[PipelineFile]:
    """Every file GitLab would read: the monorepo part (as rendered, before the include list),
    the projects' pipelines, the team's files and the local files those include."""
    root = Path(root)
    files = [PipelineFile(GITLAB_ROOT, base.body, ROOT, None, base.origin)]
    for project in projects:
        files += project_pipelines(root, project)
    taken = {item.path for item in files}
    return files + _team_closure(root, team_pipelines(root), taken)


def taken_message(source: Source) -> str:
    """What to do when a hand-written ``.gitlab-ci.yml`` is in the way of the generated one."""
    return (
        f"{GITLAB_ROOT} is a hand-written file (no monostack header), but invoke sync-workflows "
        f"writes it from {source.origin} and the projects' pipelines; move your own jobs into "
        f"{PIPELINES_DIR}/<name>.yml (the generated {GITLAB_ROOT} includes every file there and "
        "sync never changes them), delete it and run invoke sync-workflows again"
    )
