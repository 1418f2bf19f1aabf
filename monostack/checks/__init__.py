"""Checks over projects, the template and root CI files.

Every check returns :class:`CaseResult` objects: one per (check, project) or per (check,
render-matrix combination), each holding :class:`Finding` lines. One reporter
(:mod:`monostack.report`) prints them as a rich table, JUnit XML or GitHub annotations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from monostack.errors import UserError

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)

MONOREPO = "<monorepo>"  # the `project` of findings about root files or the template itself


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: which check saw it, in which project, where, how bad, and what to do."""

    check: str
    project: str
    file: str  # repo-relative POSIX path, or "" when no file applies
    line: int | None
    severity: str
    message: str

    def order(self) -> tuple:
        """Sort key within a case: by place in the file, then severity, then text."""
        return (self.file, self.line or 0, self.severity, self.message)

    def location(self) -> str:
        """``file:line``, ``file`` or "": the one place a finding's location is formatted."""
        if not self.file:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    @classmethod
    def from_error(
        cls, check: str, project: str, exc: UserError, root: Path | None = None
    ) -> Finding:
        """An error finding for a UserError, its file (relative to ``root``) and line as fields."""
        file = exc.file
        if file and root is not None:
            for base in (Path(root), Path(root).resolve()):
                if Path(file).is_absolute() and Path(file).is_relative_to(base):
                    file = Path(file).relative_to(base).as_posix()
                    break
        return cls(check, project, file, exc.line, ERROR, exc.detail)


@dataclass
class CaseResult:
    """The outcome of one check on one subject: a JUnit test case."""

    check: str  # e.g. "lint", "bundle-validate", "render-matrix", "sync-workflows"
    case: str  # project name, combination id, or MONOREPO
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None  # reason, when the case did not run

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def failed(self) -> bool:
        return bool(self.errors)
