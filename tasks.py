"""Invoke tasks for the monorepo: ``invoke --list`` shows them, ``invoke --help TASK`` explains one.

Each task parses its options, calls one function in the ``monostack`` package, prints the result
and sets the exit code. All logic lives in ``monostack``; heavy imports happen inside the tasks.
"""

import sys
from pathlib import Path

from invoke import task

# Invoke turns off .pyc writing for everything it imports; without it every task would compile
# the monostack modules it uses from source on every run (a fresh clone, CI). Python's own
# setting (-B, PYTHONDONTWRITEBYTECODE) still applies; __pycache__/ is git-ignored.
sys.dont_write_bytecode = bool(sys.flags.dont_write_bytecode)

from monostack.cli import echo, parse_answers, user_errors  # noqa: E402 - after the pyc setting

ROOT = Path(__file__).resolve().parent


@task(
    help={
        "name": "Project name: 3+ characters, no space, dot, slash or backslash (e.g. churn).",
        "unity-catalog": "Register the model in Unity Catalog instead of the workspace registry.",
        "feature-store": "Include feature-engineering code, job and tests.",
        "train-once": "Train in staging only; prod promotes its validated model (needs UC).",
        "schema-name": "Unity Catalog schema for the model (default: the project name).",
        "inference-table": (
            "Predictions table (in the project's schema) batch inference writes and the quality "
            "monitor watches; Unity Catalog only."
        ),
        "answer": "Any other template parameter, as NAME=VALUE (repeatable).",
        "dry-run": "List the files that would be written; write nothing.",
    },
    iterable=["answer"],
)
@user_errors
def new_project(
    c,
    name,
    unity_catalog=False,
    feature_store=False,
    train_once=False,
    schema_name=None,
    inference_table=None,
    answer=None,
    dry_run=False,
):
    """Render a new project from stack_template/ into projects/<name>/."""
    from monostack.projects import new_project as create

    answers = parse_answers(answer)
    if unity_catalog:
        answers["include_models_in_unity_catalog"] = True
    if feature_store:
        answers["include_feature_store"] = True
    if train_once:
        answers["train_once"] = True
    if schema_name is not None:
        answers["schema_name"] = schema_name
    if inference_table is not None:
        answers["inference_table_name"] = inference_table
    result = create(ROOT, name, answers, dry_run=dry_run)
    rel = result.path.relative_to(ROOT)
    verb = "Would create" if dry_run else "Created"
    echo(f"{verb} project {result.name!r} in {rel}/ ({len(result.files)} files):")
    for path in result.files:
        echo(f"  {rel}/{path}")
    for note in result.notes:
        echo(f"note: {note}")
    if not dry_run:
        echo("")
        echo("Next: run `invoke sync-workflows` to copy its CI files into the repo root.")


# -- checks: lint, render-matrix, bundle-validate, test-all (issue 5) ---------------------------

_SELECT_HELP = {
    "project": "Check only project NAME (its name or its directory under projects/); repeatable.",
    "changed-since": (
        "Check only projects with files changed since this git ref (committed, staged, "
        "unstaged or untracked), e.g. origin/main; a change to stack_template/, monorepo.yml "
        "or the tool selects all."
    ),
    "junit-xml": "Also write JUnit XML (one testcase per check and case) to this path.",
}
_JOBS_HELP = (
    "Worker processes to use, 1 or more (default: one per CPU, or 1 on a 1-2 CPU machine, "
    "where processes cost more than they gain)."
)
_ONLINE_HELP = (
    "Also run `databricks bundle validate -t TARGET` per project when the databricks CLI "
    "and credentials are present (otherwise reported as skipped)."
)
_STRICT_HELP = "Fail on warnings too (unknown bundle fields, yamllint warnings, ...)."
_NO_CACHE_HELP = "Run every case, ignoring and not updating the result cache (.monostack-cache/)."
_SHARD_HELP = (
    "Run only part K of N of the cases, e.g. 2/4 (cost-balanced, deterministic; "
    "every case is in exactly one part)."
)
# Defaults of the check tasks from Invoke's configuration, e.g. invoke.yaml beside tasks.py:
#   monostack: {jobs: 4, junit_xml: reports/junit.xml, online: true, strict: true,
#               lint_hand_written: true}
# A command-line option wins over the configuration.
SETTINGS = ("jobs", "junit_xml", "online", "strict", "lint_hand_written")


