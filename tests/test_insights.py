"""waferview insights: every definition on a hand-made trace with values worked by hand, and the fast
(numba) computation against a plain-Python one on random traces."""

from __future__ import annotations

import itertools
import math
import statistics
import subprocess
import sys

import numpy as np
import orjson
import pytest

from waferview.analysis.insights import FIGURES, compute_insights
from waferview.cli.main import main
from waferview.models import ModelSpec
from waferview.trace.arrays import concat_requests
from waferview.synth.generate import generate

# A tiny model: 2 MoE layers, 10 experts, top-2, so n = ceil(0.2 * 10) = 2 and there are 45 pairs.
TINY = ModelSpec("tiny", "test/tiny", 2, (), False, 2, 10, 8, 8)


def tiny_trace():
    # rows are (layer 0 experts, layer 1 experts)
    a_pre = [((0, 4), (6, 7)), ((4, 5), (5, 6))]
    a_dec = [((0, 1), (5, 6)), ((0, 2), (7, 8)), ((0, 3), (5, 9))]
    b_pre = [((1, 2), (3, 4))]
    b_dec = [((8, 9), (0, 1)), ((8, 9), (2, 3))]
    def arr(rows):
        return np.array(rows, dtype=np.uint8).reshape(len(rows), 2, 2)

    return concat_requests(TINY, [(arr(a_pre), arr(a_dec)), (arr(b_pre), arr(b_dec))], ["a.json", "b.json"])


def test_hand_worked_figures():
    res = compute_insights(tiny_trace())
    f = res["figures"]
    # next-token, layer 0: A gives (d0->d1) H[0,0] H[0,2] H[1,0] H[1,2] and (d1->d2) H[0,0] H[0,3] H[2,0] H[2,3];
    # B gives H[8,8] H[8,9] H[9,8] H[9,9]. Rows: 0 -> {0:2, 2:1, 3:1} top-2 = 3; rows 1, 2, 8, 9 keep all
    # (2 each). Top 3+2+2+2+2 = 11 of 12. Layer 1: every row has two entries of 1 -> 12/12.
    # No pair crosses prefill->decode or request A->B (either would change 11/12).
    assert res["per_layer"][0]["next_token_top20_coverage"] == pytest.approx(11 / 12)
    assert res["per_layer"][1]["next_token_top20_coverage"] == pytest.approx(1.0)
    assert f["next_token_top20_coverage"] == pytest.approx((11 / 12 + 1) / 2)
    # next-layer, layer 0 -> 1 over all 8 tokens (prefill and decode): rows 0 {6:2, 7:2, 5:2, 8:1, 9:1} top 4/8,
    # 1 {5,6,3,4} 2/4, 2 {7,8,3,4} 2/4, 3 {5,9} 2/2, 4 {6:2, 7:1, 5:1} 3/4, 5 {5,6} 2/2, 8 and 9 2/4 each:
    # 19 of 32. The last layer has no next layer.
    assert f["next_layer_top20_coverage"] == pytest.approx(19 / 32)
    assert res["per_layer"][1]["next_layer_top20_coverage"] is None
    # prefill counts L0 [1,1,1,0,2,1,0,0,0,0], decode [3,1,1,1,0,0,0,0,2,2]; average ranks
    # [7.5,7.5,7.5,3,10,7.5,3,3,3,3] and [10,6,6,6,2.5,2.5,2.5,2.5,8.5,8.5]: rho = -9.75 / sqrt(67.5 * 75).
    # L1: prefill [0,0,0,1,1,1,2,1,0,0], decode [1,1,1,1,0,2,1,1,1,1]: centred decode ranks are 0 except
    # experts 4 and 5 (-4.5, +4.5), both with centred prefill rank 2 -> rho = 0. Median of the two.
    rho0 = -9.75 / math.sqrt(67.5 * 75)
    assert res["per_layer"][0]["prefill_decode_spearman"] == pytest.approx(rho0)
    assert res["per_layer"][1]["prefill_decode_spearman"] == pytest.approx(0.0)
    assert f["prefill_decode_spearman"] == pytest.approx(rho0 / 2)
    # top-5 with ties to the lower id: L0 prefill {4,0,1,2,5}, decode {0,8,9,1,2} -> 3/5;
    # L1 prefill {6,3,4,5,7}, decode {5,0,1,2,3} -> 2/5. Top-10 and top-20 (capped at E = 10) take all.
    assert f["prefill_decode_topk_overlap_5"] == pytest.approx(0.5)
    assert f["prefill_decode_topk_overlap_10"] == pytest.approx(1.0)
    assert f["prefill_decode_topk_overlap_20"] == pytest.approx(1.0)
    # mean count = 8 tokens * 2 / 10 = 1.6; L0 max 4 (expert 0) -> 2.5, L1 max 3 -> 1.875; median 2.1875
    assert f["hot_expert_max_over_mean"] == pytest.approx(2.1875)
    # pairs L0: (8,9) twice, (0,4) (4,5) (0,1) (0,2) (0,3) (1,2) once: 8 co-selections. Top 1% = ceil(0.45) = 1
    # pair = (8,9): vs uniform (2/8) / (1/45) = 11.25; vs independent: N = [4,2,2,1,2,1,0,0,2,2],
    # sum_{c<d} N_c N_d = (16^2 - 38) / 2 = 109, X = 8 * 2 * 2 / 109 -> lift 2 / X = 6.8125.
    # L1: (5,6) twice: N = [1,1,1,2,1,3,3,2,1,1], (256 - 32) / 2 = 112, X = 8 * 9 / 112 -> lift 28/9.
    # Top 10% = ceil(4.5) = 5 pairs carry 2 + 1 + 1 + 1 + 1 = 6 of 8 in both layers.
    assert res["per_layer"][0]["pair_coactivation_vs_random"] == pytest.approx(6.8125)
    assert res["per_layer"][1]["pair_coactivation_vs_random"] == pytest.approx(28 / 9)
    assert f["pair_coactivation_vs_random"] == pytest.approx((6.8125 + 28 / 9) / 2)
    assert f["top1pct_pairs_vs_uniform"] == pytest.approx(11.25)
    assert f["top10pct_pairs_share"] == pytest.approx(0.75)


