"""The team's own checks: commands declared once in ``monorepo.yml`` that ``test-all`` runs.

A platform team adds checks the built-in ones cannot know about (a data-contract test, a
notebook smoke import, a naming policy). Each is a command, run once per selected project (with
the project directory as working directory) or once for the repository (with the selected
projects passed in). Its exit code and output become findings in the same table, JUnit XML and
annotations as the built-in checks.

Three steps, so each can be tested alone: :func:`parse_extra_checks` validates the declaration,
:func:`plan_extra_checks` decides which commands to run (selection, placeholders, environment)
and verifies that each one can start, and :func:`run_extra_checks` runs the plan.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monostack.checks import ERROR, MONOREPO, WARNING, CaseResult, Finding
from monostack.errors import UserError

CONFIG_KEY = "extra_checks"
SCOPES = ("project", "repo")
SEVERITIES = (ERROR, WARNING)
DEFAULT_TIMEOUT = 1800  # seconds; a hung check must not hold CI until the job's own limit
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Names the built-in checks (and the runner's slot for these) already use.
RESERVED_NAMES = ("lint", "render-matrix", "bundle-validate", "sync-workflows", "extra-checks")
# What a failing check's finding keeps of its output: the end, where the failure usually is.
OUTPUT_LINES = 80
OUTPUT_CHARS = 8000

# Placeholders in `run`. The plural ones (repo scope) stand for one argument per project.
SINGLE_PLACEHOLDERS = {
    "project": ("project", "the project's name"),
    "project_dir": ("project", "the project's directory (absolute)"),
    "root": (None, "the repository root (absolute)"),
    "check": (None, "the check's name"),
}
LIST_PLACEHOLDERS = {"projects", "project_dirs"}
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


@dataclass(frozen=True)
class ExtraCheck:
    """One declared check, validated."""

    name: str
    run: tuple[str, ...]  # argv, before placeholders are filled in
    scope: str = "project"
    when_exists: str | None = None  # glob under the project: run only where it matches
    inputs: tuple[str, ...] = ()  # repo globs whose change re-runs it on every project
    timeout: float = DEFAULT_TIMEOUT
    severity: str = ERROR
    source: str = "monorepo.yml"  # the file it was declared in, for messages
    text: str = ""  # `run` as declared, for messages

    @property
    def where(self) -> str:
        return f"{self.source}: {CONFIG_KEY} {self.name!r}"

    @property
    def command(self) -> str:
        return self.text or shlex.join(self.run)


# -- parsing ------------------------------------------------------------------------------------

_KEYS = ("name", "run", "scope", "when_exists", "inputs", "timeout", "severity")


def _placeholders(arg: str) -> list[str]:
    return [m.group(1) for m in _PLACEHOLDER.finditer(arg) if m.group(1) is not None]


def _parse_run(value: Any, where: str, scope: str) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise UserError(f"{where}: run: cannot split {value!r} into words ({exc})") from None
    elif isinstance(value, list) and all(isinstance(a, str) for a in value):
        argv = list(value)
    else:
        raise UserError(f"{where}: run: expected a command line or a list of words, got {value!r}")
    if not argv or not argv[0].strip():
        raise UserError(f"{where}: run: is empty; give the command to run, e.g. python -m pytest")
    for arg in argv:
        for name in _placeholders(arg):
            if name in LIST_PLACEHOLDERS:
                if scope != "repo":
                    raise UserError(
                        f"{where}: run: {{{name}}} is only for scope: repo; a project check "
                        "gets {project} and {project_dir}"
                    )
                if arg != f"{{{name}}}":
                    raise UserError(
                        f"{where}: run: {{{name}}} must be a word of its own (it stands for "
                        f"one argument per project), not part of {arg!r}"
                    )
            elif name not in SINGLE_PLACEHOLDERS:
                known = ", ".join(f"{{{n}}}" for n in (*SINGLE_PLACEHOLDERS, *LIST_PLACEHOLDERS))
                raise UserError(
                    f"{where}: run: unknown placeholder {{{name}}}; use one of {known} "
                    "(write {{ and }} for literal braces)"
                )
            elif SINGLE_PLACEHOLDERS[name][0] == "project" and scope == "repo":
                raise UserError(
                    f"{where}: run: {{{name}}} names one project, but scope: repo runs once; "
                    "use {projects} or {project_dirs}"
                )
    return tuple(argv)


def _parse_one(item: Any, index: int, source: str, seen: set[str]) -> ExtraCheck:
    where = f"{source}: {CONFIG_KEY}[{index}]"
    if not isinstance(item, dict):
        raise UserError(f"{where}: expected a mapping with name and run, got {item!r}")
    unknown = [k for k in item if k not in _KEYS]
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(_KEYS)}")
    name = item.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise UserError(
            f"{where}: name: {name!r} is not valid; use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    where = f"{source}: {CONFIG_KEY} {name!r}"
    if name.casefold() in (n.casefold() for n in RESERVED_NAMES):
        raise UserError(f"{where}: name: taken by a built-in check; choose another name")
    if name.casefold() in seen:
        raise UserError(f"{where}: name: declared twice; give each check its own name")
    seen.add(name.casefold())
    if "run" not in item:
        raise UserError(f"{where}: missing required key 'run' (the command to run)")
    scope = item.get("scope", "project")
    if scope not in SCOPES:
        raise UserError(f"{where}: scope: {scope!r} is not allowed; choose one of: project, repo")
    severity = item.get("severity", ERROR)
    if severity not in SEVERITIES:
        raise UserError(
            f"{where}: severity: {severity!r} is not allowed; choose one of: error, warning"
        )
    timeout = item.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UserError(f"{where}: timeout: expected a number of seconds above 0, got {timeout!r}")
    when_exists = item.get("when_exists")
    if when_exists is not None:
        if scope == "repo":
            raise UserError(f"{where}: when_exists: only applies to scope: project")
        if not isinstance(when_exists, str) or not when_exists.strip():
            raise UserError(f"{where}: when_exists: expected a glob such as contracts/*.yml")
        if when_exists.startswith("/") or ".." in Path(when_exists).parts:
            raise UserError(f"{where}: when_exists: {when_exists!r} must stay inside the project")
    inputs = item.get("inputs", [])
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(g, str) and g for g in inputs):
        raise UserError(f"{where}: inputs: expected a list of repository globs, got {inputs!r}")
    return ExtraCheck(
        name=name,
        run=_parse_run(item["run"], where, scope),
        scope=scope,
        when_exists=when_exists,
        inputs=tuple(inputs),
        timeout=float(timeout),
        severity=severity,
        source=source,
        text=item["run"] if isinstance(item["run"], str) else "",
    )


def parse_extra_checks(data: Any, source: str = "monorepo.yml") -> tuple[ExtraCheck, ...]:
    """Validate a list of check declarations; raise a UserError naming the first fault."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise UserError(
            f"{source}: {CONFIG_KEY}: expected a list of checks (or, in monorepo.yml, the path "
            f"of a file holding that list), got {data!r}"
        )
    seen: set[str] = set()
    return tuple(_parse_one(item, i, source, seen) for i, item in enumerate(data))


