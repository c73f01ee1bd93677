"""The heatmap of a recorded batch (trace.passes.RecordedPasses): token-to-token pairs as the recording
allows them, then either rule's top-n sets (bits[passes, L, E, W] uint64, as sim.heatmap returns).

A token row's predecessor (predecessors()):
  with request ids   the previous row of the same request, in this pass or an earlier one (a request's
                     prompt rows follow each other inside its extend pass, its decode rows across passes)
  without them       per position within a pass: in a prefill pass the row before it in the same pass
                     (prompt tokens lie in sequence order), in a decode pass the row at the same position of
                     the previous pass (continuous batching mostly keeps a request's slot)
Every pair (predecessor -> row) with the row in pass s is counted before the prediction of step s (the
per-request rule of sim.heatmap, where step s first adds the pairs ending at s). The waferview rule keeps
positive counts, larger first, ties to the lower id (sim.heatmap's _rows_top_n, incremental); the study's
rule takes the last n of NumPy's argsort of float64 rows (sim.heatmap_study's selection), and leaves out
the pairs from a prefill pass's row to a decode pass's row, as the study leaves out last prompt token ->
first decode token.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from waferview.sim.heatmap import _parallel_lock, _rows_top_n


def predecessors(passes) -> np.ndarray:
    """(T,) int64: each row's predecessor row, -1 for none (rules above)."""
    T = len(passes.ids)
    offsets = passes.pass_offsets
    pred = np.full(T, -1, dtype=np.int64)
    if passes.request_ids is not None:
        order = np.argsort(passes.request_ids, kind="stable")     # rows of a request, in recorded order
        same = passes.request_ids[order[1:]] == passes.request_ids[order[:-1]]
        pred[order[1:][same]] = order[:-1][same]
        return pred
    for p in range(passes.passes):
        a, b = int(offsets[p]), int(offsets[p + 1])
        if passes.prefill[p]:
            pred[a + 1:b] = np.arange(a, b - 1)
        elif p > 0:
            prev_a, prev_b = int(offsets[p - 1]), int(offsets[p])
            n = min(b - a, prev_b - prev_a)
            pred[a:a + n] = np.arange(prev_a, prev_a + n)
    return pred


@njit(nogil=True, cache=True)
def _add_pass_pairs(H, ids, pred, r0, r1, layer, touched):
    k = ids.shape[2]
    for t in range(r0, r1):
        q = pred[t]
        if q < 0:
            continue
        for x in range(k):
            a = ids[q, layer, x]
            touched[a] = True
            for y in range(k):
                H[a, ids[t, layer, y]] += 1


@njit(nogil=True, cache=True, parallel=True)
def _waferview_steps(ids, pred, offsets, steps, top_n, H, member, n_member, bits, touched, out):
    """Per pass: add its pairs, then every row's top-n (sim.heatmap's rule), layers in parallel."""
    L = H.shape[0]
    for layer in prange(L):
        for s in range(steps):
            _add_pass_pairs(H[layer], ids, pred, offsets[s], offsets[s + 1], layer, touched[layer])
            _rows_top_n(H[layer], top_n, member[layer], n_member[layer], bits[layer], out[s, layer], s == 0)


@njit(nogil=True, cache=True, parallel=True)
def _add_pairs_all_layers(H, ids, pred, r0, r1, touched):
    for layer in prange(H.shape[0]):
        _add_pass_pairs(H[layer], ids, pred, r0, r1, layer, touched[layer])


def recorded_top_bits(passes, steps: int, top_n: int, rule: str = "waferview", progress=None) -> np.ndarray:
    """bits[steps, L, E, W] (read-only) of the first `steps` recorded passes."""
    from waferview.sim.heatmap_study import _pack, _select

    m = passes.model
    L, E = m.moe_layers, m.num_experts
    W = (E + 63) // 64
    ids, offsets = passes.ids, np.ascontiguousarray(passes.pass_offsets[:steps + 1], dtype=np.int64)
    pred = predecessors(passes)
    out = np.zeros((steps, L, E, W), dtype=np.uint64)
    n = min(int(top_n), E)
    if rule == "study":
        # the study never counts a request's last prompt token -> its first decode token (sim.heatmap_study)
        row_prefill = np.repeat(np.asarray(passes.prefill, dtype=bool), np.diff(passes.pass_offsets))
        pred = np.where((pred >= 0) & row_prefill[np.maximum(pred, 0)] & ~row_prefill, -1, pred)
        H = np.zeros((L, E, E))
        touched = np.ones((L, E), dtype=np.bool_)
        member = np.zeros((L, E, E), dtype=bool)
        for s in range(steps):
            with _parallel_lock:
                _add_pairs_all_layers(H, ids, pred, int(offsets[s]), int(offsets[s + 1]), touched)
            if s == 0 or touched.any():
                _select(H, member, touched, n)
                packed = _pack(member)
            out[s] = packed
            if progress is not None:
                progress("building the study's heatmap", s + 1, steps)
    else:
        H = np.zeros((L, E, E), dtype=np.int64)
        member = np.zeros((L, E, E), dtype=np.uint8)
        n_member = np.zeros((L, E), dtype=np.int64)
        bits = np.zeros((L, E, W), dtype=np.uint64)
        touched = np.zeros((L, E), dtype=np.bool_)
        with _parallel_lock:  # numba's default threading layer must not be entered by two threads
            _waferview_steps(ids, pred, offsets, steps, n, H, member, n_member, bits, touched, out)
    out.setflags(write=False)
    return out