def test_top1_model_has_no_pair_figures_and_single_decode_steps_no_next_token():
    m = ModelSpec("tiny1", "test/tiny1", 1, (), False, 1, 4, 8, 8)
    pre = np.array([[[0]], [[1]]], np.uint8)
    dec = np.array([[[2]]], np.uint8)            # one decode step: no t -> t+1 pair
    res = compute_insights(concat_requests(m, [(pre, dec)], ["x.json"]))
    f = res["figures"]
    assert f["pair_coactivation_vs_random"] is None and f["top10pct_pairs_share"] is None
    assert f["next_token_top20_coverage"] is None
    assert f["next_layer_top20_coverage"] is None       # one layer: no next layer
    # 3 tokens, mean count 3 * 1 / 4 = 0.75, max 1 -> 4/3
    assert f["hot_expert_max_over_mean"] == pytest.approx(4 / 3)


# ---------------------------------------------------------------------------------------------
# an independent, straightforward computation of the same definitions


def reference(trace) -> dict:
    m = trace.model
    L, E, k = m.moe_layers, m.num_experts, m.top_k
    n = math.ceil(0.2 * E)
    reqs = []
    for r in range(trace.requests):
        pre = [[list(map(int, trace.prefill_ids[t, l])) for l in range(L)]
               for t in range(trace.prefill_offsets[r], trace.prefill_offsets[r + 1])]
        dec = [[list(map(int, trace.decode_ids[t, l])) for l in range(L)]
               for t in range(trace.decode_offsets[r], trace.decode_offsets[r + 1])]
        reqs.append((pre, dec))
    tokens = [tok for pre, dec in reqs for tok in pre + dec]

    def coverage(h):
        total = sum(sum(row.values()) for row in h.values())
        if total == 0:
            return None
        return sum(sum(sorted(row.values(), reverse=True)[:n]) for row in h.values()) / total

    def add(h, a, b):
        h.setdefault(a, {}).setdefault(b, 0)
        h[a][b] += 1

    out = {f: [] for f in FIGURES}
    for l in range(L):
        h = {}
        for _, dec in reqs:
            for t in range(len(dec) - 1):
                for a in dec[t][l]:
                    for b in dec[t + 1][l]:
                        add(h, a, b)
        out["next_token_top20_coverage"].append(coverage(h))
        if l + 1 < L:
            h = {}
            for tok in tokens:
                for a in tok[l]:
                    for b in tok[l + 1]:
                        add(h, a, b)
            out["next_layer_top20_coverage"].append(coverage(h))
        fp = [0] * E
        fd = [0] * E
        for pre, dec in reqs:
            for tok in pre:
                for e in tok[l]:
                    fp[e] += 1
            for tok in dec:
                for e in tok[l]:
                    fd[e] += 1

        def ranks(v):
            return [sum(1 for w in v if w < x) + (sum(1 for w in v if w == x) + 1) / 2 for x in v]

        rp, rd = ranks(fp), ranks(fd)
        mp, md = sum(rp) / E, sum(rd) / E
        num = sum((x - mp) * (y - md) for x, y in zip(rp, rd))
        den = math.sqrt(sum((x - mp) ** 2 for x in rp) * sum((y - md) ** 2 for y in rd))
        out["prefill_decode_spearman"].append(num / den if den else None)
        for kk in (5, 10, 20):
            kk = min(kk, E)
            def top(v, kk=kk):
                return set(sorted(range(E), key=lambda e: (-v[e], e))[:kk])

            out[f"prefill_decode_topk_overlap_{kk if kk in (5, 10, 20) else 20}"].append(len(top(fp) & top(fd)) / kk)
        fa = [fp[e] + fd[e] for e in range(E)]
        out["hot_expert_max_over_mean"].append(max(fa) / (len(tokens) * k / E))
        if k > 1:
            pairs = list(itertools.combinations(range(E), 2))
            c = {p: 0 for p in pairs}
            for tok in tokens:
                for p in itertools.combinations(sorted(tok[l]), 2):
                    c[p] += 1
            total = sum(c.values())
            ranked = sorted(pairs, key=lambda p: -c[p])          # stable: pair order breaks ties
            top1, top10 = ranked[:math.ceil(0.01 * len(pairs))], ranked[:math.ceil(0.1 * len(pairs))]
            norm = sum(fa[a] * fa[b] for a, b in pairs)
            expected = {p: total * fa[p[0]] * fa[p[1]] / norm for p in pairs}
            out["pair_coactivation_vs_random"].append(sum(c[p] for p in top1) / sum(expected[p] for p in top1))
            out["top1pct_pairs_vs_uniform"].append(sum(c[p] for p in top1) / total / (len(top1) / len(pairs)))
            out["top10pct_pairs_share"].append(sum(c[p] for p in top10) / total)
    medians = {"prefill_decode_spearman", "hot_expert_max_over_mean", "pair_coactivation_vs_random",
               "top1pct_pairs_vs_uniform"}
    figures = {}
    for f, vals in out.items():
        vals = [v for v in vals if v is not None]
        figures[f] = None if not vals else (statistics.median(vals) if f in medians else sum(vals) / len(vals))
    return figures


