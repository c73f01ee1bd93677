"""A cache is never trusted beyond what was checked: damaged, crafted, old and shared caches.

Kernels index the id arrays without bounds checks, and caches are shared (`synth --cache`), so every
header field, every array's dtype / shape / byte range, the offsets and every id must be checked before
use. Damaged caches in the cache folder are rebuilt with a notice; given as SOURCE they are one line and
exit 2 (never a crash, a signal or numbers from bad data)."""

from __future__ import annotations

import copy
import os
import struct
import time
import zlib

import numpy as np
import orjson
import pytest

from simcases import random_trace
from tracefiles import isolated_cache, run_subprocess, write_dataset  # noqa: F401
from waferview.models import MODELS, get_model
from waferview.trace import cache as cache_module
from waferview.trace import cache_check
from waferview.trace.cache import CacheCorrupt, load_cache, read_header, save_cache
from waferview.trace.source import load_source
from waferview.trace.store import cache_path_for


@pytest.fixture
def small_cache(tmp_path):
    trace = random_trace(np.random.default_rng(5), get_model("qwen3"), requests=6, max_prefill=3, max_decode=4)
    return save_cache(tmp_path / "small.wvtrace", trace, "key")


def parts(path):
    """(header dict without header_crc, data bytes) of a cache file."""
    blob = path.read_bytes()
    (hlen,) = struct.unpack("<Q", blob[8:16])
    header = orjson.loads(blob[16:16 + hlen])
    del header["header_crc"]
    return header, bytearray(blob[cache_check.align(16 + hlen):])


def build(header, data, *, fix_crc=True) -> bytes:
    """A cache file from parts, with valid checksums: what a crafted (not a damaged) cache looks like."""
    header = dict(header)
    if fix_crc:
        header["data_crc"] = f"{zlib.crc32(bytes(data)):08x}"
    body = cache_module._header(header)
    pad = cache_check.align(16 + len(body)) - 16 - len(body)
    return cache_module.MAGIC + struct.pack("<Q", len(body)) + body + b"\0" * pad + bytes(data)


def one_line_exit_2(proc):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr.strip()


def test_every_bit_of_the_prelude_and_header_is_checked(small_cache):
    good = small_cache.read_bytes()
    (hlen,) = struct.unpack("<Q", good[8:16])
    pad_end = cache_check.align(16 + hlen)
    for i in range(pad_end):
        for bit in range(8):
            blob = bytearray(good)
            blob[i] ^= 1 << bit
            small_cache.write_bytes(bytes(blob))
            with pytest.raises(CacheCorrupt):
                load_cache(small_cache)
    small_cache.write_bytes(good)
    assert load_cache(small_cache)[0].requests == 6


def test_damage_anywhere_in_the_data_is_caught(small_cache):
    """The old format checked five 64 KiB windows; every data byte is covered now (sampled here)."""
    good = small_cache.read_bytes()
    start = cache_check.align(16 + struct.unpack("<Q", good[8:16])[0])
    for i in np.linspace(start, len(good) - 1, 97).astype(int):
        blob = bytearray(good)
        blob[i] ^= 0x10
        small_cache.write_bytes(bytes(blob))
        with pytest.raises(CacheCorrupt, match="cache data checksum mismatch|out of range"):
            load_cache(small_cache)


@pytest.mark.parametrize("cut", [0, 5, 8, 15, 16, 40, -64, -1])
def test_truncated_caches_are_corrupt(small_cache, cut):
    blob = small_cache.read_bytes()
    small_cache.write_bytes(blob[:cut] if cut >= 0 else blob[:len(blob) + cut])
    with pytest.raises(CacheCorrupt):
        load_cache(small_cache)


def _shape_plus_one(h, d):
    h["arrays"]["prefill_ids"]["shape"][0] += 1


def _ids_out_of_range(h, d):
    d[h["arrays"]["decode_ids"]["offset"] + 3] = 200


def _offsets_decreasing(h, d):
    spec = h["arrays"]["prefill_offsets"]
    off = np.frombuffer(bytes(d[spec["offset"]:spec["offset"] + 8 * spec["shape"][0]]), "<i8").copy()
    off[2], off[3] = off[3], off[2] + 100
    d[spec["offset"]:spec["offset"] + off.nbytes] = off.tobytes()


