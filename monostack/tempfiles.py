"""Temporary files outside the journaled writes: named by their writer, swept by the next run.

The result cache (``.monostack-cache/``) and the compiled templates (``.git/monostack/jinja-*``)
are written through a temporary file in the same folder and one rename, so a reader never sees
half an entry. A SIGKILL between the two leaves the temporary behind; its name carries the
writer's pid (``.<name>.<pid>.<random>.monostack-part``), so the next run removes every one
whose writer is gone, and never one a live concurrent run is still writing.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

PART_SUFFIX = ".monostack-part"
_PART_NAME = re.compile(r"^\..*\.(\d+)\.[^.]+" + re.escape(PART_SUFFIX) + "$")


def pid_alive(pid: int) -> bool:
    """True if a process ``pid`` exists (this one included)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_part(name: str) -> bool:
    """Whether ``name`` is a temporary file of this module."""
    return _PART_NAME.match(name) is not None


def is_orphan(name: str) -> bool:
    """A temporary whose writer no longer runs (killed): safe to delete."""
    found = _PART_NAME.match(name)
    return found is not None and not pid_alive(int(found.group(1)))


def replace_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through ``write(file)`` into a temporary sibling, then one rename. On any
    failure (but a kill) the temporary is removed; after a kill :func:`sweep` removes it."""
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=PART_SUFFIX
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def orphans(folder: Path, recursive: bool = False) -> Iterator[Path]:
    """Temporaries in ``folder`` (and below, if ``recursive``) left by runs that are gone.
    Symbolic links are never followed."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if recursive:
                yield from orphans(Path(entry.path), True)
        elif is_orphan(entry.name):
            yield Path(entry.path)


def sweep(folder: Path, recursive: bool = False) -> int:
    """Remove :func:`orphans`; returns how many were removed (a failure only leaves one)."""
    removed = 0
    for path in orphans(folder, recursive):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


def sweep_stale(paths: Iterable[Path], seconds: float = 3600) -> None:
    """Remove temporaries of older writers whose names carry no pid (older monostack versions,
    Jinja2's own writer): only once they are ``seconds`` old, when no run can still own them."""
    cutoff = time.time() - seconds
    for path in paths:
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime < cutoff:
                path.unlink()


def jinja_bytecode_cache(folder: Path) -> Any:
    """Jinja2's file-system bytecode cache whose entries are written by
    :func:`replace_atomically` (a killed run's temporary is swept here, by the next run), and
    whose write failures (a full disk) only cost compiling again."""
    import jinja2

    class AtomicBytecodeCache(jinja2.FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: Any) -> None:
            with contextlib.suppress(OSError):
                target = Path(self._get_cache_filename(bucket))
                replace_atomically(target, bucket.write_bytecode)

    sweep(folder)
    sweep_stale(folder.glob("__jinja2_*.tmp"))
    return AtomicBytecodeCache(str(folder))
