"""The repo as shipped: its example project and root CI files stay true to the template."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from monostack import basetree
from monostack.config import load_config
from monostack.projects import ANSWERS_FILE, TEMPLATE_VERSION_KEY, discover_projects
from monostack.template import load_template
from tests.conftest import (
    REPO_ROOT,
    git_status,
    invoke_in_process,
    root_of,
    seed_matrix_cache,
)


def test_example_project_is_what_the_template_renders():
    config = load_config(REPO_ROOT)
    template = load_template(REPO_ROOT / "stack_template")
    projects = discover_projects(REPO_ROOT)
    assert [p.name for p in projects] == ["project1"]
    for project in projects:
        answers = dict(project.answers)
        assert answers.pop(TEMPLATE_VERSION_KEY) == template.version
        # its recorded base is the template as it is: update-projects has nothing to merge
        assert answers.pop(basetree.TREE_KEY) == basetree.record_template_tree(
            REPO_ROOT, keep=False
        )
        resolved = template.resolve_recorded(answers, config)
        assert resolved == answers
        expected = template.render_project(resolved, config)
        on_disk = {
            p.relative_to(project.path).as_posix(): p.read_bytes()
            for p in project.path.rglob("*")
            if p.is_file() and p.name != ANSWERS_FILE and "__pycache__" not in p.parts
        }
        assert sorted(on_disk) == sorted(expected), "re-render projects/project1"
        for rel, data in expected.items():
            assert on_disk[rel] == data, f"{rel} differs from the template's rendering"


def test_shipped_repo_is_in_sync_and_test_all_passes(shipped_repo, tmp_path, shipped_matrix):
    check = invoke_in_process(shipped_repo, "sync-workflows", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert invoke_in_process(shipped_repo, "sync-workflows").returncode == 0
    assert git_status(shipped_repo) == ""
    # the template's matrix as the session ran it on this same template and monorepo.yml
    seed_matrix_cache(shipped_matrix, shipped_repo)
    junit = tmp_path / "junit.xml"
    result = invoke_in_process(shipped_repo, "test-all", "--junit-xml", str(junit))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "0 failed" in result.stdout
    assert "cases unchanged: results from the cache" in result.stdout
    cases = ET.parse(junit).getroot().iter("testcase")
    by_check = {}
    for case in cases:
        by_check.setdefault(case.get("classname"), []).append(case.get("name"))
    assert len(by_check["render-matrix"]) >= 96
    assert "project1" in by_check["bundle-validate"]
    assert set(by_check) == {"lint", "render-matrix", "bundle-validate", "sync-workflows"}
    assert root_of(shipped_repo).joinpath(".github/workflows/project1-bundle-ci.yml").is_file()
