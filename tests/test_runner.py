"""Project selection (--project, --changed-since) and run_checks: order, parallelism, crashes,
and the check tasks end to end through the real CLI."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import git
import pytest

from monostack import runner
from monostack.checks import ERROR, MONOREPO, WARNING, CaseResult, Finding
from monostack.errors import UserError
from monostack.runner import parse_jobs, run_checks, select
from tests.conftest import (
    assert_user_error,
    git_status,
    invoke,
    invoke_in_process,
    root_of,
    seed_matrix_cache,
)

# -- helpers ------------------------------------------------------------------------------------


def add_project(root: Path, name: str, project_dir: str | None = None) -> Path:
    """A minimal project as discover_projects sees it: databricks.yml plus its answers file."""
    path = root / "projects" / (project_dir or name)
    (path / "src").mkdir(parents=True)
    (path / "databricks.yml").write_text(f"bundle:\n  name: {name}\n", encoding="utf-8")
    (path / ".stack-answers.yml").write_text(f"project_name: {name}\n", encoding="utf-8")
    (path / "src" / "train.py").write_text("print('train')\n", encoding="utf-8")
    return path


def commit_all(repo: git.Repo, message: str) -> None:
    repo.git.add(A=True)
    repo.index.commit(message)


def names_of(projects) -> list[str]:
    return [p.name for p in projects]


@pytest.fixture
def three(repo: git.Repo) -> git.Repo:
    """The seeded repo with projects alpha, beta and Gamma-Ray (dir Gamma_Ray), committed,
    checked out on a branch ``feature`` that has not changed anything yet."""
    root = root_of(repo)
    add_project(root, "alpha")
    add_project(root, "beta")
    add_project(root, "Gamma-Ray", "Gamma_Ray")
    commit_all(repo, "three projects")
    repo.git.checkout("-b", "feature")
    return repo


# -- selection by name --------------------------------------------------------------------------


def test_no_option_selects_every_project_in_directory_order(three):
    assert names_of(select(root_of(three), None, None).projects) == ["Gamma-Ray", "alpha", "beta"]
    assert names_of(select(root_of(three), [], None).projects) == ["Gamma-Ray", "alpha", "beta"]


def test_select_by_name_or_directory(three):
    root = root_of(three)
    assert names_of(select(root, ["beta"], None).projects) == ["beta"]
    assert names_of(select(root, ["Gamma-Ray"], None).projects) == ["Gamma-Ray"]
    assert names_of(select(root, ["Gamma_Ray"], None).projects) == ["Gamma-Ray"]
    assert names_of(select(root, ["projects/alpha/"], None).projects) == ["alpha"]
    # repeated and overlapping names give each project once, in directory order
    assert names_of(select(root, ["beta", "alpha", "beta"], None).projects) == ["alpha", "beta"]


def test_unknown_project_name_lists_the_known_ones(three):
    with pytest.raises(UserError) as info:
        select(root_of(three), ["alpha", "delta"], None)
    message = info.value.message
    assert "--project 'delta'" in message
    assert "Gamma-Ray, alpha, beta" in message


def test_unknown_project_name_without_any_project(repo):
    with pytest.raises(UserError, match="none yet in projects/"):
        select(root_of(repo), ["alpha"], None)


# -- selection by --changed-since, with a real git history --------------------------------------


def test_commits_touching_one_project_select_exactly_that_project(three):
    root = root_of(three)
    (root / "projects/beta/src/train.py").write_text("print('v2')\n", encoding="utf-8")
    commit_all(three, "beta: v2")
    selection = select(root, None, "main")
    assert names_of(selection.projects) == ["beta"]
    assert selection.everything is False
    assert "main" in selection.reason


def test_nothing_changed_selects_no_project(three):
    selection = select(root_of(three), None, "main")
    assert selection.projects == []
    assert not selection.everything


def test_uncommitted_edit_and_untracked_new_project_are_selected(three):
    root = root_of(three)
    (root / "projects/Gamma_Ray/src/train.py").write_text("changed\n", encoding="utf-8")
    add_project(root, "delta")  # untracked
    assert names_of(select(root, None, "main").projects) == ["Gamma-Ray", "delta"]


def test_ignored_files_do_not_select_a_project(three):
    root = root_of(three)
    (root / ".gitignore").write_text("*.log\n", encoding="utf-8")
    commit_all(three, "ignore logs")
    (root / "projects/alpha/run.log").write_text("noise\n", encoding="utf-8")
    assert select(root, None, "HEAD").projects == []


@pytest.mark.parametrize(
    "changed",
    [
        "stack_template/stack.yml",
        "monorepo.yml",
        "pyproject.toml",
        "tasks.py",
        "monostack/new_module.py",
        ".yamllint.yml",
        "zizmor.yml",
        ".github/zizmor.yml",
    ],
)
def test_a_change_to_the_template_config_or_tool_selects_all(three, changed):
    root = root_of(three)
    path = root / changed
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n# touched\n")
    commit_all(three, f"touch {changed}")
    selection = select(root, None, "main")
    assert names_of(selection.projects) == ["Gamma-Ray", "alpha", "beta"]
    assert selection.everything


def test_root_ci_and_docs_changes_select_no_project(three):
    root = root_of(three)
    (root / ".github/workflows").mkdir(parents=True)
    (root / ".github/workflows/custom.yml").write_text("name: custom\n", encoding="utf-8")
    (root / "README.md").write_text("docs\n", encoding="utf-8")
    (root / "projects/NOTES.md").write_text("not a project\n", encoding="utf-8")
    (root / "stack_template_notes.txt").write_text("not the template\n", encoding="utf-8")
    assert select(root, None, "main").projects == []


def test_project_and_changed_since_intersect(three):
    root = root_of(three)
    (root / "projects/alpha/src/train.py").write_text("v2\n", encoding="utf-8")
    (root / "projects/beta/src/train.py").write_text("v2\n", encoding="utf-8")
    assert names_of(select(root, ["beta", "Gamma-Ray"], "main").projects) == ["beta"]
    assert select(root, ["Gamma_Ray"], "main").projects == []
    # an unknown name is still an error, even when nothing changed
    with pytest.raises(UserError, match="'nope'"):
        select(root, ["nope"], "main")


def test_bad_ref_is_a_clear_error(three):
    with pytest.raises(UserError) as info:
        select(root_of(three), None, "origin/main")
    assert "--changed-since 'origin/main'" in info.value.message


def test_parse_jobs():
    assert parse_jobs(None) is None
    assert parse_jobs("") is None
    assert parse_jobs("3") == 3
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(UserError, match="--jobs"):
            parse_jobs(bad)


# -- run_checks with stand-in check functions ---------------------------------------------------
# The real checks are swapped for functions in this module through the runner's entry-point
# table, which the parent hands to each worker process, so this works in the parallel path too.


def fake_lint(root, projects, jobs=None, monorepo=True):
    # deliberately not sorted: run_checks must sort each check's cases
    return [CaseResult("lint", p.name, [], 0.01) for p in reversed(projects)]


def fake_render_matrix(root, jobs=None, config=None, cases=None):
    note = Finding("render-matrix", MONOREPO, "", None, WARNING, f"jobs={jobs} pid={os.getpid()}")
    ids = [f"combo-{i}" for i in (2, 0, 1)]
    return [CaseResult("render-matrix", i, [note], 0.01) for i in ids if not cases or i in cases]


def fake_bundle_validate(root, projects, online=False, config=None, cross=True):
    bad = Finding("bundle-validate", "beta", "projects/beta/databricks.yml", 1, ERROR, "bad")
    out = []
    for p in projects:
        findings = [bad] if p.name == "beta" else []
        if online:
            findings.append(Finding("bundle-validate", p.name, "", None, WARNING, "online"))
        out.append(CaseResult("bundle-validate", p.name, findings, 0.01))
    return out


def fake_sync_findings(root, config=None):
    return [Finding("sync-workflows", "alpha", ".github/workflows/alpha-ci.yml", None, ERROR, "x")]


def crashing_check(*args, **kwargs):
    raise RuntimeError("disk on fire")


def dying_check(*args, **kwargs):
    os._exit(3)  # the worker process disappears without a word


FAKES = {
    "lint": "fake_lint",
    "render-matrix": "fake_render_matrix",
    "bundle-validate": "fake_bundle_validate",
    "sync-workflows": "fake_sync_findings",
}


@pytest.fixture
def fakes(monkeypatch):
    def use(**overrides):
        for check, fn in {**FAKES, **overrides}.items():
            monkeypatch.setitem(runner._ENTRY_POINTS, check, ("tests.test_runner", fn))

    use()
    return use


def cases(results) -> list[tuple[str, str]]:
    return [(r.check, r.case) for r in results]


ALL = ["sync-workflows", "bundle-validate", "lint", "render-matrix"]  # any order in
EXPECTED = [
    ("lint", "Gamma-Ray"),
    ("lint", "alpha"),
    ("lint", "beta"),
    ("render-matrix", "combo-0"),
    ("render-matrix", "combo-1"),
    ("render-matrix", "combo-2"),
    ("bundle-validate", "Gamma-Ray"),
    ("bundle-validate", "alpha"),
    ("bundle-validate", "beta"),
    ("sync-workflows", MONOREPO),
]


@pytest.mark.parametrize("jobs", [2, 1])
def test_results_come_in_a_fixed_order_parallel_or_not(three, fakes, jobs):
    results = run_checks(root_of(three), ALL, jobs=jobs, progress=None, cache=False)
    assert cases(results) == EXPECTED
    assert [r.case for r in results if r.failed] == ["beta", MONOREPO]
    sync = results[-1]
    assert sync.findings[0].file == ".github/workflows/alpha-ci.yml"
    matrix_note = results[3].findings[0].message
    assert matrix_note.startswith(f"jobs={jobs} ")
    worker_pid = int(matrix_note.rsplit("=", 1)[1])
    # jobs=1 runs in this process; otherwise each check has its own worker process
    assert (worker_pid == os.getpid()) == (jobs == 1)


def test_selection_and_online_reach_the_checks(three, fakes):
    results = run_checks(
        root_of(three), ["bundle-validate", "lint"], names=["alpha"], online=True, progress=None
    )
    assert cases(results) == [("lint", "alpha"), ("bundle-validate", "alpha")]
    assert [f.message for f in results[1].findings] == ["online"]


@pytest.mark.parametrize("jobs", [2, 1])
def test_a_crashing_check_becomes_an_error_case_and_the_others_still_run(three, fakes, jobs):
    fakes(lint="crashing_check")
    results = run_checks(root_of(three), ALL, jobs=jobs, progress=None, cache=False)
    crash = results[0]
    assert (crash.check, crash.case, crash.failed) == ("lint", MONOREPO, True)
    assert crash.errors[0].message == "check crashed: RuntimeError: disk on fire"
    assert cases(results[1:]) == EXPECTED[3:]


def test_a_worker_process_that_dies_fails_only_its_check(three, fakes):
    fakes(**{"render-matrix": "dying_check"})
    results = run_checks(root_of(three), ALL, jobs=2, progress=None, cache=False)
    matrix = [r for r in results if r.check == "render-matrix"]
    assert len(matrix) == 1 and matrix[0].failed
    assert "check crashed: BrokenProcessPool" in matrix[0].errors[0].message
    others = [c for c in cases(results) if c[0] != "render-matrix"]
    assert others == [c for c in EXPECTED if c[0] != "render-matrix"]


def test_a_user_error_inside_a_check_is_reported_as_its_message(three, monkeypatch, fakes):
    monkeypatch.setattr(
        "tests.test_runner.fake_sync_findings",
        lambda root, config=None: (_ for _ in ()).throw(UserError("monorepo.yml: cloud: pick one")),
    )
    results = run_checks(root_of(three), ["lint", "sync-workflows"], jobs=1, progress=None)
    assert results[-1].errors[0].message == "monorepo.yml: cloud: pick one"


def test_a_bad_monorepo_yml_is_reported_once_and_the_checks_needing_it_skip(repo, monkeypatch):
    """test-all with `cloud: mars`: one finding, with file and line, whatever the checks."""
    root = root_of(repo)
    add_project(root, "alpha")
    config = root / "monorepo.yml"
    config.write_text(config.read_text().replace("cloud: azure", "cloud: mars"))
    monkeypatch.setitem(runner._ENTRY_POINTS, "lint", ("tests.test_runner", "fake_lint"))
    checks = ["lint", "render-matrix", "bundle-validate", "sync-workflows"]
    results = run_checks(root, checks, jobs=1, progress=None)
    found = [(r.check, r.case, f) for r in results for f in r.findings]
    assert len(found) == 1, found
    check, case, finding = found[0]
    assert (check, case, finding.file) == ("lint", "monorepo.yml", "monorepo.yml")
    assert "'mars' is not allowed" in finding.message
    assert not finding.message.startswith("monorepo.yml")  # the reporter adds the location
    skipped = {r.check for r in results if r.skipped}
    assert skipped == {"render-matrix", "bundle-validate", "sync-workflows"}


def test_render_matrix_is_skipped_when_template_and_tool_are_unchanged(three, fakes):
    root = root_of(three)
    (root / "projects/alpha/src/train.py").write_text("v2\n", encoding="utf-8")
    results = run_checks(root, ALL, changed_since="main", progress=None)
    assert cases(results) == [
        ("lint", "alpha"),
        ("render-matrix", MONOREPO),
        ("bundle-validate", "alpha"),
        ("sync-workflows", MONOREPO),
    ]
    assert "stack_template/" in results[1].skipped
    (root / "monorepo.yml").write_text((root / "monorepo.yml").read_text() + "\n")
    results = run_checks(root, ["render-matrix"], changed_since="main", progress=None)
    assert cases(results) == [("render-matrix", f"combo-{i}") for i in range(3)]


def test_bad_input_raises_before_any_check_runs(three, fakes):
    root = root_of(three)
    fakes(lint="crashing_check")  # were it run, run_checks would return instead of raising
    with pytest.raises(UserError, match="unknown check 'typo'"):
        run_checks(root, ["typo"], jobs=1, progress=None)
    with pytest.raises(UserError, match="no check"):
        run_checks(root, [], jobs=1, progress=None)
    with pytest.raises(UserError, match="--project 'nope'"):
        run_checks(root, ["lint"], names=["nope"], jobs=1, progress=None)
    with pytest.raises(UserError, match="--changed-since 'nope'"):
        run_checks(root, ["lint"], changed_since="nope", jobs=1, progress=None)


def test_plain_progress_lines_go_to_stderr(three, fakes, capsys):
    run_checks(root_of(three), ["lint", "bundle-validate"], jobs=2, progress="plain")
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[:2] == ["running lint (3 projects)...", "running bundle-validate (3 projects)..."]
    assert sorted(line.split(" (")[0] for line in lines[2:]) == [
        "bundle-validate: 3 cases, 1 failed",
        "lint: 3 cases, 0 failed",
    ]
    run_checks(root_of(three), ["lint"], progress=None)
    assert capsys.readouterr().err == ""


# -- the real checks ----------------------------------------------------------------------------


def test_a_real_check_that_raises_does_not_hide_the_real_others(repo, monkeypatch):
    """Monkeypatch the real lint entry point to raise; the real sync-workflows check still
    runs and reports (in-process, jobs=1, so the patch applies)."""
    import monostack.checks.lint

    def broken(root, projects, jobs=None):
        raise KeyError("ruff")

    monkeypatch.setattr(monostack.checks.lint, "run_lint", broken)
    results = run_checks(root_of(repo), ["lint", "sync-workflows"], jobs=1, progress=None)
    assert results[0].check == "lint" and results[0].failed
    assert results[0].errors[0].message == "check crashed: KeyError: 'ruff'"
    assert [r.check for r in results[1:]] == ["sync-workflows"]
    assert all("crashed" not in f.message for r in results[1:] for f in r.findings)


# -- end to end through the real CLI ------------------------------------------------------------


def render_matrix_cases(junit: Path) -> list[str]:
    root = ET.parse(junit).getroot()
    return [c.get("name") for c in root.findall("testsuite[@name='render-matrix']/testcase")]


@pytest.fixture
def two_projects(repo: git.Repo) -> git.Repo:
    """A fresh repo after `new-project` twice and `sync-workflows`, committed."""
    for args in (("--name", "churn"), ("--name", "fraud", "--unity-catalog", "--feature-store")):
        result = invoke_in_process(repo, "new-project", *args)
        assert result.returncode == 0, result.stderr
    result = invoke_in_process(repo, "sync-workflows")
    assert result.returncode == 0, result.stdout + result.stderr
    commit_all(repo, "two projects")
    return repo


def combination_count(root: Path) -> int:
    """Clouds x CI platforms x the template's valid choice combinations, counted here."""
    from monostack.config import CICD_PLATFORMS, CLOUDS, load_config
    from monostack.template import load_template

    config = load_config(root)
    template = load_template(root / "stack_template")
    return sum(
        len(list(template.iter_choice_combinations({"project_name": "sample"}, cfg)))
        for cfg in (
            config.replace(cloud=cloud, cicd_platform=platform)
            for cloud in CLOUDS
            for platform in CICD_PLATFORMS
        )
    )


