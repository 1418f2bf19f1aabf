"""YAML 1.2 scalars, as the Databricks CLI (yaml.v3), GitHub and GitLab read them."""

from __future__ import annotations

import math

import pytest
import yaml

from monostack.bundle import load_bundle, parse_yaml
from monostack.yaml12 import Yaml12Loader
from monostack.yamlutil import dump_yaml, load_yaml_text

# (plain scalar as written, value under YAML 1.2; YAML 1.1 read most of these otherwise)
TABLE = [
    ("no", "no"),
    ("yes", "yes"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    ("n", "n"),
    ("Yes", "Yes"),
    ("NO", "NO"),
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("false", False),
    ("FALSE", False),
    ("017", 17),
    ("0o17", 15),
    ("0x1F", 31),
    ("-12", -12),
    ("+5", 5),
    ("1:30", "1:30"),
    ("1_000", "1_000"),
    ("0b101", "0b101"),
    ("1.5", 1.5),
    (".5", 0.5),
    ("1e3", 1000.0),
    ("-1.5E-2", -0.015),
    ("12e", "12e"),
    (".inf", math.inf),
    ("-.Inf", -math.inf),
    ("~", None),
    ("null", None),
    ("Null", None),
    ("", None),
    ("2024-01-31", "2024-01-31"),
    ("'017'", "017"),
    ('"yes"', "yes"),
]


@pytest.mark.parametrize(("written", "value"), TABLE)
def test_scalar_table(written: str, value):
    loaded = yaml.load(f"v: {written}\n", Loader=Yaml12Loader)["v"]  # noqa: S506
    assert loaded == value and type(loaded) is type(value), (written, loaded)
    # the strict loader and the bundle loader (with line numbers) agree
    assert load_yaml_text(f"v: {written}\n", "x.yml")["v"] == value
    doc, problems = parse_yaml(f"a: 1\nv: {written}\n", "x.yml")
    assert problems == [] and doc["v"] == value and doc.locs["v"] == ("x.yml", 2)


def test_keys_are_strings_as_written():
    assert load_yaml_text("on: push\nyes: 1\n", "ci.yml") == {"on": "push", "yes": 1}


def test_nan():
    assert math.isnan(yaml.load("v: .nan\n", Loader=Yaml12Loader)["v"])  # noqa: S506


def test_merge_keys_still_merge():
    doc = load_yaml_text("base: &b {x: 1, y: 1}\nuse: {<<: *b, y: 2}\n", "x.yml")
    assert doc["use"] == {"x": 1, "y": 2}


@pytest.mark.parametrize("text", ["no", "on", "017", "0o17", "1:30", "1_000", "yes", "y", "~"])
def test_dumped_strings_read_back_as_strings(text: str):
    """Files monostack writes quote any string YAML 1.1 or 1.2 would read as something else."""
    assert load_yaml_text(dump_yaml({"v": text}), "x.yml") == {"v": text}


def test_bundle_values_are_the_clis():
    bundle = load_bundle(
        {
            "databricks.yml": b"bundle: {name: p}\n"
            b"variables:\n  flag: {default: on}\n  code: {default: '0017'}\n"
            b"resources:\n  experiments:\n    e:\n      name: /x\n"
            b"      tags: [{key: approved, value: no}]\n"
        },
        "p",
    )
    view = bundle.targets["default"]
    assert view.values == {"flag": "on", "code": "0017"}
    tags = view.doc["resources"]["experiments"]["e"]["tags"]
    assert tags[0]["value"] == "no"


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
def test_the_loader_parses_with_libyaml():
    """The C parser when PyYAML has it (the package itself does not re-export ``CParser``):
    the pure-Python one is several times slower on every check that reads YAML."""
    assert issubclass(Yaml12Loader, yaml.cyaml.CParser)
    node = yaml.compose("a:\n  b: no\n", Loader=Yaml12Loader)  # noqa: S506 - safe
    assert node.value[0][1].start_mark.line == 1
