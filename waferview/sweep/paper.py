"""The paper's Fig. 12 grid as REPRODUCTION.md reports it: the per-run table (with each model's ceiling),
the headline figures beside the paper's, the shape check, and the row of the variants table. Printed by
`waferview sweep --paper` after its rows (it replaces `python -m waferview.sweep.reproduce`)."""

from __future__ import annotations

import statistics

from waferview.sweep.grid import PAPER_BATCHES, PAPER_MESHES
from waferview.sweep.runner import ceiling  # noqa: F401  (the ceiling lives with the runner that computes it)

STRATEGIES = ("EP", "Pred Only", "Allo Only", "Allo+Pred")
PRECISIONS = {2.0: "BF16", 1.0: "FP8 (1 B/param)", 0.5: "INT4 (0.5 B/param)"}   # labels of the variants table

# The paper's figures (DESIGN.md section 5), drawn as markers on Fig. 12
PAPER_ALLO_PRED_BY_MODEL = {"deepseek": 7.0, "kimi": 8.2, "llama4": 7.3, "qwen3": 4.1}
PAPER_ALLO_PRED_BY_MESH = {"5x5": 6.0, "8x3": 7.5}
PAPER_SPEEDUP_MEANS = {"Pred Only": 3.0, "Allo Only": 6.3, "Allo+Pred": 6.63}
PAPER_HOP_REDUCTION_MEANS = {"Pred Only": 4.5, "Allo Only": 142.0, "Allo+Pred": 213.0}   # Allo+Pred: "> 213x"
PAPER_CELLS = {("deepseek", "5x5", 4096, "Allo+Pred"): 8.0, ("deepseek", "5x5", 16384, "Allo+Pred"): 3.5}


def by_model(rows: list[dict]) -> dict:
    """Sweep rows (finished ones) grouped as {model: {"rows": [...]}}, models in first-seen order."""
    out: dict = {}
    for r in rows:
        if r.get("status", "ok") == "ok":
            out.setdefault(r.get("sweep_model") or r.get("model"), {"rows": []})["rows"].append(r)
    return out


def _hop(v) -> str:
    return "no hops" if v is None else (f"{v:.0f}x" if v >= 10 else f"{v:.1f}x")


def _cell(res: dict, mesh: str, batch: int) -> dict:
    """The rows of one (mesh, batch), by strategy."""
    return {r["strategy"]: r for r in res["rows"] if (r["sweep_mesh"], r["sweep_batch"]) == (mesh, batch)}


def _complete(rs: dict) -> bool:
    return all(s in rs for s in ("Base",) + STRATEGIES)


