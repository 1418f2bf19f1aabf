"""``invoke render-matrix``: render the template for every valid combination, check each.

Combinations are every distinct valid answer set over the template's choice parameters (read
from ``stack.yml``, so a new choice is covered without touching this module) times every cloud
and CI platform. Each renders in memory, project part (for a fixed sample project) and monorepo
part, and must have: no template syntax left, every YAML/JSON/TOML/Python file parsing, a bundle
that passes bundle-validate, CI files that pass yamllint, their vendored schema and zizmor, and
Markdown whose relative links all resolve in the repository tree.

Combinations run in worker processes; zizmor (a separate program) runs once at the end over the
distinct GitHub workflows of all combinations, its findings attributed back to each. On GitLab
the monorepo part is also composed with two sample projects, as sync would write the root, and
checked against GitLab's merge rules.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monostack.checks import ERROR, MONOREPO, CaseResult, Finding
from monostack.checks.ci_files import (
    GITLAB_CI,
    GITLAB_ROOT,
    content_key,
    hits_to_findings,
    is_ci_path,
    is_yaml,
    process_context,
    schema_findings,
    static_ci_findings,
    yaml_parse_findings,
    yamllint_findings,
    yamllint_setup,
    zizmor_scan,
)
from monostack.checks.markdown_links import broken_links
from monostack.config import CICD_PLATFORMS, CLOUDS, MonorepoConfig, load_config
from monostack.errors import UserError
from monostack.projects import BUNDLE_FILE, PROJECTS_DIR, TEMPLATE_DIR
from monostack.template import TEMPLATE_SUFFIX

if TYPE_CHECKING:  # pragma: no cover
    from monostack.template import StackTemplate

CHECK = "render-matrix"
# Has a '-' so the project-name -> directory mapping (matrix_sample) is exercised too.
SAMPLE_PROJECT = "matrix-sample"
# GitLab merges every project's jobs into one pipeline: a second project shows name clashes.
SECOND_PROJECT = "matrix-other"
SAMPLE_UUID = "00000000-0000-4000-8000-000000000000"

Tree = dict[str, bytes]
Combination = tuple[str, MonorepoConfig, dict]
# findings, GitHub workflows for zizmor (rendered path -> (content, template file)), seconds
Outcome = tuple[list[Finding], dict[str, tuple[bytes, str]], float]


# ------------------------------------------------------------------------------ combinations
def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def matrix_combinations(template: StackTemplate, config: MonorepoConfig) -> list[Combination]:
    """``(case id, config, answers)`` for every cloud x CI platform x valid choice combination.

    Ids read like ``azure/github_actions/include_models_in_unity_catalog=yes/...``; the order
    is stable: clouds, then platforms as :mod:`monostack.config` lists them, then the
    template's own combination order. Answers are complete (resolved for the sample project).
    """
    combos: list[Combination] = []
    choice = template.choice_parameters()
    for cloud in CLOUDS:
        for platform in CICD_PLATFORMS:
            cfg = config.replace(cloud=cloud, cicd_platform=platform)
            base = {"project_name": SAMPLE_PROJECT}
            for values in template.iter_choice_combinations(base, cfg):
                answers = template.resolve_recorded({**base, **values}, cfg)
                parts = [cloud, platform] + [  # a choice that does not apply is left out
                    f"{p.name}={_value_text(values[p.name])}" for p in choice if p.name in values
                ]
                combos.append(("/".join(parts), cfg, answers))
    return combos


# ------------------------------------------------------------------------- one combination
_GH_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)
_LEFTOVER = re.compile(r"\{\{|\{%|\{#")


def leftover_syntax(text: str) -> tuple[int, str] | None:
    """(line, token) of the first Jinja2 delimiter outside ``${{ ... }}`` CI expressions."""
    blanked = _GH_EXPRESSION.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    match = _LEFTOVER.search(blanked)
    if match is None:
        return None
    return blanked.count("\n", 0, match.start()) + 1, match.group()


def parse_findings(path: str, text: str, project: str) -> list[Finding]:
    """YAML, JSON (and notebooks), TOML and Python files must parse."""
    import ast
    import json

    def problem(line: int | None, message: str) -> list[Finding]:
        return [Finding(CHECK, project, path, line, ERROR, message)]

    if is_yaml(path):
        return yaml_parse_findings(path, text, project, CHECK)
    if path.endswith((".json", ".ipynb")):
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return problem(exc.lineno, f"invalid JSON: {exc.msg}")
    elif path.endswith(".toml"):
        try:
            import tomllib
        except ModuleNotFoundError:  # pragma: no cover - Python 3.10 has no TOML parser
            return []
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line = re.search(r"line (\d+)", str(exc))
            return problem(int(line.group(1)) if line else None, f"invalid TOML: {exc}")
    elif path.endswith(".py"):
        try:
            ast.parse(text, filename=path)
        except SyntaxError as exc:
            return problem(exc.lineno, f"Python syntax error: {exc.msg}")
    return []


class _Worker:
    """Per-process state: the template, yamllint config and memoized per-file results (most
    files are identical across many combinations)."""

    def __init__(self, root: Path) -> None:
        from monostack.template import load_template

        self.root = root
        self.template = _deterministic(load_template(root / TEMPLATE_DIR))
        self.yamllint = yamllint_setup(root, CHECK)
        self.monorepo_trees: dict[MonorepoConfig, tuple[Tree, dict[str, str]]] = {}
        self.file_memo: dict[tuple[str, str], list[Finding]] = {}
        self.ci_memo: dict[tuple[str, str], tuple[list[Finding], bool]] = {}

    def render(
        self, answers: Mapping[str, Any], config: MonorepoConfig, prefix: str
    ) -> tuple[Tree, Tree, dict[str, str]]:
        """(project tree, monorepo tree, repo path -> template file it was rendered from)."""
        project_sources: dict[str, str] = {}
        project = self.template.render_project(answers, config, project_sources)
        if config not in self.monorepo_trees:
            mono_sources: dict[str, str] = {}
            tree = self.template.render_monorepo(config, mono_sources)
            self.monorepo_trees[config] = (tree, mono_sources)
        monorepo, mono_sources = self.monorepo_trees[config]
        sources = {
            path: f"{TEMPLATE_DIR}/{src}"
            for path, src in [
                *((prefix + rel, src) for rel, src in project_sources.items()),
                *mono_sources.items(),
            ]
        }
        return project, monorepo, sources

    def file_checks(self, path: str, data: bytes, project_yaml: bool) -> list[Finding]:
        """Leftover template syntax, parsing, and yamllint for bundle YAML (not CI files)."""
        key = (path, hashlib.sha256(data).hexdigest())
        if key in self.file_memo:
            return self.file_memo[key]
        found: list[Finding] = []
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None  # binary file copied from the template: nothing to parse
        if text is not None:
            left = leftover_syntax(text)
            if left is not None:
                found.append(
                    Finding(CHECK, "", path, left[0], ERROR, f"template syntax left: {left[1]!r}")
                )
            if not is_ci_path(path):
                parsed = parse_findings(path, text, "")
                found += parsed
                if project_yaml and is_yaml(path) and not parsed:
                    found += yamllint_findings(path, text, "", CHECK, self.yamllint)
        self.file_memo[key] = found
        return found

    def gitlab_findings(
        self,
        answers: Mapping[str, Any],
        config: MonorepoConfig,
        project_tree: Tree,
        monorepo_tree: Tree,
        sources: dict[str, str],
    ) -> list[Finding]:
        """The root ``.gitlab-ci.yml`` as sync would compose it for the sample project and a
        second one: GitLab's merge rules (job names, keywords, scope, stages) and the schema.
        ``sources`` learns the second project's files (same template files as the first's)."""
        from monostack.projects import Project
        from monostack.workflows.gitlab_rules import rendered_conflicts

        choices = {p.name: answers[p.name] for p in self.template.choice_parameters()}
        given = {**choices, "project_name": SECOND_PROJECT}
        other_answers = self.template.resolve_recorded(given, config)
        other_sources: dict[str, str] = {}
        other_tree = self.template.render_project(other_answers, config, other_sources)
        projects = []
        for project_answers, tree in ((answers, project_tree), (other_answers, other_tree)):
            name, folder = project_answers["project_name"], project_answers["project_dir"]
            projects.append((Project(name, folder, Path(PROJECTS_DIR) / folder), tree))
        other_prefix = f"{projects[1][0].rel}/"
        sources.update(
            {other_prefix + rel: f"{TEMPLATE_DIR}/{src}" for rel, src in other_sources.items()}
        )
        conflicts, body = rendered_conflicts(monorepo_tree[GITLAB_ROOT], projects)
        found = [Finding(CHECK, "", c.file, c.line, ERROR, c.message) for c in conflicts]
        composed = schema_findings(GITLAB_ROOT, body.decode("utf-8"), GITLAB_CI, "", CHECK)
        return found + [f for f in composed if "include" in f.message]

    def ci_checks(self, path: str, data: bytes) -> tuple[list[Finding], bool]:
        """(static CI findings, whether it is a workflow for zizmor)."""
        key = content_key(path, data)
        if key not in self.ci_memo:
            found, workflows = static_ci_findings({path: data}, "", CHECK, self.yamllint)
            self.ci_memo[key] = (found, path in workflows)
        return self.ci_memo[key]


def _deterministic(template: StackTemplate) -> StackTemplate:
    """Same answers on every run: ``uuid4()`` in defaults gives a fixed UUID, so files that
    hold it are identical across combinations (checked once) and runs are reproducible."""
    template.env.globals["uuid4"] = lambda: SAMPLE_UUID
    return template


_WORKERS: dict[tuple[str, str], _Worker] = {}


def _worker(root: Path, run: str) -> _Worker:
    """This process's state for one run; a new run (the template may have changed since)
    starts afresh, also in a forked worker that inherited the parent's."""
    key = (str(root), run)
    if key not in _WORKERS:
        _WORKERS.clear()
        _WORKERS[key] = _Worker(root)
    return _WORKERS[key]


