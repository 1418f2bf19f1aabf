"""Loading a Databricks Asset Bundle offline, the way the Databricks CLI reads it, with locations.

This reads a bundle from a project tree (``{path relative to the project: bytes}``): it parses
every YAML file keeping the line of every mapping key, follows ``include`` globs, merges the
included files' top-level sections and then, per target, the target overrides. Nothing here
raises for bad user files: problems are collected as :class:`Problem` entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monostack.bundle.documents import Problem, YMap, describe, loc_of, parse_yaml
from monostack.bundle.files import glob_tree, has_glob, normalize_path
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

    @property
    def root_file(self) -> str:
        return self.file_prefix + BUNDLE_FILE

    def rel(self, repo_file: str) -> str:
        """Project-relative path of a repo-relative file name used in locations."""
        return (
            repo_file[len(self.file_prefix) :]
            if repo_file.startswith(self.file_prefix)
            else repo_file
        )

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


def _resolve_includes(bundle: LoadedBundle, root: YMap) -> list[str]:
    """Project-relative files named by ``include``, in the CLI's order, with problems noted."""
    file = bundle.root_file
    patterns = root.get("include")
    if patterns is None:
        return []
    if not isinstance(patterns, list):
        bundle.problems.append(
            Problem(
                file,
                root.loc_of("include")[1],
                f"`include` must be a list of paths or globs, got {describe(patterns)}",
            )
        )
        return []
    all_paths = sorted(bundle.tree)
    found: list[str] = []
    for index, pattern in enumerate(patterns):
        line = loc_of(patterns, index, root.loc_of("include"))[1]
        if not isinstance(pattern, str) or not pattern.strip():
            bundle.problems.append(
                Problem(file, line, f"include entry {describe(pattern)} is not a path")
            )
            continue
        normalized = normalize_path(pattern.strip())
        if normalized is None:
            bundle.problems.append(
                Problem(
                    file,
                    line,
                    f"include {pattern!r} points outside the project directory; "
                    "keep included files inside the project",
                )
            )
            continue
        if has_glob(normalized):
            matches = glob_tree(all_paths, normalized)  # matching nothing is fine
        elif normalized in bundle.tree:
            matches = [normalized]
        else:
            bundle.problems.append(
                Problem(
                    file,
                    line,
                    f"include {pattern!r} names a file that does not exist "
                    f"({bundle.file_prefix}{normalized}); create it or remove the entry",
                )
            )
            continue
        for match in matches:
            if match == BUNDLE_FILE or match in found:
                continue
            if not match.endswith(INCLUDE_SUFFIXES):
                bundle.problems.append(
                    Problem(
                        file,
                        line,
                        f"include {pattern!r} takes {bundle.file_prefix}{match}, which "
                        "is not a .yml, .yaml or .json file (the databricks CLI refuses it); "
                        "narrow the pattern, e.g. resources/*.yml",
                    )
                )
                continue
            found.append(match)
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
    tree: Mapping[str, bytes], project: str = "", file_prefix: str = ""
) -> LoadedBundle:
    """Read a project's bundle from its files; never raises for bad user files."""
    bundle = LoadedBundle(project=project, file_prefix=file_prefix, tree=tree)
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
    for rel in _resolve_includes(bundle, root):
        repo_file = file_prefix + rel
        try:
            raw = tree[rel]
        except KeyError:
            continue
        part, problems = parse_yaml(raw, repo_file)
        bundle.problems.extend(problems)
        if part is None:
            continue
        if not isinstance(part, YMap):
            bundle.problems.append(
                Problem(
                    repo_file,
                    1,
                    f"expected a mapping at the top, got {describe(part)}",
                )
            )
            continue
        bundle.files[rel] = part
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