def run_table(results: dict) -> str:
    lines = ["| model | mesh | batch | Base tok/s | EP | Pred Only | Allo Only | Allo+Pred | ceiling | Allo+Pred / EP "
             "| hop red. Pred Only | Allo Only | Allo+Pred |",
             "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for model, res in results.items():
        for mesh in PAPER_MESHES:
            for batch in PAPER_BATCHES:
                rs = _cell(res, mesh, batch)
                if not _complete(rs):
                    continue
                base = rs["Base"]["throughput_tokens_per_s"]
                cells = [f"{rs[s]['speedup_vs_base']:.2f}x" for s in STRATEGIES]
                cells.append(f"{rs['Base']['ceiling_tokens_per_s'] / base:.2f}x")
                cells.append(f"{rs['Allo+Pred']['throughput_tokens_per_s'] / rs['EP']['throughput_tokens_per_s']:.2f}x")
                cells += [_hop(rs[s]["hop_reduction_vs_base"]) for s in ("Pred Only", "Allo Only", "Allo+Pred")]
                lines.append(f"| {model} | {mesh} | {batch} | {base:,.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def headline(results: dict) -> str:
    rows = [r for res in results.values() for r in res["rows"]]

    def pick(strategy, **kw):
        return [r for r in rows if r["strategy"] == strategy and all(r[k] == v for k, v in kw.items())]

    out = []
    for model in results:
        v = [r["speedup_vs_base"] for r in pick("Allo+Pred", model=model)]
        if v:
            out.append(f"Allo+Pred over Base, {model}: {statistics.mean(v):.2f}x ({min(v):.2f}-{max(v):.2f}x)"
                       f" [paper {PAPER_ALLO_PRED_BY_MODEL.get(model, '-')}x]")
    v = [r["speedup_vs_base"] for r in pick("Allo+Pred")]
    if v:
        out.append(f"Allo+Pred over Base, mean: {statistics.mean(v):.2f}x [paper 6.6x]")
    for mesh in PAPER_MESHES:
        v = [r["speedup_vs_base"] for r in pick("Allo+Pred", sweep_mesh=mesh)]
        if v:
            out.append(f"Allo+Pred over Base on {mesh}: {statistics.mean(v):.2f}x [paper "
                       f"{PAPER_ALLO_PRED_BY_MESH[mesh]}x]")
    for s in ("Pred Only", "Allo Only", "Allo+Pred"):
        sp = [r["speedup_vs_base"] for r in pick(s)]
        hops = [r["hop_reduction_vs_base"] for r in pick(s) if r["hop_reduction_vs_base"] is not None]
        if sp and hops:
            out.append(f"{s}: mean speedup {statistics.mean(sp):.2f}x [paper {PAPER_SPEEDUP_MEANS[s]}x]; hop reduction "
                       f"mean {statistics.mean(hops):.1f}x (geometric {statistics.geometric_mean(hops):.1f}x, "
                       f"{min(hops):.1f}-{max(hops):.1f}x) [paper {PAPER_HOP_REDUCTION_MEANS[s]:g}x]")
    for batch in PAPER_BATCHES:
        pairs = [(a, e) for a in pick("Allo+Pred", sweep_batch=batch) for e in pick("EP", sweep_batch=batch)
                 if (a["sweep_model"], a["sweep_mesh"]) == (e["sweep_model"], e["sweep_mesh"])]
        v = [a["throughput_tokens_per_s"] / e["throughput_tokens_per_s"] for a, e in pairs]
        if v:
            out.append(f"Allo+Pred over EP at {batch}: {statistics.mean(v):.2f}x ({min(v):.2f}-{max(v):.2f}x)")
    return "\n".join(out)


def failed_clauses(rs: dict) -> list[str]:
    """The acceptance clauses that one (mesh, batch) cell's rows fail: EP moves no weights;
    Allo+Pred >= Allo Only > Pred Only > Base in throughput; Allo Only's hop reduction well above Pred Only's
    (taken as at least 10x Pred Only's)."""
    tput = {k: r["throughput_tokens_per_s"] for k, r in rs.items()}
    hop = {k: r["hop_reduction_vs_base"] for k, r in rs.items()}
    clauses = [("EP moves no weights", rs["EP"]["remote_read_bytes"] == 0 and rs["EP"]["hops"] == 0),
               ("Allo+Pred >= Allo Only", tput["Allo+Pred"] >= tput["Allo Only"]),
               ("Allo Only > Pred Only", tput["Allo Only"] > tput["Pred Only"]),
               ("Pred Only > Base", tput["Pred Only"] > tput["Base"]),
               ("hop red. Allo Only >= 10x Pred Only's", hop["Allo Only"] is not None and hop["Pred Only"] is not None
                and hop["Allo Only"] >= 10 * hop["Pred Only"])]
    return [name for name, ok in clauses if not ok]


def _verdict(failed: list[str]) -> str:
    return "passes" if not failed else "fails " + "; ".join(failed)


def shape_check(results: dict, mesh: str = "8x3", batch: int = 4096) -> str:
    """failed_clauses per model on one mesh and batch, with the figures they compare."""
    out = []
    for model, res in results.items():
        rs = _cell(res, mesh, batch)
        if not _complete(rs):
            continue
        tput = {k: r["throughput_tokens_per_s"] for k, r in rs.items()}
        hop = {k: r["hop_reduction_vs_base"] for k, r in rs.items()}
        figures = (f"Base {tput['Base']:,.0f}, Pred Only {tput['Pred Only']:,.0f}, Allo Only {tput['Allo Only']:,.0f}, "
                   f"Allo+Pred {tput['Allo+Pred']:,.0f} tok/s; hop red. Pred Only {_hop(hop['Pred Only'])}, "
                   f"Allo Only {_hop(hop['Allo Only'])}")
        out.append(f"{model} {mesh} {batch}: {_verdict(failed_clauses(rs))} ({figures})")
    return "\n".join(out)


def variant_rows(results: dict, label: str, mesh: str = "8x3", batch: int = 4096) -> str:
    """REPRODUCTION.md's table of variants: one row per model for this run's options, with the shape check."""
    lines = []
    for model, res in results.items():
        rs = _cell(res, mesh, batch)
        if not _complete(rs):
            continue
        cells = [f"{rs[s]['speedup_vs_base']:.2f}x" for s in ("Pred Only", "Allo Only", "Allo+Pred")]
        cells += [_hop(rs[s]["hop_reduction_vs_base"]) for s in ("Pred Only", "Allo Only")]
        cells.append(f"{rs['Pred Only']['cache_hit_rate']:.2f}")
        lines.append(f"| {label} | {model} | " + " | ".join(cells) + f" | {_verdict(failed_clauses(rs))} |")
    return "\n".join(lines)


def variant_label(rows: list[dict]) -> str:
    """The variants table's label for these rows' precision and eviction (one value each expected)."""
    bpp = {r.get("bytes_per_param") for r in rows}
    ev = {r.get("eviction") for r in rows}
    if len(bpp) != 1 or len(ev) != 1:
        return "mixed options"
    (b,), (e,) = bpp, ev
    regions = {r.get("copy_region") for r in rows}
    if {r.get("profile") for r in rows} == {"paper"} and len(regions) == 1:
        # the paper profile keeps copies in its LRU region: the eviction rule does not apply
        return f"{PRECISIONS.get(b, f'{b:g} B/param')}, copy region {regions.pop()}"
    default = (b, e) == (2.0, "admit")
    return f"{PRECISIONS.get(b, f'{b:g} B/param')}, {e}" + (" (default)" if default else "")


GRID_COLUMNS = ("sweep_source", "sweep_model", "sweep_mesh", "sweep_batch", "strategy")


def extra_axes(rows: list[dict]) -> list[str]:
    """The axis columns of the rows beyond the paper's grid (sweep_profile, sweep_copy_region, ...), sorted."""
    return sorted({k for r in rows for k in r if k.startswith("sweep_") and k not in GRID_COLUMNS})


def variants(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """The rows split by every swept axis beyond the paper's grid (profile, copy region, ...), in first-seen
    order, each with its label ("" when nothing else was swept)."""
    extra = extra_axes(rows)
    groups: dict = {}
    for r in rows:
        key = tuple((k, r.get(k)) for k in extra)
        groups.setdefault(key, []).append(r)
    return [(", ".join(f"{k[6:].replace('_', ' ')} {_value(k, value)}" for k, value in key), group)
            for key, group in groups.items()]


def _value(column: str, value) -> str:
    """An axis value as the command line spells it (a copy region in bytes as the summary names it)."""
    if column == "sweep_copy_region" and isinstance(value, int) and not isinstance(value, bool):
        from waferview.policies.base import copy_region_label

        return copy_region_label(value)
    return str(value)


def paper_throughput_line(results: dict) -> str:
    """Allo+Pred over Base by the study's own formula (batch x 128 / decode time), where the rows have it."""
    pairs = []
    for res in results.values():
        for mesh in PAPER_MESHES:
            for batch in PAPER_BATCHES:
                rs = _cell(res, mesh, batch)
                if "Base" in rs and "Allo+Pred" in rs and rs["Base"].get("paper_throughput"):
                    pairs.append(rs["Allo+Pred"]["paper_throughput"] / rs["Base"]["paper_throughput"])
    if not pairs:
        return ""
    return (f"Allo+Pred over Base by paper_throughput (the study's formula): mean {statistics.mean(pairs):.2f}x "
            f"({min(pairs):.2f}-{max(pairs):.2f}x) [paper 6.6x]")


def report(rows: list[dict]) -> str:
    """Everything REPRODUCTION.md takes from a paper sweep, as markdown: one block per variant (profile,
    copy region, ... when those were swept too)."""
    blocks = []
    for label, group in variants(rows):
        results = by_model(group)
        parts = [f"#### {label}" if label else "", run_table(results), headline(results),
                 paper_throughput_line(results), shape_check(results),
                 variant_rows(results, variant_label([r for res in results.values() for r in res["rows"]]))]
        blocks.append("\n\n".join(p for p in parts if p))
    return "\n\n".join(blocks)
