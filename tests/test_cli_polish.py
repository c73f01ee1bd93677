"""CLI polish: "did you mean" with the command's usage, bytes in human units in tables (raw in JSON),
and `waferview cache list | clear | path`."""

from __future__ import annotations

import io
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from waferview.cli.main import main
from waferview.models import get_model
from waferview.report.summary import format_field, human_bytes
from waferview.synth.generate import default_params, generate, generate_to_cache
from waferview.synth.json_dataset import write_dataset
from waferview.trace.cache import MAGIC
from waferview.trace.source import load_source


@pytest.fixture(scope="module")
def qwen_cache(tmp_path_factory):
    m = get_model("qwen3")
    path = tmp_path_factory.mktemp("polish") / "q.wvtrace"
    generate_to_cache(m, 4, 3, path, params=replace(default_params(m), max_decode=3, prefill_median=4.0))
    return str(path)


def usage_error(capsys, argv) -> list[str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err.splitlines()


# ---- did you mean -------------------------------------------------------------------------------

def test_misspelled_option_gets_a_suggestion_and_the_usage(capsys, qwen_cache):
    lines = usage_error(capsys, ["summary", qwen_cache, "--bach", "3"])
    assert lines[0] == "waferview summary: error: unrecognized arguments: --bach (did you mean --batch?), 3"
    assert lines[1].startswith("usage: waferview summary [-h] ")
    assert any("[--batch N]" in line for line in lines[1:])


def test_misspelled_option_with_equals_and_an_extra_positional(capsys, qwen_cache):
    lines = usage_error(capsys, ["compare", qwen_cache, "--mdoes=ep/off"])
    assert lines[0] == "waferview compare: error: unrecognized argument: --mdoes=ep/off (did you mean --modes?)"
    assert lines[1].startswith("usage: waferview compare ")
    lines = usage_error(capsys, ["insights", qwen_cache, "extra"])
    assert lines[0] == "waferview insights: error: unrecognized argument: extra"


def test_misspelled_command(capsys):
    lines = usage_error(capsys, ["sumary", "x"])
    assert lines == ["waferview: error: unknown command 'sumary' (did you mean summary?)",
                     "usage: waferview [-h] [--version] COMMAND ..."]
    lines = usage_error(capsys, ["frobnicate"])
    assert lines[0] == "waferview: error: unknown command 'frobnicate'"


def test_misspelled_choice_stays_one_line(capsys, qwen_cache):
    lines = usage_error(capsys, ["summary", qwen_cache, "--eviction", "lur"])
    assert lines == ["waferview summary: error: argument --eviction: invalid choice: 'lur' (choose from 'admit', "
                     "'lru', 'never') (did you mean lru?)"]


# ---- bytes in tables -----------------------------------------------------------------------------

@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (37_748_736, "37.7 MB"),
                                     (118_822_816_186_368, "118.8 TB"), (2.5e18, "2500.0 PB")])
def test_human_bytes(n, text):
    assert human_bytes(n) == text


def test_only_byte_fields_change(capsys):
    assert format_field("remote_read_bytes", 118_822_816_186_368) == "118.8 TB"
    assert format_field("hops", 118_822_816_186_368) == "118,822,816,186,368"
    assert format_field("bytes_per_param", 2.0) == "2"


def test_summary_table_in_human_units_json_raw(capsys, qwen_cache):
    assert main(["summary", qwen_cache, "--json", "--mesh", "8x3"]) == 0
    fields = orjson.loads(capsys.readouterr().out)
    assert isinstance(fields["local_read_bytes"], int) and fields["local_read_bytes"] > 10**9
    assert main(["summary", qwen_cache, "--mesh", "8x3"]) == 0
    table = {line.split()[0]: line.split(None, 1)[1] for line in capsys.readouterr().out.splitlines()[1:]
             if line.startswith("  ") and len(line.split()) > 1}
    for key in ("remote_read_bytes", "local_read_bytes", "local_write_bytes", "header_bytes"):
        assert table[key] == human_bytes(fields[key]), key
    assert table["hops"] == f"{fields['hops']:,}"


def test_compare_table_in_human_units(capsys, qwen_cache):
    assert main(["compare", qwen_cache, "--json", "--mesh", "8x3", "--modes", "allo/heatmap"]) == 0
    rows = orjson.loads(capsys.readouterr().out)["rows"]
    assert main(["compare", qwen_cache, "--mesh", "8x3", "--modes", "allo/heatmap"]) == 0
    lines = capsys.readouterr().out.splitlines()
    body = [line for line in lines if line.startswith(("Base ", "Allo+Pred "))]
    for row, line in zip(rows, body):
        assert f"  {human_bytes(row['remote_read_bytes'])}  " in line


# ---- waferview cache -----------------------------------------------------------------------------

