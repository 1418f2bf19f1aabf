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

Its questions (parameters, answers) are :mod:`monostack.template_params`'; its Jinja2 set-up
(loaders, compiled-template cache) is :mod:`monostack.template_env`'s.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from monostack.errors import UserError, located, not_utf8, short
from monostack.safeio import check_no_links, list_files, read_file
from monostack.template_env import (
    checks_marker,
    checks_passed,
    compile_expression,
    compile_string,
    error_text,
    in_template,
    make_environment,
    record_checks_passed,
    template_line,
)
from monostack.template_params import (
    InvalidAnswer,
    NotApplicable,
    Parameter,
    SkipRule,
    coerce,
    param_from,
    to_project_dir,
    validate_value,
)
from monostack.template_rules import ENGINE_NAMES, check_expression, check_names
from monostack.yamlutil import load_yaml_text, read_yaml_text

if TYPE_CHECKING:  # pragma: no cover
    import jinja2

    from monostack.config import MonorepoConfig

STACK_FILE = "stack.yml"
PROJECT_PART = "project"
MONOREPO_PART = "monorepo"
MACROS_DIR = "macros"
TEMPLATE_SUFFIX = ".j2"

# Names the engine sets itself; stack.yml may not declare them.
RESERVED_NAMES = ("project_dir", "monorepo", "template_version")

Tree = dict[str, bytes]


@dataclass
class StackTemplate:
    root: Path
    version: str
    parameters: dict[str, Parameter]
    skip_rules: tuple[SkipRule, ...] = ()
    files: Mapping[str, bytes] | None = None  # in-memory sources (paths under root), or disk
    # a template on disk: its files as already read in one pass (with the base-tree hash)
    read_ahead: Mapping[str, bytes] | None = field(default=None, repr=False)
    digest: str = ""  # sha256 of stack.yml's text: what checks of answers against it depend on
    _env: Any = field(default=None, repr=False)
    _path_cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _expr_cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _files_cache: dict[str, list[str]] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ jinja
    @property
    def env(self) -> jinja2.Environment:
        if self._env is None:
            self._env = make_environment(self.root, self.files, self.read_ahead)
        return self._env

    def _eval(self, expr: str, context: Mapping[str, Any], where: str) -> Any:
        try:
            compiled = self._expr_cache.get(expr)
            if compiled is None:
                compiled = self._expr_cache[expr] = compile_expression(self.env, expr)
            return compiled(**context)
        except Exception as exc:  # TemplateError, or what the expression raised (1/0, ...)
            raise UserError(
                f"{self.stack_file}: {where}: {expr!r}: {error_text(exc)}", file=self.stack_file
            ) from None

    def _render_string(self, text: str, context: Mapping[str, Any], where: str) -> str:
        try:
            compiled = self._path_cache.get(text)
            if compiled is None:
                compiled = self._path_cache[text] = compile_string(self.env, text)
            return compiled.render(**context)
        except Exception as exc:
            raise UserError(f"{where}: {error_text(exc)}") from None

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
                rel.removeprefix(prefix) for rel in in_template(self.root, list_files, part)
            ]
        return self._files_cache[part]

    def _skipped(self, src: str, context: Mapping[str, Any], decided: dict[int, bool]) -> bool:
        """Whether a skip rule drops ``src``; ``decided`` holds each rule's condition once it
        is evaluated (the context is the same for every file of a part)."""
        for i, rule in enumerate(self.skip_rules):
            if any(fnmatch.fnmatchcase(src, pat) for pat in rule.paths):
                if i not in decided:
                    decided[i] = bool(self._eval(rule.when, context, "skip.when"))
                if decided[i]:
                    return True
        return False

    def _render_part(
        self, part: str, context: Mapping[str, Any], sources: dict[str, str] | None = None
    ) -> Tree:
        tree: Tree = {}
        decided: dict[int, bool] = {}
        for src in self.source_files(part):
            if self._skipped(f"{part}/{src}", context, decided):
                continue
            dest = self._render_path(part, src, context)
            if dest is None:
                continue
            if src.endswith(TEMPLATE_SUFFIX):
                try:
                    text = self.env.get_template(f"{part}/{src}").render(**context)
                except Exception as exc:  # a TemplateError, or raised by template code
                    source_path = self.root / part / src
                    line = getattr(exc, "lineno", None) or template_line(exc, source_path)
                    loc = f"{source_path}:{line}" if line else str(source_path)
                    raise UserError(
                        f"{loc}: template error: {error_text(exc)}",
                        file=str(source_path),
                        line=line,
                    ) from None
                data = text.encode("utf-8")
            elif self.files is not None:
                data = self.files[f"{part}/{src}"]
            elif self.read_ahead is not None and f"{part}/{src}" in self.read_ahead:
                data = self.read_ahead[f"{part}/{src}"]
            else:
                data = in_template(self.root, read_file, f"{part}/{src}")
            if dest in tree:
                source_path = self.root / part / src
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


def load_template(root: Path, read_ahead: Mapping[str, bytes] | None = None) -> StackTemplate:
    """Read and validate ``<root>/stack.yml``. ``read_ahead``: the folder's files as already
    read in one pass (:func:`monostack.basetree.hashed_tree`); rendering uses them instead of
    reading each file again, and reads from disk what they lack."""
    root = Path(root)
    path = root / STACK_FILE
    check_no_links(root.parent, root.name, "dir")  # stack_template itself is no link
    if not os.path.lexists(path):
        raise UserError(f"{path}: not found; the stack template needs a {STACK_FILE}")
    with located(str(path)):
        template = _parse_template(root, read_yaml_text(path, str(path), root=root), None)
    template.read_ahead = read_ahead
    return template


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
        return _parse_template(root, text, dict(files))


def _parse_template(root: Path, text: str, files: dict[str, bytes] | None) -> StackTemplate:
    """``stack.yml``'s ``text`` as a StackTemplate. Its deeper checks (expressions, patterns,
    literal defaults) run once per text: a cache entry says this very text passed them."""
    path = root / STACK_FILE
    data = load_yaml_text(text, str(path))
    marker = checks_marker(root.parent, text)
    checked = checks_passed(marker)
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
        params[name] = param_from(name, spec, f"{path}: parameters.{name}", checked)
    if "project_name" not in params:
        raise UserError(f"{path}: parameters: 'project_name' must be declared")
    if not checked:
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
        if not checked:
            check_expression(str(rule["when"]), set(params) | ENGINE_NAMES, f"{where}.when")
    template = StackTemplate(
        root=root,
        version=str(version),
        parameters=params,
        skip_rules=tuple(rules),
        files=files,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )
    if not checked:
        record_checks_passed(marker)
    return template
