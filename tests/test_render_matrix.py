"""render-matrix: every combination of a real template, rendered and checked with the real
checkers (bundle-validate, yamllint, vendored schemas, zizmor)."""

from __future__ import annotations

import math
import shutil
import textwrap
from pathlib import Path

import yaml

from monostack.checks import MONOREPO
from monostack.checks.render_matrix import (
    SAMPLE_PROJECT,
    leftover_syntax,
    matrix_combinations,
    run_render_matrix,
)
from monostack.config import CICD_PLATFORMS, CLOUDS, load_config
from monostack.template import load_template, to_project_dir
from tests.conftest import make_repo, root_of
from tests.test_ci_files import CLEAN_PIPELINE, CLEAN_WORKFLOW

PLATFORM_SKIPS = """
skip:
  - when: "monorepo.cicd_platform in ('azure_devops', 'gitlab')"
    paths: ["project/.github/*", "monorepo/.github/*"]
  - when: "monorepo.cicd_platform != 'azure_devops'"
    paths: ["project/.azure/*", "monorepo/.azure/*"]
"""

MINI_STACK = (
    textwrap.dedent(
        """\
        version: "1.0"
        parameters:
          project_name:
            pattern: '^[^ .\\\\/]{3,}$'
          use_extra:
            type: bool
            default: false
          flavour:
            choices: [plain, fancy]
            default: plain
            when: use_extra
        """
    )
    + PLATFORM_SKIPS
)

MINI_BUNDLE = textwrap.dedent(
    """\
    bundle:
      name: {{ project_name }}

    targets:
      dev:
        mode: development
        default: true
    {% for target in ["staging", "prod", "test"] %}
      {{ target }}:
        workspace:
          host: {{ monorepo.workspaces[target] }}
    {% endfor %}
    """
)


def gh_template(text: str) -> str:
    """A workflow as a template: its `${{ x }}` written as `{{ gh('x') }}`."""
    return text.replace("${{ secrets.TOKEN }}", "{{ gh('secrets.TOKEN') }}")


def mini_template(root: Path) -> Path:
    """A small template of the real shape: 3 answer combinations x 9 monorepo choices."""
    tpl = root / "stack_template"
    shutil.rmtree(tpl)
    files = {
        "stack.yml": MINI_STACK,
        "project/databricks.yml.j2": MINI_BUNDLE,
        "project/src/{{ project_dir }}.py.j2": '"""{{ project_name }}."""\n\nVALUE = 1\n',
        "project/.github/workflows/{{ project_name }}-ci.yml.j2": gh_template(CLEAN_WORKFLOW),
        "project/.azure/devops-pipelines/{{ project_name }}-ci.yml": CLEAN_PIPELINE,
        "monorepo/.github/workflows/monorepo-ci.yml": CLEAN_WORKFLOW,
        "monorepo/.azure/devops-pipelines/monorepo-ci.yml": CLEAN_PIPELINE,
    }
    for rel, text in files.items():
        (tpl / rel).parent.mkdir(parents=True, exist_ok=True)
        (tpl / rel).write_text(text)
    return tpl


def by_case(results):
    return {r.case: r for r in results}


def ids_where(results, predicate):
    return {r.case for r in results if predicate(r.case)}


# ----------------------------------------------------------------------------------- unit
def test_leftover_syntax_ignores_ci_expressions():
    assert leftover_syntax("run: echo ${{ github.sha }}\nx: ${{ a }}-${{ b }}\n") is None
    assert leftover_syntax("a: 1\nb: {{ project_name }}\n") == (2, "{{")
    assert leftover_syntax("a: ${{ x }} {% if y %}\n") == (1, "{%")
    assert leftover_syntax("# {# note #}\n") == (1, "{#")


