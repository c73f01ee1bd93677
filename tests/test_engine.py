"""The engine on hand-worked 2x2 cases (exact bytes, hops and times) and its properties."""

from __future__ import annotations

import numpy as np
import pytest

from simcases import random_trace, tiny_hardware, tiny_model, trace_from_rows
from waferview.errors import InputError
from waferview.models import get_model
from waferview.policies import PLACEMENTS, PREDICTORS
from waferview.policies.base import EVICTIONS, PolicyOptions
from waferview.sim import copystore
from waferview.sim.engine import Engine

# 2x2 mesh (dies 0 1 / 2 3) with round numbers: compute 1 TFLOPS x 0.5 = 500 flops/ns, HBM 1000 bytes/ns,
# links 500 bytes/ns, efficiencies 1, HBM latency 300 ns, 200 ns per hop, 16 B headers.
# Model: 4 experts (expert e homed on die e), top-1, one MoE layer, 1000 x 1000: 6e6 bytes, 6e6 flops per token.
EB = 6_000_000


def hw2x2(**over):
    return tiny_hardware(2, 2, die_tflops=1.0, hbm_bytes_per_ns=1000.0, link_bytes_per_ns=500.0,
                         link_efficiency=1.0, hbm_efficiency={"default": 1.0}, **over)


MODEL = tiny_model(num_experts=4, top_k=1, layers=1, hidden=1000, inter=1000)


def pin_base(engine, *first_dies):
    """Hand-worked cases fix where base starts each step (one MoE layer); runs draw it from the seed."""
    mode = engine.bound_mode("placement")
    if mode.name == "base":
        mode.first_die[:, 0] = first_dies
    return engine


def one_layer(placement, rows, predictor="off", **opts):
    trace = trace_from_rows(MODEL, [(rows, [])])
    engine = Engine(trace, hw2x2(), placement=placement, predictor=predictor, options=PolicyOptions(**opts))
    pin_base(engine, 0)
    frame = engine.step()
    assert engine.step() is None and engine.done
    return engine, frame


def link(engine, a, b):
    return int(np.flatnonzero((engine.mesh.links[:, 0] == a) & (engine.mesh.links[:, 1] == b))[0])


def test_base_reads_remotely_over_the_xy_route():
    engine, f = one_layer("base", [[[3]]])   # one token of expert 3 (home die 3), base puts it on die 0
    assert EB == MODEL.expert_bytes and 6_000_000 == MODEL.flops_per_token
    assert f.die_tokens.tolist() == [1, 0, 0, 0]
    # weights 3 -> 2 -> 0 (x first, then y); the header 0 -> 1 -> 3
    expected = np.zeros(engine.mesh.num_links, dtype=np.int64)
    expected[link(engine, 3, 2)] = expected[link(engine, 2, 0)] = EB
    expected[link(engine, 0, 1)] = expected[link(engine, 1, 3)] = 16
    assert f.link_bytes.tolist() == expected.tolist()
    assert (f.hops, f.remote_read_bytes, f.local_read_bytes, f.header_bytes) == (2, EB, 0, 16)
    # die 0: d2d 12000 ns + remote compute 12000 ns + 300 ns + 2 hops x 200 ns; die 3 serves: 6000 + 300
    assert f.die_busy_ns.tolist() == [24_700.0, 0.0, 0.0, 6_300.0]
    assert f.die_hbm_bytes.tolist() == [0, 0, 0, EB] and f.die_d2d_in_bytes.tolist() == [EB, 0, 0, 16]
    assert f.layer_time_ns == 24_700.0
    assert (f.weight_reads, f.local_weight_reads) == (1, 0)
    s = engine.summary()
    assert s["prefill_time_ms"] == 24_700.0 * 1e-6 and s["decode_time_ms"] == 0.0
    assert s["throughput_tokens_per_s"] is None   # no decode steps
    assert s["mean_die_utilization"] == pytest.approx((24_700 + 6_300) / (4 * 24_700), rel=1e-12)
    assert s["die_max_over_mean"] == pytest.approx(24_700 / ((24_700 + 6_300) / 4), rel=1e-12)
    assert s["cache_hit_rate"] == 0.0


