"""Progress lines while checks run: a live spinner on a terminal, plain lines in logs."""

from __future__ import annotations

import sys
from typing import IO, Any

from monostack.checks import CaseResult


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start(self, check: str, detail: str) -> None:
        return None

    def done(self, check: str, results: list[CaseResult], seconds: float) -> None:
        return None

    def advance(self, check: str, done: int, total: int) -> None:
        return None


def _outcome(results: list[CaseResult]) -> str:
    failed = sum(1 for r in results if r.failed)
    skipped = sum(1 for r in results if r.skipped is not None)
    text = f"{len(results)} case{'s' if len(results) != 1 else ''}, {failed} failed"
    return text + (f", {skipped} skipped" if skipped else "")


class _Plain(_Quiet):
    """``running lint...`` / ``lint: 3 cases, 0 failed (1.2 s)`` lines, for logs and CI."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def start(self, check: str, detail: str) -> None:
        self.stream.write(f"running {check}{detail}...\n")
        self.stream.flush()

    def done(self, check: str, results: list[CaseResult], seconds: float) -> None:
        self.stream.write(f"{check}: {_outcome(results)} ({seconds:.1f} s)\n")
        self.stream.flush()


class _Rich(_Quiet):
    """A live spinner per check on a terminal; removed when the run ends."""

    def __init__(self, stream: IO[str]):
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(finished_text="[green]done"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(file=stream, stderr=stream is sys.stderr),
            transient=True,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, check: str, detail: str) -> None:
        self.tasks[check] = self.progress.add_task(f"{check}{detail}", total=1)

    def advance(self, check: str, done: int, total: int) -> None:
        self.progress.update(self.tasks[check], description=f"{check} ({done}/{total})")

    def done(self, check: str, results: list[CaseResult], seconds: float) -> None:
        if check not in self.tasks:  # finished without running (skipped)
            self.start(check, "")
        self.progress.update(
            self.tasks[check], completed=1, description=f"{check}: {_outcome(results)}"
        )


def make_progress(mode: str | None, stream: IO[str] | None = None):
    """``auto`` (rich on a terminal, plain lines otherwise), ``rich``, ``plain`` or None/off."""
    stream = stream or sys.stderr
    if mode in (None, "off", "quiet"):
        return _Quiet()
    if mode == "auto":
        mode = "rich" if stream.isatty() else "plain"
    if mode == "rich":
        return _Rich(stream)
    if mode == "plain":
        return _Plain(stream)
    raise ValueError(f"unknown progress mode {mode!r}")
