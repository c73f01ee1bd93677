"""Nothing a path, a file name or a number can do makes waferview block, eat memory, crash or lie.

Each rule is checked where it is enforced and through a real process (exit code and the one stderr line):
only regular files are read (FIFOs, devices), with size caps; symlink loops and names that are not
UTF-8 are named; a file rewritten behind the cache's back is read again; every number option and every
hardware field is range-checked before any kernel (never exit 1, never numba's TypingError)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import orjson
import pytest

from tracefiles import (dataset_file, isolated_cache, make_steps, run_subprocess, write_dataset,  # noqa: F401
                        write_trace)
from waferview.errors import InputError, TraceFileError
from waferview.models import MODELS
from waferview.trace.source import load_source
from waferview.wafer.hardware import NUMBER_RANGES, load_hardware


def one_line(proc, code=2):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr.strip()


@pytest.fixture
def ds(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, "qwen3", {("mmlu", "a"): [(1, 2, 2), (5, 1, 3)]})
    return root


# ---- only regular files are read -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["pipe", "pipe.json", "pipe.wvtrace", "pipe.jsonl", "rank0.safetensors"])
def test_a_fifo_as_source(tmp_path, name):
    os.mkfifo(tmp_path / name)
    line = one_line(run_subprocess(["summary", tmp_path / name]))
    assert line.startswith(f"waferview summary: {tmp_path / name}: a FIFO (named pipe), not a regular file")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_as_source_and_as_mesh(device):
    assert one_line(run_subprocess(["insights", device])) == (
        f"waferview insights: {device}: a character device, not a regular file (SOURCE is a directory, a .json "
        "trace file, a .wvtrace cache or hf:...)")
    assert one_line(run_subprocess(["summary", "--mesh", device])) == (
        f"waferview summary: {device}: cannot read the hardware file: a character device, not a regular file")


def test_a_fifo_as_mesh_file(tmp_path):
    os.mkfifo(tmp_path / "hw.json")
    assert one_line(run_subprocess(["summary", "--mesh", tmp_path / "hw.json"])).endswith(
        "hw.json: cannot read the hardware file: a FIFO (named pipe), not a regular file")


def test_a_fifo_at_the_cache_path_is_replaced(ds, isolated_cache, capsys):
    from waferview.trace.store import cache_path_for

    target = cache_path_for(ds, "auto")
    target.parent.mkdir(parents=True)
    os.mkfifo(target)
    proc = run_subprocess(["insights", ds, "--json"])
    assert proc.returncode == 0
    assert proc.stderr == (f"waferview: trace cache for {ds} is a FIFO (named pipe), not a regular file ({target}); "
                           "rebuilding\n")
    assert target.is_file() and run_subprocess(["insights", ds, "--json"]).stderr == ""


def test_fifos_and_devices_inside_a_source_are_skipped_files(ds):
    os.mkfifo(ds / "pipe.json")
    os.symlink("/dev/zero", ds / "zero.json")
    trace = load_source(str(ds))
    assert trace.requests == 2
    assert {s["file"]: s["reason"] for s in trace.skipped} == {
        "pipe.json": "a FIFO (named pipe), not a regular file",
        "zero.json": "a character device, not a regular file"}


def test_size_caps(tmp_path, monkeypatch):
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps({"width": 2, "description": "x" * (1 << 20)}))
    with pytest.raises(InputError, match=r"hw.json: cannot read the hardware file: 1 MiB, over the 1 MiB a "
                                         r"hardware file may have"):
        load_hardware(str(hw))
    from waferview.trace import parse

    monkeypatch.setattr(parse, "MAX_TRACE_FILE_BYTES", 1000)
    path = write_trace(tmp_path / "big.json", make_steps("qwen3", 2, 1))
    with pytest.raises(TraceFileError, match=r"big.json: cannot read: \d+(\.\d+)? KiB, over the 1000 bytes a trace "
                                             r"file may have"):
        parse.parse_file(path)


# ---- names: loops, dangling links, bytes that are not UTF-8 -----------------------------------------

def test_symlink_loops_are_named_as_loops(tmp_path, ds):
    os.symlink(tmp_path / "b.json", tmp_path / "a.json")
    os.symlink(tmp_path / "a.json", tmp_path / "b.json")
    assert one_line(run_subprocess(["summary", tmp_path / "a.json"])) == (
        f"waferview summary: {tmp_path / 'a.json'}: symlink loop (too many levels of symbolic links)")
    os.symlink("self.json", ds / "self.json")
    os.symlink("..", ds / "Qwen" / "up")
    trace = load_source(str(ds))
    assert trace.requests == 2 and {s["file"]: s["reason"] for s in trace.skipped} == {
        "self.json": "cannot read: symlink loop (too many levels of symbolic links)",
        "Qwen/up/": "symlink loop (the folder link points back to a folder above it)"}


def test_names_that_are_not_utf8_are_skipped_with_a_reason(ds):
    good = next(ds.rglob("*.json"))
    os.makedirs(os.fsencode(ds) + b"/caf\xe9", exist_ok=True)
    for name in (b"/caf\xe9/1.json", b"/bad\xff.json"):
        with open(os.fsencode(ds) + name, "wb") as f:
            f.write(good.read_bytes())
    proc = run_subprocess(["summary", ds, "--json"])
    assert proc.returncode == 0, proc.stderr
    result = orjson.loads(proc.stdout)
    assert result["requests"] == 2 and result["skipped"] == [
        {"file": "bad\\xff.json", "reason": "file name is not valid UTF-8 (not read)"},
        {"file": "caf\\xe9/", "reason": "folder name is not valid UTF-8 (its files are not read)"}]
    assert one_line(run_subprocess(["summary", ds, "--strict"])) == (
        f"waferview summary: {ds}/bad\\xff.json: file name is not valid UTF-8 (not read)")
    # given by name, such a file is read, and named with escapes
    single = os.fsencode(ds) + b"/bad\xff.json"
    proc = subprocess.run([sys.executable, "-m", "waferview", "insights", single, "--json"], capture_output=True,
                          env=os.environ, timeout=120)
    assert proc.returncode == 0 and orjson.loads(proc.stdout)["source"].endswith("bad\\xff.json")


def test_a_deep_tree_is_walked_without_recursion(tmp_path):
    folder = tmp_path / "deep"
    levels = [str(folder)]
    for _ in range(1200):   # Python's recursion limit is 1000 (os.makedirs and rmtree recurse too)
        levels.append(os.path.join(levels[-1], "d"))
    for level in levels:
        os.mkdir(level)
    try:
        write_trace(os.path.join(levels[-1], "1.json"), make_steps("llama4", 1, 1))
        assert load_source(str(folder)).request_names == ("/".join(["d"] * 1200) + "/1.json",)
    finally:
        os.unlink(os.path.join(levels[-1], "1.json"))
        for level in reversed(levels):
            os.rmdir(level)


@pytest.mark.parametrize("big", [2 ** 64, 2 ** 70, -(2 ** 70)])
def test_a_huge_id_is_an_integer_out_of_range(tmp_path, big):
    steps = make_steps("qwen3", 2, 1)
    steps[1]["3"][0][5] = big
    path = write_trace(tmp_path / "1.json", steps)
    assert one_line(run_subprocess(["insights", path, "--strict"])) == (
        f"waferview insights: {path}: step 1 layer 3 row 0: expert id {big} out of range (qwen3 has 128 experts: "
        "0..127)")


@pytest.mark.parametrize("model", ["qwen3", "kimi"])
def test_a_repeated_id_in_a_row_is_a_bad_row(tmp_path, model):
    steps = make_steps(model, 3, 2)
    layer = MODELS[model].moe_layer_keys[2]
    row = steps[0][layer][1]
    row[4] = row[1]
    path = write_trace(tmp_path / "1.json", steps)
    assert one_line(run_subprocess(["insights", path, "--strict"])) == (
        f"waferview insights: {path}: step 0 (prefill) layer {layer} row 1: expert id {row[1]} appears more than "
        f"once (a row names 8 distinct experts)")


def test_the_model_comes_from_the_dataset_folders_never_an_unrelated_parent(tmp_path):
    traces = tmp_path / "home" / "kimi" / "traces"
    write_dataset(traces, "llama4", {("mmlu", "a"): [(1, 2, 2), (2, 1, 1)]})
    flat = tmp_path / "home" / "kimi" / "flat"
    write_trace(flat / "1.json", make_steps("llama4", 1, 1))
    for root in (traces, flat):
        by_path = orjson.loads(run_subprocess(["insights", root, "--json"]).stdout)
        proc = subprocess.run([sys.executable, "-m", "waferview", "insights", ".", "--json"], capture_output=True,
                              text=True, cwd=root, env=os.environ, timeout=120)
        as_dot = orjson.loads(proc.stdout)
        assert by_path["model"] == as_dot["model"] == "llama4"
        assert by_path["files_skipped"] == as_dot["files_skipped"] == 0
        assert by_path["requests"] == as_dot["requests"] > 0


# ---- stale means stale -------------------------------------------------------------------------------

def test_a_rewrite_with_size_and_mtime_restored_is_stale(ds, capsys):
    before = load_source(str(ds))
    path = dataset_file(ds, "qwen3", "mmlu", "a", 1)
    st = os.stat(path)
    steps = json.loads(path.read_text())
    row = steps[0]["0"][0]
    row[0], row[1] = row[1], row[0]   # other ids, same bytes count
    path.write_text(json.dumps(steps, indent=4))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns
    capsys.readouterr()
    after = load_source(str(ds))
    assert capsys.readouterr().err == f"waferview: trace cache for {ds} is stale (files changed); rebuilding\n"
    assert int(after.prefill_ids[0, 0, 0]) == int(before.prefill_ids[0, 0, 1])


def test_a_file_that_comes_back_is_read_again(tmp_path, ds, capsys):
    kept = tmp_path / "kept.json"
    write_trace(kept, make_steps("qwen3", 1, 1))
    link = ds / "late.json"
    os.symlink(tmp_path / "missing.json", link)
    assert load_source(str(ds)).requests == 2
    os.rename(kept, tmp_path / "missing.json")   # the link's target appears: size and mtime of the link unchanged
    capsys.readouterr()
    trace = load_source(str(ds))
    assert trace.requests == 3 and trace.skipped == ()
    assert "is stale" in capsys.readouterr().err


# ---- every number is range-checked before any kernel ---------------------------------------------------

def _number_options():
    from waferview.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.option_strings and action.type is not None and action.type.__name__ in ("integer", "number"):
                yield name, action.option_strings[0], action.type.__name__


NUMBER_OPTIONS = sorted(set(_number_options()))


def test_the_sim_options_are_all_bounded():
    bounded = {option for command, option, _ in NUMBER_OPTIONS if command == "summary"}
    assert {"--batch", "--seed", "--block-size", "--max-split", "--top-n", "--copy-slots",
            "--bytes-per-param"} <= bounded


@pytest.mark.parametrize("command, option, kind", NUMBER_OPTIONS)
@pytest.mark.parametrize("value", ["100000000000000000000", "-100000000000000000000", "nan", "true"])
def test_every_number_option_refuses_absurd_values(command, option, kind, value):
    from waferview.cli.main import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([command, option, value] + (["--model", "qwen3"] if command in ("fetch", "synth") else []))
    assert exit_info.value.code == 2


@pytest.mark.parametrize("option, value, message", [
    ("--seed", "100000000000000000000", "argument --seed: 100000000000000000000: out of range; expected a seed from 0"),
    ("--copy-slots", "100000000000000000000", "argument --copy-slots: 100000000000000000000: out of range"),
    ("--block-size", "100000000000000000000", "argument --block-size: 100000000000000000000: out of range"),
    ("--max-split", "100000000000000000000", "argument --max-split: 100000000000000000000: out of range"),
    ("--top-n", "-3", "argument --top-n: -3: out of range; expected a number of experts from 1"),
    ("--batch", "1000000000", "argument --batch: 1000000000: out of range; expected a number of requests from 1 to "
                              "1,048,576 (64x the paper's largest batch"),
    ("--bytes-per-param", "inf", "argument --bytes-per-param: 'inf': expected bytes per weight, a number in (0, 8]"),
])
def test_out_of_range_options_in_a_real_process(option, value, message):
    line = one_line(run_subprocess(["summary", option, value]))
    assert line.startswith(f"waferview summary: error: {message}")


def test_a_huge_batch_is_arithmetic_not_an_array():
    import numpy as np

    from waferview.limits import MAX_BATCH
    from waferview.sim.batch import select_batch

    trace = load_source(None, model="llama4")
    R = trace.requests
    for batch, seed in ((7, 3), (R, 0), (R + 5, 1), (5 * R + 3, 2)):
        got = select_batch(trace, batch, seed)
        order = np.random.default_rng(seed).permutation(R)          # the definition: cycle the seeded order
        want_requests, want_weights = np.unique(order[np.arange(batch) % R], return_counts=True)
        np.testing.assert_array_equal(got.requests, want_requests)
        np.testing.assert_array_equal(got.weights, want_weights)
    big = select_batch(trace, MAX_BATCH, 0)
    assert len(big.requests) == R and int(big.weights.sum()) == MAX_BATCH
    with pytest.raises(InputError, match=r"^--batch 1048577: expected a number of requests from 1 to 1,048,576"):
        select_batch(trace, MAX_BATCH + 1, 0)
    with pytest.raises(InputError, match=r"^--batch True: expected"):
        select_batch(trace, True, 0)


@pytest.mark.parametrize("fields, message", [
    ({"hbm_gb": 1e308}, "hbm_gb must be a number from 0.001 to 1e+06, got 1e+308"),
    ({"request_header_bytes": 10 ** 19}, "request_header_bytes must be an integer from 0 to 1048576, got "
                                         "10000000000000000000"),
    ({"die_tflops": 1e-308}, "die_tflops must be a number from 0.001 to 1e+06, got 1e-308"),
    ({"link_efficiency": 1e-300}, "link_efficiency must be a number from 0.001 to 1, got 1e-300"),
    ({"hbm_efficiency": {"default": True}}, "hbm_efficiency['default'] must be in (0, 1], got true"),
    ({"compute_efficiency": {"default": [[True, 0.5]]}},
     "compute_efficiency['default']: max_batch must be a positive integer or null, got true"),
    ({"width": True}, "width must be an integer, got true"),
    ({"name": 5}, "name must be a string of at most 4096 characters"),
] + [({name: True}, f"{name} must be a number, got true") for name in NUMBER_RANGES])
def test_hardware_values_are_range_checked(tmp_path, fields, message):
    path = tmp_path / "hw.json"
    path.write_text(json.dumps(fields))
    with pytest.raises(InputError) as err:
        load_hardware(str(path))
    assert str(err.value) == f"{path}: {message}"


def test_absurd_hardware_in_a_real_process(tmp_path):
    for fields in ({"hbm_gb": 1e308}, {"request_header_bytes": 10 ** 20}, {"die_tflops": 1e-308}):
        path = tmp_path / "hw.json"
        path.write_text(json.dumps(fields))
        assert one_line(run_subprocess(["summary", "--mesh", path])).startswith(f"waferview summary: {path}: ")


def test_running_out_of_memory_is_one_line(monkeypatch, capsys):
    from waferview.cli import cmd_insights
    from waferview.cli.main import main

    def greedy(args):
        raise MemoryError("Unable to allocate 745. GiB for an array")

    monkeypatch.setattr(cmd_insights, "run", greedy)
    assert main(["insights"]) == 2
    assert capsys.readouterr().err == ("waferview insights: not enough memory (Unable to allocate 745. GiB for an "
                                       "array); ask for less (a smaller --batch, --requests, --mesh or source)\n")
