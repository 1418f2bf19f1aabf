"""``monorepo.yml``: the settings every project in the monorepo shares.

Platform engineers own this file: which cloud, which CI platform, the staging/prod workspaces,
branches, groups and Unity Catalog catalogs. Projects never ask for these; they are read here,
validated strictly (an unknown key is an error, not a silent no-op) and handed to the template.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monostack.errors import UserError, located, short
from monostack.yamlutil import load_yaml_file

CONFIG_FILE = "monorepo.yml"

CLOUDS = ("azure", "aws", "gcp")
CICD_PLATFORMS = (
    "github_actions",
    "github_actions_for_github_enterprise_servers",
    "azure_devops",
    "gitlab",
)
# Where jobs run: serverless (job environments, no clusters; needs Unity Catalog-enabled
# workspaces) or classic (job clusters on an LTS ML runtime). A project may override it.
COMPUTES = ("serverless", "classic")

# Host placeholders per cloud, as the upstream stack suggests them.
HOST_PLACEHOLDERS = {
    "azure": "https://adb-xxxx.xx.azuredatabricks.net",
    "aws": "https://your-{env}-workspace.cloud.databricks.com",
    "gcp": "https://your-{env}-workspace.gcp.databricks.com",
}


@dataclass(frozen=True)
class Workspaces:
    staging: str
    prod: str
    dev: str | None = None  # optional: without it, developers deploy with their own CLI profile
    separate_test: str | None = None  # optional workspaces.test: CI's own workspace

    @property
    def test(self) -> str:
        """Where the ``test`` target deploys: ``workspaces.test``, or else staging's workspace."""
        return self.separate_test or self.staging

    @property
    def test_env(self) -> str:
        """Whose credentials (secret-name prefix) the ``test`` target uses: test or staging."""
        return "test" if self.separate_test else "staging"


@dataclass(frozen=True)
class Catalogs:
    staging: str = "staging"
    prod: str = "prod"
    test: str = "test"


@dataclass(frozen=True)
class MonorepoConfig:
    cloud: str = "azure"
    cicd_platform: str = "github_actions"
    compute: str = "serverless"
    workspaces: Workspaces = field(
        default_factory=lambda: Workspaces(
            staging=HOST_PLACEHOLDERS["azure"], prod=HOST_PLACEHOLDERS["azure"]
        )
    )
    default_branch: str = "main"
    release_branch: str = "release"
    read_user_group: str = "users"
    catalogs: Catalogs = field(default_factory=Catalogs)
    unity_catalog_read_user_group: str = "account users"
    # The team's own checks for test-all: parsed checks, or the path of the file holding them
    # (read by monostack.checks.extra.load_extra_checks when test-all runs).
    extra_checks: tuple | str = ()

    def as_context(self) -> dict[str, Any]:
        """The plain-dict view templates see as ``monorepo``."""
        data = asdict(self)
        data.pop("extra_checks")  # CI settings of the monorepo, nothing a template renders
        del data["workspaces"]["separate_test"]
        data["workspaces"]["test"] = self.workspaces.test
        # "test" when monorepo.yml names a test workspace, else "staging": the workspace and
        # secrets of the `test` target, as CI templates pass them to their credential macros
        data["test_env"] = self.workspaces.test_env
        return data

    def replace(self, **changes: Any) -> MonorepoConfig:
        from dataclasses import replace

        return replace(self, **changes)


# key -> (type, choices or None, required)
_TOP_LEVEL: dict[str, tuple[type, tuple[str, ...] | None]] = {
    "cloud": (str, CLOUDS),
    "cicd_platform": (str, CICD_PLATFORMS),
    "compute": (str, COMPUTES),
    "workspaces": (dict, None),
    "default_branch": (str, None),
    "release_branch": (str, None),
    "read_user_group": (str, None),
    "catalogs": (dict, None),
    "unity_catalog_read_user_group": (str, None),
    "extra_checks": (object, None),  # a list of checks or a file name: see _extra_checks
}
_REQUIRED = ("cloud", "cicd_platform", "workspaces")
_WORKSPACE_KEYS = ("staging", "prod", "dev", "test")
_OPTIONAL_WORKSPACES = ("dev", "test")
_CATALOG_KEYS = ("staging", "prod", "test")