def test_ep_runs_at_home():
    engine, f = one_layer("ep", [[[3]]])
    assert f.die_tokens.tolist() == [0, 0, 0, 1]
    assert f.link_bytes.sum() == 0 and f.hops == 0 and f.remote_read_bytes == 0 and f.local_read_bytes == EB
    assert f.die_busy_ns.tolist() == [0.0, 0.0, 0.0, 12_300.0]   # max(compute 12000, HBM 6000) + 300
    assert engine.summary()["cache_hit_rate"] == 1.0


def test_allo_splits_a_hot_expert_over_the_holder_and_its_neighbours():
    # 300 tokens of expert 0, blocks of 100: block time 100 x 6e6 / 500 = 1.2e6 ns.
    # Block 1 -> die 0 (holder, 1.2e6), block 2 -> die 1 (1.2e6 + 12000 transfer < 2.4e6),
    # block 3 -> die 2 (die 1 would cost 2.412e6, die 2 1.212e6).
    engine, f = one_layer("allo", [[[0]]] * 300, block_size=100)
    assert f.die_tokens.tolist() == [100, 100, 100, 0]
    assert (f.hops, f.remote_read_bytes, f.local_read_bytes) == (2, 2 * EB, EB)
    assert f.die_hbm_bytes.tolist() == [3 * EB, 0, 0, 0]
    assert f.die_busy_ns.tolist() == [1_200_300.0, 1_212_500.0, 1_212_500.0, 0.0]
    assert f.link_bytes[link(engine, 0, 1)] == EB and f.link_bytes[link(engine, 0, 2)] == EB
    assert f.link_bytes[link(engine, 1, 0)] == 16 and f.link_bytes.sum() == 2 * EB + 32
    assert f.layer_time_ns == 1_212_500.0


def test_allo_keeps_a_small_expert_on_its_holder():
    engine, f = one_layer("allo", [[[2]]] * 3)
    assert f.die_tokens.tolist() == [0, 0, 3, 0] and f.hops == 0


# Two requests, top-1: A prefill [1] [1] [2] [3], decode [1]; B prefill [3], decode [0].
# Step 0 activates experts 1, 2, 3; starting base at die 0 sends them to dies 0, 1, 2; step 1 activates
# 0 and 1, and starting it at die 3 sends them to dies 3 and 0: expert 1 is back on die 0.
TWO_STEP = [([[[1]], [[1]], [[2]], [[3]]], [[[1]]]), ([[[3]]], [[[0]]])]
H = 16 / 500   # a 16 B request header on a 500 bytes/ns link, in ns


def test_base_round_robin_starts_where_the_step_says():
    trace = trace_from_rows(MODEL, TWO_STEP)
    engine = pin_base(Engine(trace, hw2x2(), placement="base", predictor="off"), 0, 3)
    f0, f1 = engine.step(), engine.step()
    assert f0.die_tokens.tolist() == [2, 1, 2, 0]      # expert 1 (2 tokens) on die 0, 2 on die 1, 3 on die 2
    assert f1.die_tokens.tolist() == [1, 0, 0, 1]      # expert 0 on die 3, expert 1 on die 0 (wrapped)
    assert engine.step() is None
    # hops: step 0: 1 (1 -> 0) + 2 (2 -> 1) + 1 (3 -> 2); step 1: 2 (0 -> 3) + 1 (1 -> 0)
    assert (f0.hops, f1.hops, engine.summary()["hops"]) == (4, 3, 7)


