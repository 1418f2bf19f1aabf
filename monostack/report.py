"""Show check results three ways: a rich table for people, JUnit XML for CI test views, and
GitHub workflow-command annotations that pin each finding to its file and line in a PR.

Every check hands over :class:`~monostack.checks.CaseResult` objects; this module is the only
place that decides how they look, so all tasks report alike.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from monostack.checks import ERROR, INFO, WARNING, CaseResult, Finding

STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "SKIP": "yellow"}
SEVERITY_STYLE = {ERROR: "red", WARNING: "yellow", INFO: "cyan"}
ANNOTATION_COMMAND = {ERROR: "error", WARNING: "warning", INFO: "notice"}
TABLE_ROWS = 60  # above this many cases the table folds clean passing cases per check


def status(result: CaseResult) -> str:
    if result.skipped is not None:
        return "SKIP"
    return "FAIL" if result.failed else "PASS"


def summary_line(results: Sequence[CaseResult], title: str) -> str:
    """``test-all: 52 cases, 0 failed, 1 skipped``."""
    failed = sum(1 for r in results if r.failed)
    skipped = sum(1 for r in results if r.skipped is not None)
    n = len(results)
    return f"{title}: {n} case{'' if n == 1 else 's'}, {failed} failed, {skipped} skipped"


def strict_results(results: Sequence[CaseResult]) -> list[CaseResult]:
    """``--strict``: every warning becomes an error, so it fails its case everywhere (table,
    JUnit XML, annotations, exit code) alike."""
    from dataclasses import replace

    def promoted(f: Finding) -> Finding:
        return replace(f, severity=ERROR) if f.severity == WARNING else f

    return [replace(r, findings=[promoted(f) for f in r.findings]) for r in results]


def exit_code(results: Sequence[CaseResult]) -> int:
    """1 when any case holds an error finding, else 0 (warnings do not fail a run)."""
    return 1 if any(r.failed for r in results) else 0


# -- rich text ----------------------------------------------------------------------------------


def print_table(results: Sequence[CaseResult], title: str, console) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title, style="bold"), title_justify="left")
    table.add_column("check")
    table.add_column("case", overflow="fold")
    table.add_column("status")
    table.add_column("errors", justify="right")
    table.add_column("warnings", justify="right")
    table.add_column("seconds", justify="right")
    shown, passed = _table_rows(results)
    for r in shown:
        state = status(r)
        table.add_row(
            Text(r.check),
            Text(r.case),
            Text(state, style=STATUS_STYLE[state]),
            str(len(r.errors)),
            str(sum(1 for f in r.findings if f.severity == WARNING)),
            f"{r.seconds:.2f}",
        )
    listed = {r.check for r in shown}
    for check, cases in passed.items():
        more = " more" if check in listed else ""
        table.add_row(
            Text(check),
            Text(f"{len(cases)}{more} case{'s' if len(cases) != 1 else ''}, all clean"),
            Text("PASS", style=STATUS_STYLE["PASS"]),
            "0",
            "0",
            f"{sum(r.seconds for r in cases):.2f}",
        )
    console.print(table)


def _table_rows(results: Sequence[CaseResult]) -> tuple[list[CaseResult], dict]:
    """Every case, up to :data:`TABLE_ROWS`; beyond, clean passing cases are folded into one
    row per check (a 100-project run is read for what failed; JUnit keeps every case)."""
    if len(results) <= TABLE_ROWS:
        return list(results), {}
    shown, passed = [], {}
    for r in results:
        if status(r) == "PASS" and not r.findings:
            passed.setdefault(r.check, []).append(r)
        else:
            shown.append(r)
    return shown, passed


def _key(findings: Sequence[Finding]) -> tuple:
    return tuple(f.order() for f in findings)


def print_findings(results: Sequence[CaseResult], console) -> None:
    """Per case with something to say: each finding as ``location  severity  message``.

    A case whose findings repeat an earlier case of the same check word for word (render-matrix
    combinations that share a template bug) points at that case instead of repeating them.
    """
    from rich.text import Text

    seen: dict[tuple, str] = {}
    for r in results:
        if not r.findings and r.skipped is None:
            continue
        console.print(Text(f"{r.check} / {r.case}", style="bold"))
        if r.skipped is not None:
            console.print(Text(f"  skipped: {r.skipped}", style="yellow"))
        key = (r.check, _key(r.findings))
        if r.findings and key in seen:
            n = len(r.findings)
            console.print(Text(f"  the same {n} finding{'' if n == 1 else 's'} as {seen[key]}"))
            continue
        seen.setdefault(key, r.case)
        for f in r.findings:
            line = Text("  ")
            if f.location():
                line.append(f.location() + "  ")
            line.append(f.severity, style=SEVERITY_STYLE.get(f.severity, ""))
            line.append("  " + f.message)
            console.print(line)


# -- JUnit XML ----------------------------------------------------------------------------------

# Characters XML 1.0 cannot hold at all (tool output may carry ANSI escapes or NULs).
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)


def _finding_text(f: Finding) -> str:
    where = f"{f.location()}: " if f.location() else ""
    return f"{where}{f.severity}: {f.message}"


def junit_tree(results: Sequence[CaseResult], title: str):
    """``<testsuites>`` with one ``<testsuite>`` per check and one ``<testcase>`` per result."""
    import xml.etree.ElementTree as ET

    def totals(rs: Sequence[CaseResult]) -> dict[str, str]:
        return {
            "tests": str(len(rs)),
            "failures": str(sum(1 for r in rs if r.failed)),
            "errors": "0",
            "skipped": str(sum(1 for r in rs if r.skipped is not None)),
            "time": f"{sum(r.seconds for r in rs):.3f}",
        }

    root = ET.Element("testsuites", {"name": _xml_text(title), **totals(results)})
    checks = list(dict.fromkeys(r.check for r in results))
    for check in checks:
        members = [r for r in results if r.check == check]
        suite = ET.SubElement(root, "testsuite", {"name": _xml_text(check), **totals(members)})
        for r in members:
            case = ET.SubElement(
                suite,
                "testcase",
                {
                    "classname": _xml_text(r.check),
                    "name": _xml_text(r.case),
                    "time": f"{r.seconds:.3f}",
                },
            )
            if r.skipped is not None:
                ET.SubElement(case, "skipped", {"message": _xml_text(r.skipped)})
            elif r.failed:
                errors = r.errors
                first = errors[0].message.splitlines()[0] if errors[0].message else ""
                message = f"{len(errors)} error{'' if len(errors) == 1 else 's'}: {first}"
                failure = ET.SubElement(
                    case, "failure", {"message": _xml_text(message), "type": ERROR}
                )
                failure.text = _xml_text("\n".join(_finding_text(f) for f in errors))
            others = [f for f in r.findings if f.severity != ERROR]
            if others:
                out = ET.SubElement(case, "system-out")
                out.text = _xml_text("\n".join(_finding_text(f) for f in others))
    ET.indent(root)
    return ET.ElementTree(root)


def output_path(path: Path | str, what: str = "--junit-xml") -> Path:
    """``path`` as a file that can be written (parents created), or a UserError saying why not.

    Called before the checks run, so a typo does not cost a whole run.
    """
    from monostack.errors import UserError

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path}: is a directory; give a file path such as reports/x.xml")
    if os.path.lexists(path) and not _is_report(path):
        # e.g. --junit-xml monorepo.yml: never overwrite a file that is not an old report
        raise UserError(
            f"{what} {path}: exists and is not a JUnit XML report; give a new path such as "
            "reports/x.xml (monostack only overwrites its own reports)"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot create its folder ({exc.strerror})") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{what} {path}: not writable; choose another path")
    return path


def _is_report(path: Path) -> bool:
    """An existing regular file (not a link) that holds a JUnit XML report."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, 4096).lstrip(b"\xef\xbb\xbf").lstrip()
    except OSError:
        return False
    finally:
        os.close(fd)
    return head.startswith(b"<?xml") and (b"<testsuites" in head or b"<testsuite" in head)


