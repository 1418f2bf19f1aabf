"""Glue between Invoke tasks and the library: option parsing and user-error handling.

Kept free of heavy imports: ``tasks.py`` imports this module at start-up.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from monostack.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn a :class:`UserError` into one ``error: ...`` line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from invoke.exceptions import Exit

        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise Exit(f"error: {exc.message}", code=1) from None
        except KeyboardInterrupt:
            raise Exit("interrupted; nothing was written", code=130) from None

    return wrapper  # type: ignore[return-value]


def parse_answers(pairs: Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; a pair without ``=`` is a UserError."""
    answers: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(
                f"--answer {pair!r}: expected NAME=VALUE, e.g. --answer schema_name=churn"
            )
        answers[key.strip()] = value
    return answers


def echo(line: str = "") -> None:
    sys.stdout.write(line + "\n")
