"""Writes stay where they belong: exclusive temporary files, leftovers of killed writers cleaned up (but
never a live writer's), cache files never group- or world-writable, a cache folder that is a file named."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pytest

from simcases import random_trace
from tracefiles import isolated_cache, run_subprocess, write_dataset  # noqa: F401
from waferview.models import get_model
from waferview.trace.cache import save_cache
from waferview.trace.source import load_source
from waferview.trace.store import cache_path_for


@pytest.fixture
def ds(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, "qwen3", {("mmlu", "a"): [(1, 2, 2), (5, 1, 3)]})
    return root


def tmp_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) if folder.exists() else []


WRITER = textwrap.dedent("""
    import sys, time
    import waferview.trace.cache as cache
    cache.os.fsync = lambda fd: time.sleep(600)     # stuck in the middle of writing the cache
    from waferview.trace.source import load_source
    load_source(sys.argv[1])
""")


def start_stuck_writer(ds, folder):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(ds)], env=os.environ)
    for _ in range(600):
        if tmp_files(folder):
            return writer
        time.sleep(0.05)
    writer.kill()
    raise AssertionError("the writer never started its temporary file")


def test_a_killed_writer_leaves_nothing_after_the_next_run(ds, isolated_cache):
    writer = start_stuck_writer(ds, isolated_cache)
    try:
        # while it is alive, another run leaves its temporary file alone
        proc = run_subprocess(["insights", ds, "--json"])
        assert proc.returncode == 0 and len(tmp_files(isolated_cache)) == 1
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert len(tmp_files(isolated_cache)) == 1          # kill -9 cannot clean up after itself
    proc = run_subprocess(["insights", ds, "--json"])   # the next run does
    assert proc.returncode == 0 and tmp_files(isolated_cache) == []


def test_save_cache_removes_dead_temporaries_of_its_target_only(tmp_path):
    trace = random_trace(np.random.default_rng(1), get_model("llama4"), requests=3)
    dead = tmp_path / "x.wvtrace.abc123.tmp"
    dead.write_bytes(b"WVTRACE\n" + b"\0" * 100)          # unlocked: its writer is gone
    other = tmp_path / "y.wvtrace.abc123.tmp"
    other.write_bytes(b"\0" * 100)
    save_cache(tmp_path / "x.wvtrace", trace)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.wvtrace", "y.wvtrace.abc123.tmp"]


def test_temporary_files_never_follow_a_planted_symlink(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    trace = random_trace(np.random.default_rng(1), get_model("llama4"), requests=3)
    planted = iter(["planted", "fresh"])
    os.symlink(victim, tmp_path / "x.wvtrace.planted.tmp")
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: planted)   # the first name tried is taken
    save_cache(tmp_path / "x.wvtrace", trace)
    assert victim.read_text() == "precious"


def test_the_hub_listing_is_written_without_a_predictable_name(tmp_path, monkeypatch, isolated_cache):
    from waferview.trace import hub

    victim = tmp_path / "victim"
    victim.write_text("precious")
    sel = hub.select("qwen3", "mmlu")
    path = hub._listing_path(sel, hub.DEFAULT_REVISION)
    path.parent.mkdir(parents=True)
    os.symlink(victim, path.with_name(f"{path.name}.{os.getpid()}.tmp"))   # the old predictable name
    hub._write_listing(sel, hub.DEFAULT_REVISION, [(f"{sel.prefix}/1.json", 10)])
    assert victim.read_text() == "precious"
    assert hub._read_listing(sel, hub.DEFAULT_REVISION) == [(f"{sel.prefix}/1.json", 10)]


def test_a_planted_listing_cannot_point_outside_the_selection(isolated_cache):
    from waferview.trace import hub

    sel = hub.select("qwen3", "mmlu")
    hub._write_listing(sel, hub.DEFAULT_REVISION, [(f"{sel.prefix}/../../../etc/passwd", 10)])
    assert hub._read_listing(sel, hub.DEFAULT_REVISION) is None


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022])
def test_cache_files_are_never_group_or_world_writable(ds, isolated_cache, umask):
    proc = subprocess.run([sys.executable, "-c", f"import os, sys; os.umask({umask}); from waferview.cli.main import "
                           f"main; sys.exit(main(['insights', {str(ds)!r}, '--json']))"],
                          capture_output=True, text=True, env=os.environ, timeout=120)
    assert proc.returncode == 0, proc.stderr
    mode = stat.S_IMODE(os.stat(cache_path_for(ds, "auto")).st_mode)
    assert mode & 0o022 == 0 and mode & 0o444 == 0o444 & ~umask
    assert stat.S_IMODE(os.stat(isolated_cache).st_mode) & 0o022 == 0


def test_a_cache_folder_that_is_a_file_is_named(ds, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("WAFERVIEW_CACHE_DIR", str(blocker))
    proc = run_subprocess(["insights", ds, "--json"])
    assert proc.returncode == 0 and '"requests":2' in proc.stdout
    target = blocker / cache_path_for(ds, "auto").name
    assert proc.stderr == (f"waferview: cannot write the trace cache {target} ({blocker} is a file, not a folder: set "
                           "WAFERVIEW_CACHE_DIR to a folder); continuing without it\n")
    assert blocker.read_text() == "x"


def test_interrupted_cache_write_in_a_subprocess_leaves_no_cache(ds, isolated_cache):
    writer = start_stuck_writer(ds, isolated_cache)
    writer.send_signal(signal.SIGINT)
    try:
        writer.wait(timeout=60)
    finally:
        writer.kill()
    assert tmp_files(isolated_cache) == [] and not cache_path_for(ds, "auto").exists()
    assert load_source(str(ds)).requests == 2
