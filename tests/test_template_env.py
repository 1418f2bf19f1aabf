"""template_env: Jinja2 set-up for templates, and the compiled-template cache new-project uses."""

from __future__ import annotations

import shutil
from pathlib import Path

import jinja2
import pytest

from monostack.errors import UserError
from monostack.template import load_template
from tests.test_template import BASIC, CONFIG, make_template

FILES = {
    "project/README.md.j2": "{{ project_name }} {{ flavour }} {{ fixed }}\n",
    "project/thing/{{ thing_name }}.txt": "thing\n",
}


def _render(root: Path, given: dict) -> tuple[dict, dict]:
    template = load_template(root)
    answers = template.resolve_answers(given, CONFIG)
    return answers, template.render_project(answers, CONFIG)


def test_cached_expressions_evaluate_as_jinja2s_own(tmp_path, monkeypatch):
    plain = make_template(tmp_path, BASIC, FILES)  # no git folder: no compiled-template cache
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    shutil.copytree(plain, repo / "stack_template")
    cached = repo / "stack_template"
    for given in ({"project_name": "demo"}, {"project_name": "demo", "use_thing": True}):
        assert _render(cached, given) == _render(plain, given)
    assert any(p.name.startswith("jinja-") for p in (repo / ".git/monostack").iterdir())

    # a second run compiles nothing: conditions and files come from the cache
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(jinja2.Environment, "compile", no_compile)
    monkeypatch.setattr(jinja2.Environment, "compile_expression", no_compile)
    given = {"project_name": "demo", "use_thing": True}
    assert _render(cached, given)[1]["thing/demo_thing.txt"] == b"thing\n"


def test_a_bad_condition_fails_as_without_the_cache(tmp_path):
    stack = BASIC.replace('when: "not use_thing"', 'when: "use_thing) or (use_thing"')
    plain = make_template(tmp_path, stack, FILES)
    (tmp_path / "repo/.git").mkdir(parents=True)
    shutil.copytree(plain, tmp_path / "repo/stack_template")
    messages = []
    for root in (plain, tmp_path / "repo/stack_template", tmp_path / "repo/stack_template"):
        with pytest.raises(UserError, match="skip.when") as info:
            _render(root, {"project_name": "demo"})
        messages.append(info.value.message.replace(str(root), "<root>"))
    assert len(set(messages)) == 1 and "unexpected ')'" in messages[0]


def test_uuid4_is_a_random_version_4_uuid():
    import uuid

    from monostack.template_env import _uuid4

    values = {_uuid4() for _ in range(500)}
    assert len(values) == 500
    for value in values:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, value)
