"""The one way monostack reads and writes files in a repository: never through a symlink, never
leaving a half-written result or a stray file behind, even when killed.

Reading is :mod:`monostack.safeio`'s job (no symlinks, no special files); writes check the
same way that no folder on the way is a link, so a symlinked ``.github`` is refused.

Writing: :func:`write_new_directory` (``new-project``) and :func:`apply_changes` (sync, update)
run as one transaction under the repository lock (:mod:`monostack.repolock`). A journal file
written before anything else names every temporary, backup and new directory the transaction
may create; the next run rolls an interrupted transaction back (or, once committed, forward)
and removes those files, so after a SIGKILL at any step the tree is all-old or all-new.
SIGINT is held back while files are renamed, so Ctrl-C never leaves a half-applied tree.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path

from monostack.errors import UserError, os_error_message
from monostack.safeio import check_inside, check_no_links, read_path
from monostack.writesteps import (  # noqa: F401 - re-exported for tests
    held_sigint,
    interrupt,
    reset_steps,
    set_fault_hook,
    step,
)

Tree = dict[str, bytes]

JOURNAL_FILE = "monostack-journal.json"  # in state_dir(root): .git/monostack/ in git
TMP_SUFFIX = ".monostack-tmp"  # staged new content: .<name>.monostack-tmp next to its target
BAK_SUFFIX = ".monostack-bak"  # the old file, kept until the transaction is committed
committed = 0  # transactions committed by this process (truthful interrupt messages)


# ------------------------------------------------------------------------------ journal
def journal_path(root: Path) -> Path:
    from monostack.repolock import state_dir

    return state_dir(root) / JOURNAL_FILE


def _write_journal(root: Path, record: dict) -> None:
    """Replace the journal in one rename (a kill leaves the old one or the new one)."""
    path = journal_path(root)
    tmp = path.with_name(JOURNAL_FILE + TMP_SUFFIX)
    step(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh)
    os.replace(tmp, path)


def _remove_journal(root: Path) -> None:
    step(journal_path(root))
    journal_path(root).unlink(missing_ok=True)


def _drop_journal(root: Path) -> None:
    path = journal_path(root)
    path.unlink(missing_ok=True)
    path.with_name(JOURNAL_FILE + TMP_SUFFIX).unlink(missing_ok=True)


def _rmdirs(root: Path, dirs: list[str]) -> None:
    """Remove the directories a transaction created (innermost first), where empty."""
    for rel in sorted(dirs, key=lambda d: d.count("/"), reverse=True):
        with suppress(OSError):
            os.rmdir(root / rel)


def _roll_back(root: Path, record: dict) -> None:
    """Undo a transaction. Every entry is tried even when one fails (an immutable target
    cannot be put back, but then it was never changed); if anything is left, the journal
    stays for the next run and the caller hears why."""
    if record["kind"] == "new_directory":
        shutil.rmtree(root / record["staging"], ignore_errors=True)
        _rmdirs(root, record["dirs"])
        return
    committing = record["phase"] != "stage"
    failed: list[OSError] = []
    for entry in reversed(record["entries"]):
        target = root / entry["path"]
        bak = root / entry["bak"]
        try:
            if committing and os.path.lexists(bak):
                if not _same_content(bak, target):
                    os.replace(bak, target)
                bak.unlink(missing_ok=True)  # also when both are links to one file
            elif committing and not entry["existed"]:
                target.unlink(missing_ok=True)
            (root / entry["tmp"]).unlink(missing_ok=True)
        except OSError as exc:
            failed.append(exc)
    _rmdirs(root, record["dirs"])
    if failed:
        raise failed[0]


def _same_content(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def _roll_forward(root: Path, record: dict) -> None:
    step()
    for entry in record["entries"]:
        (root / entry["bak"]).unlink(missing_ok=True)
        (root / entry["tmp"]).unlink(missing_ok=True)
    _prune_emptied(root, [e["path"] for e in record["entries"] if e["delete"]])


def _prune_emptied(root: Path, deleted: list[str]) -> None:
    """Directories emptied by deletions go too, so a removed project leaves nothing behind."""
    for rel in deleted:
        parent = (root / rel).parent
        while parent != root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


def recover(root: Path) -> str | None:
    """Finish what a killed run left: roll its transaction back (or forward once committed)
    and remove its files. Call with the repository lock held. Returns what was done."""
    root = Path(root)
    path = journal_path(root)
    path.with_name(JOURNAL_FILE + TMP_SUFFIX).unlink(missing_ok=True)
    if not os.path.lexists(path):
        return None
    try:
        record = json.loads(read_path(path))
        kind, phase = record["kind"], record["phase"]
    except (ValueError, KeyError, TypeError, UserError):
        raise UserError(
            f"{path}: an interrupted monostack run left this journal, but it is "
            "unreadable; check `git status`, restore what looks wrong, then delete the file"
        ) from None
    with held_sigint():
        interrupt.abortable = False
        if phase == "done":
            _roll_forward(root, record)
            what = "completed"
        elif kind == "new_directory" and os.path.lexists(root / record["target"]):
            _roll_back(root, record)  # the rename happened: only the journal was left
            what = "completed"
        else:
            _roll_back(root, record)
            what = "rolled back (nothing of it was kept)"
        path.unlink(missing_ok=True)
        interrupted = interrupt.pending
    if interrupted:
        raise KeyboardInterrupt
    where = record.get("target") or ", ".join(e["path"] for e in record.get("entries", [])[:3])
    return f"an interrupted monostack write ({where}) was found and {what}"


def stray_files(root: Path) -> list[str]:
    """Leftovers of interrupted runs: the journal, a stale lock, and temporary or backup files
    in the places monostack writes (repo root, projects/, .github/, .azure/). For checks."""
    from monostack.repolock import lock_is_stale, lock_path

    root = Path(root)
    found = []
    for path in (journal_path(root), lock_path(root)):
        if os.path.lexists(path) and (path.name == JOURNAL_FILE or lock_is_stale(root)):
            found.append(os.path.relpath(path, root))
    for top in ("", "projects", ".github", ".azure"):
        base = root / top
        if not base.is_dir() or base.is_symlink():
            continue
        walk = os.walk(base) if top in (".github", ".azure") else [(str(base), [], None)]
        for folder, _dirs, files in walk:
            names = files if files is not None else os.listdir(folder)
            for name in names:
                if name.endswith((TMP_SUFFIX, BAK_SUFFIX)):
                    found.append(Path(folder, name).relative_to(root).as_posix())
    return sorted(set(found))


# ------------------------------------------------------------------------------ writing
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
    mode = 0o666 & ~_umask()
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
            _write_journal(root, record)
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
            _remove_journal(root)
        except BaseException as exc:
            interrupt.abortable = False
            if not renamed:
                _roll_back(root, record)
            _drop_journal(root)
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
    file_mode = 0o666 & ~_umask()
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
                    "mode": (target.stat().st_mode & 0o777) if existed else file_mode,
                }
            )
        record = {
            "kind": "apply_changes",
            "phase": "stage",
            "entries": entries,
            "dirs": _missing_dirs(root, [r for r, d in changes.items() if d is not None]),
        }
        try:
            _write_journal(root, record)
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
            _write_journal(root, record)
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
            _write_journal(root, record)
        except BaseException as exc:
            interrupt.abortable = False
            try:
                _roll_back(root, record)
            except OSError as undo:
                tail = (
                    f"; undoing the partial write failed too "
                    f"({os_error_message(undo, _target_name(undo.filename, root), 'restore')}):"
                    " fix that, then run the command again, which finishes the undo"
                )
                raise _as_user_error(
                    exc if isinstance(exc, OSError) else undo, root, tail
                ) from None
            _drop_journal(root)
            if isinstance(exc, OSError):
                raise _as_user_error(exc, root) from None
            raise
        _count_commit()
        with suppress(OSError):  # committed: a failed clean-up is finished by the next run
            _roll_forward(root, record)
            _remove_journal(root)


def _keep_backup(target: Path, bak: Path) -> None:
    """The old file stays in place under a second name until the transaction is done."""
    try:
        os.link(target, bak)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        shutil.copy2(target, bak)


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