def check_combination(
    root: Path, case: str, config: MonorepoConfig, answers: Mapping[str, Any], run: str = ""
) -> Outcome:
    """Render and check one combination: (findings, GitHub workflows for zizmor, seconds)."""
    start = time.perf_counter()
    findings: list[Finding] = []
    workflows: dict[str, tuple[bytes, str]] = {}
    prefix = f"{PROJECTS_DIR}/{answers.get('project_dir', SAMPLE_PROJECT)}/"
    try:
        state = _worker(Path(root), run)
        project_tree, monorepo_tree, sources = state.render(answers, config, prefix)
    except UserError as exc:
        findings.append(Finding.from_error(CHECK, case, exc, Path(root)))
        return findings, workflows, time.perf_counter() - start
    files = {prefix + rel: data for rel, data in project_tree.items()}
    for rel, data in monorepo_tree.items():
        files.setdefault(rel, data)
    for path in sorted(files):
        rel = path.removeprefix(prefix)
        project_yaml = path.startswith(prefix) and (
            rel == BUNDLE_FILE or rel.startswith("resources/")
        )
        findings += state.file_checks(path, files[path], project_yaml)
        if is_ci_path(path):
            ci_found, for_zizmor = state.ci_checks(path, files[path])
            findings += ci_found
            if for_zizmor:
                workflows[path] = (files[path], sources.get(path, ""))
    findings += _bundle_findings(project_tree, answers, config, prefix)
    if GITLAB_ROOT in monorepo_tree:
        findings += state.gitlab_findings(answers, config, project_tree, monorepo_tree, sources)
    findings += broken_links(files, CHECK, "")
    findings = [_at_template_source(f, sources, case) for f in findings]
    return findings, workflows, time.perf_counter() - start


