"""The bundle CI workflow's pull-request comment gets the ``bundle validate`` output.

GitHub drops a job output whose value contains a secret, and on Azure ``bundle validate`` prints
the service principal's application id, which the workflow holds as a secret. So the report must
reach the comment job another way (an artifact). These tests run the rendered workflow's steps
for real: the validate scripts in bash with a stand-in ``databricks`` that prints the secret, the
artifact hand-over as the runner does it (upload a folder, download it in the other job), and the
github-script step in node with a recording GitHub client.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monostack.config import load_config
from monostack.template import load_template
from tests.conftest import REPO_ROOT

APP_ID = "8d1c7e0a-5b2f-4e3a-9c1d-0f2e3a4b5c6d"  # what secrets.*_AZURE_SP_APPLICATION_ID holds
SECRETS = {
    "STAGING_AZURE_SP_TENANT_ID": "tenant-staging",
    "STAGING_AZURE_SP_APPLICATION_ID": APP_ID,
    "STAGING_AZURE_SP_CLIENT_SECRET": "s3cret-staging",
    "PROD_AZURE_SP_TENANT_ID": "tenant-prod",
    "PROD_AZURE_SP_APPLICATION_ID": APP_ID,
    "PROD_AZURE_SP_CLIENT_SECRET": "s3cret-prod",
}
# A stand-in CLI: validate prints the identity it authenticated as; prod fails.
FAKE_CLI = """#!/bin/sh
target="$4"
echo "Name: churn"
echo "Target: $target"
echo "Workspace:"
echo "  User: $ARM_CLIENT_ID"
if [ "$target" = prod ]; then
  echo "Error: cannot resolve bundle variable catalog_name" >&2
  exit 1
fi
echo "Validation OK!"
"""
# Runs a github-script `script` the way the action does (an async function of require, github,
# context) with a client that records the comments instead of calling the API.
NODE_HARNESS = """
const fs = require("fs");
const script = fs.readFileSync(process.argv[2], "utf8");
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const posted = [];
const record = async (args) => { posted.push(args); return { data: {} }; };
const github = {
  paginate: async () => [],
  rest: { issues: { listComments: () => {}, createComment: record, updateComment: record } },
};
const context = { repo: { owner: "acme", repo: "mono" }, issue: { number: 7 } };
new AsyncFunction("require", "github", "context", script)(require, github, context)
  .then(() => process.stdout.write(JSON.stringify(posted)))
  .catch((error) => { console.error(error); process.exit(1); });
"""
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def render_bundle_ci(platform: str = "github_actions") -> dict:
    config = load_config(REPO_ROOT).replace(cloud="azure", cicd_platform=platform)
    template = load_template(REPO_ROOT / "stack_template")
    tree = template.render_project(
        template.resolve_answers({"project_name": "churn"}, config), config
    )
    return yaml.safe_load(tree[".github/workflows/churn-bundle-ci.yml"])


def expand(value: str, runner_temp: Path, step_outputs: dict[str, dict[str, str]]) -> str:
    """Evaluate the few expressions the workflow uses, as the runner would."""

    def one(match: re.Match) -> str:
        expr = match.group(1)
        if expr.startswith("secrets."):
            return SECRETS[expr.removeprefix("secrets.")]
        if expr == "runner.temp":
            return str(runner_temp)
        step = re.fullmatch(r"steps\.(\w+)\.outputs\.(\w+)", expr)
        if step:
            return step_outputs.get(step.group(1), {}).get(step.group(2), "")
        raise AssertionError(f"unexpected expression {expr}")

    return EXPR.sub(one, str(value))


def read_outputs(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT lines (name=value; the heredoc form is not used for statuses)."""
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def run_validate_job(job: dict, temp: Path, tools: Path, artifacts: Path) -> None:
    """The validate job's steps after checkout and CLI set-up: scripts in bash, uploads copied."""
    outputs: dict[str, dict[str, str]] = {}
    for step in job["steps"]:
        uses = step.get("uses", "")
        if "upload-artifact@" in uses:
            source = Path(expand(step["with"]["path"], temp, outputs))
            shutil.copytree(source, artifacts / step["with"]["name"])
        elif "run" in step and "databricks bundle validate" in step["run"]:
            out = temp / f"out-{step['id']}"
            env = {k: expand(v, temp, outputs) for k, v in (step.get("env") or {}).items()}
            env.update(
                PATH=f"{tools}{os.pathsep}{os.environ['PATH']}",
                RUNNER_TEMP=str(temp),
                GITHUB_OUTPUT=str(out),
            )
            done = subprocess.run(
                ["bash", "-eo", "pipefail", "-c", step["run"]], env=env, capture_output=True
            )
            assert done.returncode == 0, done.stderr  # validate steps never fail themselves
            outputs[step["id"]] = read_outputs(out)


