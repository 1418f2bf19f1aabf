"""Temporary files outside the journal (result cache, compiled templates): atomic replacement,
and sweeping exactly the temporaries whose writer is gone."""

from __future__ import annotations

import os
import time

import pytest

from monostack import tempfiles


def dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_replace_atomically_writes_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "entry.json"
    tempfiles.replace_atomically(target, lambda fh: fh.write(b"{}"))
    assert target.read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "entry.json"
    target.write_bytes(b"old")

    def fail(fh):
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        tempfiles.replace_atomically(target, fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]


def test_sweep_removes_only_temporaries_of_writers_that_are_gone(tmp_path):
    (tmp_path / "sub").mkdir()
    gone = tmp_path / "sub" / f".a.json.{dead_pid()}.k3j.monostack-part"
    running = tmp_path / f".b.json.{os.getppid()}.k3j.monostack-part"
    mine = tmp_path / f".c.json.{os.getpid()}.k3j.monostack-part"
    other = tmp_path / ".d.json.12.not-ours"
    for path in (gone, running, mine, other):
        path.write_bytes(b"x")
    assert tempfiles.sweep(tmp_path) == 0  # not recursive: sub/ untouched
    assert tempfiles.sweep(tmp_path, recursive=True) == 1
    assert not gone.exists() and running.exists() and mine.exists() and other.exists()


def test_sweep_never_follows_a_symlinked_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / f".a.json.{dead_pid()}.k3j.monostack-part"
    victim.write_bytes(b"x")
    inside = tmp_path / "cache"
    inside.mkdir()
    (inside / "link").symlink_to(outside)
    tempfiles.sweep(inside, recursive=True)
    assert victim.exists()


def test_sweep_stale_removes_pid_less_temporaries_only_once_old(tmp_path):
    old, new = tmp_path / "__jinja2_a.cacheXY.tmp", tmp_path / "__jinja2_b.cacheXY.tmp"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    tempfiles.sweep_stale(tmp_path.glob("__jinja2_*.tmp"))
    assert not old.exists() and new.exists()


def test_the_jinja_cache_stores_compiled_templates_and_sweeps_on_start(tmp_path):
    import jinja2

    stray = tmp_path / f".__jinja2_x.cache.{dead_pid()}.k3j.monostack-part"
    stray.write_bytes(b"half")
    cache = tempfiles.jinja_bytecode_cache(tmp_path)
    assert not stray.exists()
    env = jinja2.Environment(loader=jinja2.DictLoader({"t": "{{ 1 + 1 }}"}), bytecode_cache=cache)
    assert env.get_template("t").render() == "2"
    assert [p.suffix for p in tmp_path.iterdir()] == [".cache"]
