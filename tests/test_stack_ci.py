"""The CI/CD files of the stack template, for every cloud x CI platform x template choice.

Each combination renders two projects and the monorepo part in memory; the CI files are written
to a temp tree and checked with the real tools (check-jsonschema's vendored schemas, zizmor
--offline with the repo's zizmor.yml, yamllint with the repo's .yamllint.yml) plus structural
rules: triggers, path filters and working directories inside the project, unique names and
concurrency groups, no expression injection, least-privilege permissions, the action pinning
policy, the credentials per cloud and what differs on GitHub Enterprise Server. The external
tools run once per check over the distinct file contents of all combinations.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from monostack.config import CICD_PLATFORMS, CLOUDS, load_config
from monostack.projects import new_project
from monostack.template import load_template
from tests.conftest import REPO_ROOT, VENV_BIN, invoke_in_process, root_of

GITHUB = "github_actions"
GHES = "github_actions_for_github_enterprise_servers"
AZURE_DEVOPS = "azure_devops"
GITLAB = "gitlab"
GITHUB_PLATFORMS = (GITHUB, GHES)

# Two projects rendered side by side; the second one's directory differs from its name.
PROJECTS = ("churn", "fraud-detect")
# Branch names that differ from the defaults, to prove the triggers come from monorepo.yml.
DEFAULT_BRANCH = "trunk"
RELEASE_BRANCH = "stable"

GITHUB_PROJECT_FILES = ("run-tests", "bundle-ci", "bundle-cd-staging", "bundle-cd-prod")
AZURE_PROJECT_FILES = ("tests-ci", "bundle-cicd")
GITHUB_MONOREPO_FILES = (
    ".github/workflows/lint-cicd-workflow-files.yml",
    ".github/workflows/monostack-setup-cicd.yml",
    ".github/workflows/monostack-test-all.yml",
)
AZURE_MONOREPO_FILES = (
    ".azure/devops-pipelines/lint-cicd-workflow-files.yml",
    ".azure/devops-pipelines/monostack-setup-cicd.yml",
    ".azure/devops-pipelines/monostack-test-all.yml",
)
GITLAB_PROJECT_FILES = GITHUB_PROJECT_FILES
GITLAB_MONOREPO_FILES = (".gitlab-ci.yml",)
ADO_SOURCES = "$(Build.SourcesDirectory)/"
TEMPLATE_SYNTAX = ("{{", "}}", "{%", "%}", "{#", "#}")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)
# Permission scopes a job may hold with write access, per workflow kind: only the PR comment.
ALLOWED_WRITES = {"bundle-ci": {"comment": {"pull-requests"}}}


# ------------------------------------------------------------------------------ rendering
@dataclass
class CiFile:
    combo: str
    path: str  # repo-relative: projects/<dir>/.github/... or .github/... for the monorepo part
    text: str
    platform: str
    cloud: str
    project: str | None = None  # project name; None for monorepo files
    project_dir: str | None = None

    @property
    def is_github(self) -> bool:
        return self.platform in GITHUB_PLATFORMS

    @property
    def is_gitlab(self) -> bool:
        return self.platform == GITLAB

    @property
    def schema(self) -> str:
        """The vendored check-jsonschema schema of the file's platform."""
        if self.is_github:
            return "github-workflows"
        return "gitlab-ci" if self.is_gitlab else "azure-pipelines"

    @property
    def kind(self) -> str:
        """run-tests, bundle-ci, ... for project files; the file stem for monorepo files."""
        stem = PurePosixPath(self.path).stem
        return stem[len(self.project) + 1 :] if self.project else stem

    @property
    def data(self) -> Any:
        return parse_yaml(self.text)


