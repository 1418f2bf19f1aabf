"""Local files a resource names (notebooks, Python and SQL files, dashboards, app sources)
exist in the project."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

from monostack.bundle import LoadedBundle, Path_, Problem, TargetView, format_path, loc_of
from monostack.checks import WARNING

NOTEBOOK_EXTENSIONS = (".py", ".ipynb", ".sql", ".scala", ".r", ".R")


def iter_tasks(tasks: Any, path: Path_) -> Iterable[tuple[Path_, dict]]:
    if not isinstance(tasks, list):
        return
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        yield (*path, index), task
        nested = task.get("for_each_task")
        if isinstance(nested, dict) and isinstance(nested.get("task"), dict):
            yield (*path, index, "for_each_task", "task"), nested["task"]


def _file_refs(view: TargetView) -> Iterable[tuple[Path_, Any, Any, str]]:
    """(path, container, key, kind) of every local file a resource names; kind is
    "notebook", "file" or "directory"."""
    resources = view.doc.get("resources")
    if not isinstance(resources, dict):
        return
    jobs = resources.get("jobs")
    for jkey, job in jobs.items() if isinstance(jobs, dict) else ():
        if not isinstance(job, dict):
            continue
        from_git = isinstance(job.get("git_source"), dict)
        for tpath, task in iter_tasks(job.get("tasks"), ("resources", "jobs", jkey, "tasks")):
            for kind_key, field_key, kind in (
                ("notebook_task", "notebook_path", "notebook"),
                ("spark_python_task", "python_file", "file"),
            ):
                spec = task.get(kind_key)
                if not isinstance(spec, dict) or field_key not in spec:
                    continue
                source = spec.get("source")
                if source == "GIT" or (from_git and source != "WORKSPACE"):
                    continue  # the path is inside the git repository, not this bundle
                yield (*tpath, kind_key, field_key), spec, field_key, kind
            sql = task.get("sql_task")
            sql_file = sql.get("file") if isinstance(sql, dict) else None
            if isinstance(sql_file, dict) and "path" in sql_file:
                source = sql_file.get("source")
                if not (source == "GIT" or (from_git and source != "WORKSPACE")):
                    yield (*tpath, "sql_task", "file", "path"), sql_file, "path", "file"
    pipelines = resources.get("pipelines")
    for pkey, pipeline in pipelines.items() if isinstance(pipelines, dict) else ():
        libraries = pipeline.get("libraries") if isinstance(pipeline, dict) else None
        for index, lib in enumerate(libraries if isinstance(libraries, list) else ()):
            if not isinstance(lib, dict):
                continue
            for lib_kind, kind in (("notebook", "notebook"), ("file", "file")):
                spec = lib.get(lib_kind)
                if isinstance(spec, dict) and "path" in spec:
                    path = ("resources", "pipelines", pkey, "libraries", index, lib_kind, "path")
                    yield path, spec, "path", kind
    for rtype, group in resources.items():  # dashboards, alerts: defined in a file
        for rkey, res in group.items() if isinstance(group, dict) else ():
            if isinstance(res, dict) and "file_path" in res:
                yield ("resources", rtype, rkey, "file_path"), res, "file_path", "file"
    apps = resources.get("apps")
    for akey, app in apps.items() if isinstance(apps, dict) else ():
        if isinstance(app, dict) and "source_code_path" in app:
            path = ("resources", "apps", akey, "source_code_path")
            yield path, app, "source_code_path", "directory"


def _local_path(bundle: LoadedBundle, view: TargetView, value: str, yaml_file: str) -> str | None:
    """The project-relative path a resource path stands for; "" when it is not a local path
    (absolute workspace path, URL, or an unresolvable reference); None when it leaves the
    project."""
    prefix = "${workspace.file_path}"
    if value.startswith(prefix):
        value, base_dir = value[len(prefix) :].lstrip("/"), ""
    else:
        value = view.resolve(value)
        base_dir = posixpath.dirname(bundle.rel(yaml_file))
    if not isinstance(value, str) or not value or "${" in value:
        return ""
    if value.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
        return ""
    joined = posixpath.normpath(posixpath.join(base_dir, value))
    if joined == ".." or joined.startswith("../"):
        return None
    return joined


def _exists(tree: Mapping[str, bytes], rel: str, kind: str) -> bool:
    if kind == "directory":
        return rel in ("", ".") or any(path.startswith(rel + "/") for path in tree)
    if rel in tree:
        return True
    return kind == "notebook" and any(rel + ext in tree for ext in NOTEBOOK_EXTENSIONS)


def check_task_paths(bundle: LoadedBundle, view: TargetView) -> list[Problem]:
    out = []
    for path, container, key, kind in _file_refs(view):
        value = container[key]
        file, line = loc_of(container, key, view.doc.loc)
        if not isinstance(value, str) or not value:
            continue  # the typed-model check reports a wrong type
        rel = _local_path(bundle, view, value, file)
        if rel == "":
            continue
        if rel is None:
            out.append(
                Problem(
                    file,
                    line,
                    f"{format_path(path)} {value!r} points outside the project "
                    "directory; files outside the bundle are not deployed unless sync.paths "
                    "includes them",
                    WARNING,
                )
            )
            continue
        if _exists(bundle.tree, rel, kind):
            continue
        out.append(
            Problem(
                file,
                line,
                f"{format_path(path)} names the {kind} {value!r}, but "
                f"{bundle.file_prefix}{rel} does not exist; fix the path (relative to {file}) "
                "or add the file",
            )
        )
    return out
