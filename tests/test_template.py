from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monostack.config import parse_config
from monostack.errors import UserError
from monostack.template import load_template, to_project_dir
from tests.conftest import REPO_ROOT

CONFIG = parse_config(
    {
        "cloud": "aws",
        "cicd_platform": "github_actions",
        "workspaces": {"staging": "https://s.example.com", "prod": "https://p.example.com"},
    }
)


def make_template(tmp_path: Path, stack: str, files: dict[str, str | bytes]) -> Path:
    root = tmp_path / "tpl"
    root.mkdir()
    (root / "stack.yml").write_text(textwrap.dedent(stack))
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


BASIC = """
version: "2.1"
parameters:
  project_name:
    pattern: '^[a-z]{3,}$'
    pattern_message: lower-case letters only
  use_thing:
    type: bool
    default: false
  thing_name:
    when: use_thing
    default: "{{ project_name }}_thing"
  flavour:
    choices: [plain, fancy]
    default: plain
  fixed:
    computed: true
    default: "{{ monorepo.cloud }}-fixed"
skip:
  - when: "not use_thing"
    paths: ["project/thing/*"]
"""


def test_to_project_dir():
    assert to_project_dir("my-proj") == to_project_dir("my_proj") == "my_proj"
    assert to_project_dir("churn") == "churn"
    assert to_project_dir("a$b%c") == "abc"


def test_resolve_defaults_when_and_computed(tmp_path):
    tpl = load_template(make_template(tmp_path, BASIC, {}))
    answers = tpl.resolve_answers({"project_name": "abc"}, CONFIG)
    assert answers == {
        "project_name": "abc",
        "project_dir": "abc",
        "use_thing": False,
        "thing_name": "abc_thing",
        "flavour": "plain",
        "fixed": "aws-fixed",
    }
    answers = tpl.resolve_answers({"project_name": "abc", "use_thing": "yes"}, CONFIG)
    assert answers["use_thing"] is True


@pytest.mark.parametrize(
    "given, needle",
    [
        ({"project_name": "ABC"}, "lower-case letters only"),
        ({"project_name": "abc", "flavour": "spicy"}, "'spicy' is not one of: plain, fancy"),
        ({"project_name": "abc", "thing_name": "x"}, "'thing_name' does not apply"),
        ({"project_name": "abc", "fixed": "x"}, "'fixed' is computed"),
        ({"project_name": "abc", "nope": "x"}, "unknown template parameter 'nope'"),
        ({"project_name": "abc", "use_thing": "maybe"}, "not a yes/no value"),
        ({}, "'project_name' is required"),
    ],
)
def test_resolve_errors(tmp_path, given, needle):
    tpl = load_template(make_template(tmp_path, BASIC, {}))
    with pytest.raises(UserError, match=needle.replace("(", r"\(")):
        tpl.resolve_answers(given, CONFIG)


def test_choice_combinations_collapse_inapplicable(tmp_path):
    tpl = load_template(make_template(tmp_path, BASIC, {}))
    combos = list(tpl.iter_choice_combinations({"project_name": "abc"}, CONFIG))
    assert len(combos) == 4  # use_thing x flavour; thing_name is not a choice
    assert {(c["use_thing"], c["flavour"]) for c in combos} == {
        (False, "plain"),
        (False, "fancy"),
        (True, "plain"),
        (True, "fancy"),
    }


def test_render_paths_contents_binary_and_skips(tmp_path):
    png = bytes(range(256)) + b"{{ not jinja }}"
    root = make_template(
        tmp_path,
        BASIC,
        {
            "project/{{ project_name }}-ci.yml.j2": (
                "name: {{ project_name }} {{ gh('github.ref') }}\n"
            ),
            "project/static/logo.png": png,
            "project/static/raw.txt": "{{ left alone }}",
            "project/thing/{{ thing_name }}.py.j2": "X = '{{ thing_name }}'\n",
            "project/{% if use_thing %}extra{% endif %}/only.txt": "only with thing",
            "project/macro_user.txt.j2": (
                '{% import "macros/m.j2" as m %}{{ m.hello(project_name) }}'
            ),
            "macros/m.j2": "{% macro hello(n) %}hello {{ n }}{% endmacro %}",
        },
    )
    tpl = load_template(root)
    tree = tpl.render_project(tpl.resolve_answers({"project_name": "abc"}, CONFIG), CONFIG)
    assert tree == {
        "abc-ci.yml": b"name: abc ${{ github.ref }}\n",
        "static/logo.png": png,
        "static/raw.txt": b"{{ left alone }}",
        "macro_user.txt": b"hello abc",
    }
    answers = tpl.resolve_answers({"project_name": "abc", "use_thing": True}, CONFIG)
    tree = tpl.render_project(answers, CONFIG)
    assert tree["thing/abc_thing.py"] == b"X = 'abc_thing'\n"
    assert tree["extra/only.txt"] == b"only with thing"


