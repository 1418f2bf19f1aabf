"""Choose the projects to check and run the checks, in parallel, past failures.

The Invoke tasks ``lint``, ``render-matrix``, ``bundle-validate`` and ``test-all`` all come
through :func:`run_checks`: it selects projects (``--project``, ``--changed-since``), runs each
check in its own process, turns a crashing check into an error case so the other checks still
report, and returns the results in a fixed order whatever finished first.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from monostack.checks import ERROR, MONOREPO, CaseResult, Finding
from monostack.checks.ci_files import YAMLLINT_FILES, ZIZMOR_FILES
from monostack.config import CONFIG_FILE, MonorepoConfig
from monostack.errors import UserError
from monostack.projects import PROJECTS_DIR, TEMPLATE_DIR, Project, discover_projects

LINT = "lint"
RENDER_MATRIX = "render-matrix"
BUNDLE_VALIDATE = "bundle-validate"
SYNC_WORKFLOWS = "sync-workflows"
EXTRA = "extra-checks"  # the team's own checks of monorepo.yml (monostack.checks.extra)
CHECKS = (LINT, RENDER_MATRIX, BUNDLE_VALIDATE, SYNC_WORKFLOWS, EXTRA)  # also the report order

# A change under these selects every project: they shape what every project is checked against
# (the template, the shared config, the tool and its lint configuration).
GLOBAL_DIRS = (TEMPLATE_DIR, "monostack")
GLOBAL_FILES = ("monorepo.yml", "pyproject.toml", "tasks.py", *YAMLLINT_FILES, *ZIZMOR_FILES)


@dataclass(frozen=True)
class Selection:
    """The projects to check, and whether the repo-wide inputs (template, tool) are in scope."""

    projects: list[Project]
    everything: bool  # False when --changed-since saw no change to the template or the tool
    reason: str = ""  # why the repo-wide checks are out of scope, when they are
    named: tuple[Project, ...] = ()  # the projects --project allows, changed or not
    changed: frozenset[str] | None = None  # paths changed since --changed-since, if given


def is_global_path(path: str) -> bool:
    """True when a change to ``path`` (repo-relative, POSIX) affects every project."""
    return path in GLOBAL_FILES or any(path.startswith(d + "/") for d in GLOBAL_DIRS)


def _by_name(projects: list[Project], names: Iterable[str]) -> list[Project]:
    wanted: set[str] = set()
    for raw in names:
        name = raw.strip().rstrip("/")
        name = name.removeprefix(PROJECTS_DIR + "/")
        match = [p for p in projects if name in (p.name, p.dir)]
        if not match:
            known = ", ".join(p.name for p in projects) or f"none yet in {PROJECTS_DIR}/"
            raise UserError(
                f"--project {raw!r}: no such project (known: {known}); give a project name or "
                f"its directory under {PROJECTS_DIR}/"
            )
        wanted.update(p.dir for p in match)
    return [p for p in projects if p.dir in wanted]


def select(root: Path, names: list[str] | None, changed_since: str | None) -> Selection:
    """Projects named by ``names`` (name or directory) and/or touched since ``changed_since``.

    Both given: the intersection. Neither: every project.
    """
    projects = discover_projects(root)
    everything = True
    reason = ""
    chosen = projects
    paths = None
    if names:
        chosen = _by_name(projects, names)
    named = tuple(chosen)
    if changed_since is not None:
        from monostack.gitutil import changed_paths

        paths = frozenset(changed_paths(root, changed_since))
        if not any(is_global_path(p) for p in paths):
            everything = False
            reason = f"no change to {TEMPLATE_DIR}/, monorepo.yml or the tool since {changed_since}"
            touched = {p.split("/", 2)[1] for p in paths if p.startswith(PROJECTS_DIR + "/")}
            chosen = [p for p in chosen if p.dir in touched]
    return Selection(chosen, everything, reason, named, paths)


def parse_jobs(value: Any) -> int | None:
    """``--jobs``: None/"" means automatic, otherwise a whole number >= 1."""
    if value is None or value == "":
        return None
    try:
        jobs = int(value)
    except (TypeError, ValueError):
        jobs = 0
    if jobs < 1:
        raise UserError(f"--jobs {value!r}: expected a whole number of processes, 1 or more")
    return jobs


# -- running one check (in a worker process or in-process) -------------------------------------

# check name -> (module, function). Looked up at call time, so each worker process imports only
# what its check needs; the parent passes the pair to the worker, so a test can point a check at
# another function (monkeypatching the function itself only reaches in-process runs, jobs=1).
_ENTRY_POINTS = {
    LINT: ("monostack.checks.lint", "run_lint"),
    RENDER_MATRIX: ("monostack.checks.render_matrix", "run_render_matrix"),
    BUNDLE_VALIDATE: ("monostack.checks.bundle_validate", "run_bundle_validate"),
    SYNC_WORKFLOWS: ("monostack.workflows", "sync_findings"),
    EXTRA: ("monostack.checks.extra", "run_extra_checks"),
}


def _entry_point(check: str, entry: tuple[str, str] | None = None):
    module, function = entry or _ENTRY_POINTS[check]
    return getattr(importlib.import_module(module), function)


def _crash_case(check: str, exc: BaseException, seconds: float) -> CaseResult:
    if isinstance(exc, UserError):
        finding = Finding.from_error(check, MONOREPO, exc)
    else:
        text = str(exc).strip() or "(no message)"
        message = f"check crashed: {type(exc).__name__}: {text}"
        finding = Finding(check, MONOREPO, "", None, ERROR, message)
    return CaseResult(check=check, case=MONOREPO, findings=[finding], seconds=seconds)


def run_one(
    check: str,
    root: Path,
    projects: list[Project],
    online: bool = False,
    jobs: int | None = None,
    entry: tuple[str, str] | None = None,
    tick: Callable[[int, int], None] | None = None,
    extra: Any = None,
    config: MonorepoConfig | None = None,
    lint_hand_written: bool = False,
) -> list[CaseResult]:
    """Run one check; any exception becomes an error case instead of escaping.

    ``config`` is ``monorepo.yml``, loaded once per run by :func:`run_checks` (lint needs none).

    ``entry`` is the (module, function) to call; worker processes get it from the parent so
    they call the same function whatever the process start method. ``tick(done, total)``
    follows render-matrix's combinations when it runs in this process. ``extra`` is the plan
    of the team's checks (:data:`EXTRA`), made in the parent.
    """
    start = time.perf_counter()
    try:
        fn = _entry_point(check, entry)
        if check == LINT:
            if lint_hand_written:
                return list(fn(root, projects, jobs=jobs, lint_hand_written=True))
            return list(fn(root, projects, jobs=jobs))
        if check == RENDER_MATRIX:
            if tick is not None and "progress" in inspect.signature(fn).parameters:
                return list(fn(root, jobs=jobs, progress=tick, config=config))
            return list(fn(root, jobs=jobs, config=config))
        if check == BUNDLE_VALIDATE:
            return list(fn(root, projects, online=online, config=config))
        if check == EXTRA:
            return list(fn(extra, jobs=jobs))
        findings = list(fn(root, config=config))
        return [
            CaseResult(
                check=check,
                case=MONOREPO,
                findings=findings,
                seconds=time.perf_counter() - start,
            )
        ]
    except Exception as exc:  # a broken check must not hide the others
        return [_crash_case(check, exc, time.perf_counter() - start)]


# -- progress ---------------------------------------------------------------------------------


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start(self, check: str, detail: str) -> None:
        return None

    def done(self, check: str, results: list[CaseResult], seconds: float) -> None:
        return None

    def advance(self, check: str, done: int, total: int) -> None:
        return None


def _outcome(results: list[CaseResult]) -> str:
    failed = sum(1 for r in results if r.failed)
    skipped = sum(1 for r in results if r.skipped is not None)
    text = f"{len(results)} case{'s' if len(results) != 1 else ''}, {failed} failed"
    return text + (f", {skipped} skipped" if skipped else "")


class _Plain(_Quiet):
    """``running lint...`` / ``lint: 3 cases, 0 failed (1.2 s)`` lines, for logs and CI."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def start(self, check: str, detail: str) -> None:
        self.stream.write(f"running {check}{detail}...\n")
        self.stream.flush()

    def done(self, check: str, results: list[CaseResult], seconds: float) -> None:
        self.stream.write(f"{check}: {_outcome(results)} ({seconds:.1f} s)\n")
        self.stream.flush()


