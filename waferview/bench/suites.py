"""One function per figure of the benchmark. Each returns a dict of its top-level keys plus a
`details` entry; a figure that cannot be measured is None with a reason in `notes`.

Timing rules: the engine is timed from Engine(...) to the end of run(), so its counts and heatmap
(memoised per trace object) are included; every suite uses fresh trace objects. JIT compilation is
never timed: each suite first runs its kernels once on a small input.
"""

from __future__ import annotations

import gc
import importlib.util
import math
import os
import sys

from waferview.bench.inputs import Workspace, fresh_copy, small_trace
from waferview.bench.measure import best_of, child_env, clock, repo_root, run_child
from waferview.bench.sizes import BenchSizes

REFERENCE_FIELDS = ("token_selections", "hops", "remote_read_bytes", "local_read_bytes", "local_write_bytes",
                    "weight_reads", "copies_made", "decode_time_ms", "prefill_time_ms")


def _hardware(mesh: str):
    from waferview.wafer.hardware import load_hardware

    return load_hardware(mesh)


def _engine(trace, mesh, batch, placement, predictor, seed=0):
    from waferview.sim.engine import Engine

    return Engine(trace, _hardware(mesh), batch=batch, seed=seed, placement=placement, predictor=predictor)


def warm_up(model: str) -> None:
    """Run every mode once on a two-request batch so that the kernels are compiled (or loaded from
    numba's cache) before anything is timed."""
    from waferview.policies import PLACEMENTS, PREDICTORS

    trace = small_trace(model, 2, 2, 2.0, seed=99)
    for placement in PLACEMENTS:
        for predictor in PREDICTORS:
            _engine(fresh_copy(trace), "5x5", 2, placement, predictor).run()


# ---------------------------------------------------------------- engine against the reference

