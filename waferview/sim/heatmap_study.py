"""The study's heatmap and its top-n sets, as its simulator computes them (the paper profile's
`--heatmap-rule study`; sim.heatmap is waferview's own rule).

Per MoE layer a float64 E x E matrix: every (expert at token t, expert at token t+1) pair of adjacent prompt
tokens of every request of the batch (repeats counted each time), then, from step 2 on, cumulatively, the
(step s-1 -> step s) pairs of the requests still decoding at s. Steps 0 and 1 see prompt pairs only: the
last prompt token -> first decode token pair is never counted. The top-n of row f are the last n of NumPy's
argsort of the row (its default sort; only membership matters, but which of several equal counts fall in at
the boundary is NumPy's choice, zeros included), so this runs in NumPy, not numba.
Returns the same bit masks as sim.heatmap: bits[steps, L, E, W] uint64.
"""

from __future__ import annotations

import numpy as np


def _add_pairs(H, prev, cur, weights):
    """H[l, a, b] += w for every (a in prev row, b in cur row) of each token pair; prev, cur: (n, L, k)."""
    n, L, k = prev.shape
    if n == 0:
        return
    w = np.repeat(weights, k * k).astype(np.float64)
    for layer in range(L):
        a = np.broadcast_to(prev[:, layer, :, None], (n, k, k)).reshape(-1).astype(np.intp)
        b = np.broadcast_to(cur[:, layer, None, :], (n, k, k)).reshape(-1).astype(np.intp)
        np.add.at(H[layer], (a, b), w)


def _pack(member: np.ndarray) -> np.ndarray:
    """(L, E, E) bool -> (L, E, W) uint64 bit masks (bit b of word b >> 6)."""
    L, E, _ = member.shape
    W = (E + 63) // 64
    padded = np.zeros((L, E, W * 64), dtype=np.uint8)
    padded[:, :, :E] = member
    return np.packbits(padded.reshape(L, E, W, 64), axis=3, bitorder="little").view("<u8").reshape(L, E, W)


def study_top_bits(trace, batch, top_n: int, progress=None) -> np.ndarray:
    m = trace.model
    L, E, steps = m.moe_layers, m.num_experts, batch.steps
    H = np.zeros((L, E, E))
    pre_off, dec_off = trace.prefill_offsets, trace.decode_offsets
    for r, w in zip(batch.requests.tolist(), batch.weights.tolist()):
        rows = trace.prefill_ids[pre_off[r]:pre_off[r + 1]]
        _add_pairs(H, rows[:-1], rows[1:], np.full(len(rows) - 1, w))
    out = np.zeros((steps, L, E, (E + 63) // 64), dtype=np.uint64)
    dec_len = dec_off[batch.requests + 1] - dec_off[batch.requests]
    n = min(int(top_n), E)
    bits = None
    for s in range(steps):
        if s >= 2:
            running = dec_len >= s
            if running.any():
                base = dec_off[batch.requests[running]] + s - 1
                _add_pairs(H, trace.decode_ids[base - 1], trace.decode_ids[base], batch.weights[running])
            bits = None
        if bits is None:
            order = np.argsort(H, axis=2)            # NumPy's default sort, row by row, as the study's
            member = np.zeros((L, E, E), dtype=bool)
            np.put_along_axis(member, order[:, :, E - n:], True, axis=2)
            bits = _pack(member)
        out[s] = bits
        if progress is not None:
            progress("building the study's heatmap", s + 1, steps)
    out.setflags(write=False)
    return out
