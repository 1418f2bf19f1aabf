"""``--online``: the real ``databricks bundle validate -t T`` per project and target, when the
CLI and credentials are there."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from monostack.bundle import LoadedBundle
from monostack.checks import ERROR, INFO, WARNING, Finding
from monostack.checks.bundle.common import CHECK, REQUIRED_TARGETS

if TYPE_CHECKING:  # pragma: no cover
    from monostack.projects import Project

ONLINE_TIMEOUT = 300
SKIPPED_ONLINE = "skipped: no databricks CLI or credentials"


def _has_credentials(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("DATABRICKS_HOST") and (
        env.get("DATABRICKS_TOKEN")
        or (env.get("DATABRICKS_CLIENT_ID") and env.get("DATABRICKS_CLIENT_SECRET"))
        or (env.get("ARM_CLIENT_ID") and env.get("ARM_CLIENT_SECRET") and env.get("ARM_TENANT_ID"))
    ):
        return True
    cfg = env.get("DATABRICKS_CONFIG_FILE") or str(Path.home() / ".databrickscfg")
    return Path(cfg).is_file()


def online_skip_reason() -> str | None:
    """Why ``--online`` cannot run here, or None when it can."""
    if shutil.which("databricks") is None:
        return "the databricks CLI is not on PATH"
    if not _has_credentials():
        return (
            "no credentials: set DATABRICKS_HOST and DATABRICKS_TOKEN, or create ~/.databrickscfg"
        )
    return None


def online_findings(project: Project, bundle: LoadedBundle) -> list[Finding]:
    """Run ``databricks bundle validate -t T`` in the project for staging, prod and test."""
    exe = shutil.which("databricks")
    if exe is None:  # pragma: no cover - online_skip_reason() is checked first
        return [Finding(CHECK, project.name, "", None, INFO, SKIPPED_ONLINE)]
    out = []
    for target in REQUIRED_TARGETS:
        if target not in bundle.targets:
            continue  # the offline check already reports the missing target
        command = f"databricks bundle validate -t {target} in {project.rel}"

        def finding(severity: str, text: str, command: str = command) -> Finding:
            return Finding(CHECK, project.name, bundle.root_file, None, severity, command + text)

        try:
            proc = subprocess.run(
                [exe, "bundle", "validate", "-t", target],
                cwd=project.path,
                capture_output=True,
                text=True,
                timeout=ONLINE_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            out.append(finding(ERROR, f": could not run: {exc}"))
            continue
        lines = [line.strip() for line in (proc.stdout + "\n" + proc.stderr).splitlines()]
        errors = [line for line in lines if line.startswith("Error:")]
        out += [finding(WARNING, f": {line}") for line in lines if line.startswith("Warning:")]
        if proc.returncode != 0:
            detail = (
                "; ".join(errors)
                or " | ".join([line for line in lines if line][-5:])
                or f"exit status {proc.returncode}"
            )
            out.append(finding(ERROR, f" failed: {detail}"))
        elif errors:
            out += [finding(ERROR, f": {line}") for line in errors]
        else:
            out.append(finding(INFO, ": OK"))
    return out