def load_reference_model():
    """tests/reference_model.py of this checkout as a module, or (None, reason)."""
    path = repo_root() / "tests" / "reference_model.py"
    if not path.is_file():
        return None, f"{path} not found (the reference model lives in a source checkout, not an installed package)"
    spec = importlib.util.spec_from_file_location("waferview_bench_reference_model", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a broken checkout: say so, keep benchmarking the rest
        return None, f"{path}: cannot import ({e.__class__.__name__}: {e})"
    return module, None


def engine_vs_reference(sizes: BenchSizes, progress=None) -> dict:
    from waferview.policies import PLACEMENTS, PREDICTORS

    reference, reason = load_reference_model()
    if reference is None:
        return {"engine_speedup_vs_reference": None, "notes": {"engine_speedup_vs_reference": reason},
                "details": {"engine_vs_reference": None}}
    n = sizes.ref_requests
    trace = small_trace(sizes.ref_model, n, sizes.ref_max_decode, sizes.ref_prefill_median)
    hw = _hardware("5x5")
    warm_up(sizes.ref_model)
    rows = []
    for placement in PLACEMENTS:
        for predictor in PREDICTORS:
            def run_engine():
                e = _engine(fresh_copy(trace), "5x5", n, placement, predictor)
                return e, e.run()

            engine_s, (engine, ours) = best_of(sizes.engine_repeats, run_engine)
            t = clock()
            ref = reference.RefSim(fresh_copy(trace), hw, batch=n, seed=0, placement=placement, predictor=predictor)
            theirs = ref.run()
            reference_s = clock() - t
            agree = all(_close(ours[k], theirs[k]) for k in REFERENCE_FIELDS)
            rows.append({"placement": placement, "predictor": predictor, "layers": engine.total,
                         "engine_s": engine_s, "reference_s": reference_s,
                         "engine_layers_per_s": engine.total / engine_s,
                         "reference_layers_per_s": engine.total / reference_s,
                         "speedup": reference_s / engine_s, "outputs_agree": agree})
            if progress is not None:
                progress(1)
    smallest = min(rows, key=lambda r: r["speedup"])
    notes = {}
    if not all(r["outputs_agree"] for r in rows):
        bad = [f"{r['placement']}/{r['predictor']}" for r in rows if not r["outputs_agree"]]
        notes["engine_speedup_vs_reference"] = f"engine and reference disagree on {', '.join(bad)}"
    return {
        "engine_speedup_vs_reference": smallest["speedup"],
        "engine_speedup_vs_reference_mode": f"{smallest['placement']}/{smallest['predictor']}",
        "notes": notes,
        "details": {"engine_vs_reference": {
            "model": sizes.ref_model, "mesh": "5x5", "batch": n, "steps": smallest["layers"] // trace.model.moe_layers,
            "prefill_tokens": trace.prefill_tokens, "decode_tokens": trace.decode_tokens, "modes": rows}},
    }


def _close(a, b) -> bool:
    if a is None or b is None:
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# ---------------------------------------------------------------- engine rates

def engine_rates(ws: Workspace, sizes: BenchSizes, progress=None) -> dict:
    """allo/heatmap (the paper's Allo+Pred, the costliest strategy) on 5x5, per model and batch."""
    layers_per_s, selections_per_s, rows = {}, {}, []
    for model in sizes.rate_models:
        ws.pool_cache(model, sizes.pool_requests, sizes.pool_max_decode)
        warm_up(model)
        for batch in sizes.rate_batches:
            trace = ws.fresh_trace(model, sizes.pool_requests, sizes.pool_max_decode)
            t = clock()
            engine = _engine(trace, "5x5", batch, "allo", "heatmap")
            engine.prepare()
            setup_s = clock() - t
            summary = engine.run()
            seconds = clock() - t
            layers_per_s.setdefault(model, {})[str(batch)] = engine.total / seconds
            selections_per_s.setdefault(model, {})[str(batch)] = summary["token_selections"] / seconds
            rows.append({"model": model, "batch": batch, "distinct_requests": min(batch, trace.requests),
                         "layers": engine.total, "token_selections": summary["token_selections"],
                         "seconds": seconds, "setup_s": setup_s, "layers_s": seconds - setup_s})
            if progress is not None:
                progress(1)
    return {"engine_layers_per_s": layers_per_s, "engine_token_selections_per_s": selections_per_s,
            "details": {"engine_rates": {"mode": "allo/heatmap", "mesh": "5x5", "runs": rows}}}


# ---------------------------------------------------------------- the paper sweep

def sweep(ws: Workspace, sizes: BenchSizes, progress=None) -> dict:
    """The paper's sweep (waferview.sim.compare.paper_sweep: 5 strategies x meshes x batches, 30 runs
    at the paper's sizes) for each measured model, as `waferview compare` runs it: one trace object per
    model, so a batch's counts and heatmap are computed once and shared by its runs."""
    from waferview.bench.sizes import ALL_MODELS
    from waferview.models import get_model
    from waferview.sim.compare import paper_sweep

    per_model, runs = {}, {}
    for model in sizes.sweep_models:
        ws.pool_cache(model, sizes.pool_requests, sizes.pool_max_decode)
        warm_up(model)
        trace = ws.fresh_trace(model, sizes.pool_requests, sizes.pool_max_decode)
        out = paper_sweep(trace, meshes=tuple(sizes.sweep_meshes), batches=tuple(sizes.sweep_batches),
                          on_row=(lambda row: progress(1)) if progress is not None else None)
        per_model[model] = out["seconds"]
        runs[model] = out["runs"]
    missing = [m for m in ALL_MODELS if m not in per_model]
    estimated = {}
    if missing:  # scale the measured seconds per MoE layer to the other models
        measured_layers = sum(get_model(m).moe_layers for m in per_model)
        per_layer = sum(per_model.values()) / measured_layers
        estimated = {m: per_layer * get_model(m).moe_layers for m in missing}
    return {
        "sweep_seconds": max(per_model.values()),
        "sweep_seconds_model": max(per_model, key=per_model.get),
        "sweep_seconds_all_models": sum(per_model.values()) + sum(estimated.values()),
        "sweep_all_models_estimated": bool(missing),
        "details": {"sweep": {
            "runs_by_model": runs, "batches": list(sizes.sweep_batches), "meshes": list(sizes.sweep_meshes),
            "distinct_requests": sizes.pool_requests, "seconds_by_model": per_model,
            "estimated_seconds_by_model": estimated,
            "estimate_method": ("seconds per MoE layer of the measured model(s) x the other models' MoE layers"
                                if missing else None)}},
    }


# ---------------------------------------------------------------- ingest and cache size

def ingest_figures(ws: Workspace, sizes: BenchSizes, progress=None) -> dict:
    import orjson

    from waferview.trace.cache import save_cache
    from waferview.trace.ingest import ingest
    from waferview.trace.scan import scan_directory
    from waferview.models import get_model

    per_model, ratio_by_model = {}, {}
    raw_total = raw_gc_total = ingest_total = 0.0
    for model in ("qwen3", "deepseek", "llama4", "kimi"):
        folder = ws.json_dataset(model, sizes.ingest_requests)
        files = scan_directory(folder)
        blobs = []
        for f in files:
            with open(f.path, "rb") as fh:
                blobs.append(fh.read())
        json_bytes = sum(len(b) for b in blobs)
        spec = get_model(model)
        out = ws.path(f"ingest-{model}.wvtrace")

        def raw():
            for b in blobs:
                orjson.loads(b)

        def raw_floor():  # the parse alone, without the cyclic GC walking the fresh lists
            gc.disable()
            try:
                raw()
            finally:
                gc.enable()

        def parse_only():
            return ingest(files, label=str(folder), display=lambda rel: rel, model=spec, strict=True)

        def to_cache():
            save_cache(out, parse_only(), source_key="bench")

        raw_s, _ = best_of(sizes.ingest_repeats, raw_floor)
        raw_gc_s, _ = best_of(sizes.ingest_repeats, raw)
        ingest_s, _ = best_of(sizes.ingest_repeats, to_cache)
        parse_s, _ = best_of(sizes.ingest_repeats, parse_only)
        cache_bytes = os.path.getsize(out)
        raw_total += raw_s
        raw_gc_total += raw_gc_s
        ingest_total += ingest_s
        ratio_by_model[model] = cache_bytes / json_bytes
        per_model[model] = {"files": len(files), "json_bytes": json_bytes, "cache_bytes": cache_bytes,
                            "raw_orjson_mb_per_s": json_bytes / raw_s / 1e6,
                            "raw_orjson_gc_on_mb_per_s": json_bytes / raw_gc_s / 1e6,
                            "ingest_mb_per_s": json_bytes / ingest_s / 1e6,
                            "parse_only_mb_per_s": json_bytes / parse_s / 1e6,
                            "ingest_vs_raw_orjson": raw_s / ingest_s}
        if progress is not None:
            progress(1)
    all_json = sum(x["json_bytes"] for x in per_model.values())
    all_cache = sum(x["cache_bytes"] for x in per_model.values())
    return {"ingest_vs_raw_orjson": raw_total / ingest_total,
            "ingest_vs_raw_orjson_gc_on": raw_gc_total / ingest_total,
            "cache_bytes_over_json_bytes": ratio_by_model,
            "cache_bytes_over_json_bytes_all_models": all_cache / all_json,
            "details": {"ingest": {"files_per_model": sizes.ingest_requests, "by_model": per_model,
                                   "method": "JSON files -> TraceArrays -> .wvtrace (ingest + save_cache with its "
                                             "fsync, files read from the page cache) against orjson.loads of the same "
                                             "bytes already in memory with the cyclic GC paused (the parse "
                                             "alone; ingest pauses it too); best of "
                                             f"{sizes.ingest_repeats}"}}}


# ---------------------------------------------------------------- memory and start time

def peak_rss(ws: Workspace, sizes: BenchSizes) -> dict:
    import orjson

    path = ws.pool_cache(sizes.rss_model, sizes.pool_requests, sizes.pool_max_decode)
    args = ["-m", "waferview.bench.child", str(path), str(sizes.rss_batch), "5x5", "allo", "heatmap"]
    _, done = run_child(args, child_env())
    report = orjson.loads(done.stdout.strip().splitlines()[-1])
    report["trace_file_bytes"] = os.path.getsize(path)
    report["distinct_requests"] = min(sizes.pool_requests, sizes.rss_batch)
    return {"peak_rss_mb": report["vm_hwm_kb"] / 1024,
            "details": {"peak_rss": {"model": sizes.rss_model, "batch": sizes.rss_batch, "mesh": "5x5",
                                     "mode": "allo/heatmap", **report}}}


def start_times(ws: Workspace, sizes: BenchSizes) -> dict:
    """`waferview summary --json` twice in subprocesses sharing a fresh NUMBA_CACHE_DIR."""
    from waferview.trace.source import DEFAULT_MODEL, assets_dir
    from waferview.trace.cache import SUFFIX

    if not sizes.start:
        reason = f"not measured in the {sizes.name} configuration"
        return {"cold_start_s": None, "warm_start_s": None,
                "notes": {"cold_start_s": reason, "warm_start_s": reason}, "details": {"start": None}}
    argv = ["-m", "waferview", "summary", "--json"]
    notes = {}
    default = assets_dir() / f"{DEFAULT_MODEL}{SUFFIX}"
    source = "the shipped default " + f"assets/{default.name}"
    if not default.is_file():
        stand_in = ws.pool_cache(DEFAULT_MODEL, 64)
        argv.append(str(stand_in))
        source = f"a 64-request synthetic {DEFAULT_MODEL} stand-in ({default} is missing)"
        notes["warm_start_s"] = notes["cold_start_s"] = f"measured on {source}"
    numba_dir = ws.path("numba-cache")
    numba_dir.mkdir(exist_ok=True)
    env = child_env(NUMBA_CACHE_DIR=str(numba_dir))
    cold_s, _ = run_child(argv, env)
    second_s, done = run_child(argv, env)
    third_s, _ = run_child(argv, env)
    warm_s = min(second_s, third_s)  # a busy machine delays one run; the better of two warm runs
    python_s, _ = run_child(["-c", "pass"], env)
    import orjson

    summary = orjson.loads(done.stdout)
    cached_files = sum(1 for _ in numba_dir.rglob("*.nbi"))
    return {"cold_start_s": cold_s, "warm_start_s": warm_s, "notes": notes,
            "details": {"start": {"command": "waferview summary --json" + ("" if len(argv) == 4 else " STAND_IN"),
                                  "source": source, "layers": summary.get("layers_total"),
                                  "batch": summary.get("batch"), "warm_runs_s": [second_s, third_s],
                                  "bare_python_s": python_s,
                                  "numba_index_files": cached_files}}}


def interpreter() -> str:
    return sys.executable
