"""The stack template: ``stack_template/stack.yml`` plus the Jinja2 files it governs.

Layout of a template directory::

    stack.yml      version, parameters, file rules
    macros/        shared Jinja2 macros ({% import "macros/x.j2" as x %}); never output
    project/       rendered once per project, into projects/<project_dir>/
    monorepo/      rendered once for the whole repo, into the repo root (root CI files)

Rendering is pure: answers in, ``{relative path: bytes}`` out. Writing a tree is
:mod:`monostack.treeio`'s job. Path names are Jinja2 too; a path component that renders empty
drops the file. Files ending ``.j2`` are rendered (the suffix is removed); all others are copied
byte for byte.

A template is read from its directory (:func:`load_template`) or from an in-memory copy of one,
e.g. a git tree read back from the object database (:func:`load_template_files`), which is how
``update-projects`` renders the template a project was born with.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from monostack.errors import UserError, located, not_utf8, short
from monostack.safeio import check_no_links, list_files, read_file
from monostack.template_rules import (
    ENGINE_NAMES,
    check_expression,
    check_literal_default,
    check_names,
    nested_quantifier,
)
from monostack.yamlutil import load_yaml_file, load_yaml_text

if TYPE_CHECKING:  # pragma: no cover
    import jinja2

    from monostack.config import MonorepoConfig

STACK_FILE = "stack.yml"
PROJECT_PART = "project"
MONOREPO_PART = "monorepo"
MACROS_DIR = "macros"
TEMPLATE_SUFFIX = ".j2"

# Per the spec: 3+ characters, no space, dot, slash or backslash.
PROJECT_NAME_PATTERN = r"^[^ .\\/]{3,}$"
# Names the engine sets itself; stack.yml may not declare them.
RESERVED_NAMES = ("project_dir", "monorepo", "template_version")

Tree = dict[str, bytes]

_PARAM_KEYS = (
    "type",
    "description",
    "default",
    "choices",
    "pattern",
    "pattern_message",
    "when",
    "when_message",
    "computed",
)
_TYPES = ("str", "bool")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def to_project_dir(name: str) -> str:
    """Directory form of a project name: keep ``[A-Za-z0-9_-]``, then ``-`` becomes ``_``.

    ``my-proj`` and ``my_proj`` therefore share ``projects/my_proj``; callers must refuse the
    second one.
    """
    return re.sub(r"[^A-Za-z0-9_-]", "", name).replace("-", "_")


def gh_expression(expr: str) -> str:
    """``{{ gh('secrets.X') }}`` renders the CI expression ``${{ secrets.X }}``, which Jinja2
    would otherwise try to evaluate itself."""
    return "${{ " + expr + " }}"


class InvalidAnswer(UserError):
    """A value a parameter does not accept (type, choices or pattern)."""


class NotApplicable(UserError):
    """An answer was given to a parameter whose ``when`` is false."""

    def __init__(self, name: str, when: str, why: str | None = None) -> None:
        reason = why or f"it needs: {when}"
        super().__init__(f"parameter {name!r} does not apply here ({reason}); leave it out")
        self.name = name


@dataclass(frozen=True)
class Parameter:
    """One question of the template. ``default`` may be a Jinja2 expression over earlier
    parameters and ``monorepo``; ``when`` is a Jinja2 expression saying whether it applies."""

    name: str
    type: str = "str"
    description: str = ""
    default: Any = None
    choices: tuple[Any, ...] | None = None
    pattern: str | None = None
    pattern_message: str | None = None
    when: str | None = None
    when_message: str | None = None  # why it does not apply when `when` is false, and what to do
    computed: bool = False

    @property
    def is_choice(self) -> bool:
        """A parameter render-matrix enumerates: a bool or one with fixed choices."""
        return not self.computed and (self.type == "bool" or self.choices is not None)

    def domain(self) -> tuple[Any, ...]:
        if self.type == "bool":
            return (False, True)
        return tuple(self.choices or ())


@dataclass(frozen=True)
class SkipRule:
    """Source paths (fnmatch globs, ``*`` crosses ``/``) left out when ``when`` is true."""

    when: str
    paths: tuple[str, ...]


@dataclass
class StackTemplate:
    root: Path
    version: str
    parameters: dict[str, Parameter]
    skip_rules: tuple[SkipRule, ...] = ()
    files: Mapping[str, bytes] | None = None  # in-memory sources (paths under root), or disk
    _env: Any = field(default=None, repr=False)
    _path_cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _expr_cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _files_cache: dict[str, list[str]] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ jinja
    @property
    def env(self) -> jinja2.Environment:
        if self._env is None:
            self._env = make_environment(self.root, self.files)
        return self._env

    def _eval(self, expr: str, context: Mapping[str, Any], where: str) -> Any:
        try:
            compiled = self._expr_cache.get(expr)
            if compiled is None:
                compiled = self._expr_cache[expr] = self.env.compile_expression(
                    expr, undefined_to_none=False
                )
            return compiled(**context)
        except Exception as exc:  # TemplateError, or what the expression raised (1/0, ...)
            raise UserError(
                f"{self.stack_file}: {where}: {expr!r}: {_why(exc)}", file=self.stack_file
            ) from None

    def _render_string(self, text: str, context: Mapping[str, Any], where: str) -> str:
        try:
            compiled = self._path_cache.get(text)
            if compiled is None:
                compiled = self._path_cache[text] = compile_string(self.env, text)
            return compiled.render(**context)
        except Exception as exc:
            raise UserError(f"{where}: {_why(exc)}") from None

    @property
    def stack_file(self) -> str:
        return str(self.root / STACK_FILE)

    # ---------------------------------------------------------------- answers
    def base_context(self, monorepo: MonorepoConfig) -> dict[str, Any]:
        return {"monorepo": monorepo.as_context(), "template_version": self.version}

    def resolve_answers(self, given: Mapping[str, Any], monorepo: MonorepoConfig) -> dict[str, Any]:
        """Turn user-given answers into a full, validated answer set, in declaration order.

        Unknown names, answers to parameters that do not apply or are computed, values outside
        the choices and pattern failures are all UserErrors naming the parameter.
        """
        unknown = [k for k in given if k not in self.parameters]
        if unknown:
            raise UserError(
                f"unknown template parameter {short(unknown[0])}; "
                f"parameters of {self.stack_file}: {', '.join(self.parameters)}"
            )
        context = self.base_context(monorepo)
        answers: dict[str, Any] = {}
        for param in self.parameters.values():
            applies = param.when is None or bool(
                self._eval(param.when, context, f"parameters.{param.name}.when")
            )
            if param.name in given and not applies:
                raise NotApplicable(param.name, param.when or "", param.when_message)
            if param.name in given and param.computed:
                raise UserError(
                    f"parameter {param.name!r} is computed by the template; "
                    f"change its default in {self.stack_file} instead"
                )
            if param.name in given:
                value = coerce(param, given[param.name], f"parameter {param.name!r}")
            elif param.default is None:
                raise UserError(
                    f"parameter {param.name!r} is required; pass it "
                    f"(e.g. --answer {param.name}=VALUE)"
                )
            else:
                value = coerce(
                    param, self._default(param, context), f"default of parameter {param.name!r}"
                )
            validate_value(param, value)
            answers[param.name] = value
            context[param.name] = value
            if param.name == "project_name":
                answers["project_dir"] = context["project_dir"] = to_project_dir(value)
        return answers

    def _default(self, param: Parameter, context: Mapping[str, Any]) -> Any:
        if isinstance(param.default, str) and ("{{" in param.default or "{%" in param.default):
            return self._render_string(
                param.default, context, f"{self.stack_file}: parameters.{param.name}.default"
            )
        return param.default

    def choice_parameters(self) -> list[Parameter]:
        return [p for p in self.parameters.values() if p.is_choice]

    def iter_choice_combinations(
        self, base: Mapping[str, Any], monorepo: MonorepoConfig
    ) -> Iterator[dict[str, Any]]:
        """Every distinct valid answer set over the choice parameters, ``base`` supplying the
        rest (e.g. ``project_name``). Combinations where a parameter does not apply collapse
        onto its default and leave it out, so each yielded answer set is distinct and
        resolve_answers accepts it as given."""
        choice = self.choice_parameters()
        seen: set[tuple] = set()
        for values in itertools.product(*(p.domain() for p in choice)):
            given = dict(base)
            given.update({p.name: v for p, v in zip(choice, values, strict=True)})
            try:
                resolved = self.resolve_recorded(given, monorepo)
            except InvalidAnswer:
                continue  # e.g. a derived default failing its pattern: not a valid combination
            key = tuple(resolved[p.name] for p in choice)
            if key not in seen:
                seen.add(key)
                context = {**self.base_context(monorepo), **resolved}
                yield {
                    p.name: resolved[p.name]
                    for p in choice
                    if p.when is None or self._eval(p.when, context, f"parameters.{p.name}.when")
                }

    def resolve_recorded(
        self, recorded: Mapping[str, Any], monorepo: MonorepoConfig
    ) -> dict[str, Any]:
        """resolve_answers for a recorded answer set (``.stack-answers.yml``): derived and
        computed values, and answers to parameters that do not apply, are recomputed."""
        given = {
            k: v
            for k, v in recorded.items()
            if k in self.parameters and not self.parameters[k].computed
        }
        while True:
            try:
                return self.resolve_answers(given, monorepo)
            except NotApplicable as exc:
                given.pop(exc.name)

    # -------------------------------------------------------------- rendering
    def render_project(
        self,
        answers: Mapping[str, Any],
        monorepo: MonorepoConfig,
        sources: dict[str, str] | None = None,
    ) -> Tree:
        """Render the per-project part; paths are relative to ``projects/<project_dir>/``.

        ``sources``, when given, receives each rendered path's template file (relative to the
        template root), so checks can point at the file to fix.
        """
        context = self.base_context(monorepo)
        context.update(answers)
        return self._render_part(PROJECT_PART, context, sources)

    def render_monorepo(
        self, monorepo: MonorepoConfig, sources: dict[str, str] | None = None
    ) -> Tree:
        """Render the monorepo part; paths are relative to the repo root."""
        return self._render_part(MONOREPO_PART, self.base_context(monorepo), sources)

    def source_files(self, part: str) -> list[str]:
        """The part's files, read once per template object (render-matrix renders many times)."""
        if part not in self._files_cache and self.files is not None:
            prefix = f"{part}/"
            self._files_cache[part] = sorted(
                k.removeprefix(prefix) for k in self.files if k.startswith(prefix)
            )
        if part not in self._files_cache:
            prefix = f"{part}/"  # a symlink or special file in the template is refused
            self._files_cache[part] = [
                rel.removeprefix(prefix) for rel in _in_template(self.root, list_files, part)
            ]
        return self._files_cache[part]

    def _skipped(self, src: str, context: Mapping[str, Any]) -> bool:
        for rule in self.skip_rules:
            if any(fnmatch.fnmatchcase(src, pat) for pat in rule.paths) and self._eval(
                rule.when, context, "skip.when"
            ):
                return True
        return False

    def _render_part(
        self, part: str, context: Mapping[str, Any], sources: dict[str, str] | None = None
    ) -> Tree:
        tree: Tree = {}
        for src in self.source_files(part):
            if self._skipped(f"{part}/{src}", context):
                continue
            dest = self._render_path(part, src, context)
            if dest is None:
                continue
            source_path = self.root / part / src
            if src.endswith(TEMPLATE_SUFFIX):
                try:
                    text = self.env.get_template(f"{part}/{src}").render(**context)
                except Exception as exc:  # a TemplateError, or raised by template code
                    line = getattr(exc, "lineno", None) or _template_line(exc, source_path)
                    loc = f"{source_path}:{line}" if line else str(source_path)
                    raise UserError(
                        f"{loc}: template error: {_why(exc)}", file=str(source_path), line=line
                    ) from None
                data = text.encode("utf-8")
            elif self.files is not None:
                data = self.files[f"{part}/{src}"]
            else:
                data = _in_template(self.root, read_file, f"{part}/{src}")
            if dest in tree:
                raise UserError(
                    f"{source_path}: renders to {dest!r}, which another template file also "
                    "renders to; make the file names or their conditions distinct",
                    file=str(source_path),
                )
            tree[dest] = data
            if sources is not None:
                sources[dest] = f"{part}/{src}"
        return tree

    def _render_path(self, part: str, src: str, context: Mapping[str, Any]) -> str | None:
        parts = []
        for comp in PurePosixPath(src).parts:
            rendered = (
                self._render_string(comp, context, f"{self.root / part / src}: file name")
                if ("{{" in comp or "{%" in comp)
                else comp
            )
            if not rendered.strip():
                return None  # an empty path component drops the file
            if rendered in (".", "..") or "/" in rendered or "\\" in rendered:
                raise UserError(
                    f"{self.root / part / src}: file name renders to {rendered!r}, "
                    "which is not a plain path component"
                )
            parts.append(rendered)
        dest = "/".join(parts)
        if dest.endswith(TEMPLATE_SUFFIX):
            dest = dest[: -len(TEMPLATE_SUFFIX)]
        return dest


