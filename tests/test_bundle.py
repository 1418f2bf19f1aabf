"""monostack.bundle: YAML with locations, includes, merging and per-target views."""

from __future__ import annotations

from pathlib import Path

from monostack.bundle import (
    DiskTree,
    YMap,
    format_path,
    glob_tree,
    is_pure_reference,
    iter_strings,
    load_bundle,
    merge,
    parse_yaml,
    references,
)
from monostack.config import workspace_host


# ------------------------------------------------------------------------------ parse_yaml
def test_parse_yaml_records_the_line_of_every_key_and_item():
    text = (
        "# comment\n"  # 1
        "bundle:\n"  # 2
        "  name: p\n"  # 3
        "resources:\n"  # 4
        "  jobs:\n"  # 5
        "    j:\n"  # 6
        "      tasks:\n"  # 7
        "        - task_key: a\n"  # 8
        "        - task_key: b\n"  # 9
        "          notebook_task: {notebook_path: x.py}\n"  # 10
    )
    doc, problems = parse_yaml(text, "projects/p/databricks.yml")
    assert problems == []
    assert doc.locs["bundle"] == ("projects/p/databricks.yml", 2)
    assert doc["bundle"].locs["name"] == ("projects/p/databricks.yml", 3)
    tasks = doc["resources"]["jobs"]["j"]["tasks"]
    assert tasks.locs == [("projects/p/databricks.yml", 8), ("projects/p/databricks.yml", 9)]
    assert tasks[1].locs["notebook_task"][1] == 10
    assert tasks[1]["notebook_task"].locs["notebook_path"][1] == 10
    assert tasks[1]["notebook_task"]["notebook_path"] == "x.py"


def test_parse_yaml_keeps_keys_as_written_and_follows_merge_keys():
    text = (
        "base: &base\n"  # 1
        "  num_workers: 3\n"  # 2
        "  spark_version: '15.3'\n"  # 3
        "cluster:\n"  # 4
        "  <<: *base\n"  # 5
        "  num_workers: 5\n"  # 6
        "on: yes\n"  # 7
        "when: 2024-01-02\n"  # 8
    )
    doc, problems = parse_yaml(text, "f.yml")
    assert problems == []
    assert doc["cluster"] == {"num_workers": 5, "spark_version": "15.3"}
    assert doc["cluster"].locs["num_workers"] == ("f.yml", 6)
    assert doc["cluster"].locs["spark_version"] == ("f.yml", 3)  # where the anchor defines it
    assert doc["on"] == "yes"  # YAML 1.2, as the CLI reads it: neither is a boolean
    assert doc["when"] == "2024-01-02"  # dates stay text


def test_parse_yaml_reports_syntax_errors_with_file_and_line():
    doc, problems = parse_yaml("bundle:\n  name: [oops\nx: 1\n", "projects/p/databricks.yml")
    assert doc is None
    assert len(problems) == 1
    problem = problems[0]
    assert problem.file == "projects/p/databricks.yml"
    assert problem.line == 3
    assert problem.message.startswith("invalid YAML:")


def test_parse_yaml_reports_duplicate_keys_and_bad_bytes():
    doc, problems = parse_yaml("a: 1\nb: 2\na: 3\n", "f.yml")
    assert [(p.line, "duplicate key 'a'" in p.message) for p in problems] == [(3, True)]
    assert doc is not None

    doc, problems = parse_yaml(b"a: \xff\xfe\n", "bin.yml")
    assert doc is None and problems[0].file == "bin.yml" and "not UTF-8" in problems[0].message

    doc, problems = parse_yaml("a: &x [*x]\n", "rec.yml")
    assert problems  # recursive aliases are refused, not followed forever

    doc, problems = parse_yaml("--- 1\n--- 2\n", "multi.yml")
    assert doc is None and problems[0].file == "multi.yml"

    assert parse_yaml("", "empty.yml") == (None, [])


