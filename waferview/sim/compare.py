"""Several placement/predictor pairs on the same batch, against Base; and the paper's sweep.

compare(): one summary per strategy (one Workload: the batch's counts and heatmap are computed once and
shared by the strategies' engines),
plus `strategy`, `speedup_vs_base` (throughput / Base throughput) and `hop_reduction_vs_base`
(Base hops / this run's hops; None when this run has no hops). Base = (base, off) is always run.
paper_sweep(): compare() for every mesh and batch of the paper (5 strategies x 2 meshes x 3 batches).
"""

from __future__ import annotations

import threading
import time

from waferview.errors import InputError
from waferview.links import DEFAULT_LINKS
from waferview.policies import PAPER_STRATEGIES
from waferview.policies.base import PolicyOptions
from waferview.report.summary import summary_fields
from waferview.sim.engine import Engine, RunCancelled
from waferview.sim.recorded import workload_for

PAPER_MESHES = ("5x5", "8x3")
PAPER_BATCHES = (4096, 8192, 16384)


def strategy_name(placement: str, predictor: str) -> str:
    for name, p, q in PAPER_STRATEGIES:
        if (p, q) == (placement, predictor):
            return name
    return f"{placement}/{predictor}"


def compare(trace, hardware, strategies=PAPER_STRATEGIES, *, batch=None, seed=0, options=None,
            run=None, links=(DEFAULT_LINKS,), left_out: list | None = None, jobs: int = 1) -> list[dict]:
    """Rows of trace facts + summary fields + strategy, speedup_vs_base, hop_reduction_vs_base, for every
    strategy under every link model in `links` (speedups against Base under the same link model).
    `run(engine)` runs one engine to the end and returns its summary (default engine.run); with `jobs` > 1
    that many engines run at once on threads (the kernels release the GIL), so `run` must be thread-safe.
    The rows are the same, in the same order, for any `jobs`: every engine is independent, and the one
    Workload they share computes each of its parts once, under its lock.
    On a source with counts only, a strategy that needs token order (the heatmap) is left out, not run:
    {"strategy", "reason"} is appended to `left_out` (Base itself must run)."""
    run = run or (lambda engine: engine.run())
    options = options or PolicyOptions()
    workload = workload_for(trace, batch, seed, options)
    counts_only = getattr(trace, "count_only", False)
    runs = []   # (link model, strategy name, placement, predictor), each pair once per link model
    for link_model in links:
        pairs = set()
        for name, p, q in (("Base", "base", "off"),) + tuple(strategies):
            if (p, q) not in pairs:
                pairs.add((p, q))
                runs.append((link_model, name, p, q))

    def one(link_model, name, p, q, started):
        try:
            engine = Engine(trace, hardware, placement=p, predictor=q, links=link_model, options=options,
                            workload=workload)
            started(engine)
            return summary_fields(trace, run(engine)), None
        except InputError as e:
            if not counts_only or (p, q) == ("base", "off"):
                raise
            return None, str(e)

    results = {}
    for (link_model, name, p, q), (summary, reason) in zip(runs, run_all(one, runs, jobs)):
        results[(link_model, p, q)] = summary
        if reason is not None and left_out is not None and all(x["strategy"] != name for x in left_out):
            left_out.append({"strategy": name, "reason": reason})
    rows = []
    for link_model in links:
        base = results[(link_model, "base", "off")]
        for name, p, q in strategies:
            if results[(link_model, p, q)] is None:
                continue
            row = {"strategy": name, **results[(link_model, p, q)]}
            bt, t = base["throughput_tokens_per_s"], row["throughput_tokens_per_s"]
            row["speedup_vs_base"] = t / bt if (bt and t is not None) else None
            row["hop_reduction_vs_base"] = base["hops"] / row["hops"] if row["hops"] else None
            rows.append(row)
    return rows


def run_all(one, runs, jobs: int) -> list:
    """[one(*run, started) for run in runs], in order, `jobs` at a time on threads (the kernels release the
    GIL). one() hands each engine it makes to started(engine) before running it, so that an error in any run,
    or an interrupt in the caller, stops the others at their next step and starts no more; the error is raised
    once every thread has ended."""
    if jobs <= 1 or len(runs) <= 1:
        return [one(*item, lambda engine: None) for item in runs]
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    running, lock, stopped = {}, threading.Lock(), threading.Event()   # running: thread id -> its engine

    def started(engine):
        with lock:
            running[threading.get_ident()] = engine
            if stopped.is_set():
                engine.cancel()

    def stop_all():
        with lock:
            stopped.set()
            for engine in running.values():
                engine.cancel()

    def job(item):
        if stopped.is_set():
            raise RunCancelled(f"{item[1]} not started: another run of the comparison failed")
        try:
            return one(*item, started)
        except BaseException:
            stop_all()    # before this thread takes the next run
            raise
        finally:
            with lock:    # a finished engine is not kept alive for the rest of the comparison
                running.pop(threading.get_ident(), None)

    pool = ThreadPoolExecutor(max_workers=min(jobs, len(runs)), thread_name_prefix="waferview-compare")
    try:
        futures = [pool.submit(job, item) for item in runs]
        wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.done() and f.exception() is not None for f in futures):
            wait(futures)
            errors = [f.exception() for f in futures if f.exception() is not None]
            raise next((e for e in errors if not isinstance(e, RunCancelled)), errors[0])
        return [future.result() for future in futures]
    except BaseException:
        stop_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