def _why(exc: Exception) -> str:
    """A Jinja2 error's own message; other exceptions also say what they are."""
    import jinja2

    if isinstance(exc, jinja2.TemplateError | UserError):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return not_utf8(exc)
    return f"{type(exc).__name__}: {exc}"


def _template_line(exc: BaseException, source_path: Path) -> int | None:
    """Jinja2 rewrites tracebacks so template frames carry the template's own line numbers."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(source_path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# ---------------------------------------------------------------------- values
def coerce(param: Parameter, value: Any, where: str) -> Any:
    if param.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InvalidAnswer(f"{where}: {short(value)} is not a yes/no value")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidAnswer(f"{where}: expected a string, got {short(value)}")
    return str(value)


MAX_ANSWER = 1000  # characters: answers are names; this also bounds any regex's work


def validate_value(param: Parameter, value: Any) -> None:
    if isinstance(value, str):
        why = (
            f"it is longer than {MAX_ANSWER} characters"
            if len(value) > MAX_ANSWER
            else "it contains a control character such as a newline"
            if re.search(r"[\x00-\x1f\x7f]", value)
            else "it contains a CI expression ('${{'); give a plain value"
            if "${{" in value
            else None
        )
        if why:
            raise InvalidAnswer(f"parameter {param.name!r}: {short(value)} is not valid: {why}")
    if param.choices is not None and value not in param.choices:
        allowed = ", ".join(str(c) for c in param.choices)
        raise InvalidAnswer(f"parameter {param.name!r}: {short(value)} is not one of: {allowed}")
    if param.pattern is not None and not re.search(param.pattern, str(value)):
        why = param.pattern_message or f"it must match {param.pattern}"
        raise InvalidAnswer(f"parameter {param.name!r}: {short(value)} is not valid: {why}")


# --------------------------------------------------------------------- loading
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


def _in_template(root: Path, reader: Callable[[Path, str], Any], rel: str) -> Any:
    """A safe read below the template root, its errors naming the file by its full path."""
    try:
        return reader(root, rel)
    except UserError as exc:
        raise UserError(f"{root}/{exc.message}", file=f"{root}/{rel}") from None


def _disk_loader(root: Path) -> jinja2.BaseLoader:
    """Templates, macros and includes read through :func:`monostack.safeio.read_file`: a
    symlink in the template never pulls a file from outside into a project."""
    import jinja2

    def load(name: str) -> tuple[str, str, Callable[[], bool]] | None:
        if not os.path.lexists(root / name):
            return None
        return _source(root, name, _in_template(root, read_file, name))

    return jinja2.FunctionLoader(load)


# Bump when make_environment's options change: the compiled templates depend on them.
_ENV_VERSION = 1


def make_environment(root: Path, files: Mapping[str, bytes] | None = None) -> jinja2.Environment:
    import jinja2

    loader = _memory_loader(root, files) if files is not None else _disk_loader(root)
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
    import uuid  # only templates that call uuid4() pay for the import

    return str(uuid.uuid4())


def bytecode_cache(repo_root: Path) -> Any:
    """Compiled templates kept in monostack's state folder in git (``.git/monostack/jinja-*``,
    beside the lock and the journal: never in the work tree, never committed), so
    ``new-project`` does not recompile the template every time. Jinja2 checks each entry
    against the template's source and writes entries atomically. None outside a git work tree
    or when the folder cannot be made: templates are then compiled each run."""
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
    return jinja2.FileSystemBytecodeCache(str(folder))


def compile_string(env: Any, text: str) -> Any:
    """``env.from_string(text)`` through the environment's bytecode cache, when it has one."""
    cache = env.bytecode_cache
    if cache is None:
        return env.from_string(text)
    import hashlib

    name = "<string " + hashlib.sha256(text.encode("utf-8")).hexdigest() + ">"
    bucket = cache.get_bucket(env, name, None, text)
    if bucket.code is None:
        bucket.code = env.compile(text, name)
        cache.set_bucket(bucket)
    return env.template_class.from_code(env, bucket.code, env.make_globals(None), None)


