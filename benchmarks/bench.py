"""Time monostack's tasks on a throw-away copy of this checkout and print a markdown table.

    . .venv/bin/activate && python benchmarks/bench.py 5     # median of 5 runs per command

Runs the real ``invoke`` CLI of the current venv, with bytecode caching on. Never touches the
checkout itself: the repo is copied (without .git, .venv and caches) into a temp directory,
committed there as a fresh git repo and given two projects (``churn``; ``fraud`` with Unity
Catalog and feature store) when it ships fewer, then each command runs RUNS times. Figures are
wall-clock seconds, so they include Python start-up and process creation.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info", "build", "dist"
)
SEED_PROJECTS = (("churn",), ("fraud", "--unity-catalog", "--feature-store"))


@dataclass
class Timing:
    label: str
    note: str = ""
    seconds: list[float] = field(default_factory=list)
    exit_codes: set[int] = field(default_factory=set)

    def row(self) -> str:
        s = self.seconds
        codes = ",".join(str(c) for c in sorted(self.exit_codes))
        return (
            f"| `{self.label}` | {statistics.median(s):.2f} | {min(s):.2f} | {max(s):.2f} "
            f"| {codes} | {self.note} |"
        )


class Bench:
    def __init__(self, root: Path, runs: int, verbose: bool):
        self.root = root
        self.runs = runs
        self.verbose = verbose
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.env.pop("GITHUB_ACTIONS", None)
        # Measure what users see: Python caching bytecode (.pyc), as it does unless told not to
        # (some sandboxes set PYTHONDONTWRITEBYTECODE, which recompiles every import each run).
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.timings: list[Timing] = []

    def invoke(self, *args: str, check: bool = False) -> tuple[float, int]:
        return self.run([str(BIN / "invoke"), *args], check=check)

    def run(self, argv: list[str], check: bool = False) -> tuple[float, int]:
        start = time.perf_counter()
        result = subprocess.run(
            argv,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        if check and result.returncode != 0:
            sys.exit(f"`{' '.join(argv)}` failed:\n{result.stdout}{result.stderr}")
        if result.returncode != 0 and self.verbose:
            print(f"`{' '.join(argv)}` exited {result.returncode}:", file=sys.stderr)
            print(result.stdout[-3000:] + result.stderr[-3000:], file=sys.stderr)
        return seconds, result.returncode

    def measure(
        self,
        label: str,
        args: Callable[[int], list[str]],
        before: Callable[[int], None] | None = None,
        after: Callable[[int], None] | None = None,
        note: str = "",
        argv: list[str] | None = None,
    ) -> Timing:
        """Time ``invoke <args(i)>`` (or the command ``argv``) for each run i.

        before/after run untimed around each timed run.
        """
        timing = Timing(label, note)
        for i in range(self.runs):
            if before:
                before(i)
            seconds, code = self.run(argv) if argv else self.invoke(*args(i))
            timing.seconds.append(seconds)
            timing.exit_codes.add(code)
            if after:
                after(i)
        print(f"  {label}: median {statistics.median(timing.seconds):.2f} s", file=sys.stderr)
        self.timings.append(timing)
        return timing


def prepare(dest: Path) -> int:
    """Copy the checkout to ``dest``, seed projects if needed, sync CI files, commit."""
    shutil.copytree(REPO, dest, ignore=IGNORE, symlinks=True)
    projects = dest / "projects"
    have = [p for p in projects.iterdir() if p.is_dir()] if projects.is_dir() else []
    bench = Bench(dest, 1, verbose=True)
    if len(have) < 2:
        for args in SEED_PROJECTS:
            if not (projects / args[0]).exists():
                bench.invoke("new-project", "--name", *args, check=True)
    bench.invoke("sync-workflows", check=True)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "bench seed"],
    ):
        subprocess.run(cmd, cwd=dest, env=env, check=True)
    return len([p for p in projects.iterdir() if (p / "databricks.yml").is_file()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="?", type=int, default=3, help="runs per command (3)")
    parser.add_argument("--keep", action="store_true", help="keep the temp copy and print it")
    parser.add_argument("--verbose", action="store_true", help="show output of failing runs")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("runs must be 1 or more")
    if not (BIN / "invoke").exists():
        parser.error(f"no invoke in {BIN}; run with the project's venv python")

    tmp = Path(tempfile.mkdtemp(prefix="monostack-bench-"))
    root = tmp / "repo"
    try:
        print(f"preparing a copy of {REPO} in {root} ...", file=sys.stderr)
        n_projects = prepare(root)
        b = Bench(root, args.runs, args.verbose)

        def drop_project(name: str) -> Callable[[int], None]:
            def drop(i: int) -> None:
                shutil.rmtree(root / "projects" / f"{name}{i}")

            return drop

        def add_then_time_sync(i: int) -> None:
            b.invoke("new-project", "--name", f"sync{i}", check=True)

        def drop_and_resync(i: int) -> None:
            shutil.rmtree(root / "projects" / f"sync{i}")
            b.invoke("sync-workflows", check=True)

        b.measure(
            "python -c 'import invoke'",
            lambda i: [],
            argv=[sys.executable, "-c", "import invoke"],
            note="baseline: Python + Invoke alone",
        )
        b.measure("invoke --list", lambda i: ["--list"], note="start-up")
        b.measure(
            "invoke new-project --name NAME",
            lambda i: ["new-project", "--name", f"bench{i}"],
            after=drop_project("bench"),
        )
        b.measure(
            "invoke sync-workflows",
            lambda i: ["sync-workflows"],
            before=add_then_time_sync,
            after=drop_and_resync,
            note="writes a new project's CI files",
        )
        b.measure(
            "invoke sync-workflows --check",
            lambda i: ["sync-workflows", "--check"],
            note="in sync, nothing to do",
        )
        b.measure("invoke lint", lambda i: ["lint"])
        b.measure("invoke bundle-validate", lambda i: ["bundle-validate"])
        b.measure("invoke render-matrix", lambda i: ["render-matrix"], note="default jobs")
        b.measure("invoke render-matrix --jobs 1", lambda i: ["render-matrix", "--jobs", "1"])
        b.measure("invoke render-matrix --jobs 2", lambda i: ["render-matrix", "--jobs", "2"])
        b.measure("invoke test-all", lambda i: ["test-all"], note="checks in parallel")
        b.measure(
            "invoke test-all --jobs 1", lambda i: ["test-all", "--jobs", "1"], note="one by one"
        )
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{n_projects} projects; {os.cpu_count()} CPUs; Python {platform.python_version()}; "
        f"{args.runs} run{'s' if args.runs != 1 else ''} per command (wall-clock seconds); "
        f"load average at the end {load:.1f}\n"
    )
    print("| command | median s | min s | max s | exit | note |")
    print("|---|---:|---:|---:|---|---|")
    for timing in b.timings:
        print(timing.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
