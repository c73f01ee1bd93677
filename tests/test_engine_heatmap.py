"""The heatmap's top-n sets: a hand-worked trace, and the incremental selection against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from simcases import tiny_model, trace_from_rows
from waferview.sim import heatmap as hm
from waferview.sim.batch import select_batch


def brute_top(H, n):
    E = H.shape[0]
    out = []
    for a in range(E):
        ranked = sorted((-H[a, b], b) for b in range(E) if H[a, b] > 0)
        out.append({b for _, b in ranked[:n]})
    return out


def as_sets(bits_l, E):
    return [set(np.flatnonzero(hm.bits_to_mask(bits_l[a], E)).tolist()) for a in range(E)]


def test_hand_worked_heatmap():
    model = tiny_model(num_experts=4, top_k=1, layers=1)
    # request A: prefill 0, 1, 0 ; decode 2, 1.  request B: prefill 0 ; decode 3
    trace = trace_from_rows(model, [([[[0]], [[1]], [[0]]], [[[2]], [[1]]]), ([[[0]]], [[[3]]])])
    bits = hm.heatmap_top_bits(trace, select_batch(trace, None, 0), top_n=1)
    # step 0: prefill pairs 0->1, 1->0: row 0 = {1}, row 1 = {0}
    assert as_sets(bits[0, 0], 4) == [{1}, {0}, set(), set()]
    # step 1: + last prefill row -> decode 1 (A: 0->2, B: 0->3): row 0 counts 1:1, 2:1, 3:1 -> top-1 = {1}
    assert as_sets(bits[1, 0], 4) == [{1}, {0}, set(), set()]
    # step 2: + A 2->1: row 2 = {1}
    assert as_sets(bits[2, 0], 4) == [{1}, {0}, {1}, set()]
    bits2 = hm.heatmap_top_bits(trace, select_batch(trace, None, 0), top_n=2)
    assert as_sets(bits2[1, 0], 4)[0] == {1, 2}   # ties at count 1: lower ids first


@pytest.mark.parametrize("E, n", [(7, 2), (40, 8), (70, 3), (130, 26)])
def test_incremental_selection_equals_brute_force(E, n):
    rng = np.random.default_rng(E)
    H = np.zeros((E, E), np.int64)
    W = (E + 63) // 64
    member = np.zeros((E, E), np.uint8)
    n_member = np.zeros(E, np.int64)
    bits = np.zeros((E, W), np.uint64)
    out = np.zeros((E, W), np.uint64)
    for step in range(40):
        idx = rng.integers(0, E, (int(rng.integers(0, E)), 2))
        np.add.at(H, (idx[:, 0], idx[:, 1]), rng.integers(1, 4, len(idx)))
        hm._rows_top_n(H, n, member, n_member, bits, out, step == 0)
        assert as_sets(out, E) == brute_top(H, n), f"step {step}"
