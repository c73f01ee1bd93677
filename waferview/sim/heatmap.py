"""The paper's cross-token heatmap, reduced to what the predictor needs: each row's top-n.

Per MoE layer, H[a, b] counts pairs (expert a at token t -> expert b at token t+1 of the same request),
weighted by how many times the request is in the batch. It is seeded from the prefill's adjacent rows;
at decode step s it is first updated with the pairs (token s-1 -> token s), where for s = 1 the previous
token is the request's last prefill row, and then used to predict. The top-n of row a are the n experts
with the largest positive counts (ties: lower id first); experts never seen after a are not predicted.

The heatmap depends only on the batch (not on mesh or placement), so the top-n sets of every
(step, layer, row) are computed once per (batch, n) (sim.workload.Workload) and stored as bit masks:
bits[steps, L, E, W] uint64 with W = ceil(E / 64); bit b of row a set <=> b in top-n(H[a]).
Layers are done in groups (about GATHER_BYTES of gathered decode rows each); each group reads the
batch's rows in request chunks and releases their mapped pages (sim.pages), so a memory-mapped trace
does not stay resident. Counts are integer sums, so grouping and chunking change no result.
"""

from __future__ import annotations

import threading

import numpy as np
import numba
from numba import njit, prange

from waferview.sim.batch import Batch
from waferview.sim.pages import release_requests, request_chunks
from waferview.trace.arrays import TraceArrays


@njit(nogil=True, cache=True)
def _top_n_threshold(row, top_n, lo, hi):
    """The top_n-th largest key v * E + (E - 1 - b) of row (keys are unique: larger count first, then lower
    id), given count(row >= lo) >= top_n > count(row >= hi). Bisection on the count value (each step one
    branch-free pass that vectorises), then the tie among entries equal to it goes to the lower ids. The
    same key a sort or a quickselect of the keys gives, several times faster on rows of a few hundred."""
    E = row.shape[0]
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        c = 0
        for b in range(E):
            c += row[b] >= mid
        if c >= top_n:
            lo = mid
        else:
            hi = mid
    greater = 0
    for b in range(E):
        greater += row[b] > lo
    need = top_n - greater   # >= 1: count(row >= lo) >= top_n > count(row > lo)
    for b in range(E):
        if row[b] == lo:
            need -= 1
            if need == 0:
                return lo * E + (E - 1 - b)
    return np.int64(0)   # not reached