def _settings(c):
    """The ``monostack`` section of Invoke's configuration, checked for unknown names."""
    from monostack.errors import UserError

    section = c.config.get("monostack") or {}
    if not hasattr(section, "items"):
        raise UserError("invoke configuration: `monostack` must be a mapping of settings")
    unknown = sorted(set(section) - set(SETTINGS))
    if unknown:
        raise UserError(
            f"invoke configuration: unknown setting monostack.{unknown[0]}; "
            f"known: {', '.join(SETTINGS)}"
        )
    return dict(section)


def _check(c, checks, title, project, changed_since, junit_xml, jobs=None, **flags):
    """Shared body of the check tasks: run, report, exit non-zero on any error finding (or
    any warning, with --strict)."""
    from invoke.exceptions import Exit

    from monostack import runner
    from monostack.report import emit, output_path
    from monostack.shard import parse_shard

    settings = _settings(c)
    junit_xml = junit_xml or settings.get("junit_xml")
    jobs = jobs if jobs is not None else settings.get("jobs")
    online = bool(flags.get("online") or settings.get("online"))
    strict = bool(flags.get("strict") or settings.get("strict"))
    if junit_xml:
        output_path(junit_xml)
    stats = {}
    results = runner.run_checks(
        ROOT,
        checks,
        names=list(project or ()),
        changed_since=changed_since,
        online=online,
        jobs=runner.parse_jobs(jobs),
        lint_hand_written=bool(settings.get("lint_hand_written")),
        cache=not flags.get("no_cache"),
        shard=parse_shard(flags.get("shard")),
        stats=stats,
    )
    if stats.get("cached"):
        echo(f"{stats['cached']} of {stats['cases']} cases unchanged: results from the cache")
    code = emit(results, title=title, junit_xml=junit_xml, strict=strict)
    if code:
        raise Exit(code=code)


_CHECK_HELP = {**_SELECT_HELP, "strict": _STRICT_HELP, "no-cache": _NO_CACHE_HELP}


@task(help=_CHECK_HELP, iterable=["project"], auto_shortflags=False)
@user_errors
def lint(c, project=None, changed_since=None, junit_xml=None, strict=False, no_cache=False):
    """ruff, yamllint, CI schemas, zizmor and Jinja2 syntax over the tool, projects and root CI."""
    flags = {"strict": strict, "no_cache": no_cache}
    _check(c, ["lint"], "lint", project, changed_since, junit_xml, **flags)


@task(help={**_CHECK_HELP, "jobs": _JOBS_HELP}, iterable=["project"], auto_shortflags=False)
@user_errors
def render_matrix(
    c, project=None, changed_since=None, junit_xml=None, jobs=None, strict=False, no_cache=False
):
    """Render every template choice combination in memory and check each one."""
    title = "render-matrix"
    flags = {"strict": strict, "no_cache": no_cache}
    _check(c, [title], title, project, changed_since, junit_xml, jobs, **flags)


@task(help={**_CHECK_HELP, "online": _ONLINE_HELP}, iterable=["project"], auto_shortflags=False)
@user_errors
def bundle_validate(
    c, project=None, changed_since=None, junit_xml=None, online=False, strict=False, no_cache=False
):
    """Validate each project's databricks.yml offline, and names across projects."""
    title = "bundle-validate"
    flags = {"online": online, "strict": strict, "no_cache": no_cache}
    _check(c, [title], title, project, changed_since, junit_xml, **flags)


@task(
    help={**_CHECK_HELP, "jobs": _JOBS_HELP, "online": _ONLINE_HELP, "shard": _SHARD_HELP},
    iterable=["project"],
    auto_shortflags=False,
)
@user_errors
def test_all(
    c,
    project=None,
    changed_since=None,
    junit_xml=None,
    jobs=None,
    online=False,
    strict=False,
    no_cache=False,
    shard=None,
):
    """lint, render-matrix, bundle-validate, sync-workflows --check and the team's extra checks."""
    checks = ["lint", "render-matrix", "bundle-validate", "sync-workflows", "extra-checks"]
    flags = {"online": online, "strict": strict, "no_cache": no_cache, "shard": shard}
    _check(c, checks, "test-all", project, changed_since, junit_xml, jobs, **flags)


