"""Recorded batches replayed (sim.recorded): each forward pass a step, as recorded. The same routing as a
per-request capture, recorded by SGLang's recorder with request ids, simulates to the same numbers; the
predecessors of the recorded heatmap by hand; count-only recordings refuse what needs token order in one
line and run the rest; the live view on a count-only source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from enginefiles import (all_layers, megatron_records, recorder_dump, routing, tiny_model, trtllm_folder,
                         vllm_new, write_jsonl)
from tracefiles import isolated_cache, run_cli  # noqa: F401
from tui_support import async_test, wait_until
from waferview.sim.engine import Engine
from waferview.sim.heatmap_recorded import predecessors
from waferview.sim.workload import Workload
from waferview.trace.formats.sglang_recorder import dump_arrays
from waferview.trace.passes import RecordedPasses
from waferview.trace.source import load_source
from waferview.wafer.hardware import load_hardware

DECODE = 5                       # completion tokens of every request (all finish together)
PROMPTS = (3, 5, 2, 7, 4, 6)     # prompt rows per request

# what a recorded batch reports differently from a drawn one, by design
AS_RECORDED_FIELDS = {"source", "provenance", "batch", "batch_note", "batch_order", "prefill_rule",
                      "paper_throughput"}


def same_routing_two_ways(tmp_path: Path, order_kind: str = "seeded"):
    """A vLLM capture (one record per request) and SGLang's recorder dump of the same batch: pass 0 extends
    every prompt (in the batch's order, with rids), pass s decodes every request's token s."""
    model, desc = tiny_model(tmp_path)
    requests, records = [], []
    for r, p in enumerate(PROMPTS):
        moe = routing(model, p + DECODE - 1, 20 + r)
        requests.append((p, moe))
        records.append(vllm_new(f"r{r}", all_layers(model, moe).astype(np.uint8), p, DECODE))
    capture = write_jsonl(tmp_path / "capture.jsonl", records)
    trace = load_source(str(capture), model=str(desc))
    order = [int(i) for i in Workload(trace, order=order_kind).batch.order]
    assert sorted(order) == list(range(len(PROMPTS)))
    passes = [(0, np.concatenate([requests[i][1][:requests[i][0]] for i in order]), True)]
    passes += [(s, np.stack([requests[i][1][requests[i][0] + s - 1] for i in order]), False)
               for s in range(1, DECODE)]
    dump = recorder_dump(model, passes)
    for record in dump["records"]:
        record["rids"] = [f"r{i}" for i in order]
    dump["records"][0]["extend_seq_lens"] = [requests[i][0] for i in order]
    recorded = tmp_path / "expert_distribution_recorder_1.0_0.npz"
    np.savez(recorded, **dump_arrays(dump))
    return model, desc, capture, recorded


def summary_json(capsys, source, desc, *options):
    code, out, err = run_cli(["summary", source, "--model", desc, "--mesh", "3x2", "--json", *options], capsys)
    assert code == 0, err
    return orjson.loads(out)


@pytest.mark.parametrize("options", [
    ("--placement", "base", "--predictor", "off"),
    ("--placement", "allo", "--predictor", "heatmap"),
    ("--placement", "base", "--predictor", "heatmap"),
    ("--placement", "base", "--predictor", "oracle"),
    ("--placement", "ep", "--predictor", "lru"),
    ("--placement", "base", "--predictor", "off", "--base-order", "first-seen", "--links", "circuit"),
])
def test_a_recorded_batch_simulates_like_the_same_requests(tmp_path, capsys, options):
    _, desc, capture, recorded = same_routing_two_ways(tmp_path)
    a = summary_json(capsys, capture, desc, *options)
    b = summary_json(capsys, recorded, desc, *options)
    assert b["batch"] == b["batch_order"] == b["prefill_rule"] == "as recorded" and a["batch"] == len(PROMPTS)
    assert b["steps"] == DECODE and b["paper_throughput"] is None
    assert a["decode_time_ms"] > 0 and a["local_read_bytes"] + a["remote_read_bytes"] > 0
    for key in set(a) - AS_RECORDED_FIELDS:
        assert a[key] == b[key], key


def test_the_paper_profile_on_a_recorded_batch_in_the_studys_order(tmp_path, capsys):
    _, desc, capture, recorded = same_routing_two_ways(tmp_path, order_kind="study")
    for modes in (("--placement", "allo", "--predictor", "heatmap"), ("--placement", "base", "--predictor", "off")):
        a = summary_json(capsys, capture, desc, "--profile", "paper", *modes)
        b = summary_json(capsys, recorded, desc, "--profile", "paper", *modes)
        assert a["links"] == b["links"] == "circuit" and a["heatmap_rule"] == "study"
        for key in set(a) - AS_RECORDED_FIELDS:
            assert a[key] == b[key], key


def test_steps_are_the_passes_and_max_steps_keeps_the_first(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    folder = tmp_path / "trace"
    folder.mkdir()
    steps = [(0, routing(model, 90, 1)), (1, routing(model, 4, 2)), (2, routing(model, 3, 3)),
             (3, routing(model, 4, 4))]
    write_jsonl(folder / "router_trace_rank0.jsonl", megatron_records(model, 0, steps))
    passes = load_source(str(folder), model=str(desc))
    engine = Engine(passes, load_hardware("2x2"), placement="base", predictor="off")
    assert engine.workload.steps == 4 and (engine.workload.counts == passes.counts).all()
    assert list(engine.workload.tokens_per_step) == [90, 4, 3, 4]
    assert list(engine.workload.step_prefill) == [True, False, False, False]
    code, out, err = run_cli(["summary", folder, "--model", desc, "--mesh", "2x2"], capsys)
    assert code == 0, err
    assert "as recorded: 4 forward passes (1 prefill, 3 decode)" in out
    two = summary_json(capsys, folder, desc, "--max-steps", "2")
    assert two["steps"] == 2 and (two["batch_prefill_tokens"], two["batch_decode_tokens"]) == (90, 4)
    assert two["batch_note"] == "as recorded: 2 forward passes (1 prefill, 1 decode, the first 2 of 4)"
    code, out, err = run_cli(["summary", folder, "--model", desc, "--batch", "8"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--batch 8:" in err and "does not apply" in err


def test_predecessors_follow_requests_or_positions():
    class Passes:                                   # the fields predecessors() reads
        pass

    p = Passes()
    p.ids = np.zeros((8, 1, 1))
    p.pass_offsets = np.array([0, 4, 6, 8])
    p.passes, p.prefill = 3, np.array([True, False, False])
    p.request_ids = np.array([0, 0, 1, 1, 1, 0, 0, 1])     # pass 0: a a b b; pass 1: b a; pass 2: a b
    assert list(predecessors(p)) == [-1, 0, -1, 2, 3, 1, 5, 4]
    p.request_ids = None                             # prefill: the row before; decode: same slot, last pass
    assert list(predecessors(p)) == [-1, 0, 1, 2, 0, 1, 4, 5]


def count_only_source(tmp_path):
    """TensorRT-LLM's statistics of 4 iterations (a 40-token prefill, then 6-token decodes)."""
    model, desc = tiny_model(tmp_path)
    per_pass = {}
    for it, tokens in zip((1, 2, 3, 4), (40, 6, 6, 6)):
        counts = np.zeros((model.moe_layers, model.num_experts), dtype=np.int64)
        for row in routing(model, tokens, it):
            for layer, experts in enumerate(row):
                counts[layer, experts] += 1
        per_pass[it] = counts
    return model, desc, trtllm_folder(tmp_path / "stats", model, [per_pass])


def test_count_only_refuses_token_order_in_one_line_and_runs_the_rest(tmp_path, capsys):
    _, desc, folder = count_only_source(tmp_path)
    for option in (["--predictor", "heatmap"], ["--base-order", "first-seen"]):
        code, out, err = run_cli(["summary", folder, "--model", desc, *option], capsys)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert f"{folder} has per-expert counts only (no per-token expert ids)" in err
    ran = summary_json(capsys, folder, desc, "--placement", "allo", "--predictor", "oracle")
    assert ran["steps"] == 4 and ran["batch"] == "as recorded" and ran["decode_time_ms"] > 0
    code, out, err = run_cli(["compare", folder, "--model", desc, "--mesh", "3x2", "--json"], capsys)
    assert code == 0, err
    result = orjson.loads(out)
    left = {x["strategy"] for x in result["left_out"]}
    ran_names = {row["strategy"] for row in result["rows"]}
    assert left and all("per-expert counts only" in x["reason"] for x in result["left_out"])
    assert not left & ran_names
    code, out, err = run_cli(["compare", folder, "--model", desc, "--mesh", "3x2"], capsys)
    assert code == 0 and all(f"{name} left out:" in out + err for name in left)


@async_test
async def test_the_live_view_on_a_count_only_source_starts_without_the_heatmap(tmp_path, capsys):
    from waferview.tui.app import make_app
    from waferview.tui.panels import HeaderBar
    from waferview.tui.screens import SummaryScreen

    _, desc, folder = count_only_source(tmp_path)
    expected = summary_json(capsys, folder, desc, "--placement", "allo", "--predictor", "off")
    del expected["provenance"]
    trace = load_source(str(folder), model=str(desc))
    assert isinstance(trace, RecordedPasses) and trace.count_only
    app = make_app(trace, load_hardware("3x2"), placement="allo", predictor="heatmap", paused=True, speed=0)
    assert "heatmap" not in app.predictors and app.driver.wanted_mode("predictor") == "off"
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.state is not None, "the first frame")
        assert "batch as recorded" in str(app.query_one(HeaderBar).render())
        await pilot.press("r")
        assert app.driver.wanted_mode("predictor") == "oracle"       # heatmap skipped
        await pilot.press("r", "r")                                   # lru, then off again
        assert app.driver.wanted_mode("predictor") == "off"
        await pilot.press("c")             # the comparison: Base against the best this source allows (allo/off)
        await wait_until(pilot, lambda: app.driver.compare is not None, "the comparison")
        assert (app.driver.wanted_mode("placement", compare=True),
                app.driver.wanted_mode("predictor", compare=True)) == ("base", "off")
        await pilot.press("c")
        await pilot.press("space")
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen), "the summary at the end")
        assert app.state.main.summary == expected