# --------------------------------------------------------------------------- combinations
def test_combinations_of_the_shipped_template(repo):
    root = root_of(repo)
    template = load_template(root / "stack_template")
    config = load_config(root)
    combos = matrix_combinations(template, config)

    # Derived from stack.yml itself: unconditional choices multiply fully; conditional ones
    # add at least one value each.
    raw = yaml.safe_load((root / "stack_template" / "stack.yml").read_text())["parameters"]
    sizes = [
        2 if spec.get("type") == "bool" else len(spec["choices"])
        for spec in raw.values()
        if (spec.get("type") == "bool" or "choices" in spec)
        and not spec.get("when")
        and not spec.get("computed")
    ]
    expected = math.prod(sizes) * len(CLOUDS) * len(CICD_PLATFORMS)
    assert len(combos) >= expected >= 36

    ids = [case for case, _, _ in combos]
    assert len(set(ids)) == len(ids)
    assert ids == [case for case, _, _ in matrix_combinations(template, config)]  # stable
    assert ids[0].startswith("azure/github_actions/")
    names = [p.name for p in template.choice_parameters()]
    for case, cfg, answers in combos:
        cloud, platform, *choices = case.split("/")
        assert (cfg.cloud, cfg.cicd_platform) == (cloud, platform)
        # a choice that does not apply (train_once without UC, or with the feature store) is
        # left out of the id; the others are there, in the template's order
        listed = [c.split("=")[0] for c in choices]
        applies = (
            answers["include_models_in_unity_catalog"] and not answers["include_feature_store"]
        )
        assert listed == [n for n in names if n != "train_once" or applies], case
        assert answers["project_name"] == SAMPLE_PROJECT
        for choice in choices:
            name, value = choice.split("=")
            assert {True: "yes", False: "no"}.get(answers[name], answers[name]) == value
    pairs = {(cfg.cloud, cfg.cicd_platform) for _, cfg, _ in combos}
    assert pairs == {(c, p) for c in CLOUDS for p in CICD_PLATFORMS}


def test_a_new_choice_is_covered(repo):
    root = root_of(repo)
    stack = root / "stack_template" / "stack.yml"
    before = len(matrix_combinations(load_template(stack.parent), load_config(root)))
    text = stack.read_text().replace(
        "\nskip:",
        "\n  serving:\n    choices: [none, batch, online]\n    default: none\n"
        "  tier:\n    choices: [small, large]\n    default: small\n"
        "    when: serving == 'online'\n\nskip:",
        1,
    )
    stack.write_text(text)
    combos = matrix_combinations(load_template(stack.parent), load_config(root))
    # none, batch (tier collapses to its default) + online x 2 tiers = 4 per old combination
    assert len(combos) == before * 4
    assert any(c.endswith("serving=online/tier=large") for c, _, _ in combos)
    assert not any(c.endswith("serving=batch/tier=large") for c, _, _ in combos)


# ------------------------------------------------------------------- small template, exact
def test_clean_small_template_passes_every_combination(repo):
    root = root_of(repo)
    mini_template(root)
    results = run_render_matrix(root, jobs=2)
    assert len(results) == 3 * 3 * len(CICD_PLATFORMS)
    assert [r.check for r in results] == ["render-matrix"] * len(results)
    for result in results:
        assert result.errors == [], (result.case, result.errors)


