"""``invoke adopt-project``: bring in a project rendered by upstream ``databricks bundle init
mlops-stacks`` (its 0.4 and 0.5 layouts; GitHub Actions, GitHub Enterprise Server or Azure
DevOps; with or without Unity Catalog and the feature store).

Upstream renders a root folder holding the bundle folder ``<project_dir>/`` and CI files written
for a one-project repository. Adopting infers the template answers from the project's own files,
checks them against ``monorepo.yml``, copies the bundle folder unchanged (it is the team's code),
replaces the CI files with the ones our template renders for those answers, gives the project a
lint configuration that fits upstream notebooks, and records ``.stack-answers.yml`` with a base,
so ``update-projects`` keeps its CI files (``_managed_paths``) up to date later. Everything is
read first and written in one atomic step; nothing in PATH is modified.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monostack import basetree
from monostack.bundle import BUNDLE_FILE
from monostack.config import MonorepoConfig, load_config, workspace_host
from monostack.errors import UserError
from monostack.projects import (
    ANSWERS_FILE,
    PROJECTS_DIR,
    TEMPLATE_DIR,
    discover_projects,
    render_answers_file,
    validate_project_name,
)
from monostack.template import load_template
from monostack.treeio import write_new_directory
from monostack.update import CI_PREFIXES, MANAGED_KEY
from monostack.yamlutil import load_yaml_file

PARAM_FILES = ("project_params.json", "../cicd_params.json", "../.stacks_metadata.yml")
SKIP_DIRS = {
    ".git", ".databricks", "__pycache__", ".venv", "venv", ".pytest_cache", ".ruff_cache",
    ".ipynb_checkpoints", "node_modules",
}  # fmt: skip
MANAGED_PATHS = [".github/*", ".azure/*", ".gitlab/*"]
LINT_FILE = "ruff.toml"
# Lint settings for code written to upstream's conventions: Databricks notebooks use globals
# the runtime provides and are not formatted by ruff. Visible in the project, easy to tighten.
ADOPTED_RUFF = """\
# Lint settings of this project, written by `invoke adopt-project` for code rendered by the
# upstream MLOps Stacks template. `invoke lint` runs ruff with this file. Tighten it as the
# code is brought in line: widen `select`, then drop the `[format]` exclude to enforce
# `ruff format` (run `ruff format .` here once first).
line-length = 120
# Globals Databricks gives every notebook.
builtins = ["dbutils", "spark", "display", "displayHTML", "sc", "sqlContext", "getArgument"]

[lint]
# Syntax errors and pyflakes' checks for real mistakes (undefined names, bad comparisons, ...)
select = ["E9", "F"]
# Notebook habits: imports after the sys.path cell, names imported for later cells.
ignore = ["E402", "F401", "F403", "F405", "F811", "F841"]

[format]
# Not formatted by ruff yet; remove this line to have `invoke lint` check formatting too.
exclude = ["*"]
"""
YAMLLINT_FILE = ".yamllint.yml"
ADOPTED_YAMLLINT = """\
# yamllint settings of this project, written by `invoke adopt-project` for files rendered by the
# upstream MLOps Stacks template (`invoke lint` uses this file instead of the repo's own for
# this project). Layout problems (spacing, blank lines, line length) are warnings here; syntax
# errors and duplicate keys stay errors. Tighten it, or delete it to use the repo's rules.
extends: relaxed

rules:
  trailing-spaces:
    level: warning
  new-line-at-end-of-file:
    level: warning
  new-lines:
    level: warning
  line-length:
    level: warning
    max: 120
    allow-non-breakable-inline-mappings: true
