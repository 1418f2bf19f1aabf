"""YAML 1.2 on PyYAML's libyaml parser: values as the Databricks CLI, GitHub and GitLab read them.

PyYAML resolves plain scalars by YAML 1.1, where ``no``, ``on`` and ``y`` are booleans, ``017``
is the octal 15 and ``1:30`` is the sexagesimal 90. The Databricks CLI (``gopkg.in/yaml.v3``)
and the CI services read YAML 1.2, where all of those are strings or decimal numbers. The
:class:`Yaml12Loader` here keeps libyaml's speed and its marks (line numbers) and swaps in the
1.2 core schema: only ``true``/``false`` are booleans, ``~``/``null``/empty are null, integers
are decimal, ``0o`` octal or ``0x`` hexadecimal, and everything else is a string.
"""

from __future__ import annotations

import re

import yaml

BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
MERGE_TAG = "tag:yaml.org,2002:merge"

# (tag, pattern, first characters it can start with): the YAML 1.2 core schema, plus `<<`
# merge keys, which yaml.v3 (and so the CLI) also honours.
CORE_SCHEMA = (
    (BOOL_TAG, r"true|True|TRUE|false|False|FALSE", "tTfF"),
    (NULL_TAG, r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    (INT_TAG, r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    (
        FLOAT_TAG,
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        "-+.0123456789",
    ),
    (MERGE_TAG, r"<<", "<"),
)


class Yaml12Resolver(yaml.resolver.BaseResolver):
    """Implicit tags of the YAML 1.2 core schema (BaseResolver has none of YAML 1.1's)."""


for _tag, _pattern, _first in CORE_SCHEMA:
    Yaml12Resolver.add_implicit_resolver(_tag, re.compile(rf"^(?:{_pattern})$"), list(_first))


class Yaml12Constructor(yaml.constructor.SafeConstructor):
    """SafeConstructor with YAML 1.2 integers: ``017`` is 17 (1.1 read it as octal 15)."""

    def construct_yaml_int(self, node: yaml.Node) -> int:
        text = str(self.construct_scalar(node)).replace("_", "")
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
        if digits.startswith("0o"):
            return sign * int(digits[2:], 8)
        if digits.startswith("0x"):
            return sign * int(digits[2:], 16)
        if digits.startswith("0b"):  # only with an explicit !!int tag
            return sign * int(digits[2:], 2)
        return sign * int(digits, 10)


Yaml12Constructor.add_constructor(INT_TAG, Yaml12Constructor.construct_yaml_int)

try:  # libyaml when PyYAML was built with it (the wheels are); `yaml` itself does not export it
    from yaml.cyaml import CParser as _Parser
except ImportError:  # pragma: no cover
    _Parser = None


if _Parser is not None:

    class Yaml12Loader(_Parser, Yaml12Constructor, Yaml12Resolver):  # type: ignore[misc,valid-type]
        """libyaml parser, YAML 1.2 core schema, PyYAML's safe constructors."""

        def __init__(self, stream: str | bytes) -> None:
            _Parser.__init__(self, stream)
            Yaml12Constructor.__init__(self)
            Yaml12Resolver.__init__(self)

else:  # pragma: no cover - PyYAML without libyaml

    class Yaml12Loader(  # type: ignore[no-redef]
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        Yaml12Constructor,
        Yaml12Resolver,
    ):
        """Pure-Python parser, YAML 1.2 core schema, PyYAML's safe constructors."""

        def __init__(self, stream: str | bytes) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            Yaml12Constructor.__init__(self)
            Yaml12Resolver.__init__(self)