class _Rich(_Quiet):
    """A live spinner per check on a terminal; removed when the run ends."""

    def __init__(self, stream: IO[str]):
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(finished_text="[green]done"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(file=stream, stderr=stream is sys.stderr),
            transient=True,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, check: str, detail: str) -> None:
        self.tasks[check] = self.progress.add_task(f"{check}{detail}", total=1)

    def advance(self, check: str, done: int, total: int) -> None:
        self.progress.update(self.tasks[check], description=f"{check} ({done}/{total})")

    def done(self, check: str, results: list[CaseResult], seconds: float) -> None:
        if check not in self.tasks:  # finished without running (skipped)
            self.start(check, "")
        self.progress.update(
            self.tasks[check], completed=1, description=f"{check}: {_outcome(results)}"
        )


def make_progress(mode: str | None, stream: IO[str] | None = None):
    """``auto`` (rich on a terminal, plain lines otherwise), ``rich``, ``plain`` or None/off."""
    stream = stream or sys.stderr
    if mode in (None, "off", "quiet"):
        return _Quiet()
    if mode == "auto":
        mode = "rich" if stream.isatty() else "plain"
    if mode == "rich":
        return _Rich(stream)
    if mode == "plain":
        return _Plain(stream)
    raise ValueError(f"unknown progress mode {mode!r}")


