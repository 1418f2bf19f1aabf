"""bundle-validate: real projects in temp monorepos, one planted defect at a time."""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

from monostack.bundle import DiskTree, load_bundle, plain
from monostack.checks import ERROR, INFO, WARNING
from monostack.checks.bundle.collisions import cross_project_findings
from monostack.checks.bundle.common import CHECK
from monostack.checks.bundle.models import RESOURCE_CLASSES, UNTYPED_RESOURCE_TYPES
from monostack.checks.bundle.online import SKIPPED_ONLINE
from monostack.checks.bundle_validate import (
    CROSS_PROJECT,
    run_bundle_validate,
    validate_project_tree,
)
from monostack.config import CLOUDS, load_config
from monostack.projects import TEMPLATE_DIR, discover_projects, new_project
from monostack.template import load_template
from tests.conftest import BUNDLE_SCHEMA, make_repo

PLANTED = "resources/planted-resource.yml"
PLANTED_JOB = """\
# A job the tests add to a real project, to plant defects in.
resources:
  jobs:
    planted_job:
      name: ${{bundle.target}}-{name}-planted-job
      max_concurrent_runs: 1
      tasks:
        - task_key: Planted
          notebook_task:
            notebook_path: ../planted/notebooks/Planted.py
            base_parameters:
              env: ${{bundle.target}}
              model_name: ${{var.model_name}}
              output_table_name: ${{bundle.target}}.{dir}.planted_output
      permissions:
        - level: CAN_VIEW
          group_name: users
"""


# ------------------------------------------------------------------------------ helpers
def make_project(root: Path, name: str, plant: bool = True, **answers) -> Path:
    result = new_project(root, name, answers)
    if plant:
        plant_job(result.path, name, result.project_dir)
    return result.path


def plant_job(path: Path, name: str, project_dir: str) -> None:
    """Add a job (and the notebook it runs) to a project, included by its databricks.yml."""
    (path / PLANTED).write_text(PLANTED_JOB.format(name=name, dir=project_dir))
    notebook = path / "planted" / "notebooks" / "Planted.py"
    notebook.parent.mkdir(parents=True, exist_ok=True)
    notebook.write_text("# Databricks notebook source\nprint('planted')\n")
    if PLANTED not in load_bundle(DiskTree(path)).files:
        edit(path / "databricks.yml", "include:\n", f"include:\n  - ./{PLANTED}\n")
    assert PLANTED in load_bundle(DiskTree(path)).files


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    """1-based number of the first line containing ``needle``."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def set_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = text + "\n"
    path.write_text("".join(lines))


def insert_after(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(number, text + "\n")
    path.write_text("".join(lines))


def key_loc(project: Path, *keys: str) -> tuple[str, int]:
    """(project-relative file, line) where a key of the merged bundle is written."""
    node = load_bundle(DiskTree(project)).base
    for key in keys[:-1]:
        node = node[key]
    file, line = node.locs[keys[-1]]
    return file, line


def run(root: Path, names: list[str] | None = None, online: bool = False):
    projects = discover_projects(root)
    if names is not None:
        projects = [p for p in projects if p.name in names]
    results = run_bundle_validate(root, projects, online=online)
    assert all(r.check == CHECK for r in results)
    return results


def errors(results, case: str | None = None):
    return [f for r in results if case in (None, r.case) for f in r.findings if f.severity == ERROR]


def the_error(results, *needles: str, case: str | None = None):
    """The one error whose message holds every needle."""
    found = [f for f in errors(results, case) if all(n in f.message for n in needles)]
    assert len(found) == 1, (needles, [f.message for f in errors(results)])
    return found[0]


def the_warning(results, *needles: str, case: str | None = None):
    """The one warning whose message holds every needle."""
    warnings = [
        f for r in results if case in (None, r.case) for f in r.findings if f.severity == WARNING
    ]
    found = [f for f in warnings if all(n in f.message for n in needles)]
    assert len(found) == 1, (needles, [f.message for f in warnings])
    return found[0]


@pytest.fixture(scope="module")
def _pristine(tmp_path_factory) -> dict[str, Path]:
    """Real monorepos built once per module (rendering projects takes most of the time):
    an empty one, and one with a workspace-registry project and a Unity Catalog project, each
    with a planted job. Tests work on copies."""
    base = tmp_path_factory.mktemp("pristine")
    empty = base / "empty"
    make_repo(empty)
    two = base / "two"
    make_repo(two)
    make_project(two, "alpha")
    make_project(two, "beta-uc", include_models_in_unity_catalog=True)
    return {"empty": empty, "two": two}


@pytest.fixture
def root(_pristine, tmp_path: Path) -> Path:
    """An empty monorepo (a git repo with the template and monorepo.yml), this test's own."""
    return Path(shutil.copytree(_pristine["empty"], tmp_path / "mono", symlinks=True))


