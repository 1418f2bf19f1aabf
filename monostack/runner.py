"""Run the checks of a run: plan its cases, take unchanged ones from the cache, run the rest.

The Invoke tasks ``lint``, ``render-matrix``, ``bundle-validate`` and ``test-all`` all come
through :func:`run_checks`: it selects projects (:mod:`monostack.selection`), lists every case
(:mod:`monostack.cases`), keeps one shard of them (:mod:`monostack.shard`), looks each up in
the result cache (:mod:`monostack.cache`), runs the missed ones (:mod:`monostack.workers`) and
returns the results in a fixed order whatever finished first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
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
from monostack.checks import MONOREPO, CaseResult, Finding
from monostack.config import CONFIG_FILE, MonorepoConfig
from monostack.errors import UserError
from monostack.projects import Project
from monostack.selection import Selection, select, select_projects  # noqa: F401 - API
from monostack.workers import (  # noqa: F401 - parse_jobs, run_one, _ENTRY_POINTS: API
    _ENTRY_POINTS,
    auto_jobs,
    parse_jobs,
    run_calls,
    run_one,
)

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
    from monostack.cache import ResultCache, case_key

    root = Path(root)
    ordered = _ordered(checks)
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs {jobs}: expected a whole number of processes, 1 or more")
    asked_jobs, jobs = jobs, jobs or auto_jobs()
    selection = select(root, names, changed_since)
    config, config_case = _load_config_once(root, ordered[0])
    extra = _extra_plan(root, selection, config) if EXTRA in ordered and config else None
    store = ResultCache(root, enabled=cache)
    digests = store.digests(root)
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
    ran = run_calls(calls, root, online, jobs, progress, extra, config)
    for result in ran:
        key = keys.get((result.check, result.case))
        if key and _cacheable(result):
            store.put(key, [result])
    if shard is None:
        store.record_timings(ran)
    else:
        store.record_timings(ran, f"timings-shard-{shard[0]}-of-{shard[1]}.json")
    store.save_digests(digests)
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


def _load_config_once(root: Path, check: str) -> tuple[MonorepoConfig | None, CaseResult | None]:
    """``monorepo.yml`` for every check of the run; when it is invalid, the one case that says
    so (under the first check), and None, so the checks that need it are skipped."""
    from monostack.config import load_config

    try:
        return load_config(root), None
    except UserError as exc:
        finding = Finding.from_error(check, MONOREPO, exc, root)
        return None, CaseResult(check=check, case=CONFIG_FILE, findings=[finding])
