"""Writing rendered trees to disk without ever leaving a half-written result behind.

Two shapes of write:

* :func:`write_new_directory` creates a directory that must not exist yet: the whole tree is
  written into a hidden temporary sibling, then renamed into place in one step.
* :func:`apply_changes` creates, replaces and deletes individual files inside an existing tree
  (``sync-workflows``): new contents are staged next to their targets first, old files are kept
  as backups until every rename has succeeded, and any failure restores the backups.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from monostack.errors import UserError

Tree = dict[str, bytes]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _make_parents(path: Path) -> list[Path]:
    """Create the missing ancestors of ``path``; return them, outermost first."""
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    missing.reverse()
    for directory in missing:
        directory.mkdir()
    return missing


def _check_inside(root: Path, rel: str) -> None:
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts or not parts:
        raise UserError(f"refusing to write {rel!r}: it is not a path inside {root}")


def _write_tree(
    base: Path, tree: Mapping[str, bytes], on_file: Callable[[str], None] | None
) -> None:
    for rel, data in sorted(tree.items()):
        target = base / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if on_file is not None:
            on_file(rel)


def write_new_directory(
    target: Path, tree: Mapping[str, bytes], on_file: Callable[[str], None] | None = None
) -> None:
    """Write ``tree`` as the new directory ``target``, atomically.

    ``on_file`` is called after each file is staged (tests use it to inject a failure). Parent
    directories created for ``target`` are removed again if the write fails.
    """
    target = Path(target)
    if os.path.lexists(target):
        raise UserError(f"{target}: already exists; choose another name or remove it first")
    for rel in tree:
        _check_inside(target, rel)
    created = _make_parents(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; a project is not
        _write_tree(staging, tree, on_file)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in created:
            shutil.rmtree(directory, ignore_errors=True)
        raise


def apply_changes(
    root: Path,
    changes: Mapping[str, bytes | None],
    on_file: Callable[[str], None] | None = None,
) -> None:
    """Create/replace (bytes) or delete (None) files under ``root``, all or nothing."""
    root = Path(root)
    staged: dict[str, Path] = {}
    backups: dict[str, Path] = {}
    done: list[str] = []
    made_dirs: list[Path] = []
    for rel in changes:
        _check_inside(root, rel)
    file_mode = 0o666 & ~_umask()
    try:
        for rel, data in sorted(changes.items()):
            target = root / rel
            if data is None:
                continue
            made_dirs += _make_parents(target)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            if target.exists():
                os.chmod(tmp, target.stat().st_mode & 0o777)
            else:
                os.chmod(tmp, file_mode)
            staged[rel] = Path(tmp)
            if on_file is not None:
                on_file(rel)
        for rel in sorted(changes):
            target = root / rel
            if target.exists():
                fd, bak = tempfile.mkstemp(prefix=f".{target.name}.bak-", dir=target.parent)
                os.close(fd)
                try:
                    os.replace(target, bak)
                except BaseException:
                    os.unlink(bak)  # the empty placeholder; the target was not moved
                    raise
                backups[rel] = Path(bak)
            if rel in staged:
                os.replace(staged[rel], target)
                del staged[rel]
            done.append(rel)
    except BaseException:
        for rel in reversed(done):
            target = root / rel
            if changes[rel] is not None:
                target.unlink(missing_ok=True)
        for rel, bak in backups.items():
            os.replace(bak, root / rel)
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        for directory in reversed(made_dirs):
            shutil.rmtree(directory, ignore_errors=True)
        raise
    for bak in backups.values():
        bak.unlink(missing_ok=True)
    # Directories emptied by deletions are removed, so a removed project leaves nothing behind.
    for rel, data in changes.items():
        if data is None:
            parent = (root / rel).parent
            while parent != root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
