"""Run checks: one in this process, or several at once in worker processes, past failures.

A check that raises becomes one error case, so the other checks still report; a worker process
that dies (killed, out of memory) fails only its own check. How many processes to use is
decided from the CPUs (:func:`auto_jobs`): none at all on small machines, where starting them
costs more than it gains.
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monostack.cases import BUNDLE_VALIDATE, EXTRA, LINT, RENDER_MATRIX, SYNC_WORKFLOWS
from monostack.checks import ERROR, MONOREPO, CaseResult, Finding
from monostack.config import MonorepoConfig
from monostack.errors import UserError
from monostack.progress import make_progress
from monostack.projects import Project

PARALLEL_MIN_CPUS = 3  # on 2 CPUs worker processes cost more than they gain (measured)


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


def run_calls(calls, root: Path, online: bool, jobs: int, progress, extra, config):
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
