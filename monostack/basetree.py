"""The template a project was rendered from, kept in git so it can be rendered again later.

A project's ``.stack-answers.yml`` records ``_template_tree``: the git object id of the
``stack_template/`` tree it was rendered from. ``update-projects`` reads that tree back from
git's object database (never from a checkout) and renders it with the project's answers: that
render is the common ancestor of a three-way merge.

When the template has uncommitted changes, its tree is written into the object database with a
temporary index (as ``git stash`` does), and every recorded tree is held by a ref
``refs/monostack/bases/<tree id>`` (a commit wrapping the tree), so ``git gc`` never drops it.

Recording is on ``new-project``'s path, so the usual case runs no git at all: the tree id is
computed in Python the way git computes it (:func:`hashed_tree`) and used as is when a base ref
already holds exactly that tree (read from ``.git`` itself, or asked of git where that is not
plain). Anything else (a new template, a link, a checkout filter that makes git store other
bytes) takes the git path above.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

from monostack.errors import UserError
from monostack.template import StackTemplate, load_template_files

TEMPLATE_DIR = "stack_template"
BASE_REF_PREFIX = "refs/monostack/bases/"
TREE_KEY = "_template_tree"
# Identity of the commits that hold bases: the user's own may not be configured (CI).
_IDENTITY = {
    "GIT_AUTHOR_NAME": "monostack",
    "GIT_AUTHOR_EMAIL": "monostack@localhost",
    "GIT_COMMITTER_NAME": "monostack",
    "GIT_COMMITTER_EMAIL": "monostack@localhost",
}


class GitError(UserError):
    """git failed or is missing."""


def _run(
    root: Path, args: tuple[str, ...], input: bytes | None, env: dict[str, str] | None
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=root,
            input=input,
            capture_output=True,
            env={**os.environ, **(env or {})},
            check=False,
        )
    except OSError as exc:
        raise GitError(f"git could not be run ({exc.strerror}); install git") from None


def git(
    root: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
) -> bytes:
    """Run git in ``root``; its stdout, or a GitError with git's own first error line."""
    proc = _run(root, args, input, env)
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed in {root}: {why[-1] if why else proc.returncode}")
    return proc.stdout


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").strip()


def in_git_repo(root: Path) -> bool:
    try:
        return _text(git(root, "rev-parse", "--is-inside-work-tree")) == "true"
    except GitError:
        return False


def work_tree_prefix(root: Path) -> str:
    """``root`` relative to the top of its work tree, e.g. ``""`` or ``"sub/dir/"``."""
    return _text(git(root, "rev-parse", "--show-prefix"))


def git_dir(root: Path) -> Path:
    return Path(_text(git(root, "rev-parse", "--absolute-git-dir")))


class _NotPlain(Exception):
    """The folder holds something git records in its own way (a link, a nested repository)."""


def hashed_tree(folder: Path, files: dict[str, bytes] | None = None) -> str | None:
    """The tree id ``git add --all --force`` and ``git write-tree`` give ``folder`` when no
    attribute or setting changes the bytes or modes git stores, computed without git: a blob is
    ``sha1(b"blob <size>\\0" + bytes)``, a tree lists ``<mode> <name>\\0<id>`` sorted as git
    sorts (a folder's name as if it ended in ``/``), empty folders are left out. None for an
    empty folder or one holding a link, a special file or a nested ``.git``.

    ``files``, when given, receives each file's bytes by its path below ``folder`` (only when
    a tree id is returned), so a caller that renders the folder reads it once."""
    read: dict[str, bytes] = {}

    def tree_of(path: str, rel: str) -> bytes | None:
        entries: list[tuple[bytes, bytes, bytes]] = []
        with os.scandir(path) as listing:
            for entry in listing:
                name = os.fsencode(entry.name)
                if entry.name == ".git" or entry.is_symlink():
                    raise _NotPlain
                if entry.is_dir(follow_symlinks=False):
                    sub = tree_of(entry.path, f"{rel}{entry.name}/")
                    if sub is not None:
                        entries.append((name + b"/", b"40000 " + name, sub))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    raise _NotPlain
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as fh:
                    executable = os.fstat(fh.fileno()).st_mode & stat.S_IXUSR
                    data = fh.read()
                read[rel + entry.name] = data
                mode = b"100755 " if executable else b"100644 "
                blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False)
                entries.append((name, mode + name, blob.digest()))
        if not entries:
            return None
        entries.sort()
        body = b"".join(head + b"\0" + oid for _, head, oid in entries)
        return hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).digest()

    try:
        tree = tree_of(str(folder), "")
    except (_NotPlain, OSError):
        return None
    if tree is None:
        return None
    if files is not None:
        files.update(read)
    return tree.hex()


