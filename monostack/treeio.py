"""Writing rendered trees to disk without ever leaving a half-written result behind.

Two shapes of write:

* :func:`write_new_directory` creates a directory that must not exist yet: the whole tree is
  written into a hidden temporary sibling, then renamed into place in one step.
* :func:`apply_changes` creates, replaces and deletes individual files inside an existing tree
  (``sync-workflows``): new contents are staged next to their targets first, old files are kept
  as backups until every rename has succeeded, and any failure restores the backups.
"""

from __future__ import annotations

import errno
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


# ------------------------------------------------------------ whole-directory rewrites
SCRATCH_PREFIX = "rewrite-"
_TARGET_NOTE = "target"  # in a scratch directory: the directory being rewritten
_OLD = "old"  # in a scratch directory: the old tree, while the fallback swap runs


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE); False if the
    platform or file system cannot."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _clone_tree(src: Path, dest: Path) -> None:
    """Copy ``src`` to the new directory ``dest``: files hard-linked where possible (cheap;
    they are never written through, only replaced), symlinks copied as links, modes kept."""
    dest.mkdir()
    os.chmod(dest, src.stat().st_mode & 0o7777)
    with os.scandir(src) as entries:
        for entry in entries:
            target = dest / entry.name
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir():
                _clone_tree(Path(entry.path), target)
            else:
                try:
                    os.link(entry.path, target)
                except OSError:
                    shutil.copy2(entry.path, target)


def _no_symlink_between(base: Path, rel: str) -> None:
    path = base
    for part in Path(rel).parts[:-1]:
        path = path / part
        if path.is_symlink():
            raise UserError(
                f"refusing to write {rel!r}: {part!r} on its way is a symlink; replace the "
                "symlink with a real directory"
            )


def rewrite_directory(
    target: Path,
    changes: Mapping[str, bytes | None],
    scratch: Path,
    on_file: Callable[[str], None] | None = None,
) -> None:
    """Create/replace (bytes) or delete (None) files under the existing directory ``target``
    so that even a kill leaves it fully rewritten or untouched.

    The changes are applied to a clone of ``target`` made in ``scratch`` (a directory on the
    same file system, outside the work tree, e.g. under ``.git/``), which is then exchanged with
    ``target`` in one rename. A kill before that leaves only a directory in ``scratch``, which
    :func:`clean_scratch` removes (or, after the two-step fallback swap, puts back).
    """
    target = Path(target)
    for rel in changes:
        _check_inside(target, rel)
        _no_symlink_between(target, rel)
    scratch.mkdir(parents=True, exist_ok=True)
    clean_scratch(scratch)
    work = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=scratch))
    try:
        (work / _TARGET_NOTE).write_text(str(target.resolve()), encoding="utf-8")
        clone = work / "new"
        _clone_tree(target, clone)
        file_mode = 0o666 & ~_umask()
        for rel, data in sorted(changes.items()):
            path = clone / rel
            mode = path.lstat().st_mode & 0o777 if os.path.lexists(path) else file_mode
            if os.path.lexists(path):
                path.unlink()  # never write through a hard link shared with the original
            if data is None:
                parent = path.parent
                while parent != clone and not any(parent.iterdir()):
                    parent.rmdir()
                    parent = parent.parent
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.chmod(path, mode)
            if on_file is not None:
                on_file(rel)
        if not _exchange(clone, target):
            os.rename(target, work / _OLD)  # a kill here: clean_scratch moves it back
            os.rename(clone, target)
    except BaseException:
        if (work / _OLD).exists() and not os.path.lexists(target):
            os.rename(work / _OLD, target)
        shutil.rmtree(work, ignore_errors=True)
        raise
    shutil.rmtree(work, ignore_errors=True)


def clean_scratch(scratch: Path) -> None:
    """Remove what killed rewrites left in ``scratch``; put back a directory a kill caught
    between the two renames of the fallback swap."""
    if not scratch.is_dir():
        return
    for work in scratch.glob(f"{SCRATCH_PREFIX}*"):
        pid = work.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        old, note = work / _OLD, work / _TARGET_NOTE
        if old.is_dir() and note.is_file():
            target = Path(note.read_text(encoding="utf-8"))
            if not os.path.lexists(target):
                os.rename(old, target)
        shutil.rmtree(work, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
