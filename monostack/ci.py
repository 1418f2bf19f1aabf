"""The monorepo's own CI: what to run (the plan) and whether it all passed (the required check).

Standard library only, so a CI job can run it straight from a checkout::

    python -m monostack.ci plan affected.json            # key=value lines for the CI's outputs
    python -m monostack.ci plan --format azure affected.json     # Azure DevOps output variables
    python -m monostack.ci plan --format gitlab --base SHA affected.json > plan.env  # GitLab
    python -m monostack.ci merge-cache .monostack-cache shard-caches/*  # one cache from shards
    python -m monostack.ci required --needs-json "$NEEDS"  # GitHub: toJSON(needs)
    python -m monostack.ci required --result plan=Succeeded --result shards=Skipped  # others
    python -m monostack.ci required --results-dir .monostack-ci/results --expect plan  # GitLab

The required check is the one a team marks as required: CI systems never report a workflow
or job that a path filter skipped, so a per-project check would leave a pull request that
does not touch the project waiting forever. This one always runs and reports: it fails when
any job it waits for failed or was cancelled, and passes when they passed or had nothing to
do (skipped).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

PROJECTS_PER_SHARD = 25  # lint + bundle-validate of ~25 projects: a few minutes on 2 CPUs
TEMPLATE_SHARE = 25  # render-matrix's weight, in projects, when the template is in play
MAX_SHARDS = 8

# Job results as GitHub Actions, Azure DevOps and GitLab CI spell them, lower-cased.
PASSED = {"success", "succeeded", "succeededwithissues", "skipped", "success_with_warnings"}
FAILED = {"failure", "failed", "cancelled", "canceled", "abandoned", "timed_out"}


# ------------------------------------------------------------------------------------- plan
def shard_count(projects: int, everything: bool) -> int:
    """How many shards a run of ``projects`` projects (plus the template, when global) needs."""
    weight = projects + (TEMPLATE_SHARE if everything else 0)
    return max(1, min(MAX_SHARDS, math.ceil(weight / PROJECTS_PER_SHARD)))


def plan(affected: Mapping, test_dirs: Sequence[str] | None = None) -> dict[str, str]:
    """CI outputs from ``invoke affected --format json``: whether test-all has anything to do,
    the shard list, and the affected projects that have unit tests (``test_dirs``: their
    ``projects/<dir>`` paths; default: every affected project)."""
    projects = [p["path"] for p in affected.get("projects", [])]
    everything = bool(affected.get("global"))
    run = bool(projects) or everything or bool(affected.get("monorepo"))
    total = shard_count(len(projects), everything) if run else 0
    tested = [p for p in projects if test_dirs is None or p in test_dirs]
    shards = [f"{k}/{total}" for k in range(1, total + 1)]
    return {
        "run": "true" if run else "false",
        "shard_total": str(total),
        "shards": json.dumps(shards),
        "unit_tests": "true" if tested else "false",
        "projects": json.dumps(tested),
        # Azure DevOps matrices: {"leg name": {"variable": "value"}}
        "shard_matrix": json.dumps(
            {f"shard_{k}": {"shard": s} for k, s in enumerate(shards, 1)}, separators=(",", ":")
        ),
        "project_matrix": json.dumps(
            {"p_" + p.rsplit("/", 1)[-1]: {"project": p} for p in tested}, separators=(",", ":")
        ),
    }


def gitlab_lines(outputs: Mapping[str, str], base: str) -> list[str]:
    """The plan as shell assignments for GitLab jobs to source (``. plan.env``): GitLab fixes a
    job's ``parallel:`` when it creates the pipeline, so a shard reads whether to run at all,
    and the unit-test job which projects to test, from here."""
    values = {
        "MONOSTACK_RUN": outputs["run"],
        "MONOSTACK_SHARD_TOTAL": outputs["shard_total"],
        "MONOSTACK_UNIT_TESTS": " ".join(json.loads(outputs["projects"])),
        "MONOSTACK_BASE": base,
    }
    return [f"{name}={shlex.quote(value)}" for name, value in values.items()]


def projects_with_tests(root: Path, paths: Sequence[str]) -> list[str]:
    """The project paths holding a ``tests/`` folder and a ``test-requirements.txt``."""
    return [
        p
        for p in paths
        if (root / p / "tests").is_dir() and (root / p / "test-requirements.txt").is_file()
    ]


# --------------------------------------------------------------------------------- required
def decide(results: Mapping[str, str]) -> tuple[bool, list[str]]:
    """(passed, one line per job). A job that failed, was cancelled, or reports anything
    unknown fails the check; success and skipped (nothing to do) pass it."""
    lines = []
    passed = True
    for job, result in sorted(results.items()):
        value = str(result or "").strip().lower()
        ok = value in PASSED
        if not ok:
            passed = False
        verdict = "ok" if ok else ("FAILED" if value in FAILED else "FAILED (unknown result)")
        lines.append(f"{job}: {result or '(none)'} - {verdict}")
    if not results:
        passed = False
        lines.append("no job results given: nothing to decide on")
    return passed, lines


def needs_results(needs_json: str) -> dict[str, str]:
    """GitHub's ``toJSON(needs)``: ``{"job": {"result": "success", "outputs": {...}}}``."""
    data = json.loads(needs_json or "{}")
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object of jobs")
    return {job: (info or {}).get("result", "") for job, info in data.items()}


