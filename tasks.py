"""Invoke tasks for the monorepo: ``invoke --list`` shows them, ``invoke --help TASK`` explains one.

Each task parses its options, calls one function in the ``monostack`` package, prints the result
and sets the exit code. All logic lives in ``monostack``; heavy imports happen inside the tasks.
"""

from pathlib import Path

from invoke import task

from monostack.cli import echo, parse_answers, user_errors

ROOT = Path(__file__).resolve().parent


@task(
    help={
        "name": "Project name: 3+ characters, no space, dot, slash or backslash (e.g. churn).",
        "unity-catalog": "Register the model in Unity Catalog instead of the workspace registry.",
        "feature-store": "Include feature-engineering code, job and tests.",
        "schema-name": "Unity Catalog schema for the model (default: the project name).",
        "inference-table": "Table the quality monitor watches, as catalog.schema.table.",
        "answer": "Any other template parameter, as NAME=VALUE (repeatable).",
        "dry-run": "List the files that would be written; write nothing.",
    },
    iterable=["answer"],
)
@user_errors
def new_project(
    c,
    name,
    unity_catalog=False,
    feature_store=False,
    schema_name=None,
    inference_table=None,
    answer=None,
    dry_run=False,
):
    """Render a new project from stack_template/ into projects/<name>/."""
    from monostack.projects import new_project as create

    answers = parse_answers(answer)
    if unity_catalog:
        answers["include_models_in_unity_catalog"] = True
    if feature_store:
        answers["include_feature_store"] = True
    if schema_name is not None:
        answers["schema_name"] = schema_name
    if inference_table is not None:
        answers["inference_table_name"] = inference_table
    result = create(ROOT, name, answers, dry_run=dry_run)
    rel = result.path.relative_to(ROOT)
    verb = "Would create" if dry_run else "Created"
    echo(f"{verb} project {result.name!r} in {rel}/ ({len(result.files)} files):")
    for path in result.files:
        echo(f"  {rel}/{path}")
    if not dry_run:
        echo("")
        echo("Next: run `invoke sync-workflows` to copy its CI files into the repo root.")
