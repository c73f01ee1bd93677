"""Run the suites in order, assemble the one JSON object, and render the readable table."""

from __future__ import annotations

import traceback

from waferview.bench import paper_profile, suites, sweep_pool
from waferview.bench.inputs import Workspace
from waferview.bench.measure import clock, load_average, machine
from waferview.bench.sizes import ALL_MODELS, PAPER_BATCHES, BenchSizes

# (key, comparison, threshold, how the target reads)
TARGETS = (
    ("engine_speedup_vs_reference", ">=", 100.0, ">= 100x the pure-Python reference (smallest over modes)"),
    ("sweep_seconds", "<", 120.0, "< 120 s for one model's paper sweep (30 runs)"),
    ("sweep_seconds_all_models", "<", 480.0, "< 8 min for all four models"),
    ("peak_rss_mb", "<", 2048.0, "< 2 GB (2048 MiB) at batch 16384"),
    ("ingest_vs_raw_orjson", ">=", 0.7, ">= 0.7x plain orjson.loads"),
    ("cache_bytes_over_json_bytes", "<=", 1 / 20, "<= 1/20 of the JSON bytes (every model)"),
    ("warm_start_s", "<", 2.0, "< 2 s for a warm `waferview summary`"),
    ("sweep_parallel_efficiency", ">=", 1.8, ">= 1.8x: 2 workers' rate over 1 worker's"),
    ("sweep_pool_overhead", "<", 0.05, "< 5% of a configuration's time"),
    ("sweep_paper_grid_seconds", "<", 60.0, "< 60 s for the paper grid (120 runs) on 2 workers"),
    ("circuit_events_per_s", ">=", 5e6, ">= 5 M events/s on one core (the circuit link model)"),
    ("paper_compare_seconds", "<=", 18.0, "<= 18 s: compare --profile paper, 64 Qwen requests, 5 strategies"),
)

FIGURE_KEYS = ("engine_speedup_vs_reference", "engine_layers_per_s", "engine_token_selections_per_s",
               "ingest_vs_raw_orjson", "cache_bytes_over_json_bytes", "sweep_seconds", "sweep_seconds_all_models",
               "peak_rss_mb", "cold_start_s", "warm_start_s", "sweep_parallel_efficiency", "sweep_pool_overhead",
               "sweep_paper_grid_seconds", "circuit_events_per_s", "circuit_over_fluid_layer_cost",
               "paper_compare_seconds")
# companions of the figures (which mode was slowest, which model's sweep, ...)
COMPANION_KEYS = ("engine_speedup_vs_reference_mode", "ingest_vs_raw_orjson_gc_on",
                  "cache_bytes_over_json_bytes_all_models",
                  "sweep_seconds_model", "sweep_all_models_estimated", "sweep_paper_grid_estimated",
                  "paper_compare_vs_study")


def _stages(ws: Workspace, sizes: BenchSizes):
    """(label, progress units, function of a tick callback) in the order they run."""
    runs = len(sizes.sweep_batches) * len(sizes.sweep_meshes) * 5 * len(sizes.sweep_models)
    return [
        ("start times", 1, lambda tick: suites.start_times(ws, sizes)),
        ("engine vs reference", 12, lambda tick: suites.engine_vs_reference(sizes, tick)),
        ("engine rates", len(sizes.rate_models) * len(sizes.rate_batches),
         lambda tick: suites.engine_rates(ws, sizes, tick)),
        ("paper sweep", runs, lambda tick: suites.sweep(ws, sizes, tick)),
        ("ingest", 4, lambda tick: suites.ingest_figures(ws, sizes, tick)),
        ("peak RSS", 1, lambda tick: suites.peak_rss(ws, sizes)),
        ("sweep pool", 3, lambda tick: sweep_pool.pool_figures(ws, sizes, tick)),
        ("sweep paper grid", 1, lambda tick: sweep_pool.paper_grid(ws, sizes, tick)),
        ("paper profile", 3, lambda tick: paper_profile.paper_profile_figures(ws, sizes, tick)),
    ]


_STAGE_KEYS = {
    "start times": ("cold_start_s", "warm_start_s"),
    "engine vs reference": ("engine_speedup_vs_reference",),
    "engine rates": ("engine_layers_per_s", "engine_token_selections_per_s"),
    "paper sweep": ("sweep_seconds", "sweep_seconds_all_models"),
    "ingest": ("ingest_vs_raw_orjson", "cache_bytes_over_json_bytes"),
    "peak RSS": ("peak_rss_mb",),
    "sweep pool": ("sweep_parallel_efficiency", "sweep_pool_overhead"),
    "sweep paper grid": ("sweep_paper_grid_seconds",),
    "paper profile": ("circuit_events_per_s", "circuit_over_fluid_layer_cost", "paper_compare_seconds"),
}


