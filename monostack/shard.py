"""``test-all --shard K/N``: split every case of a run into N parts of about equal cost.

The split is deterministic (the same cases and recorded timings give the same parts on every
machine) and each case lands in exactly one part: cases are taken from the most to the least
costly (ties by id) and each goes to the part with the least cost so far (ties by number),
the classic longest-processing-time rule, within 4/3 of the best possible split.
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


def split(items: Sequence[T], n: int, cost: Callable[[T], float], key: Callable[[T], str]):
    """``n`` lists that together hold every item once, balanced by ``cost``; each list keeps
    the items' original order."""
    loads = [0.0] * n
    parts: list[list[int]] = [[] for _ in range(n)]
    order = sorted(range(len(items)), key=lambda i: (-cost(items[i]), key(items[i])))
    for i in order:
        target = min(range(n), key=lambda s: (loads[s], s))
        parts[target].append(i)
        loads[target] += max(cost(items[i]), 0.0)
    return [[items[i] for i in sorted(part)] for part in parts]


def pick(
    items: Sequence[T], shard: tuple[int, int], cost: Callable[[T], float], key: Callable[[T], str]
) -> list[T]:
    """The items of part K of N (1-based)."""
    k, n = shard
    return split(items, n, cost, key)[k - 1]
