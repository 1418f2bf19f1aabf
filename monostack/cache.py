"""Remembered results: a case whose inputs did not change is not run again.

A case's key is a SHA-256 over everything that decides its outcome: the content of every file
it reads (a project's files, the template, ``monorepo.yml``, the root CI files), the checker
configurations (``.yamllint.yml``, ``zizmor.yml``, the ruff settings), and the versions of the
tools that judge it (monostack's own source, ruff, yamllint, check-jsonschema, zizmor,
databricks-bundles, Jinja2, PyYAML, Python). Nothing is keyed on a time stamp, so a change can
never hide behind an old result.

Entries live in ``.monostack-cache/`` at the repository root (it holds its own ``.gitignore``),
one small JSON file per key, written to a temporary file and renamed into place: concurrent runs
at worst write the same entry twice, and a killed run leaves no half-written entry (an unreadable
one is a miss). A temporary file names its writer's pid, so the next run removes one a killed
run left (:mod:`monostack.tempfiles`). The folder can be kept between CI runs
(``actions/cache``, ``Cache@2``); delete it at any time to start afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from monostack import filestat, tempfiles
from monostack.checks import CaseResult, Finding

CACHE_DIR = ".monostack-cache"
FORMAT = 1  # bump when the entry layout or the meaning of a key changes
TIMINGS_FILE = "timings.json"
DIGESTS_FILE = "file-digests.json"  # size, times and inode of each file with its digest
IGNORE_ALL = b"# monostack's result cache: safe to delete\n*\n"  # its .gitignore
SHARD_TIMINGS_GLOB = "timings-shard-*.json"
STALE_TEMP_SECONDS = 3600  # pid-less temp files (older versions) older than this are stale
SKIP_DIRS = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".ruff_cache",
        ".pytest_cache",
        CACHE_DIR,
    }
)
# Files that configure a checker: every key holds them (a new rule can change any case).
CONFIG_FILES = (
    ".yamllint",
    ".yamllint.yml",
    ".yamllint.yaml",
    "zizmor.yml",
    ".github/zizmor.yml",
    "pyproject.toml",
    "ruff.toml",
    ".ruff.toml",
)
# The third-party tools whose verdicts are cached: a new version may judge differently.
TOOL_PACKAGES = (
    "ruff",
    "yamllint",
    "check-jsonschema",
    "jsonschema",
    "zizmor",
    "databricks-bundles",
    "jinja2",
    "pyyaml",
)


# ----------------------------------------------------------------------------- fingerprints
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: str) -> str:
    """SHA-256 of a file's bytes; a symbolic link is refused (O_NOFOLLOW), never read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)


class Digests:
    """Content digests of repo paths (a file, or a directory's files recursively), memoised
    for one run. Symbolic links are hashed by their target text, never followed.

    With ``memo`` (a file in the cache folder), a file is not read again while its recorded
    digest holds by git's index rule (:mod:`monostack.filestat`), so a changed file is always
    read."""

    def __init__(self, root: Path, memo: Path | None = None):
        self.root = Path(root)
        self._memo: dict[str, str] = {}
        self._memo_path = memo
        self._known = _read_memo(memo) if memo is not None else {}
        self._seen: dict[str, list] = {}

    def of(self, rel: str) -> str:
        if rel not in self._memo:
            self._memo[rel] = self._digest(rel)
        return self._memo[rel]

    def of_all(self, rels: Iterable[str]) -> str:
        h = hashlib.sha256()
        for rel in sorted(set(rels)):
            h.update(f"{rel}\0{self.of(rel)}\n".encode())
        return h.hexdigest()

    def save(self) -> None:
        """Record the digests of this run's files (only when some changed)."""
        if self._memo_path is None or not self._seen:
            return
        files = {**self._known, **self._seen}
        body = json.dumps({"format": FORMAT, "files": files}, separators=(",", ":")).encode()
        write_atomic(self._memo_path, body)

    def _file(self, path: str, rel: str) -> str:
        if self._memo_path is None:
            return _file_sha(path)
        st = os.lstat(path)
        sig = filestat.signature(st)
        known = self._known.get(rel)
        if known is not None and known[:4] == sig:
            return known[4]
        digest = _file_sha(path)
        if filestat.settled(st):
            self._seen[rel] = [*sig, digest]
        return digest

    def _digest(self, rel: str) -> str:
        path = self.root / rel
        try:
            if path.is_symlink():
                return "link:" + os.readlink(path)
            if path.is_file():
                return self._file(str(path), rel)
            if not path.is_dir():
                return "absent"
        except OSError as exc:  # unreadable: never equal to a readable state
            return f"unreadable:{exc.errno}:{time.time_ns()}"
        h = hashlib.sha256(b"dir\n")
        for name, digest in self._walk(str(path), rel + "/"):
            h.update(f"{name.removeprefix(rel + '/')}\0{digest}\n".encode())
        return h.hexdigest()

    def _walk(self, path: str, prefix: str):
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield prefix, f"unreadable:{exc.errno}:{time.time_ns()}"
            return
        for entry in entries:
            name = prefix + entry.name
            try:
                if entry.is_symlink():
                    yield name, "link:" + os.readlink(entry.path)
                elif entry.is_dir():
                    if entry.name not in SKIP_DIRS:
                        yield from self._walk(entry.path, name + "/")
                elif entry.is_file():
                    yield name, self._file(entry.path, name)
            except OSError as exc:
                yield name, f"unreadable:{exc.errno}:{time.time_ns()}"