def checks_file_problem(value: str) -> str | None:
    """Why ``value`` cannot name the checks file (None if it can)."""
    path = Path(value)
    if path.is_absolute() or ".." in path.parts or not value.strip():
        return "give a path inside the repository, relative to monorepo.yml, e.g. ci/checks.yml"
    return None


def load_extra_checks(root: Path, declared: Any) -> tuple[ExtraCheck, ...]:
    """The checks of ``monorepo.yml``'s ``extra_checks``: parsed already, or read from the file
    it names (which holds the same list, or a mapping with that list under ``extra_checks``)."""
    if not isinstance(declared, str):
        return tuple(declared or ())
    from monostack.yamlutil import load_yaml_file

    root = Path(root)
    path = root / declared
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except OSError:
        inside = False
    if not inside:
        raise UserError(
            f"monorepo.yml: {CONFIG_KEY}: {declared!r} leads outside the repository; "
            "keep the checks file inside it"
        )
    if not path.is_file():
        raise UserError(
            f"monorepo.yml: {CONFIG_KEY}: {declared} not found; create it or fix the path"
        )
    data = load_yaml_file(path, declared)
    if isinstance(data, dict) and set(data) == {CONFIG_KEY}:
        data = data[CONFIG_KEY]
    return parse_extra_checks(data, declared)


