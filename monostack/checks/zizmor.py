"""``zizmor --offline`` over GitHub workflows: one run for many files, identical ones once.

zizmor is a separate program: it gets the files in a temporary directory, once per call for all
of them; its JSON results come back keyed by (path, content digest), so callers that render the
same workflow many times (render-matrix) pay for it once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from monostack.checks import ERROR, INFO, WARNING, Finding
from monostack.checks.text import clip

ZIZMOR_FILES = ("zizmor.yml", ".github/zizmor.yml")
_ZIZMOR_SEVERITY = {"High": ERROR, "Medium": WARNING, "Low": WARNING}


@dataclass(frozen=True)
class ZizmorHit:
    line: int | None
    severity: str
    message: str


def content_key(path: str, data: bytes) -> tuple[str, str]:
    """Identity of a file for zizmor: same path and bytes, same findings."""
    return path, hashlib.sha256(data).hexdigest()


def zizmor_executable() -> str | None:
    beside = Path(sys.executable).parent / "zizmor"
    if beside.is_file():
        return str(beside)
    return shutil.which("zizmor")


def zizmor_config(root: Path | None) -> Path | None:
    if root is None:
        return None
    for name in ZIZMOR_FILES:
        if (Path(root) / name).is_file():
            return Path(root) / name
    return None


def zizmor_scan(
    files: Iterable[tuple[str, bytes]], root: Path | None = None
) -> dict[tuple[str, str], list[ZizmorHit]]:
    """Run ``zizmor --offline`` once over many workflows; hits keyed by :func:`content_key`.

    Identical (path, contents) pairs are audited once. The repo's ``zizmor.yml`` applies
    when ``root`` has one; otherwise zizmor's defaults (``--no-config``).
    """
    unique: dict[tuple[str, str], bytes] = {}
    for path, data in files:
        unique.setdefault(content_key(path, data), data)
    hits: dict[tuple[str, str], list[ZizmorHit]] = {key: [] for key in unique}
    if not unique:
        return hits
    exe = zizmor_executable()
    if exe is None:
        failure = ZizmorHit(None, ERROR, "zizmor not found; install monostack's dependencies")
        return {key: [failure] for key in unique}
    config = zizmor_config(root)
    with tempfile.TemporaryDirectory(prefix="monostack-zizmor-") as tmp:
        by_input: dict[str, tuple[str, str]] = {}
        for i, (key, data) in enumerate(sorted(unique.items())):
            # one flat folder (zizmor tells a workflow from an action by its content and
            # name, not its folder): deleting many folders is slow on some disks (ext4 with
            # discard: about 3 ms each). Fixed width: no name is a prefix of another.
            rel = f"f{i:05d}-{Path(key[0]).name}"
            (Path(tmp) / rel).write_bytes(data)
            by_input[rel] = key
        cmd = [exe, "--offline", "--format", "json", "--no-progress", "--color", "never"]
        cmd += ["--no-exit-codes"]
        cmd += ["--config", str(config)] if config else ["--no-config"]
        proc = subprocess.run(
            [*cmd, *by_input], cwd=tmp, capture_output=True, text=True, timeout=600
        )
    try:
        results = json.loads(proc.stdout) if proc.returncode == 0 else None
    except json.JSONDecodeError:
        results = None
    if results is None:
        why = clip(_zizmor_error(proc.stderr).replace(tmp, "").replace(str(root) + "/", ""))
        failure = ZizmorHit(None, ERROR, f"zizmor failed (exit {proc.returncode}): {why}")
        return {key: [failure] for key in unique}
    for result in results:
        if result.get("ignored"):
            continue
        severity_name = result.get("determinations", {}).get("severity", "Unknown")
        severity = _ZIZMOR_SEVERITY.get(severity_name, INFO)
        primary = _primary_location(result.get("locations", []))
        if primary is None:
            continue
        verbatim = primary["symbolic"]["key"].get("Local", {}).get("verbatim_path", "")
        key = by_input.get(verbatim.removeprefix("./"))
        if key is None:
            continue
        row = (primary.get("concrete") or {}).get("location", {}).get("start_point", {}).get("row")
        note = primary["symbolic"].get("annotation") or ""
        message = clip(
            f"zizmor {result.get('ident')} ({severity_name}): {result.get('desc')}"
            + (f": {note}" if note else "")
        )
        hits[key].append(ZizmorHit(row + 1 if row is not None else None, severity, message))
    for line in proc.stderr.splitlines():
        # zizmor skips (with a warning) inputs it cannot load; say so rather than pass silently
        if "WARN" not in line:
            continue
        for rel, key in by_input.items():
            if rel in line:
                why = line.split("WARN", 1)[1].replace(rel, key[0])
                hits[key].append(ZizmorHit(None, WARNING, clip(f"zizmor skipped it: {why}")))
    return hits


def _zizmor_error(stderr: str) -> str:
    """zizmor's ``error:`` line and its innermost cause (``Caused by: ... 2: <the detail>``),
    e.g. "configuration error in zizmor.yml: invalid type: integer `5`, expected a map"."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    error = next((ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")), "")
    causes = []
    if "Caused by:" in lines:
        for line in lines[lines.index("Caused by:") + 1 :]:
            number, sep, text = line.partition(": ")
            if not (sep and number.isdigit()):
                break
            causes.append(text)
    detail = causes[-1] if causes and causes[-1] != error else ""
    message = f"{error}: {detail}" if error and detail else error or detail
    return message or (lines[-1] if lines else "no output")


def _primary_location(locations: list[dict]) -> dict | None:
    for location in locations:
        if location.get("symbolic", {}).get("kind") == "Primary":
            return location
    return locations[0] if locations else None


def hits_to_findings(
    hits: Iterable[ZizmorHit], path: str, project: str, check: str
) -> list[Finding]:
    return [Finding(check, project, path, h.line, h.severity, h.message) for h in hits]
