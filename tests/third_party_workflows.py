# ruff: noqa: E501 - the workflows keep the long lines real ones have
"""Hand-written GitHub workflows in the shapes well-known repositories use (written here, in our
own words): string filters (``branches: main``), ``strategy:`` without a matrix, tag-pinned
third-party actions, reusable workflows, services, long lines and YAML 1.1 truthy keys. All of
them run on GitHub; none was written to please yamllint, the vendored schema or zizmor."""

from __future__ import annotations

SHAPES = [
    # string filters, tag-pinned actions, a `strategy:` with fail-fast only
    """\
name: {title}
on:
  push:
    branches: main
    paths-ignore: docs/**
  pull_request:
    branches: main
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - run: pip install -r requirements.txt && pytest -q --maxfail=1 --disable-warnings --cov=src --cov-report=xml tests/unit tests/integration
""",
    # event list, matrix, caches and an expression-heavy step
    """\
name: {title}
on: [push, pull_request]
env:
    FORCE_COLOR: 1
jobs:
    test:
        runs-on: ${{{{ matrix.os }}}}
        strategy:
            matrix:
                os: [ubuntu-latest, macos-latest]
                python: ["3.10", "3.11"]
        steps:
            - uses: actions/checkout@v4
            - uses: actions/cache@v4
              with:
                  path: ~/.cache/pip
                  key: pip-${{{{ runner.os }}}}-${{{{ hashFiles('**/requirements*.txt') }}}}
            - run: python -m pip install tox && tox -e py
""",
    # schedule and manual runs with inputs, a docker build and push
    """\
---
name: {title}
'on':
  schedule:
    - cron: '17 3 * * 1'
  workflow_dispatch:
    inputs:
      tag:
        description: Image tag
        required: false
        default: latest
permissions:
  contents: read
  packages: write
jobs:
  image:
    runs-on: ubuntu-22.04
    steps:
    - uses: actions/checkout@v4
    - uses: docker/setup-buildx-action@v3
    - uses: docker/login-action@v3
      with:
        registry: ghcr.io
        username: ${{{{ github.actor }}}}
        password: ${{{{ secrets.GITHUB_TOKEN }}}}
    - uses: docker/build-push-action@v6
      with:
        push: true
        tags: ghcr.io/${{{{ github.repository }}}}:${{{{ inputs.tag || 'latest' }}}}
""",
    # a job with services and a container, concurrency per ref, a tag trigger
    """\
name: {title}
on:
  push:
    tags: 'v*'
concurrency:
  group: {slug}-${{{{ github.ref }}}}
  cancel-in-progress: true
jobs:
  integration:
    runs-on: ubuntu-latest
    container: python:3.12-slim
    services:
      postgres:
        image: postgres:16
        env:
          POSTGRES_PASSWORD: postgres
        options: --health-cmd pg_isready --health-interval 10s
    steps:
      - uses: actions/checkout@v4
      - run: pytest tests/integration   # talks to the service
        env:
          DATABASE_URL: postgresql://postgres:postgres@postgres:5432/postgres
""",
    # a reusable workflow and a caller in one file set, pull_request_target labels
    """\
name: {title}
on:
  pull_request:
    types: labeled
  workflow_call:
    inputs:
      environment: {{type: string, default: staging}}
jobs:
  notify:
    if: github.event.label.name == 'deploy'
    runs-on: ubuntu-latest
    timeout-minutes: 5
    steps:
      - name: Say hello
        run: |
          echo "Deploying ${{{{ github.event.pull_request.head.sha }}}} to ${{{{ inputs.environment }}}}"
      - uses: slackapi/slack-github-action@v1.26.0
        with:
          payload: '{{"text": "deploy requested"}}'
""",
]


def third_party_workflows(count: int = 100) -> dict[str, str]:
    """``count`` workflows, {file name: text}, cycling through :data:`SHAPES`."""
    out = {}
    for i in range(count):
        slug = f"team-{i:03d}"
        text = SHAPES[i % len(SHAPES)].format(title=f"Third party {i:03d}", slug=slug)
        suffix = "yaml" if i % 7 == 0 else "yml"
        out[f"{slug}.{suffix}"] = text
    return out
