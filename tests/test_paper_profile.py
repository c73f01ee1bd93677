"""The paper profile as a whole run equals the slow reference of the study's simulator (tests/reference_paper.py
around tests/reference_circuit.py) on random small cases: meshes from 1x1 to 4x4, every strategy (Base, EP,
Allo, Pred Only, Allo+Pred), the 50 GiB region, a region of a few slices, and the unbounded one; batches larger
than the trace (requests repeated in the study's order)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from reference_paper import run_paper
from simcases import random_trace
from waferview.cli.common import policy_options_from_args
from waferview.cli.main import build_parser
from waferview.models import ModelSpec
from waferview.sim.engine import Engine
from waferview.wafer.hardware import load_hardware

STRATEGIES = {"base": ("base", "off"), "norm_ep": ("ep", "off"), "allo_only": ("allo", "off"),
              "pred_only": ("base", "heatmap"), "allo_and_pred": ("allo", "heatmap")}
DIMS = {"deepseek": (7168, 2048), "qwen3": (4096, 1536), "llama4": (5120, 8192)}


def paper_options(copy_region: str):
    args = build_parser().parse_args(["summary", "--profile", "paper", "--copy-region", copy_region])
    return policy_options_from_args(args)


@pytest.mark.parametrize("case", range(9))
def test_the_paper_profile_equals_the_reference_on_random_cases(case):
    rng = np.random.default_rng(case)
    key = ("deepseek", "qwen3", "llama4")[case % 3]
    model = ModelSpec(key, f"t/{key}", 2, (), False, int(rng.integers(1, 4)), int(rng.integers(4, 20)), *DIMS[key])
    trace = random_trace(rng, model, requests=int(rng.integers(2, 6)), max_prefill=6, max_decode=5)
    width, height = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    slice_bytes = 2 * DIMS[key][0] * DIMS[key][1]
    region = (None, 50 * 2 ** 30, 4 * slice_bytes)[case % 3]
    batch = int(rng.choice([trace.requests, trace.requests * 3]))
    hw = load_hardware(f"{width}x{height}")
    options = paper_options("unbounded" if region is None else str(region))
    copies = 0
    for strategy, (placement, predictor) in STRATEGIES.items():
        ref = run_paper(trace, width, height, strategy, batch=batch, copy_region_bytes=region)
        s = Engine(trace, hw, batch=batch, placement=placement, predictor=predictor, links="circuit",
                   options=options).run()
        ours = (s["prefill_time_ms"] * 1e6, s["decode_time_ms"] * 1e6, s["hops"], s["local_write_bytes"],
                s["events"], s["paper_usage"], s["paper_die_max_over_min"], s["paper_die_max_over_avg"])
        theirs = (ref["prefill_ns"], ref["total_ns"] - ref["prefill_ns"], ref["hop"],
                  round(ref["local_dram_write_gib"] * 2 ** 30), ref["events"], ref["usage"], ref["die_max_over_min"],
                  ref["die_max_over_avg"])
        assert ours == pytest.approx(theirs, rel=1e-12), (case, strategy, width, height, region)
        copies += s["local_write_bytes"] > 0
    assert copies > 0   # the predictor's copies really ran


def test_a_one_row_prompt_last_makes_step_0_a_decode_step_as_the_study_does():
    model = ModelSpec("qwen3", "t/qwen3", 2, (), False, 2, 8, *DIMS["qwen3"])
    trace = random_trace(np.random.default_rng(3), model, requests=3, max_prefill=1, max_decode=3)   # 1-row prompts
    options = paper_options("50GiB")
    s = Engine(trace, load_hardware("2x2"), placement="base", predictor="off", links="circuit", options=options).run()
    ref = run_paper(trace, 2, 2, "base")
    assert s["prefill_time_ms"] == ref["prefill_ns"] == 0 and s["decode_time_ms"] * 1e6 == ref["total_ns"] > 0
    position = replace(options, prefill_rule="position")
    s = Engine(trace, load_hardware("2x2"), placement="base", predictor="off", links="circuit", options=position).run()
    assert s["prefill_time_ms"] > 0
