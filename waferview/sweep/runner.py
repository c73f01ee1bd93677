"""Running configurations: the code every backend (in-process, local pool, Ray) runs on one trace.

run_chunk(trace, configs) is the ONE place where configurations of a chunk (same trace, batch and seed)
share work: it builds one waferview.sim.workload.Workload (the batch, its counts per step and layer, its
heatmaps) per distinct batch drawing (batch, seed, and the profile's batch order, step limit and prefill
rule) and hands it to every engine of that drawing, and to the ceiling.

A configuration becomes the Namespace `waferview summary` would build (grid.namespace) and its fields are
exactly `summary --json`'s (cli.cmd_summary.simulate), plus `ceiling_tokens_per_s`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from waferview.errors import InputError
from waferview.sweep.grid import namespace


def simulate_config(trace, ns, workload=None) -> dict:
    """The `summary --json` fields of one configuration: the one place a sweep makes an engine, through
    summary's own simulate() (cli.common.engine_from_args), so the fields are summary's."""
    from waferview.cli.cmd_summary import simulate

    return simulate(trace, ns, workload=workload)


def ceiling(trace, hardware, batch: int | None, seed: int = 0, bytes_per_param: float = 2.0,
            workload=None) -> float:
    """Decode tokens/s no placement can beat in this model: per decode layer, perfect balance, every active
    expert read once from a local HBM, no links: max(weights / (D x HBM rate), compute / (D x compute rate))
    + the HBM latency. workload: the batch drawn (default: waferview's seeded drawing of batch, seed)."""
    from waferview.sim.workload import Workload
    from waferview.wafer.homes import expert_bytes

    m = trace.model
    if workload is None:
        workload = Workload(trace, batch, seed)
    b = workload.batch
    counts = workload.counts[~workload.step_prefill]      # the decode steps
    active = (counts > 0).sum(axis=2)
    selections = counts.sum(axis=2)
    D = hardware.num_dies
    hbm = hardware.hbm_bytes_per_ns * hardware.hbm_eff(m.key)
    flops = hardware.die_tflops * 1e3 * hardware.compute_eff(m.key, b.size)
    floor = np.maximum(active * expert_bytes(m, bytes_per_param) / (D * hbm),
                       selections * m.flops_per_token / (D * flops))
    total_ns = float((floor + hardware.hbm_latency_ns).sum())
    return b.decode_tokens / (total_ns * 1e-9) if total_ns > 0 else float("nan")


def one_line(e: BaseException) -> str:
    """A failure as the one line its row carries."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, InputError):
        return text or e.__class__.__name__
    return f"{e.__class__.__name__}: {text}" if text else e.__class__.__name__


# A chunk's drawings differ only in the profile's batch options (order, step limit, prefill rule): a few.
MAX_HELD_WORKLOADS = 4


def run_config(trace, options: dict, workloads: dict | None = None) -> dict:
    """{"fields": ...} for one configuration, or {"error": one line}. workloads: the chunk's batch drawings
    by key, reused and added to."""
    from waferview.cli.common import policy_options_from_args
    from waferview.sim.recorded import workload_for
    from waferview.wafer.hardware import load_hardware

    try:
        ns = namespace(options)
        opt = policy_options_from_args(ns)
        key = (ns.batch, ns.seed, opt.batch_order, opt.max_steps, opt.prefill_rule)
        workloads = {} if workloads is None else workloads
        if key not in workloads:
            while len(workloads) >= MAX_HELD_WORKLOADS:      # the oldest drawing goes (dicts keep order)
                workloads.pop(next(iter(workloads)))
            workloads[key] = workload_for(trace, ns.batch, ns.seed, opt)
        workload = workloads[key]
        fields = simulate_config(trace, ns, workload)
        # the same batch the row ran, and its bytes per parameter
        fields["ceiling_tokens_per_s"] = ceiling(trace, load_hardware(ns.mesh), ns.batch, ns.seed,
                                                 fields["bytes_per_param"], workload)
        return {"fields": fields}
    except Exception as e:  # a failed configuration is a row, the sweep goes on
        return {"error": one_line(e)}


def run_chunk(trace, configs: list[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
    """(index, result) for each (index, options) of a chunk, in order, as each one finishes; configurations
    that draw the same batch share its Workload."""
    workloads: dict = {}
    for index, options in configs:
        yield index, run_config(trace, options, workloads)


# ---- numba warm-up, once per worker ---------------------------------------------------------

def _tiny_trace(model_key: str):
    """Four short random requests of `model` (no synth kernels needed)."""
    from waferview.models import get_model
    from waferview.trace.arrays import concat_requests

    m = get_model(model_key)
    rng = np.random.default_rng(0)
    shape = (m.moe_layers, m.top_k)
    per = [(rng.integers(0, m.num_experts, (3, *shape)).astype(m.id_dtype),
            rng.integers(0, m.num_experts, (2, *shape)).astype(m.id_dtype)) for _ in range(4)]
    return concat_requests(m, per, [f"warm{i}" for i in range(4)], source="warm-up")


def warm_up(model_keys) -> None:
    """Run every placement x predictor once on a tiny trace of each id width, so kernels are compiled (or
    loaded from numba's cache) before the first real configuration."""
    from waferview.policies import PLACEMENTS, PREDICTORS

    widths = {}
    for key in model_keys:
        from waferview.models import get_model

        widths.setdefault(get_model(key).id_dtype.str, key)
    for key in widths.values():
        trace = _tiny_trace(key)
        for p in PLACEMENTS:
            for q in PREDICTORS:
                run_config(trace, {"mesh": "2x2", "placement": p, "predictor": q})
