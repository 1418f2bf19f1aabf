"""A Databricks Asset Bundle read offline as the Databricks CLI reads it, with locations.

``documents``: YAML with the file and line of every key; ``merge``: the CLI's merge rules;
``interpolation``: ``${...}`` references and their values per target; ``files``: project trees
and globs; ``loader``: includes and targets, giving a :class:`LoadedBundle`; ``keys``: the keys
the CLI knows.
"""

from monostack.bundle.documents import (
    Loc,
    Path_,
    Problem,
    YMap,
    YSeq,
    describe,
    format_path,
    iter_strings,
    loc_of,
    parse_yaml,
    plain,
)
from monostack.bundle.files import DiskTree, glob_tree, has_glob
from monostack.bundle.interpolation import (
    DEPLOYER,
    REFERENCE,
    TargetView,
    is_pure_reference,
    references,
)
from monostack.bundle.keys import (
    BUNDLE_KEYS,
    TARGET_KEYS,
    TOP_LEVEL_KEYS,
    VARIABLE_KEYS,
    WORKSPACE_KEYS,
)
from monostack.bundle.loader import BUNDLE_FILE, INCLUDE_SUFFIXES, LoadedBundle, load_bundle
from monostack.bundle.merge import merge

__all__ = [
    "BUNDLE_FILE",
    "BUNDLE_KEYS",
    "DEPLOYER",
    "INCLUDE_SUFFIXES",
    "REFERENCE",
    "TARGET_KEYS",
    "TOP_LEVEL_KEYS",
    "VARIABLE_KEYS",
    "WORKSPACE_KEYS",
    "DiskTree",
    "LoadedBundle",
    "Loc",
    "Path_",
    "Problem",
    "TargetView",
    "YMap",
    "YSeq",
    "describe",
    "format_path",
    "glob_tree",
    "has_glob",
    "is_pure_reference",
    "iter_strings",
    "load_bundle",
    "loc_of",
    "merge",
    "parse_yaml",
    "plain",
    "references",
]
