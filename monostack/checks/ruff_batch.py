"""ruff for lint: ``ruff check`` and ``ruff format --check`` over many paths in as few
processes as possible, started in the background and collected as findings."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monostack.checks import ERROR, Finding
from monostack.checks.lint_scope import CHECK
from monostack.projects import Project

RUFF_CONFIG_FILES = ("ruff.toml", ".ruff.toml")


def ruff_executable() -> str | None:
    beside = Path(sys.executable).parent / "ruff"
    if beside.is_file():
        return str(beside)
    return shutil.which("ruff")


def has_own_ruff_config(path: Path) -> bool:
    """Does this directory hold a ruff configuration ruff itself would use?"""
    if any((path / name).is_file() for name in RUFF_CONFIG_FILES):
        return True
    pyproject = path / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        return "[tool.ruff" in pyproject.read_text(encoding="utf-8", errors="replace")
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return True  # let ruff itself report the broken file
    return "ruff" in data.get("tool", {})


@dataclass
class _Run:
    kind: str  # "check" or "format"
    paths: list[str]
    proc: Any = None
    failure: str | None = None


@dataclass
class RuffBatch:
    """At most four ruff processes: check and format, each for (a) the tool plus projects with
    their own ruff config (ruff finds each file's nearest config) and (b) projects without one
    (``--isolated``: ruff's defaults, not the tool's stricter rules)."""

    root: Path
    projects: list[Project]
    tool_paths: list[str]
    runs: list[_Run] = field(default_factory=list)
    started: float = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        own = [*self.tool_paths] + [p.rel for p in self.projects if has_own_ruff_config(p.path)]
        isolated = [p.rel for p in self.projects if not has_own_ruff_config(p.path)]
        exe = ruff_executable()
        for paths, extra in ((own, []), (isolated, ["--isolated"])):
            if not paths:
                continue
            for kind in ("check", "format"):
                run = _Run(kind, paths)
                self.runs.append(run)
                if exe is None:
                    run.failure = "ruff not found; install monostack's dependencies"
                    continue
                cmd = [exe, kind, "--no-cache", "--output-format", "json", *extra]
                cmd += ["--no-fix"] if kind == "check" else ["--check"]
                run.proc = subprocess.Popen(
                    [*cmd, "--", *paths],
                    cwd=self.root,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=_ruff_env(),
                )

    def collect(self) -> tuple[list[Finding], float]:
        findings: list[Finding] = []
        for run in self.runs:
            if run.proc is not None:
                stdout, stderr = run.proc.communicate(timeout=600)
                findings += self._parse(run, stdout, stderr, run.proc.returncode)
            else:
                findings += [self._group_error(run, run.failure or "ruff did not run")]
        return findings, time.perf_counter() - self.started

    def _parse(self, run: _Run, stdout: str, stderr: str, code: int) -> list[Finding]:
        try:
            diagnostics = json.loads(stdout) if stdout.strip() else []
        except json.JSONDecodeError:
            diagnostics = None
        if diagnostics is None or (code not in (0, 1) and not diagnostics):
            reason = _first_error_line(stderr) or f"exit {code}"
            return [self._group_error(run, f"ruff {run.kind} failed: {reason}")]
        findings = []
        for diag in diagnostics:
            rule = diag.get("code") or "invalid-syntax"
            if run.kind == "format" and rule == "invalid-syntax":
                continue  # ruff check reports the same syntax error
            file = self._rel(diag.get("filename", ""))
            line = (diag.get("location") or {}).get("row")
            if run.kind == "format":
                message = f"ruff format: file would be reformatted; run `ruff format {file}`"
            elif rule == "invalid-syntax":
                message = f"ruff: syntax error: {diag.get('message')}"
            else:
                message = f"ruff {rule}: {diag.get('message')}"
            findings.append(Finding(CHECK, "", file, line, ERROR, message))
        return findings

    def _group_error(self, run: _Run, message: str) -> Finding:
        # no file to pin it on: give it to the first path's owner (the MONOREPO case when the
        # tool is in the group) so it is reported once and fails the run
        return Finding(CHECK, "", run.paths[0], None, ERROR, message)

    def _rel(self, filename: str) -> str:
        path = Path(filename)
        for base in (self.root, self.root.resolve()):
            try:
                return path.relative_to(base).as_posix()
            except ValueError:
                continue
        return path.as_posix()


def _ruff_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["NO_COLOR"] = "1"
    env.pop("RUFF_OUTPUT_FORMAT", None)
    return env


def _first_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("error:", "ruff failed")):
            return " ".join(lines[lines.index(ln) : lines.index(ln) + 3])[:300]
    return (lines[0] if lines else "")[:300]