@pytest.fixture
def two(_pristine, tmp_path: Path) -> Path:
    """A monorepo with projects alpha and beta-uc (UC), each with a planted job."""
    return Path(shutil.copytree(_pristine["two"], tmp_path / "mono", symlinks=True))


# ------------------------------------------------------------------------------ happy paths
def test_fresh_projects_have_no_errors(root: Path):
    make_project(root, "alpha", plant=False)
    make_project(root, "beta-uc", plant=False, include_models_in_unity_catalog=True)
    make_project(root, "gamma-fs", plant=False, include_feature_store=True)
    results = run(root)
    assert [r.case for r in results] == ["alpha", "beta-uc", "gamma-fs", CROSS_PROJECT]
    assert errors(results) == []
    assert all(r.skipped is None and r.seconds >= 0 for r in results)


def test_planted_jobs_are_valid_and_distinct(two: Path):
    assert errors(run(two)) == []


def test_cases_follow_the_selection(two: Path):
    results = run(two, ["beta-uc"])
    assert [r.case for r in results] == ["beta-uc", CROSS_PROJECT]
    assert run_bundle_validate(two, [])[-1].case == CROSS_PROJECT


def test_validate_project_tree_on_in_memory_renders(root: Path):
    """Every choice combination of the template, per cloud, rendered in memory, is clean."""
    template = load_template(root / TEMPLATE_DIR)
    base_config = load_config(root)
    checked = 0
    for cloud in CLOUDS:
        config = base_config.replace(cloud=cloud)
        for choices in template.iter_choice_combinations({"project_name": "combo"}, config):
            answers = template.resolve_answers({"project_name": "combo", **choices}, config)
            tree = template.render_project(answers, config)
            findings = validate_project_tree(tree, "combo", config, "projects/combo/")
            assert [f for f in findings if f.severity == ERROR] == [], (cloud, choices)
            assert all(f.file.startswith("projects/combo/") for f in findings)
            checked += 1
    assert checked >= 2 * len(CLOUDS)


def test_validate_project_tree_finds_defects_in_memory(root: Path):
    template = load_template(root / TEMPLATE_DIR)
    config = load_config(root)
    answers = template.resolve_answers({"project_name": "mem"}, config)
    tree = template.render_project(answers, config)
    tree["databricks.yml"] = tree["databricks.yml"].replace(
        b"bundle:\n", b"bundle:\n  nmae: typo\n", 1
    )
    findings = validate_project_tree(tree, "mem", config, "projects/mem/")
    # a near miss of `name`: an error (the CLI would drop it silently), with the suggestion
    typos = [f for f in findings if "unknown field 'nmae'" in f.message]
    assert [f.severity for f in typos] == [ERROR] and "did you mean 'name'?" in typos[0].message
    assert [f.line for f in typos] == [
        tree["databricks.yml"].decode().splitlines().index("  nmae: typo") + 1
    ]
    assert all(f.check == CHECK and f.project == "mem" for f in findings)


@pytest.mark.skipif(not BUNDLE_SCHEMA.is_file(), reason="no published bundle schema here")
def test_merged_target_documents_match_the_published_schema(two: Path):
    from tests.bundle_schema import schema_errors

    make_project(two, "gamma-fs", include_feature_store=True)
    for project in discover_projects(two):
        bundle = load_bundle(DiskTree(project.path))
        assert set(bundle.targets) >= {"dev", "staging", "prod", "test"}
        for name, view in bundle.targets.items():
            assert schema_errors(plain(view.doc)) == [], (project.name, name)


