"""The write journal: how a killed monostack write is finished by the next run.

Before :mod:`monostack.treeio` changes anything it records in a journal file every temporary,
backup and new directory the transaction may create (``.git/monostack/monostack-journal.json``
in a git work tree). :func:`recover`, run by the next command that takes the repository lock,
rolls an interrupted transaction back (or, once committed, forward) and removes those files, so
after a SIGKILL at any step the tree is all-old or all-new. :func:`stray_files` lists what an
interrupted run left, for checks that must fail while it is there.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import suppress
from pathlib import Path

from monostack.errors import UserError
from monostack.safeio import read_path
from monostack.writesteps import held_sigint, interrupt, step

JOURNAL_FILE = "monostack-journal.json"  # in state_dir(root): .git/monostack/ in git
TMP_SUFFIX = ".monostack-tmp"  # staged new content: .<name>.monostack-tmp next to its target
BAK_SUFFIX = ".monostack-bak"  # the old file, kept until the transaction is committed


def journal_path(root: Path) -> Path:
    from monostack.repolock import state_dir

    return state_dir(root) / JOURNAL_FILE


def write_journal(root: Path, record: dict) -> None:
    """Replace the journal in one rename (a kill leaves the old one or the new one)."""
    path = journal_path(root)
    tmp = path.with_name(JOURNAL_FILE + TMP_SUFFIX)
    step(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh)
    os.replace(tmp, path)


def remove_journal(root: Path) -> None:
    step(journal_path(root))
    journal_path(root).unlink(missing_ok=True)


def drop_journal(root: Path) -> None:
    path = journal_path(root)
    path.unlink(missing_ok=True)
    path.with_name(JOURNAL_FILE + TMP_SUFFIX).unlink(missing_ok=True)


def _rmdirs(root: Path, dirs: list[str]) -> None:
    """Remove the directories a transaction created (innermost first), where empty."""
    for rel in sorted(dirs, key=lambda d: d.count("/"), reverse=True):
        with suppress(OSError):
            os.rmdir(root / rel)


def roll_back(root: Path, record: dict) -> None:
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


def roll_forward(root: Path, record: dict) -> None:
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
            roll_forward(root, record)
            what = "completed"
        elif kind == "new_directory" and os.path.lexists(root / record["target"]):
            roll_back(root, record)  # the rename happened: only the journal was left
            what = "completed"
        else:
            roll_back(root, record)
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
