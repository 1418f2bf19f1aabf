"""Loading a Databricks Asset Bundle offline, the way the Databricks CLI reads it, with locations.

This reads a bundle from a project tree (``{path relative to the project: bytes}``): it parses
every YAML file keeping the line of every mapping key, follows ``include`` globs, merges the
included files' top-level sections and then, per target, the target overrides. Nothing here
raises for bad user files: problems are collected as :class:`Problem` entries.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monostack.bundle.documents import Problem, YMap, describe, loc_of, parse_yaml
from monostack.bundle.files import glob_in, has_glob, normalize_path
from monostack.bundle.interpolation import TargetView
from monostack.bundle.keys import VARIABLE_KEYS
from monostack.bundle.merge import copy_value, merge, merge_keyed_resources

BUNDLE_FILE = "databricks.yml"
INCLUDE_SUFFIXES = (".yml", ".yaml", ".json")  # what `databricks bundle` accepts in include


@dataclass
class LoadedBundle:
    """A project's bundle: its parsed files, the merged document and one view per target."""

    project: str
    file_prefix: str
    tree: Mapping[str, bytes]
    files: dict[str, Any] = field(default_factory=dict)  # project-relative path -> document
    base: YMap | None = None  # root merged with its includes (still holding `targets`)
    targets: dict[str, TargetView] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    repo: Mapping[str, bytes] | None = None  # the repository (repo-relative), for ../ includes
    incomplete: bool = False  # an include could not be loaded: absence checks would mislead

    @property
    def root_file(self) -> str:
        return self.file_prefix + BUNDLE_FILE

    def rel(self, repo_file: str) -> str:
        """Project-relative path of a repo-relative file name used in locations."""
        if not self.file_prefix:
            return repo_file
        return posixpath.relpath(repo_file, self.file_prefix.rstrip("/"))

    @property
    def name(self) -> Any:
        bundle = self.base.get("bundle") if self.base is not None else None
        return bundle.get("name") if isinstance(bundle, dict) else None

    @property
    def declared_variables(self) -> dict[str, Any]:
        variables = self.base.get("variables") if self.base is not None else None
        return dict(variables) if isinstance(variables, dict) else {}


def _section_map(doc: YMap, key: str, file: str, problems: list[Problem]) -> YMap | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, YMap):
        line = doc.loc_of(key)[1]
        problems.append(Problem(file, line, f"`{key}` must be a mapping, got {describe(value)}"))
        return None
    return value


@dataclass(frozen=True)
class Include:
    """One file an ``include`` entry takes: where to read it and how to name it."""

    rel: str  # relative to the project (``../common/targets.yml`` when outside it)
    source: Mapping[str, bytes]  # the project tree or the repository tree
    key: str  # its path in ``source``
    repo_file: str  # repo-relative, for locations


def _include_problem(bundle: LoadedBundle, line: int | None, message: str) -> None:
    """An include that cannot be loaded: the one finding for that cause; checks that would only
    echo it ("variable not declared", "target missing") are not run (``incomplete``)."""
    bundle.problems.append(Problem(bundle.root_file, line, message))
    bundle.incomplete = True


def _include_source(bundle: LoadedBundle, entry: str) -> tuple[Mapping[str, bytes], str, bool]:
    """(tree, path in it, inside the project?) for an include entry; tree None: outside the
    repository (or no repository known)."""
    inside = normalize_path(entry)
    if inside is not None:
        return bundle.tree, inside, True
    if bundle.repo is None or not bundle.file_prefix:
        return None, "", False  # type: ignore[return-value]
    in_repo = normalize_path(posixpath.join(bundle.file_prefix, entry))
    return (bundle.repo, in_repo, False) if in_repo else (None, "", False)  # type: ignore


