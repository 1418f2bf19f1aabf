"""Merging bundle documents as the CLI does: included files into the root, a target's
overrides into the result, and job tasks / clusters / parameters by their identifying key."""

from __future__ import annotations

from typing import Any

from monostack.bundle.documents import YMap, YSeq, loc_of


def copy_value(value: Any) -> Any:
    if isinstance(value, YMap):
        out = YMap(value.loc)
        for key, item in value.items():
            out[key] = copy_value(item)
        out.locs = dict(value.locs)
        out.anchored = set(value.anchored)
        return out
    if isinstance(value, YSeq):
        seq = YSeq(value.loc, [copy_value(v) for v in value])
        seq.locs = list(value.locs)
        return seq
    if isinstance(value, dict):  # plain containers too: a result never aliases an input
        return {key: copy_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_value(item) for item in value]
    return value


def merge(base: Any, override: Any) -> Any:
    """Deep merge as the CLI does: mappings key by key, sequences appended, scalars replaced.

    Returns a new value; neither input is changed.
    """
    if isinstance(base, dict) and isinstance(override, dict):
        out = copy_value(base) if isinstance(base, YMap) else YMap(("", None), base)
        for key, value in override.items():
            if key in out and isinstance(out[key], (dict, list)) and value is not None:
                out[key] = merge(out[key], value)
            elif key in out and value is None:
                continue
            else:
                out[key] = copy_value(value)
            out.locs[key] = loc_of(override, key, out.loc)
            if isinstance(override, YMap) and key in override.anchored:
                out.anchored.add(key)
        return out
    if isinstance(base, list) and isinstance(override, list):
        out_seq = copy_value(base) if isinstance(base, YSeq) else YSeq(("", None), base)
        for index, value in enumerate(override):
            out_seq.append(copy_value(value))
            out_seq.locs.append(loc_of(override, index, out_seq.loc))
        return out_seq
    return copy_value(override)


# Sequences whose items the CLI merges by an identifying key after target overrides
# (bundle/config/mutator: MergeJobClusters, MergeJobTasks, MergeJobParameters, ...).
_KEYED_SEQUENCES = {
    "jobs": (("tasks", "task_key"), ("job_clusters", "job_cluster_key"), ("parameters", "name")),
    "pipelines": (("clusters", "label"),),
}


def _merge_keyed(seq: Any, key: str) -> Any:
    if not isinstance(seq, YSeq):
        return seq
    out = YSeq(seq.loc)
    index_of: dict[Any, int] = {}
    for i, item in enumerate(seq):
        ident = item.get(key) if isinstance(item, dict) else None
        if isinstance(ident, str) and ident in index_of:
            at = index_of[ident]
            out[at] = merge(out[at], item)
            continue
        if isinstance(ident, str):
            index_of[ident] = len(out)
        out.append(item)
        out.locs.append(seq.loc_of(i))
    return out


def merge_keyed_resources(resources: Any) -> None:
    if not isinstance(resources, dict):
        return
    for rtype, rules in _KEYED_SEQUENCES.items():
        group = resources.get(rtype)
        if not isinstance(group, dict):
            continue
        for resource in group.values():
            if not isinstance(resource, dict):
                continue
            for seq_key, ident in rules:
                if seq_key in resource:
                    resource[seq_key] = _merge_keyed(resource[seq_key], ident)
