"""CI file checks with the real checkers: PyYAML, yamllint, check-jsonschema's schemas, zizmor."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monostack.checks import ERROR, WARNING
from monostack.checks.ci_files import (
    AZURE_PIPELINES,
    DEFAULT_YAMLLINT_CONFIG,
    GITHUB_WORKFLOWS,
    check_ci_files,
    content_key,
    schema_for,
    yamllint_setup,
    zizmor_scan,
)
from tests.conftest import REPO_ROOT

CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"

CLEAN_WORKFLOW = textwrap.dedent(
    f"""\
    # A clean workflow: pinned action, least privilege, no persisted credentials.
    name: ok

    on:
      pull_request:
        branches: [main]

    permissions:
      contents: read

    jobs:
      test:
        runs-on: ubuntu-latest
        timeout-minutes: 10
        steps:
          - uses: {CHECKOUT}
            with:
              persist-credentials: false
          - name: Test
            env:
              TOKEN: ${{{{ secrets.TOKEN }}}}
            run: echo "testing"
    """
)

# Same, with an issue title expanded straight into a shell script (line 20).
INJECTION_WORKFLOW = CLEAN_WORKFLOW.replace(
    "pull_request:\n    branches: [main]", "issues:\n    types: [opened]"
).replace('run: echo "testing"', "run: echo ${{ github.event.issue.title }}")

CLEAN_PIPELINE = textwrap.dedent(
    """\
    trigger:
      branches:
        include: [main]

    stages:
      - stage: Test
        jobs:
          - job: Unit
            steps:
              - checkout: self
              - script: echo "testing"
                displayName: Test
    """
)

WF = ".github/workflows/ci.yml"
PIPE = ".azure/devops-pipelines/ci.yml"


def errors(findings):
    return [f for f in findings if f.severity == ERROR]


def check(files, root=None):
    encoded = {path: text.encode() for path, text in files.items()}
    return check_ci_files(encoded, "<monorepo>", "lint", root)


def test_schema_for_paths():
    assert schema_for(".github/workflows/a.yml") == GITHUB_WORKFLOWS
    assert schema_for("projects/p/.github/workflows/a.yaml") == GITHUB_WORKFLOWS
    assert schema_for(".azure/devops-pipelines/p.yml") == AZURE_PIPELINES
    assert schema_for(".github/dependabot.yml") is None
    assert schema_for(".github/workflows/sub/a.yml") is None  # GitHub ignores subfolders
    assert schema_for(".github/workflows/readme.md") is None
    assert schema_for(".gitlab-ci.yml") == "gitlab-ci"
    assert schema_for(".gitlab/pipelines/team.yml") == "gitlab-ci"
    assert schema_for("projects/p/.gitlab/pipelines/p-run-tests.yaml") == "gitlab-ci"
    assert schema_for(".gitlab/agents/a/config.yaml") is None  # a GitLab agent, not CI


GITLAB_FILE = """\
.base:
  script: [echo base]
job-a:
  stage: test
  script: !reference [.base, script]
job-b:
  stage: test
  scripts: [oops]
