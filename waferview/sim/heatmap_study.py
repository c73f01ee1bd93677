"""The study's heatmap and its top-n sets, as its simulator computes them (the paper profile's
`--heatmap-rule study`; sim.heatmap is waferview's own rule).

Per MoE layer a float64 E x E matrix: every (expert at token t, expert at token t+1) pair of adjacent prompt
tokens of every request of the batch (repeats counted each time), then, from step 2 on, cumulatively, the
(step s-1 -> step s) pairs of the requests still decoding at s. Steps 0 and 1 see prompt pairs only: the
last prompt token -> first decode token pair is never counted. The top-n of row f are the last n of NumPy's
argsort of the row (its default sort; only membership matters, but which of several equal counts fall in at
the boundary is NumPy's choice, zeros included), so the selection runs in NumPy; the pair counting, integer
weights added into float64 (exact below 2**53, so in any order), runs in numba. A row is sorted again only
when a pair added to it since its last sort (argsort sorts each row on its own, so the result is the same).
Returns the same bit masks as sim.heatmap: bits[steps, L, E, W] uint64.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(nogil=True, cache=True, parallel=True)
def _add_prompt_pairs(H, prefill_ids, offsets, requests, weights, touched):
    """H[l, a, b] += w for every pair of adjacent prompt rows of every request (weight w), layers in parallel."""
    L, k = prefill_ids.shape[1], prefill_ids.shape[2]
    for layer in prange(L):
        for i in range(requests.shape[0]):
            r = requests[i]
            w = np.float64(weights[i])
            for t in range(offsets[r], offsets[r + 1] - 1):
                for x in range(k):
                    a = prefill_ids[t, layer, x]
                    touched[layer, a] = True
                    for y in range(k):
                        H[layer, a, prefill_ids[t + 1, layer, y]] += w


@njit(nogil=True, cache=True, parallel=True)
def _add_decode_pairs(H, decode_ids, rows, weights, touched):
    """H[l, a, b] += w for (decode row rows[i] - 1 -> decode row rows[i]) of each i, layers in parallel."""
    L, k = decode_ids.shape[1], decode_ids.shape[2]
    for layer in prange(L):
        for i in range(rows.shape[0]):
            t = rows[i]
            w = np.float64(weights[i])
            for x in range(k):
                a = decode_ids[t - 1, layer, x]
                touched[layer, a] = True
                for y in range(k):
                    H[layer, a, decode_ids[t, layer, y]] += w


def _pack(member: np.ndarray) -> np.ndarray:
    """(L, E, E) bool -> (L, E, W) uint64 bit masks (bit b of word b >> 6)."""
    L, E, _ = member.shape
    W = (E + 63) // 64
    padded = np.zeros((L, E, W * 64), dtype=np.uint8)
    padded[:, :, :E] = member
    return np.packbits(padded.reshape(L, E, W, 64), axis=3, bitorder="little").view("<u8").reshape(L, E, W)


def _select(H: np.ndarray, member: np.ndarray, touched: np.ndarray, n: int) -> None:
    """member[l, a] = the last n of NumPy's argsort of H[l, a], for the touched rows (then untouched)."""
    E = H.shape[2]
    layers, rows = np.nonzero(touched)
    if len(layers):
        order = np.argsort(H[layers, rows], axis=1)     # NumPy's default sort, row by row, as the study's
        chosen = np.zeros((len(layers), E), dtype=bool)
        np.put_along_axis(chosen, order[:, E - n:], True, axis=1)
        member[layers, rows] = chosen
    touched[:] = False


def study_top_bits(trace, batch, top_n: int, progress=None) -> np.ndarray:
    from waferview.sim.heatmap import _parallel_lock

    m = trace.model
    L, E, steps = m.moe_layers, m.num_experts, batch.steps
    H = np.zeros((L, E, E))
    touched = np.ones((L, E), dtype=np.bool_)        # every row is sorted once (zeros included)
    member = np.zeros((L, E, E), dtype=bool)
    requests = np.ascontiguousarray(batch.requests, dtype=np.int64)
    weights = np.ascontiguousarray(batch.weights, dtype=np.int64)
    dec_off = trace.decode_offsets
    dec_len = dec_off[requests + 1] - dec_off[requests]
    n = min(int(top_n), E)
    with _parallel_lock:   # numba's default threading layer must not be entered by two threads
        _add_prompt_pairs(H, trace.prefill_ids, trace.prefill_offsets, requests, weights, touched)
    out = np.zeros((steps, L, E, (E + 63) // 64), dtype=np.uint64)
    bits = None
    for s in range(steps):
        if s >= 2:
            running = dec_len >= s
            if running.any():
                rows = np.ascontiguousarray(dec_off[requests[running]] + s - 1, dtype=np.int64)
                with _parallel_lock:
                    _add_decode_pairs(H, trace.decode_ids, rows, weights[running], touched)
        if bits is None or touched.any():
            _select(H, member, touched, n)
            bits = _pack(member)
        out[s] = bits
        if progress is not None:
            progress("building the study's heatmap", s + 1, steps)
    out.setflags(write=False)
    return out
