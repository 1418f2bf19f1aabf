"""What a change since a git ref affects: which projects, and whether anything global changed.

``invoke affected`` prints it (for scripts and CI matrices) and ``--changed-since`` selects with
it. A change to a global path (the template, the tool, ``monorepo.yml``, a checker
configuration) affects every project. A change to a root CI file counts for the project whose
copy it is (its sync header names the source); any other root CI file (the monorepo's own,
hand-written ones) brings the monorepo's own lint case in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from monostack.cases import CONFIG_FILE, GITLAB_ROOT, ROOT_CI_DIRS, root_owners
from monostack.checks.ci_files import YAMLLINT_FILES, ZIZMOR_FILES
from monostack.projects import PROJECTS_DIR, TEMPLATE_DIR, Project, discover_projects

# A change under these selects every project: they shape what every project is checked against
# (the template, the shared config, the tool and its lint configuration).
GLOBAL_DIRS = (TEMPLATE_DIR, "monostack")
GLOBAL_FILES = (CONFIG_FILE, "pyproject.toml", "tasks.py", *YAMLLINT_FILES, *ZIZMOR_FILES)


def is_global_path(path: str) -> bool:
    """True when a change to ``path`` (repo-relative, POSIX) affects every project."""
    return path in GLOBAL_FILES or any(path.startswith(d + "/") for d in GLOBAL_DIRS)


@dataclass(frozen=True)
class Affected:
    ref: str | None  # None: no ref given, everything is affected
    projects: list[Project]  # affected, in directory order
    global_paths: list[str]  # the changed global paths (all projects affected when any)
    root_ci_paths: list[str]  # changed root CI files that no project owns
    changed: frozenset[str] | None = None  # every changed path (None: no ref)

    @property
    def global_change(self) -> bool:
        return self.ref is None or bool(self.global_paths)

    @property
    def monorepo(self) -> bool:
        """Whether the monorepo's own checks (tool, template, unowned root CI files) are in."""
        return self.global_change or bool(self.root_ci_paths)

    def as_json(self) -> dict:
        return {
            "ref": self.ref,
            "global": self.global_change,
            "global_paths": self.global_paths,
            "monorepo": self.monorepo,
            "root_ci_paths": self.root_ci_paths,
            "projects": [{"name": p.name, "dir": p.dir, "path": p.rel} for p in self.projects],
        }

    def text_lines(self) -> list[str]:
        if self.ref is None:
            head = "no --changed-since: every project is affected"
        elif self.global_change:
            shown = ", ".join(self.global_paths[:5])
            more = f" and {len(self.global_paths) - 5} more" if len(self.global_paths) > 5 else ""
            head = f"global change since {self.ref} ({shown}{more}): every project is affected"
        else:
            head = f"{len(self.projects)} project(s) affected since {self.ref}"
        lines = [head]
        lines += [f"  {p.name}  ({p.rel})" for p in self.projects]
        if self.root_ci_paths and not self.global_change:
            lines.append(f"  <monorepo>  (root CI files: {', '.join(self.root_ci_paths)})")
        return lines


def affected(root: Path, ref: str | None, projects: list[Project] | None = None) -> Affected:
    """Projects affected by the changes since ``ref`` (see :mod:`monostack.gitutil`); every
    project when ``ref`` is None."""
    from monostack.gitutil import changed_paths

    root = Path(root)
    everyone = discover_projects(root) if projects is None else projects
    if ref is None:
        return Affected(None, list(everyone), [], [])
    paths = sorted(changed_paths(root, ref))
    global_paths = [p for p in paths if is_global_path(p)]
    if global_paths:
        return Affected(ref, list(everyone), global_paths, [], frozenset(paths))
    touched = {"/".join(p.split("/", 2)[:2]) for p in paths if p.startswith(PROJECTS_DIR + "/")}
    root_ci = [p for p in paths if p.split("/", 1)[0] in ROOT_CI_DIRS or p == GITLAB_ROOT]
    unowned = []
    if root_ci:
        owners = root_owners(root)
        for path in root_ci:
            owner = owners.get(path)  # a deleted file has no header to read: the monorepo's
            if owner is None:
                unowned.append(path)
            else:
                touched.add(owner)
    chosen = [p for p in everyone if p.rel in touched]
    return Affected(ref, chosen, [], unowned, frozenset(paths))


def to_json(result: Affected) -> str:
    return json.dumps(result.as_json(), indent=2)
