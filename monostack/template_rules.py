"""Checks ``stack.yml`` gets when it is loaded, so a template mistake fails at once, naming
``stack.yml``, instead of in the middle of every ``new-project``: expressions naming undefined
variables, plain defaults a parameter would refuse, and patterns open to catastrophic
backtracking (ReDoS)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monostack.errors import UserError, short

if TYPE_CHECKING:  # pragma: no cover
    from monostack.template_params import Parameter

BOOL_WORDS = {"true", "yes", "y", "1", "on", "false", "no", "n", "0", "off"}


def nested_quantifier(pattern: str) -> bool:
    """Whether a repeated part of ``pattern`` repeats again inside ((a+)+, (a*b?)*, ...): the
    shape behind catastrophic backtracking (ReDoS)."""
    import re._parser as sre  # the parser the re module itself uses

    repeats = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None))

    def walk(items: Any, inside_repeat: bool) -> bool:
        for op, av in items:
            if op in repeats:
                low, high, sub = av
                if inside_repeat and high > 1 and high != low:
                    return True
                if walk(sub, inside_repeat or high > 1):
                    return True
            elif op is sre.SUBPATTERN:
                if walk(av[-1], inside_repeat):
                    return True
            elif op is sre.BRANCH:
                if any(walk(branch, inside_repeat) for branch in av[1]):
                    return True
            elif op in (sre.ASSERT, sre.ASSERT_NOT) and walk(av[1], inside_repeat):
                return True
        return False

    return walk(sre.parse(pattern), False)


def check_literal_default(
    spec: dict, typ: str, choices: list | None, pattern: str | None, where: str
) -> None:
    """A plain (non-Jinja2) default must be a value the parameter accepts, or every
    ``new-project`` that keeps it would fail."""
    default = spec.get("default")
    if default is None or (isinstance(default, str) and ("{{" in default or "{%" in default)):
        return
    if typ == "bool":
        if not isinstance(default, bool) and str(default).strip().lower() not in BOOL_WORDS:
            raise UserError(f"{where}.default: {short(default)} is not true or false")
        return
    if choices is not None and default not in choices:
        raise UserError(
            f"{where}.default: {short(default)} is not one of its choices "
            f"({', '.join(short(c, 30) for c in choices)}); make it one of them"
        )
    if pattern is not None and not re.search(pattern, str(default)):
        raise UserError(f"{where}.default: {short(default)} does not match its own pattern")


# Names every expression may use besides parameters: set by the engine, or Jinja2 globals.
ENGINE_NAMES = {"monorepo", "template_version", "project_dir", "gh", "uuid4"} | {
    "range",
    "dict",
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "true",
    "false",
    "none",
}


def check_expression(text: str, known: set[str], where: str, expression: bool = True) -> None:
    """Parse a ``when`` (expression) or templated default (template) now, and refuse names it
    uses that no earlier parameter or the engine defines: otherwise new-project fails later."""
    import jinja2
    from jinja2 import meta

    env = jinja2.Environment()  # noqa: S701 - parsing only
    try:
        source = "{{ (" + text + ") }}" if expression else text
        names = meta.find_undeclared_variables(env.parse(source))
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(f"{where}: {short(text)}: invalid Jinja2: {exc.message}") from None
    unknown = sorted(names - known)
    if unknown:
        raise UserError(
            f"{where}: {short(text)} uses {unknown[0]!r}, which is not a parameter declared "
            "before it (nor monorepo, project_dir or template_version); declare it first or "
            "fix the name"
        )


def check_names(path: Path, params: Mapping[str, Parameter]) -> None:
    known = set(ENGINE_NAMES) - {"project_dir"}
    for param in params.values():
        where = f"{path}: parameters.{param.name}"
        if param.when is not None:
            check_expression(param.when, known, f"{where}.when")
        if isinstance(param.default, str) and ("{{" in param.default or "{%" in param.default):
            check_expression(param.default, known, f"{where}.default", expression=False)
        known.add(param.name)
        if param.name == "project_name":
            known.add("project_dir")
