"""Rewriting a whole existing directory so that even a kill leaves it all-old or all-new.

``update-projects`` rewrites a project this way: the changes are applied to a clone of the
project made in a scratch folder under ``.git/``, which is then exchanged with the project in
one rename. What a killed rewrite leaves in the scratch folder, :func:`clean_scratch` removes
(or, after the two-step fallback swap, puts back) on the next run.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from monostack.errors import UserError
from monostack.safeio import check_inside
from monostack.tempfiles import pid_alive
from monostack.treeio import file_mode
from monostack.writesteps import held_sigint, interrupt, step

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
    with held_sigint():  # Ctrl-C: rolled back while staging, held once swapping
        _rewrite(Path(target), changes, scratch, on_file)


def _rewrite(
    target: Path,
    changes: Mapping[str, bytes | None],
    scratch: Path,
    on_file: Callable[[str], None] | None,
) -> None:
    for rel in changes:
        check_inside(target, rel)
        _no_symlink_between(target, rel)
    scratch.mkdir(parents=True, exist_ok=True)
    clean_scratch(scratch)
    work = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=scratch))
    try:
        (work / _TARGET_NOTE).write_text(str(target.resolve()), encoding="utf-8")
        clone = work / "new"
        step()
        _clone_tree(target, clone)
        new_mode = file_mode()
        for rel, data in sorted(changes.items()):
            path = clone / rel
            mode = path.lstat().st_mode & 0o777 if os.path.lexists(path) else new_mode
            if os.path.lexists(path):
                path.unlink()  # never write through a hard link shared with the original
            if data is None:
                parent = path.parent
                while parent != clone and not any(parent.iterdir()):
                    parent.rmdir()
                    parent = parent.parent
                continue
            step(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.chmod(path, mode)
            if on_file is not None:
                on_file(rel)
        step()
        interrupt.abortable = False
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
        if pid.isdigit() and pid_alive(int(pid)):
            continue
        old, note = work / _OLD, work / _TARGET_NOTE
        if old.is_dir() and note.is_file():
            target = Path(note.read_text(encoding="utf-8"))
            if not os.path.lexists(target):
                os.rename(old, target)
        shutil.rmtree(work, ignore_errors=True)