# ------------------------------------------------------------------------------ helpers
def test_glob_tree_matches_one_directory_level_per_star():
    paths = ["resources/a-resource.yml", "resources/sub/b-resource.yml", "x-resource.yml"]
    assert glob_tree(paths, "resources/*-resource.yml") == ["resources/a-resource.yml"]
    assert glob_tree(paths, "resources/*/*.yml") == ["resources/sub/b-resource.yml"]
    assert glob_tree(paths, "*.yml") == ["x-resource.yml"]
    assert glob_tree(paths, "nothing/*.yml") == []


def test_references_and_pure_references():
    assert references("${bundle.target}-${var.x}-$${var.escaped}") == ["bundle.target", "var.x"]
    assert references("${resources.jobs.a.tasks[0].task_key}") == [
        "resources.jobs.a.tasks[0].task_key"
    ]
    assert is_pure_reference("${var.n}")
    assert not is_pure_reference("${var.n}-x")
    assert not is_pure_reference(3)


def test_format_path_and_iter_strings():
    assert format_path(("resources", "jobs", "j", "tasks", 0, "task_key")) == (
        "resources.jobs.j.tasks[0].task_key"
    )
    doc, _ = parse_yaml("a:\n  - x\n  - {b: y}\nc: 3\n", "f.yml")
    found = [(format_path(p), s, loc[1]) for p, s, loc in iter_strings(doc, doc.loc)]
    assert found == [("a[0]", "x", 2), ("a[1].b", "y", 3)]


def test_workspace_host():
    assert workspace_host("https://ADB-1.azuredatabricks.net/?o=1#job/2") == (
        "https://adb-1.azuredatabricks.net"
    )
    assert workspace_host("http://x") is None
    assert workspace_host(None) is None


def test_merge_maps_recursively_appends_lists_and_tracks_locations():
    a, _ = parse_yaml("m:\n  x: 1\n  y: [1]\n", "a.yml")
    b, _ = parse_yaml("m:\n  y: [2]\n  z: 3\n", "b.yml")
    merged = merge(a, b)
    assert merged == {"m": {"x": 1, "y": [1, 2], "z": 3}}
    assert merged["m"].locs["x"] == ("a.yml", 2)
    assert merged["m"].locs["z"] == ("b.yml", 3)
    assert merged["m"]["y"].locs == [("a.yml", 3), ("b.yml", 2)]
    assert a == {"m": {"x": 1, "y": [1]}}  # inputs untouched
    assert isinstance(merged, YMap)


# ------------------------------------------------------------------------------ load_bundle
BUNDLE = """\
bundle:
  name: demo
variables:
  model_name:
    default: ${bundle.target}-demo-model
  catalog:
    description: per target
include:
  - ./resources/*-resource.yml
  - extra/explicit.yml
targets:
  dev:
    default: true
    mode: development
    variables:
      catalog: dev
  staging:
    workspace:
      host: https://staging.example.com
    variables:
      catalog: stg
    resources:
      jobs:
        train:
          tasks:
            - task_key: Train
              timeout_seconds: 60
"""
JOBS = """\
resources:
  jobs:
    train:
      name: ${bundle.target}-train-${var.catalog}
      tasks:
        - task_key: Train
          notebook_task:
            notebook_path: ../notebooks/Train.py
        - task_key: Deploy
          notebook_task:
            notebook_path: ../notebooks/Deploy.py
"""


