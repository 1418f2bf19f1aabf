"""CI files: YAML parse, yamllint, check-jsonschema's vendored schemas and ``zizmor --offline``.

Every problem becomes one :class:`Finding` with the file and line. Contents are passed in memory
(``{repo-relative path: bytes}``) so the same code checks committed files (``lint``) and
rendered-but-never-written ones (``render-matrix``). zizmor is a separate program: it gets the
files in a temporary directory, once per call for all of them, identical contents only once.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from monostack.checks import ERROR, WARNING, Finding
from monostack.checks.text import clip
from monostack.checks.zizmor import (  # noqa: F401 - part of this module's interface
    ZIZMOR_FILES,
    ZizmorHit,
    content_key,
    hits_to_findings,
    zizmor_config,
    zizmor_executable,
    zizmor_scan,
)
from monostack.errors import not_utf8

GITHUB_WORKFLOWS = "github-workflows"
GITHUB_ACTIONS = "github-actions"
AZURE_PIPELINES = "azure-pipelines"
GITLAB_CI = "gitlab-ci"
GITLAB_ROOT = ".gitlab-ci.yml"
YAML_SUFFIXES = (".yml", ".yaml")
YAMLLINT_FILES = (".yamllint", ".yamllint.yml", ".yamllint.yaml")

# Used when the monorepo has no .yamllint.yml: the same rules as the one monostack ships.
DEFAULT_YAMLLINT_CONFIG = """\
extends: default
rules:
  document-start: disable
  truthy:
    allowed-values: ["true", "false"]
    check-keys: false
  braces:
    min-spaces-inside: 0
    max-spaces-inside: 1
  brackets:
    min-spaces-inside: 0
    max-spaces-inside: 1
  line-length:
    max: 120
    allow-non-breakable-words: true
    allow-non-breakable-inline-mappings: true
  comments:
    min-spaces-from-content: 1
  comments-indentation: disable
  indentation:
    spaces: 2
    indent-sequences: consistent
"""


# ---------------------------------------------------------------------------- classification
def is_yaml(path: str) -> bool:
    return path.endswith(YAML_SUFFIXES)


def is_ci_path(path: str) -> bool:
    """A YAML file under a ``.github/``, ``.azure/`` or ``.gitlab/`` directory (root or
    project), or GitLab's ``.gitlab-ci.yml``."""
    parts = PurePosixPath(path).parts
    folders = {".github", ".azure", ".gitlab"} & set(parts[:-1])
    return is_yaml(path) and (bool(folders) or parts[-1] == GITLAB_ROOT)


def schema_for(path: str) -> str | None:
    """The vendored check-jsonschema schema a CI file must satisfy, if any."""
    if not is_yaml(path):
        return None
    parts = PurePosixPath(path).parts
    if len(parts) >= 3 and parts[-3:-1] == (".github", "workflows"):
        return GITHUB_WORKFLOWS
    if len(parts) >= 3 and parts[-3:-1] == (".azure", "devops-pipelines"):
        return AZURE_PIPELINES
    if parts[-1] in ("action.yml", "action.yaml") and ".github" in parts:
        return GITHUB_ACTIONS
    if parts[-1] == GITLAB_ROOT or parts[-3:-1] == (".gitlab", "pipelines"):
        return GITLAB_CI
    return None


# ------------------------------------------------------------------------------- YAML parsing
def decode(path: str, data: bytes, project: str, check: str) -> tuple[str | None, list[Finding]]:
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        return None, [Finding(check, project, path, None, ERROR, not_utf8(exc))]


def yaml_parse_findings(path: str, text: str, project: str, check: str) -> list[Finding]:
    """Strict parse (duplicate keys refused, every document of the file); GitLab's
    ``!reference`` tag is accepted in GitLab files, as GitLab does."""
    import yaml

    from monostack.yamlutil import GitLabLoader, StrictLoader

    loader = GitLabLoader if schema_for(path) == GITLAB_CI else StrictLoader
    try:
        for _ in yaml.load_all(text, Loader=loader):  # noqa: S506 - SafeLoader based
            pass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark is not None else None
        return [Finding(check, project, path, line, ERROR, clip(f"invalid YAML: {problem}"))]
    return []


