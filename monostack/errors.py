"""The one exception type that means "the user's input is wrong".

Anything raised as :class:`UserError` is printed as a single ``error: ...`` line with a non-zero
exit and no traceback. Every other exception is a bug in monostack and keeps its traceback.
"""

from __future__ import annotations

import re
from pathlib import Path


class UserError(Exception):
    """Bad input: a message that names the file, field or value, and what to do about it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


def not_utf8(exc: UnicodeDecodeError | None = None) -> str:
    """The one wording for a file that is not UTF-8 text, and what to do about it."""
    why = f" ({exc.reason})" if exc is not None else ""
    return f"not UTF-8 text{why}; save it as UTF-8"


def message_location(message: str, root: Path | None = None) -> tuple[str, int | None]:
    """Where a UserError message says the problem is: ``/abs/x.yml:12: ...`` -> ("x.yml", 12)
    with ``root`` stripped from the path; ("", None) when the message names no file."""
    match = re.match(r"^(.+?):(\d+): ", message) or re.match(r"^(\S*[/.]\S*?): ", message)
    if match is None:
        return "", None
    file = match.group(1)
    if root is not None:
        for base in (f"{root}/", f"{Path(root).resolve()}/"):
            file = file.removeprefix(base)
    line = int(match.group(2)) if match.lastindex and match.lastindex >= 2 else None
    return file, line