@pytest.mark.skipif(not BUNDLE_SCHEMA.is_file(), reason="no published bundle schema here")
def test_known_keys_and_resource_types_match_the_published_schema():
    import json

    from monostack.bundle import TARGET_KEYS, TOP_LEVEL_KEYS

    schema = json.loads(BUNDLE_SCHEMA.read_text())
    defs = schema["$defs"]["github.com"]["databricks"]["cli"]["bundle"]["config.Target"]
    assert sorted(schema["properties"]) == sorted(TOP_LEVEL_KEYS)
    target = next(o for o in defs["oneOf"] if "properties" in o)
    assert sorted(target["properties"]) == sorted(TARGET_KEYS)
    resources = schema["$defs"]["github.com"]["databricks"]["cli"]["bundle"]["config.Resources"]
    listed = next(o for o in resources["oneOf"] if "properties" in o)["properties"]
    known = set(RESOURCE_CLASSES) | set(UNTYPED_RESOURCE_TYPES)
    assert set(listed) <= known


def test_resource_classes_are_the_libraries_own():
    import importlib

    for rtype, (module, cls) in RESOURCE_CLASSES.items():
        model = getattr(importlib.import_module(f"databricks.bundles.{module}"), cls)
        assert hasattr(model, "from_dict"), rtype


# ------------------------------------------------------------------------------ planted defects
def test_unknown_job_field_is_reported_at_its_line(two: Path):
    """A warning, as the CLI gives ("Warning: unknown field"): it deploys without the field."""
    path = two / "projects/alpha" / PLANTED
    number = line_of(path, "max_concurrent_runs")
    insert_after(path, number, "      retries_please: 3")
    results = run(two)
    assert not [f for f in errors(results, "alpha") if "retries_please" in f.message]
    found = the_warning(results, "retries_please", case="alpha")
    assert found.file == f"projects/alpha/{PLANTED}"
    assert found.line == number + 1
    assert found.project == "alpha"
    assert found.file == f"projects/alpha/{PLANTED}"
    assert found.message.startswith("unknown field 'retries_please'")
    assert "resources.jobs.planted_job" in found.message


def test_unknown_nested_field_suggests_the_right_one(two: Path):
    path = two / "projects/alpha" / PLANTED
    edit(path, "notebook_path:", "notebook_pth:")
    found = the_error(run(two), "notebook_pth", case="alpha")  # a near miss: an error
    assert found.line == line_of(path, "notebook_pth:")
    assert "did you mean 'notebook_path'" in found.message
    assert "tasks[0].notebook_task" in found.message


def test_undeclared_variable(two: Path):
    project = two / "projects/alpha"
    file, line = key_loc(
        project, "resources", "experiments", *_first(project, "experiments"), "name"
    )
    path = project / file
    set_line(
        path,
        line,
        re.sub(
            r"name:.*", "name: /Shared/${var.not_declared}", path.read_text().splitlines()[line - 1]
        ),
    )
    found = the_error(run(two), "not_declared", case="alpha")
    assert (found.file, found.line) == (f"projects/alpha/{file}", line)
    assert found.file == f"projects/alpha/{file}"
    assert found.message.startswith("${var.not_declared}")
    assert "not declared under `variables`" in found.message


def test_missing_notebook(two: Path):
    path = two / "projects/alpha" / PLANTED
    edit(path, "../planted/notebooks/Planted.py", "../planted/notebooks/Missing.py")
    found = the_error(run(two), "Missing.py", case="alpha")
    assert (found.file, found.line) == (f"projects/alpha/{PLANTED}", line_of(path, "Missing.py"))
    assert "projects/alpha/planted/notebooks/Missing.py does not exist" in found.message
    assert "notebook_task.notebook_path" in found.message


@pytest.mark.parametrize(
    "path",
    [
        "../planted/notebooks/Planted",  # a notebook named without its extension
        "${workspace.file_path}/planted/notebooks/Planted.py",
        "/Workspace/Shared/elsewhere",  # a workspace path: not a local file
    ],
)
def test_notebook_paths_that_resolve(two: Path, path: str):
    edit(two / "projects/alpha" / PLANTED, "../planted/notebooks/Planted.py", path)
    assert errors(run(two, ["alpha"])) == []