def results_dir(folder: Path | None, expect: Sequence[str]) -> dict[str, str]:
    """GitLab: each job's ``after_script`` writes ``JOB=STATUS`` (``$CI_JOB_STATUS``) into a
    file of ``folder``, handed on as an artifact. A job in ``expect`` that wrote nothing was
    cancelled or never ran: it counts as such, never as a pass."""
    results = {job: "missing (cancelled, or never ran)" for job in expect}
    for path in sorted(folder.glob("*.result")) if folder and folder.is_dir() else []:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            job, sep, value = line.strip().partition("=")
            if sep and job:
                results[job] = value
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monostack.ci", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_plan = sub.add_parser("plan", help="CI outputs from `invoke affected --format json`")
    p_plan.add_argument("affected_json", type=Path)
    p_plan.add_argument("--format", choices=("github", "azure", "gitlab"), default="github")
    p_plan.add_argument("--base", default="", help="gitlab: the commit compared against")
    p_merge = sub.add_parser("merge-cache", help="fold shard cache folders into one")
    p_merge.add_argument("dest", type=Path)
    p_merge.add_argument("sources", type=Path, nargs="*")
    p_req = sub.add_parser("required", help="the one required check: did every job pass?")
    p_req.add_argument("--needs-json", help="GitHub Actions: the toJSON(needs) of the job")
    p_req.add_argument("--result", action="append", default=[], metavar="JOB=RESULT")
    p_req.add_argument("--results-dir", type=Path, help="GitLab: the jobs' JOB=STATUS files")
    p_req.add_argument("--expect", action="append", default=[], metavar="JOB")
    args = parser.parse_args(argv)

    if args.command == "plan":
        try:
            affected = json.loads(args.affected_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"error: {args.affected_json}: {exc}", file=sys.stderr)
            return 2
        paths = [p["path"] for p in affected.get("projects", [])]
        outputs = plan(affected, projects_with_tests(Path.cwd(), paths))
        if args.format == "gitlab":
            print("\n".join(gitlab_lines(outputs, args.base)))
            return 0
        for key, value in outputs.items():
            if args.format == "azure":
                print(f"##vso[task.setvariable variable={key};isOutput=true]{value}")
            else:
                print(f"{key}={value}")
        return 0
    if args.command == "merge-cache":
        from monostack.cache import merge_caches

        added = merge_caches(args.dest, [s for s in args.sources if s.is_dir()])
        print(f"{added} cache entries merged into {args.dest}")
        return 0

    results: dict[str, str] = {}
    if args.results_dir is not None or args.expect:
        results.update(results_dir(args.results_dir, args.expect))
    try:
        if args.needs_json is not None:
            results.update(needs_results(args.needs_json))
    except ValueError as exc:
        print(f"error: --needs-json: {exc}", file=sys.stderr)
        return 2
    for pair in args.result:
        job, sep, value = pair.partition("=")
        if not sep or not job:
            print(f"error: --result {pair!r}: expected JOB=RESULT", file=sys.stderr)
            return 2
        results[job] = value
    passed, lines = decide(results)
    for line in lines:
        print(line)
    print("monostack: required: " + ("passed" if passed else "failed"))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