def write_junit_xml(results: Sequence[CaseResult], title: str, path: Path | str) -> Path:
    from monostack.errors import UserError

    path = output_path(path)
    try:
        junit_tree(results, title).write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise UserError(f"--junit-xml {path}: cannot write it ({exc.strerror})") from None
    return path


# -- GitHub annotations -------------------------------------------------------------------------


def escape_data(text: str) -> str:
    """Workflow-command message escaping: ``%``, CR and LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Workflow-command property escaping: as for data, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(f: Finding, case: str) -> str:
    """``::error file=F,line=L,title=T::message`` for one finding."""
    props = []
    if f.file:
        props.append(f"file={escape_property(f.file)}")
        if f.line:
            props.append(f"line={f.line}")
    props.append(f"title={escape_property(f'{f.check} ({case})')}")
    command = ANNOTATION_COMMAND.get(f.severity, "notice")
    return f"::{command} {','.join(props)}::{escape_data(f.message)}"


def annotations(results: Sequence[CaseResult]) -> list[str]:
    """One annotation per distinct finding: the same problem found in many cases (a template
    bug in every render-matrix combination) is shown once, naming how many cases have it.
    GitHub shows only the first few annotations of a step, so repeats would hide the rest."""
    groups: dict[tuple, list[tuple[Finding, str]]] = {}
    for r in results:
        for f in r.findings:
            groups.setdefault((f.check, f.severity, f.file, f.line, f.message), []).append(
                (f, r.case)
            )
    lines = []
    for found in groups.values():
        f, case = found[0]
        if len(found) > 1:
            case = f"{case} and {len(found) - 1} more case{'s' if len(found) > 2 else ''}"
        lines.append(annotation(f, case))
    return lines


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


# -- all together -------------------------------------------------------------------------------


def emit(
    results: Sequence[CaseResult],
    *,
    title: str,
    junit_xml: Path | str | None = None,
    github: bool | None = None,
    stream: IO[str] | None = None,
    strict: bool = False,
) -> int:
    """Print the table, the findings and a one-line summary; write JUnit XML when asked; print
    GitHub annotations when ``github`` (default: when ``GITHUB_ACTIONS=true``).

    Returns the exit code: 1 if any case has an error finding, else 0.
    """
    from rich.console import Console
    from rich.text import Text

    if strict:
        results = strict_results(results)
        title = f"{title} (strict: warnings fail)"
    stream = stream if stream is not None else sys.stdout
    tty = stream.isatty() if hasattr(stream, "isatty") else False
    # Off a terminal (CI logs, files) make the console wide enough for the longest row, so
    # case names stay whole on one line (tables only take the width they need).
    longest = max((len(r.check) + len(r.case) for r in results), default=0)
    width = None if tty else max(100, longest + 50)
    console = Console(file=stream, width=width, highlight=False, soft_wrap=True)
    print_table(results, title, console)
    print_findings(results, console)
    if junit_xml:
        written = write_junit_xml(results, title, junit_xml)
        console.print(Text(f"JUnit XML written to {written}"))
    if github if github is not None else in_github_actions():
        console.file.flush()
        for line in annotations(results):
            stream.write(line + "\n")
        stream.flush()
    code = exit_code(results)
    console.print(Text(summary_line(results, title), style="bold red" if code else "bold green"))
    return code
