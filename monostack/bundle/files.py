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


def glob_in(tree: Mapping[str, bytes], pattern: str) -> list[str]:
    """:func:`glob_tree` over a tree, walking only the pattern's directory when it can."""
    globber = getattr(tree, "glob", None)
    return globber(pattern) if globber is not None else glob_tree(sorted(tree), pattern)


class DiskTree(Mapping):
    """A directory as a read-on-demand ``{relative path: bytes}`` mapping.

    A missing file is a KeyError; a file that exists but cannot be read raises its OSError
    (so callers report it rather than skip it), as does a symlink that leads out of
    ``boundary`` (default: the directory itself; the repository root for a project).
    """

    _SKIP_DIRS = frozenset({".git", ".databricks", ".venv", "__pycache__", "node_modules"})

    def __init__(self, path: Path, boundary: Path | None = None) -> None:
        self.path = Path(path)
        self.boundary = Path(boundary if boundary is not None else path)
        self._files: list[str] | None = None
        self._set: frozenset[str] = frozenset()

    def _walk(self, top: Path) -> list[str]:
        files = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d not in self._SKIP_DIRS)
            rel = Path(dirpath).relative_to(self.path).as_posix()
            for name in sorted(filenames):
                files.append(name if rel == "." else f"{rel}/{name}")
        return files

    def _list(self) -> list[str]:
        if self._files is None:
            self._files = self._walk(self.path)
            self._set = frozenset(self._files)
        return self._files

    def glob(self, pattern: str) -> list[str]:
        """Files matching ``pattern``, listing only the directory before its first glob."""
        if self._files is not None:
            return glob_tree(self._files, pattern)
        parts = pattern.split("/")
        static = []
        for part in parts[:-1]:
            if has_glob(part):
                break
            static.append(part)
        top = self.path.joinpath(*static)
        return glob_tree(self._walk(top), pattern) if top.is_dir() else []

    def _inside(self, key: str) -> Path:
        path = self.path / key
        real = path.resolve()
        if not real.is_relative_to(self.boundary.resolve()):
            raise OSError(f"a symlink leads out of {self.boundary} (to {real})")
        return path

    def __getitem__(self, key: str) -> bytes:
        try:
            return self._inside(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if self._files is not None:
            return key in self._set
        return (self.path / key).is_file()

    def __iter__(self) -> Iterator[str]:
        return iter(self._list())

    def __len__(self) -> int:
        return len(self._list())
