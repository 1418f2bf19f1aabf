"""Three-way merge of one project's files: the base render, the current render, the project.

For each path either render holds, :func:`merge_file` decides what the project should hold, the
way git merges a branch: a side that did not change yields to the one that did; both sides
changing the same lines is a conflict, written into the file with git-style markers (by
``git merge-file`` itself, never by hand); binary files are replaced only when unchanged locally.
Pure apart from the temporary files ``git merge-file`` reads.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from monostack.errors import UserError

CREATE, UPDATE, MERGE, DELETE = "create", "update", "merge", "delete"
CONFLICT, KEPT = "conflict", "kept"
WRITES = (CREATE, UPDATE, MERGE, DELETE, CONFLICT)  # actions that change the project
_BINARY_SNIFF = 8000  # git's own heuristic: a NUL byte in the first 8000 bytes


@dataclass(frozen=True)
class FileMerge:
    """What happens to one file. ``data`` is the new content (None: delete, or nothing to
    write for KEPT / a conflict that leaves the local file as it is)."""

    path: str
    action: str
    data: bytes | None = None
    note: str = ""

    @property
    def writes(self) -> bool:
        return self.action in (CREATE, UPDATE, MERGE, DELETE) or (
            self.action == CONFLICT and self.data is not None
        )

    def describe(self) -> str:
        return f"{self.action:<8} {self.path}" + (f"  ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Labels:
    """Conflict-marker labels: the project, the template version it had, the one it gets."""

    local: str
    base: str
    new: str


def is_binary(data: bytes | None) -> bool:
    return data is not None and b"\0" in data[:_BINARY_SNIFF]


def merge_file(
    path: str, base: bytes | None, new: bytes | None, local: bytes | None, labels: Labels
) -> FileMerge | None:
    """The outcome for ``path`` (None: nothing to do). ``None`` contents mean "no such file":
    base/new absent from the renders, local absent from the project."""
    if base == new or local == new:
        return None  # the template did not change it, or the project already has the change
    if local == base:  # the project never touched it: take the template's side as it is
        if new is None:
            return FileMerge(path, DELETE)
        return FileMerge(path, CREATE if local is None else UPDATE, new)
    # both sides changed it, differently
    if new is None:
        return FileMerge(path, KEPT, note="removed from the template, kept: changed locally")
    if local is None:
        note = "deleted locally, changed by the template; left deleted"
        return FileMerge(path, CONFLICT, note=note)
    if is_binary(base) or is_binary(new) or is_binary(local):
        note = "binary, changed both locally and by the template; local file kept"
        return FileMerge(path, CONFLICT, note=note)
    merged, conflicts = git_merge_file(local, base or b"", new, labels)
    if conflicts:
        what = "added by the template, differs" if base is None else "changed on both sides"
        return FileMerge(path, CONFLICT, merged, f"{what}: {conflicts} conflict(s) marked")
    return FileMerge(path, MERGE, merged, "local and template changes merged")


def git_merge_file(local: bytes, base: bytes, new: bytes, labels: Labels) -> tuple[bytes, int]:
    """``git merge-file --diff3``: the merged bytes and how many conflicts it marked."""
    with tempfile.TemporaryDirectory(prefix="monostack-merge-") as tmp:
        paths = []
        for name, data in (("local", local), ("base", base), ("new", new)):
            file = Path(tmp) / name
            file.write_bytes(data)
            paths.append(str(file))
        args = ["-L", labels.local, "-L", labels.base, "-L", labels.new]
        try:
            proc = subprocess.run(
                ["git", "merge-file", "-p", "--diff3", *args, *paths],
                capture_output=True,
                check=False,
            )
        except OSError as exc:
            raise UserError(f"git could not be run ({exc.strerror}); install git") from None
    if proc.returncode < 0 or proc.returncode > 127:
        why = proc.stderr.decode("utf-8", "replace").strip()
        raise UserError(f"git merge-file failed: {why or proc.returncode}")
    return proc.stdout, proc.returncode


def merge_trees(
    base: dict[str, bytes],
    new: dict[str, bytes],
    local: dict[str, bytes | None],
    labels: Labels,
) -> list[FileMerge]:
    """Merge every path of ``base`` or ``new``; ``local`` holds the project's content of those
    paths (None when absent). Sorted by path."""
    outcomes = []
    for path in sorted(set(base) | set(new)):
        outcome = merge_file(path, base.get(path), new.get(path), local.get(path), labels)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes
