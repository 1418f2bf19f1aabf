"""Relative links in rendered Markdown must resolve: to a file (or folder) of the same tree and,
with a ``#fragment``, to a heading of that file as GitHub names its anchors.

The guides a project renders link to each other, to ``resources/README.md`` and to the
monorepo's own guide two folders up, so a link can only be judged against the whole repository
tree: project files under ``projects/<dir>/`` plus the monorepo part at the root.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping

from monostack.checks import ERROR, Finding

# [text](target) and ![alt](target); the target ends at whitespace or ')' (titles are ignored).
_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+[^)]*)?\)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"`|\*\*|__", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _lines_outside_code(text: str) -> Iterator[tuple[int, str]]:
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, _CODE_SPAN.sub("", line)


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text (repeated headings get -1, -2, ... as on GitHub)."""
    found: set[str] = set()
    for _, line in _lines_outside_code(text):
        match = _HEADING.match(line)
        if match is None:
            continue
        base = github_anchor(match.group(1))
        anchor, n = base, 0
        while anchor in found:
            n += 1
            anchor = f"{base}-{n}"
        found.add(anchor)
    return found


def relative_links(text: str) -> Iterator[tuple[int, str]]:
    """(line, target) of every link that is not absolute (no scheme, not site-rooted)."""
    for number, line in _lines_outside_code(text):
        for match in _LINK.finditer(line):
            target = match.group(1)
            if _SCHEME.match(target) or target.startswith("/"):
                continue
            yield number, target


def broken_links(files: Mapping[str, bytes], check: str, case: str) -> list[Finding]:
    """A finding per relative link of a ``.md`` file of ``files`` (repo path -> content) that
    points at no file or folder of ``files``, or at a heading its target file does not have."""
    folders = {posixpath.dirname(path) for path in files}
    folders |= {p for f in list(folders) for p in _parents(f)}
    found: list[Finding] = []
    texts: dict[str, str] = {}

    def text_of(path: str) -> str:
        if path not in texts:
            texts[path] = files[path].decode("utf-8", errors="replace")
        return texts[path]

    for path in sorted(p for p in files if p.endswith(".md")):
        for line, target in relative_links(text_of(path)):
            link, _, fragment = target.partition("#")
            resolved = (
                posixpath.normpath(posixpath.join(posixpath.dirname(path), link)) if link else path
            )
            if resolved.startswith("../") or resolved == "..":
                problem = "leaves the repository"
            elif resolved not in files and resolved.rstrip("/") not in folders:
                problem = f"points at {resolved}, which does not exist"
            elif fragment and resolved.endswith(".md") and resolved in files:
                if fragment.lower() in anchors(text_of(resolved)):
                    continue
                problem = f"points at a heading #{fragment} that {resolved} does not have"
            else:
                continue
            found.append(Finding(check, case, path, line, ERROR, f"link {target!r} {problem}"))
    return found


def _parents(folder: str) -> Iterator[str]:
    while folder:
        folder = posixpath.dirname(folder)
        yield folder
