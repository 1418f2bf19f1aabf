"""--shard K/N: every case in exactly one part, deterministic, balanced by cost."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monostack.errors import UserError
from monostack.runner import run_checks
from monostack.shard import parse_shard, pick, split
from tests.conftest import invoke, root_of, seed_matrix_cache
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


groups = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.tuples(st.sampled_from("abcde"), st.floats(0, 10)),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(groups, st.integers(1, 6), st.floats(0, 5))
def test_a_group_stays_in_one_part_and_start_ups_are_counted(items, n, start):
    names = sorted(items)
    parts = split(
        names,
        n,
        lambda x: items[x][1],
        str,
        group=lambda x: items[x][0],
        startup=lambda x: ("kind", start),
    )
    assert sorted(x for part in parts for x in part) == names
    where = {items[x][0]: k for k, part in enumerate(parts) for x in part}
    assert all(where[items[x][0]] == k for k, part in enumerate(parts) for x in part)
    # each part pays the start-up once: no part exceeds the mean by more than a group + it
    loads = [sum(items[x][1] for x in part) + (start if part else 0) for part in parts]
    heaviest = max((sum(v[1] for v in items.values() if v[0] == g) for g in where), default=0)
    assert max(loads) <= sum(loads) / n + heaviest + start + 1e-9


def test_start_ups_keep_kinds_together_when_that_finishes_first():
    cost = {"l1": 0.5, "l2": 0.5, "l3": 0.5, "r1": 0.5, "r2": 1.0}  # lint and render cases

    def kind(x):
        return x[0], 2.0  # each kind's start-up: 2 s in every part that runs it

    def makespan(parts):
        return max(sum(cost[x] for x in part) + 2.0 * len({x[0] for x in part}) for part in parts)

    plain = split(list(cost), 2, cost.__getitem__, str)
    aware = split(list(cost), 2, cost.__getitem__, str, startup=kind)
    assert plain == [["l3", "r2"], ["l1", "l2", "r1"]] and makespan(plain) == 5.5
    assert aware == [["r1", "r2"], ["l1", "l2", "l3"]] and makespan(aware) == 3.5


def test_render_matrix_combinations_of_one_platform_are_one_group():
    from monostack.cases import Case, group

    a = Case("render-matrix", "aws/gitlab/include_feature_store=yes")
    b = Case("render-matrix", "aws/gitlab/include_feature_store=no")
    c = Case("render-matrix", "gcp/gitlab/include_feature_store=no")
    assert group(a) == group(b) != group(c)
    assert group(Case("lint", "p1")) != group(Case("lint", "p2"))


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


def test_cli_shard_writes_its_own_junit(shipped_repo, tmp_path, shipped_matrix):
    seed_matrix_cache(shipped_matrix, shipped_repo)  # the cases, not the template, are tested
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
