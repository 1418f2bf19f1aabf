"""YAML documents that remember where every key came from (file and line), as bundle checks
need to point at the offending key even after files and targets are merged."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from monostack.checks import ERROR
from monostack.errors import not_utf8

Loc = tuple[str, int | None]  # (repo-relative file, 1-based line)
Path_ = tuple[str | int, ...]  # a key path inside a document: ("resources", "jobs", "x", ...)


@dataclass(frozen=True)
class Problem:
    """A fault in a user file, found while loading: where, what, how bad."""

    file: str
    line: int | None
    message: str
    severity: str = ERROR


# ------------------------------------------------------------------------------------ documents
class YMap(dict):
    """A YAML mapping that remembers where it and each of its keys came from, and which keys
    hold a value that is aliased elsewhere (``key: &name ...`` used as ``*name``)."""

    __slots__ = ("anchored", "loc", "locs")

    def __init__(self, loc: Loc, *args: Any) -> None:
        super().__init__(*args)
        self.loc: Loc = loc
        self.locs: dict[Any, Loc] = {}
        self.anchored: set[Any] = set()

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


# ------------------------------------------------------------------------------------ YAML
_MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_EXPANDED_NODES = 1_000_000
_KEEP_TEXT_TAGS = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary")


def _line(node: Any) -> int:
    return node.start_mark.line + 1


def parse_yaml(data: bytes | str, file: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document into :class:`YMap` / :class:`YSeq` / scalars with locations.

    Mapping keys are kept as the text written (the CLI reads YAML 1.2, where ``on:`` is the
    string "on"). Duplicate keys are problems. Returns ``(None, [problem])`` for invalid YAML.
    """
    import yaml

    from monostack.yaml12 import Yaml12Loader

    problems: list[Problem] = []
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, [Problem(file, None, not_utf8(exc))]
    else:
        text = data
    loader = Yaml12Loader(text)
    active: set[int] = set()
    # An alias is the node of its anchor again: build each node once (as PyYAML does), and
    # bound how large the document is once aliases are expanded, since checks walk it whole.
    built: dict[int, Any] = {}
    sizes: dict[int, int] = {}
    refs: dict[int, int] = {}  # node -> how many places hold it (more than one: aliased)

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
            for child in children:
                refs[id(child)] = refs.get(id(child), 0) + 1
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
                            f"duplicate key {key_node.value!r}; keep only one of them",
                        )
                    )
                seen.add(key_node.value)
            loader.flatten_mapping(node)
            mapping = YMap((file, _line(node)))
            for key_node, value_node in node.value:
                key = key_node.value
                mapping[key] = build(value_node)
                mapping.locs[key] = (file, _line(key_node))
                if refs.get(id(value_node), 0) > 1:
                    mapping.anchored.add(key)
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
                    f"YAML aliases expand to {size:,} values (limit "
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
        return None, [*problems, Problem(file, line, f"invalid YAML: {detail}")]
    except RecursionError:
        return None, [Problem(file, None, "YAML nested too deeply to read")]
    finally:
        loader.dispose()
    return result, problems