@functools.cache
def parse_yaml(text: str) -> Any:
    """Parsed once per distinct content (many combinations share a file); never mutate it."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


@dataclass
class Combo:
    ident: str
    cloud: str
    platform: str
    choices: dict[str, Any]
    config: Any
    files: list[CiFile] = field(default_factory=list)
    project_trees: dict[str, dict[str, bytes]] = field(default_factory=dict)


def _combo_id(cloud: str, platform: str, choices: Mapping[str, Any]) -> str:
    parts = [cloud, platform] + [
        f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in choices.items()
    ]
    return "-".join(parts)


def is_ci_path(path: str) -> bool:
    return path.startswith((".github/", ".azure/", ".gitlab/")) or path == ".gitlab-ci.yml"


# The compute of the jobs does not reach the CI files (test_ci_files_do_not_depend_on_compute):
# the CI combinations use the monorepo's default compute only.
CI_COMPUTE = "serverless"


def render_combos() -> list[Combo]:
    """Every cloud x CI platform x valid combination of the template's choice parameters
    (compute fixed to CI_COMPUTE)."""
    template = load_template(REPO_ROOT / "stack_template")
    base = load_config(REPO_ROOT).replace(
        default_branch=DEFAULT_BRANCH, release_branch=RELEASE_BRANCH
    )
    combos = []
    for cloud in CLOUDS:
        for platform in CICD_PLATFORMS:
            config = base.replace(cloud=cloud, cicd_platform=platform)
            for choices in template.iter_choice_combinations({"project_name": PROJECTS[0]}, config):
                if choices.get("compute", CI_COMPUTE) != CI_COMPUTE:
                    continue
                combo = Combo(_combo_id(cloud, platform, choices), cloud, platform, choices, config)
                for name in PROJECTS:
                    answers = template.resolve_answers({"project_name": name, **choices}, config)
                    tree = template.render_project(answers, config)
                    combo.project_trees[name] = tree
                    for rel, data in sorted(tree.items()):
                        if is_ci_path(rel):
                            combo.files.append(
                                CiFile(
                                    combo.ident,
                                    f"projects/{answers['project_dir']}/{rel}",
                                    data.decode("utf-8"),
                                    platform,
                                    cloud,
                                    name,
                                    answers["project_dir"],
                                )
                            )
                for rel, data in sorted(template.render_monorepo(config).items()):
                    if not is_ci_path(rel):
                        continue  # the monorepo's guides (docs/)
                    combo.files.append(
                        CiFile(combo.ident, rel, data.decode("utf-8"), platform, cloud)
                    )
                combos.append(combo)
    return combos


@pytest.fixture(scope="module")
def combos() -> list[Combo]:
    return render_combos()


@pytest.fixture(scope="module")
def all_files(combos) -> list[CiFile]:
    return [f for combo in combos for f in combo.files]


def write_unique(files: Iterable[CiFile], base: Path) -> dict[str, list[CiFile]]:
    """Write each distinct content once (as .github/workflows/<name> so every tool sees a
    workflow) and map the written path to every CiFile with that content."""
    by_path: dict[str, list[CiFile]] = defaultdict(list)
    for f in files:
        digest = hashlib.sha256(f.text.encode()).hexdigest()[:16]
        sub = {
            "github-workflows": ".github/workflows",
            "azure-pipelines": ".azure/devops-pipelines",
            "gitlab-ci": ".gitlab/pipelines",
        }[f.schema]
        target = base / digest / sub / PurePosixPath(f.path).name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.text, encoding="utf-8")
        by_path[str(target)].append(f)
    return by_path


# --------------------------------------------------------------------------- the checks
def run_check_jsonschema(paths: list[str], schema: str) -> dict[str, list[str]]:
    """check-jsonschema's vendored schema over many files in one call: {path: [errors]}.
    azure-pipelines needs the non-unicode regex variant (its patterns break the default one)."""
    extra = {
        "azure-pipelines": ["--regex-variant", "nonunicode"],
        "gitlab-ci": ["--regex-variant", "nonunicode", "--data-transform", "gitlab-ci"],
    }.get(schema, [])
    result = subprocess.run(
        [str(VENV_BIN / "check-jsonschema"), "--builtin-schema", f"vendor.{schema}", *extra]
        + ["--output-format", "json", *paths],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    problems: dict[str, list[str]] = defaultdict(list)
    for err in report.get("errors", []):
        problems[err["filename"]].append(f"{err['path']}: {err['message'][:200]}")
    for err in report.get("parse_errors", []):
        problems[err["filename"]].append(f"parse error: {err['message'][:200]}")
    assert result.returncode == (1 if problems else 0), result.stderr
    return dict(problems)


def run_zizmor(paths: list[str], config: Path = REPO_ROOT / "zizmor.yml") -> dict[str, list[str]]:
    """``zizmor --offline`` with the repo's config over many files in one call: {path: [findings]}
    (every finding of the default persona counts, High or not). Strict collection: a file zizmor
    cannot load fails the call instead of being skipped unaudited."""
    result = subprocess.run(
        [str(VENV_BIN / "zizmor"), "--offline", "--strict-collection", "--no-progress"]
        + ["--config", str(config)]
        + ["--format", "json", *paths],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout.strip().startswith("["), result.stderr
    problems: dict[str, list[str]] = defaultdict(list)
    for finding in json.loads(result.stdout):
        locations = finding["locations"]
        primary = next((x for x in locations if x["symbolic"]["kind"] == "Primary"), locations[0])
        path = primary["symbolic"]["key"]["Local"]["verbatim_path"]
        line = primary["concrete"]["location"]["start_point"]["row"] + 1
        severity = finding["determinations"]["severity"]
        problems[path].append(f"line {line}: {finding['ident']} ({severity}): {finding['desc']}")
    assert (result.returncode == 0) == (not problems), result.stderr
    return dict(problems)


@functools.cache
def _yamllint_config() -> Any:
    from yamllint.config import YamlLintConfig

    return YamlLintConfig(file=str(REPO_ROOT / ".yamllint.yml"))


def yamllint_problems(text: str) -> list[str]:
    """Every yamllint problem (errors and warnings) with the repo's fixed .yamllint.yml."""
    from yamllint import linter

    return [
        f"line {p.line}: {p.level}: {p.desc} ({p.rule})"
        for p in linter.run(text, _yamllint_config())
    ]


def template_syntax_problems(text: str) -> list[str]:
    """Jinja2 syntax left in a rendered file, CI expressions ``${{ ... }}`` aside."""
    stripped = EXPRESSION.sub("", text)
    return [f"template syntax {token!r} left" for token in TEMPLATE_SYNTAX if token in stripped]


