"""The one way monostack writes files in a repository: never through a symlink, never leaving
a half-written result or a stray file behind, even when killed.

Reading is :mod:`monostack.safeio`'s job (no symlinks, no special files); writes check the
same way that no folder on the way is a link, so a symlinked ``.github`` is refused.

Writing: :func:`write_new_directory` (``new-project``) and :func:`apply_changes` (sync) run as
one transaction under the repository lock (:mod:`monostack.repolock`), recorded first in a
journal (:mod:`monostack.journal`) that lets the next run roll a killed transaction back (or,
once committed, forward) and remove its files, so after a SIGKILL at any step the tree is
all-old or all-new. SIGINT is held back while files are renamed, so Ctrl-C never leaves a
half-applied tree. Whole existing directories are rewritten by :mod:`monostack.dirswap`.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path

from monostack.errors import UserError, os_error_message
from monostack.journal import (
    BAK_SUFFIX,
    TMP_SUFFIX,
    drop_journal,
    remove_journal,
    roll_back,
    roll_forward,
    write_journal,
)
from monostack.safeio import check_inside, check_no_links
from monostack.writesteps import held_sigint, interrupt, step

Tree = dict[str, bytes]
committed = 0  # transactions committed by this process (truthful interrupt messages)


def _missing_dirs(root: Path, rels: list[str]) -> list[str]:
    """Directories (relative) that must be created for ``rels``, outermost first."""
    missing: list[str] = []
    for rel in rels:
        parent = Path(rel).parent
        chain = []
        while str(parent) not in (".", "") and not (root / parent).exists():
            chain.append(parent.as_posix())
            parent = parent.parent
        for d in reversed(chain):
            if d not in missing:
                missing.append(d)
    return sorted(missing, key=lambda d: d.count("/"))


def _side_name(rel: str, suffix: str) -> str:
    path = Path(rel)
    return (path.parent / f".{path.name}{suffix}").as_posix()


def _write_bytes(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
    except OSError as exc:  # os.write names no file: say which one (e.g. the disk is full)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets here (0o666 less the process's umask)."""
    return 0o666 & ~_umask()


def _target_name(name: object, root: Path) -> str:
    """The file an OS error is about, as the user knows it: relative to the root, and the
    target rather than its temporary or backup twin."""
    if not isinstance(name, str | Path):
        return str(root)
    parts = []
    for part in Path(name).parts:
        for suffix in (TMP_SUFFIX, BAK_SUFFIX):
            if part.endswith(suffix) and part.startswith(".") and len(part) > len(suffix) + 1:
                part = part[1 : -len(suffix)]
        parts.append(part)
    path = Path(*parts)
    with suppress(ValueError):
        return path.relative_to(root).as_posix()
    return str(path)


def _as_user_error(exc: OSError, root: Path, tail: str = "; nothing was changed") -> UserError:
    return UserError(os_error_message(exc, _target_name(exc.filename, root), "write") + tail)


def write_new_directory(
    target: Path,
    tree: Mapping[str, bytes],
    on_file: Callable[[str], None] | None = None,
    root: Path | None = None,
) -> None:
    """Write ``tree`` as the new directory ``target`` (inside repository ``root``, default: its
    parent), atomically: staged in ``.<name>.monostack-tmp`` beside it, then renamed.

    ``on_file`` is called after each file is staged (tests use it to inject a failure).
    """
    from monostack.repolock import repo_lock

    target = Path(target)
    if root is None:  # the enclosing git work tree (else the nearest existing folder)
        root = next((d for d in target.parents if (d / ".git").exists()), None)
    if root is None:
        root = target.parent
        while not root.exists():
            root = root.parent
    root = Path(root)
    rel = target.relative_to(root).as_posix()
    check_no_links(root, rel, None)
    if os.path.lexists(target):
        raise UserError(f"{rel}: already exists; choose another name or remove it first")
    for name in tree:
        check_inside(target, name)
    staging = _side_name(rel, TMP_SUFFIX)
    mode = file_mode()
    with repo_lock(root), held_sigint():
        record = {
            "kind": "new_directory",
            "phase": "stage",
            "staging": staging,
            "target": rel,
            "dirs": _missing_dirs(root, [rel]),
        }
        renamed = False
        try:
            write_journal(root, record)
            for d in record["dirs"]:
                step(root / d)
                os.mkdir(root / d)
            step(root / staging)
            os.mkdir(root / staging, 0o777 & ~_umask())
            made = {""}
            for name, data in sorted(tree.items()):
                parent = Path(name).parent.as_posix()
                if parent not in made:
                    (root / staging / parent).mkdir(parents=True, exist_ok=True)
                    made.add(parent)
                step(root / staging / name)
                _write_bytes(root / staging / name, data, mode)
                if on_file is not None:
                    on_file(name)
            step(target)
            interrupt.abortable = False
            os.rename(root / staging, target)
            renamed = True
            remove_journal(root)
        except BaseException as exc:
            interrupt.abortable = False
            if not renamed:
                roll_back(root, record)
            drop_journal(root)
            if isinstance(exc, OSError):
                raise _as_user_error(exc, root) from None
            raise
    _count_commit()


