"""The repository lock: one writing monostack command at a time, as git does with index.lock.

``.git/monostack/monostack.lock`` (``monostack.lock`` in a root outside git) is held with
``flock`` while a command writes, and records its owner's pid. The kernel releases the lock
when the owner exits, killed or not, so a lock file left behind by a killed run is stale by
construction: the next command takes it over (and first finishes the killed run's
transaction, see :func:`monostack.journal.recover`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from monostack.errors import UserError, os_error_message

LOCK_FILE = "monostack.lock"


def state_dir(root: Path) -> Path:
    """Where the lock and the write journal live: ``.git/monostack/`` in a git work tree (as git
    keeps ``index.lock`` in ``.git/``: invisible to ``git status``, never committed), else the
    root itself."""
    root = Path(root)
    dot_git = root / ".git"
    git_dir = None
    if dot_git.is_dir() and not dot_git.is_symlink():
        git_dir = dot_git
    elif dot_git.is_file():  # a linked worktree: "gitdir: <path>"
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            git_dir = (root / text.removeprefix("gitdir:").strip()).resolve()
    if git_dir is None or not git_dir.is_dir():
        return root
    state = git_dir / "monostack"
    try:
        state.mkdir(exist_ok=True)
    except OSError:
        return root
    return state


def lock_path(root: Path) -> Path:
    return state_dir(root) / LOCK_FILE


_held: dict[Path, int] = {}  # repository root -> nesting depth, for this process


def _owner(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        return ""
    return f" (pid {text[1]})" if len(text) >= 2 and text[0] == "pid" else ""


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{path}: is a symbolic link; delete it") from None
        raise UserError(
            os_error_message(exc, str(path), "create")
            + "; monostack needs to write in the repository root"
        ) from None


def _acquire(root: Path) -> int:
    path = lock_path(root)
    for _ in range(10):
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(fd)
            os.close(fd)
            raise UserError(
                f"{path}: another monostack command{owner} is changing this repository; "
                "wait for it to finish, then run yours again (a killed command's lock is "
                "cleared by the next run automatically)"
            ) from None
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not unlinked by the previous owner between our open and our flock
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)
    raise UserError(f"{path}: could not take the repository lock; run the command again")


@contextmanager
def repo_lock(root: Path) -> Iterator[None]:
    """Hold the repository lock (re-entrant within a process); on taking it, recover what a
    killed run left behind."""
    from monostack.journal import recover

    key = Path(root).resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    fd = _acquire(Path(root))
    _held[key] = 1
    try:
        note = recover(Path(root))
        if note:
            sys.stderr.write(f"note: {note}\n")
        yield
    finally:
        del _held[key]
        with suppress(OSError):
            os.unlink(lock_path(Path(root)))  # still ours: we hold the flock
        os.close(fd)


def lock_is_stale(root: Path) -> bool:
    """True when ``.monostack.lock`` exists but no live process holds it (a killed run's)."""
    path = lock_path(Path(root))
    if Path(root).resolve() in _held or not os.path.lexists(path):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
        if len(text) >= 2 and text[0] == "pid" and text[1].isdigit():
            try:
                os.kill(int(text[1]), 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
            return False
        try:  # being written right now, or empty after a kill: ask the kernel
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    finally:
        os.close(fd)
