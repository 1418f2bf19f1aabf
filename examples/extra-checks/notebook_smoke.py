"""Notebook smoke import (an example of a team's extra check).

Usage: python notebook_smoke.py PROJECT_DIR...

For every Databricks notebook (a ``.py`` file starting ``# Databricks notebook source``) under
each project: the file must compile, and every import of one of the project's own modules must
resolve, names included (``from utils import check_env`` needs ``check_env`` in ``utils``).
Third-party imports (mlflow, pyspark) are left to the cluster. Nothing is executed, so no Spark
or workspace is needed. Exit 1 listing each notebook and line that would fail.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

HEADER = "# Databricks notebook source"


def module_file(project: Path, dotted: str) -> Path | None:
    base = project.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def problems_in(project: Path, notebook: Path) -> list[str]:
    where = notebook.relative_to(project.parent)
    try:
        tree = ast.parse(notebook.read_text(encoding="utf-8"), str(notebook))
    except SyntaxError as exc:
        return [f"{where}:{exc.lineno}: does not compile: {exc.msg}"]
    local = {p.stem for p in project.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            wanted = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            wanted = [(node.module, a.name) for a in node.names]
        else:
            continue
        for module, name in wanted:
            if module.split(".")[0] not in local:
                continue  # third-party: the cluster's business
            path = module_file(project, module)
            if path is None:
                found.append(f"{where}:{node.lineno}: no module {module!r} in the project")
            elif (
                name
                and name != "*"
                and not module_file(project, f"{module}.{name}")
                and name not in defined_names(path)
            ):
                found.append(f"{where}:{node.lineno}: {module!r} has no {name!r}")
    return found


def main(argv: list[str]) -> int:
    problems, count = [], 0
    for project in map(Path, argv[1:]):
        for notebook in sorted(project.rglob("*.py")):
            with notebook.open(encoding="utf-8", errors="replace") as handle:
                if handle.readline().strip() != HEADER:
                    continue
            count += 1
            problems += problems_in(project, notebook)
    for problem in problems:
        print(problem)
    print(f"{count} notebook(s), {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