def test_load_bundle_includes_and_target_overrides():
    tree = {
        "databricks.yml": BUNDLE.encode(),
        "resources/jobs-resource.yml": JOBS.encode(),
        "resources/not-included.yml": b"resources: {jobs: {ghost: {name: g}}}\n",
        "extra/explicit.yml": (
            b"resources:\n  experiments:\n    e:\n      name: /x/${var.model_name}\n"
        ),
    }
    bundle = load_bundle(tree, "demo", "projects/demo/")
    assert bundle.problems == []
    assert list(bundle.files) == [
        "databricks.yml",
        "resources/jobs-resource.yml",
        "extra/explicit.yml",
    ]
    assert set(bundle.targets) == {"dev", "staging"}
    assert "ghost" not in bundle.base["resources"]["jobs"]

    staging = bundle.targets["staging"]
    assert staging.host == "https://staging.example.com"
    job = staging.doc["resources"]["jobs"]["train"]
    # The target's task with the same task_key is merged into the included one.
    assert [t["task_key"] for t in job["tasks"]] == ["Train", "Deploy"]
    assert job["tasks"][0]["timeout_seconds"] == 60
    assert job["tasks"][0]["notebook_task"]["notebook_path"] == "../notebooks/Train.py"
    assert job["tasks"][0].locs["timeout_seconds"] == ("projects/demo/databricks.yml", 27)
    assert job.locs["name"] == ("projects/demo/resources/jobs-resource.yml", 4)
    assert staging.resolve(job["name"]) == "staging-train-stg"
    assert staging.resolve("${var.model_name}") == "staging-demo-model"
    assert staging.doc["variables"]["catalog"]["default"] == "stg"
    assert "targets" not in staging.doc

    dev = bundle.targets["dev"]
    assert dev.host is None
    assert dev.resolve(dev.doc["resources"]["jobs"]["train"]["name"]) == "dev-train-dev"
    assert dev.resolve("${resources.jobs.train.name}") == "dev-train-dev"
    assert dev.resolve("${workspace.current_user.userName}/${bundle.git.branch}").endswith(
        "/${bundle.git.branch}"
    )
    assert "timeout_seconds" not in dev.doc["resources"]["jobs"]["train"]["tasks"][0]


def test_load_bundle_collects_problems_instead_of_raising():
    bundle = load_bundle({}, "p", "projects/p/")
    assert bundle.problems[0].file == "projects/p/databricks.yml"
    assert bundle.problems[0].message.startswith("not found")
    assert bundle.base is None

    bundle = load_bundle({"databricks.yml": b"- a\n- b\n"}, "p")
    assert "expected a mapping at the top" in bundle.problems[0].message

    bundle = load_bundle(
        {
            "databricks.yml": b"include: [a.yml, missing.yml, '../out.yml', 'none/*.yml']\n",
            "a.yml": b"include: [b.yml]\nresources: {jobs: {j: {name: x}}}\n",
        },
        "p",
    )
    messages = [f"{p.file}: {p.message}" for p in bundle.problems]
    assert any("include 'missing.yml' names a file that does not exist" in m for m in messages)
    assert any("points outside the repository" in m for m in messages)
    assert any("a.yml: `include` is only allowed in databricks.yml" in m for m in messages)
    assert not any("none/" in m for m in messages)  # a glob matching nothing is fine
    assert list(bundle.targets) == ["default"]


def test_same_resource_in_two_included_files_is_a_problem():
    bundle = load_bundle(
        {
            "databricks.yml": b"include: ['*.yml']\n",
            "a.yml": b"resources:\n  jobs:\n    j: {name: a}\n",
            "b.yml": b"resources:\n  jobs:\n    j: {name: b}\n",
        },
        "p",
        "projects/p/",
    )
    [problem] = bundle.problems
    assert problem.file == "projects/p/b.yml" and problem.line == 3
    assert "resource jobs.j is also defined in projects/p/a.yml:3" in problem.message


def test_disk_tree_reads_a_project_directory(tmp_path: Path):
    (tmp_path / "resources").mkdir()
    (tmp_path / "databricks.yml").write_text("bundle: {name: p}\n")
    (tmp_path / "resources" / "a.yml").write_text("x: 1\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("")
    tree = DiskTree(tmp_path)
    assert list(tree) == ["databricks.yml", "resources/a.yml"]
    assert "resources/a.yml" in tree and "nope" not in tree
    assert tree["databricks.yml"] == b"bundle: {name: p}\n"
    assert len(tree) == 2


def test_aliases_are_built_once_and_bounded():
    # each level references the previous one ten times: 10**8 values once expanded
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    doc, problems = parse_yaml("\n".join(lines) + "\n", "bomb.yml")
    assert doc is None
    assert len(problems) == 1
    assert problems[0].file == "bomb.yml"
    assert problems[0].message.startswith("YAML aliases expand to 1,234,567,900 values")
    small, problems = parse_yaml("\n".join(lines[:3]) + "\n", "ok.yml")
    assert problems == [] and small["a2"][0] is small["a1"]  # one object, as PyYAML builds it
