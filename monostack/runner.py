"""Choose the projects to check and run the checks, in parallel, past failures.

The Invoke tasks ``lint``, ``render-matrix``, ``bundle-validate`` and ``test-all`` all come
through :func:`run_checks`: it selects projects (``--project``, ``--changed-since``), runs each
check in its own process, turns a crashing check into an error case so the other checks still
report, and returns the results in a fixed order whatever finished first.
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from monostack.affected import GLOBAL_DIRS, GLOBAL_FILES, is_global_path  # noqa: F401
from monostack.cases import (
    BUNDLE_VALIDATE,
    CHECKS,
    CROSS_PROJECT,
    EXTRA,
    LINT,
    RENDER_MATRIX,
    SYNC_WORKFLOWS,
    Case,
)
from monostack.checks import ERROR, MONOREPO, CaseResult, Finding
from monostack.config import CONFIG_FILE, MonorepoConfig
from monostack.errors import UserError
from monostack.progress import make_progress
from monostack.projects import PROJECTS_DIR, TEMPLATE_DIR, Project, discover_projects

# A case whose outcome says the tool or a process failed, not the files: never remembered.
UNCACHEABLE = (
    "check crashed:",
    "worker failed:",
    "ruff not found",
    "zizmor not found",
    "ruff check failed",
    "ruff format failed",
    "zizmor failed",
)
PARALLEL_MIN_CPUS = 3  # on 2 CPUs worker processes cost more than they gain (measured)


@dataclass(frozen=True)
class Selection:
    """The projects to check, and whether the repo-wide inputs (template, tool) are in scope."""

    projects: list[Project]
    everything: bool  # False when --changed-since saw no change to the template or the tool
    reason: str = ""  # why the repo-wide checks are out of scope, when they are
    monorepo: bool = True  # lint's <monorepo> case: tool, template, unowned root CI files
    all_projects: list[Project] | None = None
    named: tuple[Project, ...] = ()  # the projects --project allows, changed or not
    changed: frozenset[str] | None = None  # paths changed since --changed-since, if given


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

    Both given: the intersection. Neither: every project. Lint's ``<monorepo>`` case is in
    scope with neither, or when ``--changed-since`` saw a global change or a change to a root
    CI file no project owns; ``--project`` alone leaves it out.
    """
    projects = discover_projects(root)
    everything = True
    reason = ""
    monorepo = not names
    chosen = projects
    changed = None
    if names:
        chosen = _by_name(projects, names)
    named = tuple(chosen)
    if changed_since is not None:
        from monostack.affected import affected

        found = affected(root, changed_since, projects)
        monorepo = found.monorepo
        changed = found.changed
        if not found.global_change:
            everything = False
            reason = f"no change to {TEMPLATE_DIR}/, monorepo.yml or the tool since {changed_since}"
            wanted = {p.dir for p in found.projects}
            chosen = [p for p in chosen if p.dir in wanted]
    return Selection(chosen, everything, reason, monorepo, projects, named, changed)


def select_projects(
    root: Path, names: list[str] | None, changed_since: str | None
) -> list[Project]:
    """The projects to check: see :func:`select`."""
    return select(root, names, changed_since).projects


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


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def auto_jobs(cpus: int | None = None) -> int:
    """Worker processes when ``--jobs`` is not given: one per CPU, but none at all (serial)
    below :data:`PARALLEL_MIN_CPUS`, where starting workers and shipping results between
    processes cost more than the second CPU gives back."""
    cpus = usable_cpus() if cpus is None else cpus
    return cpus if cpus >= PARALLEL_MIN_CPUS else 1


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
    scope: dict[str, Any] | None = None,
    extra: Any = None,
    config: MonorepoConfig | None = None,
) -> list[CaseResult]:
    """Run one check; any exception becomes an error case instead of escaping.

    ``entry`` is the (module, function) to call; worker processes get it from the parent so
    they call the same function whatever the process start method. ``tick(done, total)``
    follows render-matrix's combinations when it runs in this process. ``scope`` narrows the
    check to part of its cases (lint ``monorepo=False``, render-matrix ``cases=...``,
    bundle-validate ``cross=False``), for cache misses and shards. ``extra`` is the plan
    of the team's checks (:data:`EXTRA`), made in the parent. ``config`` is ``monorepo.yml``,
    loaded once per run by :func:`run_checks` (lint needs none).
    """
    start = time.perf_counter()
    scope = scope or {}
    try:
        fn = _entry_point(check, entry)
        if check == LINT:
            return list(fn(root, projects, jobs=jobs, **scope))
        if check == RENDER_MATRIX:
            if tick is not None and "progress" in inspect.signature(fn).parameters:
                return list(fn(root, jobs=jobs, progress=tick, config=config, **scope))
            return list(fn(root, jobs=jobs, config=config, **scope))
        if check == BUNDLE_VALIDATE:
            return list(fn(root, projects, online=online, config=config, **scope))
        if check == EXTRA:
            return list(fn(extra, jobs=scope.get("jobs", jobs)))
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


