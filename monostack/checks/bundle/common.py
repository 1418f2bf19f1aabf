"""What every bundle rule shares: the check's name, suggestions, unknown-key warnings and the
conversion of loader :class:`Problem` entries into findings."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from monostack.bundle import Problem, loc_of
from monostack.checks import WARNING, Finding

CHECK = "bundle-validate"
REQUIRED_TARGETS = ("staging", "prod", "test")


def to_findings(project: str, problems: Iterable[Problem]) -> list[Finding]:
    """One finding per distinct problem, sorted by file and line."""
    seen = set()
    findings = []
    for p in problems:
        key = (p.file, p.line, p.severity, p.message)
        if key in seen:
            continue
        seen.add(key)
        findings.append(Finding(CHECK, project, p.file, p.line, p.severity, p.message))
    return sorted(findings, key=Finding.order)


def suggest(name: str, known: Iterable[str]) -> str:
    """``did you mean 'x'?`` for a near miss, else generic advice."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else "remove it or fix its spelling"


def unknown_keys(
    mapping: Any, known: tuple[str, ...], where: str, severity: str = WARNING
) -> list[Problem]:
    if not isinstance(mapping, dict):
        return []
    out = []
    for key in mapping:
        if key not in known:
            file, line = loc_of(mapping, key, ("", None))
            out.append(
                Problem(
                    file,
                    line,
                    f"unknown key {key!r} in {where}; the Databricks CLI ignores it "
                    f"({suggest(str(key), known)})",
                    severity,
                )
            )
    return out
