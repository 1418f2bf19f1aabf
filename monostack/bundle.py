"""Loading a Databricks Asset Bundle offline, the way the Databricks CLI reads it, with locations.

The CLI needs a workspace and a login to tell you that ``databricks.yml`` is wrong, and then it
reports one project at a time. This module reads a bundle from an in-memory project tree
(``{path relative to the project: bytes}``): it parses every YAML file keeping the line of every
mapping key, follows ``include`` globs, merges the included files' top-level sections and then,
per target, the target overrides. Every value keeps the file and line it came from, so checks can
point at the offending key even after merging.

Nothing here raises for bad user files: problems are collected as :class:`Problem` entries.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monostack.config import workspace_host
from monostack.errors import not_utf8

BUNDLE_FILE = "databricks.yml"
ERROR = "error"
WARNING = "warning"

Loc = tuple[str, int | None]  # (repo-relative file, 1-based line)
Path_ = tuple[str | int, ...]  # a key path inside a document: ("resources", "jobs", "x", ...)

# Top-level sections of databricks.yml, of a target, and of `bundle` / `workspace` / a variable
# declaration (from the published bundle schema). Unknown keys are warnings, as in the CLI.
TOP_LEVEL_KEYS = (
    "artifacts",
    "bundle",
    "environments",
    "experimental",
    "include",
    "permissions",
    "presets",
    "python",
    "resources",
    "run_as",
    "scripts",
    "sync",
    "targets",
    "variables",
    "workspace",
)
TARGET_KEYS = (
    "artifacts",
    "bundle",
    "cluster_id",
    "compute_id",
    "default",
    "git",
    "mode",
    "permissions",
    "presets",
    "resources",
    "run_as",
    "sync",
    "variables",
    "workspace",
)
BUNDLE_KEYS = (
    "cluster_id",
    "compute_id",
    "databricks_cli_version",
    "deployment",
    "engine",
    "git",
    "name",
    "uuid",
)
WORKSPACE_KEYS = (
    "account_id",
    "artifact_path",
    "auth_type",
    "azure_client_id",
    "azure_environment",
    "azure_login_app_id",
    "azure_tenant_id",
    "azure_use_msi",
    "azure_workspace_resource_id",
    "client_id",
    "experimental_is_unified_host",
    "file_path",
    "google_service_account",
    "host",
    "profile",
    "resource_path",
    "root_path",
    "state_path",
    "workspace_id",
)
VARIABLE_KEYS = ("default", "description", "lookup", "type")

# Reference syntax of the CLI (libs/dyn/dynvar/ref.go): ``${a.b[0].c}``; ``$${...}`` is escaped.
_SEGMENT = r"_*[^\W\d_]+(?:[-_]*[^\W_]+)*"
REFERENCE = re.compile(
    r"(?<!\$)\$\{(%s(?:\.%s(?:\[[0-9]+\])*)*(?:\[[0-9]+\])*)\}" % ((_SEGMENT,) * 2)
)
_INDEX = re.compile(r"\[([0-9]+)\]")

# What `${workspace.current_user.*}` resolves to: every project deploys as the same identity.
DEPLOYER = "<deploying-user>"
_CURRENT_USER = ("workspace.current_user.userName", "workspace.current_user.short_name")


@dataclass(frozen=True)
class Problem:
    """A fault in a user file, found while loading: where, what, how bad."""

    file: str
    line: int | None
    message: str
    severity: str = ERROR


# ------------------------------------------------------------------------------------ documents
class YMap(dict):
    """A YAML mapping that remembers where it and each of its keys came from."""

    __slots__ = ("loc", "locs")

    def __init__(self, loc: Loc, *args: Any) -> None:
        super().__init__(*args)
        self.loc: Loc = loc
        self.locs: dict[Any, Loc] = {}

    def loc_of(self, key: Any) -> Loc:
        return self.locs.get(key, self.loc)


class YSeq(list):
    """A YAML sequence that remembers where it and each of its items came from."""

    __slots__ = ("loc", "locs")

    def __init__(self, loc: Loc, items: Any = ()) -> None:
        super().__init__(items)
        self.loc: Loc = loc
        self.locs: list[Loc] = []

    def loc_of(self, index: int) -> Loc:
        return self.locs[index] if 0 <= index < len(self.locs) else self.loc


def loc_of(container: Any, key: Any, default: Loc) -> Loc:
    """Location of ``container[key]``'s key, or ``default`` for plain containers."""
    if isinstance(container, (YMap, YSeq)):
        return container.loc_of(key)
    return default