def run_bench(sizes: BenchSizes, *, workdir: str | None = None, show_progress: bool | None = None) -> dict:
    """Every figure of `sizes`, as one JSON-ready dict."""
    from waferview.progress import Progress

    started = clock()
    result: dict = {"config": sizes.name, "machine": machine()}
    result.update({k: None for k in FIGURE_KEYS + COMPANION_KEYS})
    notes: dict = {}
    details: dict = {}
    stage_seconds: dict = {}
    with Workspace(workdir) as ws:
        for label, units, fn in _stages(ws, sizes):
            bar = Progress(units, f"bench: {label}", enabled=show_progress)
            t = clock()
            try:
                out = fn(bar.update)
            except Exception as e:  # one failed figure must not hide the others
                reason = f"{label} failed: {e.__class__.__name__}: {e}"
                notes.update({k: reason for k in _STAGE_KEYS[label]})
                details[f"{label} traceback"] = traceback.format_exc().splitlines()[-6:]
                out = {}
            finally:
                bar.close()
            stage_seconds[label] = clock() - t
            notes.update(out.pop("notes", {}) or {})
            details.update(out.pop("details", {}) or {})
            result.update(out)
    result["targets"] = {k: f"{op} {thr:g}" for k, op, thr, _ in TARGETS}
    result["met"] = {k: _met(result.get(k), op, thr) for k, op, thr, _ in TARGETS}
    result["sizes"] = sizes.as_dict()
    result["sizes_note"] = sizes_note(sizes)
    result["notes"] = notes
    result["details"] = details
    result["stage_seconds"] = stage_seconds
    result["bench_seconds"] = clock() - started
    result["machine"]["load_average_at_end"] = load_average()
    result["provenance"] = bench_provenance(sizes)
    return result


def bench_provenance(sizes: BenchSizes) -> dict:
    """Provenance of a bench run: every input is synthetic (generated on the spot), on the paper's
    meshes, for every model; the configuration's sizes are the run options."""
    from waferview.models import get_model
    from waferview.report.provenance import provenance
    from waferview.wafer.hardware import load_hardware

    models = [get_model(m) for m in ALL_MODELS]    # the ingest and cache figures cover every model
    return provenance(model=models, hardware=[load_hardware(m) for m in sizes.sweep_meshes], synthetic=True,
                      run_options={"config": sizes.name, **sizes.as_dict()})


def _met(value, op, threshold):
    if value is None:
        return None
    if isinstance(value, dict):
        value = max(value.values()) if op in ("<", "<=") else min(value.values())
    return {">=": value >= threshold, "<": value < threshold, "<=": value <= threshold}[op]


def sizes_note(sizes: BenchSizes) -> str:
    """What differs from the paper's setup, in one line (empty for a run at the paper's sizes)."""
    parts = []
    if sizes.pool_requests < max(PAPER_BATCHES):
        parts.append(f"synthetic pools of {sizes.pool_requests} distinct requests per model (larger batches "
                     "reuse requests in a seeded order)")
    else:
        parts.append(f"synthetic pools of {sizes.pool_requests} distinct requests per model")
    if tuple(sizes.sweep_models) != ALL_MODELS:
        parts.append(f"sweep measured on {', '.join(sizes.sweep_models)}, the other models estimated")
    if tuple(sizes.sweep_batches) != PAPER_BATCHES:
        parts.append(f"sweep batches {', '.join(map(str, sizes.sweep_batches))} (paper: 4096, 8192, 16384)")
    parts.append(f"reference batch {sizes.ref_requests} {sizes.ref_model} requests, {sizes.ref_max_decode} decode "
                 f"steps, median prompt {sizes.ref_prefill_median:g} tokens")
    parts.append(f"ingest on {sizes.ingest_requests} JSON files per model")
    return f"{sizes.name} configuration: " + "; ".join(parts)


# ---------------------------------------------------------------- the readable table

def _fmt(value, unit="") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:
            text = f"{value:,.0f}"
        elif abs(value) >= 10:
            text = f"{value:.1f}"
        elif abs(value) >= 0.1:
            text = f"{value:.2f}"
        else:
            text = f"{value:.4f}"
        return text + unit
    return f"{value}{unit}"