def _resolve_includes(bundle: LoadedBundle, root: YMap) -> list[Include]:
    """The files named by ``include``, in the CLI's order, with problems noted. Relative
    paths may leave the project (a shared ``../common/*.yml``) but not the repository."""
    patterns = root.get("include")
    if patterns is None:
        return []
    if not isinstance(patterns, list):
        _include_problem(
            bundle,
            root.loc_of("include")[1],
            f"`include` must be a list of paths or globs, got {describe(patterns)}",
        )
        return []
    found: list[Include] = []
    for index, pattern in enumerate(patterns):
        line = loc_of(patterns, index, root.loc_of("include"))[1]
        if not isinstance(pattern, str) or not pattern.strip():
            _include_problem(bundle, line, f"include entry {describe(pattern)} is not a path")
            continue
        entry = pattern.strip().replace("\\", "/")
        if entry.startswith("/") or (len(entry) > 1 and entry[1] == ":"):
            _include_problem(
                bundle,
                line,
                f"include {pattern!r} is an absolute path; the Databricks CLI takes paths "
                f"relative to {BUNDLE_FILE}: write it relative",
            )
            continue
        source, key, inside = _include_source(bundle, entry)
        if source is None:
            _include_problem(
                bundle,
                line,
                f"include {pattern!r} points outside the repository; monostack reads only "
                "files in the repository: move the file into it (e.g. a shared ../common/)",
            )
            continue
        if has_glob(key):
            matches = glob_in(source, key)  # matching nothing is fine
        elif key in source:
            matches = [key]
        else:
            where = bundle.file_prefix + key if inside else key
            _include_problem(
                bundle,
                line,
                f"include {pattern!r} names a file that does not exist ({where}); "
                "create it or remove the entry",
            )
            continue
        for match in matches:
            rel = match if inside else posixpath.relpath(match, bundle.file_prefix.rstrip("/"))
            if rel == BUNDLE_FILE or any(f.rel == rel for f in found):
                continue
            repo_file = bundle.file_prefix + match if inside else match
            if not match.endswith(INCLUDE_SUFFIXES):
                _include_problem(
                    bundle,
                    line,
                    f"include {pattern!r} takes {repo_file}, which is not a .yml, .yaml or "
                    ".json file (the databricks CLI refuses it); narrow the pattern, "
                    "e.g. resources/*.yml",
                )
                continue
            found.append(Include(rel, source, match, repo_file))
    return found


def _merge_include(bundle: LoadedBundle, base: YMap, part: YMap, file: str) -> YMap:
    """Merge an included file's top-level sections; the same resource twice is an error."""
    if "include" in part:
        bundle.problems.append(
            Problem(
                file,
                part.loc_of("include")[1],
                f"`include` is only allowed in {bundle.root_file}; move it there",
            )
        )
    resources = part.get("resources")
    existing = base.get("resources")
    if isinstance(resources, dict) and isinstance(existing, dict):
        for rtype, group in resources.items():
            if not isinstance(group, dict) or not isinstance(existing.get(rtype), dict):
                continue
            for key in group:
                if key in existing[rtype]:
                    first = existing[rtype].loc_of(key)
                    bundle.problems.append(
                        Problem(
                            file,
                            group.loc_of(key)[1] if isinstance(group, YMap) else None,
                            f"resource {rtype}.{key} is also defined in "
                            f"{first[0]}:{first[1]}; give one of them another key",
                        )
                    )
    without_include = YMap(part.loc)
    for key, value in part.items():
        if key != "include":
            without_include[key] = value
            without_include.locs[key] = part.loc_of(key)
    return merge(base, without_include)