# -- running several checks -------------------------------------------------------------------


def _ordered(checks: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(checks))
    unknown = [c for c in wanted if c not in CHECKS]
    if unknown:
        raise UserError(f"unknown check {unknown[0]!r}; choose from {', '.join(CHECKS)}")
    if not wanted:
        raise UserError(f"no check to run; choose from {', '.join(CHECKS)}")
    return [c for c in CHECKS if c in wanted]


def _skipped_render_matrix(reason: str) -> list[CaseResult]:
    return [CaseResult(check=RENDER_MATRIX, case=MONOREPO, skipped=reason)]


def _detail(check: str, selection: Selection, jobs: int | None) -> str:
    if check in (LINT, BUNDLE_VALIDATE):
        n = len(selection.projects)
        return f" ({n} project{'s' if n != 1 else ''})"
    if check == RENDER_MATRIX and jobs:
        return f" ({jobs} job{'s' if jobs != 1 else ''})"
    return ""


def _extra_plan(root: Path, selection: Selection, config: MonorepoConfig):
    """What the team's checks will run; a UserError (bad declaration, a command that cannot
    start) comes before anything runs."""
    from monostack.checks.extra import load_extra_checks, plan_extra_checks

    checks = load_extra_checks(root, config.extra_checks)
    named = list(selection.named)
    return plan_extra_checks(root, checks, selection.projects, named, selection.changed)


