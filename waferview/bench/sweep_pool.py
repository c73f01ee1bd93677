"""The figures of `waferview sweep`'s local pool: parallel efficiency, per-configuration overhead, and the
paper's grid through the sweep on 2 workers.

- parallel efficiency: the same grid (sizes.pool_seeds batch seeds x the five strategies on 5x5, one
  chunk per seed) with 2 workers and with 1: rate with 2 / rate with 1 (>= 1.8 is the target).
- per-configuration overhead: the 1-worker pool against the same chunks run in this process with one
  numba thread (what a worker runs), in CPU seconds of every process involved (this one and the
  workers, which are reaped before the clock stops): (pool CPU - in-process CPU) / in-process CPU, i.e.
  the pool's startup, numba warm-up, transfer and result handling as a share of a configuration's time
  (< 5%). CPU time, unlike wall time, does not depend on what else the machine runs; the wall-clock
  ratio is in the details too.
- the paper grid: 5 strategies x meshes x batches for each model of sizes.grid_models on 2 workers, from
  the start of the pool to the last row (reading and fingerprinting the traces timed apart).
Rows are never taken from a cache: each run has a fresh row cache in the workspace.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from waferview.bench.measure import clock


@contextmanager
def _private_cache(ws):
    """The sweep's caches (rows, fingerprints, numba warm-up lock) inside the workspace."""
    old = os.environ.get("WAFERVIEW_CACHE_DIR")
    os.environ["WAFERVIEW_CACHE_DIR"] = str(ws.path("sweep-cache"))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WAFERVIEW_CACHE_DIR", None)
        else:
            os.environ["WAFERVIEW_CACHE_DIR"] = old


def _plan(sources, axes):
    from waferview.sweep.plan import SweepSpec, load, make_plan

    t = clock()
    plan = load(make_plan(SweepSpec(sources=[str(s) for s in sources], axes=axes)))
    return plan, clock() - t


def _cpu() -> float:
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def _run(plan, pool, ws, name):
    """(wall seconds, CPU seconds of this process and its reaped workers, rows)."""
    from waferview.sweep.driver import run_plan
    from waferview.sweep.results import RowCache

    t, cpu = clock(), _cpu()
    out = run_plan(plan, pool, RowCache(ws.path(f"rows-{name}")), fresh=True)
    seconds, cpu = clock() - t, _cpu() - cpu
    if out.failed:
        raise RuntimeError(f"{out.failed} configurations failed: " +
                           next(r["error"] for r in out.rows if r["status"] == "failed"))
    return seconds, cpu, out.rows


def _local(workers, model_keys):
    from waferview.sweep.local import LocalPool
    from waferview.sweep.traces import sweep_dir

    return LocalPool(workers, model_keys, str(sweep_dir() / "numba-warm.lock"))


def pool_figures(ws, sizes, progress=None) -> dict:
    import numba

    from waferview.sweep.driver import InlinePool
    from waferview.sweep.runner import warm_up

    with _private_cache(ws):
        path = ws.pool_cache(sizes.pool_model, sizes.pool_requests, sizes.pool_max_decode)
        axes = {"batches": [sizes.pool_batch], "meshes": ["5x5"], "strategies": ["paper"],
                "seed": list(range(sizes.pool_seeds))}
        plan, _ = _plan([path], axes)
        one_s, one_cpu, rows_one = _run(plan, _local(1, [sizes.pool_model]), ws, "one")
        if progress is not None:
            progress(1)
        two_s, two_cpu, rows_two = _run(plan, _local(2, [sizes.pool_model]), ws, "two")
        if progress is not None:
            progress(1)
        threads = numba.get_num_threads()
        numba.set_num_threads(1)   # what a worker runs with
        try:
            warm_up([sizes.pool_model])
            inline_s, inline_cpu, rows_inline = _run(plan, InlinePool(), ws, "inline")
        finally:
            numba.set_num_threads(threads)
        if progress is not None:
            progress(1)
    n = len(plan.configs)
    agree = rows_one == rows_two == rows_inline
    notes = {} if agree else {"sweep_parallel_efficiency": "the pool's rows differ from the in-process rows"}
    return {"sweep_parallel_efficiency": one_s / two_s, "sweep_pool_overhead": (one_cpu - inline_cpu) / inline_cpu,
            "notes": notes,
            "details": {"sweep_pool": {
                "model": sizes.pool_model, "distinct_requests": sizes.pool_requests, "batch": sizes.pool_batch,
                "mesh": "5x5", "configurations": n, "chunks": sizes.pool_seeds,
                "grid": f"{sizes.pool_seeds} batch seeds x 5 strategies (one chunk per seed)",
                "one_worker_s": one_s, "two_workers_s": two_s, "in_process_one_thread_s": inline_s,
                "one_worker_cpu_s": one_cpu, "two_workers_cpu_s": two_cpu, "in_process_one_thread_cpu_s": inline_cpu,
                "cpu_seconds_per_configuration_in_process": inline_cpu / n,
                "pool_overhead_cpu_s_per_configuration": (one_cpu - inline_cpu) / n,
                "pool_overhead_wall_clock": (one_s - inline_s) / inline_s, "rows_agree": agree}}}


def paper_grid(ws, sizes, progress=None) -> dict:
    from waferview.models import get_model

    with _private_cache(ws):
        paths = [ws.pool_cache(m, sizes.pool_requests, sizes.pool_max_decode) for m in sizes.grid_models]
        axes = {"batches": list(sizes.sweep_batches), "meshes": list(sizes.sweep_meshes), "strategies": ["paper"]}
        plan, load_s = _plan(paths, axes)
        seconds, cpu, _ = _run(plan, _local(2, list(sizes.grid_models)), ws, "paper")
        if progress is not None:
            progress(1)
    from waferview.bench.sizes import ALL_MODELS

    missing = [m for m in ALL_MODELS if m not in sizes.grid_models]
    estimate = 0.0
    if missing:   # seconds per MoE layer of the measured model(s), times the others' layers
        per_layer = seconds / sum(get_model(m).moe_layers for m in sizes.grid_models)
        estimate = per_layer * sum(get_model(m).moe_layers for m in missing)
    return {"sweep_paper_grid_seconds": seconds + estimate, "sweep_paper_grid_estimated": bool(missing),
            "details": {"sweep_paper_grid": {
                "models_measured": list(sizes.grid_models), "models_estimated": missing,
                "configurations_measured": len(plan.configs), "workers": 2, "profile": "waferview",
                "measured_s": seconds, "estimated_extra_s": estimate, "read_and_fingerprint_s": load_s,
                "cpu_s": cpu, "cpu_s_over_2_cores": cpu / 2,
                "batches": list(sizes.sweep_batches), "meshes": list(sizes.sweep_meshes),
                "distinct_requests": sizes.pool_requests}}}
