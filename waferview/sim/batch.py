"""Which requests a run replays, and the batch's routing collapsed to per-expert counts.

Batch selection: the trace's requests in a seeded permutation (numpy default_rng(seed)); the first
`batch` of them, cycled when the batch is larger than the requests present (each request then carries
a multiplicity). Default batch = all requests. Step 0 = all prefill rows of the batch's requests;
decode step s holds one row of every request whose decode length >= s; steps = 1 + max decode length.

Per (step, layer) the batch collapses to counts c[e] = token selections of expert e, computed by a numba
kernel (sim.workload.Workload computes them once and shares them between the engines it is given to).
The kernel goes through the requests in chunks and releases each chunk's mapped pages (sim.pages), so
a large memory-mapped trace does not stay resident.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from numba import njit

from waferview.errors import InputError
from waferview.limits import BATCH_WHY, MAX_BATCH, MAX_SEED
from waferview.sim.pages import release_requests, request_chunks
from waferview.trace.arrays import TraceArrays


@dataclass(frozen=True, eq=False)
class Batch:
    size: int                      # requests replayed together (with repeats when cycled)
    seed: int
    requests: np.ndarray           # (U,) distinct request indices in the batch, ascending
    weights: np.ndarray            # (U,) how many times each appears
    steps: int                     # 1 + max decode length in the batch
    tokens_per_step: np.ndarray    # (steps,) step 0: prefill tokens; s >= 1: requests decoding at s
    note: str | None               # set when requests are reused

    @property
    def prefill_tokens(self) -> int:
        return int(self.tokens_per_step[0]) if self.steps else 0

    @property
    def decode_tokens(self) -> int:
        return int(self.tokens_per_step[1:].sum())


def select_batch(trace: TraceArrays, batch: int | None, seed: int) -> Batch:
    """The batch's requests and their multiplicities, in O(requests) memory whatever the batch size:
    request order[i] is picked batch // R times, plus once more for the first batch % R of the seeded
    order (the same multiset as cycling through the order, never materialised)."""
    R = trace.requests
    if R == 0:
        raise InputError(f"{trace.source or 'trace'}: no requests to replay")
    if batch is None:
        batch = R
    if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or not 1 <= batch <= MAX_BATCH:
        raise InputError(f"--batch {batch}: expected a number of requests from 1 to {MAX_BATCH:,} ({BATCH_WHY})")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"--seed {seed}: expected an integer from 0 to {MAX_SEED:,}")
    batch, seed = int(batch), int(seed)
    _check_exact(trace, batch, R)
    order = np.random.default_rng(seed).permutation(R)
    if batch <= R:
        requests = np.sort(order[:batch])
        weights = np.ones(batch, dtype=np.int64)
    else:
        repeats, extra = divmod(batch, R)
        weights = np.full(R, repeats, dtype=np.int64)
        weights[order[:extra]] += 1
        requests = np.arange(R)
    dec_len = trace.decode_lengths[requests]
    pre_len = trace.prefill_lengths[requests]
    steps = 1 + int(dec_len.max()) if len(dec_len) else 1
    per_step = np.zeros(steps, dtype=np.int64)
    per_step[0] = int((pre_len * weights).sum())
    # requests decoding at step s: weight-sum of those with dec_len >= s
    hist = np.bincount(dec_len, weights=weights, minlength=steps).astype(np.int64)
    per_step[1:] = hist[::-1].cumsum()[::-1][1:steps]
    note = None
    if batch > R:
        note = (f"batch {batch} > {R} requests present: requests reused in a fixed seeded order (seed {seed})")
    return Batch(batch, seed, requests.astype(np.int64), weights, steps, per_step, note)


def _check_exact(trace: TraceArrays, batch: int, R: int) -> None:
    """Refuse a batch whose busiest layer could overflow the kernels' int64 arithmetic: its token count
    (at most ceil(batch / R) x the trace's prefill rows, or the batch itself in a decode step) times the
    FLOPs per token and the top-k must stay below 2^62. Exact, in Python integers."""
    m = trace.model
    tokens = max(-(-batch // R) * trace.prefill_tokens, batch)
    work = tokens * max(m.top_k, 1) * max(m.flops_per_token, 1)
    if work >= 1 << 62:
        raise InputError(f"--batch {batch}: a layer of this batch could count {tokens:,} tokens x "
                         f"{m.flops_per_token:,} FLOPs each, beyond exact 64-bit arithmetic; use a smaller batch")


@njit(nogil=True, cache=True)
def _batch_counts(prefill_ids, decode_ids, pre_off, dec_off, requests, weights, out):
    L = prefill_ids.shape[1]
    k = prefill_ids.shape[2]
    for i in range(requests.shape[0]):
        r = requests[i]
        w = weights[i]
        for row in range(pre_off[r], pre_off[r + 1]):
            for l in range(L):
                for j in range(k):
                    out[0, l, prefill_ids[row, l, j]] += w
        base = dec_off[r]
        for s in range(dec_off[r + 1] - base):
            for l in range(L):
                for j in range(k):
                    out[s + 1, l, decode_ids[base + s, l, j]] += w


def batch_counts(trace: TraceArrays, batch: Batch, progress=None) -> np.ndarray:
    """counts[steps, L, E] int64 (read-only): token selections of each expert per (step, MoE layer).
    progress(label, done, total) after each chunk of requests."""
    m = trace.model
    out = np.zeros((batch.steps, m.moe_layers, m.num_experts), dtype=np.int64)
    chunks = request_chunks(trace, batch.requests)
    for i, (i0, i1) in enumerate(chunks):   # sums: the chunking changes nothing
        _batch_counts(trace.prefill_ids, trace.decode_ids, trace.prefill_offsets, trace.decode_offsets,
                      batch.requests[i0:i1], batch.weights[i0:i1], out)
        release_requests(trace, batch.requests[i0:i1])
        if progress is not None:
            progress("counting the batch's expert selections", i + 1, len(chunks))
    out.setflags(write=False)
    return out