def test_test_all_passes_on_a_fresh_repo_and_writes_junit(two_projects, tmp_path, shipped_matrix):
    # the template's matrix as the session ran it (tests/test_render_matrix.py); the real CLI
    # reports every combination, the projects' cases are run here
    seed_matrix_cache(shipped_matrix, two_projects)
    junit = tmp_path / "reports" / "junit.xml"
    result = invoke(two_projects, "test-all", "--junit-xml", str(junit))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("test-all: ") and ", 0 failed, " in last
    for check in ("lint", "bundle-validate", "sync-workflows"):
        assert f"running {check}" in result.stderr
    # the matrix came from the seeded cache (a cold run goes through tests/test_cache.py)
    assert "running render-matrix" not in result.stderr
    assert "cases unchanged: results from the cache" in result.stdout
    root = ET.parse(junit).getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == [
        "lint",
        "render-matrix",
        "bundle-validate",
        "sync-workflows",
    ]
    assert root.get("failures") == "0"
    # one testcase per render-matrix combination, each its own case
    combos = render_matrix_cases(junit)
    assert len(combos) == len(set(combos)) == combination_count(root_of(two_projects))
    assert len(combos) >= 36
    assert combos == sorted(combos)
    names = {c.get("name") for c in root.findall("testsuite[@name='bundle-validate']/testcase")}
    assert {"churn", "fraud"} <= names
    assert git_status(two_projects) == ""


