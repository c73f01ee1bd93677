"""The paper's cross-token heatmap, reduced to what the predictor needs: each row's top-n.

Per MoE layer, H[a, b] counts pairs (expert a at token t -> expert b at token t+1 of the same request),
weighted by how many times the request is in the batch. It is seeded from the prefill's adjacent rows;
at decode step s it is first updated with the pairs (token s-1 -> token s), where for s = 1 the previous
token is the request's last prefill row, and then used to predict. The top-n of row a are the n experts
with the largest positive counts (ties: lower id first); experts never seen after a are not predicted.

The heatmap depends only on the batch (not on mesh or placement), so the top-n sets of every
(step, layer, row) are computed once per (batch, n) (sim.workload.Workload) and stored as bit masks:
bits[steps, L, E, W] uint64 with W = ceil(E / 64); bit b of row a set <=> b in top-n(H[a]).

The cost is the pair scatter (k*k adds per token and layer: ~23 G for 16,384 Qwen requests), so the data
is read once, in the order it lies: one pass over the prefill rows in request chunks (their mapped pages
released after each, sim.pages) seeds H of every layer; then the decode steps go once over the requests
still decoding, each reading its next row. Layers are split between threads; a thread does all its layers
on a block of requests before the next block, so every row comes from memory once; a block is large
enough that bringing a layer's E x E table into the cache is paid for by the pairs added to it (Kimi's
is 576 kB). Counts are integer sums (int32 when no entry can reach 2**31), so the order and the blocking
change no result.
"""

from __future__ import annotations

import mmap
import threading

import numpy as np
import numba
from numba import njit, prange

from waferview.sim.batch import Batch
from waferview.sim.pages import _mapping, release_requests, request_chunks
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
def _prefill_pairs(prefill_ids, pre_off, requests, weights, blocks, parts, H):
    """H[l] += the prefill pairs (row t -> row t+1 of the same request) of requests blocks[0] ..
    blocks[-1]-1, for every layer l. The layers are split into `parts` ranges run in parallel; each goes
    through the requests block by block (blocks[q] .. blocks[q+1]-1, a few hundred kB of rows) and does its
    layers on one block before the next, so a block is read from memory once and stays in the cache."""
    L = H.shape[0]
    k = prefill_ids.shape[2]
    for p in prange(parts):
        l_lo, l_hi = p * L // parts, (p + 1) * L // parts
        for q in range(blocks.shape[0] - 1):
            for l in range(l_lo, l_hi):
                Hl = H[l]
                for i in range(blocks[q], blocks[q + 1]):
                    r = requests[i]
                    w = weights[i]
                    if k == 8:   # top-8 models (all but Llama): the targets in registers, 20% fewer cycles
                        for row in range(pre_off[r], pre_off[r + 1] - 1):
                            nxt = prefill_ids[row + 1, l]
                            b0, b1, b2, b3 = nxt[0], nxt[1], nxt[2], nxt[3]
                            b4, b5, b6, b7 = nxt[4], nxt[5], nxt[6], nxt[7]
                            for j in range(8):
                                Ha = Hl[prefill_ids[row, l, j]]
                                Ha[b0] += w
                                Ha[b1] += w
                                Ha[b2] += w
                                Ha[b3] += w
                                Ha[b4] += w
                                Ha[b5] += w
                                Ha[b6] += w
                                Ha[b7] += w
                        continue
                    for row in range(pre_off[r], pre_off[r + 1] - 1):
                        for j in range(k):
                            Ha = Hl[prefill_ids[row, l, j]]
                            for jj in range(k):
                                Ha[prefill_ids[row + 1, l, jj]] += w