def test_undefined_variable_is_an_error_naming_the_file(tmp_path):
    root = make_template(tmp_path, BASIC, {"project/bad.yml.j2": "x: {{ no_such_thing }}\n"})
    tpl = load_template(root)
    with pytest.raises(
        UserError, match=r"bad\.yml\.j2:1: template error: 'no_such_thing' is undefined"
    ):
        tpl.render_project(tpl.resolve_answers({"project_name": "abc"}, CONFIG), CONFIG)


def test_path_traversal_in_rendered_name_is_refused(tmp_path):
    stack = BASIC.replace("pattern: '^[a-z]{3,}$'", "pattern: '.*'")
    root = make_template(tmp_path, stack, {"project/{{ project_name }}/x.txt": "x"})
    tpl = load_template(root)
    answers = tpl.resolve_answers({"project_name": "abc"}, CONFIG)
    answers["project_name"] = ".."
    with pytest.raises(UserError, match="not a plain path component"):
        tpl.render_project(answers, CONFIG)


def test_monorepo_part_is_separate(tmp_path):
    root = make_template(
        tmp_path,
        BASIC,
        {
            "project/a.txt": "a",
            "monorepo/.github/workflows/lint.yml.j2": "cloud: {{ monorepo.cloud }}\n",
        },
    )
    tpl = load_template(root)
    assert tpl.render_monorepo(CONFIG) == {".github/workflows/lint.yml": b"cloud: aws\n"}


@pytest.mark.parametrize(
    "stack, needle",
    [
        ("version: '1'\nparameters: {}\n", "'project_name' must be declared"),
        ("version: '1'\nparameters:\n  project_name: {typo: 1}\n", "unknown setting 'typo'"),
        ("version: '1'\nparameters:\n  project_name: {type: int}\n", "type: 'int' is not one of"),
        ("version: '1'\nparameters:\n  project_name: {pattern: '('}\n", "not a valid regex"),
        ("version: '1'\nparameters:\n  project_name: {}\n  project_dir: {}\n", "is reserved"),
        (
            "version: '1'\nparameters:\n  project_name: {}\n  x: {computed: true}\n",
            "needs a default",
        ),
        ("parameters:\n  project_name: {}\n", "version"),
        ("version: '1'\nextra: 1\nparameters:\n  project_name: {}\n", "unknown key 'extra'"),
        ("version: '1'\nparameters:\n  project_name: {}\nskip: [{when: x}]\n", "skip[0]"),
        ("version: [\n", "invalid YAML"),
        ("version: '1'\nparameters:\n  project_name: {kind: sql}\n", "kind: 'sql' is not"),
        (
            "version: '1'\nparameters:\n  project_name: {}\n  b: {type: bool, kind: branch}\n",
            "not a kind of text value",
        ),
        (
            "version: '1'\nparameters:\n  project_name: {}\n"
            "  s: {kind: unity_catalog_name, default: 'a;b'}\n",
            "s.default: 'a;b' is not valid",
        ),
    ],
)
def test_bad_stack_yml(tmp_path, stack, needle):
    with pytest.raises(UserError) as info:
        load_template(make_template(tmp_path, stack, {}))
    assert needle in str(info.value)
    assert "stack.yml" in str(info.value)


def test_shipped_template_loads_and_declares_project_parameters():
    tpl = load_template(REPO_ROOT / "stack_template")
    for name in (
        "project_name",
        "include_models_in_unity_catalog",
        "include_feature_store",
        "schema_name",
        "inference_table_name",
    ):
        assert name in tpl.parameters
    answers = tpl.resolve_answers({"project_name": "my-proj"}, CONFIG)
    assert answers["schema_name"] == "schema"
    assert answers["compute"] == CONFIG.compute
    assert answers["inference_table_name"] == "predictions"
    uc = tpl.resolve_answers(
        {"project_name": "my-proj", "include_models_in_unity_catalog": True}, CONFIG
    )
    assert uc["schema_name"] == "my_proj"