def _random_trace(model, requests, rng):
    per = []
    for _ in range(requests):
        p, d = int(rng.integers(1, 6)), int(rng.integers(1, 7))
        # draw k distinct experts per row from a skewed distribution, so ties and hot experts occur
        weights = rng.random(model.num_experts) ** 3
        weights /= weights.sum()
        rows = np.array([[rng.choice(model.num_experts, model.top_k, replace=False, p=weights)
                          for _ in range(model.moe_layers)] for _ in range(p + d)])
        per.append((rows[:p], rows[p:]))
    return concat_requests(model, per, [f"{i}.json" for i in range(requests)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_agrees_with_reference_on_random_traces(seed):
    rng = np.random.default_rng(seed)
    model = ModelSpec("rand", "test/rand", 4, (1,), False, 3, 12, 8, 8)
    trace = _random_trace(model, 5, rng)
    fast, ref = compute_insights(trace)["figures"], reference(trace)
    for f in FIGURES:
        assert (fast[f] is None) == (ref[f] is None), f
        if ref[f] is not None:
            assert fast[f] == pytest.approx(ref[f], rel=1e-9), f


@pytest.mark.parametrize("model", ["llama4", "qwen3"])
def test_fast_agrees_with_reference_on_synthetic_batches(model):
    from dataclasses import replace

    from waferview.models import get_model
    from waferview.synth.generate import default_params

    m = get_model(model)
    trace = generate(m, 2, 0, replace(default_params(m), max_decode=5, prefill_median=3.0, prefill_max=4))
    fast, ref = compute_insights(trace)["figures"], reference(trace)
    for f in FIGURES:
        assert fast[f] == pytest.approx(ref[f], rel=1e-9), f


# ---------------------------------------------------------------------------------------------
# the command


def test_cli_json_on_shipped_default(capsys):
    assert main(["insights", "--json", "--model", "llama4"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["model"] == "llama4" and out["source"].startswith("assets/llama4.wvtrace")
    assert set(FIGURES) <= set(out["figures"])
    assert out["paper"]["next_token_top20_coverage"] == 0.80
    assert out["figures"]["pair_coactivation_vs_random"] is None      # top-1 model
    assert len(out["per_layer"]) == 24 and out["per_layer"][0]["layer_key"] == 1


def test_cli_table_and_definitions_in_help(capsys, tmp_path):
    path = tmp_path / "k.wvtrace"
    assert main(["synth", "--model", "kimi", "--requests", "2", "--max-decode", "4", "--cache", str(path)]) == 0
    assert main(["insights", str(path)]) == 0
    text = capsys.readouterr().out
    assert "next-token top-20% coverage" in text and "0.53" in text   # paper value beside the figure
    assert "layer  key next-tok" in text
    with pytest.raises(SystemExit):
        main(["insights", "--help"])
    assert "ceil(0.2 * E)" in capsys.readouterr().out


def test_cli_bad_source_exits_2_one_line():
    out = subprocess.run([sys.executable, "-m", "waferview", "insights", "/nonexistent/x.json"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "no such file" in out.stderr and "Traceback" not in out.stderr and out.stderr.count("\n") == 1


def test_expert_counts_match_the_kernel_counts():
    from waferview.analysis.insights import expert_counts, layer_counts

    trace = tiny_trace()
    pre, dec = expert_counts(trace)
    t = layer_counts(trace)
    np.testing.assert_array_equal(pre, t["freq_pre"])
    np.testing.assert_array_equal(dec, t["freq_dec"])
    assert list(pre[0]) == [1, 1, 1, 0, 2, 1, 0, 0, 0, 0]