"""


def test_gitlab_files_accept_reference_tags_and_get_the_gitlab_schema():
    findings = check({".gitlab/pipelines/team.yml": GITLAB_FILE})
    assert [(f.file, f.line, f.message) for f in findings if f.severity == "error"] == [
        (
            ".gitlab/pipelines/team.yml",
            8,
            "gitlab-ci schema: job-b: Additional properties are not allowed "
            "('scripts' was unexpected)",
        )
    ]
    # the same tag in a GitHub workflow is refused, as GitHub would
    (bad,) = check({WF: CLEAN_WORKFLOW + "env:\n  A: !reference [x]\n"})
    assert "invalid YAML" in bad.message


def test_clean_files_pass_every_check(tmp_path):
    findings = check({WF: CLEAN_WORKFLOW, PIPE: CLEAN_PIPELINE}, root=REPO_ROOT)
    assert findings == []


def test_invalid_yaml_names_file_and_line():
    text = CLEAN_WORKFLOW.replace("runs-on: ubuntu-latest", "runs-on: [ubuntu-latest")
    findings = check({WF: text})
    assert len(findings) == 1  # no duplicate from yamllint or the schema
    (finding,) = findings
    assert finding.file == WF and finding.severity == ERROR
    assert finding.line is not None and 13 <= finding.line <= 16
    assert "invalid YAML" in finding.message


def test_duplicate_keys_are_an_error():
    text = CLEAN_WORKFLOW.replace("name: ok\n", "name: ok\nname: again\n")
    (finding,) = check({WF: text})
    assert finding.line == 3 and "duplicate key 'name'" in finding.message


def test_yamllint_violations_have_lines():
    text = CLEAN_WORKFLOW.replace("name: ok", "name: ok   ").replace(
        'run: echo "testing"', 'run: echo "' + "x" * 130 + '"'
    )
    findings = check({WF: text})
    by_rule = {f.message.rsplit("(", 1)[-1].rstrip(")"): f for f in findings}
    assert by_rule["trailing-spaces"].line == 2
    assert by_rule["line-length"].line == 22
    assert all(f.severity == ERROR and f.file == WF for f in findings)


def test_yamllint_accepts_ci_expression_syntax():
    # `on:` as a key, `${{ }}` expressions and flow sequences: the committed config allows them
    assert check({WF: CLEAN_WORKFLOW}) == []


def test_repo_yamllint_config_is_used(tmp_path):
    long_line = CLEAN_WORKFLOW.replace('run: echo "testing"', 'run: echo "' + "x" * 130 + '"')
    assert [f.line for f in check({WF: long_line})] == [22]  # built-in rules: 120 columns
    (tmp_path / ".yamllint.yml").write_text(DEFAULT_YAMLLINT_CONFIG.replace("max: 120", "max: 200"))
    assert check({WF: long_line}, root=tmp_path) == []


def test_per_path_rule_ignores_are_honoured_for_identical_files(tmp_path):
    # one content, two paths: the memo of yamllint results must not carry one path's verdict
    long_line = CLEAN_WORKFLOW.replace('run: echo "testing"', 'run: echo "' + "x" * 130 + '"')
    config = DEFAULT_YAMLLINT_CONFIG.replace(
        "  line-length:\n", f"  line-length:\n    ignore: [{WF}]\n"
    )
    (tmp_path / ".yamllint.yml").write_text(config)
    other = ".github/workflows/b.yml"
    found = check({WF: long_line, other: long_line}, tmp_path)
    assert [(f.file, f.line) for f in found if "line too long" in f.message] == [(other, 22)]


def test_broken_yamllint_config_is_reported(tmp_path):
    (tmp_path / ".yamllint.yml").write_text("rules: [not, a, mapping]\n")
    findings = check({WF: CLEAN_WORKFLOW}, root=tmp_path)
    assert [f.file for f in errors(findings)] == [".yamllint.yml"]
    assert "invalid yamllint config" in findings[0].message


def test_builtin_yamllint_config_matches_the_shipped_one():
    shipped = yamllint_setup(REPO_ROOT)
    builtin = yamllint_setup(None)
    assert shipped.source == ".yamllint.yml" and builtin.source == "built-in"
    assert shipped.config.rules == builtin.config.rules


def test_workflow_schema_violation_points_at_the_key():
    text = CLEAN_WORKFLOW.replace("timeout-minutes: 10", "timeout-mins: 10")
    findings = check({WF: text})
    (finding,) = errors(findings)
    assert finding.line == 14
    assert "github-workflows schema" in finding.message
    assert "'timeout-mins' was unexpected" in finding.message


def test_workflow_schema_wrong_type():
    text = CLEAN_WORKFLOW.replace("timeout-minutes: 10", "timeout-minutes: soon")
    (finding,) = errors(check({WF: text}))
    assert finding.line == 14 and "jobs.test.timeout-minutes" in finding.message


def test_azure_pipeline_schema():
    assert check({PIPE: CLEAN_PIPELINE}) == []
    text = CLEAN_PIPELINE.replace("steps:", "stepz:")
    (finding,) = errors(check({PIPE: text}))
    assert finding.file == PIPE and finding.line == 9
    assert "azure-pipelines schema" in finding.message and "stepz" in finding.message


def test_zizmor_injection_is_an_error_at_its_line():
    findings = check({WF: INJECTION_WORKFLOW})
    (finding,) = errors(findings)
    assert finding.file == WF and finding.line == 22
    assert "zizmor template-injection (High)" in finding.message


def test_zizmor_medium_is_a_warning():
    text = CLEAN_WORKFLOW.replace("        with:\n          persist-credentials: false\n", "")
    findings = check({WF: text})
    assert errors(findings) == []
    (warning,) = findings
    assert warning.severity == WARNING and "artipacked (Medium)" in warning.message
    assert warning.line == 16


def test_zizmor_runs_on_project_workflows_and_not_on_pipelines():
    path = "projects/p/.github/workflows/p-ci.yml"
    findings = check({path: INJECTION_WORKFLOW, PIPE: CLEAN_PIPELINE})
    assert [(f.file, f.line) for f in errors(findings)] == [(path, 22)]


def test_repo_zizmor_config_is_used(tmp_path):
    unpinned = CLEAN_WORKFLOW.replace(CHECKOUT, "actions/checkout@v4")
    (finding,) = errors(check({WF: unpinned}, root=tmp_path))  # zizmor's default: hash-pin
    assert "unpinned-uses" in finding.message
    (tmp_path / "zizmor.yml").write_text(
        'rules:\n  unpinned-uses:\n    config:\n      policies:\n        "*": ref-pin\n'
    )
    assert check({WF: unpinned}, root=tmp_path) == []


def test_zizmor_scan_audits_identical_files_once_and_attributes_back():
    a = INJECTION_WORKFLOW.encode()
    b = CLEAN_WORKFLOW.encode()
    items = [(WF, a), (WF, a), (WF, b), ("projects/p/.github/workflows/x.yml", a)]
    hits = zizmor_scan(items)
    assert set(hits) == {content_key(p, d) for p, d in items}
    assert len(hits) == 3
    assert [h.line for h in hits[content_key(WF, a)] if h.severity == ERROR] == [22]
    assert hits[content_key(WF, b)] == []
    assert hits[content_key("projects/p/.github/workflows/x.yml", a)] == hits[content_key(WF, a)]


def test_non_utf8_file():
    findings = check_ci_files({WF: b"name: \xff\n"}, "p", "lint")
    (finding,) = findings
    assert finding.file == WF and "UTF-8" in finding.message and finding.project == "p"


@pytest.mark.parametrize("name", ["zizmor.yml", ".github/zizmor.yml"])
def test_zizmor_config_locations(tmp_path, name):
    from monostack.checks.ci_files import zizmor_config

    assert zizmor_config(tmp_path) is None
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("rules: {}\n")
    assert zizmor_config(tmp_path) == Path(path)


def test_broken_zizmor_config_says_what_is_wrong(tmp_path):
    (tmp_path / "zizmor.yml").write_text(
        "rules:\n  unpinned-uses:\n    config:\n      policies: 5\n"
    )
    (finding,) = [f for f in check({WF: CLEAN_WORKFLOW}, root=tmp_path) if "zizmor" in f.message]
    assert finding.severity == ERROR and finding.file == WF
    assert "configuration error in zizmor.yml" in finding.message
    assert "expected a map" in finding.message
    assert "backtrace" not in finding.message.lower() and str(tmp_path) not in finding.message


def test_a_yamllint_syntax_error_names_its_kind_once():
    """Text libyaml reads but yamllint's own parser rejects (a tab after a value) is reported
    by yamllint as a syntax error: "(syntax)" once, and rule names still follow other problems."""
    from monostack.checks.ci_files import yamllint_findings, yamllint_setup

    setup = yamllint_setup(None)
    text = "name: x\t\non: [push]\njobs: {}\n"
    messages = [f.message for f in yamllint_findings("w.yml", text, "p", "lint", setup)]
    syntax = [m for m in messages if "syntax error" in m]
    assert syntax and all(m.count("(syntax)") == 1 for m in syntax), messages
    spaced = "name:  x\non: [push]\njobs: {}\n"
    messages = [f.message for f in yamllint_findings("w.yml", spaced, "p", "lint", setup)]
    assert any(m.endswith("(colons)") for m in messages), messages
