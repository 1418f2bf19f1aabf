"""The monorepo's own CI: the plan's outputs, the required check's decision, and the shape of
the generated GitHub Actions and Azure DevOps definitions that wire them together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from monostack import ci
from monostack.affected import affected
from monostack.config import load_config
from monostack.template import load_template
from tests.conftest import REPO_ROOT, root_of
from tests.test_runner import add_project, commit_all


def render(platform: str) -> dict[str, dict]:
    config = load_config(REPO_ROOT).replace(cicd_platform=platform)
    tree = load_template(REPO_ROOT / "stack_template").render_monorepo(config)
    return {path: yaml.safe_load(data) for path, data in tree.items() if "test-all" in path}


def github() -> dict:
    return render("github_actions")[".github/workflows/monostack-test-all.yml"]


def azure() -> dict:
    return render("azure_devops")[".azure/devops-pipelines/monostack-test-all.yml"]


# -- the decision ---------------------------------------------------------------------------------


def test_one_failed_shard_fails_the_required_check():
    needs = {
        "plan": {"result": "success"},
        "test-all": {"result": "failure"},  # GitHub folds the matrix: any failed shard
        "unit-tests": {"result": "success"},
    }
    assert ci.main(["required", "--needs-json", json.dumps(needs)]) == 1


@pytest.mark.parametrize("bad", ["failure", "cancelled", "Failed", "Canceled", "", "weird"])
def test_any_failed_cancelled_or_unknown_result_fails(bad):
    passed, lines = ci.decide({"plan": "success", "test-all": bad})
    assert not passed and any("FAILED" in line for line in lines)


def test_nothing_to_run_passes():
    assert ci.decide({"plan": "success", "test-all": "skipped", "unit-tests": "skipped"})[0]
    assert ci.decide({"Plan": "Succeeded", "TestAll": "Skipped", "UnitTests": "Skipped"})[0]
    assert not ci.decide({})[0]  # no results at all is not a pass


def test_a_failed_plan_fails_even_though_everything_else_was_skipped():
    assert not ci.decide({"plan": "failure", "test-all": "skipped", "unit-tests": "skipped"})[0]


def test_cli_arguments(capsys):
    assert ci.main(["required", "--result", "plan=Succeeded", "--result", "x=Skipped"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "monostack: required: passed"
    assert ci.main(["required", "--result", "noequals"]) == 2
    assert ci.main(["required", "--needs-json", "[1]"]) == 2


# -- the plan -------------------------------------------------------------------------------------


def test_no_affected_project_means_nothing_runs_and_the_required_check_passes(repo, tmp_path):
    root = root_of(repo)
    add_project(root, "alpha")
    commit_all(repo, "one project")
    (root / "README.md").write_text("docs only\n")
    outputs = ci.plan(affected(root, "main").as_json())
    assert outputs["run"] == "false" and outputs["unit_tests"] == "false"
    assert json.loads(outputs["shards"]) == []
    # with run=false the shard and unit-test jobs are skipped: the aggregate passes
    needs = {"plan": {"result": "success"}, "test-all": {"result": "skipped"}}
    assert ci.main(["required", "--needs-json", json.dumps(needs)]) == 0


def test_shard_count_grows_with_the_work_and_is_capped():
    assert ci.shard_count(1, False) == 1
    assert ci.shard_count(1, True) == 2
    assert ci.shard_count(100, True) == 5
    assert ci.shard_count(10_000, True) == ci.MAX_SHARDS
    out = ci.plan({"projects": [{"path": "projects/a"}], "global": True}, ["projects/a"])
    assert json.loads(out["shards"]) == ["1/2", "2/2"]
    assert json.loads(out["shard_matrix"]) == {
        "shard_1": {"shard": "1/2"},
        "shard_2": {"shard": "2/2"},
    }
    assert json.loads(out["project_matrix"]) == {"p_a": {"project": "projects/a"}}


def test_plan_cli_writes_outputs(tmp_path, capsys, monkeypatch):
    (tmp_path / "projects/a/tests").mkdir(parents=True)
    (tmp_path / "projects/a/test-requirements.txt").write_text("pytest\n")
    data = {"projects": [{"path": "projects/a"}, {"path": "projects/b"}], "global": False}
    (tmp_path / "affected.json").write_text(json.dumps(data))
    monkeypatch.chdir(tmp_path)
    assert ci.main(["plan", "affected.json"]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["run"] == "true" and json.loads(lines["projects"]) == ["projects/a"]
    assert ci.main(["plan", "--format", "azure", "affected.json"]) == 0
    assert "##vso[task.setvariable variable=run;isOutput=true]true" in capsys.readouterr().out
    assert ci.main(["plan", "missing.json"]) == 2


# -- the generated definitions ---------------------------------------------------------------------


def test_github_required_job_waits_for_every_job_and_always_runs():
    jobs = github()["jobs"]
    required = jobs["required"]
    assert required["name"] == "monostack: required"
    assert required["if"] == "always()"
    assert set(required["needs"]) == {"plan", "test-all", "unit-tests"}
    assert "toJSON(needs)" in required["steps"][-1]["env"]["NEEDS"]
    assert "monostack.ci required" in required["steps"][-1]["run"]
    # the work jobs are skipped (not failed) when the plan finds nothing to do
    assert jobs["test-all"]["if"] == "needs.plan.outputs.run == 'true'"
    assert jobs["unit-tests"]["if"] == "needs.plan.outputs.unit_tests == 'true'"
    assert jobs["test-all"]["strategy"]["fail-fast"] is False
    assert "--shard" in jobs["test-all"]["steps"][-3]["run"]
    # cache: restored on every shard with the plan's exact key, saved once, merged
    uses = [s.get("uses", "") for s in jobs["test-all"]["steps"]]
    assert any(u.startswith("actions/cache/restore@") for u in uses)
    assert any(
        s.get("uses", "").startswith("actions/cache/save@") for s in jobs["save-cache"]["steps"]
    )
    # every job other than required is one it waits for, save-cache aside (a cache that
    # could not be saved must not fail a pull request)
    assert set(jobs) - {"required", "save-cache"} == set(required["needs"])


def test_github_workflow_has_no_path_filter_so_it_always_reports():
    on = github()[True]  # PyYAML 1.1 reads `on` as a boolean key
    assert on["pull_request"] is None and "paths" not in (on["push"] or {})


def test_azure_required_job_waits_for_every_job_and_always_runs():
    jobs = {job["job"]: job for job in azure()["jobs"]}
    required = jobs["Required"]
    assert required["displayName"] == "monostack: required"
    assert required["condition"] == "always()"
    assert set(required["dependsOn"]) == {"Plan", "TestAll", "UnitTests"}
    assert set(jobs) - {"Required", "SaveCache"} == set(required["dependsOn"])
    for job in ("Plan", "TestAll", "UnitTests"):
        assert f"dependencies.{job}.result" in json.dumps(required["variables"])
    assert "plan.shard_matrix" in jobs["TestAll"]["strategy"]["matrix"]
    assert "eq(dependencies.Plan.outputs['plan.run'], 'true')" in jobs["TestAll"]["condition"]


def test_the_shipped_root_workflow_is_the_rendered_one():
    shipped = (REPO_ROOT / ".github/workflows/monostack-test-all.yml").read_text()
    assert "monostack: required" in shipped and "--shard" in shipped
    assert Path(REPO_ROOT / "stack_template/monorepo/.github/workflows").is_dir()


# -- GitLab: the root pipeline's jobs, run as GitLab runs them -------------------------------------


def gitlab() -> dict:
    config = load_config(REPO_ROOT).replace(cicd_platform="gitlab")
    tree = load_template(REPO_ROOT / "stack_template").render_monorepo(config)
    return yaml.safe_load(tree[".gitlab-ci.yml"])


WORK_JOBS = ("monostack-plan", "monostack-test-all", "monostack-unit-tests")


def test_gitlab_required_job_always_runs_and_waits_for_every_job():
    from monostack.checks.ci_files import GITLAB_CI, schema_findings

    doc = gitlab()
    required = doc["monostack: required"]
    assert all(rule.get("when") == "always" for rule in required["rules"])
    assert [n["job"] for n in required["needs"]] == list(WORK_JOBS)
    shards = doc["monostack-test-all"]["parallel"]
    script = required["script"][0]
    for job in WORK_JOBS[::2] + tuple(f"monostack-test-all {k}/{shards}" for k in range(1, 5)):
        assert f"--expect {job}" in script or f'--expect "{job}"' in script
    for job in WORK_JOBS:  # each reports its own status, also when it failed
        assert "$CI_JOB_STATUS" in " ".join(doc[job]["after_script"])
        assert doc[job]["artifacts"]["when"] == "always"
    shard = doc["monostack-test-all"]
    assert '--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"' in "\n".join(shard["script"])
    # the cache: restored (pull) by the plan and the shards, saved (push) once after them
    keys = {job: doc[job]["cache"] for job in ("monostack-plan", "monostack-test-all")}
    assert {c["policy"] for c in keys.values()} == {"pull"}
    assert doc["monostack-save-cache"]["cache"]["policy"] == "push"
    assert {c["key"] for c in [*keys.values(), doc["monostack-save-cache"]["cache"]]} == {
        "monostack-$CI_COMMIT_REF_SLUG"
    }
    text = yaml.safe_dump(doc, sort_keys=False)
    assert schema_findings(".gitlab-ci.yml", text, GITLAB_CI, "", "lint") == []


def _run_job(job: dict, cwd: Path, env: dict, name: str, job_id: int) -> int:
    """A job as the GitLab runner runs it: the script lines in one shell, stopping at the first
    failure, then after_script with $CI_JOB_STATUS. pip installs are left out (this venv has
    everything)."""
    import os
    import subprocess

    from tests.conftest import VENV_BIN

    lines = [line for line in job["script"] if "pip install" not in line]
    full = {
        **os.environ,
        **env,
        "PATH": f"{env.get('PREPEND_PATH', VENV_BIN)}{os.pathsep}{VENV_BIN}"
        f"{os.pathsep}{os.environ['PATH']}",
        "CI_JOB_NAME": name,
        "CI_JOB_ID": str(job_id),
    }
    code = subprocess.run(["bash", "-e", "-c", "\n".join(lines)], cwd=cwd, env=full).returncode
    full["CI_JOB_STATUS"] = "success" if code == 0 else "failed"
    after = "\n".join(job.get("after_script", []))
    assert subprocess.run(["bash", "-e", "-c", after], cwd=cwd, env=full).returncode == 0
    return code


def _pipeline(repo, tmp_path: Path, base: str, failing_shard: int = 0, lost: str = "") -> int:
    """Run the GitLab root's plan, shards, unit tests and required job in order on ``repo``
    (artifacts are the working tree they share); ``invoke test-all`` fails on shard
    ``failing_shard``; the job named ``lost`` never reports (cancelled). The required exit."""
    doc = gitlab()
    root = root_of(repo)
    env = {"CI_MERGE_REQUEST_DIFF_BASE_SHA": base, "CI_COMMIT_BEFORE_SHA": ""}
    assert _run_job(doc["monostack-plan"], root, env, "monostack-plan", 1) == 0
    fake = tmp_path / "fake-bin"
    fake.mkdir(exist_ok=True)
    (fake / "invoke").write_text(
        '#!/bin/sh\necho "invoke $*" >> "$CI_PROJECT_DIR/invoked"\n'
        f'[ "$CI_NODE_INDEX" != "{failing_shard}" ]\n'
    )
    (fake / "invoke").chmod(0o755)
    shard_env = {**env, "PREPEND_PATH": str(fake), "CI_PROJECT_DIR": str(root)}
    total = doc["monostack-test-all"]["parallel"]
    for k in range(1, total + 1):
        name = f"monostack-test-all {k}/{total}"
        if name != lost:
            node = {**shard_env, "CI_NODE_INDEX": str(k), "CI_NODE_TOTAL": str(total)}
            _run_job(doc["monostack-test-all"], root, node, name, 10 + k)
    _run_job(doc["monostack-unit-tests"], root, env, "monostack-unit-tests", 20)
    return _run_job(doc["monostack: required"], root, env, "monostack: required", 30)


def test_gitlab_aggregate_fails_when_one_shard_fails(repo, tmp_path):
    root = root_of(repo)
    base = repo.head.commit.hexsha
    add_project(root, "alpha")
    commit_all(repo, "a project")
    assert _pipeline(repo, tmp_path, base, failing_shard=3) == 1
    invoked = (root / "invoked").read_text()
    assert invoked.count("test-all --shard") == 4 and "--shard 3/4" in invoked
    assert f"--changed-since {base}" in invoked


def test_gitlab_aggregate_fails_when_a_shard_never_reports(repo, tmp_path):
    add_project(root_of(repo), "alpha")
    base = repo.head.commit.hexsha
    commit_all(repo, "a project")
    assert _pipeline(repo, tmp_path, base, lost="monostack-test-all 2/4") == 1


def test_gitlab_aggregate_passes_when_everything_passes_or_nothing_is_affected(repo, tmp_path):
    root = root_of(repo)
    add_project(root, "alpha")
    commit_all(repo, "a project")
    base = repo.head.commit.hexsha
    (root / "NOTES.md").write_text("docs only\n")
    commit_all(repo, "docs only")
    assert _pipeline(repo, tmp_path, base) == 0
    assert not (root / "invoked").exists()  # no shard had anything to run
    add_project(root, "beta")
    commit_all(repo, "another project")
    assert _pipeline(repo, tmp_path, base) == 0
    assert (root / "invoked").read_text().count("test-all --shard") == 4