def test_same_job_name_in_two_projects(two: Path):
    alpha = two / "projects/alpha"
    beta = load_bundle(DiskTree(two / "projects/beta_uc"))
    beta_jobs = beta.base["resources"]["jobs"]
    beta_name = beta_jobs[sorted(beta_jobs)[0]]["name"]
    file, line = key_loc(alpha, "resources", "jobs", *_first(alpha, "jobs"), "name")
    set_line(alpha / file, line, f"      name: {beta_name}")
    results = run(two)

    # staging-, prod- and test-... names collide in both workspaces: one finding says it all.
    # Two jobs with one name both exist: a warning.
    def collisions_of(results):
        return [f for r in results if r.case == CROSS_PROJECT for f in r.findings]

    [found] = collisions_of(results)
    assert found.severity == WARNING and "both jobs exist" in found.message
    assert found.message.startswith("job names ")
    assert "project 'alpha'" in found.message and "project 'beta-uc'" in found.message
    assert f"projects/alpha/{file}:{line}, targets staging, prod, test" in found.message
    assert "https://adb-1111111111111111.11.azuredatabricks.net" in found.message
    assert "https://adb-2222222222222222.12.azuredatabricks.net" in found.message
    # Both sides are selected: the finding sits on the later project's definition.
    assert found.project == "beta-uc" and found.file.startswith("projects/beta_uc/resources/")
    assert errors(results, "alpha") == [] and errors(results, "beta-uc") == []

    # One selected side is enough; a selection without either side stays quiet.
    [only_alpha] = collisions_of(run(two, ["alpha"]))
    assert (only_alpha.project, only_alpha.file, only_alpha.line) == (
        "alpha",
        f"projects/alpha/{file}",
        line,
    )
    make_project(two, "gamma")
    assert collisions_of(run(two, ["gamma"])) == []


def test_malformed_yaml_in_databricks_yml(two: Path):
    path = two / "projects/alpha/databricks.yml"
    number = line_of(path, "name: alpha")
    set_line(path, number, "  name: [alpha")
    results = run(two)
    found = the_error(results, "invalid YAML", case="alpha")
    assert found.file == "projects/alpha/databricks.yml"
    assert found.line and found.message.startswith("invalid YAML:")
    assert found.line is not None and found.line >= number
    assert errors(results, "beta-uc") == [] and errors(results, CROSS_PROJECT) == []


def test_staging_host_differs_from_monorepo_yml(two: Path):
    project = two / "projects/beta_uc"
    file, line = key_loc(project, "targets", "staging", "workspace", "host")
    set_line(project / file, line, "      host: https://adb-9999.19.azuredatabricks.net")
    found = the_error(run(two), "targets.staging.workspace.host", case="beta-uc")
    assert (found.file, found.line) == (f"projects/beta_uc/{file}", line)
    assert "https://adb-9999.19.azuredatabricks.net" in found.message
    assert "monorepo.yml workspaces.staging is https://adb-1111111111111111" in found.message


def test_host_differing_only_in_url_suffix_is_fine(two: Path):
    project = two / "projects/alpha"
    file, line = key_loc(project, "targets", "prod", "workspace", "host")
    set_line(
        project / file,
        line,
        "      host: https://ADB-2222222222222222.12.azuredatabricks.net/?o=2#job/1",
    )
    assert errors(run(two, ["alpha"])) == []


def test_missing_target(two: Path):
    path = two / "projects/alpha/databricks.yml"
    text = path.read_text()
    start = text.index("\n  prod:\n")
    end = text.index("\n  test:\n")
    path.write_text(text[:start] + text[end:])
    found = the_error(run(two), "target 'prod' is missing", case="alpha")
    assert found.file == "projects/alpha/databricks.yml"
    assert "https://adb-2222222222222222.12.azuredatabricks.net" in found.message


