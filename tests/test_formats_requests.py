"""Per-request serving-engine captures (vLLM, SGLang): exact rows, the prefill/decode split each engine
means, replay equal to the same routing as dataset JSON, the cache, and every bad-input case."""

import json

import numpy as np
import orjson
import pytest

from enginefiles import (all_layers, dataset_steps, routing, sglang_legacy, sglang_partitioned, tiny_model,
                         vllm_new, vllm_old, write_jsonl)
from tracefiles import isolated_cache, run_cli, write_trace  # noqa: F401
from waferview.errors import InputError, TraceFileError
from waferview.models import MODELS
from waferview.trace import formats
from waferview.trace.source import load_source


def rows_of(trace, r):
    a, b = trace.prefill_offsets[r], trace.prefill_offsets[r + 1]
    c, d = trace.decode_offsets[r], trace.decode_offsets[r + 1]
    return trace.prefill_ids[a:b].astype(np.int64), trace.decode_ids[c:d].astype(np.int64)


# ---- vLLM ------------------------------------------------------------------------------------

def test_vllm_old_form_drops_prefix_cached_rows_and_keeps_the_rest(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    prompt, gen = routing(model, 6, 1), routing(model, 4, 2)
    cached = prompt.copy()
    cached[:2] = -1                                   # two prefix-cached positions: no routing in this request
    path = write_jsonl(tmp_path / "cap.jsonl", [vllm_old("a", cached, [gen]), vllm_old("b", prompt, [gen[:1]])])
    trace = load_source(str(path), model=str(desc))
    assert trace.request_names == ("a", "b")
    assert list(trace.prefill_lengths) == [4, 6] and list(trace.decode_lengths) == [4, 1]
    pre, dec = rows_of(trace, 0)
    assert (pre == prompt[2:]).all() and (dec == gen).all()
    assert ("2 prefix-cached prompt rows (-1: vLLM ran no MoE for them in that request) left out"
            in capsys.readouterr().err)


def test_vllm_preempted_request_is_skipped_and_listed(tmp_path):
    model, desc = tiny_model(tmp_path)
    path = write_jsonl(tmp_path / "cap.jsonl", [vllm_old("ok", routing(model, 3, 1), [routing(model, 2, 2)]),
                                                vllm_old("pre", routing(model, 3, 3), [None])])
    trace = load_source(str(path), model=str(desc))
    assert trace.requests == 1
    assert trace.skipped == ({"file": str(path), "reason": "line 2 choice 0: routed_experts is null (vLLM returns none "
                              "for a request that was preempted, or aborted before its first forward pass)"},)
    with pytest.raises(TraceFileError, match=r"cap.jsonl: line 2 choice 0: routed_experts is null"):
        load_source(str(path), model=str(desc), strict=True)


def test_vllm_several_choices_share_one_prefill(tmp_path):
    model, desc = tiny_model(tmp_path)
    prompt = routing(model, 5, 1)
    gens = [routing(model, 3, 2), routing(model, 2, 3)]
    path = write_jsonl(tmp_path / "cap.jsonl", [vllm_old("n2", prompt, gens)])
    trace = load_source(str(path), model=str(desc))
    assert trace.request_names == ("n2#0", "n2#1")
    assert list(trace.prefill_lengths) == [5, 0] and list(trace.decode_lengths) == [3, 2]
    assert (rows_of(trace, 1)[1] == gens[1]).all()


def test_vllm_new_form_splits_at_the_prompt_and_ignores_dense_planes(tmp_path):
    model, desc = tiny_model(tmp_path)
    prompt_tokens, completion = 6, 4
    moe = routing(model, prompt_tokens + completion - 1, 5)
    rows = all_layers(model, moe, fill=0).astype(np.uint8)   # every layer; dense planes left 0
    path = write_jsonl(tmp_path / "cap.jsonl", [vllm_new("x", rows, prompt_tokens, completion)])
    trace = load_source(str(path), model=str(desc))
    pre, dec = rows_of(trace, 0)
    assert len(pre) == 6 and len(dec) == 3            # the last generated token never ran
    assert (pre == moe[:6]).all() and (dec == moe[6:]).all()


def test_vllm_model_named_in_the_response_needs_no_flag(tmp_path):
    m = MODELS["llama4"]
    rec = vllm_old("q", routing(m, 2, 1), [routing(m, 1, 2)],
                   model_name="meta-llama/Llama-4-Maverick-17B-128E-Instruct")
    trace = load_source(str(write_jsonl(tmp_path / "cap.jsonl", [rec])))
    assert trace.model is m


def test_a_capture_without_a_model_asks_for_one(tmp_path):
    m = MODELS["llama4"]
    path = write_jsonl(tmp_path / "cap.jsonl", [vllm_old("q", routing(m, 2, 1), [routing(m, 1, 2)])])
    with pytest.raises(InputError, match=r"cap.jsonl: a vLLM capture does not say which model it routes: pass --model"):
        load_source(str(path))


# ---- SGLang ----------------------------------------------------------------------------------

def test_sglang_legacy_rows_split_by_where_the_forward_ran(tmp_path):
    model, desc = tiny_model(tmp_path)
    moe = routing(model, 7 + 3 - 1, 4)
    rows = all_layers(model, moe, fill=0)
    path = write_jsonl(tmp_path / "log.jsonl", [sglang_legacy("r1", rows, 7, 3),
                                               sglang_legacy("r2", rows.astype(np.uint8), 7, 3, dtype="uint8")])
    trace = load_source(str(path), model=str(desc))
    assert trace.request_names == ("r1", "r2")
    for r in range(2):
        pre, dec = rows_of(trace, r)
        assert (pre == moe[:7]).all() and (dec == moe[7:]).all()   # the prompt's last row ran in the prefill


def test_sglang_partitioned_form_gives_the_same_requests(tmp_path):
    model, desc = tiny_model(tmp_path)
    moe = routing(model, 5 + 4 - 1, 6)
    rows = all_layers(model, moe)
    legacy = load_source(str(write_jsonl(tmp_path / "a.jsonl", [sglang_legacy("r", rows, 5, 4)])), model=str(desc))
    parts = load_source(str(write_jsonl(tmp_path / "b.jsonl", [sglang_partitioned("r", model, rows, 5, 4)])),
                        model=str(desc))
    assert (legacy.prefill_ids == parts.prefill_ids).all() and (legacy.decode_ids == parts.decode_ids).all()
    out_only = load_source(str(write_jsonl(tmp_path / "c.jsonl", [sglang_partitioned("r", model, rows, 5, 4, False)])),
                           model=str(desc))
    assert out_only.prefill_tokens == 1 and (out_only.decode_ids == legacy.decode_ids).all()


def test_sglang_schema_that_disagrees_with_the_model_is_a_bad_record(tmp_path):
    model, desc = tiny_model(tmp_path)
    rec = sglang_partitioned("r", model, all_layers(model, routing(model, 4, 1)), 3, 2)
    rec["meta_info"]["expert_ids_schema"]["moe_layer_ids"] = [0, 1, 2]
    trace_path = write_jsonl(tmp_path / "log.jsonl",
                             [rec, sglang_legacy("ok", all_layers(model, routing(model, 4, 2)), 3, 2)])
    trace = load_source(str(trace_path), model=str(desc))
    assert trace.skipped[0]["reason"] == ("line 1: expert_ids_schema's moe_layer_ids are not tiny-moe's MoE layers "
                                          "(3 layers, numbers 1..3)")


# ---- replay equals the same routing as dataset JSON -------------------------------------------

@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_replay_equals_the_dataset_json_of_the_same_routing(tmp_path, capsys, engine):
    m = MODELS["llama4"]
    records, root = [], tmp_path / "dataset" / m.folder / "mmlu" / "x"
    for r in range(4):
        p, g = 5 + 3 * r, 3 + r
        moe = routing(m, p + g - 1, 10 + r)
        write_trace(root / f"{r}.json", dataset_steps(m, moe[:p], moe[p:]))
        rows = all_layers(m, moe)
        records.append(vllm_new(f"r{r}", rows.astype(np.uint8), p, g) if engine == "vllm"
                       else sglang_legacy(f"r{r}", rows, p, g))
    capture = write_jsonl(tmp_path / "capture.jsonl", records)
    common = ["--model", "llama4", "--mesh", "4x3", "--json"]
    code_a, out_a, err_a = run_cli(["summary", capture, *common], capsys)
    code_b, out_b, err_b = run_cli(["summary", tmp_path / "dataset", *common], capsys)
    assert (code_a, code_b) == (0, 0), err_a + err_b
    a, b = orjson.loads(out_a), orjson.loads(out_b)
    assert a.pop("source") != b.pop("source")
    pa, pb = a.pop("provenance"), b.pop("provenance")   # the command lines differ (the SOURCE); the rest agrees
    assert pa["command_line"] != pb["command_line"] and pa["hardware"] == pb["hardware"]
    assert a == b and a["requests"] == 4 and a["decode_time_ms"] > 0
    _, ins_a, _ = run_cli(["insights", capture, "--model", "llama4", "--json"], capsys)
    _, ins_b, _ = run_cli(["insights", tmp_path / "dataset", "--model", "llama4", "--json"], capsys)
    ia, ib = orjson.loads(ins_a), orjson.loads(ins_b)
    assert ia["provenance"]["model"] == ib["provenance"]["model"]
    assert ia["figures"] == ib["figures"] and ia["per_layer"] == ib["per_layer"]


# ---- cache ---------------------------------------------------------------------------------

def test_captures_of_built_in_models_are_cached_by_content(tmp_path, monkeypatch, capsys):
    m = MODELS["llama4"]
    moe = routing(m, 6, 1)
    path = write_jsonl(tmp_path / "cap.jsonl", [vllm_new("a", all_layers(m, moe).astype(np.uint8), 4, 3)])
    first = load_source(str(path), model="llama4")
    from waferview.trace.formats import vllm

    def no_parse(*a, **k):
        raise AssertionError("parsed again although the cache is valid")

    with monkeypatch.context() as patch:
        patch.setattr(vllm, "_parse", no_parse)
        second = load_source(str(path), model="llama4")
    assert (second.prefill_ids == first.prefill_ids).all() and (second.decode_ids == first.decode_ids).all()
    write_jsonl(path, [vllm_new("a", all_layers(m, routing(m, 6, 2)).astype(np.uint8), 4, 3)])
    third = load_source(str(path), model="llama4")
    assert "stale (files changed); rebuilding" in capsys.readouterr().err
    assert not (third.prefill_ids == first.prefill_ids).all()


# ---- bad input: one line naming the file and record; skipped by default, exit 2 under --strict ---

def bad_case(tmp_path, model, break_it):
    good = vllm_old("good", routing(model, 3, 1), [routing(model, 2, 2)])
    bad = vllm_old("bad", routing(model, 3, 3), [routing(model, 2, 4)])
    break_it(bad)
    return write_jsonl(tmp_path / "cap.jsonl", [good, bad])


def _width(rec):
    rec["choices"][0]["routed_experts"][1][0] = [1, 2, 3]


def _range(rec):
    rec["choices"][0]["routed_experts"][0][2][1] = 9


def _layers(rec):
    rec["prompt_routed_experts"] = [row[:2] for row in rec["prompt_routed_experts"]]


def _minus_one(rec):
    rec["prompt_routed_experts"][1][0][0] = -1


@pytest.mark.parametrize("break_it,reason", [
    (_width, "line 2 choice 0: routed_experts is ragged (rows of different lengths)"),
    (_range, "line 2 choice 0: routed_experts row 0 layer 3: expert id 9 out of range (tiny-moe has 8 experts: 0..7)"),
    (_layers, "line 2: 2 layers per row, expected 4 (every layer of tiny-moe) or 3 (its MoE layers)"),
    (_minus_one, "line 2: prompt_routed_experts row 1 layer 1: -1 (no expert), but layer 1 is a MoE layer of "
                 "tiny-moe and must route 2 experts"),
])
def test_bad_records(tmp_path, capsys, break_it, reason):
    model, desc = tiny_model(tmp_path)
    path = bad_case(tmp_path, model, break_it)
    trace = load_source(str(path), model=str(desc))
    assert trace.requests == 1 and trace.skipped == ({"file": str(path), "reason": reason},)
    code, out, err = run_cli(["summary", path, "--model", desc, "--strict", "--json"], capsys)
    assert code == 2 and out == ""
    assert err == f"waferview summary: {path}: {reason}\n"


def test_wrong_width_in_a_whole_array(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    rows = all_layers(model, routing(model, 5, 1))[:, :, :1].astype(np.uint8)
    path = write_jsonl(tmp_path / "cap.jsonl", [vllm_new("w", rows, 3, 3), vllm_new("ok", all_layers(model, routing(
        model, 5, 2)).astype(np.uint8), 3, 3)])
    trace = load_source(str(path), model=str(desc))
    assert trace.skipped[0]["reason"] == ("line 1 choice 0: routed_experts: 1 expert ids per row, expected top-k = 2 "
                                          "for tiny-moe")


def test_truncated_capture(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    path = bad_case(tmp_path, model, lambda rec: None)
    text = path.read_text()
    path.write_text(text[: len(text) - 40])           # the writer died inside the last line
    trace = load_source(str(path), model=str(desc))
    assert trace.skipped == ({"file": str(path), "reason": "line 2: truncated JSON record (the file ends inside it)"},)
    code, _, err = run_cli(["insights", path, "--model", desc, "--strict"], capsys)
    assert code == 2 and err == f"waferview insights: {path}: line 2: truncated JSON record (the file ends inside it)\n"


def test_nothing_readable_is_one_line(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    path = write_jsonl(tmp_path / "cap.jsonl", [vllm_old("p", routing(model, 2, 1), [None])])
    code, _, err = run_cli(["summary", path, "--model", desc], capsys)
    assert code == 2
    assert err.startswith(f"waferview summary: {path}: no request with routing in this vLLM capture (1 record(s) "
                          "skipped; first: ") and err.count("\n") == 1


# ---- detection ---------------------------------------------------------------------------------

def test_detection_and_forcing_a_format(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    rows = all_layers(model, routing(model, 5, 1))
    v = write_jsonl(tmp_path / "v.jsonl", [vllm_new("a", rows.astype(np.uint8), 3, 3)])
    s = write_jsonl(tmp_path / "s.jsonl", [sglang_legacy("a", rows, 3, 3)])
    assert formats.detect(v) == "vllm" and formats.detect(s) == "sglang"
    odd = tmp_path / "capture.log"
    odd.write_text(v.read_text())
    assert formats.detect(odd) is None
    code, _, err = run_cli(["summary", odd, "--model", desc], capsys)
    assert code == 2 and "expected a directory, a .json trace file" in err
    code, out, err = run_cli(["summary", odd, "--model", desc, "--format", "vllm", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["requests"] == 1
    code, _, err = run_cli(["summary", "--format", "vllm"], capsys)
    assert code == 2 and err == "waferview summary: --format vllm needs a SOURCE file or folder in that format\n"


def test_cli_format_choices_are_the_registry():
    from waferview.cli.common import FORMATS

    assert FORMATS == formats.FORMATS