@pytest.mark.parametrize(
    "name, value, ok",
    [
        ("schema_name", "churn_v2", True),
        ("schema_name", "x;drop", False),
        ("schema_name", "a'b", False),
        ("schema_name", 'a"b', False),
        ("schema_name", "a`b", False),
        ("schema_name", "a.b", False),
        ("schema_name", "a-b", False),
        ("schema_name", "a b", False),
        ("schema_name", "x" * 256, False),
        ("inference_table_name", "scores", True),
        ("inference_table_name", "dev.churn.scores", True),
        ("inference_table_name", "churn.scores", False),
        ("inference_table_name", "dev.churn.sc;ores", False),
        ("inference_table_name", "sc'ores", False),
    ],
)
def test_shipped_identifier_parameters_follow_unity_catalog_rules(name, value, ok):
    """The same rule as catalogs in monorepo.yml (config.catalog_problem), via ``kind:``."""
    tpl = load_template(REPO_ROOT / "stack_template")
    given = {"project_name": "churn", "include_models_in_unity_catalog": True, name: value}
    if ok:
        assert tpl.resolve_answers(given, CONFIG)[name] == value
    else:
        with pytest.raises(UserError, match=f"parameter '{name}': .* is not valid: "):
            tpl.resolve_answers(given, CONFIG)


def test_recorded_answers_resolve_again(tmp_path):
    tpl = load_template(make_template(tmp_path, BASIC, {}))
    for given in ({"project_name": "abc"}, {"project_name": "abc", "use_thing": True}):
        recorded = tpl.resolve_answers(given, CONFIG)
        assert tpl.resolve_recorded(recorded, CONFIG) == recorded
    recorded = tpl.resolve_answers({"project_name": "abc"}, CONFIG)
    with pytest.raises(UserError, match="'spicy' is not one of"):
        tpl.resolve_recorded({**recorded, "flavour": "spicy"}, CONFIG)


def test_template_error_in_one_branch_is_not_a_skipped_combination(tmp_path: Path):
    # Skipping combinations whose answers fail validation is right; hiding a broken default is not.
    stack = BASIC.replace(
        'default: "{{ project_name }}_thing"',
        'default: "{{ typo_var if use_thing else project_name }}"',
    )
    # now caught when the template loads, before any combination is tried
    with pytest.raises(UserError, match="typo_var.*not a parameter declared before it"):
        load_template(make_template(tmp_path, stack, {"project/a.txt": "a"}))


def test_combinations_failing_a_pattern_are_skipped(tmp_path: Path):
    stack = """
    version: "1"
    parameters:
      project_name: {}
      flavour:
        choices: [plain, fancy]
        default: plain
      use_thing:
        type: bool
        default: false
      label:
        computed: true
        default: "{{ project_name ~ ('!' if flavour == 'fancy' and use_thing else '') }}"
        pattern: '^[a-z]+$'
    """
    tpl = load_template(make_template(tmp_path, stack, {"project/a.txt": "a"}))
    combos = list(tpl.iter_choice_combinations({"project_name": "abc"}, CONFIG))
    assert combos == [
        {"flavour": "plain", "use_thing": False},
        {"flavour": "plain", "use_thing": True},
        {"flavour": "fancy", "use_thing": False},
    ]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("when: use_thing", "when: 1 / 0"), "ZeroDivisionError"),
        (('default: "{{ project_name }}_thing"', 'default: "{{ 1 // 0 }}"'), "ZeroDivisionError"),
    ],
)
def test_errors_raised_by_template_expressions_are_user_errors(tmp_path, change, needle):
    tpl = load_template(make_template(tmp_path, BASIC.replace(*change), {"project/a.txt": "a"}))
    with pytest.raises(UserError, match=needle) as info:
        tpl.resolve_answers({"project_name": "abc", "use_thing": True}, CONFIG)
    assert "stack.yml" in info.value.message


def test_error_raised_while_rendering_a_file_names_it(tmp_path: Path):
    tpl = load_template(
        make_template(tmp_path, BASIC, {"project/a.txt.j2": "x\n{{ [1][5] if true }}\n"})
    )
    answers = tpl.resolve_answers({"project_name": "abc"}, CONFIG)
    with pytest.raises(UserError, match=r"a\.txt\.j2.*template error"):
        tpl.render_project(answers, CONFIG)


def test_non_utf8_files_are_user_errors(tmp_path: Path):
    root = make_template(tmp_path, BASIC, {"project/a.txt.j2": b"caf\xe9 {{ project_name }}\n"})
    tpl = load_template(root)
    answers = tpl.resolve_answers({"project_name": "abc"}, CONFIG)
    with pytest.raises(UserError, match=r"a\.txt\.j2.*not UTF-8"):
        tpl.render_project(answers, CONFIG)
    (root / "stack.yml").write_bytes(b"version: '1'\nparameters: {}\n# \xff\n")
    with pytest.raises(UserError, match=r"stack\.yml: not UTF-8"):
        load_template(root)


def test_skip_must_be_a_list(tmp_path: Path):
    stack = BASIC.split("skip:")[0] + "skip: 5\n"
    with pytest.raises(UserError, match="skip: expected a list"):
        load_template(make_template(tmp_path, stack, {}))