"""
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TABLE = re.compile(r"^[^.\s${}]+\.[^.\s${}]+\.[^.\s${}]+$")
_CLOUD_BY_HOST = (("azuredatabricks.net", "azure"), ("gcp.databricks.com", "gcp"))


@dataclass
class AdoptResult:
    name: str
    path: Path  # the new projects/<dir>
    answers: dict[str, Any]
    inferred: list[tuple[str, Any, str]]  # (answer, value, where it came from)
    files: list[str]  # everything written, relative to the project
    replaced: list[str]  # upstream CI files (relative to PATH) not brought in
    ci_files: list[str]  # CI files written instead
    left_behind: list[str]  # other files of PATH outside the bundle folder
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False


def _bundle_dir(path: Path) -> Path:
    if not path.is_dir():
        raise UserError(f"{path}: not a directory; pass the folder `databricks bundle init` made")
    if (path / BUNDLE_FILE).is_file():
        raise UserError(
            f"{path}: holds {BUNDLE_FILE} itself; pass the rendered root (its parent, which "
            "holds this folder beside .github/ or .azure/)"
        )
    found = sorted(d for d in path.iterdir() if d.is_dir() and (d / BUNDLE_FILE).is_file())
    if not found:
        raise UserError(
            f"{path}: no <project>/{BUNDLE_FILE} inside; pass the root folder that "
            "`databricks bundle init mlops-stacks` rendered"
        )
    if len(found) > 1:
        names = ", ".join(d.name for d in found)
        raise UserError(f"{path}: holds several bundles ({names}); adopt takes one per root")
    return found[0]


def _read_params(bundle: Path) -> tuple[dict[str, str], list[str]]:
    """Upstream's parameter files, merged (the bundle's own first); and which were read."""
    params: dict[str, str] = {}
    read = []
    for rel in PARAM_FILES:
        path = (bundle / rel).resolve() if rel.startswith("..") else bundle / rel
        if not path.is_file():
            continue
        where = str(path)
        try:
            if path.suffix == ".json":
                data = json.loads(path.read_text(encoding="utf-8"))
            else:
                data = load_yaml_file(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserError(f"{where}: not readable as {path.suffix[1:]}: {exc}") from None
        if isinstance(data, dict):
            for key, value in data.items():
                params.setdefault(str(key), str(value))
            read.append(path.name)
    return params, read


def _resources(bundle: Path) -> dict[str, dict]:
    """``resources`` of every YAML file under ``resources/``, by type, merged."""
    merged: dict[str, dict] = {}
    base = bundle / "resources"
    for path in sorted(base.glob("*.y*ml")) if base.is_dir() else ():
        data = load_yaml_file(path)
        res = data.get("resources") if isinstance(data, dict) else None
        for kind, items in (res or {}).items():
            if isinstance(items, dict):
                merged.setdefault(kind, {}).update(items)
    return merged


def _yes(value: str | None) -> bool | None:
    return None if value is None else value.strip().lower() in ("yes", "true")


def infer_answers(path: Path, bundle: Path, config: MonorepoConfig) -> list[tuple[str, Any, str]]:
    """(answer, value, source) for each template answer the project's files tell."""
    bundle_file = bundle / BUNDLE_FILE
    doc = load_yaml_file(bundle_file)
    if not isinstance(doc, dict) or not isinstance(doc.get("bundle"), dict):
        raise UserError(f"{bundle_file}: no bundle: mapping; is this an MLOps Stacks project?")
    params, read = _read_params(bundle)
    from_params = f"{' / '.join(read)}" if read else ""
    resources = _resources(bundle)
    found: list[tuple[str, Any, str]] = []
    name = doc["bundle"].get("name")
    if not isinstance(name, str) or not name:
        raise UserError(f"{bundle_file}: bundle.name is missing; pass --name NAME")
    found.append(("project_name", name, f"{BUNDLE_FILE} bundle.name"))
    uuid = doc["bundle"].get("uuid")
    if isinstance(uuid, str) and _UUID.match(uuid):
        found.append(("project_uuid", uuid, f"{BUNDLE_FILE} bundle.uuid"))
    models = resources.get("registered_models") or {}
    uc = _yes(params.get("input_include_models_in_unity_catalog"))
    uc_source = from_params
    if uc is None:
        uc = bool(models) or "catalog_name" in (doc.get("variables") or {})
        uc_source = "resources (registered_models)" if models else f"{BUNDLE_FILE} variables"
    found.append(("include_models_in_unity_catalog", uc, uc_source))
    if uc:
        schemas = [m.get("schema_name") for m in models.values() if isinstance(m, dict)]
        schema = next((s for s in schemas if isinstance(s, str) and "${" not in s), None)
        if schema:
            found.append(("schema_name", schema, "resources registered_models.*.schema_name"))
    fs = _yes(params.get("input_include_feature_store"))
    if fs is None:
        fs = (bundle / "feature_engineering").is_dir()
        found.append(("include_feature_store", fs, "feature_engineering/ folder"))
    else:
        found.append(("include_feature_store", fs, from_params))
    for monitor in (resources.get("quality_monitors") or {}).values() if uc else ():
        # only with Unity Catalog: the template monitors Unity Catalog tables only
        table = monitor.get("table_name") if isinstance(monitor, dict) else None
        if isinstance(table, str) and _TABLE.match(table):
            found.append(("inference_table_name", table, "resources quality_monitors table_name"))
            break
    compute = _compute_of(resources.get("jobs") or {})
    if compute is not None:
        found.append(("compute", compute, "resources jobs (environments or job_clusters)"))
    _check_shared(path, bundle_file, doc, params, config)
    return found