@njit(nogil=True, cache=True, parallel=True)
def _decode_steps(pre_units, dec_units, ids_like, pre_off, dec_off, requests, weights, active, block, s0, s1,
                  parts, H, member, n_member, bits, top_n, out):
    """Decode steps s0 .. s1-1 for every layer: H[l] += the pairs (token s-1 -> token s) of the requests
    decoding at s (requests[:active[s]]: sorted by decode length, longest first), then out[s, l] = the
    top-n of every row (incremental: member, n_member, bits hold the sets of the step before). Layer ranges
    run in parallel. Each takes `block` requests at a time: it copies their two rows' ids for its layers
    into a small layer-major tile (the rows lie far apart in the trace), then does the pairs layer by layer
    from the tile, so the scatter reads its ids from the cache in order. pre_units / dec_units are the
    prefill / decode ids viewed as (rows, L x u) words (u words hold one layer's k ids; ids_like has their
    dtype), so the copy moves whole words."""
    L = H.shape[0]
    u = dec_units.shape[1] // L
    for p in prange(parts):
        l_lo, l_hi = p * L // parts, (p + 1) * L // parts
        G = l_hi - l_lo
        tile = np.empty((G, block, 2, u), dtype=dec_units.dtype)
        ids = tile.view(ids_like.dtype)
        k = ids.shape[3]
        tile_w = np.empty(block, dtype=weights.dtype)
        for s in range(s0, s1):
            n = active[s]
            for i0 in range(0, n, block):
                m = 0
                for i in range(i0, min(n, i0 + block)):
                    r = requests[i]
                    cur = dec_off[r] + s - 1
                    if s == 1:   # the previous token is the request's last prefill row
                        if pre_off[r + 1] == pre_off[r]:
                            continue
                        prev = pre_off[r + 1] - 1
                        for g in range(G):
                            for c in range(u):
                                tile[g, m, 0, c] = pre_units[prev, (l_lo + g) * u + c]
                                tile[g, m, 1, c] = dec_units[cur, (l_lo + g) * u + c]
                    else:
                        for g in range(G):
                            for c in range(u):
                                tile[g, m, 0, c] = dec_units[cur - 1, (l_lo + g) * u + c]
                                tile[g, m, 1, c] = dec_units[cur, (l_lo + g) * u + c]
                    tile_w[m] = weights[i]
                    m += 1
                for g in range(G):
                    Hl = H[l_lo + g]
                    for q in range(m):
                        w = tile_w[q]
                        if k == 8:   # as in _prefill_pairs: the targets in registers
                            nxt = ids[g, q, 1]
                            b0, b1, b2, b3 = nxt[0], nxt[1], nxt[2], nxt[3]
                            b4, b5, b6, b7 = nxt[4], nxt[5], nxt[6], nxt[7]
                            for j in range(8):
                                Ha = Hl[ids[g, q, 0, j]]
                                Ha[b0] += w
                                Ha[b1] += w
                                Ha[b2] += w
                                Ha[b3] += w
                                Ha[b4] += w
                                Ha[b5] += w
                                Ha[b6] += w
                                Ha[b7] += w
                            continue
                        for j in range(k):
                            Ha = Hl[ids[g, q, 0, j]]
                            for jj in range(k):
                                Ha[ids[g, q, 1, jj]] += w
            for l in range(l_lo, l_hi):
                _rows_top_n(H[l], top_n, member[l], n_member[l], bits[l], out[s, l], False)


def _as_units(ids: np.ndarray) -> np.ndarray:
    """(rows, L, k) ids -> (rows, L x u) words: uint64 when one layer's ids fill whole words, else the ids."""
    rows, L, k = ids.shape
    flat = ids.reshape(rows, L * k)
    if (k * ids.dtype.itemsize) % 8 == 0 and flat.shape[1] and flat.flags.c_contiguous:
        return flat.view(np.uint64)
    return flat


@njit(nogil=True, cache=True, parallel=True)
def _first_step(H, top_n, member, n_member, bits, out0):
    """out0[l] = the top-n of every row of the seeded H[l] (a fresh selection), every layer in parallel."""
    for l in prange(H.shape[0]):
        _rows_top_n(H[l], top_n, member[l], n_member[l], bits[l], out0[l], True)


