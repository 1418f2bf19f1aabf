"""Time monostack's tasks on a throw-away copy of this checkout and print markdown tables.

    . .venv/bin/activate && python benchmarks/bench.py 5     # median of 5 runs per command
    python benchmarks/bench.py 3 --only scale                # only the 100-project part

The scale part builds a synthetic monorepo of 100 projects (``--projects``) next to a copy with
the shipped project alone, and reports from that one run: ``test-all`` cold, ``--changed-since``
with 1 project changed against a full run of the 1-project repo, a warm rerun with nothing
changed against ``invoke --list``, the slowest of 4 shards against the full run, and
``new-project`` against ``invoke --list``.

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

    def measure_rounds(self, commands: list[tuple[str, list[str], str]]) -> list[Timing]:
        """Time several ``(label, invoke args, note)`` commands in rounds (each once per round,
        RUNS rounds), so that commands compared with each other see the same load."""
        timings = [Timing(label, note) for label, _, note in commands]
        for _ in range(self.runs):
            for timing, (_, args, _) in zip(timings, commands, strict=True):
                seconds, code = self.invoke(*args)
                timing.seconds.append(seconds)
                timing.exit_codes.add(code)
        for timing in timings:
            median = statistics.median(timing.seconds)
            print(f"  {timing.label}: median {median:.2f} s", file=sys.stderr)
        self.timings += timings
        return timings


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
    parser.add_argument("--only", choices=("tasks", "scale"), help="run one part only")
    parser.add_argument("--projects", type=int, default=100, help="scale part: projects (100)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("runs must be 1 or more")
    if not (BIN / "invoke").exists():
        parser.error(f"no invoke in {BIN}; run with the project's venv python")

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="monostack-bench-"))
    try:
        tables = []
        if args.only != "scale":
            tables.append(task_table(tmp / "repo", args.runs, args.verbose))
        if args.only != "tasks":
            tables.append(scale_table(tmp, args.runs, args.projects, args.verbose))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}; "
        f"{args.runs} run{'s' if args.runs != 1 else ''} per command (wall-clock seconds); "
        f"load average at the end {load:.1f}; the benchmark took "
        f"{(time.perf_counter() - started) / 60:.1f} min\n"
    )
    print("\n\n".join(tables))
    return 0


def task_table(root: Path, runs: int, verbose: bool) -> str:
    print(f"preparing a copy of {REPO} in {root} ...", file=sys.stderr)
    n_projects = prepare(root)
    b = Bench(root, runs, verbose)

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
    b.measure("invoke lint --no-cache", lambda i: ["lint", "--no-cache"])
    b.measure("invoke bundle-validate --no-cache", lambda i: ["bundle-validate", "--no-cache"])
    b.measure(
        "invoke render-matrix --no-cache",
        lambda i: ["render-matrix", "--no-cache"],
        note="default jobs",
    )
    b.measure(
        "invoke render-matrix --no-cache --jobs 2",
        lambda i: ["render-matrix", "--no-cache", "--jobs", "2"],
    )
    b.measure("invoke test-all --no-cache", lambda i: ["test-all", "--no-cache"])
    b.measure(
        "invoke test-all --no-cache --jobs 2",
        lambda i: ["test-all", "--no-cache", "--jobs", "2"],
        note="checks in parallel processes",
    )
    lines = [
        f"{n_projects} projects",
        "",
        "| command | median s | min s | max s | exit | note |",
        "|---|---:|---:|---:|---|---|",
    ]
    return "\n".join(lines + [t.row() for t in b.timings])


# -------------------------------------------------------------------------------- scale
def _git_commit(root: Path, message: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }
    if not (root / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, env=env, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=root, env=env, check=True)


def synthetic_repo(dest: Path, n: int) -> None:
    """The checkout plus ``n`` projects made by new-project (every third with Unity Catalog,
    every fourth with the feature store), their CI files synced, committed."""
    from monostack.projects import new_project
    from monostack.workflows import sync_workflows

    shutil.copytree(REPO, dest, ignore=IGNORE, symlinks=True)
    for i in range(n - len(list((dest / "projects").glob("*/databricks.yml")))):
        answers = {}
        if i % 3 == 1:
            answers["include_models_in_unity_catalog"] = True
        if i % 4 == 2:
            answers["include_feature_store"] = True
        new_project(dest, f"p{i:03d}", answers)
    result = sync_workflows(dest)
    if result.exit_code:
        sys.exit("sync-workflows failed on the synthetic repo")
    shutil.rmtree(dest / ".monostack-cache", ignore_errors=True)
    _git_commit(dest, f"{n} projects")


def scale_table(tmp: Path, runs: int, n: int, verbose: bool) -> str:
    one, many = tmp / "one", tmp / "many"
    print(f"preparing a 1-project and a {n}-project repo in {tmp} ...", file=sys.stderr)
    shutil.copytree(REPO, one, ignore=IGNORE, symlinks=True)
    _git_commit(one, "1 project")
    synthetic_repo(many, n)
    small, big = Bench(one, runs, verbose), Bench(many, 1, verbose)
    big_runs = Bench(many, runs, verbose)
    middle = sorted(p.parent for p in (many / "projects").glob("*/databricks.yml"))[n // 2]
    target = middle / "bench_change.py"

    def change(i: int) -> None:
        target.write_text(f"CHANGED = {i}\n", encoding="utf-8")  # a clean, formatted module

    def restore(i: int) -> None:
        target.unlink()

    list_t = small.measure("invoke --list", lambda i: ["--list"], note="start-up")
    new_t = small.measure(
        "invoke new-project --name NAME",
        lambda i: ["new-project", "--name", f"bench{i}"],
        after=lambda i: shutil.rmtree(one / "projects" / f"bench{i}"),
    )
    one_t = small.measure(
        "invoke test-all --no-cache  (1 project)",
        lambda i: ["test-all", "--no-cache"],
        note="full run of a 1-project repo",
    )
    cold = big.measure(
        f"invoke test-all  ({n} projects, empty cache)", lambda i: ["test-all"], note="cold"
    )
    warm = big_runs.measure(
        f"invoke test-all  ({n} projects, nothing changed)",
        lambda i: ["test-all"],
        note="warm rerun, from the cache",
    )
    # the full run and the shards it is compared with: in rounds (full, 1/4 .. 4/4), RUNS times
    full, *shards = big_runs.measure_rounds(
        [(f"invoke test-all --no-cache  ({n} projects)", ["test-all", "--no-cache"], "full run")]
        + [
            (
                f"invoke test-all --no-cache --shard {k}/4  ({n} projects)",
                ["test-all", "--no-cache", "--shard", f"{k}/4"],
                "",
            )
            for k in (1, 2, 3, 4)
        ]
    )
    changed = big_runs.measure(
        f"invoke test-all --no-cache --changed-since main  (1 of {n} changed)",
        lambda i: ["test-all", "--no-cache", "--changed-since", "main"],
        before=change,
        after=restore,
    )

    def med(t: Timing) -> float:
        return statistics.median(t.seconds)

    slowest = max(med(t) for t in shards)
    ratios = [
        (
            "`--changed-since`, 1 of {n} changed / full run of a 1-project repo",
            med(changed),
            med(one_t),
            1.2,
        ),
        ("warm rerun, {n} projects unchanged / `invoke --list`", med(warm), med(list_t), 3.0),
        ("slowest of 4 shards / full run ({n} projects)", slowest, med(full), 0.35),
        ("`new-project` / `invoke --list`", med(new_t), med(list_t), 1.5),
    ]
    rows = [
        f"| {label.format(n=n)} | {a:.2f} / {b:.2f} | **{a / b:.2f}** | {limit} "
        f"| {'yes' if a / b <= limit else 'NO'} |"
        for label, a, b, limit in ratios
    ]
    out = [
        f"{n}-project synthetic repo (cold run {med(cold):.1f} s)",
        "",
        "| command | median s | min s | max s | exit | note |",
        "|---|---:|---:|---:|---|---|",
        *[t.row() for t in (list_t, new_t, one_t, cold, warm, full, *shards, changed)],
        "",
        "| ratio | seconds | ratio | target | met |",
        "|---|---:|---:|---:|---|",
        *rows,
    ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