def test_base_start_dies_come_from_the_seed_and_ignore_mode_switches():
    model = tiny_model(num_experts=4, top_k=4, layers=3)
    trace = trace_from_rows(model, [([[[0, 1, 2, 3]] * 3] * 2, [[[0, 1, 2, 3]] * 3] * 40)])
    hw = tiny_hardware(3, 1)
    a = Engine(trace, hw, seed=7, placement="base", predictor="off")
    first = a.bound_mode("placement").first_die
    assert first.shape == (41, 3) and first.min() == 0 and first.max() == 2   # every die gets to start
    assert np.array_equal(first, Engine(trace, hw, seed=7, placement="base").bound_mode("placement").first_die)
    assert not np.array_equal(first, Engine(trace, hw, seed=8, placement="base").bound_mode("placement").first_die)
    # each layer: expert i on die (start + i) % 3, so die start gets experts 0 and 3 (2 + 2 tokens)
    f = a.step()
    expected = np.ones(3, dtype=np.int64) * 2
    expected[first[0, 0]] = 4
    assert f.die_tokens.tolist() == expected.tolist()
    a.set_placement("ep")
    a.step()
    a.set_placement("base")
    f = a.step()                                       # (step 0, layer 2): its own start, not a carried pointer
    expected = np.ones(3, dtype=np.int64) * 2
    expected[first[0, 2]] = 4
    assert f.die_tokens.tolist() == expected.tolist()


def test_heatmap_copies_on_a_predicted_remote_read_and_hits_next_step():
    # Prefill pairs seed H[1,1] = H[1,2] = H[2,3] = 1; with top-n 1 row 1 predicts {1} (tie to the lower id),
    # row 2 {3}, row 3 nothing. Die 0 reads expert 1 from die 1 and predicts it: copy. Die 1 reads 2
    # (predicts 3), die 2 reads 3 (predicts nothing): no copies.
    trace = trace_from_rows(MODEL, TWO_STEP)
    engine = Engine(trace, hw2x2(), placement="base", predictor="heatmap", options=PolicyOptions(top_n=1))
    f0 = pin_base(engine, 0, 3).step()
    # die 0: d2d 12000 (one expert in), remote compute 2 x 12000, HBM 6000 (the copy write) hidden; + 300 + 1 hop
    # die 1: d2d 12000 + a header, remote compute 12000, + 300 + 2 hops (expert 2 comes 2 -> 3 -> 1)
    # die 2: d2d 12000 + a header, remote compute 2 x 12000, + 300 + 1 hop; die 3 serves expert 3: 6000 + 300
    assert f0.die_busy_ns.tolist() == pytest.approx([36_500.0, 24_700.0 + H, 36_500.0 + H, 6_300.0], rel=1e-12)
    assert (f0.copies_made, f0.local_write_bytes, f0.die_copies.tolist()) == (1, EB, [1, 0, 0, 0])
    assert f0.die_hbm_bytes.tolist() == [EB, EB, EB, EB]
    assert f0.layer_time_ns == pytest.approx(36_500.0 + H, rel=1e-12)
    f1 = engine.step()
    # expert 1 on die 0 reads the copy: compute 12000, HBM 6000 (+ 6000 serving expert 0 to die 3) + 300;
    # die 3: expert 0 from die 0 over 2 hops: d2d 12000 + compute 12000 + 300 + 400
    assert (f1.weight_reads, f1.local_weight_reads, f1.hops) == (2, 1, 2)
    assert f1.die_busy_ns.tolist() == [12_300.0, 0.0, 0.0, 24_700.0] and f1.layer_time_ns == 24_700.0
    assert engine.step() is None
    s = engine.summary()
    assert s["cache_hit_rate"] == 1 / 5 and s["copies_made"] == 1 and s["local_write_bytes"] == EB
    assert s["copy_reads"] == 1 and s["hops"] == 6
    # step 0's prediction: union {1} | {3} = {1, 3}; active at step 1: {0, 1}
    assert s["predictor_precision"] == 0.5 and s["predictor_recall"] == 0.5
    assert s["decode_time_ms"] == 24_700.0 * 1e-6
    assert s["throughput_tokens_per_s"] == pytest.approx(2 / 24_700e-9, rel=1e-12)


