"""``test-all --shard K/N``: split every case of a run into N parts of about equal cost.

The split is deterministic (the same cases and recorded timings give the same parts on every
machine) and each case lands in exactly one part. Two things make a part cost more than the
sum of its cases, and the split counts both:

- cases that share work stay together (a *group*: render-matrix combinations of one cloud and
  CI platform render the same CI files, which the checker then checks once);
- each kind of case has a start-up (a checker loading its schemas, a template, a process) that
  every part holding that kind pays once.

Groups are taken from the most to the least costly (ties by id) and each goes to the part where
it would finish first, start-up included (ties by number): the classic longest-processing-time
rule, which without start-ups is within 4/3 of the best possible split.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from monostack.errors import UserError

T = TypeVar("T")
MAX_SHARDS = 256
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> (2, 4); None or "" -> None; anything else is a UserError."""
    if value is None or value == "":
        return None
    match = _SHARD.match(str(value))
    if match is not None:
        k, n = int(match.group(1)), int(match.group(2))
        if 1 <= k <= n <= MAX_SHARDS:
            return k, n
    raise UserError(
        f"--shard {value!r}: expected K/N with 1 <= K <= N <= {MAX_SHARDS}, e.g. --shard 2/4"
    )


def split(
    items: Sequence[T],
    n: int,
    cost: Callable[[T], float],
    key: Callable[[T], str],
    group: Callable[[T], str] | None = None,
    startup: Callable[[T], tuple[str, float]] | None = None,
) -> list[list[T]]:
    """``n`` lists that together hold every item once, balanced by ``cost``; each list keeps
    the items' original order. ``group(item)``: items with the same group go to the same list.
    ``startup(item)``: (kind, seconds) paid once by each list holding an item of that kind."""
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(group(items[i]) if group else key(item), []).append(i)
    units = []
    for members in groups.values():
        weight = sum(max(cost(items[i]), 0.0) for i in members)
        kind, start = startup(items[members[0]]) if startup else ("", 0.0)
        units.append((weight, min(key(items[i]) for i in members), kind, max(start, 0.0), members))
    units.sort(key=lambda u: (-u[0], u[1]))
    loads = [0.0] * n
    kinds: list[set[str]] = [set() for _ in range(n)]
    parts: list[list[int]] = [[] for _ in range(n)]
    for weight, _, kind, start, members in units:

        def finish(s: int, kind=kind, start=start) -> tuple[float, int]:
            return loads[s] + (0.0 if kind in kinds[s] else start), s

        target = min(range(n), key=finish)
        loads[target] = finish(target)[0] + weight
        kinds[target].add(kind)
        parts[target] += members
    return [[items[i] for i in sorted(part)] for part in parts]


def pick(
    items: Sequence[T],
    shard: tuple[int, int],
    cost: Callable[[T], float],
    key: Callable[[T], str],
    group: Callable[[T], str] | None = None,
    startup: Callable[[T], tuple[str, float]] | None = None,
) -> list[T]:
    """The items of part K of N (1-based)."""
    k, n = shard
    return split(items, n, cost, key, group, startup)[k - 1]
