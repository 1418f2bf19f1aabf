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


def _cached_repo(tmp_path: Path, stack: str) -> Path:
    """A template inside a repo with a git folder: the compiled-template cache is on."""
    plain = make_template(tmp_path, stack, FILES)
    (tmp_path / "repo/.git").mkdir(parents=True)
    shutil.copytree(plain, tmp_path / "repo/stack_template")
    return tmp_path / "repo/stack_template"


def _count_checks(monkeypatch) -> list[str]:
    """Record each deep stack.yml check as it runs (and still run it)."""
    from monostack import template, template_params

    calls: list[str] = []
    for module, name in (
        (template, "check_names"),
        (template, "check_expression"),
        (template_params, "check_literal_default"),
        (template_params, "nested_quantifier"),
    ):
        real = getattr(module, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return calls


def test_stack_checks_run_once_per_stack_text(tmp_path, monkeypatch):
    root = _cached_repo(tmp_path, BASIC)
    calls = _count_checks(monkeypatch)
    first = load_template(root)
    assert {"check_names", "check_expression", "nested_quantifier"} <= set(calls)
    marks = list((tmp_path / "repo/.git/monostack").glob("jinja-*/stack-checked-*"))
    assert len(marks) == 1 and marks[0].read_bytes() == b""

    calls.clear()
    again = load_template(root)  # the same text: nothing is checked again
    assert calls == [] and again.parameters == first.parameters
    assert _render(root, {"project_name": "demo"}) == _render(root, {"project_name": "demo"})

    # any change to stack.yml's text (here a description) means checking it all again
    stack = root / "stack.yml"
    stack.write_text(
        stack.read_text().replace("  use_thing:\n", "  use_thing:\n    description: x\n")
    )
    load_template(root)
    assert "check_names" in calls
    assert len(list((tmp_path / "repo/.git/monostack").glob("jinja-*/stack-checked-*"))) == 2


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("when: use_thing", "when: use_thingy", "uses 'use_thingy'"),
        ("'^[a-z]{3,}$'", "'^([a-z]+)+$'", "repeats a group that itself repeats"),
        ("default: plain", "default: other", "is not one of its choices"),
        ('when: "not use_thing"', 'when: "not use_thing nope"', "invalid Jinja2"),
    ],
)
def test_a_bad_stack_yml_is_still_reported_once_a_good_one_is_cached(tmp_path, old, new, error):
    root = _cached_repo(tmp_path, BASIC)
    load_template(root)  # the good text is recorded as checked
    stack = root / "stack.yml"
    stack.write_text(stack.read_text().replace(old, new))
    for _ in range(2):  # a failed check records nothing: it fails again, the same way
        with pytest.raises(UserError, match=error) as info:
            load_template(root)
        assert str(stack) in info.value.message
    assert len(list((tmp_path / "repo/.git/monostack").glob("jinja-*/stack-checked-*"))) == 1


def test_a_link_in_place_of_a_check_mark_is_not_trusted(tmp_path, monkeypatch):
    root = _cached_repo(tmp_path, BASIC)
    load_template(root)
    (mark,) = (tmp_path / "repo/.git/monostack").glob("jinja-*/stack-checked-*")
    mark.unlink()
    outside = tmp_path / "outside"
    outside.write_text("x")
    mark.symlink_to(outside)
    calls = _count_checks(monkeypatch)
    load_template(root)
    assert "check_names" in calls  # checked again; the link is left alone, not written through
    assert mark.is_symlink() and outside.read_text() == "x"