def test_no_copy_without_space_and_predictor_off_makes_none():
    trace = trace_from_rows(MODEL, TWO_STEP)
    for predictor, slots in (("heatmap", 0), ("off", 10)):
        engine = Engine(trace, hw2x2(), placement="base", predictor=predictor,
                        options=PolicyOptions(copy_slots=slots, top_n=1))
        s = pin_base(engine, 0, 3).run()
        assert s["copies_made"] == 0 and s["cache_hit_rate"] == 0.0 and s["hops"] == 7


def test_eviction_defaults_to_admit_with_lru_and_never_as_options():
    trace = trace_from_rows(MODEL, TWO_STEP)
    assert PolicyOptions().eviction == "admit"
    assert set(copystore.EVICTION_CODES) == set(EVICTIONS)   # every rule the CLI offers has a kernel code
    for predictor in PREDICTORS:
        assert Engine(trace, hw2x2(), predictor=predictor).summary()["eviction"] == "admit"
    assert Engine(trace, hw2x2(), options=PolicyOptions(eviction="never")).summary()["eviction"] == "never"
    with pytest.raises(InputError, match="--eviction 'sometimes': expected one of admit, lru, never"):
        PolicyOptions(eviction="sometimes")


# One request; base always starts at die 0, so die 0 runs the step's one expert: 1 1 2 1 2 2 2 (expert e
# is homed on die e). One copy slot, the lru predictor (copy every remote read).
#   lru:   copy 1 | hit | 2 evicts 1 | 1 evicts 2 | 2 evicts 1 | hit | hit    -> 4 copies, 3 evictions, 3 hits
#   admit: copy 1 | hit (1 read twice) | 2 read once: keep 1 | hit (1: 3 reads) | 2: 2 reads, keep |
#          2: 3 reads, keep (ties keep) | 2: 4 reads > 3: evict 1, copy 2          -> 2 copies, 1 eviction, 2 hits
#   never: copy 1 | hit | - | hit | - | - | -                                      -> 1 copy, 0 evictions, 2 hits
@pytest.mark.parametrize("eviction, copies, evictions, hits", [("lru", 4, 3, 3), ("admit", 2, 1, 2),
                                                               ("never", 1, 0, 2)])
def test_eviction_rules_on_a_worked_sequence(eviction, copies, evictions, hits):
    trace = trace_from_rows(MODEL, [([[[1]]], [[[1]], [[2]], [[1]], [[2]], [[2]], [[2]]])])
    engine = Engine(trace, hw2x2(), placement="base", predictor="lru",
                    options=PolicyOptions(eviction=eviction, copy_slots=1))
    s = pin_base(engine, *[0] * 7).run()
    assert (s["copies_made"], s["evictions"], s["copy_reads"]) == (copies, evictions, hits)
    assert s["weight_reads"] == 7 and s["local_write_bytes"] == copies * EB


