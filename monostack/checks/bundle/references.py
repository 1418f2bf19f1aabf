"""``${var.X}`` names a declared variable; ``${resources.T.K...}`` a resource the target has."""

from __future__ import annotations

import re

from monostack.bundle import (
    BUNDLE_FILE,
    LoadedBundle,
    Problem,
    TargetView,
    format_path,
    iter_strings,
    references,
)
from monostack.checks.bundle.common import suggest
from monostack.checks.bundle.models import known_resource_types


def check_variable_references(bundle: LoadedBundle) -> list[Problem]:
    declared = bundle.declared_variables
    out = []
    for doc in bundle.files.values():
        for path, text, (file, line) in iter_strings(doc, doc.loc):
            for ref in references(text):
                head, _, rest = ref.partition(".")
                if head not in ("var", "variables"):
                    continue
                name = re.split(r"[.\[]", rest, maxsplit=1)[0]
                if name in declared:
                    continue
                out.append(
                    Problem(
                        file,
                        line,
                        f"${{{ref}}} at {format_path(path)} uses variable {name!r}, "
                        f"which is not declared under `variables`; declare it in {BUNDLE_FILE} "
                        "or fix the name",
                    )
                )
    return out


def check_resource_references(bundle: LoadedBundle, view: TargetView) -> list[Problem]:
    resources = view.doc.get("resources")
    out = []
    for path, text, (file, line) in iter_strings(view.doc, view.doc.loc):
        for ref in references(text):
            parts = ref.split(".")
            if parts[0] != "resources":
                continue
            where = f"${{{ref}}} at {format_path(path)}"
            if len(parts) < 3:
                out.append(
                    Problem(
                        file,
                        line,
                        f"{where} is incomplete; use ${{resources.<type>.<key>.<field>}}",
                    )
                )
                continue
            rtype, key = parts[1], re.sub(r"\[[0-9]+\]$", "", parts[2])
            if rtype not in known_resource_types():
                out.append(
                    Problem(
                        file,
                        line,
                        f"{where} names the unknown resource type {rtype!r} "
                        f"({suggest(rtype, known_resource_types())})",
                    )
                )
                continue
            group = resources.get(rtype) if isinstance(resources, dict) else None
            if isinstance(group, dict) and key in group:
                continue
            elsewhere = [
                other.name
                for other in bundle.targets.values()
                if _has_resource(other, rtype, key) and other.name != view.name
            ]
            only = f" in target {view.name!r} (only in {', '.join(elsewhere)})" if elsewhere else ""
            out.append(
                Problem(
                    file,
                    line,
                    f"{where} refers to resources.{rtype}.{key}, which is not defined{only}; "
                    "define it or fix the reference",
                )
            )
    return out


def _has_resource(view: TargetView, rtype: str, key: str) -> bool:
    resources = view.doc.get("resources")
    group = resources.get(rtype) if isinstance(resources, dict) else None
    return isinstance(group, dict) and key in group
