"""Jinja2 for stack templates: the loaders (a template directory on disk, or files in memory),
the compiled-template cache, and error text that names the template file and line.

Disk templates, macros and includes are read through :func:`monostack.safeio.read_file`, so a
symlink in the template never pulls a file from outside into a project. Compiled templates are
kept in ``.git/monostack/jinja-*`` (:func:`bytecode_cache`), so ``new-project`` does not
compile the template on every run; so is a mark for each ``stack.yml`` text that passed its
checks (:func:`checks_marker`), so they are not redone either.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monostack.errors import UserError, not_utf8
from monostack.safeio import read_file
from monostack.template_params import to_project_dir

if TYPE_CHECKING:  # pragma: no cover
    import jinja2


def gh_expression(expr: str) -> str:
    """``{{ gh('secrets.X') }}`` renders the CI expression ``${{ secrets.X }}``, which Jinja2
    would otherwise try to evaluate itself."""
    return "${{ " + expr + " }}"


def error_text(exc: Exception) -> str:
    """A Jinja2 error's own message; other exceptions also say what they are."""
    import jinja2

    if isinstance(exc, jinja2.TemplateError | UserError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return not_utf8(exc)
    return f"{type(exc).__name__}: {exc}"


def template_line(exc: BaseException, source_path: Path) -> int | None:
    """Jinja2 rewrites tracebacks so template frames carry the template's own line numbers."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(source_path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _memory_loader(root: Path, files: Mapping[str, bytes]) -> jinja2.BaseLoader:
    """Templates from ``files``; each one's file name is its would-be path under ``root``, so
    error locations read as they do for a template on disk."""
    import jinja2

    def load(name: str):
        data = files.get(name)
        return None if data is None else _source(root, name, data)

    return jinja2.FunctionLoader(load)


def _source(root: Path, name: str, data: bytes) -> tuple[str, str, Callable[[], bool]]:
    """One template's source as Jinja2's FunctionLoader wants it; non-UTF-8 named by path."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{root / name}: {not_utf8(exc)}") from None
    return text, str(root / name), lambda: True


def in_template(root: Path, reader: Callable[[Path, str], Any], rel: str) -> Any:
    """A safe read below the template root, its errors naming the file by its full path."""
    try:
        return reader(root, rel)
    except UserError as exc:
        raise UserError(f"{root}/{exc.message}", file=f"{root}/{rel}") from None


def _disk_loader(root: Path, read: Mapping[str, bytes] | None = None) -> jinja2.BaseLoader:
    """Templates, macros and includes read through :func:`monostack.safeio.read_file`: a
    symlink in the template never pulls a file from outside into a project. ``read``: files
    already read from the folder in one pass (as safely), served as they are."""
    import jinja2

    def load(name: str) -> tuple[str, str, Callable[[], bool]] | None:
        if read is not None and name in read:
            return _source(root, name, read[name])
        if not os.path.lexists(root / name):
            return None
        return _source(root, name, in_template(root, read_file, name))

    return jinja2.FunctionLoader(load)


# Bump when make_environment's options change: the compiled templates depend on them.
_ENV_VERSION = 1


