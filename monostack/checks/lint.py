"""``invoke lint``: ruff, yamllint, CI schemas, zizmor and Jinja2 syntax, one case per project.

Cases: one per project (ruff check + ruff format --check on its Python, yamllint on its CI YAML,
``databricks.yml`` and ``resources/`` YAML, and GitLab's schema on its GitLab pipelines, which
the root includes in place rather than copies) and one for the monorepo itself (ruff on the tool,
every CI check on the root CI files, every template file parses as Jinja2, ``stack.yml``
loads). Ruff runs as few times as possible over many paths, in the background while the
in-process checks run; its findings are then split back per project.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monostack.checks import ERROR, INFO, MONOREPO, CaseResult, Finding
from monostack.checks.ci_files import (
    GITLAB_CI,
    GITLAB_ROOT,
    YAMLLINT_FILES,
    YamllintSetup,
    check_ci_file_sets,
    decode,
    is_ci_path,
    is_yaml,
    key_line,
    process_context,
    schema_findings,
    schema_for,
    yaml_parse_findings,
    yamllint_findings,
    yamllint_setup,
)
from monostack.errors import UserError, not_utf8
from monostack.projects import BUNDLE_FILE, PROJECTS_DIR, TEMPLATE_DIR, Project

CHECK = "lint"
TOOL_PATHS = ("monostack", "tasks.py", "tests")  # the tool itself, linted with the repo's config
RUFF_CONFIG_FILES = ("ruff.toml", ".ruff.toml")
PROJECT_YAML_DIRS = (".github", ".azure", ".gitlab", "resources")
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".ruff_cache"}
PARALLEL_YAML_FILES = 60  # per extra worker process: below this, one process is faster


def run_lint(
    root: Path,
    projects: list[Project],
    jobs: int | None = None,
    monorepo: bool = True,
    lint_hand_written: bool = False,
) -> list[CaseResult]:
    """Lint each project and (``monorepo``) the monorepo; one case per project, then MONOREPO.

    A project's case covers its own files, every CI check on its CI files, and the root
    copies sync made of them: a copy that is exactly its source under the sync header is not
    checked again (its source's findings stand for it); an edited or stale copy is checked
    as it is. The MONOREPO case covers the tool, the template, ``monorepo.yml`` and the root
    CI files no project owns: the monorepo's own are linted, the team's hand-written ones only
    parsed (sync checks them for conflicts) unless ``lint_hand_written``
    (``monostack.lint_hand_written`` in ``invoke.yaml``). Ruff runs in the background
    meanwhile; many project YAML files are spread over ``jobs`` worker processes.
    """
    root = Path(root)
    cases = {p.name: CaseResult(CHECK, p.name) for p in projects}
    if monorepo:
        cases[MONOREPO] = CaseResult(CHECK, MONOREPO)
    owners = {p.rel: p.name for p in projects}

    tool = [t for t in TOOL_PATHS if (root / t).exists()] if monorepo else []
    ruff = RuffBatch(root, projects, tool)
    t0 = time.perf_counter()
    ruff.start()
    try:
        setup = yamllint_setup(root, CHECK)
        items = [
            (p.name, rel)
            for p in projects
            for rel in _rel_paths(root, project_yaml_files(p))
            if not is_ci_path(rel.removeprefix(p.rel + "/"))
        ]
        pool, pending = _start_yamllint(root, items, jobs)
        try:
            if pending is None:  # few files: here, sharing the memo with the CI files
                project_findings = _yamllint_items(root, items, setup)
            ci_sets = _ci_file_sets(root, projects, monorepo)
            hand_written: dict[str, bytes] = {}
            if monorepo and not lint_hand_written:
                ci_sets[MONOREPO], hand_written = split_hand_written(ci_sets[MONOREPO])
            own = {p.name: _project_yamllint(root, p.rel, p.name) for p in projects}
            own = {name: found for name, found in own.items() if found is not None}
            for finding in check_ci_file_sets(ci_sets, CHECK, root, setup, own):
                cases[finding.project].findings.append(finding)
            if monorepo:
                mono = cases[MONOREPO]
                mono.findings += parse_only_findings(hand_written)
                mono.findings += template_findings(root / TEMPLATE_DIR, root)
            if pending is not None:
                project_findings = [f for future in pending for f in future.result()]
        finally:
            if pool is not None:
                pool.shutdown()
        for finding in project_findings:
            cases[finding.project].findings.append(finding)
    finally:
        ruff_findings, _ = ruff.collect()
    for finding in ruff_findings:
        owner = _owner(finding.file, owners)
        if owner in cases:
            cases[owner].findings.append(_with_project(finding, owner))
    elapsed = round((time.perf_counter() - t0) / max(1, len(cases)), 3)  # shared, split evenly
    for case in cases.values():
        case.findings.sort(key=Finding.order)
        case.seconds = elapsed
    return [cases[p.name] for p in projects] + ([cases[MONOREPO]] if monorepo else [])


def _ci_file_sets(
    root: Path, projects: list[Project], monorepo: bool
) -> dict[str, dict[str, bytes]]:
    """Case name -> the CI files (repo-relative path -> bytes) it checks in full: each
    project's own CI files and its root copies that differ from them; for MONOREPO the root
    CI files that no project owns."""
    from monostack.workflows.header import managed_file, parse_managed

    by_rel = {p.rel: p for p in projects}
    sets: dict[str, dict[str, bytes]] = {MONOREPO: {}} if monorepo else {}
    sets.update({p.name: {} for p in projects})
    for p in projects:
        for path in project_yaml_files(p):
            rel = path.relative_to(root).as_posix()
            if is_ci_path(rel.removeprefix(p.rel + "/")):
                sets[p.name][rel] = path.read_bytes()
    for rel, data in root_ci_files(root).items():
        managed = parse_managed(data)
        parts = managed.origin.split("/") if managed else []
        owner = by_rel.get("/".join(parts[:2])) if parts[:1] == [PROJECTS_DIR] else None
        if owner is None:
            if (managed is None or parts[:1] != [PROJECTS_DIR]) and monorepo:
                sets[MONOREPO][rel] = data
            continue  # a copy of an unselected project's file: that project's business
        source = sets[owner.name].get(managed.origin)
        if source is not None and managed_file(managed.origin, source) == data:
            continue  # exactly its source plus the header: checked at the source
        sets[owner.name][rel] = data
    return sets


def _rel_paths(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def _start_yamllint(root: Path, items: list[tuple[str, str]], jobs: int | None):
    """Spread many files over worker processes; None, None when not worth a process."""
    jobs = min(jobs or os.cpu_count() or 1, len(items) // PARALLEL_YAML_FILES)
    if jobs < 2:
        return None, None
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=process_context())
    chunks = [items[i::jobs] for i in range(jobs)]
    return pool, [pool.submit(_yamllint_chunk, str(root), chunk) for chunk in chunks]


def _yamllint_chunk(root: str, items: list[tuple[str, str]]) -> list[Finding]:
    return _yamllint_items(Path(root), items, yamllint_setup(Path(root), CHECK))


def _yamllint_items(
    root: Path, items: list[tuple[str, str]], setup: YamllintSetup
) -> list[Finding]:
    """yamllint each (project, repo-relative path); a broken config is reported once, by the
    MONOREPO case. A project with a yamllint config of its own (e.g. an adopted one) is linted
    with that instead."""
    findings = []
    own: dict[str, YamllintSetup] = {}
    for project, rel in items:
        folder = "/".join(rel.split("/")[:2])
        if folder not in own:
            own[folder] = _project_yamllint(root, folder, project) or setup
            if own[folder].error is not None and own[folder] is not setup:
                findings.append(own[folder].error)
        setup_here = own[folder]
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            findings.append(Finding(CHECK, project, rel, None, ERROR, not_utf8(exc)))
            continue
        findings += yamllint_findings(rel, text, project, CHECK, setup_here)
        if schema_for(rel) == GITLAB_CI:  # included in place by the root: checked here
            parsed = yaml_parse_findings(rel, text, project, CHECK)
            findings += parsed or schema_findings(rel, text, GITLAB_CI, project, CHECK)
    return findings


def _project_yamllint(root: Path, folder: str, project: str) -> YamllintSetup | None:
    """The project's own yamllint config (``projects/<dir>/.yamllint.yml``), if it has one."""
    if not any((root / folder / name).is_file() for name in YAMLLINT_FILES):
        return None
    found = yamllint_setup(root / folder, CHECK)
    if found.error is None:
        return found
    error = found.error
    where = Finding(CHECK, project, f"{folder}/{error.file}", None, ERROR, error.message)
    return dataclasses.replace(found, error=where)


# ------------------------------------------------------------------------------------- files
def _walk(base: Path) -> Iterable[Path]:
    if not base.is_dir():
        return
    for path in sorted(base.iterdir()):
        if path.is_dir():
            if path.name not in SKIP_DIRS:
                yield from _walk(path)
        elif path.is_file():
            yield path


def project_yaml_files(project: Project) -> list[Path]:
    """The YAML lint covers in a project: CI files, databricks.yml and resources/."""
    files = [project.path / BUNDLE_FILE] if (project.path / BUNDLE_FILE).is_file() else []
    for name in PROJECT_YAML_DIRS:
        files += [p for p in _walk(project.path / name) if is_yaml(p.name)]
    return files


def root_ci_files(root: Path) -> dict[str, bytes]:
    """Root CI YAML: everything under ``.github/``, ``.azure/`` and ``.gitlab/`` of the repo
    root, and GitLab's ``.gitlab-ci.yml``."""
    files = {}
    if (root / GITLAB_ROOT).is_file():
        files[GITLAB_ROOT] = (root / GITLAB_ROOT).read_bytes()
    for name in (".github", ".azure", ".gitlab"):
        for path in _walk(root / name):
            rel = path.relative_to(root).as_posix()
            if is_ci_path(rel):
                files[rel] = path.read_bytes()
    return files


def split_hand_written(files: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(generated by sync-workflows, hand-written) root CI files: a file is generated when it
    carries monostack's header (a damaged one included: sync reports that)."""
    from monostack.workflows.header import damaged_header, parse_managed

    generated, hand_written = {}, {}
    for path, data in files.items():
        ours = parse_managed(data) is not None or damaged_header(data)
        (generated if ours else hand_written)[path] = data
    return generated, hand_written


def parse_only_findings(files: dict[str, bytes]) -> list[Finding]:
    """Hand-written CI files, by default: they must parse (a file the CI service cannot read
    is always an error), and one note says what was left to their owners."""
    findings: list[Finding] = []
    for path in sorted(files):
        text, problems = decode(path, files[path], MONOREPO, CHECK)
        findings += problems
        if text is not None:
            findings += yaml_parse_findings(path, text, MONOREPO, CHECK)
    if files:
        n = len(files)
        findings.append(
            Finding(
                CHECK,
                MONOREPO,
                "",
                None,
                INFO,
                f"{n} hand-written root CI file{'s were' if n > 1 else ' was'} only parsed, not "
                "linted (yamllint, schema, zizmor): they belong to the team; to lint them too, "
                "set `monostack: {lint_hand_written: true}` in invoke.yaml",
            )
        )
    return findings


# -------------------------------------------------------------------------------------- ruff
def ruff_executable() -> str | None:
    beside = Path(sys.executable).parent / "ruff"
    if beside.is_file():
        return str(beside)
    return shutil.which("ruff")


def has_own_ruff_config(path: Path) -> bool:
    """Does this directory hold a ruff configuration ruff itself would use?"""
    if any((path / name).is_file() for name in RUFF_CONFIG_FILES):
        return True
    pyproject = path / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        return "[tool.ruff" in pyproject.read_text(encoding="utf-8", errors="replace")
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return True  # let ruff itself report the broken file
    return "ruff" in data.get("tool", {})


@dataclass
class _Run:
    kind: str  # "check" or "format"
    paths: list[str]
    proc: Any = None
    failure: str | None = None


@dataclass
class RuffBatch:
    """At most four ruff processes: check and format, each for (a) the tool plus projects with
    their own ruff config (ruff finds each file's nearest config) and (b) projects without one
    (``--isolated``: ruff's defaults, not the tool's stricter rules)."""

    root: Path
    projects: list[Project]
    tool_paths: list[str]
    runs: list[_Run] = field(default_factory=list)
    started: float = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        own = [*self.tool_paths] + [p.rel for p in self.projects if has_own_ruff_config(p.path)]
        isolated = [p.rel for p in self.projects if not has_own_ruff_config(p.path)]
        exe = ruff_executable()
        for paths, extra in ((own, []), (isolated, ["--isolated"])):
            if not paths:
                continue
            for kind in ("check", "format"):
                run = _Run(kind, paths)
                self.runs.append(run)
                if exe is None:
                    run.failure = "ruff not found; install monostack's dependencies"
                    continue
                cmd = [exe, kind, "--no-cache", "--output-format", "json", *extra]
                cmd += ["--no-fix"] if kind == "check" else ["--check"]
                run.proc = subprocess.Popen(
                    [*cmd, "--", *paths],
                    cwd=self.root,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=_ruff_env(),
                )

    def collect(self) -> tuple[list[Finding], float]:
        findings: list[Finding] = []
        for run in self.runs:
            if run.proc is not None:
                stdout, stderr = run.proc.communicate(timeout=600)
                findings += self._parse(run, stdout, stderr, run.proc.returncode)
            else:
                findings += [self._group_error(run, run.failure or "ruff did not run")]
        return findings, time.perf_counter() - self.started

    def _parse(self, run: _Run, stdout: str, stderr: str, code: int) -> list[Finding]:
        try:
            diagnostics = json.loads(stdout) if stdout.strip() else []
        except json.JSONDecodeError:
            diagnostics = None
        if diagnostics is None or (code not in (0, 1) and not diagnostics):
            reason = _first_error_line(stderr) or f"exit {code}"
            return [self._group_error(run, f"ruff {run.kind} failed: {reason}")]
        findings = []
        for diag in diagnostics:
            rule = diag.get("code") or "invalid-syntax"
            if run.kind == "format" and rule == "invalid-syntax":
                continue  # ruff check reports the same syntax error
            file = self._rel(diag.get("filename", ""))
            line = (diag.get("location") or {}).get("row")
            if run.kind == "format":
                message = f"ruff format: file would be reformatted; run `ruff format {file}`"
            elif rule == "invalid-syntax":
                message = f"ruff: syntax error: {diag.get('message')}"
            else:
                message = f"ruff {rule}: {diag.get('message')}"
            findings.append(Finding(CHECK, "", file, line, ERROR, message))
        return findings

    def _group_error(self, run: _Run, message: str) -> Finding:
        # no file to pin it on: give it to the first path's owner (the MONOREPO case when the
        # tool is in the group) so it is reported once and fails the run
        return Finding(CHECK, "", run.paths[0], None, ERROR, message)

    def _rel(self, filename: str) -> str:
        path = Path(filename)
        for base in (self.root, self.root.resolve()):
            try:
                return path.relative_to(base).as_posix()
            except ValueError:
                continue
        return path.as_posix()


def _ruff_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["NO_COLOR"] = "1"
    env.pop("RUFF_OUTPUT_FORMAT", None)
    return env


def _first_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("error:", "ruff failed")):
            return " ".join(lines[lines.index(ln) : lines.index(ln) + 3])[:300]
    return (lines[0] if lines else "")[:300]


# ---------------------------------------------------------------------------------- template
def template_findings(template_root: Path, root: Path) -> list[Finding]:
    """Every template file (and templated path component) compiles as Jinja2; stack.yml loads
    and its Jinja2 expressions compile. Missing template directory: nothing to check."""
    import jinja2

    from monostack.template import TEMPLATE_SUFFIX, make_environment

    if not template_root.is_dir():
        return []
    env = make_environment(template_root)
    findings = []
    for path in _walk(template_root):
        src = path.relative_to(template_root).as_posix()
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else src
        for component in src.split("/"):
            if "{{" in component or "{%" in component or "{#" in component:
                try:
                    env.parse(component)
                except jinja2.TemplateSyntaxError as exc:
                    findings.append(
                        Finding(CHECK, MONOREPO, rel, None, ERROR, f"Jinja2 file name: {exc}")
                    )
        if not src.endswith(TEMPLATE_SUFFIX):
            continue
        try:
            env.get_template(src)
        except jinja2.TemplateSyntaxError as exc:
            findings.append(
                Finding(CHECK, MONOREPO, rel, exc.lineno, ERROR, f"Jinja2 syntax: {exc.message}")
            )
        except (jinja2.TemplateError, UnicodeDecodeError) as exc:
            findings.append(Finding(CHECK, MONOREPO, rel, None, ERROR, f"Jinja2: {exc}"))
    findings += stack_file_findings(template_root, root, env)
    return findings


def stack_file_findings(template_root: Path, root: Path, env: Any) -> list[Finding]:
    """``stack.yml`` loads, and its ``when``/``default``/``skip`` expressions compile."""
    import jinja2
    import yaml

    from monostack.template import STACK_FILE, load_template
    from monostack.yamlutil import compose_yaml

    path = template_root / STACK_FILE
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else STACK_FILE
    try:
        template = load_template(template_root)
    except UserError as exc:
        finding = Finding.from_error(CHECK, MONOREPO, exc, root)
        if finding.line is None:  # e.g. a `when:` naming an undefined variable
            finding = dataclasses.replace(finding, line=_setting_line(path, exc.message))
        return [finding]
    try:
        tree = compose_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:  # pragma: no cover - load_template already parsed it
        tree = None
    exprs: list[tuple[list[Any], str, bool]] = []
    for name, param in template.parameters.items():
        if param.when:
            exprs.append((["parameters", name, "when"], param.when, True))
        if isinstance(param.default, str) and ("{{" in param.default or "{%" in param.default):
            exprs.append((["parameters", name, "default"], param.default, False))
    for i, rule in enumerate(template.skip_rules):
        exprs.append((["skip", i, "when"], rule.when, True))
    findings = []
    for where, text, is_expression in exprs:
        try:
            if is_expression:
                env.compile_expression(text)
            else:
                env.from_string(text)
        except jinja2.TemplateSyntaxError as exc:
            label = ".".join(str(w) for w in where)
            findings.append(
                Finding(
                    CHECK,
                    MONOREPO,
                    rel,
                    key_line(tree, where) if tree else None,
                    ERROR,
                    f"{label}: Jinja2 syntax: {exc.message}",
                )
            )
    return findings


# ------------------------------------------------------------------------------------ helpers
def _setting_line(path: Path, message: str) -> int | None:
    """The line of the setting a stack.yml error names (``parameters.x.when``, ``skip[0].when``)."""
    import re

    import yaml

    from monostack.yamlutil import compose_yaml

    match = re.search(r"(?:parameters\.(\w+)\.(\w+)|skip\[(\d+)\]\.(\w+))", message)
    if match is None:
        return None
    if match.group(1):
        where: list[Any] = ["parameters", match.group(1), match.group(2)]
    else:
        where = ["skip", int(match.group(3)), match.group(4)]
    try:
        tree = compose_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return key_line(tree, where) if tree else None


def _owner(file: str, owners: Mapping[str, str]) -> str:
    parts = file.split("/")
    if len(parts) >= 2 and parts[0] == PROJECTS_DIR:
        return owners.get(f"{parts[0]}/{parts[1]}", MONOREPO)
    return MONOREPO


def _with_project(finding: Finding, project: str) -> Finding:
    from dataclasses import replace

    return replace(finding, project=project)