def _on(doc: Mapping) -> dict:
    """The ``on:`` block (PyYAML reads the key as True)."""
    on = doc.get("on", doc.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on or {}


def _inside(path: str, project_dir: str) -> bool:
    """``path`` is ``projects/<project_dir>`` or below it (no ``..`` escapes)."""
    parts = PurePosixPath(path).parts
    return parts[:2] == ("projects", project_dir) and ".." not in parts


def _steps(doc: Mapping) -> Iterable[tuple[str, dict]]:
    for job_id, job in (doc.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            yield job_id, step


def github_problems(f: CiFile) -> list[str]:
    """Structural rules for one GitHub workflow."""
    doc = f.data
    problems = []
    # least privilege: top-level permissions present and read-only, every job explicit,
    # write scopes only where the workflow kind allows them
    top = doc.get("permissions", "missing")
    if top == "missing":
        problems.append("no top-level permissions")
    elif top not in ({}, "read-all") and (
        not isinstance(top, dict) or any(v not in ("read", "none") for v in top.values())
    ):
        problems.append(f"top-level permissions grant write: {top}")
    for job_id, job in (doc.get("jobs") or {}).items():
        perms = job.get("permissions", "missing")
        if perms == "missing":
            problems.append(f"job {job_id}: no permissions")
            continue
        if not isinstance(perms, dict):
            problems.append(f"job {job_id}: permissions {perms!r} is not a scope mapping")
            continue
        writes = {scope for scope, level in perms.items() if level == "write"}
        allowed = ALLOWED_WRITES.get(f.kind, {}).get(job_id, set())
        if writes - allowed:
            problems.append(f"job {job_id}: write permission on {sorted(writes - allowed)}")
    for job_id, step in _steps(doc):
        uses = step.get("uses", "")
        # no expression in a shell script or a github-script body: inputs go through env
        for key, body in (
            ("run", step.get("run")),
            ("script", (step.get("with") or {}).get("script")),
        ):
            if body and "${{" in str(body):
                problems.append(f"job {job_id}: expression inside {key}: {step.get('name')!r}")
        with_ = step.get("with") or {}
        if uses.startswith("actions/checkout@") and with_.get("persist-credentials") is not False:
            problems.append(f"job {job_id}: checkout without persist-credentials: false")
        if uses:
            problems += pinning_problems(uses, f.platform)
    # project workflows: name, concurrency and every path inside the project
    if f.project:
        problems += project_scope_problems(f, doc)
    return problems


def pinning_problems(uses: str, platform: str) -> list[str]:
    """The policy of zizmor.yml: actions/* and databricks/* by release tag (exact on github.com,
    major on GHES, except the CLI whose tag is its version), nothing else."""
    owner = uses.split("/", 1)[0]
    if owner not in ("actions", "databricks"):
        return [f"{uses}: only actions/* and databricks/* may be used (others need a SHA pin)"]
    tag = uses.rpartition("@")[2]
    exact = re.fullmatch(r"v\d+\.\d+\.\d+", tag)
    if owner == "databricks" or platform == GITHUB:
        return [] if exact else [f"{uses}: pin an exact release tag vX.Y.Z"]
    # the artifact actions' v3 line in its node20 build (v4+ need github.com's artifact service)
    if re.fullmatch(r"v\d+", tag) or (tag == "v3-node20" and "-artifact@" in uses):
        return []
    return [f"{uses}: GHES uses the major tag vN"]


def project_scope_problems(f: CiFile, doc: Mapping) -> list[str]:
    problems = []
    name = str(doc.get("name", ""))
    if f.project not in name:
        problems.append(f"workflow name {name!r} lacks the project name")
    group = str((doc.get("concurrency") or {}).get("group", ""))
    if f.project not in group:
        problems.append(f"concurrency group {group!r} lacks the project name")
    working = (doc.get("defaults") or {}).get("run", {}).get("working-directory")
    if working != f"projects/{f.project_dir}":
        problems.append(f"defaults.run.working-directory is {working!r}")
    for job_id, job in (doc.get("jobs") or {}).items():
        wd = ((job.get("defaults") or {}).get("run") or {}).get("working-directory")
        if wd is not None and not _inside(wd, f.project_dir):
            problems.append(f"job {job_id}: working-directory {wd!r} outside the project")
        group = (job.get("concurrency") or {}).get("group")
        if group is not None and f.project not in str(group):
            problems.append(f"job {job_id}: concurrency group {group!r} lacks the project name")
    for job_id, step in _steps(doc):
        wd = step.get("working-directory")
        if wd is not None and not _inside(wd, f.project_dir):
            problems.append(f"job {job_id}: step working-directory {wd!r} outside the project")
    for event, spec in _on(doc).items():
        if event not in ("push", "pull_request"):
            continue
        paths = (spec or {}).get("paths")
        if not paths:
            problems.append(f"on.{event} has no paths filter")
            continue
        for path in paths:
            if not _inside(path.rstrip("*").rstrip("/") or "/", f.project_dir):
                problems.append(f"on.{event}.paths {path!r} outside projects/{f.project_dir}/")
    return problems


def azure_problems(f: CiFile) -> list[str]:
    """Structural rules for one Azure DevOps pipeline."""
    doc = f.data
    problems = []
    for job in _azure_jobs(doc):
        for step in job.get("steps") or []:
            if "checkout" in step and step.get("persistCredentials") not in ("false", False):
                problems.append("checkout without persistCredentials: false")
            script = step.get("script") or step.get("bash") or ""
            if "${{" in script:
                problems.append(f"template expression inside script {step.get('displayName')!r}")
            if f.project and script:
                wd = step.get("workingDirectory")
                if wd is not None and not (
                    wd.startswith(ADO_SOURCES) and _inside(wd[len(ADO_SOURCES) :], f.project_dir)
                ):
                    problems.append(f"workingDirectory {wd!r} outside the project")
                if wd is None and ("pytest" in script or "databricks bundle" in script):
                    problems.append(f"{step.get('displayName')!r} runs without workingDirectory")
    if f.project:
        if f.project_dir not in str(doc.get("name", "")):
            problems.append(f"run name {doc.get('name')!r} lacks the project directory")
        for trigger in ("trigger", "pr"):
            spec = doc.get(trigger)
            if spec == "none":
                continue
            paths = ((spec or {}).get("paths") or {}).get("include")
            if not paths:
                problems.append(f"{trigger} has no paths filter")
                continue
            for path in paths:
                if not _inside(path.rstrip("*").rstrip("/"), f.project_dir):
                    problems.append(f"{trigger}.paths {path!r} outside projects/{f.project_dir}/")
    return problems


GITLAB_GLOBAL = {"default", "include", "stages", "variables", "workflow", "image", "services"}


def _gitlab_jobs(doc: Mapping) -> Iterable[tuple[str, dict]]:
    return [(k, v) for k, v in (doc or {}).items() if k not in GITLAB_GLOBAL]


def gitlab_problems(f: CiFile) -> list[str]:
    """Structural rules for one GitLab pipeline file: a project file holds only jobs named
    after the project, each limited to changes in the project folder and working in it."""
    doc = f.data or {}
    problems = []
    for job_id, job in _gitlab_jobs(doc):
        if not job.get("image"):
            problems.append(f"job {job_id}: no image")
        if not f.project:
            continue
        if not job_id.startswith(f"{f.project}-"):
            problems.append(f"job {job_id}: name does not start with {f.project}-")
        group = job.get("resource_group")
        if group is not None and f.project_dir.replace("_", "") not in group.replace("-", ""):
            problems.append(f"job {job_id}: resource group {group!r} lacks the project name")
        rules = job.get("rules") or []
        if not rules:
            problems.append(f"job {job_id}: no rules")
        for rule in rules:
            if rule.get("changes") != {"paths": [f"projects/{f.project_dir}/**/*"]}:
                problems.append(f"job {job_id}: rule changes {rule.get('changes')!r}")
        if job["script"][0] != f'cd "projects/{f.project_dir}"':
            problems.append(f"job {job_id}: does not start in the project folder")
    if f.project:
        problems += [f"global keyword {k!r} in a project file" for k in GITLAB_GLOBAL & set(doc)]
    return problems


def _azure_jobs(doc: Mapping) -> Iterable[dict]:
    yield from doc.get("jobs") or []
    for stage in doc.get("stages") or []:
        yield from stage.get("jobs") or []


def identity_problems(files: list[CiFile]) -> list[str]:
    """What sync-workflows merges into one root folder must not clash: root file names, workflow
    names, concurrency groups (workflow and job level); Azure DevOps run names."""
    seen: dict[tuple[str, str], str] = {}
    problems = []

    def claim(kind: str, value: Any, owner: str) -> None:
        key = (kind, str(value))
        if key in seen and seen[key] != owner:
            problems.append(f"{kind} {value!r} used by {seen[key]} and {owner}")
        seen.setdefault(key, owner)

    for f in files:
        root_name = PurePosixPath(f.path).name
        claim("root file", f"{PurePosixPath(f.path).parent.parent.name}/{root_name}", f.path)
        if f.project and not root_name.startswith(f"{f.project}-"):
            problems.append(f"{f.path}: file name does not start with {f.project}-")
        doc = f.data
        if f.is_gitlab:  # GitLab merges everything into one pipeline: job names must be unique
            for job_id, job in _gitlab_jobs(doc):
                claim("job", job_id, f.path)
                if "resource_group" in job:
                    claim("resource group", job["resource_group"], f.path)
            continue
        claim("name", doc.get("name"), f.path)
        if f.is_github:
            claim("concurrency group", (doc.get("concurrency") or {}).get("group"), f.path)
            for job_id, job in (doc.get("jobs") or {}).items():
                group = (job.get("concurrency") or {}).get("group")
                if group is not None:
                    claim("concurrency group", group, f"{f.path} job {job_id}")
    return problems


# ------------------------------------------------------------------------------ the tests
def _report(problems: Mapping[str, list[str]]) -> str:
    return "\n".join(f"{where}: {p}" for where, ps in sorted(problems.items()) for p in ps)


def test_every_combination_renders_the_ci_files_of_its_platform(combos):
    template = load_template(REPO_ROOT / "stack_template")
    n_choices = sum(
        1 for _ in template.iter_choice_combinations({"project_name": "x" * 3}, combos[0].config)
    )
    assert n_choices >= 8  # compute x Unity Catalog x feature store at least
    assert len(combos) * 2 == len(CLOUDS) * len(CICD_PLATFORMS) * n_choices >= 72
    for combo in combos:
        paths = sorted(f.path for f in combo.files)
        if combo.platform in GITHUB_PLATFORMS:
            expected = [
                f"projects/{d}/.github/workflows/{n}-{kind}.yml"
                for n, d in (("churn", "churn"), ("fraud-detect", "fraud_detect"))
                for kind in GITHUB_PROJECT_FILES
            ] + list(GITHUB_MONOREPO_FILES)
        elif combo.platform == GITLAB:
            expected = [
                f"projects/{d}/.gitlab/pipelines/{n}-{kind}.yml"
                for n, d in (("churn", "churn"), ("fraud-detect", "fraud_detect"))
                for kind in GITLAB_PROJECT_FILES
            ] + list(GITLAB_MONOREPO_FILES)
        else:
            expected = [
                f"projects/{d}/.azure/devops-pipelines/{n}-{kind}.yml"
                for n, d in (("churn", "churn"), ("fraud-detect", "fraud_detect"))
                for kind in AZURE_PROJECT_FILES
            ] + list(AZURE_MONOREPO_FILES)
        assert paths == sorted(expected), combo.ident


def test_schemas(all_files, tmp_path):
    """check-jsonschema's vendored github-workflows / azure-pipelines / gitlab-ci schemas, one
    call each."""
    problems = {}
    for schema in ("github-workflows", "azure-pipelines", "gitlab-ci"):
        written = write_unique([f for f in all_files if f.schema == schema], tmp_path / schema)
        assert written, schema
        for path, errors in run_check_jsonschema(sorted(written), schema).items():
            for f in written[path]:
                problems[f"{f.combo}:{f.path}"] = errors
    assert not problems, _report(problems)


def test_zizmor_offline_finds_nothing(all_files, tmp_path):
    """Zero findings (of any severity) from zizmor --offline with the repo's zizmor.yml."""
    written = write_unique([f for f in all_files if f.is_github], tmp_path)
    problems = {}
    for path, findings in run_zizmor(sorted(written)).items():
        for f in written[path]:
            problems[f"{f.combo}:{f.path}"] = findings
    assert not problems, _report(problems)


def test_yamllint_clean_and_no_template_syntax(all_files):
    problems: dict[str, list[str]] = {}
    by_text: dict[str, list[str]] = {}
    for f in all_files:
        if f.text not in by_text:
            by_text[f.text] = yamllint_problems(f.text) + template_syntax_problems(f.text)
        if by_text[f.text]:
            problems[f"{f.combo}:{f.path}"] = by_text[f.text]
    assert not problems, _report(problems)


def test_structure_of_every_file(all_files):
    """Permissions, injection, checkout credentials, pinning, path filters, working directories,
    names and concurrency groups holding the project name."""
    problems = {}
    for f in all_files:
        if f.is_gitlab:
            found = gitlab_problems(f)
        else:
            found = github_problems(f) if f.is_github else azure_problems(f)
        if found:
            problems[f"{f.combo}:{f.path}"] = found
    assert not problems, _report(problems)


HEREDOC_PY = re.compile(r"python - <<'PY'\n(.*?)\n\s*PY\n", re.S)


def script_bodies(f: CiFile) -> Iterable[str]:
    """The shell scripts of a workflow's run steps or a pipeline's script steps."""
    if f.is_github:
        yield from (s["run"] for _, s in _steps(f.data) if "run" in s)
    elif f.is_gitlab:  # GitLab runs before_script and script as one shell script
        for _, job in _gitlab_jobs(f.data):
            yield "\n".join([*job.get("before_script", []), *job["script"]])
    else:
        yield from (s["script"] for j in _azure_jobs(f.data) for s in j["steps"] if "script" in s)


def test_scripts_parse_as_bash_and_embedded_python(all_files):
    """Every run/script body passes ``bash -n``; every ``python - <<'PY'`` body compiles."""
    import textwrap

    scripts = sorted({body for f in all_files for body in script_bodies(f)})
    assert len(scripts) > 20
    problems = []
    for body in scripts:
        result = subprocess.run(["bash", "-n"], input=body, capture_output=True, text=True)
        if result.returncode:
            problems.append(f"bash -n: {result.stderr.strip()}\n{body}")
        for code in HEREDOC_PY.findall(body):
            try:
                compile(textwrap.dedent(code), "<heredoc>", "exec")
            except SyntaxError as exc:
                problems.append(f"python: {exc}\n{code}")
    assert sum("python - <<'PY'" in body for body in scripts) >= 3
    assert not problems, "\n\n".join(problems)


def test_names_and_groups_unique_across_projects_and_monorepo(combos):
    problems = {c.ident: identity_problems(c.files) for c in combos}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, _report(problems)


def test_monorepo_part_is_not_project_specific(combos):
    for combo in combos:
        for f in combo.files:
            if f.project is None:
                for needle in ("churn", "fraud", "projects/{{"):
                    assert needle not in f.text, (combo.ident, f.path, needle)


def _github_file(combo: Combo, project: str, kind: str) -> CiFile:
    return next(f for f in combo.files if f.project == project and f.kind == kind)


def _env_of(doc: Mapping, step_name: str) -> dict:
    for _, step in _steps(doc):
        if step.get("name") == step_name:
            return step.get("env") or {}
    raise AssertionError(f"no step {step_name!r}")


def expected_credentials(cloud: str, env: str, host: str, secret: str) -> dict[str, str]:
    """The environment a Databricks CLI step must get for ``env`` (staging or prod);
    ``secret`` formats a secret name as the platform references it."""
    prefix = env.upper()
    if cloud == "azure":
        return {
            "DATABRICKS_HOST": host,
            "ARM_TENANT_ID": secret(f"{prefix}_AZURE_SP_TENANT_ID"),
            "ARM_CLIENT_ID": secret(f"{prefix}_AZURE_SP_APPLICATION_ID"),
            "ARM_CLIENT_SECRET": secret(f"{prefix}_AZURE_SP_CLIENT_SECRET"),
        }
    return {"DATABRICKS_HOST": host, "DATABRICKS_TOKEN": secret(f"{prefix}_WORKSPACE_TOKEN")}


# the workspace (and credentials) of each bundle target: test runs in staging
TARGET_ENV = {"test": "staging", "staging": "staging", "prod": "prod"}
CLI_TARGET = re.compile(r"databricks bundle \w+ -t (\w+)")


def test_github_triggers_and_credentials_per_cloud(combos):
    for combo in (c for c in combos if c.platform in GITHUB_PLATFORMS):
        for kind, event, branches, commands in (
            (
                "run-tests",
                "pull_request",
                [DEFAULT_BRANCH, RELEASE_BRANCH],
                ["validate -t test", "deploy -t test", "run -t test model_training_job"],
            ),
            (
                "bundle-ci",
                "pull_request",
                [DEFAULT_BRANCH, RELEASE_BRANCH],
                ["validate -t staging", "validate -t prod"],
            ),
            (
                "bundle-cd-staging",
                "push",
                [DEFAULT_BRANCH],
                ["validate -t staging", "deploy -t staging"],
            ),
            ("bundle-cd-prod", "push", [RELEASE_BRANCH], ["validate -t prod", "deploy -t prod"]),
        ):
            where = (combo.ident, kind)
            doc = _github_file(combo, "fraud-detect", kind).data
            on = _on(doc)
            assert set(on) == {event, "workflow_dispatch"}, where
            assert on[event]["branches"] == branches, where
            assert on[event]["paths"] == ["projects/fraud_detect/**"], where
            runs = "\n".join(str(s.get("run")) for _, s in _steps(doc))
            for command in commands:
                assert f"databricks bundle {command}" in runs, (where, command)
            cli_steps = [s for _, s in _steps(doc) if "databricks bundle" in str(s.get("run"))]
            assert cli_steps, where
            for step in cli_steps:
                env = TARGET_ENV[CLI_TARGET.search(step["run"]).group(1)]
                host = getattr(combo.config.workspaces, env)
                expected = expected_credentials(
                    combo.cloud, env, host, lambda name: f"${{{{ secrets.{name} }}}}"
                )
                assert step["env"] == expected, (where, step["name"])
            uses = [s.get("uses", "") for _, s in _steps(doc)]
            assert any(u.startswith("databricks/setup-cli@v") for u in uses), where
            if kind == "run-tests":
                assert "pip install -r test-requirements.txt" in runs, where
                assert doc["jobs"]["integration-test"]["needs"] == "unit-tests", where
            if kind == "bundle-ci":
                script = doc["jobs"]["comment"]["steps"][-1]["with"]["script"]
                assert "createComment" in script and "updateComment" in script, where
                # the report never travels as a job output (GitHub drops outputs with secrets)
                assert "outputs" not in doc["jobs"]["validate"], where
            if kind.startswith("bundle-cd-"):
                assert doc["jobs"]["deploy"]["if"] == f"github.ref == 'refs/heads/{branches[0]}'"
                assert doc["concurrency"]["cancel-in-progress"] is False, where


def test_ghes_variant_differs_where_it_should(combos):
    """GHES has no GitHub-hosted runners, no setup-python downloads and the v3 (node20) line of
    the artifact actions."""
    for combo in (c for c in combos if c.platform in GITHUB_PLATFORMS):
        ghes = combo.platform == GHES
        for f in combo.files:
            doc = f.data
            for job_id, job in doc["jobs"].items():
                expected = ["self-hosted", "linux"] if ghes else "ubuntu-latest"
                assert job["runs-on"] == expected, (combo.ident, f.path, job_id)
            uses = [s.get("uses", "") for _, s in _steps(doc)]
            assert any(u.startswith("actions/setup-python@") for u in uses) is (
                not ghes and any("python" in str(s.get("run")) for _, s in _steps(doc))
            ), (combo.ident, f.path)
            for u in uses:
                if u.startswith(("actions/upload-artifact@", "actions/download-artifact@")):
                    assert u.endswith("@v3-node20") is ghes, (combo.ident, u)


def test_azure_devops_stages_triggers_and_credentials(combos):
    for combo in (c for c in combos if c.platform == AZURE_DEVOPS):
        by_kind = {f.kind: f.data for f in combo.files if f.project == "fraud-detect"}
        tests, cicd = by_kind["tests-ci"], by_kind["bundle-cicd"]
        assert tests["trigger"] == "none"
        assert tests["pr"]["branches"]["include"] == [DEFAULT_BRANCH, RELEASE_BRANCH]
        assert [s["stage"] for s in tests["stages"]] == ["UnitTests", "IntegrationTest"]
        assert cicd["trigger"]["branches"]["include"] == [DEFAULT_BRANCH, RELEASE_BRANCH]
        assert [s["stage"] for s in cicd["stages"]] == ["BundleCI", "StagingDeploy", "ProdDeploy"]
        for doc in (tests, cicd):
            for trigger in ("trigger", "pr"):
                if doc[trigger] != "none":
                    assert doc[trigger]["paths"]["include"] == ["projects/fraud_detect/**"]
        scripts = {
            step["script"]: step.get("env") or {}
            for doc in (tests, cicd)
            for job in _azure_jobs(doc)
            for step in job["steps"]
            if "databricks bundle" in step.get("script", "")
        }
        assert {
            "databricks bundle validate -t test",
            "databricks bundle deploy -t test",
            "databricks bundle run -t test model_training_job",
            "databricks bundle validate -t staging",
            "databricks bundle validate -t prod",
            "databricks bundle deploy -t staging",
            "databricks bundle deploy -t prod",
        } <= set(scripts), combo.ident
        for script, step_env in scripts.items():
            env = TARGET_ENV[CLI_TARGET.search(script).group(1)]
            host = getattr(combo.config.workspaces, env)
            expected = expected_credentials(combo.cloud, env, host, lambda name: f"$({name})")
            assert step_env == expected, (combo.ident, script)


def test_gitlab_rules_commands_and_credentials(combos):
    """Merge requests into either branch run tests and validation; pushes deploy; every job
    authenticates with the CI/CD variables of its target's workspace."""
    mr = [
        f'$CI_MERGE_REQUEST_TARGET_BRANCH_NAME == "{DEFAULT_BRANCH}"',
        f'$CI_MERGE_REQUEST_TARGET_BRANCH_NAME == "{RELEASE_BRANCH}"',
    ]
    push = '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == "{}"'
    expected_jobs = {
        "run-tests": {"unit-tests": mr, "integration-test": mr},
        "bundle-ci": {"bundle-validate-staging": mr, "bundle-validate-prod": mr},
        "bundle-cd-staging": {"bundle-deploy-staging": [push.format(DEFAULT_BRANCH)]},
        "bundle-cd-prod": {"bundle-deploy-prod": [push.format(RELEASE_BRANCH)]},
    }
    gitlab = [c for c in combos if c.platform == GITLAB]
    assert gitlab
    for combo in gitlab:
        by_kind = {f.kind: f.data for f in combo.files if f.project == "fraud-detect"}
        for kind, jobs in expected_jobs.items():
            doc = by_kind[kind]
            assert set(doc) == {f"fraud-detect-{j}" for j in jobs}, (combo.ident, kind)
            for short, conditions in jobs.items():
                job = doc[f"fraud-detect-{short}"]
                assert [r["if"] for r in job["rules"]] == conditions, (combo.ident, short)
                commands = [c for c in job["script"] if c.startswith("databricks bundle")]
                if short == "unit-tests":
                    assert "python -m pip install -r test-requirements.txt" in job["script"]
                    assert "variables" not in job and not commands
                    continue
                assert commands, (combo.ident, short)
                envs = {TARGET_ENV[CLI_TARGET.search(c).group(1)] for c in commands}
                assert len(envs) == 1, (combo.ident, short)
                env = envs.pop()
                host = getattr(combo.config.workspaces, env)
                assert job["variables"] == expected_credentials(
                    combo.cloud, env, host, lambda name: f"${name}"
                ), (combo.ident, short)
                assert "databricks --version" in job["before_script"]
        deploys = [
            by_kind[k][f"fraud-detect-bundle-deploy-{e}"]
            for k, e in (("bundle-cd-staging", "staging"), ("bundle-cd-prod", "prod"))
        ]
        assert [d["resource_group"] for d in deploys] == [
            "fraud-detect-staging",
            "fraud-detect-prod",
        ]
        assert [d["stage"] for d in deploys] == ["deploy", "deploy"]
        test_job = by_kind["run-tests"]["fraud-detect-integration-test"]
        assert test_job["needs"] == ["fraud-detect-unit-tests"]
        assert test_job["resource_group"] == "fraud-detect-test-target"
        (root,) = [f.data for f in combo.files if f.path == ".gitlab-ci.yml"]
        assert "monostack-test-all" in root and "include" not in root  # sync adds the include


BUNDLE_RUN = re.compile(r"databricks bundle run -t (\w+) (\w+)")
TARGETS = ("dev", "staging", "prod", "test")


def jobs_per_target(tree: Mapping[str, bytes]) -> dict[str, set[str]]:
    """The job keys each target deploys: the resource files' top-level jobs plus the jobs a file
    defines under ``targets.<name>.resources`` (train once, promote defines some per target)."""
    shared: set[str] = set()
    per_target: dict[str, set[str]] = {t: set() for t in TARGETS}
    for rel, data in tree.items():
        if rel.startswith("resources/") and rel.endswith(".yml"):
            doc = parse_yaml(data.decode("utf-8")) or {}
            shared |= set(((doc.get("resources") or {}).get("jobs")) or {})
            for target, spec in (doc.get("targets") or {}).items():
                per_target[target] |= set((((spec or {}).get("resources") or {}).get("jobs")) or {})
    return {target: shared | jobs for target, jobs in per_target.items()}


def test_ci_commands_name_files_and_jobs_the_project_has(combos):
    """What the CI runs exists in the rendered project: the test requirements, the tests folder
    and every job it runs, defined in the target it runs on (the feature job exactly with the
    feature store; with train once, promote, the promotion job on prod after its deployment)."""
    for combo in combos:
        for name, tree in combo.project_trees.items():
            assert "test-requirements.txt" in tree, (combo.ident, name)
            assert any(p.startswith("tests/") and p.endswith(".py") for p in tree), combo.ident
            jobs = jobs_per_target(tree)
            ci_text = "\n".join(f.text for f in combo.files if f.project == name)
            ran = BUNDLE_RUN.findall(ci_text)
            expected = [("test", "model_training_job")]
            if combo.choices["include_feature_store"]:
                expected.append(("test", "write_feature_table_job"))
            if combo.choices.get("train_once"):
                expected.append(("prod", "model_promotion_job"))
            assert sorted(ran) == sorted(expected), combo.ident
            for target, job in ran:
                assert job in jobs[target], (combo.ident, name, target, sorted(jobs[target]))
            assert ("model_training_job" in jobs["prod"]) != bool(combo.choices.get("train_once"))


def test_project_names_with_yaml_characters_stay_intact(tmp_path):
    """A long name holding '#', ':' and quotes (all allowed by the name pattern) keeps the
    files valid: names and groups are quoted scalars, directories use project_dir."""
    name = "Weird#name:with'quotes\"and-a-rather-long-tail"
    template = load_template(REPO_ROOT / "stack_template")
    files = []
    for platform in CICD_PLATFORMS:
        config = load_config(REPO_ROOT).replace(cicd_platform=platform)
        answers = template.resolve_answers({"project_name": name}, config)
        project_dir = answers["project_dir"]
        assert project_dir == "Weirdnamewithquotesand_a_rather_long_tail"
        for rel, data in template.render_project(answers, config).items():
            if is_ci_path(rel):
                path = f"projects/{project_dir}/{rel}"
                files.append(
                    CiFile("weird", path, data.decode(), platform, "azure", name, project_dir)
                )
    assert len(files) == 2 * len(GITHUB_PROJECT_FILES) + len(AZURE_PROJECT_FILES) + len(
        GITLAB_PROJECT_FILES
    )
    for f in files:
        assert PurePosixPath(f.path).name.startswith(f"{name}-"), f.path
        assert yamllint_problems(f.text) == [], f.path
        if f.is_gitlab:
            assert gitlab_problems(f) == [], f.path
        else:
            assert (github_problems(f) if f.is_github else azure_problems(f)) == [], f.path
        if f.is_github:
            assert f.data["name"].startswith(f"{name}: "), f.path
            assert f.data["concurrency"]["group"].startswith(f"{name}-"), f.path
    written = write_unique([f for f in files if f.is_github], tmp_path)
    assert run_check_jsonschema(sorted(written), "github-workflows") == {}


# ------------------------------------------------- the lint workflow's own commands, for real
SETUP_STEP = re.compile(r"pip install|python3 -m venv")  # the venv of this test has it all


def lint_steps(repo_root: Path, platform: str) -> list[tuple[str, str]]:
    """(name, bash script) of the synced root lint workflow/pipeline, setup steps left out."""
    if platform == AZURE_DEVOPS:
        doc = parse_yaml((repo_root / AZURE_MONOREPO_FILES[0]).read_text())
        steps = [
            (s.get("displayName"), s.get("script")) for j in _azure_jobs(doc) for s in j["steps"]
        ]
    else:
        doc = parse_yaml((repo_root / GITHUB_MONOREPO_FILES[0]).read_text())
        steps = [(s.get("name"), s["run"]) for _, s in _steps(doc) if "run" in s]
    return [(n, script) for n, script in steps if script and not SETUP_STEP.search(script)]


def run_steps(repo_root: Path, steps: list[tuple[str, str]], tmp: Path) -> dict[str, int]:
    """Run each script as the runner would (GitHub: bash -eo pipefail; Azure DevOps macros
    $(Agent.TempDirectory) expanded), in the repo, with this venv first on PATH."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    env.update(RUNNER_TEMP=str(tmp), GITHUB_OUTPUT=str(tmp / "out"), GITHUB_PATH=str(tmp / "p"))
    env.pop("GITHUB_ACTIONS", None)
    codes = {}
    for name, script in steps:
        script = script.replace("$(Agent.TempDirectory)", str(tmp))
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=repo_root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        codes[name] = result.returncode
    return codes


@pytest.mark.parametrize("platform", [GITHUB, AZURE_DEVOPS])
def test_lint_workflow_commands_pass_on_a_synced_repo_and_catch_a_bad_file(
    repo, tmp_path, platform
):
    root = root_of(repo)
    config = (root / "monorepo.yml").read_text()
    (root / "monorepo.yml").write_text(
        re.sub(r"(?m)^cicd_platform: .*$", f"cicd_platform: {platform}", config)
    )
    new_project(root, "churn", {}, dry_run=False)
    result = invoke_in_process(repo, "sync-workflows")
    assert result.returncode == 0, result.stdout + result.stderr
    steps = lint_steps(root, platform)
    names = [n for n, _ in steps]
    assert any("yamllint" in n for n in names) and any("check-jsonschema" in n for n in names)
    assert (platform == GITHUB) == any("zizmor" in n for n in names)
    codes = run_steps(root, steps, tmp_path)
    assert set(codes.values()) == {0}, codes

    # a hand-written workflow with an injection and a schema error: the lint steps fail
    if platform == GITHUB:
        bad = root / ".github" / "workflows" / "custom.yml"
        bad.write_text(
            BAD_WORKFLOW.replace("churn: run tests", "custom").replace("shared-group", "custom")
            + "  broken:\n    runs-on: 3\n    steps: none\n"
        )
    else:
        bad = root / ".azure" / "devops-pipelines" / "custom.yml"
        bad.write_text("jobs:\n  - job: A\n    stepz: []\n")
    checkers = [(n, script) for n, script in steps if re.search("files|schema|zizmor", n)]
    codes = run_steps(root, checkers, tmp_path)
    failed = {n for n, code in codes.items() if code}
    assert failed == {n for n, _ in checkers if re.search("schema|zizmor", n)}, codes


# ---------------------------------------------------------------- the checks can fail
BAD_WORKFLOW = """\
name: "churn: run tests"
on:
  pull_request:
    paths: ["projects/other/**"]
concurrency:
  group: "shared-group"
defaults:
  run:
    working-directory: projects/other
jobs:
  test:
    runs-on: ubuntu-latest
    permissions:
      contents: write
    steps:
      - uses: actions/checkout@v4.2.2
      - uses: someone/action@v1
      - run: echo "${{ github.event.pull_request.title }}"
"""


def _bad_file(text: str = BAD_WORKFLOW) -> CiFile:
    return CiFile(
        "planted",
        "projects/churn/.github/workflows/churn-run-tests.yml",
        text,
        GITHUB,
        "aws",
        "churn",
        "churn",
    )


def test_planted_bad_workflow_fails_zizmor_and_structure(tmp_path):
    path = tmp_path / ".github" / "workflows" / "churn-run-tests.yml"
    path.parent.mkdir(parents=True)
    path.write_text(BAD_WORKFLOW)
    findings = "\n".join(run_zizmor([str(path)]).get(str(path), []))
    assert "template-injection (High)" in findings
    assert "unpinned-uses" in findings
    assert "artipacked" in findings

    problems = "\n".join(github_problems(_bad_file()))
    for needle in (
        "no top-level permissions",
        "write permission on ['contents']",
        "expression inside run",
        "checkout without persist-credentials: false",
        "someone/action@v1: only actions/* and databricks/*",
        "concurrency group 'shared-group' lacks the project name",
        "working-directory is 'projects/other'",
        "on.pull_request.paths 'projects/other/**' outside projects/churn/",
    ):
        assert needle in problems, (needle, problems)


def test_planted_bad_files_fail_schema_yamllint_and_syntax(tmp_path):
    bad_gh = tmp_path / "gh.yml"
    bad_gh.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: 3\n")
    bad_ado = tmp_path / "ado.yml"
    bad_ado.write_text("stages:\n  - stage: A\n    jobs:\n      - job: B\n        stepz: []\n")
    assert str(bad_gh) in run_check_jsonschema([str(bad_gh)], "github-workflows")
    assert str(bad_ado) in run_check_jsonschema([str(bad_ado)], "azure-pipelines")

    assert any("trailing-spaces" in p for p in yamllint_problems("name: x \n"))
    assert any("truthy" in p for p in yamllint_problems("a: yes\n"))
    assert template_syntax_problems("name: {{ project_name }}\n")
    assert not template_syntax_problems("group: ${{ github.ref }}\n")


def test_planted_clashes_fail_identity_check():
    a = _bad_file(BAD_WORKFLOW)
    b = CiFile(
        "planted",
        "projects/other/.github/workflows/other-run-tests.yml",
        BAD_WORKFLOW,
        GITHUB,
        "aws",
        "other",
        "other",
    )
    problems = "\n".join(identity_problems([a, b]))
    assert "name 'churn: run tests' used by" in problems
    assert "concurrency group 'shared-group' used by" in problems


def test_planted_bad_pipeline_fails_azure_structure():
    text = """\
name: churn-tests-ci
trigger: none
pr:
  paths:
    include: ["projects/**"]
steps:
  - checkout: self
    persistCredentials: true
  - script: echo ${{ parameters.projectName }}
    workingDirectory: $(Build.SourcesDirectory)/projects/other
"""
    f = CiFile(
        "planted",
        "projects/churn/.azure/devops-pipelines/churn-tests-ci.yml",
        text,
        AZURE_DEVOPS,
        "aws",
        "churn",
        "churn",
    )
    doc = dict(f.data)
    doc["jobs"] = [{"job": "A", "steps": doc.pop("steps")}]
    f.text = yaml.safe_dump(doc)
    problems = "\n".join(azure_problems(f))
    for needle in (
        "checkout without persistCredentials",
        "template expression inside script",
        "workingDirectory '$(Build.SourcesDirectory)/projects/other' outside the project",
        "pr.paths 'projects/**' outside projects/churn/",
    ):
        assert needle in problems, (needle, problems)


# ------------------------------------------------------------ pins and compute independence
# First major of each action whose runtime is node24 (the earlier ones run on node20 or older).
NODE24_MAJORS = {
    "actions/checkout": 5,
    "actions/setup-python": 6,
    "actions/github-script": 8,
    "actions/upload-artifact": 6,
    "actions/download-artifact": 7,
    "actions/cache/restore": 5,  # the monorepo workflow's result cache
    "actions/cache/save": 5,
}
USES_TAG = re.compile(
    r"^(?P<action>[\w.-]+/[\w.-]+(?:/[\w.-]+)*)@v(?P<major>\d+)(?P<rest>[\w.-]*)$"
)


def test_github_com_workflows_pin_node24_releases_and_a_current_cli(combos):
    seen: set[str] = set()
    for combo in (c for c in combos if c.platform == GITHUB):
        for f in combo.files:
            for _, step in _steps(f.data):
                if "uses" not in step:
                    continue
                match = USES_TAG.match(step["uses"])
                assert match, (f.path, step["uses"])
                action, major = match["action"], int(match["major"])
                seen.add(action)
                if action == "databricks/setup-cli":
                    assert major >= 1, (f.path, step["uses"])  # the CLI's 1.x line
                    continue
                assert major >= NODE24_MAJORS[action], (f.path, step["uses"])
                assert re.fullmatch(r"\.\d+\.\d+", match["rest"]), (f.path, step["uses"])
    assert seen == {*NODE24_MAJORS, "databricks/setup-cli"}


def test_one_cli_version_everywhere(combos):
    """setup-cli's tag and the Azure DevOps download name the same Databricks CLI release."""
    versions = set()
    for f in (f for c in combos for f in c.files if f.project):
        versions |= set(re.findall(r"databricks/setup-cli@v(\d+\.\d+\.\d+)", f.text))
        versions |= set(re.findall(r"\bversion=(\d+\.\d+\.\d+)", f.text))
    assert len(versions) == 1 and int(versions.pop().split(".")[0]) >= 1


def test_ci_files_do_not_depend_on_compute():
    template = load_template(REPO_ROOT / "stack_template")
    for platform in CICD_PLATFORMS:
        config = load_config(REPO_ROOT).replace(cicd_platform=platform)
        trees = []
        for compute in ("serverless", "classic"):
            given = {"project_name": "churn", "compute": compute, "include_feature_store": True}
            tree = template.render_project(template.resolve_answers(given, config), config)
            trees.append({k: v for k, v in tree.items() if is_ci_path(k)})
        assert trees[0] and trees[0] == trees[1], platform