@task(
    help={
        "changed-since": "Git ref to compare with (committed, staged, unstaged and untracked "
        "changes count), e.g. origin/main; without it every project is affected.",
        "format": "text (default) or json (for scripts and CI matrices).",
    },
    auto_shortflags=False,
)
@user_errors
def affected(c, changed_since=None, format="text"):
    """The projects changed since a git ref, and whether a global file changed."""
    from monostack.affected import affected as find
    from monostack.affected import to_json
    from monostack.errors import UserError

    if format not in ("text", "json"):
        raise UserError(f"--format {format!r}: choose text or json")
    result = find(ROOT, changed_since)
    if format == "json":
        echo(to_json(result))
    else:
        for line in result.text_lines():
            echo(line)


@task(
    help={**_SELECT_HELP, "strict": _STRICT_HELP, "jobs": _JOBS_HELP},  # never cached
    iterable=["project"],
    auto_shortflags=False,
)
@user_errors
def extra_checks(c, project=None, changed_since=None, junit_xml=None, jobs=None, strict=False):
    """Only the team's own checks (extra_checks in monorepo.yml), as test-all runs them."""
    title = "extra-checks"
    _check(c, [title], title, project, changed_since, junit_xml, jobs, strict=strict)


# -- sync-workflows (issue 4) -------------------------------------------------------------------


@task(
    help={
        "check": "Change nothing; print the plan; exit non-zero unless the root is in sync.",
        "dry-run": "Print the plan and write nothing (exit 0 unless there are conflicts).",
        "force": "Also overwrite or delete generated root files that were edited by hand.",
    }
)
@user_errors
def sync_workflows(c, check=False, dry_run=False, force=False):
    """Copy every project's CI files (and the template's monorepo CI files) into the root."""
    import sys

    from invoke.exceptions import Exit

    from monostack.workflows import sync_workflows as sync

    result = sync(ROOT, check=check, dry_run=dry_run, force=force)
    for line in result.output_lines():
        echo(line)
    for line in result.error_lines():
        sys.stderr.write(line + "\n")
    if result.exit_code:
        raise Exit(code=result.exit_code)


# -- template lifecycle: update-projects, list-projects, adopt-project (issue 9) ----------------


@task(
    help={
        "project": "Update only project NAME (its name or directory); repeatable. Default: all.",
        "base": (
            "Template base to merge from, for projects whose .stack-answers.yml records none: a "
            "commit or tag whose stack_template/ they were rendered from (e.g. HEAD)."
        ),
        "check": "Change nothing; exit 1 if any project is behind the template (for CI).",
        "dry-run": "Print the plan (files, merges, conflicts); write nothing.",
        "sync": "Run sync-workflows afterwards when project CI files changed.",
    },
    iterable=["project"],
    auto_shortflags=False,
)
@user_errors
def update_projects(c, project=None, base=None, check=False, dry_run=False, sync=False):
    """Merge template changes into projects (three-way, per project, atomically)."""
    from invoke.exceptions import Exit

    from monostack.update import report_lines
    from monostack.update import update_projects as update

    result = update(ROOT, list(project or ()), base=base, check=check, dry_run=dry_run, sync=sync)
    for line in report_lines(result):
        echo(line)
    if result.exit_code:
        raise Exit(code=result.exit_code)


@task(help={"format": "table (default) or json."})
@user_errors
def list_projects(c, format="table"):
    """List every project: template version, up to date or behind, main answers, CI sync."""
    import sys

    from monostack.listing import list_projects as listing
    from monostack.listing import render_listing

    sys.stdout.write(render_listing(listing(ROOT), format))


@task(
    help={
        "path": "The root folder `databricks bundle init mlops-stacks` rendered (read only).",
        "name": "Project name in the monorepo (default: the bundle's name).",
        "dry-run": "Show what would be inferred, copied and replaced; write nothing.",
    }
)
@user_errors
def adopt_project(c, path, name=None, dry_run=False):
    """Bring in a project made by upstream MLOps Stacks: its code as is, monorepo CI files."""
    from monostack.adopt import adopt_project as adopt
    from monostack.adopt import report_lines

    for line in report_lines(adopt(ROOT, Path(path), name=name, dry_run=dry_run), ROOT):
        echo(line)