def _other_model_spec(h, d):
    h["model"] = "deepseek"
    h["model_spec"] = MODELS["deepseek"].to_dict()


def _fewer_experts(h, d):
    spec = dict(h["model_spec"], key="tiny", folder="custom/tiny", num_experts=4, top_k=4)
    h["model_spec"], h["model"] = spec, "tiny"
    h["arrays"]["prefill_ids"]["shape"][2] = h["arrays"]["decode_ids"]["shape"][2] = 4
    # same bytes, read as rows of 4: ids up to 127 against 4 experts


CRAFTED = [
    ("shape one larger than the data", _shape_plus_one, "do not lie in the data"),
    ("model field not the described model", lambda h, d: h.__setitem__("model", "kimi"),
     "malformed cache header: model 'kimi' is not the described model 'qwen3'"),
    ("model description of another model", _other_model_spec, "prefill_ids: shape "),
    ("ids beyond the model's experts", _fewer_experts, "holds expert id"),
    ("wrong dtype", lambda h, d: h["arrays"]["decode_ids"].__setitem__("dtype", "<u2"),
     "malformed cache header: decode_ids: dtype '<u2', expected '|u1' for qwen3"),
    ("overlapping arrays", lambda h, d: h["arrays"]["decode_ids"].__setitem__("offset", 0), "decode_ids: "),
    ("offset past the data", lambda h, d: h["arrays"]["decode_offsets"].__setitem__("offset", 2 ** 62),
     "decode_offsets: "),
    ("id out of range with a valid checksum", _ids_out_of_range,
     "decode_ids holds expert id 200, out of range for qwen3 (128 experts)"),
    ("offsets that go backwards", _offsets_decreasing, "prefill_offsets do not go from 0 to"),
    ("names and offsets disagree", lambda h, d: h.__setitem__("request_names", h["request_names"][:-1]),
     "malformed cache header: prefill_offsets: shape [7], expected [6]"),
    ("data length that lies", lambda h, d: h.__setitem__("data_len", h["data_len"] + 64), "its header says"),
    ("a float in a shape", lambda h, d: h["arrays"]["prefill_ids"]["shape"].__setitem__(1, 94.0), "shape [")]