def run_checks(
    root: Path,
    checks: list[str],
    names: list[str] | None = None,
    changed_since: str | None = None,
    online: bool = False,
    jobs: int | None = None,
    progress: str | None = "auto",
    lint_hand_written: bool = False,
) -> list[CaseResult]:
    """Run ``checks`` (any of :data:`CHECKS`) on the selected projects and return every case.

    ``lint_hand_written``: lint the team's hand-written root CI files fully (default: parsed).

    Several checks run at once, one worker process each (``jobs=1``: one after the other, in
    this process); render-matrix also spreads its combinations over ``jobs`` processes. A check
    that raises gives one error case with the exception text. Results come in :data:`CHECKS`
    order, each check's cases sorted by case name, so output is stable across runs.
    Bad input (unknown check or project, bad ref) raises a UserError before anything runs.
    """
    root = Path(root)
    ordered = _ordered(checks)
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs {jobs}: expected a whole number of processes, 1 or more")
    selection = select(root, names, changed_since)
    config, config_case = _load_config_once(root, ordered[0])
    extra = _extra_plan(root, selection, config) if EXTRA in ordered and config else None
    done: dict[str, list[CaseResult]] = {}
    todo = []
    for check in ordered:
        if check == RENDER_MATRIX and not selection.everything:
            done[check] = _skipped_render_matrix(selection.reason)
        elif config is None and check != LINT:
            reason = f"{CONFIG_FILE} is invalid (reported under {ordered[0]} / {CONFIG_FILE})"
            done[check] = [CaseResult(check=check, case=MONOREPO, skipped=reason)]
        elif check == EXTRA and not extra.invocations:
            done[check] = list(extra.skipped)  # nothing to run (none declared, none selected)
        else:
            todo.append(check)

    parallel = len(todo) > 1 and jobs != 1
    # Start the worker processes before the progress display starts its refresh thread.
    pools, futures = (
        _submit(todo, root, selection, online, jobs, extra, config, lint_hand_written)
        if parallel
        else ([], {})
    )
    try:
        with make_progress(progress) as bar:
            if parallel:
                for check, _ in futures.values():
                    bar.start(check, _detail(check, selection, jobs))
            for check, results in done.items():  # skipped without running
                bar.done(check, results, 0.0)
            if parallel:
                done.update(_collect(futures, bar))
            else:
                for check in todo:
                    start = time.perf_counter()
                    bar.start(check, _detail(check, selection, jobs))
                    done[check] = run_one(
                        check,
                        root,
                        selection.projects,
                        online,
                        jobs,
                        tick=lambda n, total, check=check: bar.advance(check, n, total),
                        extra=extra,
                        config=config,
                        lint_hand_written=lint_hand_written,
                    )
                    bar.done(check, done[check], time.perf_counter() - start)
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)

    ordered_results: list[CaseResult] = [config_case] if config_case else []
    for check in ordered:  # the team's checks come sorted by check, then case
        ordered_results.extend(done[check] if check == EXTRA else sorted(done[check], key=_case))
    return ordered_results


def _case(result: CaseResult) -> str:
    return result.case


def _load_config_once(root: Path, check: str) -> tuple[MonorepoConfig | None, CaseResult | None]:
    """``monorepo.yml`` for every check of the run; when it is invalid, the one case that says
    so (under the first check), and None, so the checks that need it are skipped."""
    from monostack.config import load_config

    try:
        return load_config(root), None
    except UserError as exc:
        finding = Finding.from_error(check, MONOREPO, exc, root)
        return None, CaseResult(check=check, case=CONFIG_FILE, findings=[finding])


def _submit(todo, root, selection, online, jobs, extra=None, config=None, hand_written=False):
    """Start one worker process per check.

    Each check gets its own single-process pool, so a worker that dies (killed, out of memory)
    fails only its own check instead of breaking a shared pool and every check queued on it.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: workers start from a clean process, not a fork of this (threaded) one
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    pools, futures = [], {}
    for check in todo:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
        pools.append(pool)
        entry = _ENTRY_POINTS[check]
        future = pool.submit(
            run_one,
            check,
            root,
            selection.projects,
            online,
            jobs,
            entry,
            extra=extra,
            config=config,
            lint_hand_written=hand_written,
        )
        futures[future] = (check, time.perf_counter())
    return pools, futures


def _collect(futures, bar) -> dict[str, list[CaseResult]]:
    """Results as they finish; a lost worker becomes an error case for its check."""
    from concurrent.futures import as_completed

    results: dict[str, list[CaseResult]] = {}
    for future in as_completed(futures):
        check, started = futures[future]
        seconds = time.perf_counter() - started
        try:
            results[check] = future.result()
        except Exception as exc:  # e.g. the worker process died
            results[check] = [_crash_case(check, exc, seconds)]
        bar.done(check, results[check], seconds)
    return results