def plan_cases(
    root: Path, selection: Selection, checks: list[str], online: bool, store, digests, config
):
    """(every case the run is made of, results decided without running: skipped checks)."""
    from monostack import cases as c

    everyone = selection.all_projects or selection.projects
    planned: list[Case] = []
    decided: list[CaseResult] = []
    for check in checks:
        if config is None and check not in (LINT, EXTRA):
            reason = f"{CONFIG_FILE} is invalid (reported under {checks[0]} / {CONFIG_FILE})"
            decided.append(CaseResult(check=check, case=MONOREPO, skipped=reason))
        elif check == LINT:
            owners = c.root_owners(root)
            planned += c.lint_cases(root, selection.projects, selection.monorepo, owners)
        elif check == RENDER_MATRIX:
            if selection.everything:
                planned += c.matrix_cases(root, store, digests)
            else:
                decided += _skipped_render_matrix(selection.reason)
        elif check == BUNDLE_VALIDATE:
            planned += c.bundle_cases(everyone, selection.projects, online)
        elif check == SYNC_WORKFLOWS:
            planned += c.sync_cases(everyone)
    return planned, decided


def _extra_plan(root: Path, selection: Selection, config: MonorepoConfig):
    """What the team's checks will run; a UserError (bad declaration, a command that cannot
    start) comes before anything runs."""
    from monostack.checks.extra import load_extra_checks, plan_extra_checks

    checks = load_extra_checks(root, config.extra_checks)
    named = list(selection.named)
    return plan_extra_checks(root, checks, selection.projects, named, selection.changed)


def _cacheable(result: CaseResult) -> bool:
    return not any(f.message.startswith(UNCACHEABLE) for f in result.findings)


def _jobs_for(
    misses: list[Case], planned: list[Case], selection: Selection, hand_written: bool = False
) -> list[tuple[str, list[Project], dict]]:
    """(check, projects, scope) calls that run exactly the missed cases (a few more at most:
    a missed cross-project case reruns bundle-validate for every selected project)."""
    by_check: dict[str, list[Case]] = {}
    for case in misses:
        by_check.setdefault(case.check, []).append(case)
    calls = []
    for check in CHECKS:
        todo = by_check.get(check)
        if not todo:
            continue
        projects = [c.project for c in todo if c.project is not None]
        scope: dict[str, Any] = {}
        if check == LINT and not any(c.case == MONOREPO for c in todo):
            scope["monorepo"] = False
        elif check == LINT and hand_written:
            scope["lint_hand_written"] = True
        elif check == RENDER_MATRIX and len(todo) < sum(c.check == check for c in planned):
            scope["cases"] = sorted(c.case for c in todo)
        elif check == BUNDLE_VALIDATE:
            if not any(c.case == CROSS_PROJECT for c in todo):
                scope["cross"] = False
            elif len(projects) < len(selection.projects):
                # cross-project compares against every selected project; only the missed
                # ones get their own case again
                scope["only"] = sorted(p.dir for p in projects)
                projects = selection.projects
        calls.append((check, projects, scope))
    return calls


def run_checks(
    root: Path,
    checks: list[str],
    names: list[str] | None = None,
    changed_since: str | None = None,
    online: bool = False,
    jobs: int | None = None,
    progress: str | None = "auto",
    cache: bool = True,
    shard: tuple[int, int] | None = None,
    stats: dict[str, int] | None = None,
    lint_hand_written: bool = False,
) -> list[CaseResult]:
    """Run ``checks`` (any of :data:`CHECKS`) on the selected projects and return every case.

    Cases whose inputs are unchanged come from the result cache (``cache=False``: none do,
    nothing is stored). ``shard=(K, N)`` runs only part K of N of the cases
    (:mod:`monostack.shard`). Several checks run at once, one worker process each, when
    ``jobs`` (default :func:`auto_jobs`) is above 1; ``jobs=1`` runs them one after the
    other in this process. A check that raises gives one error case with the exception text.
    Results come in :data:`CHECKS` order, each check's cases sorted by case name.
    Bad input (unknown check or project, bad ref) raises a UserError before anything runs.
    ``lint_hand_written``: lint the team's hand-written root CI files fully (default: parsed).
    """
    from monostack.cache import Digests, ResultCache, case_key

    root = Path(root)
    ordered = _ordered(checks)
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs {jobs}: expected a whole number of processes, 1 or more")
    asked_jobs, jobs = jobs, jobs or auto_jobs()
    selection = select(root, names, changed_since)
    config, config_case = _load_config_once(root, ordered[0])
    extra = _extra_plan(root, selection, config) if EXTRA in ordered and config else None
    store = ResultCache(root, enabled=cache)
    digests = Digests(root)
    planned, decided = plan_cases(root, selection, ordered, online, store, digests, config)
    if lint_hand_written:  # a different scope for <monorepo>: a different result
        planned = [
            replace(c, extra="hand-written") if (c.check, c.case) == (LINT, MONOREPO) else c
            for c in planned
        ]
    if config_case is not None:
        decided.insert(0, config_case)
    every_case = list(planned)
    if shard is not None:
        planned, decided = _shard(planned, decided, shard, store, selection)
    # The team's checks run commands monostack cannot see into: never cached, and in shard 1.
    run_extra = extra is not None and (shard is None or shard[0] == 1)
    if run_extra and not extra.invocations:
        decided += list(extra.skipped)  # nothing to run (none declared, none selected)
        run_extra = False

    results: list[CaseResult] = list(decided)
    keys: dict[tuple[str, str], str] = {}
    misses: list[Case] = []
    for case in planned:
        key = None
        if not (online and case.check == BUNDLE_VALIDATE):  # online: the workspace decides
            key = (
                case_key(store.fingerprint, digests, case.check, case.case, case.inputs, case.extra)
                if cache
                else None
            )
        hit = store.get(key) if key else None
        if hit is None:
            misses.append(case)
            if key:
                keys[(case.check, case.case)] = key
        else:
            results += [replace(r, seconds=0.0) for r in hit]
    if stats is not None:
        stats.update(cases=len(planned), cached=len(planned) - len(misses))

    calls = _jobs_for(misses, every_case, selection, lint_hand_written)
    if run_extra:
        # the team's commands are separate programs, often waiting on I/O: their own default
        calls.append((EXTRA, selection.projects, {"jobs": asked_jobs}))
    ran = _run_calls(calls, root, online, jobs, progress, extra, config)
    for result in ran:
        key = keys.get((result.check, result.case))
        if key and _cacheable(result):
            store.put(key, [result])
    if shard is None:
        store.record_timings(ran)
    else:
        store.record_timings(ran, f"timings-shard-{shard[0]}-of-{shard[1]}.json")
    have = {(r.check, r.case) for r in results}  # from the cache: a rerun does not repeat them
    results += [r for r in ran if (r.check, r.case) not in have]
    # the team's checks keep their own order (by check, then case); the others sort by case
    results.sort(key=_report_order)
    if config_case is not None:  # the reason the other checks were skipped comes first
        results.remove(config_case)
        results.insert(0, config_case)
    return results


