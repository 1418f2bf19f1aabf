"""YAML loading with errors a user can act on: file, line and what went wrong, one line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from monostack.errors import UserError, not_utf8
from monostack.yaml12 import CORE_SCHEMA, MERGE_TAG, Yaml12Loader

# libyaml's parser (~10x faster on CI files) with YAML 1.2 values, as the Databricks CLI,
# GitHub and GitLab read them: `on`, `no` and `1:30` are strings, `017` is 17.
FastSafeLoader = Yaml12Loader


class StrictLoader(FastSafeLoader):  # type: ignore[misc,valid-type]
    """YAML 1.2 loader that refuses duplicate mapping keys (PyYAML keeps the last one)."""


def _key_text(node: yaml.Node, key: Any) -> Any:
    """The key as written (``0x1`` rather than the number it loads as)."""
    return node.value if isinstance(node, yaml.ScalarNode) else key


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG:  # `<<: *base`: merged by construct_mapping
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {_key_text(key_node, key)!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class GitLabLoader(StrictLoader):
    """StrictLoader that also reads GitLab's ``!reference [job, key]`` tag (as its list), as
    GitLab itself does: GitLab CI files may use it anywhere a value goes."""


def _construct_reference(loader: GitLabLoader, node: yaml.Node) -> list:
    if not isinstance(node, yaml.SequenceNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!reference needs a list such as [.job, script]", node.start_mark
        )
    return loader.construct_sequence(node, deep=True)


GitLabLoader.add_constructor("!reference", _construct_reference)


def yaml_error_message(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"{source}:{mark.line + 1}: invalid YAML: {problem}"
    return f"{source}: invalid YAML: {problem}"


def yaml_error(exc: yaml.YAMLError, source: str) -> UserError:
    """:func:`yaml_error_message` as a UserError with the file and line as fields."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    return UserError(yaml_error_message(exc, source), file=source, line=line)


# Most values a YAML document may stand for once its aliases are expanded. Real files are far
# below it (a big CI file: a few thousand); a "billion laughs" alias bomb is far above.
MAX_EXPANDED_NODES = 100_000


def expanded_size(node: yaml.Node, limit: int = MAX_EXPANDED_NODES) -> int:
    """How many nodes ``node`` stands for with every alias expanded, counted without expanding
    (each shared node once, memoised): linear in the file, stops early past ``limit``."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        known = sizes.get(id(n))
        if known is not None:
            return known
        sizes[id(n)] = 1  # a recursive alias counts once (PyYAML refuses it anyway)
        total = 1
        if isinstance(n, yaml.SequenceNode):
            children = n.value
        elif isinstance(n, yaml.MappingNode):
            children = [c for pair in n.value for c in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > limit:
                break
        sizes[id(n)] = total
        return total

    return size(node)


def _bounded_load(loader: yaml.SafeLoader, source: str) -> Any:
    node = loader.get_single_node()
    if node is None:
        return None
    if expanded_size(node) > MAX_EXPANDED_NODES:
        line = node.start_mark.line + 1
        raise UserError(
            f"{source}:{line}: refused: its aliases (*name) expand to more than "
            f"{MAX_EXPANDED_NODES} values (an alias bomb?); write the values out instead",
            file=source,
            line=line,
        )
    return loader.construct_document(node)


def load_yaml_text(text: str, source: str, loader: type[StrictLoader] = StrictLoader) -> Any:
    """Parse YAML text; raise UserError('<source>:<line>: invalid YAML: ...') on bad input.

    Alias expansion is bounded (:data:`MAX_EXPANDED_NODES`), so hostile input cannot make
    monostack or anything reading its result use unbounded time or memory.
    """
    try:
        parser = loader(text)
        try:
            return _bounded_load(parser, source)
        finally:
            parser.dispose()
    except yaml.YAMLError as exc:
        raise yaml_error(exc, source) from None
    except RecursionError:
        raise UserError(f"{source}: refused: nested too deeply; flatten it", file=source) from None


def load_yaml_file(path: Path, source: str | None = None, root: Path | None = None) -> Any:
    """Parse a UTF-8 YAML file; bad bytes or bad YAML are a UserError naming ``source``.

    Read through :func:`monostack.safeio.read_path`: never through a symlink (below ``root``
    when given), never a special file.
    """
    source = source or str(path)
    return load_yaml_text(read_yaml_text(path, source, root), source)


def read_yaml_text(path: Path, source: str, root: Path | None = None) -> str:
    """The text of a YAML file as :func:`load_yaml_file` reads it (its errors named ``source``),
    for callers that also key something by the text."""
    from monostack.safeio import read_path

    try:
        text = read_path(Path(path), root).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{source}: {not_utf8(exc)}", file=source) from None
    except UserError as exc:  # name the file as the caller knows it (e.g. monorepo.yml)
        rel = Path(path).relative_to(root).as_posix() if root is not None else Path(path).name
        message = exc.message
        if message.startswith(f"{rel}:"):
            message = source + message[len(rel) :]
        raise UserError(message, file=source) from None
    return text


def compose_yaml(text: str) -> yaml.Node | None:
    """The node tree of ``text`` (with line marks); raises ``yaml.YAMLError``."""
    return yaml.compose(text, Loader=FastSafeLoader)  # noqa: S506 - safe loader


class _Dumper(yaml.SafeDumper):
    """Quotes a string that YAML 1.1 *or* 1.2 would read as something else (``no``, ``0o17``),
    so every reader of the files monostack writes gets the string back."""


for _tag, _pattern, _first in CORE_SCHEMA:
    _Dumper.add_implicit_resolver(_tag, re.compile(rf"^(?:{_pattern})$"), list(_first))


def dump_yaml(data: Any) -> str:
    """Block-style, key order kept: stable output for files monostack writes."""
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
