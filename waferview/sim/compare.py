"""Several placement/predictor pairs on the same batch, against Base; and the paper's sweep.

compare(): one summary per strategy (one Workload: the batch's counts and heatmap are computed once and
shared by the strategies' engines),
plus `strategy`, `speedup_vs_base` (throughput / Base throughput) and `hop_reduction_vs_base`
(Base hops / this run's hops; None when this run has no hops). Base = (base, off) is always run.
paper_sweep(): compare() for every mesh and batch of the paper (5 strategies x 2 meshes x 3 batches).
"""

from __future__ import annotations

import time

from waferview.errors import InputError
from waferview.links import DEFAULT_LINKS
from waferview.policies import PAPER_STRATEGIES
from waferview.policies.base import PolicyOptions
from waferview.report.summary import summary_fields
from waferview.sim.engine import Engine
from waferview.sim.recorded import workload_for

PAPER_MESHES = ("5x5", "8x3")
PAPER_BATCHES = (4096, 8192, 16384)


def strategy_name(placement: str, predictor: str) -> str:
    for name, p, q in PAPER_STRATEGIES:
        if (p, q) == (placement, predictor):
            return name
    return f"{placement}/{predictor}"


def compare(trace, hardware, strategies=PAPER_STRATEGIES, *, batch=None, seed=0, options=None,
            run=None, links=(DEFAULT_LINKS,), left_out: list | None = None) -> list[dict]:
    """Rows of trace facts + summary fields + strategy, speedup_vs_base, hop_reduction_vs_base, for every
    strategy under every link model in `links` (speedups against Base under the same link model).
    `run(engine)` runs one engine to the end and returns its summary (default engine.run).
    On a source with counts only, a strategy that needs token order (the heatmap) is left out, not run:
    {"strategy", "reason"} is appended to `left_out` (Base itself must run)."""
    run = run or (lambda engine: engine.run())
    options = options or PolicyOptions()
    workload = workload_for(trace, batch, seed, options)
    rows = []
    counts_only = getattr(trace, "count_only", False)
    for link_model in links:
        results = {}
        for name, p, q in (("Base", "base", "off"),) + tuple(strategies):
            if (p, q) in results:
                continue
            try:
                engine = Engine(trace, hardware, placement=p, predictor=q, links=link_model, options=options,
                                workload=workload)
                results[(p, q)] = summary_fields(trace, run(engine))
            except InputError as e:
                if not counts_only or (p, q) == ("base", "off"):
                    raise
                results[(p, q)] = None
                if left_out is not None and all(x["strategy"] != name for x in left_out):
                    left_out.append({"strategy": name, "reason": str(e)})
        base = results[("base", "off")]
        for name, p, q in strategies:
            if results[(p, q)] is None:
                continue
            row = {"strategy": name, **results[(p, q)]}
            bt, t = base["throughput_tokens_per_s"], row["throughput_tokens_per_s"]
            row["speedup_vs_base"] = t / bt if (bt and t is not None) else None
            row["hop_reduction_vs_base"] = base["hops"] / row["hops"] if row["hops"] else None
            rows.append(row)
    return rows


def paper_sweep(trace, meshes=PAPER_MESHES, batches=PAPER_BATCHES, *, seed=0, options=None, on_row=None) -> dict:
    """The paper's sweep for one model's trace: {"rows": [...], "seconds": wall time, "runs": n}.
    Each row also carries `sweep_mesh` and `sweep_batch`; `on_row(row)` is called as rows arrive."""
    from waferview.wafer.hardware import load_hardware

    start = time.perf_counter()
    rows = []
    for batch in batches:
        for mesh in meshes:
            for row in compare(trace, load_hardware(mesh), batch=batch, seed=seed, options=options):
                row["sweep_mesh"], row["sweep_batch"] = mesh, batch
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return {"rows": rows, "seconds": time.perf_counter() - start, "runs": len(rows)}