# -- planning -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """One command to run: the check, the case it reports as, and how to start it."""

    check: ExtraCheck
    case: str
    argv: tuple[str, ...]
    cwd: str
    env: tuple[tuple[str, str], ...]  # added to the environment monostack runs in


@dataclass
class ExtraPlan:
    invocations: list[Invocation] = field(default_factory=list)
    skipped: list[CaseResult] = field(default_factory=list)  # repo checks with nothing to do
    names: list[str] = field(default_factory=list)  # every check, in declaration order

    def __bool__(self) -> bool:
        return bool(self.invocations or self.skipped)


def _fill(argv: Iterable[str], values: dict[str, str], lists: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for arg in argv:
        name = arg[1:-1]
        if name in lists and arg == f"{{{name}}}":
            out.extend(lists[name])
            continue
        out.append(
            _PLACEHOLDER.sub(
                lambda m: m.group(0)[0] if m.group(1) is None else values[m.group(1)], arg
            )
        )
    return out


def search_path() -> str:
    """PATH for the checks: the directory of the Python running monostack first, so ``python``,
    ``pytest`` and other tools of its virtual environment are found even when it is not
    activated (``.venv/bin/invoke test-all``)."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def start_problem(program: str, cwd: str, path: str) -> str | None:
    """Why ``program`` cannot be started from ``cwd`` (None if it can)."""
    if os.sep in program or (os.altsep and os.altsep in program):
        full = Path(cwd, program)
        if not full.is_file():
            return f"{program!r} does not exist (looked in {cwd})"
        if not os.access(full, os.X_OK):
            return f"{program!r} is not executable; chmod +x it or run it with its interpreter"
        return None
    if shutil.which(program, path=path) is None:
        return f"{program!r} is not a command found on PATH"
    return None


def _matches(project_path: Path, pattern: str) -> bool:
    return any(True for _ in project_path.glob(pattern))


def _input_changed(check: ExtraCheck, changed: set[str] | None) -> bool:
    if changed is None:
        return False
    patterns = [*check.inputs, check.source]
    return any(fnmatch.fnmatchcase(p, g) or p == g.rstrip("/") for p in changed for g in patterns)


def plan_extra_checks(
    root: Path,
    checks: Iterable[ExtraCheck],
    selected: list,
    every: list,
    changed: set[str] | None = None,
) -> ExtraPlan:
    """Which commands to run: ``selected`` projects (``every`` selectable project for a check
    whose declaration or ``inputs`` changed since the ``--changed-since`` ref, ``changed``).

    Raises a UserError, before anything runs, when a command cannot start: one error naming the
    check and the command, rather than the same failure in every project.
    """
    root = Path(root).resolve()
    path = search_path()
    plan = ExtraPlan()
    for check in checks:
        plan.names.append(check.name)
        projects = every if _input_changed(check, changed) else selected
        if check.when_exists:
            projects = [p for p in projects if _matches(Path(p.path), check.when_exists)]
        base = {"root": str(root), "check": check.name}
        env = {"MONOSTACK_ROOT": str(root), "MONOSTACK_CHECK": check.name, "PATH": path}
        if check.scope == "repo":
            if not projects:
                plan.skipped.append(
                    CaseResult(check=check.name, case=MONOREPO, skipped="no project selected")
                )
                continue
            dirs = [str(root / p.rel) for p in projects]
            names = [p.name for p in projects]
            lists = {"projects": names, "project_dirs": dirs}
            extra = {
                "MONOSTACK_PROJECTS": " ".join(names),
                "MONOSTACK_PROJECT_DIRS": " ".join(dirs),
            }
            jobs = [(MONOREPO, str(root), base, lists, {**env, **extra})]
        else:
            jobs = []
            for p in projects:
                where = str(root / p.rel)
                values = {**base, "project": p.name, "project_dir": where}
                extra = {"MONOSTACK_PROJECT": p.name, "MONOSTACK_PROJECT_DIR": where}
                jobs.append((p.name, where, values, {}, {**env, **extra}))
        for case, cwd, values, lists, job_env in jobs:
            argv = _fill(check.run, values, lists)
            problem = start_problem(argv[0], cwd, path)
            if problem:
                raise UserError(
                    f"{check.where}: cannot start {check.command!r}: {problem}; install it or "
                    "fix the check's run: command"
                )
            plan.invocations.append(
                Invocation(check, case, tuple(argv), cwd, tuple(sorted(job_env.items())))
            )
    return plan


# -- running ------------------------------------------------------------------------------------


def _tail(output: str) -> str:
    """The end of a command's output, ANSI colour codes dropped, marked when cut."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output).rstrip()
    lines = text.splitlines()
    cut = max(0, len(lines) - OUTPUT_LINES)
    text = "\n".join(lines[cut:])
    if len(text) > OUTPUT_CHARS:
        text = text[-OUTPUT_CHARS:].split("\n", 1)[-1]
        cut = len(lines) - len(text.splitlines())
    return (f"[... {cut} earlier lines cut]\n" if cut else "") + text


# Commands running now, and whether the run is being stopped: an interrupted run stops them all
# (each has its own process group, so a Ctrl-C at the terminal does not reach them by itself)
# and starts no more.
_RUNNING: set[subprocess.Popen] = set()
_LOCK = threading.Lock()
_STOPPING = threading.Event()


def _kill(proc: subprocess.Popen) -> None:
    """Stop the command and everything it started (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(OSError):
            proc.kill()


def run_invocation(inv: Invocation) -> CaseResult:
    """Run one command; its exit code and output become the case's findings."""
    check = inv.check
    start = time.perf_counter()

    def result(severity: str | None, message: str = "") -> CaseResult:
        findings = [Finding(check.name, inv.case, "", None, severity, message)] if severity else []
        return CaseResult(check.name, inv.case, findings, time.perf_counter() - start)

    try:
        with _LOCK:
            if _STOPPING.is_set():
                raise InterruptedError("the run was interrupted")
            proc = subprocess.Popen(
                inv.argv,
                cwd=inv.cwd,
                env={**os.environ, **dict(inv.env)},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a timeout stops its children
            )
            _RUNNING.add(proc)
    except InterruptedError:
        raise
    except OSError as exc:
        return result(ERROR, f"cannot start {check.command!r}: {exc.strerror or exc}")
    try:
        raw, _ = proc.communicate(timeout=check.timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raw, _ = proc.communicate()
        output = _tail(raw.decode("utf-8", "replace"))
        limit = f"{check.timeout:g}"
        message = f"{check.command!r} did not finish within {limit} s (timeout) and was stopped"
        return result(check.severity, message + (f"; its output:\n{output}" if output else ""))
    except BaseException:
        _kill(proc)
        proc.wait()
        raise
    finally:
        with _LOCK:
            _RUNNING.discard(proc)
    if proc.returncode == 0:
        return result(None)
    output = _tail(raw.decode("utf-8", "replace"))
    code = proc.returncode
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    message = f"{check.command!r} {how}" + (f"; its output:\n{output}" if output else "")
    return result(check.severity, message)


def _stop_all() -> None:
    with _LOCK:
        _STOPPING.set()
        running = list(_RUNNING)
    for proc in running:
        _kill(proc)


@contextlib.contextmanager
def _stop_children_on_exit():
    """Interrupted (Ctrl-C, or SIGTERM from a CI runner cancelling the job): stop every running
    command and start no other before leaving, so none is left behind."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = None
    if in_main:

        def on_term(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        previous = signal.signal(signal.SIGTERM, on_term)
    _STOPPING.clear()
    try:
        yield
    except BaseException:
        _stop_all()
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def run_extra_checks(plan: ExtraPlan, jobs: int | None = None) -> list[CaseResult]:
    """Run every invocation of ``plan``, ``jobs`` at a time (default: one per CPU); results in
    declaration order of the checks, each check's cases by name."""
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(jobs or os.cpu_count() or 1, len(plan.invocations) or 1))
    if workers == 1:
        with _stop_children_on_exit():
            results = [run_invocation(inv) for inv in plan.invocations]
    else:  # threads suffice: the work happens in the child processes
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            with _stop_children_on_exit():
                results = list(pool.map(run_invocation, plan.invocations))
        finally:  # after the commands were stopped, so waiting for the threads is short
            pool.shutdown(wait=True, cancel_futures=True)
    order = {name: i for i, name in enumerate(plan.names)}
    results += plan.skipped
    return sorted(results, key=lambda r: (order.get(r.check, len(order)), r.case))
