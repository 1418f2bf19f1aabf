"""The reporter: rich table and findings, JUnit XML, GitHub annotations, exit code."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest

from monostack.checks import ERROR, INFO, MONOREPO, WARNING, CaseResult, Finding
from monostack.report import (
    annotation,
    annotations,
    emit,
    escape_data,
    escape_property,
    summary_line,
)


def finding(check, project, file, line, severity, message):
    return Finding(check, project, file, line, severity, message)


@pytest.fixture
def results() -> list[CaseResult]:
    return [
        CaseResult(
            "lint",
            "churn",
            [
                finding("lint", "churn", "projects/churn/a.py", 3, ERROR, "E999 [syntax] error"),
                finding("lint", "churn", "projects/churn/b.yml", None, WARNING, "line too long"),
            ],
            1.5,
        ),
        CaseResult("lint", "fraud", [], 0.25),
        CaseResult("render-matrix", "aws-github_actions-uc", [], 2.0),
        CaseResult("render-matrix", "gcp-azure_devops", [], 0.0, skipped="no change since main"),
        CaseResult(
            "sync-workflows",
            MONOREPO,
            [finding("sync-workflows", MONOREPO, "", None, INFO, "plan is empty")],
            0.1,
        ),
    ]


def render(results, **kwargs) -> tuple[int, str]:
    out = io.StringIO()
    code = emit(results, title="test-all", stream=out, github=kwargs.pop("github", False), **kwargs)
    return code, out.getvalue()


def test_table_lists_every_case_with_status_and_counts(results):
    code, text = render(results)
    assert code == 1
    rows = {line.split("│")[2].strip(): line for line in text.splitlines() if "│" in line}
    assert set(rows) == {"churn", "fraud", "aws-github_actions-uc", "gcp-azure_devops", MONOREPO}
    cells = [c.strip() for c in rows["churn"].split("│")[1:-1]]
    assert cells == ["lint", "churn", "FAIL", "1", "1", "1.50"]
    assert "PASS" in rows["fraud"]
    assert "SKIP" in rows["gcp-azure_devops"]
    assert "\x1b[" not in text  # no colour codes off a terminal


def test_a_large_run_folds_clean_passing_cases_into_one_row_per_check(results):
    many = results + [CaseResult("lint", f"p{i:03d}", [], 0.5) for i in range(80)]
    code, text = render(many)
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if "│" in line]
    cases = [row[1] for row in rows]
    # what needs reading stays: failed, skipped, and cases with findings
    assert {"churn", "gcp-azure_devops", MONOREPO} <= set(cases)
    assert "p000" not in cases and "fraud" not in cases
    assert ["lint", "81 more cases, all clean", "PASS", "0", "0", "40.25"] in rows
    assert ["render-matrix", "1 more case, all clean", "PASS", "0", "0", "2.00"] in rows
    assert text.strip().splitlines()[-1] == "test-all: 85 cases, 1 failed, 1 skipped"


def test_findings_are_grouped_per_case_with_location_severity_message(results):
    _, text = render(results)
    lines = text.splitlines()
    start = lines.index("lint / churn")
    assert lines[start + 1] == "  projects/churn/a.py:3  error  E999 [syntax] error"
    assert lines[start + 2] == "  projects/churn/b.yml  warning  line too long"
    assert "render-matrix / gcp-azure_devops" in lines
    assert "  skipped: no change since main" in lines
    assert "lint / fraud" not in lines  # nothing to say about a clean case


def test_summary_line_and_exit_codes(results):
    code, text = render(results)
    assert text.splitlines()[-1] == "test-all: 5 cases, 1 failed, 1 skipped"
    clean = [r for r in results if not r.failed]
    code, text = render(clean)
    assert code == 0
    assert text.splitlines()[-1] == "test-all: 4 cases, 0 failed, 1 skipped"
    only_warning = [CaseResult("lint", "x", [finding("lint", "x", "f", 1, WARNING, "w")])]
    assert render(only_warning)[0] == 0
    assert summary_line([], "lint") == "lint: 0 cases, 0 failed, 0 skipped"
    assert summary_line(clean[:1], "lint") == "lint: 1 case, 0 failed, 0 skipped"


def test_junit_xml_has_one_testcase_per_result(results, tmp_path):
    path = tmp_path / "deep" / "er" / "junit.xml"
    code, text = render(results, junit_xml=path)
    assert code == 1
    assert f"JUnit XML written to {path}" in text
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("5", "1", "1")
    assert [s.get("name") for s in root.findall("testsuite")] == [
        "lint",
        "render-matrix",
        "sync-workflows",
    ]
    cases = root.findall("testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        (r.check, r.case) for r in results
    ]
    churn, fraud, matrix, skipped, sync = cases
    failure = churn.find("failure")
    assert failure is not None
    assert failure.get("message") == "1 error: E999 [syntax] error"
    assert failure.text == "projects/churn/a.py:3: error: E999 [syntax] error"
    assert churn.find("system-out").text == "projects/churn/b.yml: warning: line too long"
    assert churn.get("time") == "1.500"
    for case in (fraud, matrix):
        assert case.find("failure") is None and case.find("skipped") is None
    assert skipped.find("skipped").get("message") == "no change since main"
    assert skipped.find("failure") is None
    assert sync.find("failure") is None
    lint_suite = root.find("testsuite[@name='lint']")
    assert (lint_suite.get("tests"), lint_suite.get("failures")) == ("2", "1")


def test_junit_xml_survives_characters_xml_cannot_hold(tmp_path):
    nasty = 'bad \x1b[31mred\x1b[0m & <tag> \x00 "quoted" ü'
    results = [CaseResult("lint", "p<1>", [finding("lint", "p", "a&b.py", 1, ERROR, nasty)])]
    path = tmp_path / "j.xml"
    render(results, junit_xml=path)
    case = ET.parse(path).getroot().find("testsuite/testcase")
    assert case.get("name") == "p<1>"
    assert "& <tag>" in case.find("failure").text
    assert "\x1b" not in case.find("failure").text
    assert "ü" in case.find("failure").text


def test_escaping_follows_github_workflow_command_rules():
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_annotation_lines():
    f = finding("bundle-validate", "churn", "projects/churn/databricks.yml", 12, ERROR, "bad")
    assert annotation(f, "churn") == (
        "::error file=projects/churn/databricks.yml,line=12,title=bundle-validate (churn)::bad"
    )
    w = finding("lint", "x", "odd,name:1.yml", None, WARNING, "50% of\nlines")
    assert annotation(w, "x") == (
        "::warning file=odd%2Cname%3A1.yml,title=lint (x)::50%25 of%0Alines"
    )
    n = finding("sync-workflows", MONOREPO, "", None, INFO, "note")
    assert annotation(n, MONOREPO) == "::notice title=sync-workflows (<monorepo>)::note"


def test_annotations_only_in_github_actions(results, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    out = io.StringIO()
    emit(results, title="t", stream=out)
    assert "::error" not in out.getvalue()

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    out = io.StringIO()
    emit(results, title="t", stream=out)
    lines = out.getvalue().splitlines()
    commands = [line for line in lines if line.startswith("::")]
    assert commands == [
        "::error file=projects/churn/a.py,line=3,title=lint (churn)::E999 [syntax] error",
        "::warning file=projects/churn/b.yml,title=lint (churn)::line too long",
        "::notice title=sync-workflows (<monorepo>)::plan is empty",
    ]
    assert lines[-1].startswith("t: 5 cases")  # the summary stays the last line

    out = io.StringIO()
    emit(results, title="t", stream=out, github=False)
    assert "::error" not in out.getvalue()


def test_identical_findings_of_a_later_case_point_at_the_first():
    bug = finding("render-matrix", MONOREPO, "stack_template/x.j2", 2, ERROR, "leftover {{")
    other = finding("render-matrix", MONOREPO, "stack_template/y.j2", 1, ERROR, "bad yaml")
    results = [
        CaseResult("render-matrix", "aws/a", [bug]),
        CaseResult("render-matrix", "aws/b", [other]),
        CaseResult("render-matrix", "gcp/a", [bug]),
        CaseResult("lint", "p", [bug]),  # another check: printed in full
    ]
    _, text = render(results)
    lines = text.splitlines()
    at = lines.index("render-matrix / gcp/a")
    assert lines[at + 1] == "  the same 1 finding as aws/a"
    assert lines.count("  stack_template/x.j2:2  error  leftover {{") == 2
    assert "  stack_template/y.j2:1  error  bad yaml" in lines


def test_long_case_names_stay_whole_off_a_terminal():
    case = "gcp/github_actions_for_github_enterprise_servers/" + "x=yes/" * 12 + "end"
    _, text = render([CaseResult("render-matrix", case, [], 0.5)])
    assert any(case in line and "PASS" in line for line in text.splitlines())


def test_unusable_junit_path_is_refused_before_the_checks_run(repo, tmp_path):
    from tests.conftest import assert_user_error, invoke, invoke_in_process

    (tmp_path / "file").write_text("x")
    for bad, needle in ((str(tmp_path), "is a directory"), (f"{tmp_path}/file/x.xml", "folder")):
        result = invoke_in_process(repo, "bundle-validate", "--junit-xml", bad)
        assert_user_error(result, "--junit-xml", needle)
        assert "bundle-validate:" not in result.stdout  # nothing ran
    good = tmp_path / "new" / "dir" / "junit.xml"
    assert invoke(repo, "bundle-validate", "--junit-xml", str(good)).returncode == 0
    assert ET.parse(good).getroot().tag == "testsuites"


def test_the_same_finding_in_many_cases_is_annotated_once():
    same = ("render-matrix", "stack_template/project/databricks.yml.j2", None, ERROR, "broken")
    cases = [
        CaseResult(
            "render-matrix", f"aws/combo-{i}", [finding(same[0], f"aws/combo-{i}", *same[1:])]
        )
        for i in range(3)
    ]
    cases.append(
        CaseResult("lint", "p1", [finding("lint", "p1", "projects/p1/a.py", 3, ERROR, "broken")])
    )
    lines = annotations(cases)
    assert lines == [
        "::error file=stack_template/project/databricks.yml.j2,"
        "title=render-matrix (aws/combo-0 and 2 more cases)::broken",
        "::error file=projects/p1/a.py,line=3,title=lint (p1)::broken",
    ]
