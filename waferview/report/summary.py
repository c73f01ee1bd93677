"""The summary fields (what they mean) and how reports print: one run as a table, compare as rows.
Shared by the CLI and the TUI; no numba, no textual."""

from __future__ import annotations

import math

# Definitions of every field of `summary --json` (printed by `summary --help`; a test checks none is missing).
FIELD_DOCS = {
    'source': "what the trace was read from; '(synthetic)' when `waferview synth` made it",
    'synthetic': 'true when the routing was generated, not recorded from a model',
    'model': 'qwen3, deepseek, llama4 or kimi',
    'requests': 'requests (files) in the source',
    'moe_layers': 'MoE layers per token (dense layers left out)',
    'top_k': 'experts each token picks per MoE layer',
    'num_experts': 'experts per MoE layer',
    'prefill_tokens': "rows of step 0 (the prefill), summed over the source's requests",
    'decode_tokens': "decode steps (one row each), summed over the source's requests",
    'files_skipped': 'bad trace files left out (--strict stops at the first instead)',
    'skipped': 'the files left out, each with the reason',
    'mesh': "the wafer: preset or WxH name, or the hardware file's name",
    'dies': 'dies on the wafer (width x height)',
    'batch': 'requests replayed together (cycled in a seeded order when more than the trace has)',
    'batch_note': 'set when requests were reused to fill the batch',
    'seed': "seed of the batch's request order and of base's start die per (step, layer)",
    'placement': 'task placement mode (base, ep, allo)',
    'predictor': 'copy predictor mode (off, heatmap, oracle, lru)',
    'eviction': "when a die's copy space is full: admit (default), lru, or never (the paper's rule)",
    'bytes_per_param': 'expert weight precision in bytes per parameter (2 = BF16, the default)',
    'layers_simulated': '(step, MoE layer) pairs simulated so far',
    'layers_total': '(step, MoE layer) pairs in the run',
    'steps': 'steps in the run: the prefill plus the longest decode',
    'batch_prefill_tokens': 'prefill rows of the batch (reused requests counted each time)',
    'batch_decode_tokens': 'decode steps of the batch (reused requests counted each time)',
    'token_selections': "sum over (step, layer) of the batch's expert counts (tokens x top-k)",
    'decode_time_ms': 'sum over decode (step, MoE layer) of the layer time (barrier: slowest die or link)',
    'prefill_time_ms': 'the same over the prefill step (step 0)',
    'throughput_tokens_per_s': 'decode tokens of the batch / decode MoE-layer time',
    'hops': 'sum over remote weight reads of the XY-route length (links crossed)',
    'remote_read_bytes': "expert weight bytes read from another die's HBM",
    'local_read_bytes': "expert weight bytes read from the executing die's own HBM",
    'local_write_bytes': 'bytes written by predictor copies (one expert matrix each)',
    'header_bytes': '16 B request headers of remote reads (on the links, reader to holder)',
    'weight_reads': 'expert weight reads (tasks): one whole expert matrix each',
    'cache_hit_rate': "weight reads served by the reading die's own HBM (home or copy) / all weight reads",
    'predictor_precision': "sum|P & A| / sum|P| over (step, layer), P = union of the dies' predicted sets, A = experts "
                           "active in that layer at the next step (null when predictor is off)",
    'predictor_recall': 'sum|P & A| / sum|A| over the same (step, layer) pairs (null when predictor is off)',
    'copies_made': 'predictor copies written; evictions: copies dropped to make room',
    'copy_reads': 'weight reads served by a predictor copy on the reading die (copies that paid off)',
    'evictions': 'copies dropped to make room for new ones',
    'copies_held': 'predictor copies held on all dies at the end',
    'copy_slots_per_die': 'expert copies a die may hold (--copy-slots; default its free HBM, smallest over dies)',
    'mean_die_utilization': 'sum of die busy time / (dies x sum of layer times)',
    'die_max_over_mean': "sum over layers of the busiest die's time / sum over layers of the mean die time",
    'compute_efficiency': "share of peak FLOPS reached, by model and batch (the authors' calibration)",
    'fits_in_hbm': "every die's home expert weights fit its usable HBM (80 GB less the 10% reserve)",
    'hbm_note': 'why the model does not fit, when it does not',
    'profile': "the profile the choices below default from: waferview (waferview's model) or paper (the study's "
               "simulator)",
    'links': 'link model: fluid (full-duplex bandwidth bound) or circuit (the study\'s discipline: slices as circuits '
             'over half-duplex edges)',
    'route_order': 'route dimension order: xy (x first) or yx (y first, the study: along die id div width first)',
    'base_order': 'base: seeded (a seeded round-robin) or first-seen (the study: by first appearance, die (k + 7) mod '
                  'dies)',
    'allo_planner': "allo: waferview (Algorithm 1 as the paper describes it) or study (the study's code)",
    'read_from': 'a remote read comes from the nearest holder, or from the home die (the study)',
    'heatmap_rule': "heatmap predictor: waferview's rule or the study's (its heatmap, argsort, copy predicate)",
    'copy_region': "copy store: slots (whole experts in free HBM), or a per-die region of slices (the study's 50GiB, "
                   "or unbounded)",
    'batch_order': "batch: a seeded permutation of the requests, or the study's order (subject folder, then file name)",
    'prefill_rule': 'step 0 is the prefill (position), or, as the study, only when its last request has a longer '
                    'prompt',
    'max_steps': 'at most this many steps (the prefill included), or null for the whole trace',
    'circuit_rules_off': "rules of the circuit model switched off (waferview explain's decomposition)",
    'paper_throughput': "the study's formula: batch x 128 / decode time (128 whatever was simulated)",
    'paper_usage': "the study's usage: sum of die busy spans / (dies x the longest span), over layers with work",
    'paper_die_max_over_min': "mean over layers with work of the longest / shortest busy span among dies with work",
    'paper_die_max_over_avg': 'mean over layers with work of the longest / mean busy span among dies with work',
    'events': 'stages the circuit model ran (0 under fluid)',
    'llc_hits': "slice reads served by a die's 64 MB LLC (circuit model only)",
    'bound_by': 'share of decode time whose layer was set by compute, HBM or incoming links of a die, or by a link',
    'top_bottlenecks': 'the resources that set the most layers (up to 10): resource, layers, share of all layers',
    'traffic_matrix': ("dies x dies list of lists: [i][j] = expert weight bytes die j read from die i's HBM over the "
                       "run; it sums to remote_read_bytes exactly (copies are written from those very bytes, so "
                       "local_write_bytes adds no traffic; headers are in header_bytes and link_bytes; circuit: a "
                       "slice a holder's LLC served crosses the links but is no remote read, so not here)"),
    'link_bytes': ('one entry per directed link (Mesh order: by from, then to): {"from": die, "to": die, "bytes": '
                   'weights and request headers over that link in the run}; fluid: sums to hops x (expert bytes + '
                   'header bytes)'),
}

