"""What the CLI catches across and inside resources: one key under two resource types, a task
that names a job cluster, environment or upstream task its job does not define, and resources
defined in Python, which an offline check cannot see."""

from __future__ import annotations

from typing import Any

from monostack.bundle import LoadedBundle, Loc, Problem, TargetView, YMap, format_path, loc_of
from monostack.checks import INFO
from monostack.checks.bundle.common import suggest
from monostack.checks.bundle.paths import iter_tasks

# Where a bundle may name Python code that defines or changes resources at deploy time.
PYTHON_SECTIONS = (("python", "resources"), ("python", "mutators"))
EXPERIMENTAL_PYTHON = ("experimental", "python")


def check_duplicate_keys(bundle: LoadedBundle) -> list[Problem]:
    """The same key under two resource types: the CLI refuses the bundle (a key must name one
    resource, e.g. in ``databricks bundle run KEY``)."""
    resources = bundle.base.get("resources") if bundle.base is not None else None
    if not isinstance(resources, dict):
        return []
    first: dict[str, tuple[str, Loc]] = {}
    out = []
    for rtype, group in resources.items():
        if not isinstance(group, dict):
            continue
        for key in group:
            loc = loc_of(group, key, resources.loc)
            if key not in first:
                first[key] = (str(rtype), loc)
                continue
            other, (ofile, oline) = first[key]
            out.append(
                Problem(
                    loc[0],
                    loc[1],
                    f"resource key {key!r} is used by resources.{other}.{key} ({ofile}:{oline}) "
                    f"and resources.{rtype}.{key}; the Databricks CLI refuses two resources with "
                    "one key: rename one",
                )
            )
    return out


def _defined(job: dict, section: str, key: str) -> set[str]:
    items = job.get(section)
    return {
        item[key]
        for item in (items if isinstance(items, list) else ())
        if isinstance(item, dict) and isinstance(item.get(key), str)
    }


def _undefined(
    task: dict, field: str, known: set[str], where: str, what: str, loc: Loc
) -> Problem | None:
    value = task.get(field)
    if not isinstance(value, str) or "${" in value or value in known:
        return None
    file, line = loc_of(task, field, loc)
    have = ", ".join(sorted(known)) if known else "none"
    return Problem(
        file,
        line,
        f"{where}.{field} {value!r} names no {what} of this job (defined: {have}); "
        f"{suggest(value, known) if known else f'define it under the job or remove {field}'}",
    )


def check_job_references(view: TargetView) -> list[Problem]:
    """Tasks point at job clusters, environments and upstream tasks the job defines."""
    resources = view.doc.get("resources")
    jobs = resources.get("jobs") if isinstance(resources, dict) else None
    out: list[Problem] = []
    for jkey, job in jobs.items() if isinstance(jobs, dict) else ():
        if not isinstance(job, dict):
            continue
        clusters = _defined(job, "job_clusters", "job_cluster_key")
        environments = _defined(job, "environments", "environment_key")
        tasks = list(iter_tasks(job.get("tasks"), ("resources", "jobs", jkey, "tasks")))
        task_keys = {t["task_key"] for _, t in tasks if isinstance(t.get("task_key"), str)}
        for path, task in tasks:
            where = format_path(path)
            loc = loc_of(job, "tasks", view.doc.loc)
            for field, known, what in (
                ("job_cluster_key", clusters, "job cluster (job_clusters)"),
                ("environment_key", environments, "environment (environments)"),
            ):
                problem = _undefined(task, field, known, where, what, loc)
                if problem is not None:
                    out.append(problem)
            depends = task.get("depends_on")
            for index, dep in enumerate(depends if isinstance(depends, list) else ()):
                upstream = dep.get("task_key") if isinstance(dep, dict) else None
                if not isinstance(upstream, str) or "${" in upstream or upstream in task_keys:
                    continue
                file, line = loc_of(dep, "task_key", loc_of(depends, index, loc))
                out.append(
                    Problem(
                        file,
                        line,
                        f"{where}.depends_on[{index}] names task {upstream!r}, which job "
                        f"{jkey!r} does not have; {suggest(upstream, task_keys)}",
                    )
                )
    return out


def _section(doc: Any, *keys: str) -> tuple[Any, Loc | None]:
    node, loc = doc, None
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None, None
        loc = loc_of(node, key, node.loc if isinstance(node, YMap) else ("", None))
        node = node[key]
    return node, loc


def python_resources_info(bundle: LoadedBundle) -> list[Problem]:
    """An info per Python section: those resources exist only when the CLI runs the code."""
    out = []
    for keys in (*PYTHON_SECTIONS, (*EXPERIMENTAL_PYTHON, "resources")):
        value, loc = _section(bundle.base, *keys)
        if not value or loc is None:
            continue
        name = ".".join(keys)
        out.append(
            Problem(
                loc[0],
                loc[1],
                f"{name} defines or changes resources in Python; those were not checked "
                "offline (run `databricks bundle validate` or `invoke bundle-validate --online`)",
                INFO,
            )
        )
    return out
