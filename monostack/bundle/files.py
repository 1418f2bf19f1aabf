"""A project's files as a ``{relative path: bytes}`` mapping, and globs over it as Go does."""

from __future__ import annotations

import fnmatch
import os
import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path


def normalize_path(path: str) -> str | None:
    """Normalise a project-relative POSIX path; None when it leaves the project."""
    joined = posixpath.normpath(path.replace("\\", "/"))
    if joined in (".", ""):
        return ""
    if joined.startswith("../") or joined == ".." or joined.startswith("/"):
        return None
    return joined


def glob_tree(paths: list[str], pattern: str) -> list[str]:
    """Paths matching a glob the way Go's ``filepath.Glob`` does: ``*`` stays inside one
    directory level."""
    parts = pattern.split("/")
    found = []
    for path in paths:
        segments = path.split("/")
        if len(segments) == len(parts) and all(
            fnmatch.fnmatchcase(seg, pat) for seg, pat in zip(segments, parts, strict=True)
        ):
            found.append(path)
    return sorted(found)


def has_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


class DiskTree(Mapping):
    """A project directory as a read-on-demand ``{relative path: bytes}`` mapping."""

    _SKIP_DIRS = frozenset({".git", ".databricks", ".venv", "__pycache__", "node_modules"})

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._files: list[str] | None = None
        self._set: frozenset[str] = frozenset()

    def _list(self) -> list[str]:
        if self._files is None:
            files = []
            for dirpath, dirnames, filenames in os.walk(self.path):
                dirnames[:] = sorted(d for d in dirnames if d not in self._SKIP_DIRS)
                rel = Path(dirpath).relative_to(self.path).as_posix()
                for name in sorted(filenames):
                    files.append(name if rel == "." else f"{rel}/{name}")
            self._files = files
            self._set = frozenset(files)
        return self._files

    def __getitem__(self, key: str) -> bytes:
        try:
            return (self.path / key).read_bytes()
        except OSError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        self._list()
        return isinstance(key, str) and key in self._set

    def __iter__(self) -> Iterator[str]:
        return iter(self._list())

    def __len__(self) -> int:
        return len(self._list())
