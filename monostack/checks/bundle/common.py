"""What every bundle rule shares: the check's name, suggestions, unknown-key warnings and the
conversion of loader :class:`Problem` entries into findings."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from monostack.bundle import Loc, Problem, YMap, loc_of
from monostack.checks import ERROR, WARNING, Finding

CHECK = "bundle-validate"
REQUIRED_TARGETS = ("staging", "prod", "test")


def problem_at(
    container: Any, key: Any, default: Loc, message: str, severity: str = ERROR
) -> Problem:
    """A problem at ``container[key]``'s key (``default`` when its place is not known)."""
    file, line = loc_of(container, key, default)
    return Problem(file, line, message, severity)


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


NEAR_MISS = 0.85  # difflib ratio from which an unknown name is taken for a typo of a known one


def edit_distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) that turn ``a`` into ``b``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


def near_miss(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` is almost surely a typo of, or None: one edit away (two for
    names over five letters: ``max_concurent_runs``, ``nmae``), or nearly the same text."""
    known = list(known)
    limit = 1 if len(name) <= 5 else 2
    scored = sorted((edit_distance(name.lower(), k.lower()), k) for k in known)
    if scored and scored[0][0] <= limit:
        return scored[0][1]
    close = difflib.get_close_matches(name, known, n=1, cutoff=NEAR_MISS)
    return close[0] if close else None


def unknown_field(mapping: Any, key: Any, known: Iterable[str], where: str) -> Problem | None:
    """An unknown key, as the CLI sees it: a warning (fields come and go between CLI versions),
    but an error when it is a near miss of a known field (the CLI would drop the setting
    silently). A key that only holds a YAML anchor used elsewhere is fine: None."""
    if isinstance(mapping, YMap) and key in mapping.anchored:
        return None
    file, line = loc_of(mapping, key, ("", None))
    known = list(known)
    typo = near_miss(str(key), known)
    if typo is not None:
        return Problem(
            file,
            line,
            f"unknown field {key!r} in {where}: did you mean {typo!r}? The Databricks CLI would "
            "ignore it and deploy without that setting; fix the spelling",
        )
    return Problem(
        file,
        line,
        f"unknown field {key!r} in {where}; the Databricks CLI ignores it (a field of another "
        f"CLI version?): {suggest(str(key), known)}",
        WARNING,
    )


def unknown_keys(mapping: Any, known: tuple[str, ...], where: str) -> list[Problem]:
    """:func:`unknown_field` for every key of ``mapping`` not in ``known``."""
    if not isinstance(mapping, dict):
        return []
    found = (unknown_field(mapping, key, known, where) for key in mapping if key not in known)
    return [problem for problem in found if problem is not None]
