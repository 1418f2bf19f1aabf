"""list-projects: table and JSON over real projects in a real git repo."""

from __future__ import annotations

import json

import pytest

from monostack.errors import UserError
from monostack.listing import list_projects, render_listing
from monostack.projects import new_project
from tests.conftest import invoke, invoke_in_process, root_of
from tests.test_update import NEW, OLD, change_template, commit


@pytest.fixture
def listed(repo):
    root = root_of(repo)
    new_project(root, "alpha")
    new_project(root, "beta", {"include_models_in_unity_catalog": True})
    assert invoke_in_process(repo, "sync-workflows").returncode == 0
    commit(repo, "alpha and beta")
    change_template(root)
    new_project(root, "gamma", {"include_feature_store": True})  # rendered from the new one
    commit(repo, "template 0.2.0 and gamma")
    return repo


def test_json_lists_every_project_with_the_same_facts_as_the_table(listed):
    result = invoke(listed, "list-projects", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["template_version"] == NEW
    by_name = {p["name"]: p for p in data["projects"]}
    assert list(by_name) == ["alpha", "beta", "gamma"]
    assert by_name["alpha"]["template_version"] == OLD
    assert by_name["alpha"]["template"] == "behind"
    assert by_name["gamma"]["template"] == "up to date"
    assert by_name["gamma"]["template_tree"] == data["template_tree"]
    assert by_name["beta"]["answers"]["include_models_in_unity_catalog"] is True
    assert by_name["gamma"]["answers"]["include_feature_store"] is True
    assert by_name["alpha"]["ci_in_sync"] is True
    assert by_name["gamma"]["ci_in_sync"] is False  # its workflows were never synced
    assert by_name["gamma"]["last_commit"]["subject"] == "template 0.2.0 and gamma"
    assert by_name["alpha"]["last_commit"]["subject"] == "alpha and beta"
    assert by_name["alpha"]["dir"] == "projects/alpha"

    table = invoke_in_process(listed, "list-projects")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[1:4]}
    assert rows["alpha"][:7] == ["alpha", "projects/alpha", OLD, "behind", "no", "no", "yes"]
    assert rows["beta"][4] == "yes"
    assert rows["gamma"][2:6] == [NEW, "up", "to", "date"]
    assert "behind: alpha, beta (invoke update-projects)" in table.stdout


def test_project_without_base_and_bad_format(shipped_repo):
    root = root_of(shipped_repo)
    assert [(p.name, p.template) for p in list_projects(root).projects] == [
        ("project1", "up to date")
    ]
    answers = root / "projects/project1/.stack-answers.yml"
    answers.write_text(
        "".join(ln for ln in answers.read_text().splitlines(True) if "_template_tree" not in ln)
    )
    listing = list_projects(root)
    assert [(p.name, p.template) for p in listing.projects] == [("project1", "no base")]
    assert "no base: project1 (update-projects --base REF)" in render_listing(listing, "table")
    with pytest.raises(UserError, match="--format 'xml': choose one of: table, json"):
        render_listing(listing, "xml")
