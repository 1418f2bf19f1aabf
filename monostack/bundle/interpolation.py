"""``${...}`` references as the CLI parses them, and their values per target, offline."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from monostack.bundle.documents import YMap
from monostack.config import workspace_host

# Reference syntax of the CLI (libs/dyn/dynvar/ref.go): ``${a.b[0].c}``; ``$${...}`` is escaped.
_SEGMENT = r"_*[^\W\d_]+(?:[-_]*[^\W_]+)*"
REFERENCE = re.compile(
    r"(?<!\$)\$\{(%s(?:\.%s(?:\[[0-9]+\])*)*(?:\[[0-9]+\])*)\}" % ((_SEGMENT,) * 2)
)
_INDEX = re.compile(r"\[([0-9]+)\]")

# What `${workspace.current_user.*}` resolves to: every project deploys as the same identity.
DEPLOYER = "<deploying-user>"
_CURRENT_USER = ("workspace.current_user.userName", "workspace.current_user.short_name")


def references(text: str) -> list[str]:
    """The ``${...}`` reference paths in a string, e.g. ``["var.x", "bundle.target"]``."""
    return [m.group(1) for m in REFERENCE.finditer(text)]


def is_pure_reference(value: Any) -> bool:
    """True for a string that is exactly one ``${...}`` reference (a typed field may hold it)."""
    if not isinstance(value, str):
        return False
    match = REFERENCE.match(value)
    return bool(match) and match.end() == len(value)


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