def test_bytes_per_param_sets_expert_size_fit_and_copy_space():
    from waferview.wafer.hardware import load_hardware

    kimi = get_model("kimi")
    trace = random_trace(np.random.default_rng(0), kimi, requests=1, max_prefill=2, max_decode=1)
    hw = load_hardware("8x3")
    bf16 = Engine(trace, hw, placement="base", predictor="heatmap")
    fp8 = Engine(trace, hw, placement="base", predictor="heatmap", options=PolicyOptions(bytes_per_param=1))
    assert bf16.expert_bytes == 3 * 7168 * 2048 * 2 == 2 * fp8.expert_bytes
    assert not bf16.fits_in_hbm and "2.03 TB at 2 bytes/param" in bf16.hbm_note
    # FP8: 16 experts per die x 60 layers x 44.04 MB = 42.3 GB of 72 GB usable; (72e9 - 42.3e9) // 44.04e6 copies
    assert fp8.fits_in_hbm and fp8.hbm_note is None
    assert fp8.store.arrays.capacity.tolist() == [(72_000_000_000 - 16 * 60 * 44_040_192) // 44_040_192] * 24 \
        == [674] * 24
    s = fp8.run()
    assert s["bytes_per_param"] == 1.0 and s["fits_in_hbm"] is True and s["copies_made"] > 0
    assert Engine(trace, hw, options=PolicyOptions(bytes_per_param=0.5)).expert_bytes == 22_020_096
    for bad in (0, -1, 9, True):
        with pytest.raises(InputError, match="--bytes-per-param"):
            PolicyOptions(bytes_per_param=bad)


# ---------------------------------------------------------------- properties on random small cases

def _random_engine(placement, predictor, seed=5, batch=60, **opts):
    rng = np.random.default_rng(seed)
    trace = random_trace(rng, tiny_model(num_experts=16, top_k=3, layers=3), requests=9, max_decode=6)
    hw = tiny_hardware(3, 3, die_tflops=1.0)
    return trace, Engine(trace, hw, batch=batch, seed=1, placement=placement, predictor=predictor,
                         options=PolicyOptions(block_size=7, **opts))


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("predictor", PREDICTORS)
def test_tokens_and_bytes_are_conserved(placement, predictor):
    trace, engine = _random_engine(placement, predictor)
    eb, header = engine.expert_bytes, engine.hardware.request_header_bytes
    moved = 0
    while (f := engine.step()) is not None:
        assert f.die_tokens.sum() == engine.counts[f.step, f.layer_index].sum() == f.token_selections
        remote = f.weight_reads - f.local_weight_reads
        assert f.remote_read_bytes == remote * eb and f.local_read_bytes == f.local_weight_reads * eb
        # bytes served by holders' HBM = bytes read (local + remote) + copies written
        assert f.die_hbm_bytes.sum() == f.local_read_bytes + f.remote_read_bytes + f.local_write_bytes
        # bytes arriving at readers = bytes leaving holders (+ headers arriving at holders)
        assert f.die_d2d_in_bytes.sum() == f.remote_read_bytes + f.header_bytes == remote * (eb + header)
        # every byte crosses as many links as its route has hops
        assert f.link_bytes.sum() == f.hops * (eb + header)
        moved += f.remote_read_bytes
    s = engine.summary()
    assert s["token_selections"] == int(engine.counts.sum())
    if placement == "ep":
        assert moved == 0 and s["hops"] == 0 and s["cache_hit_rate"] == 1.0 and s["copies_made"] == 0
    else:
        assert moved > 0


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("predictor", PREDICTORS)
@pytest.mark.parametrize("eviction", ["admit", "lru", "never"])
def test_stepped_run_equals_run_to_the_end_and_is_deterministic(placement, predictor, eviction):
    _, a = _random_engine(placement, predictor, copy_slots=3, eviction=eviction)
    while a.step() is not None:
        pass
    _, b = _random_engine(placement, predictor, copy_slots=3, eviction=eviction)
    assert a.summary() == b.run()
    assert b.step() is None and b.done and b.position == b.total
    if predictor != "off" and placement != "ep":
        assert a.summary()["copies_made"] > 0   # the copy store and its eviction rule really ran


def test_same_seed_same_batch_other_seed_other_batch():
    trace, _ = _random_engine("base", "off")
    hw = tiny_hardware(3, 3)
    a = Engine(trace, hw, batch=4, seed=11, placement="base", predictor="off").run()
    b = Engine(trace, hw, batch=4, seed=11, placement="base", predictor="off").run()
    c = Engine(trace, hw, batch=4, seed=12, placement="base", predictor="off")
    assert a == b
    assert c.batch.requests.tolist() != Engine(trace, hw, batch=4, seed=11).batch.requests.tolist()


def test_batch_larger_than_the_trace_reuses_requests_and_says_so():
    trace, _ = _random_engine("base", "off")
    engine = Engine(trace, tiny_hardware(2, 2), batch=20, seed=0)
    assert engine.batch_note == "batch 20 > 9 requests present: requests reused in a fixed seeded order (seed 0)"
    assert engine.batch.weights.sum() == 20 and sorted(engine.batch.weights.tolist()) == [2] * 7 + [3] * 2
    assert engine.summary()["batch_note"] == engine.batch_note
    assert Engine(trace, tiny_hardware(2, 2), batch=9).batch_note is None
    assert Engine(trace, tiny_hardware(2, 2)).batch.size == 9   # default: all requests
    with pytest.raises(InputError, match="--batch 0: expected a number of requests from 1 to 1,048,576"):
        Engine(trace, tiny_hardware(2, 2), batch=0)


def test_batch_steps_and_tokens():
    rows = lambda n: [[[0]]] * n   # noqa: E731
    trace = trace_from_rows(MODEL, [(rows(3), rows(2)), (rows(1), rows(0)), (rows(2), rows(4))])
    engine = Engine(trace, hw2x2(), placement="ep", predictor="off")
    assert engine.batch.steps == 5 and engine.total == 5
    assert engine.batch.tokens_per_step.tolist() == [6, 2, 2, 1, 1]
    assert engine.counts[:, 0, 0].tolist() == [6, 2, 2, 1, 1]
    s = engine.run()
    assert s["batch_decode_tokens"] == 6 and s["batch_prefill_tokens"] == 6


def test_modes_switch_from_the_next_layer_without_restart():
    _, engine = _random_engine("base", "off")
    f = engine.step()
    assert (f.placement, f.predictor) == ("base", "off")
    engine.set_placement("allo")
    engine.set_predictor("oracle")
    assert (engine.placement, engine.predictor) == ("allo", "oracle")
    f2 = engine.step()
    assert (f2.placement, f2.predictor, f2.seq) == ("allo", "oracle", 2)
    with pytest.raises(InputError, match="unknown placement mode 'nope': expected one of base, ep, allo"):
        engine.set_placement("nope")
    with pytest.raises(InputError, match="unknown predictor mode 'x': expected one of off, heatmap, oracle, lru"):
        engine.set_predictor("x")
    assert engine.placement == "allo"
    with pytest.raises(InputError, match="unknown placement mode"):
        _random_engine("fast", "off")


def test_frames_are_private_copies_with_running_totals():
    _, engine = _random_engine("base", "lru")
    f1 = engine.step()
    busy, links = f1.die_busy_ns.copy(), f1.link_bytes.copy()
    f2 = engine.step()
    assert f1.die_busy_ns is not f2.die_busy_ns and f1.link_bytes is not f2.link_bytes
    assert (f1.die_busy_ns == busy).all() and (f1.link_bytes == links).all()
    assert f1.totals is not f2.totals and f2.totals == engine.summary()
    assert f2.totals["layers_simulated"] == 2 and f1.totals["layers_simulated"] == 1
    assert f1.totals["hops"] == f1.hops and f2.totals["hops"] == f1.hops + f2.hops
    assert (f1.seq, f1.total, f1.step, f1.layer_index, f1.phase) == (1, engine.total, 0, 0, "prefill")
    assert f1.die_utilization.max() == pytest.approx(f1.die_busy_ns.max() / f1.layer_time_ns)


def test_a_model_that_does_not_fit_is_simulated_and_flagged():
    kimi = get_model("kimi")
    trace = random_trace(np.random.default_rng(0), kimi, requests=1, max_prefill=2, max_decode=1)
    from waferview.wafer.hardware import load_hardware
    engine = Engine(trace, load_hardware("8x3"), placement="base", predictor="heatmap")
    s = engine.run()
    assert s["fits_in_hbm"] is False and engine.fits_in_hbm is False
    assert "do not fit the usable HBM of 8x3" in s["hbm_note"]
    assert s["copies_made"] == 0 and s["copy_slots_per_die"] == 0 and s["hops"] > 0


def test_summary_has_every_field():
    _, engine = _random_engine("allo", "heatmap")
    s = engine.run()
    for key in ("mesh", "batch", "batch_note", "placement", "predictor", "decode_time_ms", "prefill_time_ms",
                "throughput_tokens_per_s", "hops", "remote_read_bytes", "local_read_bytes", "local_write_bytes",
                "cache_hit_rate", "predictor_precision", "predictor_recall", "mean_die_utilization",
                "die_max_over_mean", "fits_in_hbm"):
        assert key in s
    assert s["throughput_tokens_per_s"] == pytest.approx(s["batch_decode_tokens"] / (s["decode_time_ms"] * 1e-3))
    assert 0 < s["mean_die_utilization"] <= 1 and s["die_max_over_mean"] >= 1
    assert 0 <= s["predictor_precision"] <= 1 and 0 <= s["predictor_recall"] <= 1


def test_oracle_is_exact_and_off_reports_no_precision():
    _, engine = _random_engine("base", "oracle")
    s = engine.run()
    assert s["predictor_precision"] == 1.0 and s["predictor_recall"] == 1.0
    _, engine = _random_engine("base", "off")
    s = engine.run()
    assert s["predictor_precision"] is None and s["predictor_recall"] is None


def test_counts_and_heatmap_are_shared_only_through_an_explicit_workload():
    from waferview.sim.workload import Workload

    trace, a = _random_engine("base", "heatmap")
    hw = tiny_hardware(3, 3)
    shared = Workload(trace, 60, 1)
    b = Engine(trace, hw, placement="allo", predictor="heatmap", workload=shared)
    c = Engine(trace, tiny_hardware(2, 2), placement="base", predictor="heatmap", workload=shared)
    b.prepare()
    c.prepare()
    assert b.counts is c.counts and b.bound_mode("predictor").bits is c.bound_mode("predictor").bits
    # engines made without one share nothing (no memo behind the caller's back), yet agree
    a.prepare()
    assert a.counts is not b.counts and np.array_equal(a.counts, b.counts)
    assert np.array_equal(a.bound_mode("predictor").bits, b.bound_mode("predictor").bits)
    assert a.run() == Engine(trace, a.hardware, placement="base", predictor="heatmap", workload=shared).run()


def test_no_mode_beats_the_ceiling():
    from waferview.sweep.paper import ceiling

    trace, _ = _random_engine("base", "off")
    hw = tiny_hardware(3, 3, die_tflops=1.0)
    bound = ceiling(trace, hw, 60, seed=1)
    best = 0.0
    for placement in PLACEMENTS:
        for predictor in PREDICTORS:
            s = Engine(trace, hw, batch=60, seed=1, placement=placement, predictor=predictor).run()
            assert s["throughput_tokens_per_s"] <= bound
            best = max(best, s["throughput_tokens_per_s"])
    assert best > 0.3 * bound   # and the bound is not vacuous


def test_allo_breaks_ties_between_holders_toward_the_home_die():
    # expert 1 (home die 1) also has a copy on die 0; nothing placed yet, so both holders cost one HBM read:
    # the home die wins the tie (the copy holder has the lower id). With the copy on die 3 instead, the same.
    trace = trace_from_rows(MODEL, [([[[1]]], [])])
    for copy_die in (0, 3):
        engine = Engine(trace, hw2x2(), placement="allo", predictor="off")
        engine.store.arrays.copies[0, copy_die, 1] = 7
        f = engine.step()
        assert f.die_tokens.tolist() == [0, 1, 0, 0] and f.hops == 0


def test_shape_check_names_each_failed_clause():
    from waferview.sweep.paper import shape_check, variant_rows

    def row(strategy, tput, hops, hop_red, remote=1):
        return {"strategy": strategy, "sweep_mesh": "8x3", "sweep_batch": 4096, "throughput_tokens_per_s": tput,
                "hops": hops, "hop_reduction_vs_base": hop_red, "remote_read_bytes": remote}

    good = [row("Base", 100, 1000, 1.0), row("EP", 300, 0, None, 0), row("Pred Only", 150, 500, 2.0),
            row("Allo Only", 400, 10, 100.0), row("Allo+Pred", 400, 5, 200.0)]
    bad = [row("Base", 100, 1000, 1.0), row("EP", 300, 0, None, 0), row("Pred Only", 100, 1000, 1.0),
           row("Allo Only", 400, 50, 20.0), row("Allo+Pred", 390, 50, 20.0)]
    text = shape_check({"a": {"rows": good}, "b": {"rows": bad}}).splitlines()
    assert text[0].startswith("a 8x3 4096: passes (Base 100, Pred Only 150, Allo Only 400, Allo+Pred 400 tok/s")
    assert text[1].startswith("b 8x3 4096: fails Allo+Pred >= Allo Only; Pred Only > Base (")
    # the variants table: speedups, hop reductions, Pred Only's hit rate, the verdict
    for rows in (good, bad):
        for r in rows:
            r["speedup_vs_base"] = r["throughput_tokens_per_s"] / 100
            r["cache_hit_rate"] = 0.25
    table = variant_rows({"a": {"rows": good}, "b": {"rows": bad}}, "BF16, admit").splitlines()
    assert table == ["| BF16, admit | a | 1.50x | 4.00x | 4.00x | 2.0x | 100x | 0.25 | passes |",
                     "| BF16, admit | b | 1.00x | 4.00x | 3.90x | 1.0x | 20x | 0.25 | "
                     "fails Allo+Pred >= Allo Only; Pred Only > Base |"]


def test_allo_keeps_the_home_plan_when_a_copy_would_overload_its_holder():
    # 1x2 mesh, experts 0 1 homed on die 0, 2 3 on die 1; weights dominate (a read R = 6000 ns from HBM,
    # 12000 ns over the link; compute ~12 ns a token). Die 1 holds a copy of expert 0.
    # Coldest first with the copy: 1 -> die 0 (R); 0 -> die 1 (its copy; die 0 would be 2R); 2, 3 -> die 1
    # (reading them on die 0 costs the link, 2R or more): die 1 ends at 3R. Without the copy every expert
    # stays home: 2R each. The plan without copies is kept.
    from waferview.policies.placement_allo import allo_plan, allo_tasks

    model = tiny_model(num_experts=4, top_k=1, layers=1, hidden=1000, inter=1000)
    trace = trace_from_rows(model, [([[[0]]], [])])
    hw = tiny_hardware(2, 1, die_tflops=1000.0, hbm_bytes_per_ns=1000.0, link_bytes_per_ns=500.0,
                       link_efficiency=1.0, hbm_efficiency={"default": 1.0})
    eng = Engine(trace, hw, placement="allo", predictor="off")
    counts = np.array([2, 1, 3, 4], dtype=np.int64)
    copies = np.zeros((2, 4), dtype=np.uint8)
    copies[1, 0] = 1
    args = (eng.context.kernel.mesh, eng.rates, 50, 5)
    e, d, _, est = allo_plan(counts, eng.home, copies, True, *args)
    assert dict(zip(e.tolist(), d.tolist())) == {0: 1, 1: 0, 2: 1, 3: 1}
    assert est == 3 * 6000.0   # die 1: 3 reads; its compute (9 tokens x 12 ns) hides under HBM
    e, d, _ = allo_tasks(counts, eng.home, copies, *args)
    assert dict(zip(e.tolist(), d.tolist())) == {0: 0, 1: 0, 2: 1, 3: 1}
    # the plan without copies: what allo makes when the layer has none
    e, d, _ = allo_tasks(counts, eng.home, np.zeros((2, 4), dtype=np.uint8), *args)
    assert dict(zip(e.tolist(), d.tolist())) == {0: 0, 1: 0, 2: 1, 3: 1}


def test_stale_kernel_caches_are_dropped_when_a_source_is_newer(tmp_path):
    import os

    from waferview.sim.kernel_cache import drop_stale_caches

    pkg = tmp_path / "pkg"
    (pkg / "sub" / "__pycache__").mkdir(parents=True)
    src, cache = pkg / "sub" / "a.py", pkg / "sub" / "__pycache__" / "a.f-1.py311.nbi"
    src.write_text("x = 1\n")
    cache.write_bytes(b"index")
    os.utime(src, (1000, 1000))
    os.utime(cache, (2000, 2000))
    assert drop_stale_caches(pkg) == 0 and cache.exists()      # cache newer than every source: kept
    os.utime(src, (3000, 3000))                                   # an edit
    assert drop_stale_caches(pkg) == 1 and not cache.exists()