def render_table(r: dict) -> str:
    m = r["machine"]
    met, d = r["met"], r["details"]
    lines = [f"waferview bench ({r['config']}): {m['cpu_model']}, {m['cores_usable']} cores, {m['memory_gb']} GB, "
             f"Python {m['python']}, numba {m['numba']}, numpy {m['numpy']}, orjson {m['orjson']}, "
             f"commit {m.get('commit') or '-'}, load average {_load(m)}",
             r["sizes_note"], ""]
    rows = []

    def row(label, value, target_key=None):
        target = next((t for k, _, _, t in TARGETS if k == target_key), "")
        mark = {True: "met", False: "MISSED", None: "-"}[met.get(target_key)] if target_key else ""
        rows.append((label, value, target, mark))

    mode = r.get("engine_speedup_vs_reference_mode")
    row("engine speedup vs reference" + (f" (smallest: {mode})" if mode else ""),
        _fmt(r["engine_speedup_vs_reference"], "x"), "engine_speedup_vs_reference")
    for model, per in (r["engine_layers_per_s"] or {}).items():
        for batch, v in per.items():
            sel = r["engine_token_selections_per_s"][model][batch]
            row(f"engine {model} batch {batch}: layers/s, token selections/s",
                f"{_fmt(v)}, {sel / 1e6:,.0f} M")
    row("ingest JSON->cache over raw orjson.loads (GC paused)", _fmt(r["ingest_vs_raw_orjson"], "x"),
        "ingest_vs_raw_orjson")
    row("  same, over orjson.loads with the GC on", _fmt(r.get("ingest_vs_raw_orjson_gc_on"), "x"))
    ratios = r["cache_bytes_over_json_bytes"] or {}
    if ratios:
        row("cache bytes / JSON bytes", ", ".join(f"{k} 1/{1 / v:.0f}" for k, v in ratios.items()),
            "cache_bytes_over_json_bytes")
    else:
        row("cache bytes / JSON bytes", "-", "cache_bytes_over_json_bytes")
    row(f"paper sweep, one model ({r.get('sweep_seconds_model') or '-'}, 30 runs)", _fmt(r["sweep_seconds"], " s"),
        "sweep_seconds")
    est = " (estimated)" if r.get("sweep_all_models_estimated") else ""
    row(f"paper sweep, four models{est}", _fmt(r["sweep_seconds_all_models"], " s"), "sweep_seconds_all_models")
    row("peak RSS, Qwen batch 16384" if (d.get("peak_rss") or {}).get("batch") == 16384 else "peak RSS",
        _fmt(r["peak_rss_mb"], " MiB"), "peak_rss_mb")
    row("cold start `waferview summary`", _fmt(r["cold_start_s"], " s"))
    row("warm start `waferview summary`", _fmt(r["warm_start_s"], " s"), "warm_start_s")
    row("sweep pool: 2 workers' rate over 1 worker's", _fmt(r.get("sweep_parallel_efficiency"), "x"),
        "sweep_parallel_efficiency")
    overhead = r.get("sweep_pool_overhead")
    row("sweep pool: overhead per configuration", "-" if overhead is None else f"{overhead:.1%}", "sweep_pool_overhead")
    est = " (estimated)" if r.get("sweep_paper_grid_estimated") else ""
    row(f"sweep --paper grid on 2 workers, waferview profile{est}", _fmt(r.get("sweep_paper_grid_seconds"), " s"),
        "sweep_paper_grid_seconds")
    pp = d.get("paper_profile") or {}
    events = r.get("circuit_events_per_s")
    row(f"circuit links: events/s, one core (Base, {pp.get('model', '-')} batch {pp.get('requests', '-')}, 8x3)",
        "-" if events is None else f"{events / 1e6:.1f} M", "circuit_events_per_s")
    row("circuit over fluid links: cost per layer (same run)", _fmt(r.get("circuit_over_fluid_layer_cost"), "x"))
    study = r.get("paper_compare_vs_study")
    row(f"compare --profile paper, {(pp.get('compare') or {}).get('requests', 64)} Qwen requests, 5 strategies"
        + (f" ({study:,.0f}x the study's 3,632 s)" if study else ""), _fmt(r.get("paper_compare_seconds"), " s"),
        "paper_compare_seconds")
    widths = [max(len(x[i]) for x in rows + [("figure", "value", "target", "")]) for i in range(3)]
    head = ("figure", "value", "target", "")
    for cells in [head] + rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells[:3], widths)) + "  " + cells[3])
    extra = _mode_table(d.get("engine_vs_reference"))
    if extra:
        lines += ["", *extra]
    if r["notes"]:
        lines += ["", "notes:"] + [f"  {k}: {v}" for k, v in r["notes"].items()]
    lines += ["", f"bench took {r['bench_seconds']:.0f} s"]
    return "\n".join(lines)


def _load(m: dict) -> str:
    start, end = m.get("load_average_at_start"), m.get("load_average_at_end")
    return f"{start[0] if start else '-'} at start, {end[0] if end else '-'} at end"


def _mode_table(ref: dict | None) -> list[str]:
    if not ref:
        return []
    out = [f"engine vs reference per mode ({ref['model']}, {ref['mesh']}, batch {ref['batch']}, "
           f"{ref['modes'][0]['layers']} (step, layer) kernels each):",
           f"  {'mode':<16}{'engine layers/s':>16}{'reference layers/s':>20}{'speedup':>10}  agree"]
    for x in ref["modes"]:
        out.append(f"  {x['placement'] + '/' + x['predictor']:<16}{x['engine_layers_per_s']:>16,.0f}"
                   f"{x['reference_layers_per_s']:>20,.1f}{x['speedup']:>9,.0f}x  "
                   f"{'yes' if x['outputs_agree'] else 'NO'}")
    return out
