"""Text tables for `waferview insights` (plain strings: no numba, no textual)."""

from __future__ import annotations

DEFINITIONS = """\
Notation: a trace has T tokens (every prefill row and every decode step of every request), L MoE layers
(numbered 0..L-1 in key order, dense layers left out), E experts, top-k. S(x, l) is the set of k experts
token x picked at MoE layer l. n = ceil(0.2 * E).

next_token_top20_coverage
    For each layer l, H[a][b] counts, over every request and every pair of consecutive decode steps
    t -> t+1 of that request, every pair (a in S(t, l), b in S(t+1, l)). Coverage(l) = sum over rows a of
    the n largest entries of row a, divided by the sum of all entries. Figure: mean over layers.
next_layer_top20_coverage
    The same with a in S(x, l) and b in S(x, l+1) for every token x (prefill rows and decode steps), for
    l = 0..L-2 (reported at layer l). Figure: mean over the L-1 layer pairs.
prefill_decode_spearman
    Per layer: Spearman correlation (Pearson correlation of average ranks) between the per-expert counts
    over prefill rows and over decode steps. Figure: median over layers.
prefill_decode_topk_overlap (k = 5, 10, 20)
    Per layer: |top-k experts by prefill count  intersect  top-k by decode count| / k, ties broken by the
    lower expert id. Figure: mean over layers.
hot_expert_max_over_mean
    Per layer: max over experts of the count over all tokens, divided by the mean count (T * k / E).
    Figure: median over layers. It cannot exceed E / k.
pair_coactivation_vs_random (top-k > 1)
    Per layer: C[a][b] (a < b) counts tokens that picked both a and b. Under independent choices with the
    same per-expert counts N, pair (a, b) would get X[a][b] = P * N[a] * N[b] / sum over c<d of N[c] * N[d],
    where P = T * k * (k - 1) / 2 is the number of co-selections. The figure is, for the 1% most
    co-selected pairs (ceil(0.01 * E * (E - 1) / 2) pairs by C, ties to the lower pair index),
    sum of C / sum of X over those pairs. Figure: median over layers. Independent routing gives ~1.
top1pct_pairs_vs_uniform (top-k > 1)
    Per layer: the share of all co-selections carried by the same 1% most co-selected pairs, divided by
    that 1% (m / (E * (E - 1) / 2) for the m pairs): how much more often they fire together than pairs
    of uniformly random routing. This is the baseline the paper's "20-40x random" compares against.
    Figure: median over layers.
top10pct_pairs_share (top-k > 1)
    Per layer: the share of all co-selections (sum of C) carried by the 10% most co-selected pairs
    (ceil(0.1 * E * (E - 1) / 2) pairs). Figure: mean over layers.
A figure whose input is empty (no decode pairs, no prefill rows, top-k = 1 for pairs) is null.
"""

SHORT = {
    "next_token_top20_coverage": "next-token top-20% coverage",
    "next_layer_top20_coverage": "next-layer top-20% coverage",
    "prefill_decode_spearman": "prefill/decode Spearman",
    "prefill_decode_topk_overlap_5": "prefill/decode top-5 overlap",
    "prefill_decode_topk_overlap_10": "prefill/decode top-10 overlap",
    "prefill_decode_topk_overlap_20": "prefill/decode top-20 overlap",
    "hot_expert_max_over_mean": "hottest expert / mean",
    "pair_coactivation_vs_random": "top 1% pairs vs independent",
    "top1pct_pairs_vs_uniform": "top 1% pairs vs uniform",
    "top10pct_pairs_share": "share of top 10% pairs",
}
COLUMNS = {  # per-layer table: header -> figure
    "next-tok": "next_token_top20_coverage",
    "next-lay": "next_layer_top20_coverage",
    "spearman": "prefill_decode_spearman",
    "ovl5": "prefill_decode_topk_overlap_5",
    "ovl10": "prefill_decode_topk_overlap_10",
    "ovl20": "prefill_decode_topk_overlap_20",
    "hot/mean": "hot_expert_max_over_mean",
    "pair/ind": "pair_coactivation_vs_random",
    "pair/uni": "top1pct_pairs_vs_uniform",
    "top10%": "top10pct_pairs_share",
}


def _num(v, width: int = 0) -> str:
    text = "-" if v is None else (f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")
    return f"{text:>{width}}"


def _paper(v) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def format_insights(result: dict, per_layer: bool = True) -> str:
    how = {"prefill_decode_spearman": "median", "hot_expert_max_over_mean": "median",
           "pair_coactivation_vs_random": "median", "top1pct_pairs_vs_uniform": "median"}
    if "passes" in result:  # recorded batches (trace.passes): passes as recorded, not requests
        unit = f"{result['passes']:,} recorded passes (batch as recorded), {result['prefill_tokens']:,} prefill " \
               f"tokens, {result['decode_tokens']:,} decode tokens"
    else:
        unit = f"{result['requests']:,} requests, {result['prefill_tokens']:,} prefill rows, " \
               f"{result['decode_tokens']:,} decode steps"
    lines = [f"waferview insights: {result['source']}",
             f"  {result['model']}: {unit}, {result['moe_layers']} MoE layers, top-{result['top_k']} "
             f"of {result['num_experts']} experts"]
    lines += [f"  note: {n}" for n in result.get("notes", ())]
    if result.get("files_skipped"):
        lines.append(f"  {result['files_skipped']} file(s) skipped")
    lines.append("")
    width = max(len(s) for s in SHORT.values())
    lines.append(f"  {'figure':<{width}}  {'value':>8}  {'over layers':<11}  paper")
    for fig, name in SHORT.items():
        lines.append(f"  {name:<{width}}  {_num(result['figures'].get(fig), 8)}  {how.get(fig, 'mean'):<11}  "
                     f"{_paper(result['paper'].get(fig))}")
    for fig, why in result.get("refused", {}).items():
        lines.append(f"  {SHORT[fig]}: not computed: {why}")
    if per_layer:
        lines.append("")
        lines.append("  " + f"{'layer':>5} {'key':>4} " + " ".join(f"{h:>8}" for h in COLUMNS))
        for row in result["per_layer"]:
            lines.append("  " + f"{row['moe_layer']:>5} {row['layer_key']:>4} "
                         + " ".join(_num(row[f], 8) for f in COLUMNS.values()))
    return "\n".join(lines)