def test_dangling_resource_reference(two: Path):
    path = two / "projects/alpha" / PLANTED
    number = line_of(path, "env: ${bundle.target}")
    insert_after(path, number, "              upstream: ${resources.jobs.nope.id}")
    insert_after(path, number, "              itself: ${resources.jobs.planted_job.id}")
    found = the_error(run(two), "resources.jobs.nope", case="alpha")
    assert (found.file, found.line) == (f"projects/alpha/{PLANTED}", number + 2)
    assert "not defined" in found.message


def test_two_default_targets(two: Path):
    path = two / "projects/alpha/databricks.yml"
    insert_after(path, line_of(path, "  staging:"), "    default: true")
    found = the_error(run(two), "default: true", case="alpha")
    assert "dev, staging" in found.message
    assert (found.file, found.line) == (
        "projects/alpha/databricks.yml",
        line_of(path, "  staging:") + 1,
    )


def test_no_default_target(two: Path):
    path = two / "projects/alpha/databricks.yml"
    edit(path, "    default: true\n", "")
    the_error(run(two), "no target has `default: true`", case="alpha")


def test_bad_enum_value(two: Path):
    path = two / "projects/alpha" / PLANTED
    edit(path, "level: CAN_VIEW", "level: CAN_FLY")
    found = the_error(run(two), "CAN_FLY", case="alpha")
    assert (found.file, found.line) == (f"projects/alpha/{PLANTED}", line_of(path, "CAN_FLY"))
    assert "not a valid JobPermissionLevel" in found.message
    assert "CAN_MANAGE" in found.message  # the allowed values are listed
    assert "resources.jobs.planted_job.permissions[0].level" in found.message


def test_wrong_type_and_missing_required_field(two: Path):
    path = two / "projects/alpha" / PLANTED
    edit(path, "max_concurrent_runs: 1", "max_concurrent_runs: lots")
    edit(path, "- task_key: Planted\n          notebook_task:", "- notebook_task:")
    results = run(two)
    wrong = the_error(results, "max_concurrent_runs must be an integer", case="alpha")
    assert wrong.line == line_of(path, "max_concurrent_runs")
    missing = the_error(results, "missing the required field 'task_key'", case="alpha")
    assert missing.line == line_of(path, "- notebook_task:")


def test_includes_glob_may_match_nothing_but_listed_files_must_exist(two: Path):
    path = two / "projects/alpha/databricks.yml"
    edit(
        path,
        "include:\n",
        "include:\n  - ./resources/none-*.yml\n  - resources/missing-resource.yml\n",
    )
    found = the_error(run(two), "missing-resource.yml", case="alpha")
    assert (found.file, found.line) == (
        "projects/alpha/databricks.yml",
        line_of(path, "missing-resource"),
    )
    assert "does not exist" in found.message
    assert not any("none-" in f.message for f in errors(run(two)))


def test_include_taking_a_non_yaml_file_is_an_error(two: Path):
    path = two / "projects/alpha/databricks.yml"
    edit(path, "include:\n", "include:\n  - ./resources/*\n")
    found = the_error(run(two), "README.md", case="alpha")
    assert (found.file, found.line) == (
        "projects/alpha/databricks.yml",
        line_of(path, "./resources/*"),
    )
    assert "not a .yml, .yaml or .json file" in found.message
    assert not any("invalid YAML" in f.message for f in errors(run(two)))


def test_target_assigning_an_undeclared_variable(two: Path):
    path = two / "projects/alpha/databricks.yml"
    insert_after(path, line_of(path, "  prod:"), "    variables:\n      ghost_var: x")
    found = the_error(run(two), "ghost_var", case="alpha")
    assert found.line == line_of(path, "ghost_var")


def test_variable_without_value_for_a_deploy_target_is_a_warning(two: Path):
    path = two / "projects/alpha/databricks.yml"
    edit(path, "variables:\n", "variables:\n  needs_value:\n    description: no default\n")
    results = run(two, ["alpha"])
    assert errors(results) == []
    warnings = [f for f in results[0].findings if f.severity == WARNING]
    assert any("'needs_value' has no default" in f.message for f in warnings)