@njit(nogil=True, cache=True)
def _select_row(H, a, top_n, member):
    """member[a, :] = the top_n positive entries of H[a] (ties to the lower id); returns their number."""
    E = H.shape[0]
    row = H[a]
    positive = 0
    largest = np.int64(0)
    total = np.int64(0)
    for b in range(E):
        v = row[b]
        positive += v > 0
        largest = max(largest, v)
        total += v
    threshold = np.int64(1)
    if positive > top_n:   # top_n entries >= the answer: it is at most total // top_n
        threshold = _top_n_threshold(row, top_n, 1, min(largest, total // top_n) + 1)
    n = 0
    for b in range(E):
        v = row[b]
        m = (v > 0) & (v * E + (E - 1 - b) >= threshold)
        member[a, b] = m
        n += m
    return n


@njit(nogil=True, cache=True)
def _pack_bits(flags, words):
    """words[w] = bit b & 63 set <=> flags[b] (b in word w = b >> 6), without a branch per flag."""
    E = flags.shape[0]
    for w in range(words.shape[0]):
        word = np.uint64(0)
        for b in range(w * 64, min(E, w * 64 + 64)):
            word |= np.uint64(flags[b] != 0) << np.uint64(b - w * 64)
        words[w] = word


@njit(nogil=True, cache=True)
def _rows_top_n(H, top_n, member, n_member, bits, out, fresh):
    """out[a, :] = bit mask of the top_n positive entries of H[a] for every row a.

    With fresh=False, member/n_member/bits hold the previous top-n sets of the same rows, and H has
    only grown since: a row is selected again only when a non-member now beats the weakest member
    (or a new positive entry appears in a row with fewer than top_n members); else its set is
    unchanged. When a full set is overtaken, the new set lies within the old members and the entries
    that beat the weakest of them (nothing else can have grown past it): the count bisection of
    _top_n_threshold starts at the weakest member's count. The result is the set a fresh selection gives
    (keys are unique). The check is written without branches so it vectorises."""
    E = H.shape[0]
    W = out.shape[1]
    big = np.int64(1) << 62
    for a in range(E):
        again = fresh
        if not fresh:
            weakest_in = big
            strongest_out = np.int64(0)
            largest = np.int64(0)
            total = np.int64(0)
            row = H[a]
            mrow = member[a]
            for b in range(E):
                key = row[b] * E + (E - 1 - b)
                m = mrow[b]
                weakest_in = min(weakest_in, key if m else big)
                strongest_out = max(strongest_out, key if (m == 0 and row[b] > 0) else 0)
                largest = max(largest, row[b])
                total += row[b]
            if strongest_out > weakest_in and n_member[a] == top_n:
                # the new set: the top_n largest keys of the row; every member's count is >= the weakest's,
                # so the count bisection starts there
                threshold = _top_n_threshold(row, top_n, weakest_in // E, min(largest, total // top_n) + 1)
                for b in range(E):
                    mrow[b] = (row[b] > 0) & (row[b] * E + (E - 1 - b) >= threshold)
                _pack_bits(mrow, bits[a])
            else:
                again = strongest_out > 0 and (n_member[a] < top_n or strongest_out > weakest_in)
        if again:
            n_member[a] = _select_row(H, a, top_n, member)
            _pack_bits(member[a], bits[a])
        for w in range(W):
            out[a, w] = bits[a, w]


@njit(nogil=True, cache=True, parallel=True)
def _gather_chunk(prefill_ids, decode_ids, pre_off, dec_off, requests, weights, i0, i1, l0, H, last_prefill,
                  gathered):
    """For layers l0 .. l0+G-1 (in parallel) and the batch's requests i0..i1-1: add the prefill pairs to
    H[g] and copy each request's last prefill row and its decode rows into last_prefill[g] and gathered[g]
    (step-major), so the step loop does not go back to the trace."""
    G = H.shape[0]
    k = prefill_ids.shape[2]
    for g in prange(G):
        l = l0 + g
        Hg = H[g]
        for i in range(i0, i1):
            r = requests[i]
            w = weights[i]
            for row in range(pre_off[r], pre_off[r + 1] - 1):
                for j in range(k):
                    a = prefill_ids[row, l, j]
                    for jj in range(k):
                        Hg[a, prefill_ids[row + 1, l, jj]] += w
            if pre_off[r + 1] > pre_off[r]:
                for j in range(k):
                    last_prefill[g, i, j] = prefill_ids[pre_off[r + 1] - 1, l, j]
            for s in range(dec_off[r + 1] - dec_off[r]):
                for j in range(k):
                    gathered[g, s, i, j] = decode_ids[dec_off[r] + s, l, j]


@njit(nogil=True, cache=True, parallel=True)
def _select_steps(pre_off, dec_off, requests, weights, H, last_prefill, gathered, top_n, l0, out):
    """Layers l0 .. l0+G-1 (in parallel): top-n of the seeded H, then step by step update and select."""
    steps = out.shape[0]
    E = out.shape[2]
    G = H.shape[0]
    k = last_prefill.shape[2]
    U = requests.shape[0]
    dec_len = np.empty(U, dtype=np.int64)
    for i in range(U):
        dec_len[i] = dec_off[requests[i] + 1] - dec_off[requests[i]]
    for g in prange(G):
        l = l0 + g
        Hg = H[g]
        member = np.zeros((E, E), dtype=np.uint8)
        n_member = np.zeros(E, dtype=np.int64)
        bits = np.zeros((E, out.shape[3]), dtype=np.uint64)
        _rows_top_n(Hg, top_n, member, n_member, bits, out[0, l], True)
        for s in range(1, steps):
            for i in range(U):
                if dec_len[i] < s:
                    continue
                w = weights[i]
                if s == 1:
                    r = requests[i]
                    if pre_off[r + 1] == pre_off[r]:
                        continue
                    for j in range(k):
                        a = last_prefill[g, i, j]
                        for jj in range(k):
                            Hg[a, gathered[g, 0, i, jj]] += w
                else:
                    for j in range(k):
                        a = gathered[g, s - 2, i, j]
                        for jj in range(k):
                            Hg[a, gathered[g, s - 1, i, jj]] += w
            _rows_top_n(Hg, top_n, member, n_member, bits, out[s, l], False)


GATHER_BYTES = 256 << 20   # decode rows of a group of layers held at once (layers are done in groups)


def _heatmap_top_bits(trace: TraceArrays, batch: Batch, top_n: int, out: np.ndarray) -> None:
    """Groups of layers, each: one chunked pass over the batch's rows (releasing pages as it goes) that
    seeds H from prefill pairs and gathers the decode rows, then the step loop on the gathered rows."""
    steps, L, E = out.shape[0], out.shape[1], out.shape[2]
    k = trace.model.top_k
    U = len(batch.requests)
    per_layer = max(steps - 1, 1) * U * k * trace.decode_ids.dtype.itemsize
    group = int(max(1, min(L, GATHER_BYTES // max(per_layer, 1))))
    threads = numba.get_num_threads()
    if threads < group < L:   # whole rounds of layers per thread (the layer loops are parallel)
        group -= group % threads
    chunks = request_chunks(trace, batch.requests)
    for l0 in range(0, L, group):
        G = min(group, L - l0)
        H = np.zeros((G, E, E), dtype=np.int64)
        # only entries the trace fills are read back (rows of existing prefill / decode steps)
        last_prefill = np.empty((G, U, k), dtype=trace.prefill_ids.dtype)
        gathered = np.empty((G, max(steps - 1, 1), U, k), dtype=trace.decode_ids.dtype)
        for i0, i1 in chunks:
            _gather_chunk(trace.prefill_ids, trace.decode_ids, trace.prefill_offsets, trace.decode_offsets,
                          batch.requests, batch.weights, i0, i1, l0, H, last_prefill, gathered)
            release_requests(trace, batch.requests[i0:i1])
        _select_steps(trace.prefill_offsets, trace.decode_offsets, batch.requests, batch.weights, H, last_prefill,
                      gathered, top_n, l0, out)


_parallel_lock = threading.Lock()


def default_top_n(num_experts: int) -> int:
    return max(1, -(-num_experts // 5))  # ceil(0.2 * E)


def compute_top_bits(trace: TraceArrays, batch: Batch, top_n: int, progress=None) -> np.ndarray:
    """bits[steps, L, E, W] (read-only) of the batch's heatmap top-n sets (sim.workload.Workload keeps them)."""
    m = trace.model
    words = (m.num_experts + 63) // 64
    out = np.zeros((batch.steps, m.moe_layers, m.num_experts, words), dtype=np.uint64)
    if progress is not None:
        progress("building the heatmap", 0, 1)
    with _parallel_lock:  # numba's default threading layer must not be entered by two threads
        _heatmap_top_bits(trace, batch, int(top_n), out)
    if progress is not None:
        progress("building the heatmap", 1, 1)
    out.setflags(write=False)
    return out


heatmap_top_bits = compute_top_bits


def bits_to_mask(bits_row: np.ndarray, num_experts: int) -> np.ndarray:
    """One row's uint64 words -> bool[E] (for tests and the reference)."""
    as_bytes = bits_row.astype("<u8").view(np.uint8)
    return np.unpackbits(as_bytes, bitorder="little")[:num_experts].astype(bool)
