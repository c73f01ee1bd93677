"""waferview synth: exact file format, round trips through the real reader, determinism, the cache path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from waferview.cli.main import main
from waferview.models import MODELS, get_model
from waferview.trace.cache import load_cache
from waferview.trace.source import load_source
from waferview.synth.generate import SynthParams, default_params, generate, generate_to_cache, request_lengths
from waferview.synth.json_dataset import render_request, write_dataset

SMALL = {"max_decode": 12, "prefill_median": 6.0, "prefill_max": 20}


def small(model, **kw):
    return replace(default_params(get_model(model)), **{**SMALL, **kw})


def steps_of(trace, r):
    """The request as the dataset's list of steps, built the obvious way."""
    m = trace.model

    def step(rows):
        out, li = {}, 0
        for key in range(m.num_layer_keys):
            if key in m.dense_layers:
                out[str(key)] = None
            else:
                out[str(key)] = [[int(x) for x in row[li]] for row in rows]
                li += 1
        return out

    p0, p1 = trace.prefill_offsets[r], trace.prefill_offsets[r + 1]
    d0, d1 = trace.decode_offsets[r], trace.decode_offsets[r + 1]
    return [step(trace.prefill_ids[p0:p1])] + [step(trace.decode_ids[t:t + 1]) for t in range(d0, d1)]


@pytest.mark.parametrize("model", list(MODELS))
def test_files_are_byte_identical_to_json_dumps_indent4(model):
    trace = generate(model, 4, seed=3, params=small(model))
    for r in range(trace.requests):
        text = render_request(trace, r)
        assert text == json.dumps(steps_of(trace, r), indent=4).encode()
        assert not text.endswith(b"\n")


@pytest.mark.parametrize("model", list(MODELS))
def test_round_trip_through_load_source(tmp_path, model):
    m = get_model(model)
    trace = generate(m, 6, seed=1, params=small(model))
    subject = write_dataset(trace, tmp_path, benchmark="mmlu", subject="abstract_algebra")
    assert subject == tmp_path / m.org / m.name / "mmlu" / "abstract_algebra"
    files = sorted(subject.iterdir(), key=lambda p: int(p.stem))
    assert [p.name for p in files] == list(trace.request_names)
    # the model is inferred from the dataset path
    back = load_source(str(tmp_path), strict=True)
    assert back.model.key == model and back.requests == 6
    by_name = {os.path.basename(n): i for i, n in enumerate(back.request_names)}
    for r, name in enumerate(trace.request_names):
        b = by_name[name]
        for ids, off in (("prefill_ids", "prefill_offsets"), ("decode_ids", "decode_offsets")):
            mine = getattr(trace, ids)[getattr(trace, off)[r]:getattr(trace, off)[r + 1]]
            theirs = getattr(back, ids)[getattr(back, off)[b]:getattr(back, off)[b + 1]]
            np.testing.assert_array_equal(mine, theirs)
    # Kimi writes its dense layer "0" as null, present
    if model == "kimi":
        first = json.loads(files[0].read_bytes())
        assert first[0]["0"] is None and list(first[0])[:2] == ["0", "1"]


def test_non_ascii_subject_and_existing_folder(tmp_path):
    trace = generate("llama4", 3, seed=2, params=small("llama4"))
    first = write_dataset(trace, tmp_path, benchmark="Chinese-SimpleQA", subject="中华文化")
    again = write_dataset(trace, tmp_path, benchmark="Chinese-SimpleQA", subject="中华文化")   # overwrites
    assert first == again and first.name == "中华文化"
    assert sorted(p.name for p in first.iterdir()) == sorted(trace.request_names)
    assert [p.name for p in first.parent.iterdir()] == ["中华文化"]          # no temp folder left
    back = load_source(str(tmp_path), strict=True)
    assert back.requests == 3 and back.decode_tokens == trace.decode_tokens


def test_indices_are_sorted_not_contiguous_and_not_from_zero():
    trace = generate("llama4", 40, seed=5, params=small("llama4"))
    idx = [int(n.split(".")[0]) for n in trace.request_names]
    assert idx == sorted(idx) and len(set(idx)) == 40
    assert idx[0] > 0
    assert max(np.diff(idx)) > 1


def test_rows_are_k_distinct_experts_in_range():
    for key, m in MODELS.items():
        trace = generate(m, 5, seed=2, params=small(key))
        for ids in (trace.prefill_ids, trace.decode_ids):
            assert ids.dtype == m.id_dtype and ids.shape[1:] == (m.moe_layers, m.top_k)
            assert int(ids.max()) < m.num_experts
            srt = np.sort(ids.astype(np.int64), axis=2)
            assert (np.diff(srt, axis=2) > 0).all()