# ----------------------------------------------------------------------------------- yamllint
@dataclass(frozen=True)
class YamllintSetup:
    """The yamllint configuration in force, or why there is none."""

    config: Any
    source: str  # repo-relative file name, or "built-in"
    error: Finding | None = None
    # content digest -> problems: synced CI files are byte-for-byte copies of project ones
    memo: dict[tuple[str, tuple[str, ...]], list[tuple[int, str, str]]] = field(
        default_factory=dict, compare=False, repr=False
    )


@functools.lru_cache(maxsize=8)
def _yamllint_config(source: str, text: str, file: str | None) -> Any:
    from yamllint.config import YamlLintConfig

    return YamlLintConfig(file=file) if file else YamlLintConfig(content=text)


def yamllint_setup(root: Path | None, check: str = "lint") -> YamllintSetup:
    """The repo's ``.yamllint.yml`` when ``root`` has one, else the built-in equivalent."""
    from yamllint.config import YamlLintConfigError

    for name in YAMLLINT_FILES:
        path = Path(root) / name if root is not None else None
        if path is None or not path.is_file():
            continue
        try:
            conf = _yamllint_config(name, path.read_text(encoding="utf-8"), str(path))
        except (YamlLintConfigError, OSError, UnicodeDecodeError) as exc:
            finding = Finding(
                check, "", name, None, ERROR, clip(f"invalid yamllint config: {exc}; fix it")
            )
            return YamllintSetup(None, name, finding)
        return YamllintSetup(conf, name)
    return YamllintSetup(_yamllint_config("built-in", DEFAULT_YAMLLINT_CONFIG, None), "built-in")


def yamllint_findings(
    path: str, text: str, project: str, check: str, setup: YamllintSetup
) -> list[Finding]:
    from yamllint import linter

    if setup.config is None or setup.config.is_file_ignored(path):
        return []
    # Same text, same rules, same problems (matrix renders repeat files); the rules in force
    # depend on the path (per-rule `ignore:`), so they are part of the key.
    rules = tuple(sorted(rule.ID for rule in setup.config.enabled_rules(path)))
    digest = (hashlib.sha256(text.encode("utf-8")).hexdigest(), rules)
    problems = setup.memo.get(digest)
    if problems is None:
        problems = setup.memo[digest] = [
            (
                problem.line,
                ERROR if problem.level == "error" else WARNING,
                # a syntax error's text already ends in "(syntax)"; it has no rule
                clip(f"yamllint: {problem.desc}" + (f" ({problem.rule})" if problem.rule else "")),
            )
            for problem in linter.run(text, setup.config, path)
        ]
    return [Finding(check, project, path, line, sev, msg) for line, sev, msg in problems]


# -------------------------------------------------------------------------------- JSON schema
def _hook_settings(schema: str) -> tuple[str, str | None]:
    """(regex variant, data transform) check-jsonschema's own pre-commit hook uses for a schema:
    e.g. azure-pipelines needs the non-unicode regex variant and its expression transform."""
    from check_jsonschema.catalog import SCHEMA_CATALOG

    args = SCHEMA_CATALOG.get(schema, {}).get("hook_config", {}).get("add_args", [])
    options = dict(zip(args[::2], args[1::2], strict=False))
    return options.get("--regex-variant", "default"), options.get("--data-transform")


@functools.cache
def _validator(schema: str) -> tuple[Any, Any]:
    """check-jsonschema's validator for a vendored schema, with its regex and format rules,
    and the data transform to apply first (or None)."""
    from check_jsonschema.formats import FormatOptions
    from check_jsonschema.regex_variants import RegexImplementation, RegexVariantName
    from check_jsonschema.schema_loader import BuiltinSchemaLoader
    from check_jsonschema.transforms import TRANSFORM_LIBRARY

    variant, transform = _hook_settings(schema)
    regex = RegexImplementation(RegexVariantName(variant))
    loader = BuiltinSchemaLoader(f"vendor.{schema}")
    validator = loader.get_validator(schema, {}, FormatOptions(regex_impl=regex), regex, False)
    return validator, TRANSFORM_LIBRARY.get(transform) if transform else None