def format_path(path: Path_) -> str:
    """``("resources", "jobs", "x", "tasks", 0)`` -> ``resources.jobs.x.tasks[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def plain(value: Any) -> Any:
    """Deep copy as plain dicts and lists (for libraries that do not expect subclasses)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def iter_strings(node: Any, loc: Loc, path: Path_ = ()) -> Iterator[tuple[Path_, str, Loc]]:
    """Every string value under ``node`` with its key path and the location of its key."""
    if isinstance(node, str):
        yield path, node, loc
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from iter_strings(value, loc_of(node, key, loc), (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from iter_strings(value, loc_of(node, index, loc), (*path, index))


def references(text: str) -> list[str]:
    """The ``${...}`` reference paths in a string, e.g. ``["var.x", "bundle.target"]``."""
    return [m.group(1) for m in REFERENCE.finditer(text)]


def is_pure_reference(value: Any) -> bool:
    """True for a string that is exactly one ``${...}`` reference (a typed field may hold it)."""
    if not isinstance(value, str):
        return False
    match = REFERENCE.match(value)
    return bool(match) and match.end() == len(value)


# ------------------------------------------------------------------------------------ YAML
_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_EXPANDED_NODES = 1_000_000
INCLUDE_SUFFIXES = (".yml", ".yaml", ".json")  # what `databricks bundle` accepts in include
_KEEP_TEXT_TAGS = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary")


def _line(node: Any) -> int:
    return node.start_mark.line + 1


def parse_yaml(data: bytes | str, file: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document into :class:`YMap` / :class:`YSeq` / scalars with locations.

    Mapping keys are kept as the text written (the CLI reads YAML 1.2, where ``on:`` is the
    string "on"). Duplicate keys are problems. Returns ``(None, [problem])`` for invalid YAML.
    """
    import yaml

    from monostack.yamlutil import FastSafeLoader

    problems: list[Problem] = []
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, [Problem(file, None, f"{file}: {not_utf8(exc)}")]
    else:
        text = data
    loader = FastSafeLoader(text)
    active: set[int] = set()
    # An alias is the node of its anchor again: build each node once (as PyYAML does), and
    # bound how large the document is once aliases are expanded, since checks walk it whole.
    built: dict[int, Any] = {}
    sizes: dict[int, int] = {}

    def build(node: Any) -> Any:
        if id(node) in built:
            return built[id(node)]
        value = _build(node)
        built[id(node)] = value
        return value

    def expanded_size(node: Any) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 1  # a recursive alias counts once; build() reports it
            children = node.value if isinstance(node, yaml.SequenceNode) else ()
            if isinstance(node, yaml.MappingNode):
                children = [v for _, v in node.value]
            sizes[id(node)] = 1 + sum(expanded_size(c) for c in children)
        return sizes[id(node)]

    def _build(node: Any) -> Any:
        if isinstance(node, yaml.ScalarNode):
            if node.tag in _KEEP_TEXT_TAGS:
                return node.value
            return loader.construct_object(node)
        if id(node) in active:
            raise yaml.constructor.ConstructorError(
                None, None, "recursive alias (an anchor used inside itself)", node.start_mark
            )
        active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                seq = YSeq((file, _line(node)))
                for item in node.value:
                    seq.append(build(item))
                    seq.locs.append((file, _line(item)))
                return seq
            seen: set[str] = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    raise yaml.constructor.ConstructorError(
                        None, None, "a mapping key must be a plain value", key_node.start_mark
                    )
                if key_node.value in seen:
                    problems.append(
                        Problem(
                            file,
                            _line(key_node),
                            f"{file}: duplicate key {key_node.value!r}; keep only one of them",
                        )
                    )
                seen.add(key_node.value)
            loader.flatten_mapping(node)
            mapping = YMap((file, _line(node)))
            for key_node, value_node in node.value:
                key = key_node.value
                mapping[key] = build(value_node)
                mapping.locs[key] = (file, _line(key_node))
            return mapping
        finally:
            active.discard(id(node))

    try:
        node = loader.get_single_node()
        if node is not None and (size := expanded_size(node)) > MAX_EXPANDED_NODES:
            return None, [
                Problem(
                    file,
                    None,
                    f"{file}: YAML aliases expand to {size:,} values (limit "
                    f"{MAX_EXPANDED_NODES:,}); write the repeated parts out, or use fewer aliases",
                )
            ]
        result = None if node is None else build(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        context_mark = getattr(exc, "context_mark", None)
        if context and context_mark is not None and context_mark.line + 1 != line:
            context = f"{context} (line {context_mark.line + 1})"
        detail = f"{context}, {problem}" if context else problem
        where = f"{file}:{line}" if line else file
        return None, [*problems, Problem(file, line, f"{where}: invalid YAML: {detail}")]
    except RecursionError:
        return None, [Problem(file, None, f"{file}: YAML nested too deeply to read")]
    finally:
        loader.dispose()
    return result, problems


# ------------------------------------------------------------------------------------ merging
def _copy(value: Any) -> Any:
    if isinstance(value, YMap):
        out = YMap(value.loc)
        for key, item in value.items():
            out[key] = _copy(item)
        out.locs = dict(value.locs)
        return out
    if isinstance(value, YSeq):
        seq = YSeq(value.loc, [_copy(v) for v in value])
        seq.locs = list(value.locs)
        return seq
    return value


def merge(base: Any, override: Any) -> Any:
    """Deep merge as the CLI does: mappings key by key, sequences appended, scalars replaced.

    Returns a new value; neither input is changed.
    """
    if isinstance(base, dict) and isinstance(override, dict):
        out = _copy(base) if isinstance(base, YMap) else YMap(("", None), base)
        for key, value in override.items():
            if key in out and isinstance(out[key], (dict, list)) and value is not None:
                out[key] = merge(out[key], value)
            elif key in out and value is None:
                continue
            else:
                out[key] = _copy(value)
            out.locs[key] = loc_of(override, key, out.loc)
        return out
    if isinstance(base, list) and isinstance(override, list):
        out_seq = _copy(base) if isinstance(base, YSeq) else YSeq(("", None), base)
        for index, value in enumerate(override):
            out_seq.append(_copy(value))
            out_seq.locs.append(loc_of(override, index, out_seq.loc))
        return out_seq
    return _copy(override)


# Sequences whose items the CLI merges by an identifying key after target overrides
# (bundle/config/mutator: MergeJobClusters, MergeJobTasks, MergeJobParameters, ...).
_KEYED_SEQUENCES = {
    "jobs": (("tasks", "task_key"), ("job_clusters", "job_cluster_key"), ("parameters", "name")),
    "pipelines": (("clusters", "label"),),
}


def _merge_keyed(seq: Any, key: str) -> Any:
    if not isinstance(seq, YSeq):
        return seq
    out = YSeq(seq.loc)
    index_of: dict[Any, int] = {}
    for i, item in enumerate(seq):
        ident = item.get(key) if isinstance(item, dict) else None
        if isinstance(ident, str) and ident in index_of:
            at = index_of[ident]
            out[at] = merge(out[at], item)
            continue
        if isinstance(ident, str):
            index_of[ident] = len(out)
        out.append(item)
        out.locs.append(seq.loc_of(i))
    return out


def _merge_keyed_resources(resources: Any) -> None:
    if not isinstance(resources, dict):
        return
    for rtype, rules in _KEYED_SEQUENCES.items():
        group = resources.get(rtype)
        if not isinstance(group, dict):
            continue
        for resource in group.values():
            if not isinstance(resource, dict):
                continue
            for seq_key, ident in rules:
                if seq_key in resource:
                    resource[seq_key] = _merge_keyed(resource[seq_key], ident)


# ------------------------------------------------------------------------------------ trees
def _norm(path: str) -> str | None:
    """Normalise a project-relative POSIX path; None when it leaves the project."""
    joined = posixpath.normpath(path.replace("\\", "/"))
    if joined in (".", ""):
        return ""
    if joined.startswith("../") or joined == ".." or joined.startswith("/"):
        return None
    return joined


def glob_tree(paths: list[str], pattern: str) -> list[str]:
    """Paths matching a glob the way Go's ``filepath.Glob`` does: ``*`` stays inside one
    directory level."""
    parts = pattern.split("/")
    found = []
    for path in paths:
        segments = path.split("/")
        if len(segments) == len(parts) and all(
            fnmatch.fnmatchcase(seg, pat) for seg, pat in zip(segments, parts, strict=True)
        ):
            found.append(path)
    return sorted(found)


def has_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


class DiskTree(Mapping):
    """A project directory as a read-on-demand ``{relative path: bytes}`` mapping."""

    _SKIP_DIRS = frozenset({".git", ".databricks", ".venv", "__pycache__", "node_modules"})

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._files: list[str] | None = None
        self._set: frozenset[str] = frozenset()

    def _list(self) -> list[str]:
        if self._files is None:
            files = []
            for dirpath, dirnames, filenames in os.walk(self.path):
                dirnames[:] = sorted(d for d in dirnames if d not in self._SKIP_DIRS)
                rel = Path(dirpath).relative_to(self.path).as_posix()
                for name in sorted(filenames):
                    files.append(name if rel == "." else f"{rel}/{name}")
            self._files = files
            self._set = frozenset(files)
        return self._files

    def __getitem__(self, key: str) -> bytes:
        try:
            return (self.path / key).read_bytes()
        except OSError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        self._list()
        return isinstance(key, str) and key in self._set

    def __iter__(self) -> Iterator[str]:
        return iter(self._list())

    def __len__(self) -> int:
        return len(self._list())


# ------------------------------------------------------------------------------------ bundles
@dataclass
class TargetView:
    """One target of a bundle: the merged document and the variable values it deploys with."""

    name: str
    doc: YMap  # root + includes + this target's overrides, without `targets`
    values: dict[str, Any]  # variable name -> value for this target (override or default)
    mode: Any = None
    bundle_name: Any = None

    @property
    def host(self) -> str | None:
        workspace = self.doc.get("workspace")
        return workspace_host(workspace.get("host")) if isinstance(workspace, dict) else None

    def lookup(self, ref: str) -> Any:
        """The value a reference path stands for, or ``None`` when it is not known offline."""
        if ref == "bundle.target":
            return self.name
        if ref == "bundle.name":
            return self.bundle_name
        if ref in _CURRENT_USER:
            return DEPLOYER
        head, _, rest = ref.partition(".")
        if head in ("var", "variables"):
            name, _, rest = rest.partition(".")
            if head == "variables":  # ${variables.x.value}
                rest = rest.removeprefix("value").lstrip(".")
            if name not in self.values:
                return None
            value = self.values[name]
            return _walk_path(value, rest) if rest else value
        return _walk_path(self.doc, ref)

    def resolve(self, text: Any, depth: int = 0) -> Any:
        """Interpolate the references known offline (target, bundle name, deploying user,
        variables, other values of the document); unknown ones are left as written."""
        if not isinstance(text, str) or depth > 10 or "${" not in text:
            return text

        def replace(match: re.Match) -> str:
            value = self.lookup(match.group(1))
            if value is None or isinstance(value, (dict, list)):
                return match.group(0)
            if isinstance(value, bool):
                value = "true" if value else "false"
            return str(self.resolve(str(value), depth + 1))

        if is_pure_reference(text):
            value = self.lookup(text[2:-1])
            if isinstance(value, (dict, list)):
                return value
        return REFERENCE.sub(replace, text)


def _walk_path(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        name = _INDEX.sub("", part)
        if not isinstance(node, dict) or name not in node:
            return None
        node = node[name]
        for index in _INDEX.findall(part):
            if not isinstance(node, list) or int(index) >= len(node):
                return None
            node = node[int(index)]
    return node


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
        problems.append(
            Problem(file, line, f"{file}: `{key}` must be a mapping, got {describe(value)}")
        )
        return None
    return value


def describe(value: Any) -> str:
    """Short description of a value's kind, for messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return repr(value)


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
                f"{file}: `include` must be a list of paths or globs, got {describe(patterns)}",
            )
        )
        return []
    all_paths = sorted(bundle.tree)
    found: list[str] = []
    for index, pattern in enumerate(patterns):
        line = loc_of(patterns, index, root.loc_of("include"))[1]
        if not isinstance(pattern, str) or not pattern.strip():
            bundle.problems.append(
                Problem(file, line, f"{file}: include entry {describe(pattern)} is not a path")
            )
            continue
        normalized = _norm(pattern.strip())
        if normalized is None:
            bundle.problems.append(
                Problem(
                    file,
                    line,
                    f"{file}: include {pattern!r} points outside the project directory; "
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
                    f"{file}: include {pattern!r} names a file that does not exist "
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
                        f"{file}: include {pattern!r} takes {bundle.file_prefix}{match}, which "
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
                f"{file}: `include` is only allowed in {bundle.root_file}; move it there",
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
                            f"{file}: resource {rtype}.{key} is also defined in "
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
        doc[key] = merge(doc[key], value) if key in doc else _copy(value)
        doc.locs[key] = loc_of(overrides, key, doc.loc)
    _merge_keyed_resources(doc.get("resources"))

    declared = doc.get("variables") if isinstance(doc.get("variables"), dict) else {}
    values: dict[str, Any] = {}
    for var, decl in declared.items():
        if isinstance(decl, dict) and "default" in decl:
            values[var] = decl["default"]
    target_vars = overrides.get("variables")
    if isinstance(target_vars, dict):
        new_vars = _copy(doc["variables"]) if isinstance(doc.get("variables"), YMap) else None
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
                f"{root_file}: not found; every project needs a databricks.yml "
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
            Problem(
                root_file, 1, f"{root_file}: expected a mapping at the top, got {describe(root)}"
            )
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
                    f"{repo_file}: expected a mapping at the top, got {describe(part)}",
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