def _compute_of(jobs: dict) -> str | None:
    """``classic`` when a job declares clusters, ``serverless`` when its jobs use environments
    (upstream 0.5) and none declares a cluster; None when the jobs say neither."""
    specs = [job for job in jobs.values() if isinstance(job, dict)]
    tasks = [t for job in specs for t in job.get("tasks") or [] if isinstance(t, dict)]
    if any(job.get("job_clusters") for job in specs) or any(
        t.get("new_cluster") or t.get("job_cluster_key") or t.get("existing_cluster_id")
        for t in tasks
    ):
        return "classic"
    if any(job.get("environments") for job in specs):
        return "serverless"
    return None


def _check_shared(
    path: Path, bundle_file: Path, doc: dict, params: dict[str, str], config: MonorepoConfig
) -> None:
    """The settings every project shares must be the monorepo's: same cloud, same hosts."""
    targets = doc.get("targets") if isinstance(doc.get("targets"), dict) else {}
    wanted = {
        "staging": config.workspaces.staging,
        "prod": config.workspaces.prod,
        "test": config.workspaces.test,
    }
    for target, want in wanted.items():
        spec = targets.get(target)
        if not isinstance(spec, dict):
            continue  # a project without that target deploys nowhere there
        host = (spec.get("workspace") or {}).get("host")
        where = f"{bundle_file}: targets.{target}.workspace.host"
        if host in (None, ""):
            raise UserError(f"{where} is empty; set it to {want} (monorepo.yml), then adopt")
        if workspace_host(host) != workspace_host(want):
            raise UserError(
                f"{where} is {host} but monorepo.yml workspaces.{_ws(target)} is {want}; "
                "a monorepo's projects share its workspaces: adopt projects of these "
                "workspaces only, or change the host first"
            )
    cloud = params.get("input_cloud")
    if cloud is None:
        host = ((targets.get("staging") or {}).get("workspace") or {}).get("host") or ""
        cloud = next((c for domain, c in _CLOUD_BY_HOST if domain in host), "aws")
    if cloud != config.cloud:
        raise UserError(
            f"{path}: the project is for cloud {cloud!r} but monorepo.yml cloud is "
            f"{config.cloud!r}; adopt projects of the monorepo's cloud only"
        )


def _ws(target: str) -> str:
    return "staging" if target == "test" else target


def _read_bundle(bundle: Path) -> dict[str, bytes]:
    """The bundle folder's files, byte for byte; never following a symlink out of it."""
    tree: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(bundle):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames) + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            full = Path(dirpath) / name
            rel = full.relative_to(bundle).as_posix()
            if full.is_symlink():
                raise UserError(
                    f"{full}: is a symlink; adopt copies real files only: replace it with the "
                    "file it points to"
                )
            tree[rel] = full.read_bytes()
    return tree


def _upstream_files(path: Path, bundle: Path) -> tuple[list[str], list[str]]:
    """Files of PATH outside the bundle folder: (CI files replaced, others left behind)."""
    ci, other = [], []
    for dirpath, dirnames, filenames in os.walk(path):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and here / d != bundle)
        for name in sorted(filenames):
            rel = (here / name).relative_to(path).as_posix()
            (ci if rel.startswith((*CI_PREFIXES, ".aws/")) else other).append(rel)
    return ci, other


