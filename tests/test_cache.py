"""The cache of JSON sources: reused, rebuilt when stale or corrupt, never trusted after an interruption."""

import os

import numpy as np
import orjson
import pytest

import waferview.trace.ingest as ingest_module
from tracefiles import isolated_cache, make_steps, run_cli, write_dataset, write_trace  # noqa: F401
from waferview.errors import TraceFileError
from waferview.trace import cache as cache_module
from waferview.trace.source import load_source
from waferview.trace.store import cache_dir, cache_path_for

LAYOUT = {("mmlu", "anatomy"): [(4, 3, 2), (8, 2, 5), (15, 1, 1)]}


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "traces"
    write_dataset(root, "qwen3", LAYOUT)
    return root


@pytest.fixture
def parse_calls(monkeypatch):
    """Count parse_file calls; set .fail to make the next one raise."""
    real = ingest_module.parse_file

    class Calls:
        count = 0
        fail = None

        @staticmethod
        def parse(*args, **kwargs):
            Calls.count += 1
            if Calls.fail is not None:
                raise Calls.fail
            return real(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "parse_file", Calls.parse)
    return Calls


def facts(trace):
    return (trace.model.key, trace.requests, trace.prefill_tokens, trace.decode_tokens, len(trace.skipped))


def cache_files(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_second_run_reads_the_cache_not_the_json(root, parse_calls, isolated_cache):
    first = load_source(str(root))
    assert parse_calls.count == 3
    assert len(cache_files(isolated_cache)) == 1
    parse_calls.fail = AssertionError("the second run parsed JSON")
    second = load_source(str(root))
    assert parse_calls.count == 3
    assert facts(second) == facts(first) == ("qwen3", 3, 6, 8, 0)
    assert second.request_names == first.request_names
    np.testing.assert_array_equal(second.prefill_ids, first.prefill_ids)
    np.testing.assert_array_equal(second.decode_offsets, first.decode_offsets)
    assert isinstance(second.decode_ids.base, np.memmap) or isinstance(second.decode_ids, np.memmap)


def test_second_cli_run_reads_the_cache(root, parse_calls, capsys):
    code, out1, _ = run_cli(["summary", root, "--json"], capsys)
    assert code == 0 and parse_calls.count == 3
    parse_calls.fail = AssertionError("parsed again")
    code, out2, err = run_cli(["summary", root, "--json"], capsys)
    assert code == 0 and parse_calls.count == 3 and err == ""
    keys = ("model", "requests", "prefill_tokens", "decode_tokens", "files_skipped", "skipped")
    f1, f2 = orjson.loads(out1), orjson.loads(out2)
    assert [f1[k] for k in keys] == [f2[k] for k in keys] == ["qwen3", 3, 6, 8, 0, []]


def test_no_cache_parses_again(root, parse_calls):
    load_source(str(root))
    load_source(str(root), use_cache=False)
    assert parse_calls.count == 6


def test_changed_file_makes_the_cache_stale(root, parse_calls, capsys):
    load_source(str(root))
    path = next(root.rglob("8.json"))
    write_trace(path, make_steps("qwen3", 10, 1))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    capsys.readouterr()
    trace = load_source(str(root))
    assert capsys.readouterr().err == f"waferview: trace cache for {root} is stale (files changed); rebuilding\n"
    assert facts(trace) == ("qwen3", 3, 14, 4, 0)
    assert parse_calls.count == 6


def test_added_and_removed_files_make_the_cache_stale(root, capsys):
    load_source(str(root))
    write_trace(root / "new" / "1.json", make_steps("qwen3", 1, 1))
    capsys.readouterr()
    assert facts(load_source(str(root))) == ("qwen3", 4, 7, 9, 0)
    assert "is stale (files changed); rebuilding" in capsys.readouterr().err
    (root / "new" / "1.json").unlink()
    assert facts(load_source(str(root))) == ("qwen3", 3, 6, 8, 0)
    assert "is stale" in capsys.readouterr().err
    load_source(str(root))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("damage", ["truncate", "header", "magic", "data"])
def test_corrupt_cache_is_rebuilt_with_a_notice(root, capsys, isolated_cache, damage):
    load_source(str(root))
    path = isolated_cache / cache_files(isolated_cache)[0]
    blob = bytearray(path.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) - 100]
    elif damage == "header":
        blob[20:40] = b"\x00garbage garbage \xff\xfe"
    elif damage == "magic":
        blob[:8] = b"NOTMAGIC"
    else:
        blob[-10:] = bytes(10 * [0xAB])
    path.write_bytes(bytes(blob))
    capsys.readouterr()
    trace = load_source(str(root))
    assert capsys.readouterr().err == f"waferview: trace cache for {root} is corrupt; rebuilding\n"
    assert facts(trace) == ("qwen3", 3, 6, 8, 0)
    load_source(str(root))
    assert capsys.readouterr().err == ""  # the rebuilt cache is trusted


