"""The trace statistics behind the paper's insights, per MoE layer and over layers.

The exact definitions are in waferview.analysis.insights_format.DEFINITIONS (printed by `waferview insights
--help`). Counting runs in one numba kernel, layers in parallel; the figures are numpy over the tables.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from waferview.trace.arrays import TraceArrays

# The paper's values (DESIGN.md section 5). Ranges are given as (low, high).
PAPER = {
    "next_layer_top20_coverage": {"deepseek": 0.50, "qwen3": 0.65, "llama4": 0.77, "kimi": 0.56},
    "next_token_top20_coverage": {"deepseek": 0.47, "qwen3": 0.62, "llama4": 0.80, "kimi": 0.53},
}
PAPER_ALL_MODELS = {
    "hot_expert_max_over_mean": "> 16",
    "prefill_decode_topk_overlap_5": 0.60,
    "prefill_decode_topk_overlap_10": 0.75,
    "prefill_decode_topk_overlap_20": 0.90,
    "top1pct_pairs_vs_uniform": "20-40",
    "top10pct_pairs_share": "0.60-0.80",
}
FIGURES = ("next_token_top20_coverage", "next_layer_top20_coverage", "prefill_decode_spearman",
           "prefill_decode_topk_overlap_5", "prefill_decode_topk_overlap_10", "prefill_decode_topk_overlap_20",
           "hot_expert_max_over_mean", "pair_coactivation_vs_random", "top1pct_pairs_vs_uniform",
           "top10pct_pairs_share")
OVERLAP_KS = (5, 10, 20)


def paper_value(figure: str, model_key: str):
    if figure in PAPER:
        return PAPER[figure].get(model_key)
    return PAPER_ALL_MODELS.get(figure)


# ---------------------------------------------------------------------------------------------
# counting kernels: one pass per layer, layers in parallel (each thread owns its layers' tables)


@njit(nogil=True, cache=True, parallel=True)
def _count(prefill, decode, dec_off, num_experts, next_layer, next_token, pairs, freq_pre, freq_dec):
    L = prefill.shape[1]
    k = prefill.shape[2]
    for l in prange(L):
        for phase in range(2):
            ids = prefill if phase == 0 else decode
            freq = freq_pre if phase == 0 else freq_dec
            for x in range(ids.shape[0]):
                for i in range(k):
                    a = np.int64(ids[x, l, i])
                    freq[l, a] += 1
                    for j in range(i + 1, k):
                        b = np.int64(ids[x, l, j])
                        pairs[l, min(a, b), max(a, b)] += 1      # branch-free: the order is random
                    if l + 1 < L:
                        for j in range(k):
                            next_layer[l, a, np.int64(ids[x, l + 1, j])] += 1
        for r in range(dec_off.shape[0] - 1):
            for x in range(dec_off[r], dec_off[r + 1] - 1):
                for i in range(k):
                    a = np.int64(decode[x, l, i])
                    for j in range(k):
                        next_token[l, a, np.int64(decode[x + 1, l, j])] += 1


def layer_counts(trace: TraceArrays) -> dict:
    """The count tables every figure is computed from (see the module docstring)."""
    m = trace.model
    L, E = m.moe_layers, m.num_experts
    tokens = trace.prefill_tokens + trace.decode_tokens
    dt = np.int32 if tokens * m.top_k < 2**31 - 1 else np.int64
    tables = {
        "next_layer": np.zeros((L, E, E), dt),
        "next_token": np.zeros((L, E, E), dt),
        "pairs": np.zeros((L, E, E), dt),
        "freq_pre": np.zeros((L, E), np.int64),
        "freq_dec": np.zeros((L, E), np.int64),
    }
    _count(np.asarray(trace.prefill_ids), np.asarray(trace.decode_ids), np.asarray(trace.decode_offsets, np.int64),
           E, tables["next_layer"], tables["next_token"], tables["pairs"], tables["freq_pre"], tables["freq_dec"])
    return tables


# ---------------------------------------------------------------------------------------------
# figures from the tables (numpy over layers)


def _coverage(h: np.ndarray, n: int) -> np.ndarray:
    """Per layer: sum of each row's n largest entries / sum of all entries (nan when empty)."""
    E = h.shape[2]
    total = h.sum(axis=(1, 2), dtype=np.int64)
    top = np.partition(h, E - n, axis=2)[:, :, E - n:].sum(axis=(1, 2), dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, top / np.maximum(total, 1), np.nan)


