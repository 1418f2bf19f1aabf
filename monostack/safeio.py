"""Reading files of a repository safely: never through a symbolic link, never a special file.

:func:`read_file` and :func:`list_files` refuse symbolic links anywhere below the repository
root and anything that is not a regular file or directory, so a link planted in a project or in
the template can never pull ``/etc/passwd`` into a root CI file or a rendered project, and a
FIFO cannot hang a run. Every OS error (unreadable file, ...) becomes one ``error:`` line.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from monostack.errors import UserError, os_error_message


def check_inside(root: Path, rel: str) -> None:
    """``rel`` must be a relative path that stays inside ``root`` (no ``..``, not absolute)."""
    parts = Path(rel).parts
    if not rel or Path(rel).is_absolute() or ".." in parts or not parts or "\0" in rel:
        raise UserError(f"refusing to use {rel!r}: it is not a path inside {root}")


def _link_error(root: Path, rel: str) -> UserError:
    try:
        target = os.readlink(Path(root) / rel)
    except OSError:
        target = "?"
    return UserError(
        f"{rel}: is a symbolic link (to {target}); monostack never follows links in the "
        "repository: replace it with a regular file or directory"
    )


def check_no_links(root: Path, rel: str, final: str | None = "file") -> Path:
    """``root/rel`` after checking that no existing component below ``root`` is a symlink.

    ``final`` says what the last component must be when it exists: "file" (regular file),
    "dir", or None (anything but a link). Missing components are fine (for writes).
    """
    root = Path(root)
    check_inside(root, rel)
    current = root
    parts = Path(rel).parts
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return root / rel
        except OSError as exc:
            raise UserError(os_error_message(exc, "/".join(parts[: i + 1]), "read")) from None
        sub = "/".join(parts[: i + 1])
        if stat.S_ISLNK(st.st_mode):
            raise _link_error(root, sub)
        last = i == len(parts) - 1
        if not last and not stat.S_ISDIR(st.st_mode):
            raise UserError(f"{sub}: is not a directory; move it out of the way")
        if last and final == "file" and not stat.S_ISREG(st.st_mode):
            raise UserError(f"{sub}: is not a regular file; replace it with one")
        if last and final == "dir" and not stat.S_ISDIR(st.st_mode):
            raise UserError(f"{sub}: is not a directory; move it out of the way")
    return root / rel


def read_file(root: Path, rel: str) -> bytes:
    """The bytes of regular file ``root/rel``; a UserError for a link, a non-regular file or an
    OS error (unreadable, ...), naming ``rel``."""
    path = check_no_links(root, rel, "file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _link_error(root, rel) from None
        raise UserError(os_error_message(exc, rel, "read")) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped in since the check
            raise UserError(f"{rel}: is not a regular file; replace it with one")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise UserError(os_error_message(exc, rel, "read")) from None
    finally:
        os.close(fd)


def read_path(path: Path, root: Path | None = None) -> bytes:
    """:func:`read_file` for a path given whole: checked from ``root`` when given, else from
    its own folder (the file itself must not be a link)."""
    path = Path(path)
    if root is not None:
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            raise UserError(f"{path}: is outside the repository {root}") from None
        return read_file(root, rel)
    return read_file(path.parent, path.name)


def list_files(root: Path, rel_dir: str, recursive: bool = True) -> list[str]:
    """Regular files under ``root/rel_dir`` (relative to ``root``, sorted); a missing folder
    has none. A symlink or special file anywhere in it is a UserError naming it."""
    base = check_no_links(root, rel_dir, "dir")
    if not base.is_dir():
        return []
    found: list[str] = []
    pending = [rel_dir]
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(Path(root) / current))
        except OSError as exc:
            raise UserError(os_error_message(exc, current, "read")) from None
        for entry in entries:
            rel = f"{current}/{entry.name}"
            if entry.is_symlink():
                raise _link_error(root, rel)
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    pending.append(rel)
            elif entry.is_file(follow_symlinks=False):
                found.append(rel)
            else:
                raise UserError(f"{rel}: is not a regular file; remove it")
    return sorted(found)
