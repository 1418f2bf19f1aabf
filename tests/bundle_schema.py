"""The published Databricks bundle JSON schema, made usable with Python's ``re``.

The schema's patterns use ``\\p{L}`` / ``\\p{N}``; Python's ``re`` has neither, so they are
rewritten: ``[\\p{L}\\p{N}]`` -> ``[^\\W_]``, ``\\p{L}`` -> ``[^\\W\\d_]``, ``\\p{N}`` -> ``\\d``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from tests.conftest import BUNDLE_SCHEMA


def _fix_pattern(pattern: str) -> str:
    return (
        pattern.replace(r"[\p{L}\p{N}]", r"[^\W_]")
        .replace(r"\p{L}", r"[^\W\d_]")
        .replace(r"\p{N}", r"\d")
    )


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (_fix_pattern(v) if k == "pattern" and isinstance(v, str) else _walk(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_walk(v) for v in node]
    return node


@functools.cache
def validator():
    import jsonschema

    schema = _walk(json.loads(Path(BUNDLE_SCHEMA).read_text()))
    return jsonschema.Draft202012Validator(schema)


def _leaves(error):
    if not error.context:
        yield error
    for sub in error.context:
        yield from _leaves(sub)


def schema_errors(document: dict) -> list[str]:
    """Every schema violation of a merged bundle document, as 'path: message' lines.

    ``oneOf`` failures are reported through their innermost errors, leaving out the
    "could be a ${...} reference string instead" alternatives every typed field has.
    """
    found = set()
    for error in validator().iter_errors(document):
        leaves = [
            leaf
            for leaf in _leaves(error)
            if not (leaf.validator in ("type", "pattern") and "string" in str(leaf.schema))
        ] or [error]
        for leaf in leaves:
            path = "/".join(str(p) for p in leaf.absolute_path) or "<root>"
            found.add(f"{path}: {leaf.message[:300]}")
    return sorted(found)


def deep_merge(target: dict, extra: dict, where: str = "") -> dict:
    """Merge ``extra`` into ``target`` the way the bundle loader merges included files: mappings
    merge key by key; the same leaf (e.g. one job key) defined twice is a conflict."""
    for key, value in extra.items():
        path = f"{where}.{key}" if where else str(key)
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value, path)
        elif key in target:
            raise ValueError(f"{path} is defined twice")
        else:
            target[key] = value
    return target


def merged_bundle(project_dir: Path, extra_includes: tuple[str, ...] = ()) -> dict:
    """databricks.yml with the files of its ``include`` globs (plus ``extra_includes``, e.g. a
    resource file that is commented out by default) merged in: a resource key defined in two
    files is an error, as in the Databricks CLI; other mappings merge key by key."""
    import copy

    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    main = yaml.load((project_dir / "databricks.yml").read_text(), Loader=loader)  # noqa: S506
    merged = copy.deepcopy(main)
    seen: set[Path] = set()
    for pattern in [*main.get("include", []), *extra_includes]:
        paths = sorted(project_dir.glob(pattern.removeprefix("./")))
        if not paths:
            raise ValueError(f"include {pattern!r} matches no file in {project_dir}")
        for path in paths:
            if path in seen:
                continue
            seen.add(path)
            part = yaml.load(path.read_text(), Loader=loader) or {}  # noqa: S506
            for kind, entries in (part.pop("resources", None) or {}).items():
                known = merged.setdefault("resources", {}).setdefault(kind, {})
                for key in entries:
                    if key in known:
                        raise ValueError(f"{path.name}: resources.{kind}.{key} is defined twice")
                known.update(entries)
            deep_merge(merged, part, path.name)
    return merged