def _read_memo(path: Path) -> dict[str, list]:
    """The recorded file digests, {} when absent, damaged or of another format."""
    try:
        if path.parent.is_symlink():
            return {}  # never read through a link out of the repository
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("format") == FORMAT else None
    if not isinstance(files, dict):
        return {}
    return {
        rel: entry
        for rel, entry in files.items()
        if isinstance(entry, list) and len(entry) == 5 and isinstance(entry[4], str)
    }


def _package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def tool_fingerprint() -> str:
    """monostack's own source (the package in use, wherever it is installed), the checkers'
    versions and Python's: a new version of any may judge the same files differently."""
    import monostack

    package = Path(monostack.__file__).parent
    h = hashlib.sha256(f"format {FORMAT}\npython {sys.version}\n".encode())
    for name in TOOL_PACKAGES:
        h.update(f"{name} {_package_version(name)}\n".encode())
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def case_key(
    fingerprint: str, digests: Digests, check: str, case: str, inputs: Iterable[str], extra=""
) -> str:
    """The key of one case: what judges it, what it reads, and its own options."""
    h = hashlib.sha256(f"{fingerprint}\n{check}\n{case}\n{extra}\n".encode())
    h.update(digests.of_all(CONFIG_FILES).encode())
    h.update(digests.of_all(inputs).encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------- serialising
def result_to_json(result: CaseResult) -> dict:
    return {
        "check": result.check,
        "case": result.case,
        "seconds": result.seconds,
        "skipped": result.skipped,
        "findings": [
            [f.check, f.project, f.file, f.line, f.severity, f.message] for f in result.findings
        ],
    }


def result_from_json(data: Mapping) -> CaseResult:
    return CaseResult(
        check=str(data["check"]),
        case=str(data["case"]),
        findings=[Finding(*item) for item in data["findings"]],
        seconds=float(data["seconds"]),
        skipped=data["skipped"],
    )


# ------------------------------------------------------------------------------------ store
def _no_links_below(path: Path) -> None:
    """Refuse to write through a symbolic link anywhere from the cache folder down: a planted
    link must not send cache files out of the repository."""
    parts = path.parts
    start = parts.index(CACHE_DIR) if CACHE_DIR in parts else len(parts) - 1
    for i in range(start, len(parts)):
        here = Path(*parts[: i + 1])
        if here.is_symlink():
            raise OSError(f"{here} is a symbolic link; not writing the cache through it")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and one rename (never through a
    symbolic link inside the cache folder)."""
    _no_links_below(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _no_links_below(path)
    tempfiles.replace_atomically(path, lambda fh: fh.write(data))


class ResultCache:
    """Entries keyed by :func:`case_key`; ``enabled=False`` (``--no-cache``) reads and writes
    nothing. Any failure to read or write the cache only costs a re-run, never the run."""

    def __init__(self, root: Path, enabled: bool = True):
        self.dir = Path(root) / CACHE_DIR
        self.enabled = enabled
        self._fingerprint: str | None = None
        self._ignored = False  # the folder's .gitignore is known to be in place
        self.sweep()

    def sweep(self) -> None:
        """Remove the temporary files of killed runs (also under ``--no-cache``, and when
        every case is a hit and nothing is written): none outlives the next run."""
        if self.dir.is_dir() and not self.dir.is_symlink():
            tempfiles.sweep(self.dir, recursive=True)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = tool_fingerprint()
        return self._fingerprint

    def digests(self, root: Path) -> Digests:
        """Digests of ``root``'s files that reuse the ones recorded by earlier runs."""
        return Digests(root, self.dir / DIGESTS_FILE if self.enabled else None)

    def save_digests(self, digests: Digests) -> None:
        try:
            self._prepare()
            digests.save()
        except OSError:
            pass  # full disk, read-only checkout: only the next run is slower

    def _entry(self, key: str) -> Path:
        return self.dir / "results" / key[:2] / f"{key}.json"

    def get_value(self, key: str):
        """The JSON value stored under ``key``, or None."""
        if not self.enabled or self.dir.is_symlink():
            return None  # never read through a link out of the repository
        try:
            data = json.loads(self._entry(key).read_bytes())
        except (OSError, ValueError):
            return None  # absent, or not written by this format
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
            return None
        return data.get("value")

    def put_value(self, key: str, value) -> None:
        if not self.enabled:
            return
        payload = {"format": FORMAT, "key": key, "value": value}
        try:
            self._prepare()
            write_atomic(self._entry(key), json.dumps(payload, separators=(",", ":")).encode())
        except OSError:
            pass  # full disk, read-only checkout: the run itself still stands

    def get(self, key: str) -> list[CaseResult] | None:
        value = self.get_value(key)
        try:
            return [result_from_json(item) for item in value] if isinstance(value, list) else None
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, key: str, results: list[CaseResult]) -> None:
        self.put_value(key, [result_to_json(r) for r in results])

    def _prepare(self) -> None:
        """Create the folder with its own ``.gitignore`` (so it is ignored in any repo), and
        sweep temp files of older monostack versions (their names carry no pid)."""
        ignore = self.dir / ".gitignore"
        if not self._ignored:
            _no_links_below(ignore)
            self.dir.mkdir(parents=True, exist_ok=True)
            _no_links_below(ignore)
            if not ignore.is_file() or ignore.read_bytes() != IGNORE_ALL:
                # in place, in one write: a temporary file beside it would not be ignored yet,
                # and a kill between open and write leaves an empty file the next run rewrites
                fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
                try:
                    os.write(fd, IGNORE_ALL)
                finally:
                    os.close(fd)
            self._ignored = True
        tempfiles.sweep_stale(self.dir.glob("results/*/.tmp-*.part"), STALE_TEMP_SECONDS)

    # -- recorded timings, for balancing shards ------------------------------------------
    def timings(self, name: str = TIMINGS_FILE) -> dict[str, float]:
        """Seconds last recorded per ``check/case`` (read even under ``--no-cache``: they only
        balance shards, they never stand in for a result)."""
        try:
            data = json.loads((self.dir / name).read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: float(v) for k, v in data.items() if isinstance(v, int | float)}

    def record_timings(self, results: Iterable[CaseResult], name: str = TIMINGS_FILE) -> None:
        """Remember how long each case took. A shard records into its own file (``name``),
        which :func:`merge_caches` folds in later: the timings every shard splits by must
        not change between shards of one run."""
        ran = {timing_key(r.check, r.case): round(r.seconds, 3) for r in results if not r.skipped}
        if not ran:
            return
        merged = {**self.timings(name), **ran}
        try:
            self._prepare()
            body = json.dumps(merged, sort_keys=True, indent=0).encode()
            write_atomic(self.dir / name, body)
        except OSError:
            pass


def timing_key(check: str, case: str) -> str:
    return f"{check}/{case}"


def merge_caches(dest: Path, sources: Iterable[Path]) -> int:
    """Fold the cache folders of several CI shards into ``dest`` (entries are named by their
    key, so copies never clash; recorded timings are merged). Returns the entries added."""
    target = ResultCache(Path(dest).parent)
    target.dir = Path(dest)
    added = 0
    timings: dict[str, float] = target.timings()
    for source in [Path(dest), *sources]:
        other = ResultCache(Path(source).parent)
        other.dir = Path(source)
        timings.update(other.timings())
        for shard_file in sorted(Path(source).glob(SHARD_TIMINGS_GLOB)):
            timings.update(other.timings(shard_file.name))
        if Path(source) == Path(dest):
            continue
        for entry in sorted((Path(source) / "results").glob("*/*.json")):
            into = Path(dest) / "results" / entry.parent.name / entry.name
            if not into.exists():
                write_atomic(into, entry.read_bytes())
                added += 1
    target._prepare()
    for shard_file in Path(dest).glob(SHARD_TIMINGS_GLOB):
        shard_file.unlink()
    write_atomic(Path(dest) / TIMINGS_FILE, json.dumps(timings, sort_keys=True, indent=0).encode())
    return added