def test_interrupted_ingest_leaves_no_cache(root, parse_calls, isolated_cache):
    real = parse_calls.parse

    def interrupt_on_second(*args, **kwargs):
        if parse_calls.count == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    ingest_module.parse_file = interrupt_on_second
    with pytest.raises(KeyboardInterrupt):
        load_source(str(root))
    assert cache_files(isolated_cache) == []
    ingest_module.parse_file = parse_calls.parse
    assert facts(load_source(str(root))) == ("qwen3", 3, 6, 8, 0)


def test_interrupted_rebuild_keeps_distrusting_the_old_cache(root, parse_calls, capsys):
    load_source(str(root))
    write_trace(root / "more" / "2.json", make_steps("qwen3", 2, 2))
    parse_calls.fail = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        load_source(str(root))
    parse_calls.fail = None
    capsys.readouterr()
    assert facts(load_source(str(root))) == ("qwen3", 4, 8, 10, 0)
    assert "is stale" in capsys.readouterr().err


def test_interrupted_write_leaves_nothing(root, monkeypatch, isolated_cache):
    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_source(str(root))
    assert cache_files(isolated_cache) == []  # neither a cache nor a temp file


def test_leftover_temp_and_half_written_cache_are_not_trusted(root, capsys, isolated_cache):
    target = cache_path_for(root, "auto")
    target.parent.mkdir(parents=True)
    (target.parent / (target.name + ".abc123.tmp")).write_bytes(b"WVTRACE\n" + b"\x00" * 50)
    target.write_bytes(b"WVTRACE\n\x10\x00\x00\x00\x00\x00\x00\x00{\"format_ver")
    trace = load_source(str(root))
    assert "is corrupt; rebuilding" in capsys.readouterr().err
    assert facts(trace) == ("qwen3", 3, 6, 8, 0)


def test_strict_over_a_cache_with_skipped_files(root, parse_calls):
    bad = root / "Qwen" / "zz.json"
    write_trace(bad, make_steps("qwen3", 2, 0)[:1] + [{"0": None}])
    trace = load_source(str(root))
    assert facts(trace) == ("qwen3", 3, 6, 8, 1)
    with pytest.raises(TraceFileError) as parsed:
        load_source(str(root), strict=True, use_cache=False)
    count = parse_calls.count
    parse_calls.fail = AssertionError("parsed again")
    with pytest.raises(TraceFileError) as cached:
        load_source(str(root), strict=True)
    assert parse_calls.count == count
    assert str(cached.value) == str(parsed.value)
    assert str(cached.value).startswith(f"{root}/Qwen/zz.json: step 1: layer keys do not match qwen3 (inferred from")


def test_model_option_gets_its_own_cache(root, isolated_cache):
    load_source(str(root))
    load_source(str(root), model="qwen3")
    names = cache_files(isolated_cache)
    assert len(names) == 2 and any("-auto-" in n for n in names) and any("-qwen3-" in n for n in names)


def test_cache_location_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WAFERVIEW_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("WAFERVIEW_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "waferview"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "waferview"


def test_unwritable_cache_is_a_notice_not_an_error(root, monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("WAFERVIEW_CACHE_DIR", str(blocker / "sub"))
    trace = load_source(str(root))
    assert facts(trace) == ("qwen3", 3, 6, 8, 0)
    err = capsys.readouterr().err
    assert err.startswith("waferview: cannot write the trace cache ") and err.endswith("; continuing without it\n")
