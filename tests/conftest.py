"""Shared fixtures: throw-away monorepos that are real git repositories."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import git
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared" / "reference"
BUNDLE_SCHEMA = SHARED / "databricks-bundle-schema.json"
# pyproject.toml holds the ruff settings `invoke lint` applies to tasks.py
SEED = (
    "tasks.py",
    "pyproject.toml",
    "monorepo.yml",
    "stack_template",
    ".yamllint.yml",
    "zizmor.yml",
)
VENV_BIN = Path(sys.executable).parent


def _copy_seed(dest: Path) -> None:
    for name in SEED:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy2(src, dest / name)


def make_repo(path: Path, with_projects: bool = False) -> git.Repo:
    """A fresh git repo holding this checkout's tasks, config and template (and optionally
    its shipped projects and root CI files), with everything committed."""
    path.mkdir(parents=True, exist_ok=True)
    _copy_seed(path)
    if with_projects:
        for name in ("projects", ".github", ".azure", "docs"):
            if (REPO_ROOT / name).is_dir():
                shutil.copytree(REPO_ROOT / name, path / name)
    repo = git.Repo.init(path, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "monostack tests")
        cw.set_value("user", "email", "tests@example.invalid")
    repo.git.add(A=True)
    repo.index.commit("seed")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    """An empty monorepo (no projects yet), committed."""
    return make_repo(tmp_path / "mono")


@pytest.fixture
def shipped_repo(tmp_path: Path) -> git.Repo:
    """A copy of the shipped monorepo, example projects and root CI files included."""
    return make_repo(tmp_path / "mono", with_projects=True)


@pytest.fixture(scope="session")
def _built_repos() -> dict[str, Path]:
    return {}  # name -> a repo built once in this worker, never changed afterwards


@pytest.fixture
def built_repo(_built_repos, tmp_path_factory, tmp_path) -> Callable[..., git.Repo]:
    """``built_repo(name, build)``: this test's own copy of the repo that ``build(repo)`` makes
    of a fresh :func:`make_repo` (and commits). It is built once per worker and copied for each
    test, so fixtures that set up the same projects for many tests render them once."""

    def copy(name: str, build: Callable[[git.Repo], None]) -> git.Repo:
        if name not in _built_repos:
            source = tmp_path_factory.mktemp(f"built-{name}") / "mono"
            build(make_repo(source))
            _built_repos[name] = source
        dest = tmp_path / "mono"
        if dest.exists():
            dest = tmp_path / f"mono-{name}"
        shutil.copytree(_built_repos[name], dest, symlinks=True)
        return git.Repo(dest)

    return copy


@dataclass(frozen=True)
class ShippedMatrix:
    """render-matrix over this checkout's template and ``monorepo.yml``, run once per session."""

    root: Path  # the repo it ran in (read it, never change it)
    results: list  # its CaseResults, in combination order
    cache: Path  # the ``.monostack-cache`` folder that remembers them


@pytest.fixture(scope="session")
def shipped_matrix(tmp_path_factory) -> ShippedMatrix:
    """The shipped template's full render-matrix, computed once per test session and shared
    by the xdist workers (the first one runs it under a file lock; the others read its result
    cache). Tests whose subject is not the template seed their repo's cache with it
    (:func:`seed_matrix_cache`): entries are keyed on content (template, ``monorepo.yml``,
    checker configuration, tool versions), so they are used exactly when all of those are as
    shipped, and any change reruns the cases, as in a user's CI with a kept cache."""
    from monostack.cache import CACHE_DIR
    from monostack.runner import run_checks

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    home, done = shared / "shipped-matrix-first", shared / "shipped-matrix.done"
    with open(shared / "shipped-matrix.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(home, ignore_errors=True)
            make_repo(home)
            run_checks(home, ["render-matrix"], jobs=1, progress=None)  # fills its cache
            done.touch()
    root = base / "shipped-matrix"  # this worker's own copy, cache included
    shutil.copytree(home, root, symlinks=True)
    results = run_checks(root, ["render-matrix"], jobs=1, progress=None)
    assert (root / CACHE_DIR).is_dir()
    return ShippedMatrix(root, results, root / CACHE_DIR)


def seed_matrix_cache(matrix: ShippedMatrix, repo_or_path) -> None:
    """Give a repo the remembered render-matrix results of the shipped template (used only
    while its template and ``monorepo.yml`` are as shipped: see :func:`shipped_matrix`)."""
    from monostack.cache import CACHE_DIR

    root = root_of(repo_or_path) if isinstance(repo_or_path, git.Repo) else Path(repo_or_path)
    ignore = shutil.ignore_patterns("timings*.json")
    shutil.copytree(matrix.cache, root / CACHE_DIR, ignore=ignore, dirs_exist_ok=True)


def root_of(repo: git.Repo) -> Path:
    return Path(repo.working_tree_dir)


def git_status(repo: git.Repo) -> str:
    """Porcelain status including untracked files: empty means the tree is as committed."""
    return repo.git.status("--porcelain", "--untracked-files=all")


def invoke(repo_or_path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real ``invoke`` CLI of this venv in the repo, capturing output."""
    cwd = root_of(repo_or_path) if isinstance(repo_or_path, git.Repo) else Path(repo_or_path)
    full_env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    full_env.pop("GITHUB_ACTIONS", None)
    full_env.update(env or {})
    return subprocess.run(
        [str(VENV_BIN / "invoke"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=600,
    )


def invoke_in_process(repo_or_path, *args: str) -> subprocess.CompletedProcess:
    """The same as :func:`invoke`, but in this process (no interpreter start-up): the repo's
    own ``tasks.py`` is loaded and Invoke's ``Program`` runs it, stdout and stderr captured."""
    import contextlib
    import importlib.util
    import io
    import uuid

    from invoke import Collection, Program

    cwd = root_of(repo_or_path) if isinstance(repo_or_path, git.Repo) else Path(repo_or_path)
    spec = importlib.util.spec_from_file_location(f"tasks_{uuid.uuid4().hex}", cwd / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    program = Program(namespace=Collection.from_module(module), binary="invoke")
    out, err = io.StringIO(), io.StringIO()
    saved = os.environ.pop("GITHUB_ACTIONS", None)
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                program.run(["invoke", *args])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (1 if exc.code else 0)
    finally:
        os.chdir(before)
        if saved is not None:
            os.environ["GITHUB_ACTIONS"] = saved
    return subprocess.CompletedProcess(["invoke", *args], code, out.getvalue(), err.getvalue())


def assert_user_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    """Non-zero exit, a single ``error:`` line naming what is wrong, and no traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def fail_on_nth_file(n: int) -> tuple[Callable[[str], None], list[str]]:
    """An ``on_file`` hook that raises OSError at the n-th file written, and the files it saw."""
    calls: list[str] = []

    def explode(rel: str) -> None:
        calls.append(rel)
        if len(calls) == n:
            raise OSError("disk full (injected)")

    return explode, calls
