"""Each project's answers remembered between runs, so ``new-project`` does not read, parse and
check every ``.stack-answers.yml`` of a large monorepo again only to learn the names in use.

An entry holds under git's index rule (:mod:`monostack.filestat`). The memo lives in the
compiled-template cache (``.git/monostack/jinja-*``), is replaced in one rename and is never
read or written through a link; a missing or damaged memo only means reading the files again.
The comparisons of names and uuids themselves (a copied project is refused) run every time, on
the remembered answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monostack.filestat import settled, signature
from monostack.tempfiles import replace_atomically

MEMO_FILE = "answers-memo.json"
FORMAT = 1


def _entry(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], dict)


class AnswersMemo:
    def __init__(self, root: Path, scope: str):
        """``scope``: what the remembered answers were checked against (the template's
        ``stack.yml``); a memo of another scope is not used."""
        from monostack.template_env import _cache_folder

        folder = _cache_folder(Path(root))
        self.path = None if folder is None else folder / MEMO_FILE
        self.scope = scope
        self._known = self._read()
        self._now: dict[str, list] = {}
        self._new = False

    def _read(self) -> dict[str, list]:
        if self.path is None:
            return {}
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as fh:
                data = json.loads(fh.read())
        except (OSError, ValueError):
            return {}
        entries = data.get("projects") if isinstance(data, dict) else None
        if not isinstance(entries, dict) or data.get("format") != FORMAT:
            return {}
        if data.get("scope") != self.scope:  # answers checked against another template
            return {}
        # an entry is [[size, mtime, ctime, inode], answers]; anything else is not trusted
        return {k: v for k, v in entries.items() if _entry(v)}

    def answers(self, rel: str, path: Path, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``read()``'s answers for the file at ``path`` (``rel`` names it in the memo), or
        the remembered ones while the file is as it was when they were read."""
        try:
            st = os.lstat(path)
        except OSError:
            return read()
        sig = signature(st)
        known = self._known.get(rel)
        if known is not None and known[0] == sig and stat.S_ISREG(st.st_mode):
            self._now[rel] = known
            return dict(known[1])
        answers = read()  # raises for a bad file: nothing is remembered
        if stat.S_ISREG(st.st_mode) and settled(st):
            self._now[rel] = [sig, answers]
            self._new = True
        return answers

    def save(self) -> None:
        """Keep this run's entries (only when one is new or one was dropped)."""
        if self.path is None or not (self._new or set(self._known) != set(self._now)):
            return
        body = json.dumps(
            {"format": FORMAT, "scope": self.scope, "projects": self._now}, separators=(",", ":")
        )
        with contextlib.suppress(OSError, ValueError):  # an aid: without it files are read again
            replace_atomically(self.path, lambda fh: fh.write(body.encode("utf-8")))