# --json adds one more key after the fields: what produced them (report/provenance.py)
PROVENANCE_DOC = ("--json only: waferview_version, git_commit, python, command_line, synthetic, model "
                  "(its dimensions), hardware (the wafer as simulated), run_options")

HELP_EPILOG = ("summary fields:\n" + "\n".join(f"  {k:<24} {v}" for k, v in FIELD_DOCS.items())
               + f"\n  {'provenance':<24} {PROVENANCE_DOC}")


def summary_fields(trace, engine_summary: dict) -> dict:
    """What `summary --json` prints for one run: the trace facts, then the engine's summary fields.
    The CLI, compare and the live view all build their numbers here, so they cannot disagree."""
    return {**trace.facts(), **engine_summary}


def format_value(value) -> str:
    """One summary value as the tables print it."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):   # big lists (traffic_matrix, link_bytes) are for --json, not a table
        if value and all(isinstance(row, list) for row in value):
            return f"{len(value)}x{len(value[0])} matrix, see --json"
        if value and all(isinstance(item, dict) and "from" in item for item in value):
            return f"{len(value)} links, see --json"
        return f"{len(value)} item(s)"
    return str(value)


def human_bytes(n) -> str:
    """A byte count in SI units as tables print it: 118.8 TB, 37.7 MB, 16 B (JSON keeps raw numbers)."""
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def format_field(key: str, value) -> str:
    """One summary field as the tables print it: byte counts (`*_bytes`) in human units."""
    if key.endswith("_bytes") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return human_bytes(value)
    return format_value(value)


def format_table(fields: dict, title: str = "") -> str:
    width = max((len(k) for k in fields), default=0)
    lines = [title] if title else []
    if fields.get("fits_in_hbm") is False:
        lines.append(f"  WARNING: {fields.get('hbm_note') or 'the model does not fit the wafer HBM'}")
    for key, value in fields.items():
        lines.append(f"  {key:<{width}}  {format_field(key, value)}")
    for item in fields.get("skipped") or []:
        lines.append(f"    skipped {item['file']}: {item['reason']}")
    return "\n".join(lines)


COMPARE_COLUMNS = (
    ("strategy", "strategy", str),
    ("modes", None, None),
    ("tokens/s", "throughput_tokens_per_s", lambda v: "-" if v is None else f"{v:,.0f}"),
    ("speedup", "speedup_vs_base", lambda v: "-" if v is None else f"{v:.2f}x"),
    ("hops", "hops", lambda v: f"{v:,}"),
    ("hop red.", "hop_reduction_vs_base", None),
    ("remote", "remote_read_bytes", human_bytes),
    ("copies", "local_write_bytes", human_bytes),
    ("hit rate", "cache_hit_rate", lambda v: "-" if v is None else f"{v:.3f}"),
    ("util", "mean_die_utilization", lambda v: "-" if v is None else f"{v:.3f}"),
    ("max/mean", "die_max_over_mean", lambda v: "-" if v is None else f"{v:.2f}"),
    ("prec", "predictor_precision", lambda v: "-" if v is None else f"{v:.2f}"),
    ("recall", "predictor_recall", lambda v: "-" if v is None else f"{v:.2f}"),
)


def _hop_reduction(row: dict) -> str:
    v = row.get("hop_reduction_vs_base")
    if v is not None:
        return f"{v:,.0f}x" if v >= 100 else f"{v:.1f}x"
    if row.get("hops") == 0:
        return "no hops"
    return "-"


def _table(header: list[str], body: list[list[str]], left: int = 2) -> list[str]:
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(header)] + [line(b) for b in body]


def _notes(rows: list[dict], title: str) -> list[str]:
    lines = [title] if title else []
    first = rows[0] if rows else {}
    if first.get("fits_in_hbm") is False:
        lines.append(f"WARNING: {first.get('hbm_note') or 'the model does not fit the wafer HBM'}")
    if first.get("batch_note"):
        lines.append(f"note: {first['batch_note']}")
    return lines


def format_compare_links(rows: list[dict], title: str = "") -> str:
    """compare --links A,B: one line per strategy, each link model's throughput, speedup and hop reduction
    side by side (speedups against Base under the same link model)."""
    links = list(dict.fromkeys(r["links"] for r in rows))
    by = {(r["strategy"], r["links"]): r for r in rows}
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    header = ["strategy", "modes"]
    for name in links:
        header += [f"{name} tok/s", f"{name} speedup", f"{name} hop red."]
    body = []
    for strategy in strategies:
        first = next(r for r in rows if r["strategy"] == strategy)
        cells = [strategy, f"{first['placement']}/{first['predictor']}"]
        for name in links:
            r = by.get((strategy, name))
            tput = None if r is None else r.get("throughput_tokens_per_s")
            speed = None if r is None else r.get("speedup_vs_base")
            cells += ["-" if tput is None else f"{tput:,.0f}", "-" if speed is None else f"{speed:.2f}x",
                      "-" if r is None else _hop_reduction(r)]
        body.append(cells)
    lines = _notes(rows, title) + _table(header, body)
    lines.append("speedup and hop red.: against Base under the same link model")
    return "\n".join(lines)


def format_compare(rows: list[dict], title: str = "") -> str:
    """The compare table: one line per strategy, warnings first (side by side per link model when the rows
    come from several)."""
    if len({r.get("links") for r in rows}) > 1:
        return format_compare_links(rows, title)
    header = [c[0] for c in COMPARE_COLUMNS]
    body = []
    for r in rows:
        cells = []
        for name, key, fmt in COMPARE_COLUMNS:
            if name == "modes":
                cells.append(f"{r['placement']}/{r['predictor']}")
            elif name == "hop red.":
                cells.append(_hop_reduction(r))
            else:
                cells.append(fmt(r.get(key)))
        body.append(cells)
    lines = _notes(rows, title) + _table(header, body)
    if any(r.get("hops") == 0 for r in rows):
        lines.append("hop red.: Base hops / this run's hops; 'no hops' where a run moved no weights between dies")
    return "\n".join(lines)
