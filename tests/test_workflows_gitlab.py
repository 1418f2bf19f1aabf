"""`invoke sync-workflows` on GitLab: one root .gitlab-ci.yml including every project pipeline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from monostack.checks.ci_files import schema_findings
from monostack.errors import UserError
from monostack.projects import new_project
from monostack.workflows import parse_managed, sync_findings, sync_workflows
from monostack.workflows.gitlab import GITLAB_ROOT, PipelineFile, compose
from monostack.workflows.gitlab_rules import GLOBAL_KEYWORDS, gitlab_conflicts
from monostack.yamlutil import GitLabLoader
from tests.conftest import git_status, invoke, invoke_in_process, root_of
from tests.test_workflows import commit, write

PIPELINES = ".gitlab/pipelines"

TEAM = """\
# The team's own jobs: sync includes this file and never changes it.
team-docs:
  stage: test
  image: python:3.11
  script:
    - echo "docs"   # keep this comment
.team-template:
  script: !reference [team-docs, script]
"""


def use_gitlab(root: Path) -> None:
    config = root / "monorepo.yml"
    config.write_text(
        re.sub(r"(?m)^cicd_platform: .*$", "cicd_platform: gitlab", config.read_text())
    )


def includes(root: Path) -> list[str]:
    doc = yaml.safe_load((root / GITLAB_ROOT).read_text())
    return [item["local"] for item in doc.get("include", [])]


def jobs_of(root: Path, rel: str) -> list[str]:
    doc = yaml.load((root / rel).read_text(), Loader=GitLabLoader) or {}  # noqa: S506
    return [name for name in doc if name not in GLOBAL_KEYWORDS]


@pytest.fixture
def gitlab_repo(repo):
    """A GitLab monorepo with two projects, synced and committed."""
    root = root_of(repo)
    use_gitlab(root)
    new_project(root, "churn")
    new_project(root, "fraud-detect", {"include_feature_store": True})
    result = sync_workflows(root)
    assert result.exit_code == 0, result.error_lines()
    commit(repo, "two projects")
    return repo


def pipelines_of(root: Path, project_dir: str) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in (root / "projects" / project_dir / PIPELINES).glob("*.yml")
    )


# ------------------------------------------------------------------------- acceptance
def test_root_includes_every_pipeline_passes_the_schema_and_names_each_job_once(gitlab_repo):
    root = root_of(gitlab_repo)
    expected = pipelines_of(root, "churn") + pipelines_of(root, "fraud_detect")
    assert len(expected) == 8
    assert includes(root) == expected
    data = (root / GITLAB_ROOT).read_bytes()
    managed = parse_managed(data)
    assert managed is not None and managed.intact
    assert managed.origin == "stack_template/monorepo/.gitlab-ci.yml.j2"
    text = data.decode()
    assert schema_findings(GITLAB_ROOT, text, "gitlab-ci", "", "t") == []
    for rel in expected:
        assert schema_findings(rel, (root / rel).read_text(), "gitlab-ci", "", "t") == []
    names = [job for rel in [GITLAB_ROOT, *expected] for job in jobs_of(root, rel)]
    assert len(names) == len(set(names)) == 5 + 2 * 6  # the monorepo's own 5 jobs
    assert "monostack-test-all" in names and "fraud-detect-bundle-deploy-prod" in names
    assert sync_workflows(root, check=True).exit_code == 0
    assert sync_findings(root) == []


def test_check_fails_after_a_project_pipeline_changes_and_sync_catches_up(gitlab_repo):
    root = root_of(gitlab_repo)
    pipeline = root / pipelines_of(root, "churn")[0]
    pipeline.write_text(pipeline.read_text() + "# a new comment\n")
    check = sync_workflows(root, check=True)
    assert check.exit_code == 1
    assert check.output_lines()[0] == (
        f"update {GITLAB_ROOT} (from stack_template/monorepo/.gitlab-ci.yml.j2)"
    )
    assert [f.file for f in sync_findings(root)] == [GITLAB_ROOT]
    assert sync_workflows(root).exit_code == 0
    assert sync_workflows(root, check=True).exit_code == 0


def test_removing_a_project_removes_its_includes(gitlab_repo):
    root = root_of(gitlab_repo)
    gitlab_repo.git.rm("-r", "-q", "projects/churn")
    assert sync_workflows(root, check=True).exit_code == 1
    assert sync_workflows(root).exit_code == 0
    assert includes(root) == pipelines_of(root, "fraud_detect")
    assert "churn" not in (root / GITLAB_ROOT).read_text()


def test_adding_a_pipeline_file_adds_its_include(gitlab_repo):
    root = root_of(gitlab_repo)
    write(
        root,
        f"projects/churn/{PIPELINES}/churn-nightly.yaml",
        "churn-nightly:\n  stage: test\n  script: [echo hi]\n  rules:\n"
        '    - if: $CI_PIPELINE_SOURCE == "schedule"\n'
        "      changes: [projects/churn/**/*]\n",
    )
    assert sync_workflows(root).exit_code == 0
    assert f"projects/churn/{PIPELINES}/churn-nightly.yaml" in includes(root)


# ---------------------------------------------------------------------- name clashes
def test_job_clash_between_projects_is_refused_naming_both_files(gitlab_repo):
    root = root_of(gitlab_repo)
    churn = f"projects/churn/{PIPELINES}/churn-run-tests.yml"
    fraud = f"projects/fraud_detect/{PIPELINES}/fraud-detect-run-tests.yml"
    text = (root / fraud).read_text().replace("fraud-detect-unit-tests:", "churn-unit-tests:")
    (root / fraud).write_text(text)
    before = (root / GITLAB_ROOT).read_bytes()
    result = sync_workflows(root)
    assert result.exit_code == 1 and not result.applied
    (line,) = [ln for ln in result.error_lines() if "churn-unit-tests" in ln]
    assert f"{churn}:" in line and f"{fraud}:" in line and "merges jobs" in line
    assert (root / GITLAB_ROOT).read_bytes() == before  # nothing written
    assert git_status(gitlab_repo) == f" M {fraud}"


def test_job_clash_with_the_teams_own_file_or_what_it_includes(gitlab_repo):
    root = root_of(gitlab_repo)
    write(root, f"{PIPELINES}/team.yml", TEAM + "include:\n  - local: /ci/extra.yml\n")
    write(root, "ci/extra.yml", "churn-integration-test:\n  script: [echo mine]\n")
    before = (root / GITLAB_ROOT).read_bytes()
    result = sync_workflows(root)
    assert result.exit_code == 1
    (line,) = result.error_lines()
    assert "job 'churn-integration-test' is defined in both" in line
    assert f"projects/churn/{PIPELINES}/churn-run-tests.yml:" in line
    assert "ci/extra.yml:1 (hand-written)" in line
    assert (root / GITLAB_ROOT).read_bytes() == before
    # a team job clashing with the monorepo part is refused too
    (root / "ci/extra.yml").write_text("monostack-test-all:\n  script: [echo mine]\n")
    (line,) = sync_workflows(root).error_lines()
    assert "monostack-test-all" in line and ".gitlab-ci.yml.j2" in line and "ci/extra.yml" in line


def test_team_files_are_included_and_survive_every_sync(gitlab_repo):
    root = root_of(gitlab_repo)
    team = write(root, f"{PIPELINES}/team.yml", TEAM)
    assert sync_workflows(root).exit_code == 0
    assert includes(root)[-1] == f"{PIPELINES}/team.yml"
    new_project(root, "demand")
    assert sync_workflows(root).exit_code == 0
    assert team.read_text() == TEAM
    assert includes(root)[-1] == f"{PIPELINES}/team.yml"
    commit(gitlab_repo)
    assert sync_workflows(root).plan.in_sync


@pytest.mark.parametrize(
    "link", [f"{PIPELINES}/linked.yml", f"projects/churn/{PIPELINES}/churn-linked.yml", GITLAB_ROOT]
)
def test_pipeline_files_linked_out_of_the_repo_are_refused_never_read(gitlab_repo, tmp_path, link):
    root = root_of(gitlab_repo)
    outside = tmp_path / "outside.yml"
    outside.write_text("churn-unit-tests:\n  script: [echo stolen]\n")
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    (root / link).unlink(missing_ok=True)
    (root / link).symlink_to(outside)
    with pytest.raises(UserError, match=f"^{re.escape(link)}: is a symbolic link"):
        sync_workflows(root)
    result = invoke_in_process(gitlab_repo, "sync-workflows")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: {link}: is a symbolic link" in result.stderr
    assert outside.read_text() == "churn-unit-tests:\n  script: [echo stolen]\n"


def test_hand_written_root_file_is_never_overwritten(repo):
    root = root_of(repo)
    use_gitlab(root)
    write(root, GITLAB_ROOT, TEAM)
    new_project(root, "churn")
    result = sync_workflows(root)
    assert result.exit_code == 1
    (line,) = result.error_lines()
    assert line.startswith(f"error: {GITLAB_ROOT} is a hand-written file")
    assert f"move your own jobs into {PIPELINES}/<name>.yml" in line
    assert (root / GITLAB_ROOT).read_text() == TEAM


def test_hand_edit_of_the_root_file_is_refused_unless_forced(gitlab_repo):
    root = root_of(gitlab_repo)
    path = root / GITLAB_ROOT
    path.write_text(path.read_text().replace("timeout: 1 hour", "timeout: 2 hours"))
    result = sync_workflows(root)
    assert result.exit_code == 1
    assert "edited by hand" in result.error_lines()[0]
    assert sync_workflows(root, force=True).exit_code == 0
    assert "timeout: 1 hour" in path.read_text()


def test_leaving_gitlab_deletes_the_generated_root_file(gitlab_repo):
    root = root_of(gitlab_repo)
    config = root / "monorepo.yml"
    config.write_text(
        config.read_text().replace("cicd_platform: gitlab", "cicd_platform: github_actions")
    )
    result = sync_workflows(root)
    assert result.exit_code == 0
    assert (
        f"delete {GITLAB_ROOT} (its source stack_template/monorepo/.gitlab-ci.yml.j2 is gone)"
        in (result.output_lines())
    )
    assert not (root / GITLAB_ROOT).exists()


def test_cli_check_and_conflict_exit_codes(gitlab_repo):
    assert invoke(gitlab_repo, "sync-workflows", "--check").returncode == 0
    root = root_of(gitlab_repo)
    write(root, f"{PIPELINES}/team.yml", "churn-unit-tests:\n  script: [echo]\n")
    result = invoke_in_process(gitlab_repo, "sync-workflows")
    assert result.returncode == 1
    assert "error: job 'churn-unit-tests' is defined in both" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------- the rules, in memory
def _project(tmp_path: Path, name: str = "alpha"):
    from monostack.projects import Project

    return Project(name=name, dir=name, path=tmp_path / "projects" / name)


def _file(project, text: str, name: str = "p.yml") -> PipelineFile:
    rel = f"projects/{project.dir}/{PIPELINES}/{name}"
    return PipelineFile(rel, text.encode(), "project", project)


ROOT_PART = PipelineFile(
    GITLAB_ROOT,
    b"workflow:\n  rules:\n    - if: $CI_COMMIT_BRANCH\nmonostack-test-all:\n  script: [x]\n",
    "root",
    None,
    "stack_template/monorepo/.gitlab-ci.yml.j2",
)


def messages(files) -> list[str]:
    return [c.message for c in gitlab_conflicts([ROOT_PART, *files])]


@pytest.mark.parametrize(
    ("job", "needle"),
    [
        ("alpha-a:\n  script: [x]\n", "job 'alpha-a' has no rules:"),
        (
            "alpha-a:\n  script: [x]\n  rules:\n    - if: $CI_COMMIT_BRANCH\n",
            "job 'alpha-a': rules[0] has no changes: filter",
        ),
        (
            "alpha-a:\n  script: [x]\n  rules:\n    - changes: [projects/beta/**/*]\n",
            "changes: entry 'projects/beta/**/*' points outside projects/alpha/",
        ),
        (
            "alpha-a:\n  script: [x]\n  rules:\n    - changes: {paths: ['projects/alpha/../x']}\n",
            "points outside projects/alpha/",
        ),
        ("alpha-a:\n  script: [x]\n  only: [main]\n", "job 'alpha-a': only has no changes:"),
        ("variables:\n  A: b\n", "top-level 'variables' is a global keyword"),
        ("include:\n  - local: x.yml\n", "top-level 'include' is a global keyword"),
        (
            "alpha-a:\n  stage: build2\n  script: [x]\n  rules: [{changes: [projects/alpha/*]}]\n",
            "uses stage 'build2', which the pipeline does not declare",
        ),
        (
            "alpha-a:\n  script: [x]\n  needs: [alpha-zz]\n"
            "  rules: [{changes: [projects/alpha/*]}]\n",
            "job 'alpha-a' needs 'alpha-zz', which no included file defines",
        ),
        ("alpha-a: [oops\n", "invalid YAML"),
        ("alpha-a:\n  script: [x]\nalpha-a:\n  script: [y]\n", "duplicate key 'alpha-a'"),
    ],
)
def test_project_rules(tmp_path, job, needle):
    found = messages([_file(_project(tmp_path), job)])
    assert any(needle in m for m in found), found
    assert all(m.startswith(f"projects/alpha/{PIPELINES}/p.yml") for m in found), found


def test_sound_project_files_pass_including_templates_never_rules_and_references(tmp_path):
    text = """\