# Event filters GitHub also takes as one string (`branches: main`), where the schema wants a list.
_GITHUB_FILTERS = (
    "branches",
    "branches-ignore",
    "tags",
    "tags-ignore",
    "paths",
    "paths-ignore",
    "types",
)


def as_github_reads(document: Any) -> Any:
    """The workflow as GitHub runs it, for the vendored schema, which is stricter than GitHub:
    a string filter is a list of one; a ``strategy:`` without a ``matrix`` (only fail-fast or
    max-parallel) is fine. Syntax GitHub accepts must never be an error."""
    if not isinstance(document, dict):
        return document
    on = document.get("on")
    for spec in on.values() if isinstance(on, dict) else ():
        for key in _GITHUB_FILTERS if isinstance(spec, dict) else ():
            if isinstance(spec.get(key), str):
                spec[key] = [spec[key]]
    jobs = document.get("jobs")
    for job in jobs.values() if isinstance(jobs, dict) else ():
        strategy = job.get("strategy") if isinstance(job, dict) else None
        if isinstance(strategy, dict) and "matrix" not in strategy:
            del job["strategy"]
    return document


def key_line(root_node: Any, path: Iterable[Any]) -> int | None:
    """Line (1-based) of the deepest key or item along a JSON path in a composed YAML tree."""
    import yaml

    node = root_node
    line = node.start_mark.line + 1 if node is not None else None
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(step):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                break
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            break
    return line


_UNEXPECTED = re.compile(r"\('([^']+)'(?:, '[^']+')* (?:was|were) unexpected\)")


def schema_findings(path: str, text: str, schema: str, project: str, check: str) -> list[Finding]:
    """Validate against a vendored schema; one finding per error, at the offending key."""
    import yaml

    from monostack.yamlutil import FastSafeLoader, GitLabLoader, compose_yaml

    validator, transform = _validator(schema)
    try:
        # YAML 1.2 as the CI services read it; GitLab's `!reference [job, key]` as its list
        loader = GitLabLoader if schema == GITLAB_CI else FastSafeLoader
        document = yaml.load(text, Loader=loader)  # noqa: S506 - YAML 1.2, safe
        if schema == GITHUB_WORKFLOWS:
            document = as_github_reads(document)
        if transform is not None:
            document = transform(document)
    except Exception as exc:  # the YAML's and the transforms' errors share no useful base
        return [Finding(check, project, path, None, ERROR, clip(f"{schema} schema: {exc}"))]
    errors = list(validator.iter_errors(document))
    if not errors:
        return []
    try:  # node tree for line numbers, only when there is something to report
        tree = compose_yaml(text)
    except yaml.YAMLError:
        tree = None
    found: dict[tuple, Finding] = {}
    for error in errors:
        for where, message in _explain(error):
            unexpected = _UNEXPECTED.search(message)
            line = key_line(tree, where + [unexpected.group(1)] if unexpected else where)
            label = ".".join(str(p) for p in where) or "<top level>"
            text = clip(f"{schema} schema: {label}: {message}")
            found.setdefault((line, text), Finding(check, project, path, line, ERROR, text))
    return sorted(found.values(), key=Finding.order)


def _leaves(error: Any) -> Iterable[Any]:
    if not error.context:
        yield error
    for sub in error.context:
        yield from _leaves(sub)


def _explain(error: Any) -> list[tuple[list[Any], str]]:
    """The useful part of a (possibly oneOf/anyOf) schema error: the alternative that got
    deepest into the document is the one the author meant; jsonschema's best match per path."""
    from jsonschema.exceptions import best_match

    leaves = list(_leaves(error))
    depth = max(len(leaf.absolute_path) for leaf in leaves)
    groups: dict[tuple, list[Any]] = {}
    for leaf in leaves:
        if len(leaf.absolute_path) == depth:
            groups.setdefault(tuple(leaf.absolute_path), []).append(leaf)
    return [(list(where), best_match(errors).message) for where, errors in groups.items()]


