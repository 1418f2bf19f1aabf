"""Glue between Invoke tasks and the library: option parsing and user-error handling.

Kept free of heavy imports: ``tasks.py`` imports this module at start-up.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from monostack.errors import UserError, os_error_message

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn a :class:`UserError` into one ``error: ...`` line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from invoke.exceptions import Exit

        from monostack import treeio

        before = treeio.committed
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise Exit(f"error: {exc.message}", code=1) from None
        except KeyboardInterrupt:
            # writes are transactions that Ctrl-C rolls back or lets finish: say which happened
            if treeio.committed == before:
                raise Exit("interrupted; nothing was written", code=130) from None
            raise Exit(
                "interrupted after its changes were written completely; run it again to see "
                "that it has nothing left to do",
                code=130,
            ) from None
        except OSError as exc:  # full disk, read-only, permissions: not a monostack bug
            name = exc.filename if exc.filename is not None else "monostack"
            raise Exit(f"error: {os_error_message(exc, str(name), 'use')}", code=1) from None

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


_stdout_closed = False


def echo(line: str = "") -> None:
    """Print a line; a reader that went away (``invoke new-project ... | head -1``) only ends
    the output, never the command: the work is done either way."""
    global _stdout_closed
    if _stdout_closed:
        return
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_closed = True
        # nothing more can be shown; keep Python's exit-time flush from failing too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