def test_same_seed_same_trace_other_seed_other_trace():
    a = generate("deepseek", 5, seed=7, params=small("deepseek"))
    b = generate("deepseek", 5, seed=7, params=small("deepseek"))
    c = generate("deepseek", 5, seed=8, params=small("deepseek"))
    np.testing.assert_array_equal(a.prefill_ids, b.prefill_ids)
    np.testing.assert_array_equal(a.decode_ids, b.decode_ids)
    assert a.request_names == b.request_names
    assert not np.array_equal(a.decode_ids[:50], c.decode_ids[:50])


def test_request_shapes_like_the_dataset():
    p = default_params(get_model("qwen3"))
    pre, dec = request_lengths(2000, p, seed=0)
    assert (pre == 1).sum() > 20              # some requests have a single prefill row
    assert pre.max() <= p.prefill_max and pre.min() >= 1
    assert dec.max() == 128 and dec.min() >= 1
    assert 0.1 < (dec < 128).mean() < 0.5     # some stop early


def test_routing_is_skewed_not_uniform():
    m = get_model("deepseek")
    trace = generate(m, 20, seed=0)
    counts = np.bincount(trace.decode_ids[:, 0, :].ravel().astype(np.int64), minlength=m.num_experts)
    assert counts.max() > 8 * counts.mean()


def test_cache_path_equals_json_path(tmp_path):
    params = small("kimi")
    cached = generate_to_cache("kimi", 5, 4, tmp_path / "k.wvtrace", params=params, source="test source")
    direct = generate("kimi", 5, 4, params=params)
    back, header = load_cache(tmp_path / "k.wvtrace")
    assert back.source == "test source" and header["model"] == "kimi"
    for name in ("prefill_ids", "decode_ids", "prefill_offsets", "decode_offsets"):
        np.testing.assert_array_equal(getattr(cached, name), getattr(direct, name))
        np.testing.assert_array_equal(getattr(back, name), getattr(direct, name))
    assert not [p for p in tmp_path.iterdir() if p.name != "k.wvtrace"]   # no scratch left behind


def test_cli_json_and_cache_agree(tmp_path, capsys):
    assert main(["synth", "--model", "qwen3", "--requests", "3", "--seed", "9", "--max-decode", "5",
                 "--out", str(tmp_path / "ds")]) == 0
    assert main(["synth", "--model", "qwen3", "--requests", "3", "--seed", "9", "--max-decode", "5",
                 "--cache", str(tmp_path / "q.wvtrace")]) == 0
    err = capsys.readouterr().err
    assert "wrote 3 synthetic qwen3 requests" in err
    a = load_source(str(tmp_path / "ds"), strict=True)
    b = load_source(str(tmp_path / "q.wvtrace"))
    assert a.model.key == b.model.key == "qwen3"
    ia = sorted(range(3), key=lambda r: int(os.path.basename(a.request_names[r]).split(".")[0]))
    for r_b, r_a in enumerate(ia):
        for ids, off in (("prefill_ids", "prefill_offsets"), ("decode_ids", "decode_offsets")):
            x = getattr(a, ids)[getattr(a, off)[r_a]:getattr(a, off)[r_a + 1]]
            y = getattr(b, ids)[getattr(b, off)[r_b]:getattr(b, off)[r_b + 1]]
            np.testing.assert_array_equal(x, y)
    assert max(b.decode_lengths) <= 5


@pytest.mark.parametrize("argv, message", [
    (["--model", "gpt5", "--requests", "2", "--out", "X"], "unknown model 'gpt5'"),
    (["--model", "qwen3", "--requests", "0", "--out", "X"], "--requests 0: expected at least 1 request"),
    (["--model", "qwen3", "--requests", "2"], "give either --out DIR (JSON files) or --cache FILE.wvtrace"),
    (["--model", "qwen3", "--requests", "2", "--out", "X", "--cache", "Y"], "give either --out DIR"),
    (["--model", "qwen3", "--requests", "2", "--out", "X", "--max-decode", "0"], "--max-decode 0: expected 1..128"),
])
def test_bad_input_one_line(argv, message, capsys):
    assert main(["synth", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unwritable_out_exits_2_without_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = subprocess.run([sys.executable, "-m", "waferview", "synth", "--model", "llama4", "--requests", "2",
                          "--max-decode", "2", "--out", str(blocker / "sub")], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr == f"waferview synth: {blocker}: exists and is not a folder\n"
    assert out.stderr.count("\n") == 1


def test_params_are_validated():
    with pytest.raises(Exception, match="repeat=1.5"):
        generate("qwen3", 1, 0, params=SynthParams(repeat=1.5))