def comment_body(job: dict, temp: Path, artifacts: Path, tmp_path: Path) -> str:
    """The comment job: download the artifact, run the github-script, return the posted body."""
    download, script_step = job["steps"]
    assert "download-artifact@" in download["uses"]
    assert "github-script@" in script_step["uses"]
    source = artifacts / download["with"]["name"]
    if source.exists():
        shutil.copytree(source, expand(download["with"]["path"], temp, {}))
    script = tmp_path / "script.js"
    script.write_text(script_step["with"]["script"])
    harness = tmp_path / "harness.js"
    harness.write_text(NODE_HARNESS)
    env = {k: expand(v, temp, {}) for k, v in script_step["env"].items()}
    done = subprocess.run(
        ["node", str(harness), str(script)],
        env={**os.environ, **env, "RUNNER_TEMP": str(temp)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    [posted] = json.loads(done.stdout)
    assert (posted["owner"], posted["repo"], posted["issue_number"]) == ("acme", "mono", 7)
    return posted["body"]


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    cli = folder / "databricks"
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    return folder


@pytest.mark.parametrize(
    "platform", ["github_actions", "github_actions_for_github_enterprise_servers"]
)
def test_no_job_output_carries_the_report(platform):
    doc = render_bundle_ci(platform)
    # GitHub would drop an output holding the application id: nothing rides on job outputs.
    assert "outputs" not in doc["jobs"]["validate"]
    assert "needs.validate.outputs" not in json.dumps(doc)
    uploads = [
        s for s in doc["jobs"]["validate"]["steps"] if "upload-artifact@" in s.get("uses", "")
    ]
    downloads = [
        s for s in doc["jobs"]["comment"]["steps"] if "download-artifact@" in s.get("uses", "")
    ]
    assert [s["with"]["name"] for s in uploads] == [s["with"]["name"] for s in downloads]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed to run github-script")
def test_the_comment_step_gets_the_validate_output(tmp_path, tools):
    doc = render_bundle_ci()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    validate_temp, comment_temp = tmp_path / "runner1", tmp_path / "runner2"
    validate_temp.mkdir()
    comment_temp.mkdir()
    run_validate_job(doc["jobs"]["validate"], validate_temp, tools, artifacts)
    body = comment_body(doc["jobs"]["comment"], comment_temp, artifacts, tmp_path)
    assert body.startswith("<!-- monostack-bundle-ci: churn -->")
    staging, prod = body.split("<summary><b>staging</b>")[1].split("<summary><b>prod</b>")
    assert staging.startswith(": valid</summary>")
    assert "Target: staging" in staging and f"User: {APP_ID}" in staging
    assert "Validation OK!" in staging
    assert prod.startswith(": FAILED (exit 1)</summary>")
    assert "Error: cannot resolve bundle variable catalog_name" in prod


@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed to run github-script")
def test_without_reports_the_comment_says_not_run(tmp_path):
    doc = render_bundle_ci()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()  # validation never started: nothing was uploaded
    body = comment_body(doc["jobs"]["comment"], tmp_path, artifacts, tmp_path)
    assert "<b>staging</b>: not run" in body and "<b>prod</b>: not run" in body
    assert "(no output)" in body