def test_unknown_resource_type_and_missing_bundle_name(two: Path):
    path = two / "projects/alpha/databricks.yml"
    edit(path, "name: alpha\n", "")
    (two / "projects/alpha/resources/typo-resource.yml").write_text(
        "resources:\n  jbos:\n    x: {name: y}\n"
    )
    edit(path, "include:\n", "include:\n  - resources/typo-resource.yml\n")
    results = run(two)
    the_error(results, "bundle.name is missing", case="alpha")
    found = the_error(results, "unknown resource type resources.jbos", case="alpha")
    assert "did you mean 'jobs'" in found.message and found.line == 2


def test_duplicate_key_is_an_error(two: Path):
    path = two / "projects/alpha" / PLANTED
    insert_after(path, line_of(path, "max_concurrent_runs"), "      max_concurrent_runs: 2")
    found = the_error(run(two), "duplicate key 'max_concurrent_runs'", case="alpha")
    assert found.line == line_of(path, "max_concurrent_runs: 2")


# ------------------------------------------------------------------------------ cross-project
def collisions(results) -> dict[str, list[str]]:
    """Cross-project errors as {kind: [colliding names]}, from their messages."""
    found = {}
    for finding in errors(results, CROSS_PROJECT):
        head = finding.message.split(" deployed by ")[0]
        kind = head.split(" '", 1)[0].removesuffix("s")
        assert kind not in found, finding.message
        found[kind] = re.findall(r"'([^']+)'", head)
        assert "project 'alpha'" in finding.message, finding.message
    return found


def test_collisions_of_bundles_experiments_and_output_tables(two: Path):
    beta = two / "projects/beta_uc"
    edit(beta / "databricks.yml", "name: beta-uc\n", "name: alpha\n")
    edit(beta / "databricks.yml", "-beta-uc-experiment", "-alpha-experiment")
    edit(beta / PLANTED, ".beta_uc.planted_output", ".alpha.planted_output")
    results = run(two)
    assert errors(results, "alpha") == [] and errors(results, "beta-uc") == []
    assert collisions(results) == {
        "bundle name": ["alpha"],
        "experiment name": [
            "/Users/<deploying-user>/prod-alpha-experiment",
            "/Users/<deploying-user>/staging-alpha-experiment",
            "/Users/<deploying-user>/test-alpha-experiment",
        ],
        "output table": [
            "prod.alpha.planted_output",
            "staging.alpha.planted_output",
            "test.alpha.planted_output",
        ],
    }
    assert all("project 'beta-uc'" in f.message for f in errors(results, CROSS_PROJECT))


def test_unity_catalog_model_collision_resolves_variables_per_target(root: Path):
    make_project(
        root, "alpha", plant=False, include_models_in_unity_catalog=True, schema_name="shared"
    )
    make_project(
        root, "uc-two", plant=False, include_models_in_unity_catalog=True, schema_name="shared"
    )
    assert errors(run(root)) == []
    edit(root / "projects/uc_two/databricks.yml", "default: uc-two-model", "default: alpha-model")
    # staging and test share a workspace but use different catalogs (monorepo.yml catalogs).
    assert collisions(run(root)) == {
        "Unity Catalog model": [
            "prod.shared.alpha-model",
            "staging.shared.alpha-model",
            "test.shared.alpha-model",
        ]
    }


def test_unity_catalog_names_collide_whatever_their_case(root: Path):
    make_project(
        root, "alpha", plant=False, include_models_in_unity_catalog=True, schema_name="shared"
    )
    make_project(
        root, "uc-two", plant=False, include_models_in_unity_catalog=True, schema_name="Shared"
    )
    edit(root / "projects/uc_two/databricks.yml", "default: uc-two-model", "default: ALPHA-model")
    found = collisions(run(root))
    assert list(found) == ["Unity Catalog model"]
    assert "prod.Shared.ALPHA-model" in found["Unity Catalog model"]
    assert "prod.shared.alpha-model" in found["Unity Catalog model"]