def test_planted_defects_fail_exactly_the_affected_combinations(repo):
    root = root_of(repo)
    tpl = mini_template(root)
    bundle = tpl / "project/databricks.yml.j2"
    bundle.write_text(bundle.read_text() + "{% if use_extra %}\n# {{ '{{' }} left\n{% endif %}\n")
    wf = tpl / "project/.github/workflows/{{ project_name }}-ci.yml.j2"
    wf.write_text(
        wf.read_text().replace(
            'run: echo "testing"',
            "run: echo {{ gh('github.event.issue.title') if flavour == 'fancy' else 'testing' }}",
        )
    )
    py = tpl / "project/src/{{ project_dir }}.py.j2"
    py.write_text(py.read_text() + "{% if monorepo.cloud == 'gcp' %}\ndef broken(:\n{% endif %}\n")

    results = run_render_matrix(root, jobs=2)
    cases = by_case(results)
    prefix = f"projects/{to_project_dir(SAMPLE_PROJECT)}/"

    def failing(predicate):
        return {r.case for r in results if any(predicate(f) for f in r.errors)}

    leftover = failing(lambda f: "template syntax left" in f.message)
    assert leftover == ids_where(results, lambda c: "use_extra=yes" in c)
    # findings point at the template file to fix; the rendered place is in the message
    assert {(f.file, f.line) for c in leftover for f in cases[c].errors} >= {
        ("stack_template/project/databricks.yml.j2", None)
    }
    assert all(
        f.message.endswith(f"(rendered as {prefix}databricks.yml:17)")
        for c in leftover
        for f in cases[c].errors
        if "template syntax left" in f.message
    )

    injected = failing(lambda f: "template-injection (High)" in f.message)
    assert injected == ids_where(results, lambda c: "flavour=fancy" in c and "/github_actions" in c)
    assert injected and all(
        f.file == "stack_template/project/.github/workflows/{{ project_name }}-ci.yml.j2"
        and f.line is None
        and f"(rendered as {prefix}.github/workflows/{SAMPLE_PROJECT}-ci.yml:22)" in f.message
        for c in injected
        for f in cases[c].errors
        if "zizmor" in f.message
    )

    syntax = failing(lambda f: "Python syntax error" in f.message)
    assert syntax == ids_where(results, lambda c: c.startswith("gcp/"))

    assert {r.case for r in results if r.failed} == leftover | injected | syntax
    assert all(f.project == r.case for r in results for f in r.findings)


def test_render_error_names_template_file_and_line(repo):
    root = root_of(repo)
    tpl = mini_template(root)
    extra = tpl / "project/extra.txt.j2"
    extra.write_text("first\n{% if use_extra %}\n{{ not_a_parameter }}\n{% endif %}\n")
    results = run_render_matrix(root, jobs=1)
    failed = {r.case for r in results if r.failed}
    assert failed == ids_where(results, lambda c: "use_extra=yes" in c)
    for case in failed:
        (finding,) = by_case(results)[case].errors
        assert (finding.file, finding.line) == ("stack_template/project/extra.txt.j2", 3)
        assert "not_a_parameter" in finding.message


def test_parallel_and_serial_runs_agree_and_report_progress(repo):
    root = root_of(repo)
    tpl = mini_template(root)
    (tpl / "project/resources").mkdir()
    (tpl / "project/resources/x.yml.j2").write_text(
        "{% if use_extra %}\nresources:\n  jobs: {a: [\n{% endif %}\n"
    )
    seen = []
    serial = run_render_matrix(root, jobs=1, progress=lambda done, total: seen.append(done))
    parallel = run_render_matrix(root, jobs=2)
    assert seen == list(range(1, len(serial) + 1)) and len(serial) == 9 * len(CICD_PLATFORMS)
    assert [(r.case, r.findings) for r in serial] == [(r.case, r.findings) for r in parallel]
    assert {r.case for r in serial if r.failed} == ids_where(serial, lambda c: "use_extra=yes" in c)


def test_unloadable_template_or_config_is_one_failed_case(repo):
    root = root_of(repo)
    stack = root / "stack_template" / "stack.yml"
    stack.write_text(stack.read_text() + "\nbogus: 1\n")
    (result,) = run_render_matrix(root, jobs=1)
    assert result.case == MONOREPO and result.failed
    assert "bogus" in result.errors[0].message
    assert result.errors[0].file.endswith("stack.yml")

    shutil.copy(root / "stack_template" / "stack.yml", root / "stack.bak")
    stack.write_text(stack.read_text().replace("\nbogus: 1\n", "\n"))
    (root / "monorepo.yml").write_text("cloud: mars\n")
    (result,) = run_render_matrix(root, jobs=1)
    assert result.failed and result.errors[0].file == "monorepo.yml"


