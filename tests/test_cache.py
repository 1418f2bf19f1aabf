"""The result cache: keys that see every input, atomic entries, concurrent writers, and
run_checks re-running exactly the cases whose inputs changed."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from monostack import cache as cache_mod
from monostack import filestat, runner
from monostack.cache import CACHE_DIR, Digests, ResultCache, case_key, merge_caches
from monostack.checks import ERROR, MONOREPO, CaseResult, Finding
from monostack.runner import run_checks
from tests.conftest import git_status, invoke, root_of
from tests.test_runner import add_project, commit_all

# -- store --------------------------------------------------------------------------------------


def sample(case: str = "alpha") -> list[CaseResult]:
    finding = Finding("lint", case, f"projects/{case}/x.py", 3, ERROR, "ruff F401: unused")
    return [CaseResult("lint", case, [finding], 1.25)]


def test_put_then_get_round_trips_and_the_folder_ignores_itself(tmp_path):
    store = ResultCache(tmp_path)
    assert store.get("ab" * 32) is None
    store.put("ab" * 32, sample())
    assert store.get("ab" * 32) == sample()
    assert (tmp_path / CACHE_DIR / ".gitignore").read_text().splitlines()[-1] == "*"


def test_no_cache_reads_and_writes_nothing(tmp_path):
    ResultCache(tmp_path).put("cd" * 32, sample())
    off = ResultCache(tmp_path, enabled=False)
    assert off.get("cd" * 32) is None
    off.put("ef" * 32, sample())
    assert not list((tmp_path / CACHE_DIR).rglob("ef*"))


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"format": 999}', b"[1, 2]"])
def test_a_damaged_entry_is_a_miss_not_a_crash(tmp_path, damage):
    store = ResultCache(tmp_path)
    key = "12" * 32
    store.put(key, sample())
    entry = next((tmp_path / CACHE_DIR / "results").rglob(f"{key}.json"))
    entry.write_bytes(damage)
    assert store.get(key) is None


def test_a_write_that_fails_half_way_leaves_no_entry_and_no_temp_file(tmp_path, monkeypatch):
    store = ResultCache(tmp_path)
    store.put("00" * 32, sample())  # the folder exists

    def boom(src, dst):
        raise OSError(28, "No space left on device (injected)")

    monkeypatch.setattr(cache_mod.os, "replace", boom)
    store.put("34" * 32, sample())  # swallowed: the run itself must stand
    monkeypatch.undo()
    assert store.get("34" * 32) is None
    leftovers = [p.name for p in (tmp_path / CACHE_DIR).rglob("*") if "-part" in p.name]
    assert leftovers == []


def test_a_cache_folder_that_is_a_symlink_is_never_written_through(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / CACHE_DIR).symlink_to(outside)
    store = ResultCache(repo)
    store.put("9a" * 32, sample())
    store.record_timings([CaseResult("lint", "x", [], 1.0)])
    assert list(outside.iterdir()) == []
    assert store.get("9a" * 32) is None


def test_temp_files_of_a_killed_run_are_swept_later(tmp_path):
    store = ResultCache(tmp_path)
    store.put("56" * 32, sample())
    stale = tmp_path / CACHE_DIR / "results" / "56" / ".tmp-killed.part"
    stale.write_bytes(b"half")
    os.utime(stale, (1, 1))
    fresh = stale.with_name(".tmp-running.part")
    fresh.write_bytes(b"being written by another run")
    store.put("78" * 32, sample())
    assert not stale.exists() and fresh.exists()


def test_a_killed_writers_temp_file_is_swept_by_the_next_run_a_live_ones_kept(tmp_path):
    ResultCache(tmp_path).put("56" * 32, sample())
    folder = tmp_path / CACHE_DIR / "results" / "56"
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)  # a pid that no longer runs
    killed = folder / f".{'56' * 32}.json.{dead}.x1y2.monostack-part"
    live = folder / f".{'56' * 32}.json.{os.getppid()}.x1y2.monostack-part"
    killed.write_bytes(b'{"half')
    live.write_bytes(b'{"being written')
    store = ResultCache(tmp_path)  # a run that only reads (every case a hit) sweeps too
    assert not killed.exists() and live.exists()
    assert store.get("56" * 32) == sample()


def _hammer(root: str, worker: int) -> None:
    store = ResultCache(Path(root))
    for i in range(40):
        store.put(f"{i % 8:02d}" * 32, sample(f"p{i % 8}"))  # every worker writes the same keys
        store.record_timings([CaseResult("lint", f"w{worker}-{i}", [], 0.5)])
        got = store.get(f"{i % 8:02d}" * 32)
        assert got is None or got == sample(f"p{i % 8}")


def test_concurrent_runs_never_see_a_torn_entry(tmp_path):
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_hammer, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = ResultCache(tmp_path)
    for i in range(8):
        assert store.get(f"{i:02d}" * 32) == sample(f"p{i}")
    assert isinstance(store.timings(), dict)  # a valid file, whichever writer won
    assert not [p for p in (tmp_path / CACHE_DIR).rglob("*.monostack-part")]


def test_merge_caches_unions_entries_and_timings(tmp_path):
    a, b, dest = (ResultCache(tmp_path / name) for name in ("a", "b", "dest"))
    a.put("aa" * 32, sample("x"))
    a.record_timings([CaseResult("lint", "x", [], 2.0)])
    b.put("bb" * 32, sample("y"))
    b.record_timings([CaseResult("lint", "y", [], 3.0)])
    assert merge_caches(dest.dir, [a.dir, b.dir]) == 2
    assert dest.get("aa" * 32) == sample("x") and dest.get("bb" * 32) == sample("y")
    assert dest.timings() == {"lint/x": 2.0, "lint/y": 3.0}


# -- keys ---------------------------------------------------------------------------------------


def test_digests_change_with_content_and_never_follow_a_symlink(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.txt").write_text("1")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("secret")
    (tmp_path / "p" / "link").symlink_to(outside)
    first = Digests(tmp_path).of("p")
    outside.write_text("changed outside the repo")
    assert Digests(tmp_path).of("p") == first  # the link's target text, not what it points at
    (tmp_path / "p" / "a.txt").write_text("2")
    assert Digests(tmp_path).of("p") != first
    assert Digests(tmp_path).of("missing") == "absent"


def test_case_key_covers_check_case_options_inputs_and_configs(tmp_path):
    (tmp_path / "in.txt").write_text("x")
    base = case_key("tool", Digests(tmp_path), "lint", "a", ["in.txt"])
    assert case_key("tool2", Digests(tmp_path), "lint", "a", ["in.txt"]) != base
    assert case_key("tool", Digests(tmp_path), "lint", "b", ["in.txt"]) != base
    assert case_key("tool", Digests(tmp_path), "lint", "a", ["in.txt"], "online") != base
    (tmp_path / ".yamllint.yml").write_text("extends: default\n")
    assert case_key("tool", Digests(tmp_path), "lint", "a", ["in.txt"]) != base


# -- run_checks: the cache never hides a change -------------------------------------------------

RAN: list[tuple[str, str]] = []


def counting_lint(root, projects, jobs=None, monorepo=True):
    cases = [p.name for p in projects] + ([MONOREPO] if monorepo else [])
    RAN.extend(("lint", c) for c in cases)
    return [CaseResult("lint", c, [], 0.01) for c in cases]


def counting_render_matrix(root, jobs=None, config=None, cases=None):
    from monostack.cases import combination_ids

    ids = list(cases) if cases is not None else combination_ids(root)
    RAN.extend(("render-matrix", c) for c in ids)
    return [CaseResult("render-matrix", c, [], 0.01) for c in ids]


def counting_bundle_validate(root, projects, online=False, config=None, cross=True, only=None):
    cases = [p.name for p in projects if only is None or p.dir in only]
    cases += ["cross-project"] if cross else []
    RAN.extend(("bundle-validate", c) for c in cases)
    return [CaseResult("bundle-validate", c, [], 0.01) for c in cases]


def counting_sync(root, config=None):
    RAN.append(("sync-workflows", MONOREPO))
    return []


CHECKS = ["lint", "render-matrix", "bundle-validate", "sync-workflows"]


@pytest.fixture
def counted(repo, monkeypatch):
    for check, fn in {
        "lint": "counting_lint",
        "render-matrix": "counting_render_matrix",
        "bundle-validate": "counting_bundle_validate",
        "sync-workflows": "counting_sync",
    }.items():
        monkeypatch.setitem(runner._ENTRY_POINTS, check, ("tests.test_cache", fn))
    root = root_of(repo)
    add_project(root, "alpha")
    add_project(root, "beta")
    commit_all(repo, "two projects")

    def run(**kwargs) -> set[tuple[str, str]]:
        RAN.clear()
        run_checks(root, CHECKS, jobs=1, progress=None, **kwargs)
        ran = {(check, case if check != "render-matrix" else "*") for check, case in RAN}
        return ran

    return root, run


def test_an_unchanged_repo_runs_nothing_the_second_time(counted):
    root, run = counted
    first = run()
    assert ("lint", "alpha") in first and ("render-matrix", "*") in first
    assert run() == set()
    assert run(cache=False) == first  # --no-cache runs everything


def test_a_project_file_change_reruns_that_projects_cases(counted):
    root, run = counted
    run()
    (root / "projects/alpha/src/train.py").write_text("print('v2')\n")
    assert run() == {
        ("lint", "alpha"),
        ("bundle-validate", "alpha"),
        ("bundle-validate", "cross-project"),
        ("sync-workflows", MONOREPO),
    }


def test_recorded_file_digests_never_hide_an_edit(counted, monkeypatch):
    """Digests recorded with each file's size, times and inode are reused only while all of
    them hold: an edit of the same size with the old modification time put back still
    re-runs the case (the change time moved)."""
    monkeypatch.setattr(filestat, "RACY_SECONDS", 0)  # record files written moments ago too
    root, run = counted
    run()
    assert (root / CACHE_DIR / cache_mod.DIGESTS_FILE).is_file()
    assert run() == set()
    target = root / "projects/alpha/src/train.py"
    before = target.stat()
    time.sleep(0.05)  # past the file system's clock tick
    target.write_text(target.read_text().replace("train", "tra1n"))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_size == before.st_size
    assert ("lint", "alpha") in run()


def test_a_recorded_digest_is_reused_and_a_fresh_file_is_not_recorded(tmp_path, monkeypatch):
    memo = tmp_path / CACHE_DIR / cache_mod.DIGESTS_FILE
    (tmp_path / "d").mkdir()
    (tmp_path / "d/f.txt").write_text("one\n")
    first = cache_mod.Digests(tmp_path, memo)
    digest, folder = first.of("d/f.txt"), first.of("d")
    first.save()
    assert not memo.exists()  # written just now: two writes in one clock tick look alike
    monkeypatch.setattr(filestat, "RACY_SECONDS", 0)
    second = cache_mod.Digests(tmp_path, memo)
    assert second.of("d/f.txt") == digest
    second.save()
    monkeypatch.setattr(cache_mod, "_file_sha", lambda path: pytest.fail(f"{path} read again"))
    assert cache_mod.Digests(tmp_path, memo).of("d/f.txt") == digest  # from the record, unread
    assert cache_mod.Digests(tmp_path, memo).of("d") == folder  # a folder's files too


def test_a_template_file_change_reruns_the_template_cases(counted):
    root, run = counted
    run()
    readme = root / "stack_template/project/README.md.j2"
    readme.write_text(readme.read_text() + "\nOne more line.\n")
    assert run() == {("lint", MONOREPO), ("render-matrix", "*"), ("sync-workflows", MONOREPO)}


def test_a_monorepo_yml_change_reruns_what_reads_it(counted):
    root, run = counted
    run()
    config = root / "monorepo.yml"
    config.write_text(config.read_text() + "\n# a comment is a change too\n")
    ran = run()
    assert {("lint", MONOREPO), ("render-matrix", "*"), ("sync-workflows", MONOREPO)} <= ran
    assert {("bundle-validate", "alpha"), ("bundle-validate", "beta")} <= ran


def test_a_checker_config_change_reruns_every_case(counted):
    root, run = counted
    first = run()
    config = root / ".yamllint.yml"
    config.write_text(config.read_text() + "\n# stricter one day\n")
    assert run() == first


def test_a_tool_version_change_reruns_every_case(counted, monkeypatch):
    root, run = counted
    first = run()
    real = cache_mod._package_version
    monkeypatch.setattr(
        cache_mod, "_package_version", lambda name: "99.0" if name == "ruff" else real(name)
    )
    assert run() == first


def test_a_crashed_check_is_not_remembered(counted, monkeypatch):
    root, run = counted

    def crash(*args, **kwargs):
        raise RuntimeError("flaky disk")

    monkeypatch.setattr("tests.test_cache.counting_sync", crash)
    run()
    monkeypatch.undo()
    for check, fn in {"sync-workflows": "counting_sync"}.items():
        monkeypatch.setitem(runner._ENTRY_POINTS, check, ("tests.test_cache", fn))
    assert ("sync-workflows", MONOREPO) in run()


# -- end to end ---------------------------------------------------------------------------------


def test_cli_warm_rerun_uses_the_cache_and_leaves_git_clean(shipped_repo):
    cold = invoke(shipped_repo, "test-all")
    assert cold.returncode == 0, cold.stdout + cold.stderr
    warm = invoke(shipped_repo, "test-all")
    assert warm.returncode == 0, warm.stdout + warm.stderr
    assert "cases unchanged: results from the cache" in warm.stdout
    assert warm.stdout.splitlines()[-1] == cold.stdout.splitlines()[-1]
    assert git_status(shipped_repo) == ""  # the cache folder ignores itself
    no_cache = invoke(shipped_repo, "lint", "--no-cache")
    assert no_cache.returncode == 0 and "from the cache" not in no_cache.stdout
    timings = json.loads((root_of(shipped_repo) / CACHE_DIR / "timings.json").read_text())
    assert "lint/project1" in timings


# -- kills: a SIGKILL at any cache write leaves nothing the next run keeps -----------------------


def _kill_at_write(n: int) -> None:
    """In a forked child: SIGKILL this process at its ``n``-th result-cache write, once the
    temporary file is complete and before its rename (where a kill leaves the most behind)."""
    from monostack import tempfiles

    real, calls = tempfiles.os.replace, []

    def replace(src, dst):
        if CACHE_DIR in str(dst):  # not the compiled-template cache, which warms up once
            calls.append(dst)
            if len(calls) == n:
                os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst)

    tempfiles.os.replace = replace


def test_kill_test_all_at_cache_writes_then_rerun(counted, repo, monkeypatch):
    import shutil

    from monostack import tempfiles
    from tests.test_kill import run_killed

    root, run = counted
    real, writes = tempfiles.os.replace, []

    def counting(src, dst):
        if CACHE_DIR in str(dst):
            writes.append(dst)
        real(src, dst)

    monkeypatch.setattr(tempfiles.os, "replace", counting)
    first = run()
    monkeypatch.undo()
    total = len(writes)
    assert total > 3  # entries and timings
    # the first writes and one in the middle (how many digests a run records varies by one: a
    # file changed within a clock tick of being hashed is not recorded)
    for n in sorted({1, 2, total // 2}):
        shutil.rmtree(root / CACHE_DIR)
        assert run_killed(lambda n=n: (_kill_at_write(n), run()), 1_000_000)
        parts = list((root / CACHE_DIR).rglob("*.monostack-part"))
        assert len(parts) <= 1, n  # the temporary of the write it was killed at, at most
        assert git_status(repo) == ""  # the cache ignores itself, leftovers included
        ran = run()  # the next run: sweeps, re-runs what was not stored, stores it
        assert not list((root / CACHE_DIR).rglob("*.monostack-part")), n
        assert ran <= first
        assert run() == set(), n  # and now everything is remembered


def test_an_emptied_gitignore_of_the_cache_is_rewritten(tmp_path):
    ResultCache(tmp_path).put("ab" * 32, sample())
    ignore = tmp_path / CACHE_DIR / ".gitignore"
    ignore.write_bytes(b"")  # a kill between its open and its one write
    ResultCache(tmp_path).put("cd" * 32, sample())
    assert ignore.read_bytes().splitlines()[-1] == b"*"