@pytest.fixture
def cache_folder(tmp_path, monkeypatch):
    """Two real caches (from two JSON sources), a stale unfinished write, a fresh one, and files that are
    not waferview's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("WAFERVIEW_CACHE_DIR", str(folder))
    for name, model in (("a", "llama4"), ("b", "qwen3")):
        m = get_model(model)
        write_dataset(generate(m, 2, 0, replace(default_params(m), max_decode=2)), tmp_path / name)
        load_source(str(tmp_path / name))                # builds its cache
    old_tmp = folder / "a-auto-0123.wvtrace.k2j3h4.tmp"
    old_tmp.write_bytes(b"half")
    os.utime(old_tmp, (time.time() - 7200, time.time() - 7200))
    (folder / "b-auto-4567.wvtrace.abcd12.tmp").write_bytes(b"being written right now")
    (folder / "notes.txt").write_text("mine")
    (folder / "fake.wvtrace").write_bytes(b"not a cache")
    (folder / "link.wvtrace").symlink_to(next(folder.glob("a-*.wvtrace")))
    return folder


def test_cache_path(capsys, cache_folder):
    assert main(["cache", "path"]) == 0
    assert capsys.readouterr().out == f"{cache_folder}\n"


def test_cache_list_names_every_cache_and_nothing_else(capsys, cache_folder, tmp_path):
    capsys.readouterr()
    assert main(["cache", "list", "--json"]) == 0
    listing = orjson.loads(capsys.readouterr().out)
    files = {Path(f["path"]).name: f for f in listing["files"]}
    caches = sorted(p.name for p in cache_folder.glob("[ab]-auto-*.wvtrace"))
    assert sorted(files) == sorted([*caches, "a-auto-0123.wvtrace.k2j3h4.tmp"])
    by_source = {f["source"]: f for f in listing["files"] if f["kind"] == "cache"}
    assert set(by_source) == {str(tmp_path / "a"), str(tmp_path / "b")}
    assert (by_source[str(tmp_path / "a")]["model"], by_source[str(tmp_path / "a")]["requests"]) == ("llama4", 2)
    assert by_source[str(tmp_path / "b")]["model"] == "qwen3"
    for f in listing["files"]:
        assert f["bytes"] == os.path.getsize(f["path"])
    assert files["a-auto-0123.wvtrace.k2j3h4.tmp"]["kind"] == "unfinished write"
    assert listing["total_bytes"] == sum(f["bytes"] for f in listing["files"])
    assert main(["cache", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == f"waferview cache: {cache_folder} (3 files, {human_bytes(listing['total_bytes'])})"
    assert table[1].split() == ["size", "age", "model", "requests", "source", "file"]
    a_row = next(line for line in table if line.endswith(next(n for n in caches if n.startswith("a-"))))
    assert f"llama4         2  {tmp_path / 'a'}" in a_row and " s  " in a_row


def test_cache_clear_asks_and_removes_only_waferview_files(capsys, cache_folder, monkeypatch):
    before = sorted(p.name for p in cache_folder.iterdir())
    # no terminal to ask on: refused
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    assert main(["cache", "clear"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("waferview cache: clear would remove 3 waferview cache files (") and \
        err.endswith("and there is no terminal to ask on: pass --yes\n")
    assert sorted(p.name for p in cache_folder.iterdir()) == before

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty("n\n"))
    assert main(["cache", "clear"]) == 0
    assert "[y/N]" in capsys.readouterr().err
    assert sorted(p.name for p in cache_folder.iterdir()) == before
    monkeypatch.setattr(sys, "stdin", Tty("y\n"))
    assert main(["cache", "clear"]) == 0
    assert "removed 3 files" in capsys.readouterr().err
    assert sorted(p.name for p in cache_folder.iterdir()) == ["b-auto-4567.wvtrace.abcd12.tmp", "fake.wvtrace",
                                                               "link.wvtrace", "notes.txt"]
    assert main(["cache", "clear", "--yes"]) == 0
    assert capsys.readouterr().err == f"waferview cache: nothing to clear in {cache_folder}\n"


def test_cache_clear_yes_does_not_ask(capsys, cache_folder, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["cache", "clear", "--yes"]) == 0
    assert not list(cache_folder.glob("[ab]-auto-*.wvtrace"))
    assert (cache_folder / "notes.txt").read_text() == "mine" and (cache_folder / "fake.wvtrace").exists()


def test_cache_folder_that_is_a_file(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "cache"
    blocker.write_bytes(MAGIC)
    monkeypatch.setenv("WAFERVIEW_CACHE_DIR", str(blocker))
    for action in ("list", "clear", "path"):
        assert main(["cache", action]) == 2
        assert capsys.readouterr().err == (f"waferview cache: the cache folder {blocker} (WAFERVIEW_CACHE_DIR) "
                                           "is not a directory\n")


def test_no_cache_folder_yet(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WAFERVIEW_CACHE_DIR", str(tmp_path / "none"))
    assert main(["cache", "list"]) == 0
    assert capsys.readouterr().out == f"waferview cache: {tmp_path / 'none'} (0 files, 0 B)\n"
    assert not (tmp_path / "none").exists()
