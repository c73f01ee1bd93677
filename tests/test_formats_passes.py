"""Batch-major and count-only captures (Megatron-Core, SGLang's recorder, TensorRT-LLM) as recorded
passes: exact counts per pass against a plain loop, rank merging, the refusals, and bad input."""

import subprocess
import sys

import numpy as np
import pytest

from enginefiles import (megatron_records, recorder_dump, routing, tiny_model, trtllm_folder, write_jsonl,
                         write_safetensors)
from tracefiles import isolated_cache, run_cli  # noqa: F401
from waferview.analysis.insights import compute_insights
from waferview.errors import InputError, TraceFileError
from waferview.trace.arrays import TraceArrays
from waferview.trace.formats.sglang_recorder import dump_arrays
from waferview.trace.passes import DECODE_MAX_TOKENS, NO_REQUESTS_NOTE, RecordedPasses
from waferview.trace.source import load_source


def reference_counts(model, ids):
    """Per-expert selections of one pass, the obvious way."""
    out = np.zeros((model.moe_layers, model.num_experts), dtype=np.int64)
    for token in ids:
        for l in range(model.moe_layers):
            for e in token[l]:
                out[l, e] += 1
    return out


def megatron_dir(tmp_path, model, per_rank, **kw):
    folder = tmp_path / "trace"
    folder.mkdir(exist_ok=True)
    for rank, passes in enumerate(per_rank):
        write_jsonl(folder / f"router_trace_rank{rank}.jsonl", megatron_records(model, rank, passes, **kw))
    return folder


# ---- Megatron-Core -----------------------------------------------------------------------------

def test_megatron_passes_have_the_exact_counts_of_every_rank(tmp_path):
    model, desc = tiny_model(tmp_path)
    rank0 = [(0, routing(model, 80, 1)), (1, routing(model, 4, 2)), (2, routing(model, 4, 3))]
    rank1 = [(0, routing(model, 70, 4)), (1, routing(model, 3, 5)), (2, routing(model, 5, 6))]
    passes = load_source(str(megatron_dir(tmp_path, model, [rank0, rank1])), model=str(desc))
    assert isinstance(passes, RecordedPasses) and passes.passes == 3 and not passes.count_only
    assert list(passes.tokens) == [150, 7, 9]
    assert list(passes.prefill) == [True, False, False]          # > 64 tokens: prefill (no phase flag)
    for p in range(3):
        both = np.concatenate([rank0[p][1], rank1[p][1]])
        assert (passes.counts[p] == reference_counts(model, both)).all()
        a, b = passes.pass_offsets[p], passes.pass_offsets[p + 1]
        assert (passes.ids[a:b].astype(np.int64) == both).all()  # rank order within a pass
    assert passes.request_ids is None and NO_REQUESTS_NOTE in passes.notes
    facts = passes.facts()
    assert facts["batch"] == "as recorded" and facts["passes"] == 3 and facts["requests"] is None
    assert facts["prefill_tokens"] == 150 and facts["decode_tokens"] == 16 and facts["moe_layers"] == 3


def test_megatron_tensor_parallel_replicas_are_counted_once(tmp_path):
    model, desc = tiny_model(tmp_path)
    same = [(0, routing(model, 10, 1)), (1, routing(model, 2, 2))]
    passes = load_source(str(megatron_dir(tmp_path, model, [same, same])), model=str(desc))
    assert list(passes.tokens) == [10, 2]
    assert any("2 rank piece(s) equal to another rank's piece" in n for n in passes.notes)


def test_megatron_sink_numbering_mtp_records_and_repeated_layers(tmp_path):
    model, desc = tiny_model(tmp_path)
    steps = [(0, routing(model, 6, 1)), (0, routing(model, 5, 2)), (1, routing(model, 1, 3))]
    folder = megatron_dir(tmp_path, model, [steps], one_based=True, mtp=True)
    passes = load_source(str(folder), model=str(desc))
    assert list(passes.tokens) == [6, 5, 1]                      # a layer firing again starts the next pass
    assert (passes.counts[1] == reference_counts(model, steps[1][1])).all()
    assert any("1-based" in n for n in passes.notes)
    assert any("3 MTP record(s) left out" in n for n in passes.notes)