def test_test_all_fails_on_a_planted_defect_and_keeps_going(two_projects, tmp_path):
    root = root_of(two_projects)
    bundle = root / "projects/fraud/databricks.yml"
    bundle.write_text(
        bundle.read_text(encoding="utf-8").replace("${bundle.target}", "${var.not_declared}", 1),
        encoding="utf-8",
    )
    assert "${var.not_declared}" in bundle.read_text(encoding="utf-8")
    junit = tmp_path / "junit.xml"
    # --changed-since HEAD: only fraud is checked and the (unchanged) template matrix is skipped
    result = invoke(two_projects, "test-all", "--changed-since", "HEAD", "--junit-xml", str(junit))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    assert "not_declared" in result.stdout
    assert "projects/fraud/databricks.yml" in result.stdout
    suites = ET.parse(junit).getroot()
    failed = [
        (c.get("classname"), c.get("name"))
        for c in suites.iter("testcase")
        if c.find("failure") is not None
    ]
    assert failed == [("bundle-validate", "fraud")]
    tested = {(c.get("classname"), c.get("name")) for c in suites.iter("testcase")}
    assert ("lint", "churn") not in tested and ("lint", "fraud") in tested
    assert ("render-matrix", MONOREPO) in tested
    assert {c.get("classname") for c in suites.iter("testcase")} == {
        "lint",
        "render-matrix",
        "bundle-validate",
        "sync-workflows",
    }


def test_github_annotations_from_the_cli(three):
    root = root_of(three)
    (root / "projects/alpha/src/broken.py").write_text("def broken(:\n", encoding="utf-8")
    result = invoke(three, "lint", "--project", "alpha", env={"GITHUB_ACTIONS": "true"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert any("file=projects/alpha/src/broken.py,line=1," in a for a in annotations)
    assert "title=lint (alpha)::" in annotations[0]
    # --project: that project's case only (the monorepo's own files are not selected)
    assert result.stdout.strip().splitlines()[-1].startswith("lint: 1 case, 1 failed")


def test_cli_input_errors_are_one_line(three):
    root = root_of(three)
    assert_user_error(invoke(three, "lint", "--project", "nope"), "'nope'", "alpha, beta")
    assert_user_error(
        invoke_in_process(three, "bundle-validate", "--changed-since", "no-such-ref"),
        "no-such-ref",
    )
    assert_user_error(invoke_in_process(three, "render-matrix", "--jobs", "zero"), "--jobs")
    assert_user_error(
        invoke_in_process(three, "test-all", "--project", "alpha", "--project", "zeta"), "'zeta'"
    )
    assert not (root / "junit.xml").exists()
    assert git_status(three) == ""