def _at_template_source(finding: Finding, sources: Mapping[str, str], case: str) -> Finding:
    """Point a finding in a rendered file at the template file to fix; the rendered path and
    line (which a rendered ``.j2`` file does not share with its template) go into the message.
    A file copied as is keeps its line."""
    source = sources.get(finding.file)
    if source is None:
        return replace(finding, check=CHECK, project=case)
    where = f"{finding.file}:{finding.line}" if finding.line else finding.file
    copied = not source.endswith(TEMPLATE_SUFFIX)
    return replace(
        finding,
        check=CHECK,
        project=case,
        file=source,
        line=finding.line if copied else None,
        message=finding.message if copied else f"{finding.message} (rendered as {where})",
    )


def _bundle_findings(
    tree: Tree, answers: Mapping[str, Any], config: MonorepoConfig, prefix: str
) -> list[Finding]:
    from monostack.checks.bundle_validate import validate_project_tree

    name = str(answers.get("project_name", SAMPLE_PROJECT))
    return list(validate_project_tree(tree, name, config, prefix))


def _safe_check(
    root: Path, run: str, case: str, config: MonorepoConfig, answers: Mapping[str, Any]
) -> Outcome:
    """check_combination, with a crash turned into this combination's error finding."""
    start = time.perf_counter()
    try:
        return check_combination(root, case, config, answers, run)
    except Exception as exc:  # one broken combination must not hide the others
        message = f"check crashed: {type(exc).__name__}: {exc}"
        return [Finding(CHECK, case, "", None, ERROR, message)], {}, time.perf_counter() - start


def _check_chunk(root: Path, run: str, chunk: list[Combination]) -> list[Outcome]:
    """Several combinations in one worker call: same config, so mostly the same CI files,
    which the worker's memo then checks once."""
    return [_safe_check(root, run, case, cfg, answers) for case, cfg, answers in chunk]