def test_megatron_bad_records(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    folder = megatron_dir(tmp_path, model, [[(0, routing(model, 4, 1)), (1, routing(model, 2, 2))]])
    file = folder / "router_trace_rank0.jsonl"
    lines = file.read_text().splitlines()
    import json

    rec = json.loads(lines[4])                                   # step 1, layer 2
    rec["top_indices"][1][0] = 8
    lines[4] = json.dumps(rec)
    file.write_text("\n".join(lines) + "\n")
    passes = load_source(str(folder), model=str(desc))
    assert passes.passes == 1
    assert passes.skipped[0] == {"file": "router_trace_rank0.jsonl", "reason": "line 5 (step 1, layer 2): "
                                 "top_indices row 1: expert id 8 out of range (tiny-moe has 8 experts: 0..7)"}
    assert passes.skipped[1] == {"file": "router_trace_rank0.jsonl", "reason": "step 1: no record for layer(s) 2 "
                                 "(a pass routes every MoE layer)"}
    code, out, err = run_cli(["insights", folder, "--model", desc, "--strict"], capsys)
    assert code == 2 and out == ""
    assert err == ("waferview insights: router_trace_rank0.jsonl: line 5 (step 1, layer 2): top_indices row 1: "
                   "expert id 8 out of range (tiny-moe has 8 experts: 0..7)\n")


def test_megatron_truncated_trace_and_wrong_model(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    folder = megatron_dir(tmp_path, model, [[(0, routing(model, 4, 1)), (1, routing(model, 2, 2))]])
    file = folder / "router_trace_rank0.jsonl"
    file.write_text(file.read_text()[:-30])
    passes = load_source(str(folder), model=str(desc))
    assert passes.skipped[0]["reason"] == "line 6: truncated JSON record (the file ends inside it)"
    with pytest.raises(InputError, match=r"records name 3 distinct layers, but llama4 has 24 MoE layers"):
        load_source(str(folder), model="llama4")


def test_megatron_minus_one_in_a_moe_layer(tmp_path):
    model, desc = tiny_model(tmp_path)
    ids = routing(model, 3, 1)
    ids[2, 0, 1] = -1
    folder = megatron_dir(tmp_path, model, [[(0, ids), (1, routing(model, 2, 2))]])
    with pytest.raises(TraceFileError) as info:
        load_source(str(folder), model=str(desc), strict=True)
    assert str(info.value) == ("router_trace_rank0.jsonl: line 1 (step 0, layer 1): top_indices row 2: -1 (no expert), "
                               "but a MoE layer must route 2 experts")


# ---- TensorRT-LLM statistics ---------------------------------------------------------------------

def stats(model, seed, tokens):
    """[L, E] counts of `tokens` tokens in every layer."""
    return reference_counts(model, routing(model, tokens, seed))


def test_trtllm_counts_are_summed_over_ranks_and_tokens_derived(tmp_path):
    model, desc = tiny_model(tmp_path)
    r0 = {10: stats(model, 1, 100), 11: stats(model, 2, 3)}
    r1 = {10: stats(model, 3, 50), 11: stats(model, 4, 2)}
    folder = trtllm_folder(tmp_path / "expert_statistic", model, [r0, r1])
    passes = load_source(str(folder), model=str(desc))
    assert passes.count_only and passes.ids is None and passes.pass_offsets is None
    assert list(passes.tokens) == [150, 5] and list(passes.prefill) == [True, False]
    assert (passes.counts[0] == r0[10] + r1[10]).all() and (passes.counts[1] == r0[11] + r1[11]).all()
    assert passes.facts()["count_only"] is True


def test_trtllm_layout_reader_reads_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    model, desc = tiny_model(tmp_path)
    r0 = {3: stats(model, 1, 20), 4: stats(model, 2, 7)}
    ours = load_source(str(trtllm_folder(tmp_path / "ours", model, [r0])), model=str(desc))
    theirs = load_source(str(trtllm_folder(tmp_path / "theirs", model, [r0], writer=lambda p, t: st.save_file(
        {k: np.ascontiguousarray(v, np.int64) for k, v in t.items()}, str(p)))), model=str(desc))
    assert (ours.counts == theirs.counts).all() and list(theirs.tokens) == [20, 7]


def test_trtllm_bad_input(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    good = {1: stats(model, 1, 9)}
    folder = trtllm_folder(tmp_path / "s", model, [good, good, good])
    (folder / "rank1.safetensors").write_bytes((folder / "rank1.safetensors").read_bytes()[:-20])
    odd = stats(model, 5, 4)
    odd[2, 3] += 1
    write_safetensors(folder / "rank2.safetensors", {f"1_{l}": odd[i] for i, l in enumerate(model.moe_layer_ids)})
    passes = load_source(str(folder), model=str(desc))
    assert list(passes.tokens) == [9]
    reasons = [s["reason"] for s in passes.skipped]
    assert reasons[0].startswith("tensor '1_3': data_offsets [128, 192] run past the 172 data bytes (truncated?)")
    assert reasons[1] == "iteration 1 layer 3: 9 selections, not a multiple of top-k = 2 (each token picks 2 experts)"
    code, _, err = run_cli(["insights", folder, "--model", desc, "--strict"], capsys)
    assert code == 2 and err.startswith("waferview insights: rank1.safetensors: tensor '1_3': data_offsets")
    (folder / "meta_info.json").write_text('{"num_experts": 9, "num_experts_per_token": 2}')
    code, _, err = run_cli(["insights", folder, "--model", desc], capsys)
    assert code == 2 and "num_experts 9, but tiny-moe has 8 experts" in err


# ---- SGLang expert distribution recorder ---------------------------------------------------------

def npz_of(tmp_path, dump, name="expert_distribution_recorder_1.0_0.npz"):
    path = tmp_path / name
    np.savez(path, **dump_arrays(dump))
    return path


def test_recorder_per_token_maps_physical_ids_and_uses_extend_for_the_phase(tmp_path):
    model, desc = tiny_model(tmp_path)
    physical = 12                                       # EPLB replicas: slots 8..11 copy experts 0..3
    table = np.tile(np.r_[np.arange(8), np.arange(4)], (model.num_layer_keys, 1))
    passes_in = [(7, routing(model, 5, 1), True), (8, routing(model, 3, 2), False), (9, routing(model, 3, 3), False)]
    dump = recorder_dump(model, passes_in, physical_to_logical=table)
    dump["records"][1]["topk_ids_of_layer"][list(model.moe_layer_ids), 0, :2] += 8 * (
        dump["records"][1]["topk_ids_of_layer"][list(model.moe_layer_ids), 0, :2] < 4)   # use a replica slot
    dump["records"][2]["topk_ids_of_layer"] = np.concatenate(
        [dump["records"][2]["topk_ids_of_layer"], np.full((model.num_layer_keys, 1, 8), -1, np.int32)], axis=1)
    passes = load_source(str(npz_of(tmp_path, dump)), model=str(desc))
    assert list(passes.tokens) == [5, 3, 3] and list(passes.prefill) == [True, False, False]
    for p, (_, ids, _) in enumerate(passes_in):
        assert (passes.counts[p] == reference_counts(model, ids)).all()
    assert any("1 padded token(s)" in n for n in passes.notes)
    assert physical == table.shape[1]


def test_recorder_pt_round_trip_and_convert(tmp_path):
    torch = pytest.importorskip("torch")
    model, desc = tiny_model(tmp_path)
    passes_in = [(0, routing(model, 4, 1), True), (1, routing(model, 2, 2), False)]
    dump = recorder_dump(model, passes_in)
    for r in dump["records"]:
        r["topk_ids_of_layer"] = torch.from_numpy(r["topk_ids_of_layer"])
        r["global_physical_count"] = torch.from_numpy(r["global_physical_count"])
    pt = tmp_path / "expert_distribution_recorder_1.5_0.pt"
    torch.save(dump, str(pt))
    direct = load_source(str(pt), model=str(desc))
    out = tmp_path / "conv" / "dump.npz"
    done = subprocess.run([sys.executable, "-m", "waferview.convert", "sglang-recorder", str(pt), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {out} (per_token dump, 2 passes)\n"
    converted = load_source(str(out), model=str(desc))
    assert (direct.counts == converted.counts).all() and (direct.ids == converted.ids).all()
    assert (direct.counts[0] == reference_counts(model, passes_in[0][1])).all()


def test_recorder_pt_without_torch_says_how_to_convert(tmp_path, monkeypatch, capsys):
    model, desc = tiny_model(tmp_path)
    pt = tmp_path / "expert_distribution_recorder_1.5_0.pt"
    pt.write_bytes(b"PK\x03\x04 not really")
    monkeypatch.setitem(sys.modules, "torch", None)
    code, _, err = run_cli(["insights", pt, "--model", desc], capsys)
    assert code == 2
    assert err == (f"waferview insights: {pt}: reading a .pt recorder dump needs torch, which is not installed here; "
                   f"convert it where torch is: python -m waferview.convert sglang-recorder {pt} OUT.npz, then read "
                   "OUT.npz\n")


def test_recorder_stat_mode_is_count_only(tmp_path):
    model, desc = tiny_model(tmp_path)
    logical = np.zeros((4, model.num_layer_keys, model.num_experts), dtype=np.int64)
    logical[0][list(model.moe_layer_ids)] = stats(model, 1, 100)
    logical[1][list(model.moe_layer_ids)] = stats(model, 2, 6)     # rows 2, 3: unfilled buffer slots
    path = npz_of(tmp_path, {"rank": 0, "logical_count": logical}, "expert_distribution_recorder_2.0.npz")
    passes = load_source(str(path), model=str(desc))
    assert passes.count_only and list(passes.tokens) == [100, 6]
    assert (passes.counts[1] == logical[1][list(model.moe_layer_ids)]).all()
    assert any("2 unfilled (all-zero) buffer row(s)" in n for n in passes.notes)


def test_recorder_bad_dumps(tmp_path):
    model, desc = tiny_model(tmp_path)
    ids = routing(model, 3, 1)
    dump = recorder_dump(model, [(0, ids, True), (1, routing(model, 2, 2), False)])
    dump["records"][0]["topk_ids_of_layer"][2, 1, 1] = -1       # token 1 of layer 2 routes one expert only
    path = npz_of(tmp_path, dump)
    passes = load_source(str(path), model=str(desc))
    assert passes.skipped[0]["reason"] == ("record 0 (forward pass 0, rank 0): topk_ids_of_layer token 1 layer 2: -1 "
                                           "(no expert), but layer 2 is a MoE layer of tiny-moe and must route 2 "
                                           "experts")
    cut = tmp_path / "expert_distribution_recorder_cut.npz"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(TraceFileError, match=r"expert_distribution_recorder_cut.npz: not a readable .npz"):
        load_source(str(cut), model=str(desc), strict=True)


# ---- what recorded passes may and may not do -----------------------------------------------------

def test_insights_on_passes_match_the_same_tokens_and_refuse_next_token(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    steps = [(0, routing(model, 90, 1)), (1, routing(model, 4, 2)), (2, routing(model, 4, 3))]
    folder = megatron_dir(tmp_path, model, [steps])
    result = compute_insights(load_source(str(folder), model=str(desc)))
    # the same tokens as one request each: next-layer and pair figures need no request sequences
    ids = np.concatenate([s[1] for s in steps]).astype(model.id_dtype)
    alone = TraceArrays(model, ids[:90], ids[90:], np.r_[0, np.full(98, 90)],
                        np.r_[0, np.zeros(90, int), np.arange(1, 9)],
                        ())
    reference = compute_insights(alone)
    for f in ("next_layer_top20_coverage", "pair_coactivation_vs_random", "top10pct_pairs_share",
              "prefill_decode_spearman", "hot_expert_max_over_mean"):
        assert result["figures"][f] == reference["figures"][f]
    assert result["figures"]["next_token_top20_coverage"] is None
    assert result["refused"] == {"next_token_top20_coverage": "no request ids: the source does not say which tokens "
                                 "of consecutive passes belong to one request"}
    code, out, _ = run_cli(["insights", folder, "--model", desc, "--no-layers"], capsys)
    assert code == 0
    assert "3 recorded passes (batch as recorded), 90 prefill tokens, 8 decode tokens" in out
    assert ("next-token top-20% coverage: not computed: no request ids: the source does not say which tokens of "
            "consecutive passes belong to one request") in out


def test_count_only_insights_compute_frequencies_and_refuse_the_rest(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    r0 = {1: stats(model, 1, 100), 2: stats(model, 2, 4), 3: stats(model, 3, 4)}
    folder = trtllm_folder(tmp_path / "s", model, [r0])
    result = compute_insights(load_source(str(folder), model=str(desc)))
    total = r0[1] + r0[2] + r0[3]
    assert result["figures"]["hot_expert_max_over_mean"] == pytest.approx(
        float(np.median(total.max(axis=1) / (108 * model.top_k / model.num_experts))))
    assert set(result["refused"]) == {"next_token_top20_coverage", "next_layer_top20_coverage",
                                      "pair_coactivation_vs_random", "top1pct_pairs_vs_uniform", "top10pct_pairs_share"}
    assert all(result["figures"][f] is None for f in result["refused"])
    code, out, _ = run_cli(["insights", folder, "--model", desc, "--no-layers"], capsys)
    assert code == 0 and out.count("not computed: counts only:") == 5
    assert f"a pass of at most {DECODE_MAX_TOKENS} tokens counts as decode" in out


def test_megatron_wrong_width_names_the_record(tmp_path):
    model, desc = tiny_model(tmp_path)
    folder = megatron_dir(tmp_path, model, [[(0, routing(model, 2, 1))]])
    file = folder / "router_trace_rank0.jsonl"
    file.write_text(file.read_text().replace('"top_indices": [[', '"top_indices": [[7, ', 1))
    with pytest.raises(TraceFileError) as info:
        load_source(str(folder), model=str(desc), strict=True)
    assert str(info.value) == ("router_trace_rank0.jsonl: line 1 (step 0, layer 1): top_indices is ragged (rows of "
                               "different lengths)")


def test_recorder_per_pass_counts_go_through_the_physical_map(tmp_path):
    model, desc = tiny_model(tmp_path)
    table = np.tile(np.r_[np.arange(8), np.arange(4)], (model.num_layer_keys, 1))
    physical = np.zeros((2, model.num_layer_keys, 12), dtype=np.int64)
    logical = [stats(model, 1, 70), stats(model, 2, 3)]
    for p, c in enumerate(logical):
        physical[p][list(model.moe_layer_ids), :8] = c
        moved = physical[p][list(model.moe_layer_ids), :4] // 2      # half of experts 0..3 on their replicas
        physical[p][list(model.moe_layer_ids), :4] -= moved
        physical[p][list(model.moe_layer_ids), 8:] = moved
    records = [{"forward_pass_id": p, "rank": 0, "global_physical_count": physical[p]} for p in range(2)]
    path = npz_of(tmp_path, {"records": records, "last_physical_to_logical_map": table})
    passes = load_source(str(path), model=str(desc))
    assert passes.count_only and list(passes.tokens) == [70, 3] and list(passes.prefill) == [True, False]
    assert (passes.counts[0] == logical[0]).all() and (passes.counts[1] == logical[1]).all()


def test_convert_bad_input_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    from waferview.convert import main

    pt = tmp_path / "dump.pt"
    pt.write_bytes(b"not a torch file")
    out = tmp_path / "out.npz"
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    if have_torch:
        assert main(["sglang-recorder", str(pt), str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"waferview convert: {pt}: not a readable torch dump (") and err.count("\n") == 1
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["sglang-recorder", str(pt), str(out)]) == 2
    assert capsys.readouterr().err == ("waferview convert: python -m waferview.convert sglang-recorder reads the .pt "
                                       "with torch: run it where torch is installed (pip install torch)\n")
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["dump.pt"]
