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


def merged_bundle(project_dir: Path) -> dict:
    """databricks.yml with the top-level mappings of its included files merged in."""
    import yaml

    main = yaml.safe_load((project_dir / "databricks.yml").read_text())
    merged = dict(main)
    for pattern in main.get("include", []):
        for path in sorted(project_dir.glob(pattern.removeprefix("./"))):
            part = yaml.safe_load(path.read_text()) or {}
            for key, value in part.items():
                if isinstance(value, dict):
                    target = merged.setdefault(key, {})
                    for sub, subval in value.items():
                        if isinstance(subval, dict):
                            target.setdefault(sub, {}).update(subval)
                        else:
                            target[sub] = subval
                else:
                    merged[key] = value
    return merged
