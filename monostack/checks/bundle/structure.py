"""The shape of a bundle: known keys, a name, targets with exactly one default, valid modes,
declared variables, and staging/prod/test on the workspaces of ``monorepo.yml``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monostack.bundle import (
    BUNDLE_FILE,
    BUNDLE_KEYS,
    TARGET_KEYS,
    TOP_LEVEL_KEYS,
    VARIABLE_KEYS,
    WORKSPACE_KEYS,
    LoadedBundle,
    Problem,
    YMap,
    describe,
    loc_of,
)
from monostack.checks import WARNING
from monostack.checks.bundle.common import REQUIRED_TARGETS, problem_at, unknown_keys
from monostack.config import workspace_host

if TYPE_CHECKING:  # pragma: no cover
    from monostack.config import MonorepoConfig

TARGET_MODES = ("development", "production")


def check_structure(bundle: LoadedBundle) -> list[Problem]:
    base = bundle.base
    assert base is not None
    root_file = bundle.root_file
    out: list[Problem] = []
    for doc in bundle.files.values():
        out += unknown_keys(doc, TOP_LEVEL_KEYS, "the top level")

    section = base.get("bundle")
    name = section.get("name") if isinstance(section, dict) else None
    if section is not None and not isinstance(section, dict):
        pass  # reported by the loader: `bundle` must be a mapping
    elif not isinstance(section, dict):
        file, line = loc_of(base, "bundle", (root_file, 1)) if "bundle" in base else (root_file, 1)
        out.append(
            Problem(file, line, "bundle.name is missing; add `bundle:` with `name: <project>`")
        )
    elif not isinstance(name, str) or not name.strip():
        file, line = section.loc_of("name")
        what = "is missing"
        if "name" in section:
            what = f"must be a non-empty string, got {describe(name)}"
        out.append(Problem(file, line, f"bundle.name {what}; set it to the project name"))
    out += unknown_keys(section, BUNDLE_KEYS, "bundle")
    out += unknown_keys(base.get("workspace"), WORKSPACE_KEYS, "workspace")

    declared = bundle.declared_variables
    for var, decl in declared.items():
        file, line = loc_of(base.get("variables"), var, (root_file, None))
        if decl is None or isinstance(decl, dict):
            out += unknown_keys(decl, VARIABLE_KEYS, f"variables.{var}")
            continue
        message = f"variables.{var} must be a mapping (e.g. `default: ...`), got {describe(decl)}"
        out.append(Problem(file, line, message))

    targets = base.get("targets")
    if targets is not None and not isinstance(targets, dict):
        return out  # reported by the loader: `targets` must be a mapping
    if not targets:
        message = "no targets are defined; add `targets:` with dev (default: true), staging, "
        out.append(problem_at(base, "targets", (root_file, 1), message + "prod and test"))
        return out
    defaults = []
    for tname, spec in targets.items():
        file, line = targets.loc_of(tname) if isinstance(targets, YMap) else (root_file, None)
        if spec is not None and not isinstance(spec, dict):
            out.append(
                Problem(file, line, f"targets.{tname} must be a mapping, got {describe(spec)}")
            )
            continue
        if not isinstance(spec, dict):
            continue
        out += unknown_keys(spec, TARGET_KEYS, f"targets.{tname}")
        out += unknown_keys(spec.get("bundle"), BUNDLE_KEYS, f"targets.{tname}.bundle")
        out += unknown_keys(spec.get("workspace"), WORKSPACE_KEYS, f"targets.{tname}.workspace")
        default = spec.get("default")
        if default is True:
            defaults.append((tname, loc_of(spec, "default", (file, line))))
        elif "default" in spec and default is not False:
            message = f"targets.{tname}.default must be true or false, got {describe(default)}"
            out.append(problem_at(spec, "default", (file, line), message))
        mode = spec.get("mode")
        if "mode" in spec and mode not in TARGET_MODES:
            message = f"targets.{tname}.mode is {describe(mode)}; use one of: " + ", ".join(
                TARGET_MODES
            )
            out.append(problem_at(spec, "mode", (file, line), message))
        target_vars = spec.get("variables")
        if target_vars is not None and not isinstance(target_vars, dict):
            message = f"targets.{tname}.variables must be a mapping, got {describe(target_vars)}"
            out.append(problem_at(spec, "variables", (file, line), message))
        elif isinstance(target_vars, dict):
            for var in target_vars:
                if var not in declared:
                    vfile, vline = loc_of(target_vars, var, (file, line))
                    out.append(
                        Problem(
                            vfile,
                            vline,
                            f"targets.{tname}.variables.{var} sets variable {var!r}, "
                            "which is not declared under `variables`; declare it in "
                            f"{BUNDLE_FILE} or fix the name",
                        )
                    )
    if not defaults:
        file, line = loc_of(base, "targets", (root_file, None))
        out.append(
            Problem(
                file,
                line,
                "no target has `default: true`; mark exactly one (usually dev) as default",
            )
        )
    elif len(defaults) > 1:
        names = ", ".join(name for name, _ in defaults)
        for _tname, (file, line) in defaults[1:]:
            out.append(
                Problem(
                    file,
                    line,
                    f"targets {names} have `default: true`; keep it on exactly one target",
                )
            )

    # A variable without a default must get a value from every target that deploys.
    for tname in REQUIRED_TARGETS:
        view = bundle.targets.get(tname)
        if view is None:
            continue
        for var, decl in declared.items():
            if var in view.values or (isinstance(decl, dict) and "lookup" in decl):
                continue
            file, line = loc_of(base.get("variables"), var, (root_file, None))
            out.append(
                Problem(
                    file,
                    line,
                    f"variable {var!r} has no default and target {tname!r} gives it no "
                    f"value; deploying {tname} needs --var={var}=... or BUNDLE_VAR_{var}",
                    WARNING,
                )
            )
    return out


def check_hosts(bundle: LoadedBundle, config: MonorepoConfig) -> list[Problem]:
    """staging/prod/test must deploy to the workspaces of monorepo.yml (test: workspaces.test,
    or staging's when it is not set)."""
    base = bundle.base
    assert base is not None
    root_file = bundle.root_file
    targets = base.get("targets") if isinstance(base.get("targets"), dict) else {}
    expected = {
        "staging": (config.workspaces.staging, "workspaces.staging"),
        "prod": (config.workspaces.prod, "workspaces.prod"),
        "test": (config.workspaces.test, f"workspaces.{config.workspaces.test_env}"),
    }
    if config.workspaces.dev:
        expected["dev"] = (config.workspaces.dev, "workspaces.dev")
    out = []
    for tname, (want, source) in expected.items():
        want_norm = workspace_host(want)
        shared = tname == "test" and config.workspaces.test_env == "staging"
        note = "; test runs in the staging workspace" if shared else ""
        if tname not in targets:
            if tname == "dev":
                continue
            message = f"target {tname!r} is missing; add `targets.{tname}` with workspace.host "
            message += f"{want} (monorepo.yml {source}){note}"
            out.append(problem_at(base, "targets", (root_file, 1), message))
            continue
        view = bundle.targets[tname]
        workspace = view.doc.get("workspace")
        host = workspace.get("host") if isinstance(workspace, dict) else None
        tfile, tline = loc_of(targets, tname, (root_file, None))
        if host is None:
            if tname == "dev":
                continue  # dev may use each developer's own CLI profile
            out.append(
                Problem(
                    tfile,
                    tline,
                    f"targets.{tname} has no workspace.host; set it to {want} "
                    f"(monorepo.yml {source}){note}",
                )
            )
            continue
        hfile, hline = loc_of(workspace, "host", (tfile, tline))
        got = workspace_host(host)
        if got is None:
            out.append(
                Problem(
                    hfile,
                    hline,
                    f"targets.{tname}.workspace.host {describe(host)} is not an "
                    f"https:// workspace URL; set it to {want} (monorepo.yml {source}){note}",
                )
            )
        elif got != want_norm:
            out.append(
                Problem(
                    hfile,
                    hline,
                    f"targets.{tname}.workspace.host is {host!r} but monorepo.yml "
                    f"{source} is {want}; make them the same (re-render or edit the host){note}",
                )
            )
    return out
