"""Where root CI files come from: every project's CI folders and the template's monorepo part.

GitHub and Azure DevOps read CI files only at the repo root, so each project's
``projects/<dir>/.github/workflows/*.yml`` and ``projects/<dir>/.azure/devops-pipelines/*.yml``
gets a root twin. Root names carry the project name as prefix, so two projects never want the
same file; the monorepo part is already repo-wide and keeps its names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from monostack.checks import MONOREPO
from monostack.checks.ci_files import is_yaml
from monostack.config import MonorepoConfig, load_config
from monostack.errors import UserError
from monostack.journal import BAK_SUFFIX, TMP_SUFFIX
from monostack.projects import TEMPLATE_DIR, Project, discover_projects
from monostack.safeio import list_files, read_file
from monostack.template import MONOREPO_PART, TEMPLATE_SUFFIX, load_template

GITHUB_DIR = ".github/workflows"
AZURE_DIR = ".azure/devops-pipelines"
CI_DIRS = (GITHUB_DIR, AZURE_DIR)
# Top-level folders the monorepo part may write to; sync looks for its managed files there.
MANAGED_TOPS = (".github", ".azure")
# Files directly in the root the monorepo part may write: GitLab's one pipeline file (composed
# with every project's pipelines by monostack.workflows.gitlab).
MANAGED_ROOT_FILES = (".gitlab-ci.yml",)
# The monorepo part's guides: Markdown files directly in the root's docs/ folder.
DOCS_DIR = "docs"


def is_doc(rel: str) -> bool:
    """A generated guide: ``docs/<name>.md`` (the root's other files there are left alone)."""
    folder, _, name = rel.rpartition("/")
    return folder == DOCS_DIR and name.endswith(".md")


@dataclass(frozen=True)
class Source:
    """One file that sync copies into the root."""

    path: str  # where it goes, relative to the repo root
    origin: str  # the file it comes from, relative to the repo root
    body: bytes
    project: Project | None  # None for the template's monorepo part

    @property
    def project_name(self) -> str:
        return self.project.name if self.project is not None else MONOREPO


def root_name(project_name: str, filename: str) -> str:
    """``bundle-ci.yml`` of project ``p1`` becomes ``p1-bundle-ci.yml``; ``p1-x.yml`` stays."""
    prefix = f"{project_name}-"
    return filename if filename.startswith(prefix) else prefix + filename


def project_sources(project: Project) -> list[Source]:
    """The CI files directly inside the project's two CI folders (GitHub ignores subfolders)."""
    found = []
    root = project.path.parent.parent
    for ci_dir in CI_DIRS:
        for rel in list_files(root, f"{project.rel}/{ci_dir}", recursive=False):
            name = rel.rpartition("/")[2]
            if is_yaml(name):
                found.append(
                    Source(
                        path=f"{ci_dir}/{root_name(project.name, name)}",
                        origin=rel,
                        body=read_file(root, rel),
                        project=project,
                    )
                )
    return found


def _template_origin(root: Path, rel: str) -> str:
    """Name the template file a rendered monorepo file most likely came from."""
    base = f"{TEMPLATE_DIR}/{MONOREPO_PART}"
    for candidate in (f"{base}/{rel}{TEMPLATE_SUFFIX}", f"{base}/{rel}"):
        if (root / candidate).is_file():
            return candidate
    return base  # the path itself was rendered from a templated name


def monorepo_sources(root: Path, config: MonorepoConfig | None = None) -> list[Source]:
    """The monorepo part of the template, rendered with ``monorepo.yml`` (``config``: already
    loaded)."""
    config = config if config is not None else load_config(root)
    tree = load_template(root / TEMPLATE_DIR).render_monorepo(config)
    found = []
    for rel, data in sorted(tree.items()):
        top = rel.split("/", 1)[0]
        in_folder = top in MANAGED_TOPS and "/" in rel and is_yaml(rel)
        if not (in_folder or rel in MANAGED_ROOT_FILES or is_doc(rel)):
            raise UserError(
                f"{_template_origin(root, rel)}: renders {rel!r}, which sync-workflows cannot "
                f"manage; the monorepo part of {TEMPLATE_DIR}/ may only hold .yml/.yaml CI files "
                f"under .github/ or .azure/, .gitlab-ci.yml and .md guides in {DOCS_DIR}/: move "
                "or remove that file"
            )
        found.append(Source(path=rel, origin=_template_origin(root, rel), body=data, project=None))
    return found


def collect_sources(
    root: Path, projects: list[Project] | None = None, config: MonorepoConfig | None = None
) -> list[Source]:
    """Every file sync wants in the root, monorepo part first, then projects by directory."""
    root = Path(root)
    sources = monorepo_sources(root, config)
    for project in discover_projects(root) if projects is None else projects:
        sources.extend(project_sources(project))
    return sources


def scan_root(root: Path) -> dict[str, bytes]:
    """Every YAML file under the root's ``.github/`` and ``.azure/``, the root files the
    monorepo part may write (``.gitlab-ci.yml``) and every guide in ``docs/``: managed or
    hand-written."""
    found: dict[str, bytes] = {}
    for name in MANAGED_ROOT_FILES:
        if os.path.lexists(Path(root) / name):  # a link there is refused, not followed
            found[name] = read_file(root, name)
    docs = Path(root) / DOCS_DIR
    if docs.is_dir():
        for path in sorted(docs.iterdir()):
            if path.is_file() and is_doc(f"{DOCS_DIR}/{path.name}"):
                found[f"{DOCS_DIR}/{path.name}"] = path.read_bytes()
    for top in MANAGED_TOPS:
        for rel in list_files(root, top):
            if is_yaml(rel) and not rel.endswith((TMP_SUFFIX, BAK_SUFFIX)):
                found[rel] = read_file(root, rel)
    return found