def test_quality_monitor_table_collision(two: Path):
    monitor = (
        "  quality_monitors:\n"
        "    monitor:\n"
        "      table_name: ${bundle.target}.shared.predictions\n"
        "      assets_dir: /Shared/monitors\n"
        "      output_schema_name: ${bundle.target}.monitoring\n"
        "      inference_log:\n"
        "        granularities: [1 day]\n"
        "        model_id_col: model_id\n"
        "        prediction_col: prediction\n"
        "        timestamp_col: ts\n"
        "        problem_type: PROBLEM_TYPE_CLASSIFICATION\n"
    )
    for project in ("alpha", "beta_uc"):
        path = two / "projects" / project / PLANTED
        path.write_text(path.read_text() + monitor)
    results = run(two)
    assert errors(results, "alpha") == [] and errors(results, "beta-uc") == []
    assert collisions(results) == {
        "quality-monitor table": [
            "prod.shared.predictions",
            "staging.shared.predictions",
            "test.shared.predictions",
        ]
    }


def test_cross_project_findings_api_on_in_memory_bundles(root: Path):
    config = load_config(root)
    template = load_template(root / TEMPLATE_DIR)
    bundles = []
    for name in ("one", "two"):
        tree = template.render_project(
            template.resolve_answers({"project_name": name}, config), config
        )
        tree["databricks.yml"] = tree["databricks.yml"].replace(
            f"name: {name}\n".encode(), b"name: same\n"
        )
        bundles.append(load_bundle(tree, name, f"projects/{name}/"))
    found = cross_project_findings(bundles)
    assert [f.project for f in found if "bundle name 'same'" in f.message] == ["two"]
    assert cross_project_findings(bundles, selected=["one"])[0].project == "one"
    assert cross_project_findings(bundles, selected=["three"]) == []


# ------------------------------------------------------------------------------ robustness
@pytest.mark.parametrize(
    "text",
    [
        b"\xff\xfe",
        b"[1, 2]\n",
        b"bundle: 3\ntargets: [a]\nresources: x\n",
        b"bundle: {name: p}\ntargets: {staging: 3, prod: null, test: {workspace: 7}}\n",
        b"bundle: {name: p}\nresources: {jobs: {j: 5, k: {tasks: {a: 1}}}, experiments: [1]}\n",
        b"bundle: {name: [1]}\nvariables: {v: 3, w: {defualt: 1}}\ninclude: 7\n",
        b"bundle: {name: p}\ninclude: [7, '', '/abs.yml']\n"
        b"targets: {dev: {default: maybe, mode: fast}}\n",
        b"bundle: {name: p}\nresources: {jobs: {j: {name: '${var.x', tasks: [{task_key: t, "
        b"notebook_task: {notebook_path: 5}}, 7]}}}\n",
        b"a: &a [*a]\n",
    ],
)
def test_bad_input_is_findings_never_a_traceback(root: Path, text: bytes):
    config = load_config(root)
    findings = validate_project_tree({"databricks.yml": text}, "bad", config, "projects/bad/")
    assert [f for f in findings if f.severity == ERROR]
    assert all(f.file.startswith("projects/bad/") for f in findings if f.file)


def test_broken_monorepo_yml_is_a_finding(two: Path):
    (two / "monorepo.yml").write_text("cloud: [\n")
    results = run(two)
    assert [r.skipped is not None for r in results] == [True, True, False]
    [found] = errors(results, CROSS_PROJECT)
    assert found.file == "monorepo.yml" and "invalid YAML" in found.message


# ------------------------------------------------------------------------------ online
FAKE_CLI = """\
#!{python}
# A stand-in for the databricks CLI: logs its arguments and fails for prod.
import os, sys
target = sys.argv[sys.argv.index("-t") + 1]
with open(os.environ["FAKE_DATABRICKS_LOG"], "a") as log:
    log.write(os.getcwd() + " " + " ".join(sys.argv[1:]) + "\\n")
if target == "prod":
    print("Error: failed to resolve workspace for target prod", file=sys.stderr)
    sys.exit(1)
if target == "test":
    print("Warning: unknown field: new_cluster")
print("Validation OK!")
"""


