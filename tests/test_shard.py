"""--shard K/N: every case in exactly one part, deterministic, balanced by cost."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monostack.errors import UserError
from monostack.runner import run_checks
from monostack.shard import parse_shard, pick, split
from tests.conftest import invoke, root_of
from tests.test_cache import CHECKS, counted  # noqa: F401 - the fixture

costs = st.dictionaries(st.text(min_size=1, max_size=8), st.floats(0, 100), max_size=60)


@settings(max_examples=200, deadline=None)
@given(costs, st.integers(1, 12))
def test_every_item_lands_in_exactly_one_part_and_the_split_is_balanced(items, n):
    names = sorted(items)
    parts = split(names, n, items.__getitem__, str)
    assert len(parts) == n
    flat = [x for part in parts for x in part]
    assert sorted(flat) == names  # each once, none lost
    # membership does not depend on the input order (deterministic on every machine)
    assert [set(p) for p in split(list(reversed(names)), n, items.__getitem__, str)] == [
        set(p) for p in parts
    ]
    loads = [sum(items[x] for x in part) for part in parts]
    if names:
        # longest-processing-time bound: no part exceeds the mean by more than one item
        assert max(loads) <= sum(loads) / n + max(items.values()) + 1e-9


def test_pick_is_one_based_and_parts_partition():
    items = [f"c{i}" for i in range(10)]
    parts = [pick(items, (k, 3), lambda _: 1.0, str) for k in (1, 2, 3)]
    assert sorted(x for p in parts for x in p) == sorted(items)
    assert [len(p) for p in parts] == [4, 3, 3]


@pytest.mark.parametrize("bad", ["0/2", "3/2", "2", "a/b", "1/0", "-1/2", "1/999"])
def test_bad_shard_values_are_one_clear_error(bad):
    with pytest.raises(UserError, match="--shard"):
        parse_shard(bad)
    assert parse_shard(" 2 / 4 ") == (2, 4) and parse_shard(None) is None


def test_shards_of_a_real_run_cover_every_case_exactly_once(counted):  # noqa: F811
    root, _ = counted
    full = run_checks(root, CHECKS, jobs=1, progress=None, cache=False)
    seen = []
    for k in (1, 2, 3, 4):
        part = run_checks(root, CHECKS, jobs=1, progress=None, cache=False, shard=(k, 4))
        seen += [(r.check, r.case) for r in part]
    assert sorted(seen) == sorted((r.check, r.case) for r in full)


def test_cli_shard_writes_its_own_junit(shipped_repo, tmp_path):
    names = []
    for k in (1, 2):
        junit = tmp_path / f"shard{k}.xml"
        result = invoke(shipped_repo, "test-all", "--shard", f"{k}/2", "--junit-xml", str(junit))
        assert result.returncode == 0, result.stdout + result.stderr
        names += [
            (suite.get("name"), case.get("name"))
            for suite in ET.parse(junit).getroot().findall("testsuite")
            for case in suite.findall("testcase")
        ]
    assert len(names) == len(set(names)) and len(names) > 30
    bad = invoke(root_of(shipped_repo), "test-all", "--shard", "5/4")
    assert bad.returncode == 1 and "error: --shard '5/4'" in bad.stderr