# ------------------------------------------------------------------------------------- all
def defaults_findings(template: StackTemplate, config: MonorepoConfig) -> list[Finding]:
    """``new-project --name X`` with every other answer left at its default must work on every
    cloud and CI platform: the combinations above give every choice explicitly, so a default
    outside its choices (or failing its pattern) would otherwise go unnoticed."""
    findings = []
    for cloud in CLOUDS:
        for platform in CICD_PLATFORMS:
            cfg = config.replace(cloud=cloud, cicd_platform=platform)
            try:
                template.resolve_answers({"project_name": SAMPLE_PROJECT}, cfg)
            except UserError as exc:
                message = (
                    f"new-project with the default answers fails on {cloud}/{platform}: "
                    f"{exc.message}; fix the default in stack.yml"
                )
                findings.append(
                    Finding(CHECK, MONOREPO, f"{TEMPLATE_DIR}/stack.yml", None, ERROR, message)
                )
                return findings  # one is enough: the same default fails everywhere
    return findings


def run_render_matrix(
    root: Path,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    config: MonorepoConfig | None = None,
    cases: Collection[str] | None = None,
) -> list[CaseResult]:
    """One :class:`CaseResult` per combination, in :func:`matrix_combinations` order.

    ``jobs`` worker processes (default: one per CPU; 1 = in this process). ``progress`` is
    called with (done, total) as combinations finish. ``cases``: only the combinations with
    these ids (a shard, or the ones the cache does not hold). A template or ``monorepo.yml``
    that cannot load gives a single failed case; ``config``: ``monorepo.yml`` already loaded.
    """
    from monostack.template import load_template

    root = Path(root)
    try:
        config = config if config is not None else load_config(root)
        template = _deterministic(load_template(root / TEMPLATE_DIR))
        combos = matrix_combinations(template, config)
        if cases is not None:
            wanted = set(cases)
            combos = [combo for combo in combos if combo[0] in wanted]
    except UserError as exc:
        return [CaseResult(CHECK, MONOREPO, [Finding.from_error(CHECK, MONOREPO, exc, root)])]
    broken_defaults = defaults_findings(template, config)
    if broken_defaults:
        return [CaseResult(CHECK, "defaults", broken_defaults)]
    if not combos and cases is not None:
        return []
    if not combos:
        message = "stack.yml has no valid combination of answers; check its parameters' choices"
        return [
            CaseResult(
                CHECK,
                MONOREPO,
                [Finding(CHECK, MONOREPO, f"{TEMPLATE_DIR}/stack.yml", None, ERROR, message)],
            )
        ]

    outcomes = _run_all(root, combos, jobs, progress)
    hits = zizmor_scan(
        ((path, data) for _, workflows, _ in outcomes for path, (data, _) in workflows.items()),
        root,
    )
    results = []
    for (case, _, _), (findings, workflows, seconds) in zip(combos, outcomes, strict=True):
        for path, (data, source) in workflows.items():
            findings += [
                _at_template_source(f, {path: source} if source else {}, case)
                for f in hits_to_findings(hits[content_key(path, data)], path, case, CHECK)
            ]
        findings.sort(key=Finding.order)
        results.append(CaseResult(CHECK, case, findings, round(seconds, 3)))
    return results


def _run_all(
    root: Path,
    combos: list[Combination],
    jobs: int | None,
    progress: Callable[[int, int], None] | None,
) -> list[Outcome]:
    total = len(combos)
    run = uuid.uuid4().hex
    chunks: dict[MonorepoConfig, list[int]] = {}
    for i, (_, cfg, _) in enumerate(combos):
        chunks.setdefault(cfg, []).append(i)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(chunks)))
    outcomes: dict[int, Outcome] = {}
    if jobs == 1:
        for i, combo in enumerate(combos):
            outcomes[i] = _safe_check(root, run, *combo)
            if progress:
                progress(len(outcomes), total)
        return [outcomes[i] for i in range(total)]

    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=jobs, mp_context=process_context()) as pool:
        futures = {
            pool.submit(_check_chunk, root, run, [combos[i] for i in indexes]): indexes
            for indexes in chunks.values()
        }
        for future in as_completed(futures):
            indexes = futures[future]
            try:
                outcomes.update(zip(indexes, future.result(), strict=True))
            except Exception as exc:  # the worker process itself died
                for i in indexes:
                    message = f"worker failed: {exc!r}"
                    outcomes[i] = (
                        [Finding(CHECK, combos[i][0], "", None, ERROR, message)],
                        {},
                        0.0,
                    )
            if progress:
                progress(len(outcomes), total)
    return [outcomes[i] for i in range(total)]
