"""The one exception type that means "the user's input is wrong".

Anything raised as :class:`UserError` is printed as a single ``error: ...`` line with a non-zero
exit and no traceback. Every other exception is a bug in monostack and keeps its traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """Bad input: a message that names the file, field or value, and what to do about it.

    ``file`` and ``line`` say where, when a file is at fault: the message starts with them
    (``monorepo.yml:3: ...``) for the one-line ``error:`` output, and checks turn them into a
    finding's fields (see :attr:`detail`) instead of reading them back from the text.
    """

    def __init__(self, message: str, *, file: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message

    @property
    def detail(self) -> str:
        """The message without the leading ``file:line: `` or ``file: `` it was built with."""
        for prefix in (f"{self.file}:{self.line}: ", f"{self.file}: "):
            if self.file and self.message.startswith(prefix):
                return self.message[len(prefix) :]
        return self.message


def not_utf8(exc: UnicodeDecodeError | None = None) -> str:
    """The one wording for a file that is not UTF-8 text, and what to do about it."""
    why = f" ({exc.reason})" if exc is not None else ""
    return f"not UTF-8 text{why}; save it as UTF-8"


@contextmanager
def located(file: str) -> Iterator[None]:
    """Give a UserError raised inside the block ``file`` as its location, unless it has one."""
    try:
        yield
    except UserError as exc:
        if exc.file:
            raise
        raise UserError(exc.message, file=file, line=exc.line) from None


_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and run it again",
    errno.EDQUOT: "the disk quota is used up: free some space and run it again",
    errno.EROFS: "the file system is read-only: run it where you can write",
    errno.EACCES: "permission denied: check the owner and permissions of the file and folder",
    errno.EPERM: (
        "operation not permitted: check its permissions and whether it is immutable (lsattr)"
    ),
    errno.ENAMETOOLONG: "the name is too long for the file system: use a shorter name",
    errno.ELOOP: "it is a symbolic link: replace it with a regular file",
    errno.EISDIR: "it is a directory: give a file",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EIO: "input/output error: check the disk",
}


def os_error_message(exc: OSError, name: str, doing: str = "write") -> str:
    """One line for an OS error on ``name`` (full disk, read-only, permissions, long names)."""
    hint = _OS_HINTS.get(exc.errno or 0) or (exc.strerror or str(exc)).lower()
    return f"{name}: cannot {doing} it ({hint})"


def short(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages never carry a huge value."""
    if isinstance(value, str | bytes | int | float | bool | type(None)):
        text = repr(value[: limit + 1] if isinstance(value, str | bytes) else value)
    else:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