# ------------------------------------------------------------------------------------- static
def static_ci_findings(
    files: Mapping[str, bytes], project: str, check: str, setup: YamllintSetup
) -> tuple[list[Finding], dict[str, bytes]]:
    """Parse, yamllint and schema checks (in-process). Also returns the GitHub workflows that
    parsed, for the caller to hand to :func:`zizmor_scan` (batched across many file sets)."""
    findings: list[Finding] = []
    if setup.error is not None:
        findings.append(replace(setup.error, project=project))
    workflows: dict[str, bytes] = {}
    for path in sorted(files):
        text, problems = decode(path, files[path], project, check)
        findings += problems
        if text is None:
            continue
        parse_problems = yaml_parse_findings(path, text, project, check)
        findings += parse_problems
        if parse_problems:
            continue  # yamllint and the schema would only repeat the syntax error
        findings += yamllint_findings(path, text, project, check, setup)
        schema = schema_for(path)
        schema_problems = schema_findings(path, text, schema, project, check) if schema else []
        findings += schema_problems
        if schema == GITHUB_WORKFLOWS and not schema_problems:
            workflows[path] = files[path]  # zizmor would only skip an invalid workflow
    return findings, workflows


# --------------------------------------------------------------------------------------- all
def check_ci_files(
    files: Mapping[str, bytes],
    project: str,
    check: str,
    root: Path | None = None,
    yamllint: YamllintSetup | None = None,
) -> list[Finding]:
    """Every CI check on a set of files: parse, yamllint, vendored schema, zizmor (workflows).

    ``files`` maps repo-relative paths to contents; ``root`` supplies the repo's
    ``.yamllint.yml`` and ``zizmor.yml`` (built-in yamllint rules, zizmor defaults without).
    ``yamllint``: a :func:`yamllint_setup` to reuse (and share its memo) across calls.
    """
    setup = yamllint or yamllint_setup(root, check)
    findings, workflows = static_ci_findings(files, project, check, setup)
    hits = zizmor_scan(workflows.items(), root)
    for path, data in workflows.items():
        findings += hits_to_findings(hits[content_key(path, data)], path, project, check)
    return sorted(findings, key=Finding.order)


def check_ci_file_sets(
    sets: Mapping[str, Mapping[str, bytes]],
    check: str,
    root: Path | None = None,
    yamllint: YamllintSetup | None = None,
    own: Mapping[str, YamllintSetup] | None = None,
) -> list[Finding]:
    """:func:`check_ci_files` for many cases at once (case name -> files), with one zizmor
    run over the workflows of all of them. Findings carry their case as ``project``. ``own``:
    a case's own yamllint setup (a project with its own config), used instead of the repo's."""
    setup = yamllint or yamllint_setup(root, check)
    findings: list[Finding] = []
    pending: list[tuple[str, str, bytes]] = []
    for project, files in sets.items():
        here = replace(own[project], error=None) if own and project in own else setup
        found, workflows = static_ci_findings(files, project, check, here)
        if here is setup:  # a broken repo config is reported by the first case only
            setup = replace(setup, error=None)
        findings += found
        pending += [(project, path, data) for path, data in workflows.items()]
    hits = zizmor_scan(((path, data) for _, path, data in pending), root)
    for project, path, data in pending:
        findings += hits_to_findings(hits[content_key(path, data)], path, project, check)
    return findings


# ---------------------------------------------------------------------------------- processes
def process_context() -> Any:
    """Start method for the checks' worker pools. fork is fast (workers inherit loaded modules)
    and safe in a single-threaded process; with other threads running (e.g. a progress
    display) a fork could inherit a held lock, so forkserver then."""
    import multiprocessing
    import threading

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else None)