# --------------------------------------------------------------------- value rules
# Each kind of value is checked where it enters (monorepo.yml), by the rules of the system it
# lands in, so a hostile or mistyped value is blamed on monorepo.yml, not on a rendered file.
MAX_NAME = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_UC_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,255}$")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def text_problem(value: str) -> str | None:
    """What no value may hold: control characters (newlines break the YAML they land in) and
    CI expressions (``${{ }}`` would run in GitHub's workflow context)."""
    if _CONTROL.search(value):
        return "it contains a control character such as a newline"
    if "${{" in value or "$[[" in value:
        return "it contains a CI expression ('${{'); give a plain value"
    if len(value) > MAX_NAME:
        return f"it is longer than {MAX_NAME} characters"
    return None


def branch_problem(name: str) -> str | None:
    """Why ``name`` is not a branch name by git's rules (``git check-ref-format --branch``), or
    holds characters that would break the CI files it is quoted into."""
    why = text_problem(name)
    if why:
        return why
    if name.startswith("-"):
        return "a branch name cannot start with '-'"
    if _REF_FORBIDDEN.search(name):
        return "git branch names cannot contain spaces or any of ~ ^ : ? * [ \\"
    if "'" in name or '"' in name or "`" in name:
        return "monostack refuses quotes in branch names: they go into workflow expressions"
    if (
        ".." in name
        or "@{" in name
        or name == "@"
        or "//" in name
        or name.startswith("/")
        or name.endswith(("/", "."))
        or any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))
    ):
        return (
            "it breaks git's ref rules (no '..', '@{', '//', leading or trailing '/', trailing "
            "'.', component starting with '.' or ending with '.lock')"
        )
    return None


def catalog_problem(name: str) -> str | None:
    """Unity Catalog identifiers (catalogs, schemas, tables) as monostack uses them unquoted in
    SQL, paths and YAML."""
    if _UC_IDENTIFIER.match(name):
        return None
    return (
        "a Unity Catalog name here may only hold letters, digits and '_' "
        f"(1 to {MAX_NAME} characters; no '.', space, '-', ';' or quotes)"
    )


def table_problem(name: str) -> str | None:
    """A Unity Catalog table: ``table``, or the three-level ``catalog.schema.table``, each part
    a name by :func:`catalog_problem`."""
    parts = name.split(".")
    if len(parts) not in (1, 3):
        return "give a table name, or catalog.schema.table (each part a Unity Catalog name)"
    return next((why for why in map(catalog_problem, parts) if why), None)


# The kinds of value a template parameter may declare (``kind:`` in stack.yml): each is checked
# by the same rule as wherever else monostack meets that kind of value.
VALUE_KINDS: dict[str, Callable[[str], str | None]] = {
    "unity_catalog_name": catalog_problem,
    "unity_catalog_table": table_problem,
    "branch": branch_problem,
}


def host_problem(host: str) -> str | None:
    """A plain DNS host name (or IP literal): labels of letters, digits and '-'."""
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
            return None
        except ValueError:
            return "it is not a valid IPv6 address"
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        return "the host must be a plain host name (letters, digits, '-' and '.')"
    return None


