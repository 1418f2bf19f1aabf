"""The one exception type that means "the user's input is wrong".

Anything raised as :class:`UserError` is printed as a single ``error: ...`` line with a non-zero
exit and no traceback. Every other exception is a bug in monostack and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a message that names the file, field or value, and what to do about it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message