@pytest.fixture
def fake_cli(tmp_path: Path, monkeypatch) -> Path:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    exe = bin_dir / "databricks"
    exe.write_text(FAKE_CLI.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DATABRICKS_LOG", str(log))
    return log


def test_online_runs_the_cli_per_target_and_folds_results_in(
    two: Path, fake_cli: Path, monkeypatch
):
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-1111111111111111.11.azuredatabricks.net")
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-not-a-real-token")
    results = run(two, ["alpha"], online=True)
    calls = fake_cli.read_text().splitlines()
    project_dir = str((two / "projects/alpha").resolve())
    assert [c.split(" ", 1)[1] for c in calls] == [
        "bundle validate -t staging",
        "bundle validate -t prod",
        "bundle validate -t test",
    ]
    assert all(os.path.realpath(c.split(" ", 1)[0]) == os.path.realpath(project_dir) for c in calls)
    alpha = results[0].findings
    [failed] = [f for f in alpha if f.severity == ERROR]
    assert "databricks bundle validate -t prod in projects/alpha failed" in failed.message
    assert "failed to resolve workspace" in failed.message
    assert any(f.severity == WARNING and "new_cluster" in f.message for f in alpha)
    assert any(
        f.severity == INFO and "-t staging in projects/alpha: OK" in f.message for f in alpha
    )


def test_online_without_credentials_or_cli_says_skipped(
    two: Path, fake_cli: Path, monkeypatch, tmp_path: Path
):
    for var in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    results = run(two, ["alpha"], online=True)
    [note] = [f for f in results[0].findings if f.severity == INFO]
    assert note.message.startswith(SKIPPED_ONLINE) and "credentials" in note.message
    assert not fake_cli.exists()  # the CLI was never run

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    results = run(two, ["alpha"], online=True)
    [note] = [f for f in results[0].findings if f.severity == INFO]
    assert note.message == f"{SKIPPED_ONLINE} (the databricks CLI is not on PATH)"


def _first(project: Path, rtype: str) -> tuple[str]:
    """The first resource key of a type in a project (sorted), as a 1-tuple."""
    group = load_bundle(DiskTree(project)).base["resources"][rtype]
    return (sorted(group)[0],)


# ------------------------------------------------------------------------------ in memory
MINI = """\
bundle:
  name: mini
resources:
  jobs:
    main:
      name: ${bundle.target}-mini
      tasks:
        - task_key: py
          spark_python_task:
            python_file: src/main.py
targets:
  dev:
    default: true
    mode: development
  staging:
    workspace: {host: https://staging.example.com}
  prod:
    workspace: {host: https://prod.example.com}
  test:
    workspace: {host: https://staging.example.com}
"""


def mini_config():
    from monostack.config import parse_config

    return parse_config(
        {
            "cloud": "aws",
            "cicd_platform": "github_actions",
            "workspaces": {
                "staging": "https://staging.example.com",
                "prod": "https://prod.example.com",
            },
        }
    )


def mini(text: str = MINI, **files: bytes) -> list:
    tree = {"databricks.yml": text.encode(), "src/main.py": b"print(1)\n", **files}
    return validate_project_tree(tree, "mini", mini_config(), "projects/mini/")


def test_minimal_bundle_is_clean():
    assert mini() == []


def test_python_file_paths_and_git_sources():
    text = MINI.replace("python_file: src/main.py", "python_file: src/nope.py")
    [found] = mini(text)
    assert found.line == 10 and "projects/mini/src/nope.py does not exist" in found.message
    # With a git source the path is inside the repository, not this bundle.
    git = text.replace(
        "      tasks:\n",
        "      git_source: {git_url: https://x/y, git_provider: gitHub}\n      tasks:\n",
    )
    assert mini(git) == []


def test_reference_to_a_resource_defined_for_one_target_only():
    text = MINI.replace(
        "    mode: development\n",
        "    mode: development\n    resources:\n      jobs:\n        helper: {name: h}\n",
    ).replace(
        "python_file: src/main.py",
        "python_file: src/main.py\n            parameters: ['${resources.jobs.helper.id}']",
    )
    messages = [f.message for f in mini(text) if f.severity == ERROR]
    assert len(messages) == 3, messages  # staging, prod and test lack it
    assert all("resources.jobs.helper, which is not defined in target" in m for m in messages)
    assert all("(only in dev)" in m for m in messages)
