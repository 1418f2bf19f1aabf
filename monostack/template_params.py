"""The questions of a stack template: the parameters ``stack.yml`` declares, and the values
they accept.

A parameter is a ``str`` or ``bool`` with an optional default (a literal or a Jinja2 expression
over earlier parameters and ``monorepo``), fixed choices, a pattern, and a ``when`` saying
whether it applies. :func:`param_from` reads one declaration and refuses what would fail later;
:func:`coerce` and :func:`validate_value` check an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from monostack.config import VALUE_KINDS
from monostack.errors import UserError, short
from monostack.template_rules import check_literal_default, nested_quantifier

# Per the spec: 3+ characters, no space, dot, slash or backslash.
PROJECT_NAME_PATTERN = r"^[^ .\\/]{3,}$"

_PARAM_KEYS = (
    "type",
    "description",
    "default",
    "choices",
    "pattern",
    "pattern_message",
    "kind",
    "when",
    "when_message",
    "computed",
)
_TYPES = ("str", "bool")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def to_project_dir(name: str) -> str:
    """Directory form of a project name: keep ``[A-Za-z0-9_-]``, then ``-`` becomes ``_``.

    ``my-proj`` and ``my_proj`` therefore share ``projects/my_proj``; callers must refuse the
    second one.
    """
    return re.sub(r"[^A-Za-z0-9_-]", "", name).replace("-", "_")


class InvalidAnswer(UserError):
    """A value a parameter does not accept (type, choices or pattern)."""


class NotApplicable(UserError):
    """An answer was given to a parameter whose ``when`` is false."""

    def __init__(self, name: str, when: str, why: str | None = None) -> None:
        reason = why or f"it needs: {when}"
        super().__init__(f"parameter {name!r} does not apply here ({reason}); leave it out")
        self.name = name


@dataclass(frozen=True)
class Parameter:
    """One question of the template. ``default`` may be a Jinja2 expression over earlier
    parameters and ``monorepo``; ``when`` is a Jinja2 expression saying whether it applies."""

    name: str
    type: str = "str"
    description: str = ""
    default: Any = None
    choices: tuple[Any, ...] | None = None
    pattern: str | None = None
    pattern_message: str | None = None
    when: str | None = None
    when_message: str | None = None  # why it does not apply when `when` is false, and what to do
    computed: bool = False
    kind: str | None = None  # a kind of value (config.VALUE_KINDS), checked by its one rule

    @property
    def is_choice(self) -> bool:
        """A parameter render-matrix enumerates: a bool or one with fixed choices."""
        return not self.computed and (self.type == "bool" or self.choices is not None)

    def domain(self) -> tuple[Any, ...]:
        if self.type == "bool":
            return (False, True)
        return tuple(self.choices or ())


@dataclass(frozen=True)
class SkipRule:
    """Source paths (fnmatch globs, ``*`` crosses ``/``) left out when ``when`` is true."""

    when: str
    paths: tuple[str, ...]


def coerce(param: Parameter, value: Any, where: str) -> Any:
    if param.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InvalidAnswer(f"{where}: {short(value)} is not a yes/no value")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidAnswer(f"{where}: expected a string, got {short(value)}")
    return str(value)


MAX_ANSWER = 1000  # characters: answers are names; this also bounds any regex's work


def validate_value(param: Parameter, value: Any) -> None:
    if isinstance(value, str):
        why = (
            f"it is longer than {MAX_ANSWER} characters"
            if len(value) > MAX_ANSWER
            else "it contains a control character such as a newline"
            if re.search(r"[\x00-\x1f\x7f]", value)
            else "it contains a CI expression ('${{'); give a plain value"
            if "${{" in value
            else None
        )
        if why:
            raise InvalidAnswer(f"parameter {param.name!r}: {short(value)} is not valid: {why}")
    if param.choices is not None and value not in param.choices:
        allowed = ", ".join(str(c) for c in param.choices)
        raise InvalidAnswer(f"parameter {param.name!r}: {short(value)} is not one of: {allowed}")
    if param.pattern is not None and not re.search(param.pattern, str(value)):
        why = param.pattern_message or f"it must match {param.pattern}"
        raise InvalidAnswer(f"parameter {param.name!r}: {short(value)} is not valid: {why}")
    why = VALUE_KINDS[param.kind](str(value)) if param.kind is not None else None
    if why:
        raise InvalidAnswer(f"parameter {param.name!r}: {short(value)} is not valid: {why}")


def param_from(name: str, spec: Any, where: str, checked: bool = False) -> Parameter:
    """One parameter declaration; ``checked``: its text already passed the deeper checks
    (a valid, ReDoS-safe pattern, a default it accepts), so they are not run again."""
    if not isinstance(spec, dict):
        raise UserError(f"{where}: expected a mapping of parameter settings")
    unknown = [k for k in spec if k not in _PARAM_KEYS]
    if unknown:
        raise UserError(
            f"{where}: unknown setting {unknown[0]!r}; allowed: {', '.join(_PARAM_KEYS)}"
        )
    typ = spec.get("type", "str")
    if typ not in _TYPES:
        raise UserError(f"{where}.type: {typ!r} is not one of: {', '.join(_TYPES)}")
    choices = spec.get("choices")
    if choices is not None and (not isinstance(choices, list) or not choices):
        raise UserError(f"{where}.choices: expected a non-empty list")
    pattern = spec.get("pattern")
    if pattern is not None and not isinstance(pattern, str):
        raise UserError(f"{where}.pattern: expected a regular expression string")
    if pattern is not None and not checked:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UserError(
                f"{where}.pattern: {short(pattern)} is not a valid regex: {exc}"
            ) from None
        if nested_quantifier(pattern):
            raise UserError(
                f"{where}.pattern: {short(pattern)} repeats a group that itself repeats, e.g. "
                "(a+)+: such patterns can take exponential time on a crafted answer; "
                "rewrite it without the nested repetition, e.g. [a-z0-9-]+"
            )
    kind = spec.get("kind")
    if kind is not None and (typ != "str" or kind not in VALUE_KINDS):
        raise UserError(
            f"{where}.kind: {short(kind)} is not a kind of text value; use one of: "
            f"{', '.join(VALUE_KINDS)}"
        )
    for key in ("description", "pattern_message", "when", "when_message"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise UserError(f"{where}.{key}: expected a string")
    if not isinstance(spec.get("computed", False), bool):
        raise UserError(f"{where}.computed: expected true or false")
    if spec.get("computed") and spec.get("default") is None:
        raise UserError(f"{where}: a computed parameter needs a default")
    if not checked:
        check_literal_default(spec, typ, choices, pattern, where)
        default = spec.get("default")
        if kind is not None and isinstance(default, str) and "{" not in default:
            why = VALUE_KINDS[kind](default)
            if why:
                raise UserError(f"{where}.default: {short(default)} is not valid: {why}")
    return Parameter(
        name=name,
        type=typ,
        description=spec.get("description", ""),
        default=spec.get("default"),
        choices=tuple(choices) if choices is not None else None,
        pattern=pattern,
        pattern_message=spec.get("pattern_message"),
        when=spec.get("when"),
        when_message=spec.get("when_message"),
        computed=bool(spec.get("computed", False)),
        kind=kind,
    )
