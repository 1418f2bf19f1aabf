"""`run_lint` on real temp monorepos: real ruff, yamllint, schemas, zizmor and Jinja2."""

from __future__ import annotations

import textwrap
from pathlib import Path

from monostack.checks import MONOREPO
from monostack.checks.lint import run_lint
from monostack.projects import discover_projects
from tests.conftest import git_status, root_of
from tests.test_ci_files import CLEAN_WORKFLOW, INJECTION_WORKFLOW

GOOD_PY = 'def add(a: int, b: int) -> int:\n    """Add."""\n    return a + b\n'

BUNDLE = textwrap.dedent(
    """\
    bundle:
      name: {name}

    targets:
      dev:
        default: true
    """
)


def add_project(root: Path, name: str, files: dict[str, str] | None = None) -> Path:
    """A hand-made project (independent of the template's current contents)."""
    path = root / "projects" / name
    (path / "src").mkdir(parents=True)
    (path / "databricks.yml").write_text(BUNDLE.format(name=name))
    (path / "src" / "core.py").write_text(GOOD_PY)
    (path / ".github" / "workflows").mkdir(parents=True)
    (path / ".github" / "workflows" / f"{name}-ci.yml").write_text(CLEAN_WORKFLOW)
    for rel, text in (files or {}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    return path


def lint(root: Path, lint_hand_written: bool = False):
    results = run_lint(root, discover_projects(root), lint_hand_written=lint_hand_written)
    return {case.case: case for case in results}, results


def located(case):
    findings = case if isinstance(case, list) else case.errors
    return [(f.file, f.line) for f in findings]


def test_clean_projects_and_monorepo_pass(repo):
    root = root_of(repo)
    add_project(root, "alpha")
    add_project(root, "beta")
    cases, results = lint(root)
    assert [r.case for r in results] == ["alpha", "beta", MONOREPO]
    assert all(r.check == "lint" for r in results)
    for case in results:
        assert case.errors == [], (case.case, case.findings)


def test_python_syntax_error_fails_only_its_project(repo):
    root = root_of(repo)
    add_project(root, "alpha", {"src/broken.py": "x = 1\ndef f(:\n    pass\n"})
    add_project(root, "beta")
    cases, _ = lint(root)
    assert cases["alpha"].failed
    assert ("projects/alpha/src/broken.py", 2) in located(cases["alpha"])
    assert any("syntax error" in f.message for f in cases["alpha"].errors)
    assert all(f.project == "alpha" for f in cases["alpha"].findings)
    assert not cases["beta"].failed


def test_format_violation(repo):
    root = root_of(repo)
    add_project(root, "alpha", {"src/ugly.py": "x=[1,\n  2]\n"})
    cases, _ = lint(root)
    (finding,) = cases["alpha"].errors
    assert finding.file == "projects/alpha/src/ugly.py" and finding.line == 1
    assert "ruff format" in finding.message


def test_ruff_check_violation_has_rule_and_line(repo):
    root = root_of(repo)
    add_project(root, "alpha", {"src/unused.py": '"""Doc."""\n\nimport os\n'})
    cases, _ = lint(root)
    (finding,) = cases["alpha"].errors
    assert (finding.file, finding.line) == ("projects/alpha/src/unused.py", 3)
    assert "F401" in finding.message


def test_project_ruff_config_is_used(repo):
    root = root_of(repo)
    long_line = f'"""Doc."""\n\nVALUE = "{"x" * 60}"\n'
    strict = '[tool.ruff]\nline-length = 40\n\n[tool.ruff.lint]\nselect = ["E501"]\n'
    add_project(root, "strict", {"src/long.py": long_line, "pyproject.toml": strict})
    add_project(root, "plain", {"src/long.py": long_line})
    cases, _ = lint(root)
    # plain: ruff's defaults (no E501; the formatter leaves an unsplittable string alone)
    assert cases["plain"].errors == []
    assert ("projects/strict/src/long.py", 3) in located(cases["strict"])
    assert any("E501" in f.message for f in cases["strict"].errors)


def test_yamllint_on_bundle_resources_and_ci(repo):
    root = root_of(repo)
    path = add_project(
        root, "alpha", {"resources/jobs-resource.yml": "resources:\n  jobs: {}   \n"}
    )
    text = (path / "databricks.yml").read_text().replace("  name: alpha", "  name:   alpha")
    (path / "databricks.yml").write_text(text)
    wf = path / ".github/workflows/alpha-ci.yml"
    # a colon in a plain value is a YAML error for every parser (a trailing tab is not: libyaml,
    # like the Go parser the Databricks CLI uses, accepts it)
    wf.write_text(wf.read_text().replace("name: ok", "name: ok: bad"))
    cases, _ = lint(root)
    # the workflow's colon is a YAML error (reported once, by the parse); the others yamllint's
    assert sorted(set(located(cases["alpha"]))) == [
        ("projects/alpha/.github/workflows/alpha-ci.yml", 2),
        ("projects/alpha/databricks.yml", 2),
        ("projects/alpha/resources/jobs-resource.yml", 2),
    ]
    # the project's CI file also gets the CI checks (its root copy is not checked twice)
    assert {f.file for f in cases["alpha"].errors if not f.message.startswith("yamllint")} == {
        "projects/alpha/.github/workflows/alpha-ci.yml"
    }


def test_root_workflow_schema_and_injection(repo):
    root = root_of(repo)
    wf_dir = root / ".github" / "workflows"
    wf_dir.mkdir(parents=True)
    (wf_dir / "bad-schema.yml").write_text(
        CLEAN_WORKFLOW.replace("timeout-minutes: 10", "timeout-mins: 10")
    )
    (wf_dir / "inject.yml").write_text(INJECTION_WORKFLOW)
    (wf_dir / "ok.yml").write_text(CLEAN_WORKFLOW)
    cases, _ = lint(root, lint_hand_written=True)  # hand-written: linted only when asked
    mono = cases[MONOREPO]
    assert located(mono) == [
        (".github/workflows/bad-schema.yml", 14),
        (".github/workflows/inject.yml", 22),
    ]
    assert "github-workflows schema" in mono.errors[0].message
    assert "template-injection (High)" in mono.errors[1].message


def test_root_azure_pipeline_checked(repo):
    root = root_of(repo)
    pipelines = root / ".azure" / "devops-pipelines"
    pipelines.mkdir(parents=True)
    (pipelines / "ci.yml").write_text("trigger:\n  - main\nstages:\n  - stage: A\n    jobz: []\n")
    cases, _ = lint(root, lint_hand_written=True)
    (finding,) = cases[MONOREPO].errors
    assert finding.file == ".azure/devops-pipelines/ci.yml" and finding.line == 5
    assert "azure-pipelines schema" in finding.message


def test_template_jinja_syntax_error(repo):
    root = root_of(repo)
    bad = root / "stack_template" / "project" / "broken.yml.j2"
    bad.write_text("a: 1\nb: {{ project_name }\nc: 3\n")
    name = root / "stack_template" / "project" / "{{ project_name -x.txt"
    name.write_text("plain\n")
    cases, _ = lint(root)
    errors = cases[MONOREPO].errors
    assert ("stack_template/project/broken.yml.j2", 2) in located(cases[MONOREPO])
    assert any("Jinja2 syntax" in f.message for f in errors)
    assert any(f.file.endswith("{{ project_name -x.txt") for f in errors)


def test_stack_yml_expression_error(repo):
    root = root_of(repo)
    stack = root / "stack_template" / "stack.yml"
    text = stack.read_text().replace(
        "when: include_models_in_unity_catalog",
        "when: include_models_in_unity_catalog and (",
        1,
    )
    assert text != stack.read_text()
    stack.write_text(text)
    cases, _ = lint(root)
    (finding,) = [f for f in cases[MONOREPO].errors if f.file == "stack_template/stack.yml"]
    assert "parameters.schema_name.when" in finding.message
    assert stack.read_text().splitlines()[finding.line - 1].strip().startswith("when:")


def test_lint_does_not_need_monorepo_yml(repo):
    """monorepo.yml is loaded and reported once per run by the runner, not by lint."""
    root = root_of(repo)
    config = root / "monorepo.yml"
    config.write_text(config.read_text() + "workspaces: [\n")
    cases, _ = lint(root)
    assert not [f for f in cases[MONOREPO].errors if f.file == "monorepo.yml"]


def test_tool_python_is_linted_with_repo_config(repo):
    root = root_of(repo)
    (root / "tasks.py").write_text((root / "tasks.py").read_text() + "\nimport os\n")
    cases, _ = lint(root)
    assert any(f.file == "tasks.py" and "F401" in f.message for f in cases[MONOREPO].errors)


def test_lint_writes_nothing(repo):
    root = root_of(repo)
    add_project(root, "alpha", {"src/ugly.py": "x=[1,\n  2]\n"})
    repo.git.add(A=True)
    repo.index.commit("project")
    lint(root)
    assert git_status(repo) == ""  # no .ruff_cache, no reformatted file


def test_many_yaml_files_are_spread_over_processes(repo, monkeypatch):
    from monostack.checks import lint as lint_module

    root = root_of(repo)
    add_project(root, "alpha", {"resources/a-resource.yml": "resources:   \n  jobs: {}\n"})
    add_project(root, "beta")
    serial = run_lint(root, discover_projects(root), jobs=1)
    pools = []
    start = lint_module._start_yamllint

    def spy(*args):
        pool, pending = start(*args)
        pools.append(pending is not None)
        return pool, pending

    monkeypatch.setattr(lint_module, "PARALLEL_YAML_FILES", 1)
    monkeypatch.setattr(lint_module, "_start_yamllint", spy)
    parallel = run_lint(root, discover_projects(root), jobs=2)
    assert pools == [True]
    assert [(c.case, c.findings) for c in serial] == [(c.case, c.findings) for c in parallel]
    assert located(serial[0]) == [("projects/alpha/resources/a-resource.yml", 1)]


def test_projects_from_the_template_lint_clean(repo):
    from monostack.projects import new_project

    root = root_of(repo)
    new_project(root, "churn-model")
    new_project(root, "fraud", {"include_models_in_unity_catalog": True})
    new_project(root, "recs", {"include_feature_store": True})
    results = run_lint(root, discover_projects(root))
    assert [r.case for r in results] == ["churn-model", "fraud", "recs", MONOREPO]
    assert {r.case: [f"{f.location()}: {f.message}" for f in r.errors] for r in results} == {
        r.case: [] for r in results
    }


def test_gitlab_pipelines_are_checked_in_projects_and_at_the_root(repo):
    """Project pipelines are included in place, not copied: lint checks them in the project's
    case; the root .gitlab-ci.yml and the team's .gitlab/pipelines/ in the monorepo's."""
    root = root_of(repo)
    bad_job = "alpha-x:\n  stage: test\n  script: [echo]\n  when: sometimes\n"
    add_project(root, "alpha", {".gitlab/pipelines/alpha-ci.yml": bad_job})
    add_project(root, "beta", {".gitlab/pipelines/beta-ci.yml": bad_job.replace("alpha", "beta")})
    (root / ".gitlab-ci.yml").write_text("include:\n  - local: 3\n")
    (root / ".gitlab/pipelines").mkdir(parents=True)
    (root / ".gitlab/pipelines/team.yml").write_text("team:\n  script: [echo]\n\n\n")
    # the root files here are hand-written (no monostack header): linted when asked (issue 11)
    cases, _ = lint(root, lint_hand_written=True)
    assert located(cases["alpha"]) == [("projects/alpha/.gitlab/pipelines/alpha-ci.yml", 4)]
    assert "gitlab-ci schema: alpha-x" in cases["alpha"].errors[0].message
    assert located(cases["beta"]) == [("projects/beta/.gitlab/pipelines/beta-ci.yml", 4)]
    mono = cases[MONOREPO].errors
    assert (".gitlab-ci.yml", 2) in located(cases[MONOREPO]), mono
    assert any(f.file == ".gitlab/pipelines/team.yml" and "yamllint" in f.message for f in mono)