# --------------------------------------------------------------------- the shipped template
def test_shipped_template_passes_every_combination(shipped_matrix):
    """The session's one full run (tests/conftest.py), shared with the tests that seed it."""
    root, results = shipped_matrix.root, shipped_matrix.results
    combos = matrix_combinations(load_template(root / "stack_template"), load_config(root))
    assert sorted((r.check, r.case) for r in results) == sorted(
        ("render-matrix", c[0]) for c in combos
    )
    assert len(results) >= 36
    problems = {r.case: [f"{f.location()}: {f.message}" for f in r.errors] for r in results}
    assert {case: errs for case, errs in problems.items() if errs} == {}


def test_planted_defect_in_shipped_template_fails_exactly_its_combinations(
    shipped_matrix, tmp_path
):
    baseline = shipped_matrix.results
    root = root_of(make_repo(tmp_path / "planted"))
    shutil.rmtree(root / "stack_template")  # the very template the baseline ran on
    shutil.copytree(shipped_matrix.root / "stack_template", root / "stack_template")
    bundle = root / "stack_template/project/databricks.yml.j2"
    bundle.write_text(
        bundle.read_text() + "{% if include_feature_store %}\nplanted: [unclosed\n{% endif %}\n"
    )
    (workflow,) = [
        p
        for p in (root / "stack_template/project/.github/workflows").iterdir()
        if p.name.endswith("-bundle-ci.yml.j2")
    ]
    workflow.write_text(
        workflow.read_text() + "{% if monorepo.cloud == 'aws' %}\n# {{ '{{' }} left\n{% endif %}\n"
    )
    planted = run_render_matrix(root, jobs=2)
    assert sorted(r.case for r in planted) == sorted(r.case for r in baseline)
    before = {r.case: r.findings for r in baseline}
    changed = {r.case for r in planted if r.findings != before[r.case]}
    yaml_broken = {
        r.case
        for r in planted
        if any(
            f.file == "stack_template/project/databricks.yml.j2" and "invalid YAML" in f.message
            for f in r.errors
        )
    }
    left = {
        r.case
        for r in planted
        if any("-bundle-ci.yml" in f.file and "template syntax left" in f.message for f in r.errors)
    }
    assert yaml_broken == ids_where(planted, lambda c: "include_feature_store=yes" in c)
    assert left == ids_where(planted, lambda c: c.startswith("aws/") and "/github_actions" in c)
    assert changed == yaml_broken | left


def test_gitlab_combinations_compose_two_projects_and_catch_a_shared_job_name(repo):
    """On GitLab the root pipeline merges every project's jobs: a template job name without
    the project name clashes between two projects (and breaks `needs:`), pointed at the template
    file; other platforms are not affected."""
    from monostack.checks.render_matrix import check_combination

    root = root_of(repo)
    tests = root / "stack_template/project/.gitlab/pipelines/{{ project_name }}-run-tests.yml.j2"
    key = '{{ ci.gl_key(project_name ~ "-unit-tests") }}:'
    assert key in tests.read_text()
    combos = matrix_combinations(load_template(root / "stack_template"), load_config(root))
    gitlab = next(c for c in combos if "/gitlab/" in c[0])
    github = next(c for c in combos if "/github_actions/" in c[0])
    assert check_combination(root, *gitlab)[0] == []
    tests.write_text(tests.read_text().replace(key, "unit-tests:"))
    findings = check_combination(root, *gitlab, run="planted")[0]
    template_file = "stack_template/project/.gitlab/pipelines/{{ project_name }}-run-tests.yml.j2"
    clash = [f for f in findings if "job 'unit-tests' is defined in both" in f.message]
    assert clash and all(f.file == template_file for f in clash), findings
    assert "projects/matrix_other/.gitlab/pipelines/matrix-other-run-tests.yml" in clash[0].message
    assert any("needs 'matrix-sample-unit-tests'" in f.message for f in findings), findings
    assert check_combination(root, *github, run="planted")[0] == []