@pytest.mark.parametrize("what, mutate, message", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_caches_are_refused_in_process(small_cache, what, mutate, message):
    header, data = parts(small_cache)
    header = copy.deepcopy(header)
    mutate(header, data)
    small_cache.write_bytes(build(header, data))
    with pytest.raises(CacheCorrupt) as err:
        load_cache(small_cache)
    assert message in str(err.value)
    assert str(err.value).startswith(f"{small_cache}: ")


@pytest.mark.parametrize("what, mutate, message", CRAFTED[:8:2] + [CRAFTED[7]],
                         ids=lambda x: x if isinstance(x, str) else "")
def test_crafted_cache_as_source_is_one_line_exit_2(small_cache, what, mutate, message):
    header, data = parts(small_cache)
    header = copy.deepcopy(header)
    mutate(header, data)
    small_cache.write_bytes(build(header, data))
    for command in ("summary", "insights"):   # the engine and the statistics kernels alike
        line = one_line_exit_2(run_subprocess([command, small_cache]))
        assert line.startswith(f"waferview {command}: {small_cache}: ") and message in line
        assert line.endswith("(cannot rebuild a cache given as SOURCE: point at its JSON instead)")


def test_flipped_header_length_as_source(small_cache):
    blob = bytearray(small_cache.read_bytes())
    blob[14] ^= 0x04   # the header length's high bytes: the old format tried to read petabytes
    small_cache.write_bytes(bytes(blob))
    line = one_line_exit_2(run_subprocess(["summary", small_cache]))
    header_length = struct.unpack('<Q', bytes(blob[8:16]))[0]
    assert f"{small_cache}: cache header length {header_length} does not fit the file" in line


def test_old_format_cache_as_source_and_in_the_cache_folder(tmp_path, isolated_cache, capsys):
    root = tmp_path / "traces"
    write_dataset(root, "qwen3", {("mmlu", "x"): [(1, 2, 2), (4, 1, 3)]})
    load_source(str(root))
    cached = cache_path_for(root, "auto")
    header, data = parts(cached)
    header["format_version"] = 1
    old = cache_module.MAGIC + struct.pack("<Q", len(orjson.dumps(header))) + orjson.dumps(header)  # no header_crc
    cached.write_bytes(old + b"\0" * (cache_check.align(len(old)) - len(old)) + bytes(data))
    line = one_line_exit_2(run_subprocess(["summary", cached]))
    assert line.startswith(f"waferview summary: {cached}: cache format 1 (an older waferview wrote it); this "
                           "waferview reads format 2")
    capsys.readouterr()
    assert load_source(str(root)).requests == 2
    assert capsys.readouterr().err == (f"waferview: trace cache for {root} was written by another waferview version; "
                                       f"rebuilding\n")
    load_source(str(root))
    assert capsys.readouterr().err == ""


def test_header_length_flip_in_the_cache_folder_is_rebuilt(tmp_path, isolated_cache):
    root = tmp_path / "traces"
    write_dataset(root, "qwen3", {("mmlu", "x"): [(1, 2, 2)]})
    first = run_subprocess(["summary", root, "--json"])
    assert first.returncode == 0, first.stderr
    cached = cache_path_for(root, "auto")
    blob = bytearray(cached.read_bytes())
    blob[13] ^= 0x80
    cached.write_bytes(bytes(blob))
    again = run_subprocess(["summary", root, "--json"])
    assert again.returncode == 0 and again.stderr == f"waferview: trace cache for {root} is corrupt; rebuilding\n"
    assert orjson.loads(again.stdout) == orjson.loads(first.stdout)
    third = run_subprocess(["summary", root, "--json"])
    assert third.returncode == 0 and third.stderr == ""


def test_a_verified_cache_is_not_read_again_until_it_changes(small_cache, monkeypatch, isolated_cache):
    monkeypatch.setattr(cache_check, "_MARK_AFTER_NS", 0)
    load_cache(small_cache)                        # verified, and marked
    assert len(list((isolated_cache / "verified").iterdir())) == 1

    def no_pass(*args):
        raise AssertionError("verified again")

    monkeypatch.setattr(cache_module, "verify_file", no_pass)
    assert load_cache(small_cache)[0].requests == 6
    # a write moves the ctime: the marker no longer vouches for the file (wait one timestamp tick)
    header, data = parts(small_cache)
    data[header["arrays"]["decode_ids"]["offset"]] ^= 0x01
    time.sleep(0.05)
    small_cache.write_bytes(build(header, data, fix_crc=False))
    monkeypatch.undo()
    with pytest.raises(CacheCorrupt, match="data checksum mismatch"):
        load_cache(small_cache)


def test_a_cache_others_can_write_is_read_into_memory(small_cache):
    os.chmod(small_cache, 0o666)
    trace, _ = load_cache(small_cache)
    assert not isinstance(trace.prefill_ids.base, np.memmap) and not trace.prefill_ids.flags.writeable
    os.chmod(small_cache, 0o644)
    trace, _ = load_cache(small_cache)
    assert isinstance(trace.prefill_ids.base, np.memmap)


def test_read_header_checks_the_whole_header(small_cache):
    header = read_header(small_cache)
    assert header["model_spec"] == MODELS["qwen3"].to_dict() and header["format_version"] == 2
    blob = bytearray(small_cache.read_bytes())
    blob[40] ^= 0x01
    small_cache.write_bytes(bytes(blob))
    with pytest.raises(CacheCorrupt, match="header checksum mismatch"):
        read_header(small_cache)


def test_a_custom_model_round_trips_through_its_description(tmp_path):
    from waferview.models import model_from_dict

    spec = model_from_dict({"key": "toy", "num_layer_keys": 3, "dense_layers": [0], "top_k": 2, "num_experts": 6,
                            "hidden": 8, "expert_inter": 4}, "test")
    from waferview.trace.arrays import concat_requests

    rows = np.array([[[0, 1], [2, 3]]], dtype=np.uint8)
    trace = concat_requests(spec, [(rows, rows[:0])], ["r0"])
    back, header = load_cache(save_cache(tmp_path / "toy.wvtrace", trace))
    assert back.model == spec and header["model"] == "toy"
    np.testing.assert_array_equal(back.prefill_ids, rows)


def test_the_shipped_defaults_are_current_caches():
    from waferview.trace.source import assets_dir

    for key in MODELS:
        assert read_header(assets_dir() / f"{key}.wvtrace")["model_spec"] == MODELS[key].to_dict()
