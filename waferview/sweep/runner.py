"""Running configurations: the code every backend (in-process, local pool, Ray) runs on one trace.

run_chunk(trace, configs) is the ONE place where configurations of a chunk (same trace, batch and seed)
share work. Today engines on the same trace object and batch share the batch's counts and heatmap through
the memo in waferview.sim.batch, so running them one after another on one trace object is all the
sharing there is; when that sharing becomes an explicit object built once per (trace, batch, seed), this
function builds it (one per distinct (batch, seed) of its configurations) and hands it to simulate_config().

A configuration becomes the Namespace `waferview summary` would build (grid.namespace) and its fields are
exactly `summary --json`'s (cli.cmd_summary.simulate), plus `ceiling_tokens_per_s`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from waferview.errors import InputError
from waferview.sweep.grid import namespace


def simulate_config(trace, ns) -> dict:
    """The `summary --json` fields of one configuration: the one place a sweep makes an engine, through
    summary's own simulate() (cli.common.engine_from_args), so the fields are summary's."""
    from waferview.cli.cmd_summary import simulate

    return simulate(trace, ns)


def ceiling(trace, hardware, batch: int | None, seed: int = 0, bytes_per_param: float = 2.0) -> float:
    """Decode tokens/s no placement can beat in this model: per decode layer, perfect balance, every active
    expert read once from a local HBM, no links: max(weights / (D x HBM rate), compute / (D x compute rate))
    + the HBM latency."""
    from waferview.sim.batch import batch_counts, select_batch
    from waferview.wafer.homes import expert_bytes

    m = trace.model
    b = select_batch(trace, batch, seed)
    counts = batch_counts(trace, b)[1:]
    active = (counts > 0).sum(axis=2)
    selections = counts.sum(axis=2)
    D = hardware.num_dies
    hbm = hardware.hbm_bytes_per_ns * hardware.hbm_eff(m.key)
    flops = hardware.die_tflops * 1e3 * hardware.compute_eff(m.key, b.size)
    floor = np.maximum(active * expert_bytes(m, bytes_per_param) / (D * hbm), selections * m.flops_per_token / (D * flops))
    total_ns = float((floor + hardware.hbm_latency_ns).sum())
    return b.decode_tokens / (total_ns * 1e-9) if total_ns > 0 else float("nan")


def one_line(e: BaseException) -> str:
    """A failure as the one line its row carries."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, InputError):
        return text or e.__class__.__name__
    return f"{e.__class__.__name__}: {text}" if text else e.__class__.__name__


def run_config(trace, options: dict) -> dict:
    """{"fields": ...} for one configuration, or {"error": one line}."""
    from waferview.wafer.hardware import load_hardware

    try:
        ns = namespace(options)
        fields = simulate_config(trace, ns)
        fields["ceiling_tokens_per_s"] = ceiling(trace, load_hardware(ns.mesh), ns.batch, ns.seed, ns.bytes_per_param)
        return {"fields": fields}
    except Exception as e:  # a failed configuration is a row, the sweep goes on
        return {"error": one_line(e)}


def run_chunk(trace, configs: list[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
    """(index, result) for each (index, options) of a chunk, in order, as each one finishes."""
    for index, options in configs:
        yield index, run_config(trace, options)


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