def _target_view(bundle: LoadedBundle, name: str, spec: Any, base: YMap) -> TargetView:
    """Apply ``targets.<name>`` to the base document, as ``databricks bundle -t <name>`` does."""
    doc = YMap(base.loc)
    for key, value in base.items():
        if key != "targets":
            doc[key] = value
            doc.locs[key] = base.loc_of(key)
    overrides = spec if isinstance(spec, dict) else {}
    for key, value in overrides.items():
        if key in ("default", "mode", "variables") or value is None:
            continue
        if key in ("git", "cluster_id", "compute_id"):
            bundle_section = (
                doc.get("bundle") if isinstance(doc.get("bundle"), dict) else YMap(doc.loc)
            )
            piece = YMap(loc_of(overrides, key, doc.loc))
            piece[key] = value
            piece.locs[key] = loc_of(overrides, key, doc.loc)
            doc["bundle"] = merge(bundle_section, piece)
            continue
        doc[key] = merge(doc[key], value) if key in doc else copy_value(value)
        doc.locs[key] = loc_of(overrides, key, doc.loc)
    merge_keyed_resources(doc.get("resources"))

    declared = doc.get("variables") if isinstance(doc.get("variables"), dict) else {}
    values: dict[str, Any] = {}
    for var, decl in declared.items():
        if isinstance(decl, dict) and "default" in decl:
            values[var] = decl["default"]
    target_vars = overrides.get("variables")
    if isinstance(target_vars, dict):
        new_vars = copy_value(doc["variables"]) if isinstance(doc.get("variables"), YMap) else None
        for var, value in target_vars.items():
            if isinstance(value, dict) and set(value) <= set(VARIABLE_KEYS):
                if "default" not in value:
                    continue
                value = value["default"]
            values[var] = value
            # The merged document carries the target's value as the variable's default.
            if new_vars is not None and isinstance(new_vars.get(var), YMap):
                new_vars[var]["default"] = value
                new_vars[var].locs["default"] = loc_of(target_vars, var, new_vars.loc)
        if new_vars is not None:
            doc["variables"] = new_vars
    view = TargetView(name=name, doc=doc, values=values, mode=overrides.get("mode"))
    bundle_section = doc.get("bundle")
    view.bundle_name = bundle_section.get("name") if isinstance(bundle_section, dict) else None
    return view


def load_bundle(
    tree: Mapping[str, bytes],
    project: str = "",
    file_prefix: str = "",
    repo: Mapping[str, bytes] | None = None,
) -> LoadedBundle:
    """Read a project's bundle from its files (``repo``: the repository's, for includes that
    leave the project); never raises for bad user files."""
    bundle = LoadedBundle(project=project, file_prefix=file_prefix, tree=tree, repo=repo)
    root_file = bundle.root_file
    if BUNDLE_FILE not in tree:
        bundle.problems.append(
            Problem(
                root_file,
                None,
                "not found; every project needs a databricks.yml "
                "(re-create the project with `invoke new-project`)",
            )
        )
        return bundle
    root, problems = parse_yaml(tree[BUNDLE_FILE], root_file)
    bundle.problems.extend(problems)
    if root is None and not problems:
        root = YMap((root_file, 1))
    if root is None:
        return bundle
    if not isinstance(root, YMap):
        bundle.problems.append(
            Problem(root_file, 1, f"expected a mapping at the top, got {describe(root)}")
        )
        return bundle
    bundle.files[BUNDLE_FILE] = root
    base = root
    for include in _resolve_includes(bundle, root):
        repo_file = include.repo_file
        try:
            raw = include.source[include.key]
        except (KeyError, OSError) as exc:
            why = exc.strerror or str(exc) if isinstance(exc, OSError) else "it is gone"
            bundle.problems.append(
                Problem(repo_file, None, f"included, but cannot be read ({why}); fix it")
            )
            bundle.incomplete = True
            continue
        part, problems = parse_yaml(raw, repo_file)
        bundle.problems.extend(problems)
        if part is None:
            bundle.incomplete = bundle.incomplete or bool(problems)
            continue
        if not isinstance(part, YMap):
            bundle.problems.append(
                Problem(repo_file, 1, f"expected a mapping at the top, got {describe(part)}")
            )
            bundle.incomplete = True
            continue
        bundle.files[include.rel] = part
        base = _merge_include(bundle, base, part, repo_file)
    bundle.base = base

    for key in ("bundle", "workspace", "variables", "resources", "targets"):
        _section_map(base, key, base.loc_of(key)[0] or root_file, bundle.problems)
    targets = base.get("targets")
    if isinstance(targets, dict) and targets:
        for name, spec in targets.items():
            bundle.targets[str(name)] = _target_view(bundle, str(name), spec, base)
    else:
        # Without targets the CLI deploys a single implicit target named "default".
        bundle.targets["default"] = _target_view(bundle, "default", None, base)
    return bundle