BLOCK_BYTES = 256 << 10   # rows of a block of requests, read once for all the layers of a thread, at least
PAIRS_PER_LINE = 64       # and enough pairs per block and layer to pay for bringing H[l] into the cache
                          # (64 per 64-byte line of H: Kimi's 384 x 384 table is 576 kB, Qwen's 64 kB)
DECODE_STEPS_PER_CALL = 4  # decode steps between two progress reports, at least
PROGRESS_CALLS = 32        # progress reports over the decode steps, at most
PROGRESS_LABEL = "building the heatmap"
RELEASE_EVERY_STEPS = 32   # decode steps between two releases of the rows already read (mapped traces)


def _block_rows(H: np.ndarray, k: int, row_bytes: int) -> int:
    """Rows (transitions) per block: BLOCK_BYTES of them, and PAIRS_PER_LINE pairs per line of a layer's H."""
    lines = H[0].nbytes // 64 if H.shape[0] else 0
    return int(max(1, BLOCK_BYTES // max(1, row_bytes), PAIRS_PER_LINE * lines // max(1, k * k)))


def _prefill_blocks(trace: TraceArrays, requests: np.ndarray, i0: int, i1: int, rows: int) -> np.ndarray:
    """Boundaries (indices into requests, i0 .. i1) of blocks of about `rows` prefill rows."""
    ends = np.cumsum(trace.prefill_lengths[requests[i0:i1]])
    if len(ends) == 0:
        return np.array([i0], dtype=np.int64)
    cuts = np.searchsorted(ends, np.arange(rows, int(ends[-1]), rows), side="right") + i0
    return np.unique(np.concatenate(([i0], cuts, [i1]))).astype(np.int64)


def _release_read_decode_rows(trace: TraceArrays, requests: np.ndarray, upto: int) -> None:
    """Drop from the resident set the pages that hold only decode rows 0 .. upto-1 of the given requests
    (rows the step loop has read for the last time). Pages shared with a row still to be read are kept."""
    arr = trace.decode_ids
    mm = _mapping(arr)
    if mm is None or mm.closed or arr.size == 0 or upto <= 0 or len(requests) == 0:
        return
    view = np.frombuffer(mm, dtype=np.uint8)
    try:
        origin = view.ctypes.data
    finally:
        del view
    row = arr[0:1].nbytes
    base = arr.ctypes.data - origin
    first = trace.decode_offsets[requests]
    end = np.minimum(first + upto, trace.decode_offsets[requests + 1])
    page = mmap.PAGESIZE
    starts = -(-(base + first * row) // page) * page      # whole pages inside the rows already read
    stops = ((base + end * row) // page) * page
    for a, b in zip(starts[stops > starts].tolist(), stops[stops > starts].tolist()):
        mm.madvise(mmap.MADV_DONTNEED, a, b - a)


def _heatmap_top_bits(trace: TraceArrays, batch: Batch, top_n: int, out: np.ndarray, progress=None) -> None:
    """One pass over the batch's prefill rows in request chunks (releasing their pages) seeds H for every
    layer; then the decode steps, each going once over the requests still decoding (pages of the rows read
    for the last time are released now and then). `progress(label, done, total)` counts rows."""
    steps, L, E = out.shape[0], out.shape[1], out.shape[2]
    requests, weights = batch.requests, batch.weights
    pre_len = trace.prefill_lengths[requests]
    dec_len = trace.decode_lengths[requests]
    k = trace.model.top_k
    # int32 counts when no entry can overflow (each pair adds its weight at most k*k times): half the memory
    # the scatter walks; the selection compares them in int64
    bound = int((weights * (pre_len + dec_len)).sum()) * k * k
    H = np.zeros((L, E, E), dtype=np.int32 if bound < 2 ** 31 else np.int64)
    member = np.zeros((L, E, E), dtype=np.uint8)
    n_member = np.zeros((L, E), dtype=np.int64)
    bits = np.zeros((L, E, out.shape[3]), dtype=np.uint64)
    parts = int(max(1, min(L, numba.get_num_threads())))
    total = int(pre_len.sum()) + int(dec_len.sum())
    done = 0
    block_rows = _block_rows(H, k, trace.prefill_ids[0:1].nbytes if len(trace.prefill_ids) else 1)
    for i0, i1 in request_chunks(trace, requests):
        _prefill_pairs(trace.prefill_ids, trace.prefill_offsets, requests, weights,
                       _prefill_blocks(trace, requests, i0, i1, block_rows), parts, H)
        release_requests(trace, requests[i0:i1])
        done += int(pre_len[i0:i1].sum())
        if progress is not None:
            progress(PROGRESS_LABEL, done, total)
    _first_step(H, top_n, member, n_member, bits, out[0])
    # requests longest decode first: those decoding at step s are a prefix
    order = np.argsort(-dec_len, kind="stable")
    dec_sorted = dec_len[order]
    active = np.searchsorted(-dec_sorted, -np.arange(steps), side="right").astype(np.int64)
    row = trace.decode_ids[0:1].nbytes if len(trace.decode_ids) else 1
    block = int(max(1, min(len(requests), _block_rows(H, k, 2 * row))))   # requests (two rows each) per block
    req_sorted, w_sorted = np.ascontiguousarray(requests[order]), np.ascontiguousarray(weights[order])
    pre_units, dec_units = _as_units(trace.prefill_ids), _as_units(trace.decode_ids)
    if pre_units.dtype != dec_units.dtype:     # one unit type for both (a trace without rows of one kind)
        pre_units, dec_units = trace.prefill_ids.reshape(len(trace.prefill_ids), -1), \
            trace.decode_ids.reshape(len(trace.decode_ids), -1)
    ids_like = np.zeros(0, dtype=trace.decode_ids.dtype)
    # few calls (a parallel launch costs on small batches): between releases, or for progress now and then
    per_call = RELEASE_EVERY_STEPS if progress is None else max(DECODE_STEPS_PER_CALL, -(-steps // PROGRESS_CALLS))
    for s0 in range(1, steps, per_call):
        s1 = min(steps, s0 + per_call)
        _decode_steps(pre_units, dec_units, ids_like, trace.prefill_offsets, trace.decode_offsets, req_sorted,
                      w_sorted, active, block, s0, s1, parts, H, member, n_member, bits, top_n, out)
        done += int(active[s0:s1].sum())
        if progress is not None:
            progress(PROGRESS_LABEL, done, total)
        if s1 < steps and s1 // RELEASE_EVERY_STEPS != s0 // RELEASE_EVERY_STEPS:
            _release_read_decode_rows(trace, requests, s1 - 2)
    for i0, i1 in request_chunks(trace, requests):   # the decode rows, and the prefill rows step 1 read again
        release_requests(trace, requests[i0:i1])


_parallel_lock = threading.Lock()


def default_top_n(num_experts: int) -> int:
    return max(1, -(-num_experts // 5))  # ceil(0.2 * E)


def compute_top_bits(trace: TraceArrays, batch: Batch, top_n: int, progress=None) -> np.ndarray:
    """bits[steps, L, E, W] (read-only) of the batch's heatmap top-n sets, computed now (no memo).
    `progress(label, done, total)`, if given, is called now and then from the calling thread (rows read)."""
    m = trace.model
    words = (m.num_experts + 63) // 64
    out = np.zeros((batch.steps, m.moe_layers, m.num_experts, words), dtype=np.uint64)
    with _parallel_lock:  # numba's default threading layer must not be entered by two threads
        _heatmap_top_bits(trace, batch, int(top_n), out, progress)
    out.setflags(write=False)
    return out


heatmap_top_bits = compute_top_bits   # (the name earlier callers use)


def bits_to_mask(bits_row: np.ndarray, num_experts: int) -> np.ndarray:
    """One row's uint64 words -> bool[E] (for tests and the reference)."""
    as_bytes = bits_row.astype("<u8").view(np.uint8)
    return np.unpackbits(as_bytes, bitorder="little")[:num_experts].astype(bool)
