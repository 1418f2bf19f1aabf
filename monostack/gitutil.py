"""What changed in the working tree since a git ref, for ``--changed-since``.

CI runs the checks only on what a branch touched: everything committed since the branch left
REF (the merge-base), plus staged, unstaged and untracked (not ignored) files, so a developer
gets the same selection locally before committing. GitPython is imported lazily.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from monostack.errors import UserError


def _open_repo(root: Path):
    try:
        import git
    except ImportError as exc:  # GitPython raises ImportError when no git executable is found
        raise UserError(
            f"--changed-since needs git, which could not be run ({exc}); install git or drop "
            "--changed-since"
        ) from None
    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UserError(
            f"{root}: not inside a git repository, so --changed-since cannot tell what changed; "
            "run it in a git checkout or drop --changed-since"
        ) from None


def _resolve(repo, ref: str):
    """The commit ``ref`` names, or a UserError saying how to make it available."""
    import git

    if not ref or ref.startswith("-"):
        raise UserError(f"--changed-since {ref!r}: give a branch, tag or commit, e.g. origin/main")
    try:
        return repo.commit(ref)
    except (git.BadName, git.BadObject, ValueError, git.GitCommandError):
        raise UserError(
            f"--changed-since {ref!r}: no such branch, tag or commit in {repo.working_tree_dir}; "
            "check the name, or fetch it first (e.g. git fetch origin main, or "
            "actions/checkout with fetch-depth: 0)"
        ) from None


def _base_commit(repo, commit):
    """The merge-base of ``commit`` and HEAD (what a branch changed), else ``commit`` itself.

    Falls back to ``commit`` when HEAD does not exist yet or the histories share no commit
    (e.g. a shallow clone), which diffs against REF directly.
    """
    import git

    try:
        bases = repo.merge_base(commit, "HEAD")
    except (git.GitCommandError, ValueError):
        return commit
    return bases[0] if bases else commit


def _split_z(output: str) -> list[str]:
    return [item for item in output.split("\0") if item]


def changed_paths(root: Path, ref: str) -> set[str]:
    """Files changed between ``ref`` and the working tree, as POSIX paths relative to ``root``.

    Covers commits since the merge-base of ``ref`` and HEAD, staged and unstaged edits,
    deletions, both sides of renames, and untracked files that ``.gitignore`` does not hide.
    Paths outside ``root`` (when ``root`` is a sub-directory of the repository) are left out.
    """
    root = Path(root).resolve()
    repo = _open_repo(root)
    base = _base_commit(repo, _resolve(repo, ref))
    top = Path(repo.working_tree_dir).resolve()
    # One diff from the base commit to the working tree covers committed, staged and unstaged
    # changes; --no-renames lists both the old and the new path of a moved file; -z keeps
    # unusual file names unquoted.
    diffed = repo.git.diff("--name-only", "--no-renames", "-z", base.hexsha, "--")
    untracked = repo.git.ls_files("--others", "--exclude-standard", "-z")
    prefix = PurePosixPath(root.relative_to(top).as_posix()) if root != top else None
    changed: set[str] = set()
    for path in _split_z(diffed) + _split_z(untracked):
        posix = PurePosixPath(path)
        if prefix is None:
            changed.add(posix.as_posix())
        elif posix.is_relative_to(prefix):
            changed.add(posix.relative_to(prefix).as_posix())
    return changed