def _report_order(result: CaseResult) -> tuple[int, str]:
    """Checks in :data:`CHECKS` order, cases by name; the team's checks (named by their
    declaration) keep their own order, last."""
    if result.check in CHECKS and result.check != EXTRA:
        return CHECKS.index(result.check), result.case
    return CHECKS.index(EXTRA), ""


def _shard(planned, decided, shard, store, selection):
    from monostack.cases import cost, group, startup
    from monostack.shard import pick

    timings = store.timings()
    n = len(selection.all_projects or selection.projects)
    mine = pick(
        planned,
        shard,
        lambda c: cost(c, timings, n),
        lambda c: c.id,
        group,
        lambda c: startup(c, timings),
    )
    return mine, (decided if shard[0] == 1 else [])


def _run_calls(calls, root: Path, online: bool, jobs: int, progress, extra, config):
    """Run the calls, in parallel worker processes when ``jobs`` > 1 and there are several."""
    parallel = len(calls) > 1 and jobs > 1
    # Start the worker processes before the progress display starts its refresh thread.
    pools, futures = _submit(calls, root, online, jobs, extra, config) if parallel else ([], {})
    done: dict[str, list[CaseResult]] = {}
    try:
        with make_progress(progress) as bar:
            if parallel:
                for check, projects, _ in calls:
                    bar.start(check, _detail(check, projects, jobs))
                done.update(_collect(futures, bar))
            else:
                for check, projects, scope in calls:
                    start = time.perf_counter()
                    bar.start(check, _detail(check, projects, jobs))
                    done[check] = run_one(
                        check,
                        root,
                        projects,
                        online,
                        jobs,
                        tick=lambda n, total, check=check: bar.advance(check, n, total),
                        scope=scope,
                        extra=extra,
                        config=config,
                    )
                    bar.done(check, done[check], time.perf_counter() - start)
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
    return [r for check, _, _ in calls for r in done[check]]


def _detail(check: str, projects: list[Project], jobs: int | None) -> str:
    if check in (LINT, BUNDLE_VALIDATE):
        n = len(projects)
        return f" ({n} project{'s' if n != 1 else ''})"
    if check == RENDER_MATRIX and jobs and jobs > 1:
        return f" ({jobs} jobs)"
    return ""


def _load_config_once(root: Path, check: str) -> tuple[MonorepoConfig | None, CaseResult | None]:
    """``monorepo.yml`` for every check of the run; when it is invalid, the one case that says
    so (under the first check), and None, so the checks that need it are skipped."""
    from monostack.config import load_config

    try:
        return load_config(root), None
    except UserError as exc:
        finding = Finding.from_error(check, MONOREPO, exc, root)
        return None, CaseResult(check=check, case=CONFIG_FILE, findings=[finding])


def _submit(calls, root, online, jobs, extra=None, config=None):
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
    for check, projects, scope in calls:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
        pools.append(pool)
        entry = _ENTRY_POINTS[check]
        future = pool.submit(
            run_one, check, root, projects, online, jobs, entry, None, scope, extra, config
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