def workspace_host(value: Any) -> str | None:
    """``https://host[:port]`` of a workspace URL (host lower-cased), or None when it is not an
    https URL with a host: URLs pasted from a browser carry ``/?o=123#job/1`` suffixes that must
    not end up in a bundle target."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value.strip())
        host, port = parts.hostname, parts.port  # .port raises ValueError on a bad port
    except ValueError:
        return None
    if parts.scheme != "https" or not host or "@" in parts.netloc:
        return None
    if text_problem(value) or host_problem(host if ":" not in host else f"[{host}]"):
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    return f"https://{host}:{port}" if port else f"https://{host}"


def normalize_host(value: str, where: str) -> str:
    """:func:`workspace_host`, or a UserError naming ``where``."""
    host = workspace_host(value)
    if host is None:
        raise UserError(
            f"{where}: {short(value)} is not an https:// workspace URL with a plain host name; "
            "use the form https://<workspace-host>"
        )
    return host


def _type_name(t: type) -> str:
    return {str: "a string", dict: "a mapping", bool: "true/false"}.get(t, t.__name__)


def _check_mapping(data: Any, where: str) -> dict:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of keys to values, got {type(data).__name__}")
    return data


def _check_str(
    value: Any,
    where: str,
    choices: tuple[str, ...] | None = None,
    rule: Callable[[str], str | None] = text_problem,
) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: expected a non-empty string, got {short(value)}")
    if choices is not None and value not in choices:
        raise UserError(
            f"{where}: {short(value)} is not allowed; choose one of: {', '.join(choices)}"
        )
    why = rule(value) or (None if rule is text_problem else text_problem(value))
    if why:
        raise UserError(f"{where}: {short(value)} is not valid: {why}; fix it in {CONFIG_FILE}")
    return value


def _unknown_keys(data: dict, allowed: tuple[str, ...] | dict, where: str) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise UserError(
            f"{where}: unknown key {short(unknown[0])}; allowed keys: {', '.join(allowed)}"
        )


_RULES: dict[str, Callable[[str], str | None]] = {
    "default_branch": branch_problem,
    "release_branch": branch_problem,
}


def parse_config(data: Any, source: str = CONFIG_FILE) -> MonorepoConfig:
    """Validate parsed YAML data and build the config; raise UserError on the first fault."""
    with located(source):
        return _parse_config(data, source)


def _parse_config(data: Any, source: str) -> MonorepoConfig:
    data = _check_mapping(data, source)
    _unknown_keys(data, _TOP_LEVEL, source)
    for key in _REQUIRED:
        if key not in data:
            raise UserError(f"{source}: missing required key {key!r}")
    values: dict[str, Any] = {}
    for key, (typ, choices) in _TOP_LEVEL.items():
        if key not in data:
            continue
        where = f"{source}: {key}"
        if typ is str:
            values[key] = _check_str(data[key], where, choices, _RULES.get(key, text_problem))
        elif typ is not object and not isinstance(data[key], typ):
            raise UserError(f"{where}: expected {_type_name(typ)}, got {short(data[key])}")

    ws = _check_mapping(data["workspaces"], f"{source}: workspaces")
    _unknown_keys(ws, _WORKSPACE_KEYS, f"{source}: workspaces")
    hosts: dict[str, str | None] = {}
    for key in _WORKSPACE_KEYS:
        where = f"{source}: workspaces.{key}"
        if key not in ws or ws[key] is None:
            if key in _OPTIONAL_WORKSPACES:
                continue
            raise UserError(f"{where}: missing; set it to the https:// URL of the {key} workspace")
        hosts[key] = normalize_host(_check_str(ws[key], where), where)
    hosts["separate_test"] = hosts.pop("test", None)
    values["workspaces"] = Workspaces(**hosts)

    if "catalogs" in data:
        cats = _check_mapping(data["catalogs"], f"{source}: catalogs")
        _unknown_keys(cats, _CATALOG_KEYS, f"{source}: catalogs")
        values["catalogs"] = Catalogs(
            **{
                k: _check_str(v, f"{source}: catalogs.{k}", rule=catalog_problem)
                for k, v in cats.items()
            }
        )
    if "extra_checks" in data:
        values["extra_checks"] = _extra_checks(data["extra_checks"], source)
    return MonorepoConfig(**values)


def _extra_checks(value: Any, source: str) -> tuple | str:
    """``extra_checks``: the list is validated now; a file name is read when test-all runs."""
    from monostack.checks.extra import checks_file_problem, parse_extra_checks

    if isinstance(value, str):
        why = checks_file_problem(value)
        if why:
            raise UserError(f"{source}: extra_checks: {value!r}: {why}")
        return value
    return parse_extra_checks(value, source)


def load_config(root: Path) -> MonorepoConfig:
    """Read and validate ``<root>/monorepo.yml``."""
    path = Path(root) / CONFIG_FILE
    if not os.path.lexists(path):
        raise UserError(
            f"{path}: not found; run monostack from the monorepo root (where {CONFIG_FILE} lives)",
            file=str(path),
        )
    data = load_yaml_file(path, CONFIG_FILE, root=root)  # messages name it as users know it
    return parse_config(data, str(CONFIG_FILE))