.alpha-base:
  image: python:3.11
  rules:
    - if: $CI_COMMIT_TAG
      when: never
    - changes:
        paths: ["projects/alpha/**/*"]
alpha-a:
  extends: .alpha-base
  script: [x]
alpha-b:
  extends: .team-shared   # the team's template: not judged here
  script: !reference [.alpha-base, rules]
alpha-c:
  script: [x]
  only:
    changes: [projects/alpha/src/*]
  resource_group: alpha-deploy
"""
    assert messages([_file(_project(tmp_path), text)]) == []


def test_resource_group_and_keyword_collisions(tmp_path):
    alpha, beta = _project(tmp_path, "alpha"), _project(tmp_path, "beta")
    job = "{n}-a:\n  script: [x]\n  resource_group: shared\n"
    job += "  rules: [{{changes: [projects/{n}/*]}}]\n"
    team = PipelineFile(f"{PIPELINES}/team.yml", b"workflow:\n  name: x\n", "team")
    found = messages([_file(alpha, job.format(n="alpha")), _file(beta, job.format(n="beta")), team])
    assert any(m.startswith("resource group 'shared' is used by both") for m in found), found
    assert any(m.startswith("global keyword 'workflow' is set in both") for m in found), found
    assert len(found) == 2


def test_root_part_must_leave_include_to_sync():
    part = PipelineFile(GITLAB_ROOT, b"include:\n  - local: a.yml\n", "root", None, "t.yml.j2")
    (message,) = [c.message for c in gitlab_conflicts([part])]
    assert message.startswith("t.yml.j2:1 (rendered into .gitlab-ci.yml): sets include:")


def test_compose_without_pipelines_is_valid_and_keeps_line_endings():
    body = compose(b"a:\r\n  script: [x]\r\n", [], [])
    assert b"\r\n" in body and b"\n" not in body.replace(b"\r\n", b"")
    assert yaml.safe_load(body) == {"a": {"script": ["x"]}}