def _count_commit() -> None:
    global committed
    committed += 1


def apply_changes(
    root: Path,
    changes: Mapping[str, bytes | None],
    on_file: Callable[[str], None] | None = None,
) -> None:
    """Create/replace (bytes) or delete (None) files under ``root``, all or nothing.

    Writes never go through a symlinked folder (``.github`` a link to elsewhere is refused).
    """
    from monostack.repolock import repo_lock

    root = Path(root)
    for rel in changes:
        check_no_links(root, rel, "file")
    new_mode = file_mode()
    with repo_lock(root), held_sigint():
        entries = []
        for rel, data in sorted(changes.items()):
            target = root / rel
            existed = target.is_file()
            entries.append(
                {
                    "path": rel,
                    "tmp": _side_name(rel, TMP_SUFFIX),
                    "bak": _side_name(rel, BAK_SUFFIX),
                    "existed": existed,
                    "delete": data is None,
                    "mode": (target.stat().st_mode & 0o777) if existed else new_mode,
                }
            )
        record = {
            "kind": "apply_changes",
            "phase": "stage",
            "entries": entries,
            "dirs": _missing_dirs(root, [r for r, d in changes.items() if d is not None]),
        }
        try:
            write_journal(root, record)
            for d in record["dirs"]:
                step(root / d)
                os.mkdir(root / d)
            for entry in entries:
                data = changes[entry["path"]]
                if data is None:
                    continue
                step(root / entry["tmp"])
                _write_bytes(root / entry["tmp"], data, entry["mode"])
                if on_file is not None:
                    on_file(entry["path"])
            record["phase"] = "commit"
            write_journal(root, record)
            interrupt.abortable = False
            for entry in entries:
                target, tmp = root / entry["path"], root / entry["tmp"]
                if entry["existed"]:
                    step(target)
                    _keep_backup(target, root / entry["bak"])
                if entry["delete"]:
                    step(target)
                    target.unlink()
                elif os.path.lexists(tmp):
                    step(target)
                    os.replace(tmp, target)
            record["phase"] = "done"
            write_journal(root, record)
        except BaseException as exc:
            interrupt.abortable = False
            try:
                roll_back(root, record)
            except OSError as undo:
                tail = (
                    f"; undoing the partial write failed too "
                    f"({os_error_message(undo, _target_name(undo.filename, root), 'restore')}):"
                    " fix that, then run the command again, which finishes the undo"
                )
                raise _as_user_error(
                    exc if isinstance(exc, OSError) else undo, root, tail
                ) from None
            drop_journal(root)
            if isinstance(exc, OSError):
                raise _as_user_error(exc, root) from None
            raise
        _count_commit()
        with suppress(OSError):  # committed: a failed clean-up is finished by the next run
            roll_forward(root, record)
            remove_journal(root)


def _keep_backup(target: Path, bak: Path) -> None:
    """The old file stays in place under a second name until the transaction is done."""
    try:
        os.link(target, bak)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        shutil.copy2(target, bak)
