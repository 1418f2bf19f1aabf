"""Write steps: where tests inject faults and kills, and where Ctrl-C is honoured.

Every step that changes the file system during a monostack write calls :func:`step` first.
Tests make step N fail (:func:`set_fault_hook`) or SIGKILL the process
(``MONOSTACK_KILL_AT_STEP=N``), deterministically, to prove a write is all-or-nothing at each
step. While a write runs, SIGINT is held (:func:`held_sigint`): it aborts (and rolls back) at
the next step while files are staged, and waits until the end once renaming has begun.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Environment hooks for tests of the CLI: SIGKILL this process at write step N (1-based), or
# fail step N with an OS error ("N:ENOSPC", "N:EROFS", ...), as a full or read-only disk would.
KILL_AT_STEP_ENV = "MONOSTACK_KILL_AT_STEP"
FAIL_AT_STEP_ENV = "MONOSTACK_FAIL_AT_STEP"

_steps = 0  # write steps taken by this process (the kill hook counts them)
_fault_hook: Callable[[int], None] | None = None


def set_fault_hook(hook: Callable[[int], None] | None) -> None:
    """Call ``hook(step)`` before every write step (tests inject failures and kills here)."""
    global _fault_hook
    _fault_hook = hook


def reset_steps() -> None:
    global _steps
    _steps = 0


def step(path: object = None) -> None:
    """Before one write; ``path`` is what it writes (named by an injected error)."""
    global _steps
    _steps += 1
    if _fault_hook is not None:
        _fault_hook(_steps)
    kill_at = os.environ.get(KILL_AT_STEP_ENV)
    if kill_at and kill_at.isdigit() and int(kill_at) == _steps:
        os.kill(os.getpid(), signal.SIGKILL)
    fail_at, _, name = os.environ.get(FAIL_AT_STEP_ENV, "").partition(":")
    if fail_at.isdigit() and int(fail_at) == _steps:
        code = getattr(errno, name or "ENOSPC", errno.EIO)
        raise OSError(code, f"{os.strerror(code)} (injected)", None if path is None else str(path))
    if interrupt.pending and interrupt.abortable:
        interrupt.pending = False
        raise KeyboardInterrupt


class InterruptState:
    def __init__(self) -> None:
        self.pending = False
        self.abortable = True


interrupt = InterruptState()


@contextmanager
def held_sigint() -> Iterator[None]:
    """Hold SIGINT back: it aborts (rolls back) at the next step while staging, and waits
    until the transaction is finished once renaming has begun."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # e.g. a background job
    ):
        yield
        return

    def note(signum, frame):  # noqa: ARG001 - signal handler signature
        interrupt.pending = True

    previous = signal.signal(signal.SIGINT, note)
    interrupt.pending, interrupt.abortable = False, True
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupt.abortable = True