def adopt_project(
    root: Path, source: Path, name: str | None = None, dry_run: bool = False
) -> AdoptResult:
    """Adopt the upstream-rendered project at ``source`` into ``projects/<dir>/``."""
    root = Path(root)
    source = Path(source).expanduser().resolve()
    config = load_config(root)
    template = load_template(root / TEMPLATE_DIR)
    bundle = _bundle_dir(source)
    inferred = infer_answers(source, bundle, config)
    if name is not None:
        inferred = [("project_name", name, "--name")] + [
            i for i in inferred if i[0] != "project_name"
        ]
    given = {k: v for k, v, _ in inferred if k in template.parameters}
    project_name = str(given["project_name"])
    project_dir = validate_project_name(project_name, discover_projects(root, template))
    target = root / PROJECTS_DIR / project_dir
    if os.path.lexists(target):
        raise UserError(f"{PROJECTS_DIR}/{project_dir}: already exists; pass --name NAME")
    try:
        resolved = template.resolve_answers(given, config)
    except UserError as exc:
        raise UserError(f"{source}: inferred answers do not fit the template: {exc}") from None
    tree = {
        rel: data for rel, data in _read_bundle(bundle).items() if not rel.startswith(CI_PREFIXES)
    }
    notes = []
    if name is not None and name != _bundle_name(bundle):
        notes.append(f"the bundle keeps its name {_bundle_name(bundle)!r} ({BUNDLE_FILE})")
    root_tests = source / "test-requirements.txt"
    copied_tests = "test-requirements.txt" not in tree and root_tests.is_file()
    if copied_tests:
        tree["test-requirements.txt"] = root_tests.read_bytes()
        notes.append("test-requirements.txt copied from the rendered root (its CI installs it)")
    rendered = template.render_project(resolved, config)
    ci = {rel: data for rel, data in rendered.items() if rel.startswith(CI_PREFIXES)}
    tree.update(ci)
    written = []
    if not _has_ruff_config(tree):
        tree[LINT_FILE] = ADOPTED_RUFF.encode("utf-8")
        written.append(LINT_FILE)
    if not any(name in tree for name in (".yamllint", YAMLLINT_FILE, ".yamllint.yaml")):
        tree[YAMLLINT_FILE] = ADOPTED_YAMLLINT.encode("utf-8")
        written.append(YAMLLINT_FILE)
    if written:
        notes.append(
            f"lint settings that fit upstream's files written to {' and '.join(written)}; "
            "tighten them as the code is brought in line"
        )
    base = None if dry_run else basetree.record_template_tree(root)
    extra = {MANAGED_KEY: MANAGED_PATHS}
    tree[ANSWERS_FILE] = render_answers_file(resolved, template.version, base, extra)
    replaced, left = _upstream_files(source, bundle)
    if not dry_run:
        write_new_directory(target, tree)
    return AdoptResult(
        name=project_name,
        path=target,
        answers=resolved,
        inferred=inferred,
        files=sorted(tree),
        replaced=replaced,
        ci_files=sorted(ci),
        left_behind=[r for r in left if not (r == "test-requirements.txt" and copied_tests)],
        notes=notes,
        dry_run=dry_run,
    )


def _bundle_name(bundle: Path) -> str:
    doc = load_yaml_file(bundle / BUNDLE_FILE)
    return str(doc["bundle"].get("name"))


def _has_ruff_config(tree: dict[str, bytes]) -> bool:
    if "ruff.toml" in tree or ".ruff.toml" in tree:
        return True
    return b"[tool.ruff" in tree.get("pyproject.toml", b"")


def report_lines(result: AdoptResult, root: Path) -> list[str]:
    rel = result.path.relative_to(root).as_posix()
    verb = "Would adopt" if result.dry_run else "Adopted"
    lines = [f"{verb} project {result.name!r} into {rel}/ ({len(result.files)} files)."]
    lines.append("Inferred answers:")
    lines += [f"  {k}: {v!r}  (from {src})" for k, v, src in result.inferred if src]
    told = {i[0] for i in result.inferred} | {"project_dir"}  # project_dir: from the name
    defaults = [k for k in result.answers if k not in told]
    lines += [f"  {k}: {result.answers[k]!r}  (template default)" for k in defaults]
    if result.replaced:
        lines.append("Replaced upstream CI files (written for a one-project repo):")
        lines += [f"  {r}" for r in result.replaced]
    lines.append("With the monorepo's own:")
    lines += [f"  {rel}/{c}" for c in result.ci_files]
    if result.left_behind:
        lines.append("Not brought in (outside the bundle folder; PATH is left as it was):")
        lines += [f"  {r}" for r in result.left_behind]
    lines += [f"Note: {n}." for n in result.notes]
    if not result.dry_run:
        lines.append("Next: `invoke sync-workflows`, then `invoke test-all`, and commit.")
    return lines
