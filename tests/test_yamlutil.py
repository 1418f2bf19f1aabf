"""Strict YAML loading: one actionable line per problem."""

from __future__ import annotations

import pytest

from monostack.errors import UserError
from monostack.yamlutil import compose_yaml, dump_yaml, load_yaml_text


def test_loads_mappings_in_order():
    assert list(load_yaml_text("b: 1\na: [x, y]\n", "f.yml")) == ["b", "a"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: a\nname: b\n", "f.yml:2: invalid YAML: duplicate key 'name'"),
        # a GitHub `on:` key loads as the boolean True; the message shows it as written
        ("on: push\njobs: {}\non: pull_request\n", "f.yml:3: invalid YAML: duplicate key 'on'"),
        ("a: [1\n", "f.yml:2: invalid YAML:"),
        ("a: !!python/object:os.system x\n", "f.yml:1: invalid YAML:"),
    ],
)
def test_bad_yaml_is_one_line_with_file_and_line(text, expected):
    with pytest.raises(UserError) as info:
        load_yaml_text(text, "f.yml")
    assert info.value.message.startswith(expected)
    assert "\n" not in info.value.message


def test_compose_keeps_line_marks():
    node = compose_yaml("a: 1\nb:\n  c: 2\n")
    (_, _), (b_key, b_value) = node.value
    assert b_key.start_mark.line == 1 and b_value.value[0][0].start_mark.line == 2


def test_dump_round_trips_in_order():
    data = {"z": 1, "a": {"list": ["x", "ü"]}}
    text = dump_yaml(data)
    assert text.index("z:") < text.index("a:") and "ü" in text
    assert load_yaml_text(text, "f.yml") == data
