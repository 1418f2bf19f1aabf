"""basetree: the template tree a project was rendered from, recorded in and read back from git."""

from __future__ import annotations

import pytest

from monostack import basetree
from monostack.config import load_config
from monostack.errors import UserError
from monostack.template import load_template
from tests.conftest import git_status, root_of


def test_clean_template_records_heads_tree_and_touches_no_index(repo):
    root = root_of(repo)
    (root / "untracked.txt").write_text("x")
    repo.git.add("untracked.txt")
    staged_before = repo.git.diff("--cached", "--name-only")
    tree = basetree.record_template_tree(root)
    assert tree == repo.git.rev_parse("HEAD:stack_template")
    assert repo.git.diff("--cached", "--name-only") == staged_before
    assert repo.git.rev_parse(f"{basetree.BASE_REF_PREFIX}{tree}^{{tree}}") == tree


def test_dirty_template_gets_its_own_tree_without_a_ref_when_not_kept(repo):
    root = root_of(repo)
    (root / "stack_template/project/EXTRA.md").write_text("extra\n")
    tree = basetree.record_template_tree(root, keep=False)
    assert tree != repo.git.rev_parse("HEAD:stack_template")
    assert basetree.read_tree(root, tree)["project/EXTRA.md"] == b"extra\n"
    assert basetree.BASE_REF_PREFIX not in repo.git.show_ref()
    assert git_status(repo) == "?? stack_template/project/EXTRA.md"


def test_template_from_git_renders_exactly_as_from_disk(repo):
    root = root_of(repo)
    config = load_config(root)
    disk = load_template(root / "stack_template")
    memory = basetree.load_base_template(root, basetree.resolve_base(root, "HEAD"))
    assert memory.version == disk.version and memory.files is not None
    for combo in disk.iter_choice_combinations({"project_name": "demo"}, config):
        given = {"project_name": "demo", "project_uuid": "0" * 8 + "-0000-0000-0000-" + "0" * 12}
        answers = disk.resolve_answers({**given, **combo}, config)
        assert memory.render_project(answers, config) == disk.render_project(answers, config)
    assert memory.render_monorepo(config) == disk.render_monorepo(config)


def test_template_errors_name_the_tree(repo):
    root = root_of(repo)
    path = root / "stack_template/project/broken.txt.j2"
    path.write_text("{{ nope }}\n")
    repo.git.add(A=True)
    repo.index.commit("broken")
    template = basetree.load_base_template(root, basetree.resolve_base(root, "HEAD"))
    answers = template.resolve_answers({"project_name": "demo"}, load_config(root))
    with pytest.raises(UserError, match=r"stack_template@[0-9a-f]{12}/project/broken.txt.j2:1"):
        template.render_project(answers, load_config(root))


def test_resolve_base_errors(repo):
    root = root_of(repo)
    for ref, needle in (("-x", "give a commit"), ("nope", "no such commit")):
        with pytest.raises(UserError, match=needle):
            basetree.resolve_base(root, ref)
    repo.git.rm("-r", "-q", "stack_template")
    repo.index.commit("no template")
    with pytest.raises(UserError, match="has no stack_template/"):
        basetree.resolve_base(root, "HEAD")