def record_base(root: Path, hashed: str | None = None) -> str | None:
    """:func:`record_template_tree` for a command that renders a project; None when ``root``
    is not in a git work tree. When a base ref already holds the template as it is on disk
    (:func:`hashed_tree`), nothing is written and at most one git call answers both questions
    (none when the ref can be read from ``.git`` itself). ``hashed``: the template's
    :func:`hashed_tree`, when the caller has it."""
    root = Path(root)
    tree = hashed or hashed_tree(root / TEMPLATE_DIR)
    if tree and _ref_on_disk(root, BASE_REF_PREFIX + tree):
        return tree
    args = ["rev-parse", "--is-inside-work-tree"]
    if tree:
        args += ["--verify", "--quiet", f"{BASE_REF_PREFIX}{tree}^{{tree}}"]
    try:
        proc = _run(root, tuple(args), None, None)
    except GitError:
        return None
    lines = proc.stdout.decode("utf-8", "replace").split()
    if not lines or lines[0] != "true":
        return None  # not a git repository (exit 128), or inside .git itself
    if tree and proc.returncode == 0 and lines[-1] == tree:
        return tree
    return _write_template_tree(root, keep=True)


_GIT_LOCATION_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_CEILING_DIRECTORIES")


def _ref_on_disk(root: Path, ref: str) -> bool:
    """Whether ``ref`` exists, read without running git, where that is plain: ``root`` is the
    top of an ordinary clone (``root/.git`` a folder) and the ref is a loose file or a line of
    ``packed-refs``. False means "ask git" (a linked worktree, a sub-folder, ``GIT_DIR``, the
    reftable format, or no such ref)."""
    dot_git = root / ".git"
    if any(v in os.environ for v in _GIT_LOCATION_VARIABLES) or not dot_git.is_dir():
        return False
    try:
        fd = os.open(dot_git / ref, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        fd = None
    if fd is not None:
        with os.fdopen(fd, "rb") as fh:
            value = fh.read(100).strip()
        return len(value) in (40, 64) and all(c in b"0123456789abcdef" for c in value)
    try:
        packed = (dot_git / "packed-refs").read_bytes()
    except OSError:
        return False
    return f" {ref}\n".encode() in packed


def _held_base(root: Path, tree: str) -> bool:
    """Whether ``refs/monostack/bases/<tree>`` holds exactly ``tree``."""
    ref = f"{BASE_REF_PREFIX}{tree}^{{tree}}"
    proc = _run(root, ("rev-parse", "--verify", "--quiet", ref), None, None)
    return proc.returncode == 0 and _text(proc.stdout) == tree


def record_template_tree(root: Path, keep: bool = True) -> str:
    """Write ``stack_template/`` as it is on disk into git's object database; its tree id.

    A temporary index is used, so the user's index and work tree are not touched. The tree is
    then held by a ref (unless ``keep`` is false), so it outlives ``git gc`` even if it is
    never committed. A tree a base ref already holds is not written again.
    """
    root = Path(root)
    tree = hashed_tree(root / TEMPLATE_DIR)
    if tree and (_ref_on_disk(root, BASE_REF_PREFIX + tree) or _held_base(root, tree)):
        return tree
    return _write_template_tree(root, keep)


def _write_template_tree(root: Path, keep: bool) -> str:
    import tempfile

    prefix = work_tree_prefix(root)
    with tempfile.TemporaryDirectory(prefix="monostack-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        # -f: the template renders every file on disk, so ignored ones belong to it too
        git(root, "add", "--all", "--force", "--", TEMPLATE_DIR, env=env)
        listed = git(root, "ls-files", "-z", "--", TEMPLATE_DIR, env=env)
        if not listed:
            raise UserError(f"{root / TEMPLATE_DIR}: holds no files; nothing to record")
        tree = _text(git(root, "write-tree", f"--prefix={prefix}{TEMPLATE_DIR}/", env=env))
    if keep:
        protect_tree(root, tree)
    return tree


def protect_tree(root: Path, tree: str) -> None:
    """Point ``refs/monostack/bases/<tree>`` at a commit of ``tree`` unless it exists."""
    ref = BASE_REF_PREFIX + tree
    try:
        git(root, "rev-parse", "--verify", "--quiet", ref)
        return
    except GitError:
        pass
    message = b"monostack: stack_template/ a project was rendered from (keeps it from gc)\n"
    commit = _text(git(root, "commit-tree", "--no-gpg-sign", tree, input=message, env=_IDENTITY))
    # the empty old value makes the update fail rather than overwrite a concurrent writer's ref
    git(root, "update-ref", ref, commit, "")


def resolve_base(root: Path, ref: str) -> str:
    """The ``stack_template/`` tree id of ``ref``: a commit or tag (its ``stack_template/``), or
    a tree id as recorded in ``.stack-answers.yml``."""
    root = Path(root)
    if not ref or ref.startswith("-"):
        raise UserError(f"--base {ref!r}: give a commit, tag or branch, e.g. --base HEAD")
    try:
        commit = _text(git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"))
    except GitError:
        commit = ""
    if commit:
        spec = f"{commit}:{work_tree_prefix(root)}{TEMPLATE_DIR}"
        try:
            tree = _text(git(root, "rev-parse", "--verify", "--quiet", spec))
            if tree_exists(root, tree):
                return tree
            raise GitError(f"{spec} is not a tree")
        except GitError:
            raise UserError(
                f"--base {ref!r}: commit {commit[:12]} has no {TEMPLATE_DIR}/; give a commit "
                f"whose {TEMPLATE_DIR}/ the projects were rendered from"
            ) from None
    try:
        return _text(git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{tree}}"))
    except GitError:
        raise UserError(
            f"--base {ref!r}: no such commit, tag, branch or tree in {root}; check the name "
            "(git log -- stack_template shows the template's history)"
        ) from None


def tree_exists(root: Path, tree: str) -> bool:
    try:
        return _text(git(root, "cat-file", "-t", tree)) == "tree"
    except GitError:
        return False


def read_tree(root: Path, tree: str) -> dict[str, bytes]:
    """Every file of ``tree`` as ``{path: bytes}``, read from the object database in one batch."""
    # --full-tree: run from a sub-folder of the repository, ls-tree would list only that folder
    listing = git(root, "ls-tree", "-r", "-z", "--full-tree", tree)
    entries: list[tuple[str, str]] = []
    for item in listing.split(b"\0"):
        if not item:
            continue
        meta, _, path = item.partition(b"\t")
        mode, kind, oid = meta.decode().split()
        if kind == "blob" and mode != "120000":  # symlinks and submodules are not template files
            entries.append((path.decode("utf-8", "surrogateescape"), oid))
    if not entries:
        return {}
    batch = git(root, "cat-file", "--batch", input="".join(f"{o}\n" for _, o in entries).encode())
    files: dict[str, bytes] = {}
    pos = 0
    for path, _ in entries:
        end = batch.index(b"\n", pos)
        size = int(batch[pos:end].split()[2])
        files[path] = batch[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return files


def load_base_template(root: Path, tree: str) -> StackTemplate:
    """The template of tree ``tree``, in memory; errors name it ``stack_template@<id>``."""
    root = Path(root)
    if not tree_exists(root, tree):
        raise UserError(
            f"template tree {tree[:12]} is not in this repository's git objects; fetch the "
            f"refs that hold it (git fetch origin '{BASE_REF_PREFIX}*:{BASE_REF_PREFIX}*') or "
            "pass --base REF (a commit whose stack_template/ the project was rendered from)"
        )
    return load_template_files(root / f"{TEMPLATE_DIR}@{tree[:12]}", read_tree(root, tree))
