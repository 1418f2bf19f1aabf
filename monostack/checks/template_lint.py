"""Template lint: every template file (and templated path) compiles as Jinja2, and
``stack.yml`` loads with expressions that compile; findings point at the template's lines."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from monostack.checks import ERROR, MONOREPO, Finding
from monostack.checks.ci_files import key_line
from monostack.checks.lint_scope import CHECK, walk_files
from monostack.errors import UserError


def template_findings(template_root: Path, root: Path) -> list[Finding]:
    """Every template file (and templated path component) compiles as Jinja2; stack.yml loads
    and its Jinja2 expressions compile. Missing template directory: nothing to check."""
    import jinja2

    from monostack.template import TEMPLATE_SUFFIX, make_environment

    if not template_root.is_dir():
        return []
    env = make_environment(template_root)
    findings = []
    for path in walk_files(template_root):
        src = path.relative_to(template_root).as_posix()
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else src
        for component in src.split("/"):
            if "{{" in component or "{%" in component or "{#" in component:
                try:
                    env.parse(component)
                except jinja2.TemplateSyntaxError as exc:
                    findings.append(
                        Finding(CHECK, MONOREPO, rel, None, ERROR, f"Jinja2 file name: {exc}")
                    )
        if not src.endswith(TEMPLATE_SUFFIX):
            continue
        try:
            env.get_template(src)
        except jinja2.TemplateSyntaxError as exc:
            findings.append(
                Finding(CHECK, MONOREPO, rel, exc.lineno, ERROR, f"Jinja2 syntax: {exc.message}")
            )
        except (jinja2.TemplateError, UnicodeDecodeError) as exc:
            findings.append(Finding(CHECK, MONOREPO, rel, None, ERROR, f"Jinja2: {exc}"))
    findings += stack_file_findings(template_root, root, env)
    return findings


def stack_file_findings(template_root: Path, root: Path, env: Any) -> list[Finding]:
    """``stack.yml`` loads, and its ``when``/``default``/``skip`` expressions compile."""
    import jinja2
    import yaml

    from monostack.template import STACK_FILE, load_template
    from monostack.yamlutil import compose_yaml

    path = template_root / STACK_FILE
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else STACK_FILE
    try:
        template = load_template(template_root)
    except UserError as exc:
        finding = Finding.from_error(CHECK, MONOREPO, exc, root)
        if finding.line is None:  # e.g. a `when:` naming an undefined variable
            finding = dataclasses.replace(finding, line=_setting_line(path, exc.message))
        return [finding]
    try:
        tree = compose_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:  # pragma: no cover - load_template already parsed it
        tree = None
    exprs: list[tuple[list[Any], str, bool]] = []
    for name, param in template.parameters.items():
        if param.when:
            exprs.append((["parameters", name, "when"], param.when, True))
        if isinstance(param.default, str) and ("{{" in param.default or "{%" in param.default):
            exprs.append((["parameters", name, "default"], param.default, False))
    for i, rule in enumerate(template.skip_rules):
        exprs.append((["skip", i, "when"], rule.when, True))
    findings = []
    for where, text, is_expression in exprs:
        try:
            if is_expression:
                env.compile_expression(text)
            else:
                env.from_string(text)
        except jinja2.TemplateSyntaxError as exc:
            label = ".".join(str(w) for w in where)
            findings.append(
                Finding(
                    CHECK,
                    MONOREPO,
                    rel,
                    key_line(tree, where) if tree else None,
                    ERROR,
                    f"{label}: Jinja2 syntax: {exc.message}",
                )
            )
    return findings


def _setting_line(path: Path, message: str) -> int | None:
    """The line of the setting a stack.yml error names (``parameters.x.when``, ``skip[0].when``)."""
    import re

    import yaml

    from monostack.yamlutil import compose_yaml

    match = re.search(r"(?:parameters\.(\w+)\.(\w+)|skip\[(\d+)\]\.(\w+))", message)
    if match is None:
        return None
    if match.group(1):
        where: list[Any] = ["parameters", match.group(1), match.group(2)]
    else:
        where = ["skip", int(match.group(3)), match.group(4)]
    try:
        tree = compose_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return key_line(tree, where) if tree else None