def _average_ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    sorted_v = v[order]
    ranks = np.empty(len(v))
    # ties share the mean of their positions (1-based)
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], len(v)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + 1 + e) / 2.0
    return ranks


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


def _top_ids(counts: np.ndarray, k: int) -> np.ndarray:
    # by count descending, ties to the lower id
    return np.lexsort((np.arange(len(counts)), -counts))[:k]


def _pair_figures(pairs: np.ndarray, freq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    L, E, _ = pairs.shape
    iu = np.triu_indices(E, 1)
    n_pairs = len(iu[0])
    top10, top1 = math.ceil(0.1 * n_pairs), math.ceil(0.01 * n_pairs)
    share = np.full(L, np.nan)
    lift = np.full(L, np.nan)
    uniform = np.full(L, np.nan)
    for l in range(L):
        c = pairs[l][iu].astype(np.float64)
        total = c.sum()
        if total == 0:
            continue
        order = np.lexsort((np.arange(n_pairs), -c))
        share[l] = c[order[:top10]].sum() / total
        n = freq[l].astype(np.float64)
        prod = n[iu[0]] * n[iu[1]]
        expected = total * prod / prod.sum()
        lift[l] = c[order[:top1]].sum() / expected[order[:top1]].sum()
        uniform[l] = c[order[:top1]].sum() / total / (top1 / n_pairs)
    return lift, uniform, share


def _nan_to_none(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _agg(values: np.ndarray, how: str):
    v = values[~np.isnan(values)]
    if len(v) == 0:
        return None
    return float(np.median(v) if how == "median" else v.mean())


def expert_counts(trace: TraceArrays) -> tuple[np.ndarray, np.ndarray]:
    """Per layer and expert: how many prefill rows and how many decode steps picked it ([L, E] each)."""
    m = trace.model
    L, E = m.moe_layers, m.num_experts
    shift = (np.arange(L, dtype=np.int64) * E)[None, :, None]
    return tuple(np.bincount((np.asarray(ids, np.int64) + shift).ravel(), minlength=L * E).reshape(L, E)
                 for ids in (trace.prefill_ids, trace.decode_ids))


def frequency_figures(freq_pre: np.ndarray, freq_dec: np.ndarray, prefill_tokens: int, decode_tokens: int,
                      k: int) -> dict:
    """Per-layer Spearman, top-k overlaps and hottest/mean from the per-expert counts alone."""
    L, E = freq_pre.shape
    per = {}
    has_both = prefill_tokens > 0 and decode_tokens > 0
    per["prefill_decode_spearman"] = np.array(
        [_spearman(freq_pre[l], freq_dec[l]) if has_both else np.nan for l in range(L)])
    for kk in OVERLAP_KS:
        kk_eff = min(kk, E)
        per[f"prefill_decode_topk_overlap_{kk}"] = np.array(
            [len(np.intersect1d(_top_ids(freq_pre[l], kk_eff), _top_ids(freq_dec[l], kk_eff))) / kk_eff
             if has_both else np.nan for l in range(L)])
    tokens = prefill_tokens + decode_tokens
    with np.errstate(invalid="ignore", divide="ignore"):
        per["hot_expert_max_over_mean"] = ((freq_pre + freq_dec).max(axis=1) / (tokens * k / E)) if tokens \
            else np.full(L, np.nan)
    return per


def compute_insights(trace: TraceArrays, tables: dict | None = None) -> dict:
    """Every figure, over layers and per layer, with the paper's value beside it. Recorded passes
    (trace.passes.RecordedPasses) get what they can give and a refusal naming why for the rest."""
    from waferview.trace.passes import RecordedPasses

    if isinstance(trace, RecordedPasses):
        return passes_insights(trace)
    m = trace.model
    L, E, k = m.moe_layers, m.num_experts, m.top_k
    t = tables or layer_counts(trace)
    n = math.ceil(0.2 * E)
    per = {}
    per["next_token_top20_coverage"] = _coverage(t["next_token"], n)
    nl = np.full(L, np.nan)
    if L > 1:
        nl[:-1] = _coverage(t["next_layer"][:-1], n)
    per["next_layer_top20_coverage"] = nl
    freq_all = t["freq_pre"] + t["freq_dec"]
    per.update(frequency_figures(t["freq_pre"], t["freq_dec"], trace.prefill_tokens, trace.decode_tokens, k))
    if k > 1:
        (per["pair_coactivation_vs_random"], per["top1pct_pairs_vs_uniform"],
         per["top10pct_pairs_share"]) = _pair_figures(t["pairs"], freq_all)
    else:
        for f in ("pair_coactivation_vs_random", "top1pct_pairs_vs_uniform", "top10pct_pairs_share"):
            per[f] = np.full(L, np.nan)

    how = {"prefill_decode_spearman": "median", "hot_expert_max_over_mean": "median",
           "pair_coactivation_vs_random": "median", "top1pct_pairs_vs_uniform": "median"}
    figures = {f: _agg(per[f], how.get(f, "mean")) for f in FIGURES}
    layer_keys = m.moe_layer_ids
    per_layer = [{"moe_layer": l, "layer_key": layer_keys[l],
                  **{f: _nan_to_none(float(per[f][l])) for f in FIGURES}} for l in range(L)]
    return {
        **trace.facts(),
        "source": trace.source,
        "figures": figures,
        "paper": {f: paper_value(f, m.key) for f in FIGURES},
        "per_layer": per_layer,
    }


# ---------------------------------------------------------------------------------------------
# recorded passes (batch-major and count-only serving-engine captures)

TOKEN_FIGURES = ("next_layer_top20_coverage", "pair_coactivation_vs_random", "top1pct_pairs_vs_uniform",
                 "top10pct_pairs_share")


def _tokens_as_requests(passes) -> TraceArrays:
    """The recorded tokens as a TraceArrays the counting kernel reads. With request ids, each request's
    tokens in prefill passes are its prefill rows and its tokens in decode passes its decode steps, in
    pass order; without them every token is a request of its own, so no token-to-token pair is counted
    between tokens that merely sit next to each other in a pass."""
    T = len(passes.ids)
    phase = np.repeat(passes.prefill, np.diff(passes.pass_offsets))       # per token: in a prefill pass
    key = passes.request_ids if passes.request_ids is not None else np.arange(T)
    order = np.lexsort((np.arange(T), key))                                # by request, pass order kept
    _, group = np.unique(key[order], return_inverse=True)
    in_prefill = phase[order]
    pre_rows, dec_rows = order[in_prefill], order[~in_prefill]
    groups = int(group.max()) + 1 if T else 0
    pre_len = np.bincount(group[in_prefill], minlength=groups)
    dec_len = np.bincount(group[~in_prefill], minlength=groups)
    pre_off = np.concatenate([[0], np.cumsum(pre_len)]).astype(np.int64)
    dec_off = np.concatenate([[0], np.cumsum(dec_len)]).astype(np.int64)
    return TraceArrays(passes.model, passes.ids[pre_rows], passes.ids[dec_rows], pre_off, dec_off,
                       (), passes.skipped, passes.source)


def passes_insights(passes) -> dict:
    """Figures of recorded passes: all of them from per-token ids with request ids; without request
    ids everything but next-token coverage; from counts only the per-expert frequency figures."""
    m = passes.model
    refused = {}
    if passes.count_only:
        freq_pre = passes.counts[passes.prefill].sum(axis=0)
        freq_dec = passes.counts[~passes.prefill].sum(axis=0)
        per = frequency_figures(freq_pre, freq_dec, passes.prefill_tokens, passes.decode_tokens, m.top_k)
        why = ("counts only: the source records how many tokens picked each expert per pass, not which experts "
               "each token picked")
        for f in ("next_token_top20_coverage", *TOKEN_FIGURES):
            per[f] = np.full(m.moe_layers, np.nan)
            refused[f] = why
        how = {"prefill_decode_spearman": "median", "hot_expert_max_over_mean": "median"}
        result = {"figures": {f: _agg(per[f], how.get(f, "mean")) for f in FIGURES},
                  "per_layer": [{"moe_layer": l, "layer_key": m.moe_layer_ids[l],
                                 **{f: _nan_to_none(float(per[f][l])) for f in FIGURES}} for l in range(m.moe_layers)]}
    else:
        result = compute_insights(_tokens_as_requests(passes))
        if passes.request_ids is None:
            refused["next_token_top20_coverage"] = (
                "no request ids: the source does not say which tokens of consecutive passes belong to one request")
            result["figures"]["next_token_top20_coverage"] = None
            for row in result["per_layer"]:
                row["next_token_top20_coverage"] = None
    return {**passes.facts(), "figures": result["figures"], "paper": {f: paper_value(f, m.key) for f in FIGURES},
            "per_layer": result["per_layer"], "refused": refused}