def _param_from(name: str, spec: Any, where: str) -> Parameter:
    if not isinstance(spec, dict):
        raise UserError(f"{where}: expected a mapping of parameter settings")
    unknown = [k for k in spec if k not in _PARAM_KEYS]
    if unknown:
        raise UserError(
            f"{where}: unknown setting {unknown[0]!r}; allowed: {', '.join(_PARAM_KEYS)}"
        )
    typ = spec.get("type", "str")
    if typ not in _TYPES:
        raise UserError(f"{where}.type: {typ!r} is not one of: {', '.join(_TYPES)}")
    choices = spec.get("choices")
    if choices is not None and (not isinstance(choices, list) or not choices):
        raise UserError(f"{where}.choices: expected a non-empty list")
    pattern = spec.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise UserError(f"{where}.pattern: expected a regular expression string")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UserError(
                f"{where}.pattern: {short(pattern)} is not a valid regex: {exc}"
            ) from None
        if nested_quantifier(pattern):
            raise UserError(
                f"{where}.pattern: {short(pattern)} repeats a group that itself repeats, e.g. "
                "(a+)+: such patterns can take exponential time on a crafted answer; "
                "rewrite it without the nested repetition, e.g. [a-z0-9-]+"
            )
    for key in ("description", "pattern_message", "when", "when_message"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise UserError(f"{where}.{key}: expected a string")
    if not isinstance(spec.get("computed", False), bool):
        raise UserError(f"{where}.computed: expected true or false")
    if spec.get("computed") and spec.get("default") is None:
        raise UserError(f"{where}: a computed parameter needs a default")
    check_literal_default(spec, typ, choices, pattern, where)
    return Parameter(
        name=name,
        type=typ,
        description=spec.get("description", ""),
        default=spec.get("default"),
        choices=tuple(choices) if choices is not None else None,
        pattern=pattern,
        pattern_message=spec.get("pattern_message"),
        when=spec.get("when"),
        when_message=spec.get("when_message"),
        computed=bool(spec.get("computed", False)),
    )


def load_template(root: Path) -> StackTemplate:
    """Read and validate ``<root>/stack.yml``."""
    root = Path(root)
    path = root / STACK_FILE
    check_no_links(root.parent, root.name, "dir")  # stack_template itself is no link
    if not os.path.lexists(path):
        raise UserError(f"{path}: not found; the stack template needs a {STACK_FILE}")
    with located(str(path)):
        return _parse_template(root, load_yaml_file(path, str(path), root=root), None)


def load_template_files(root: Path, files: Mapping[str, bytes]) -> StackTemplate:
    """A template held in memory: ``files`` maps paths (``stack.yml``, ``project/...``) to
    bytes. ``root`` only names it in messages (e.g. ``stack_template@<tree id>``)."""
    root = Path(root)
    path = root / STACK_FILE
    if STACK_FILE not in files:
        raise UserError(f"{path}: not found; the stack template needs a {STACK_FILE}")
    try:
        text = files[STACK_FILE].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: {not_utf8(exc)}") from None
    with located(str(path)):
        return _parse_template(root, load_yaml_text(text, str(path)), dict(files))


def _parse_template(root: Path, data: Any, files: dict[str, bytes] | None) -> StackTemplate:
    path = root / STACK_FILE
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with version, parameters and skip")
    unknown = [k for k in data if k not in ("version", "parameters", "skip")]
    if unknown:
        raise UserError(f"{path}: unknown key {unknown[0]!r}; allowed: version, parameters, skip")
    version = data.get("version")
    if not isinstance(version, str | int | float) or isinstance(version, bool):
        raise UserError(f"{path}: version: expected a version string such as '1.0.0'")
    raw_params = data.get("parameters") or {}
    if not isinstance(raw_params, dict):
        raise UserError(f"{path}: parameters: expected a mapping of name to settings")
    params: dict[str, Parameter] = {}
    for name, spec in raw_params.items():
        if name in RESERVED_NAMES:
            raise UserError(f"{path}: parameters.{name}: {name!r} is reserved; rename it")
        params[name] = _param_from(name, spec, f"{path}: parameters.{name}")
    if "project_name" not in params:
        raise UserError(f"{path}: parameters: 'project_name' must be declared")
    check_names(path, params)
    raw_rules = data.get("skip") or []
    if not isinstance(raw_rules, list):
        raise UserError(f"{path}: skip: expected a list of {{when, paths}} rules")
    rules = []
    for i, rule in enumerate(raw_rules):
        where = f"{path}: skip[{i}]"
        if not isinstance(rule, dict) or set(rule) != {"when", "paths"}:
            raise UserError(f"{where}: expected a mapping with exactly 'when' and 'paths'")
        paths = rule["paths"]
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise UserError(f"{where}.paths: expected a list of glob patterns")
        rules.append(SkipRule(when=str(rule["when"]), paths=tuple(paths)))
        check_expression(str(rule["when"]), set(params) | ENGINE_NAMES, f"{where}.when")
    return StackTemplate(
        root=root,
        version=str(version),
        parameters=params,
        skip_rules=tuple(rules),
        files=files,
    )