def make_environment(
    root: Path, files: Mapping[str, bytes] | None = None, read: Mapping[str, bytes] | None = None
) -> jinja2.Environment:
    import jinja2

    loader = _memory_loader(root, files) if files is not None else _disk_loader(root, read)
    env = jinja2.Environment(
        loader=loader,
        bytecode_cache=bytecode_cache(Path(root).parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - we render YAML and Python, not HTML
    )
    env.filters["project_dir"] = to_project_dir
    env.globals["gh"] = gh_expression
    env.globals["uuid4"] = _uuid4
    return env


def _uuid4() -> str:
    """``str(uuid.uuid4())``: 16 random bytes with the version (4) and variant (RFC 4122) bits
    set, written out here because the uuid module costs new-project more than this."""
    data = bytearray(os.urandom(16))
    data[6] = (data[6] & 0x0F) | 0x40
    data[8] = (data[8] & 0x3F) | 0x80
    h = data.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def bytecode_cache(repo_root: Path) -> Any:
    """Compiled templates kept in monostack's state folder in git (``.git/monostack/jinja-*``,
    beside the lock and the journal: never in the work tree, never committed), so
    ``new-project`` does not recompile the template every time. Jinja2 checks each entry
    against the template's source; entries are written atomically and a killed run's temporary
    is removed by the next one (:mod:`monostack.tempfiles`). None outside a git work tree or
    when the folder cannot be made: templates are then compiled each run."""

    from monostack.tempfiles import jinja_bytecode_cache

    folder = _cache_folder(repo_root)
    return None if folder is None else jinja_bytecode_cache(folder)


def _cache_folder(repo_root: Path) -> Path | None:
    import jinja2

    from monostack.repolock import state_dir

    state = state_dir(Path(repo_root))
    if state == Path(repo_root):
        return None
    folder = state / f"jinja-{jinja2.__version__}-{_ENV_VERSION}"
    try:
        if folder.is_symlink():
            return None  # never read or write compiled templates through a link
        folder.mkdir(exist_ok=True)
    except OSError:
        return None
    return folder


# Bump when the checks stack.yml gets on loading change (monostack.template_rules, param_from):
# a stack.yml that passed the old checks must be checked again.
CHECKS_VERSION = 2  # 2: parameters' kind (a literal default of its kind)


def checks_marker(repo_root: Path, stack_text: str) -> Path | None:
    """The empty file in the compiled-template cache whose presence says that a ``stack.yml``
    of exactly ``stack_text`` passed every check of :mod:`monostack.template_rules` (parsing
    its expressions, ReDoS-prone patterns, literal defaults): those results depend only on the
    text, this code and Jinja2's version (part of the folder's name), so ``new-project`` does
    not redo them every run. None where there is no cache."""
    import hashlib
    import sys

    folder = _cache_folder(repo_root)
    if folder is None:
        return None
    key = f"{CHECKS_VERSION} {sys.version_info[0]}.{sys.version_info[1]}\0{stack_text}"
    return folder / f"stack-checked-{hashlib.sha256(key.encode('utf-8')).hexdigest()}"


def checks_passed(marker: Path | None) -> bool:
    """Whether ``marker`` is there, as a regular file (a link or anything else: check again)."""
    import stat

    try:
        return marker is not None and stat.S_ISREG(os.lstat(marker).st_mode)
    except OSError:
        return False


def record_checks_passed(marker: Path | None) -> None:
    """Leave ``marker`` (empty, so a kill cannot leave half of it); never through a link."""
    if marker is None:
        return
    import contextlib

    # already there, or the cache is not writable: the checks simply run again next time
    with contextlib.suppress(OSError):
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))


def _cached(env: Any, kind: str, text: str, compile: Callable[[str], Any]) -> Any:
    """The template compiled from ``text`` by ``compile(name)``, through the environment's
    bytecode cache (the entry is checked against ``text``)."""
    import hashlib

    name = f"<{kind} " + hashlib.sha256(text.encode("utf-8")).hexdigest() + ">"
    cache = env.bytecode_cache
    bucket = cache.get_bucket(env, name, None, text)
    if bucket.code is None:
        bucket.code = compile(name)
        cache.set_bucket(bucket)
    return env.template_class.from_code(env, bucket.code, env.make_globals(None), None)


def compile_string(env: Any, text: str) -> Any:
    """``env.from_string(text)`` through the environment's bytecode cache, when it has one."""
    if env.bytecode_cache is None:
        return env.from_string(text)
    return _cached(env, "string", text, lambda name: env.compile(text, name))


def compile_expression(env: Any, expr: str) -> Any:
    """``env.compile_expression(expr, undefined_to_none=False)`` through the environment's
    bytecode cache, when it has one: ``when`` and ``skip`` conditions are evaluated on every
    ``new-project``, and compiling them cost more than evaluating them."""
    if env.bytecode_cache is None:
        return env.compile_expression(expr, undefined_to_none=False)
    from jinja2 import nodes
    from jinja2.environment import TemplateExpression
    from jinja2.parser import Parser

    def compile(name: str) -> Any:
        env.compile_expression(expr)  # refuses what Jinja2 refuses, with its own message
        # ... then the same template Jinja2 builds for it: ``result = <expr>``
        parsed = Parser(env, expr, state="variable").parse_expression()
        parsed.set_environment(env)
        body = [nodes.Assign(nodes.Name("result", "store"), parsed, lineno=1)]
        return env.compile(nodes.Template(body, lineno=1), name)

    return TemplateExpression(_cached(env, "expression", expr, compile), False)
