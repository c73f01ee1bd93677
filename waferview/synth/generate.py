"""Synthetic routing traces whose statistics imitate the real models' (REPRODUCTION.md, calibration).

The generative model, per MoE layer and token (all knobs live in SynthParams, per-model defaults in
DEFAULT_PARAMS):
  - every token carries a latent *cluster* at each layer: the one of the previous token at that layer
    with probability `token_stay` (temporal locality), else the one of the same token at the layer below
    with probability `layer_stay` (next-layer correlation), else a uniform draw;
  - clusters cut random permutations of the experts into groups of `cluster_size` (each expert belongs to
    `cluster_overlap` clusters, so membership adds no skew); experts of one cluster fire together, which
    makes co-activated pairs;
  - a row's k distinct experts are, in order: the layer's hottest expert with probability `hot_share`
    (skew: hottest/mean is about hot_share * E / k); Binomial(k, `repeat`) experts of the previous token;
    Binomial(k, `cluster_focus`) members of the token's cluster, drawn without replacement in proportion
    to popularity; the rest from the layer's global popularity, a Zipf profile (exponent
    `popularity_alpha`, plus `warm_boost` for the `warm_size` experts after the hottest);
  - decode popularity uses the same profile over a jittered order: each expert's rank moves by about
    `decode_shift` places, so prefill's top-20 mostly stays decode's while the top-5 moves;
  - rows are stored in a random rotation (real rows are in gate-score order, not fill order).
Prefill lengths are log-normal (some requests have a single prefill row); decode runs to `max_decode`
steps except for a share of requests (`early_stop`) that stop early.

Generation runs in one numba kernel over preallocated arrays (memory maps when they would not fit in
RAM), and each request is seeded from (seed, request index) alone, so the result does not depend on how
the work is chunked or threaded.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numba import njit, prange

from waferview.errors import InputError
from waferview.models import ModelSpec, get_model
from waferview.trace.arrays import TraceArrays
from waferview.synth.random_tables import alias_tables, below, binomial_table, chance, next_bits, sample, threshold


@dataclass(frozen=True)
class SynthParams:
    # routing structure
    cluster_size: int = 8             # experts per cluster and layer (rounded to a divisor of E)
    cluster_overlap: int = 1          # clusters each expert belongs to
    cluster_focus: float = 0.6
    popularity_alpha: float = 0.4
    hot_share: float = 0.5
    token_stay: float = 0.5
    layer_stay: float = 0.5
    repeat: float = 0.2
    decode_shift: float = 3.0         # rank jitter between prefill and decode popularity (in places)
    warm_size: int = 20
    warm_boost: float = 0.0
    cluster_alpha: float = 0.0        # Zipf exponent of cluster popularity (0: clusters equally likely)
    # request shapes
    prefill_median: float = 110.0     # rows in step 0; real Qwen files of 3-9 MB hold ~150-500 tokens
    prefill_sigma: float = 0.55
    prefill_max: int = 400
    single_row_prefill: float = 0.04
    max_decode: int = 128
    early_stop: float = 0.25          # share of requests that stop before max_decode

    def validated(self) -> "SynthParams":
        for name in ("cluster_focus", "hot_share", "token_stay", "layer_stay", "repeat",
                     "single_row_prefill", "early_stop"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"synth parameter {name}={v}: expected a value between 0 and 1")
        if min(self.cluster_size, self.cluster_overlap, self.max_decode, self.prefill_max) < 1:
            raise InputError("synth parameters cluster_size, cluster_overlap, max_decode, prefill_max must be >= 1")
        return self


# Per-model defaults, calibrated against the paper's trace statistics on 1,000-request batches with
# `python -m waferview.synth.calibrate MODEL 1000` (REPRODUCTION.md, synthetic traces).
DEFAULT_PARAMS: dict[str, SynthParams] = {
    "deepseek": SynthParams(cluster_focus=0.708, hot_share=0.510, token_stay=0.238, layer_stay=0.534, repeat=0.079,
                            decode_shift=6.66, warm_boost=0.55),
    "qwen3": SynthParams(cluster_focus=0.693, hot_share=0.685, token_stay=0.343, layer_stay=0.970, repeat=0.137,
                         decode_shift=5.76, warm_boost=0.34),
    "llama4": SynthParams(cluster_size=4, cluster_focus=0.80, popularity_alpha=0.8, hot_share=0.095,
                          token_stay=0.417, layer_stay=0.919, repeat=0.164, decode_shift=6.70, warm_boost=0.53),
    "kimi": SynthParams(cluster_focus=0.726, hot_share=0.318, token_stay=0.324, layer_stay=0.756, repeat=0.107,
                        decode_shift=7.00, warm_boost=0.54),
}


def default_params(model: ModelSpec) -> SynthParams:
    return DEFAULT_PARAMS[model.key]


# ---------------------------------------------------------------------------------------------
# tables: small, built in numpy from the seed


_ORDERINGS = 128  # precomputed draw orders per cluster (see _tables)


def _tables(model: ModelSpec, p: SynthParams, seed: int):
    rng = np.random.default_rng([seed, 0x5EED])
    L, E = model.moe_layers, model.num_experts
    size = math.gcd(min(p.cluster_size, E), E)
    # global popularity: Zipf over a random order of the experts, one order per layer, plus an optional
    # "warm" group just below the hottest expert
    ranks = np.argsort(np.argsort(rng.random((L, E)), axis=1), axis=1)     # ranks[l, e]: 0 = hottest
    hot = np.argmin(ranks, axis=1).astype(np.int64)

    def profile(r):
        w = (r + 1.0) ** -p.popularity_alpha
        return w + p.warm_boost * 2.0 ** -p.popularity_alpha * ((r >= 1) & (r <= p.warm_size))

    # decode keeps the same profile over a jittered order: each expert's rank moves by about
    # `decode_shift` places (the hottest stays), so the top-20 set is stable while the top-5 moves
    score = ranks + p.decode_shift * rng.standard_normal((L, E))
    score[np.arange(L), hot] = -np.inf
    ranks_dec = np.argsort(np.argsort(score, axis=1), axis=1)
    pop = np.stack([profile(ranks), profile(ranks_dec)])          # [phase, L, E]

    # cluster members per layer: distinct experts drawn uniformly; within a cluster a member is drawn
    # with its popularity, so clusters shape which experts go together, not how popular each one is.
    # Clusters cut `cluster_overlap` random permutations into groups: every expert is in the same number
    # of clusters, so membership adds no skew of its own.
    clusters = p.cluster_overlap * E // size
    perms = np.argsort(rng.random((L, p.cluster_overlap, E)), axis=2)
    members = perms.reshape(L, clusters, size)
    # a member is drawn with its phase's popularity: [phase * L + layer, cluster, member]
    member_pop = np.take_along_axis(pop[:, :, None, :], members[None], axis=3).reshape(2 * L, clusters, 1, size)
    # Draws from a cluster are without replacement in proportion to popularity. Rather than reject
    # repeats in the kernel, precompute _ORDERINGS such draw orders per (phase, layer, cluster) with the
    # Gumbel-top-k trick; a row picks one order and walks it. [phase * L + layer, cluster, ordering, slot]
    keys = np.log(member_pop) + rng.gumbel(size=(2 * L, clusters, _ORDERINGS, size))
    orders = np.argsort(-keys, axis=3).astype(np.int8)
    return pop, hot, members.astype(np.int16), orders


def request_lengths(requests: int, p: SynthParams, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Prefill rows and decode steps per request."""
    rng = np.random.default_rng([seed, 0x1E9])
    pre = np.exp(np.log(p.prefill_median) + p.prefill_sigma * rng.standard_normal(requests))
    pre = np.clip(np.rint(pre), 2, p.prefill_max).astype(np.int64)
    pre[rng.random(requests) < p.single_row_prefill] = 1
    dec = np.full(requests, p.max_decode, dtype=np.int64)
    stops = rng.random(requests) < p.early_stop
    dec[stops] = rng.integers(1, p.max_decode, size=int(stops.sum())) if p.max_decode > 1 else 1
    return pre, dec


# ---------------------------------------------------------------------------------------------
# the kernel: a xorshift64* stream per request and alias tables (synth_random), parallel over
# requests (each request is seeded on its own, so threads do not change the result)


@njit(nogil=True, cache=True, parallel=True)
def _fill_requests(prefill, decode, pre_off, dec_off, first, seeds, pop_accept, pop_alias, hot, members,
                   orders, repeat_accept, repeat_alias, focus_accept, focus_alias, cluster_accept, cluster_alias,
                   num_experts, hot_share, token_stay, layer_stay):
    L = prefill.shape[1]
    k = prefill.shape[2]
    for r in prange(seeds.shape[0]):
        state = np.empty(1, np.uint64)
        state[0] = np.uint64(seeds[r]) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(1)
        for _ in range(4):
            next_bits(state)
        prev_cl = np.zeros(L, np.int64)
        prev_row = np.zeros((L, k), np.int64)
        row = np.zeros(k, np.int64)
        stamp = np.zeros(num_experts, np.int64)   # stamp[e] == this row's mark: e is already in the row
        mark = 0
        rr = first + r
        n_pre = pre_off[rr + 1] - pre_off[rr]
        n_dec = dec_off[rr + 1] - dec_off[rr]
        for t in range(n_pre + n_dec):
            phase = 0 if t < n_pre else 1
            cl_below = -1
            for l in range(L):
                mark += 1
                # the token's cluster at this layer
                if t > 0 and chance(state, token_stay):
                    cl = prev_cl[l]
                elif cl_below >= 0 and chance(state, layer_stay):
                    cl = cl_below
                else:
                    cl = below(state, members.shape[1]) if cluster_accept.shape[2] == 0 \
                        else sample(state, cluster_accept, cluster_alias, 0, 0)
                cl_below = cl
                # the row: k distinct experts
                n = 0
                if chance(state, hot_share):
                    row[0] = hot[l]
                    stamp[hot[l]] = mark
                    n = 1
                if t > 0:
                    # Binomial(k, repeat) experts of the previous token (its row is in random rotation)
                    for j in range(sample(state, repeat_accept, repeat_alias, 0, 0)):
                        e = prev_row[l, j]
                        if stamp[e] != mark:
                            stamp[e] = mark
                            row[n] = e
                            n += 1
                tries = 0
                order = below(state, orders.shape[2])
                pos = 0
                # Binomial(k, focus) draws come from the cluster, in this row's draw order; the global
                # popularity fills the rest
                quota = min(sample(state, focus_accept, focus_alias, 0, 0), orders.shape[3])
                while n < k:
                    if pos < quota:
                        e = np.int64(members[l, cl, orders[phase * L + l, cl, order, pos]])
                        pos += 1
                    else:
                        e = sample(state, pop_accept, pop_alias, phase, l)
                    tries += 1
                    if tries > 64:               # pathological knobs: take the next free id
                        e = (e + tries) % num_experts
                    if stamp[e] != mark:
                        stamp[e] = mark
                        row[n] = e
                        n += 1
                # real rows are in gate-score order, not in fill order: store with a random rotation
                rot = below(state, k)
                for j in range(k):
                    src = j + rot                # (j + rot) % k without a division
                    if src >= k:
                        src -= k
                    e = row[src]
                    prev_row[l, j] = e
                    if phase == 0:
                        prefill[pre_off[rr] + t, l, j] = e
                    else:
                        decode[dec_off[rr] + t - n_pre, l, j] = e
                prev_cl[l] = cl


# ---------------------------------------------------------------------------------------------
# public API


def _progress_bar(total: int, label: str):
    """A progress bar on a terminal (waferview.progress), or None when that module is missing."""
    try:
        from waferview.progress import progress
    except ImportError:
        return None
    return progress(int(total), label)


def _check(model, requests, params) -> SynthParams:
    if isinstance(model, str):
        model = get_model(model)
    if requests < 1:
        raise InputError(f"--requests {requests}: expected at least 1 request")
    return (params or default_params(model)).validated()


def request_indices(requests: int, seed: int) -> np.ndarray:
    """File indices like the dataset's: sorted, not contiguous, not starting at 0."""
    rng = np.random.default_rng([seed, 0x1D5])
    span = requests * 3 + 10
    return np.sort(rng.choice(np.arange(3, 3 + span), size=requests, replace=False))


def _generate_into(model, requests, seed, p, alloc) -> TraceArrays:
    L, k, dt = model.moe_layers, model.top_k, model.id_dtype
    pre_len, dec_len = request_lengths(requests, p, seed)
    pre_off = np.zeros(requests + 1, np.int64)
    dec_off = np.zeros(requests + 1, np.int64)
    np.cumsum(pre_len, out=pre_off[1:])
    np.cumsum(dec_len, out=dec_off[1:])
    prefill = alloc("prefill", (int(pre_off[-1]), L, k), dt)
    decode = alloc("decode", (int(dec_off[-1]), L, k), dt)
    pop, hot, members, orders = _tables(model, p, seed)
    if p.cluster_alpha > 0:   # skewed cluster popularity; an empty table keeps the uniform draw
        cluster_weights = np.arange(1, members.shape[1] + 1) ** -p.cluster_alpha
        cluster_accept, cluster_alias = alias_tables(cluster_weights[None, None])
    else:
        cluster_accept, cluster_alias = np.zeros((1, 1, 0), np.uint64), np.zeros((1, 1, 0), np.int16)
    pop_accept, pop_alias = alias_tables(pop)
    k = model.top_k
    repeat_accept, repeat_alias = binomial_table(k, p.repeat)
    focus_accept, focus_alias = binomial_table(k, p.cluster_focus)
    seeds = (np.random.default_rng([seed, 0x5EE]).integers(0, 2**31 - 1, size=requests)).astype(np.int64)
    chunk = 256
    bar = _progress_bar(requests, f"generating {model.key}")
    for first in range(0, requests, chunk):
        n = min(chunk, requests - first)
        _fill_requests(prefill, decode, pre_off, dec_off, first, seeds[first:first + n],
                       pop_accept, pop_alias, hot, members, orders,
                       repeat_accept, repeat_alias, focus_accept, focus_alias, cluster_accept, cluster_alias,
                       model.num_experts,
                       threshold(p.hot_share), threshold(p.token_stay), threshold(p.layer_stay))
        if bar is not None:
            bar.update(n)
    if bar is not None:
        bar.close()
    names = tuple(f"{i}.json" for i in request_indices(requests, seed))
    return TraceArrays(model, prefill, decode, pre_off, dec_off, names,
                       source=f"synthetic {model.key}, {requests} requests, seed {seed}")


def generate(model: ModelSpec | str, requests: int, seed: int, params: SynthParams | None = None) -> TraceArrays:
    """`requests` synthetic requests of `model`, in memory. Deterministic for a seed."""
    p = _check(model, requests, params)
    model = get_model(model) if isinstance(model, str) else model
    return _generate_into(model, requests, seed, p, lambda name, shape, dt: np.empty(shape, dt))


def _ram_budget() -> int:
    """Bytes one generated array may take in RAM (a quarter of physical memory, 1 GB if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 1 << 30


def generate_to_cache(model: ModelSpec | str, requests: int, seed: int, path: str | os.PathLike,
                      params: SynthParams | None = None, source: str | None = None,
                      created=None) -> TraceArrays:
    """Generate straight into a .wvtrace cache. Arrays up to a quarter of the machine's memory are
    filled in RAM and written once; bigger ones live in memory maps beside the target while they are
    filled, so a batch never needs more RAM than the machine has. Folders made for the cache are
    recorded in `created` (synth.output.Created) so a failed run can remove them."""
    from waferview.synth.output import Created
    from waferview.trace.cache import load_cache, save_cache

    p = _check(model, requests, params)
    model = get_model(model) if isinstance(model, str) else model
    path = Path(path)
    created = created if created is not None else Created()
    created.makedirs(path.parent)
    try:
        # the scratch folder is private (mkdtemp, 0700) and removed whatever happens
        scratch = tempfile.TemporaryDirectory(prefix=".synth-", dir=path.parent)
    except OSError as e:
        raise InputError(f"{path}: cannot write there ({e.strerror or e})") from None
    with scratch as tmp:
        def alloc(name, shape, dt):
            nbytes = int(np.prod(shape)) * np.dtype(dt).itemsize
            if nbytes <= _ram_budget():
                return np.empty(shape, dt)
            return np.lib.format.open_memmap(os.path.join(tmp, name + ".npy"), mode="w+", dtype=dt, shape=shape)

        trace = _generate_into(model, requests, seed, p, alloc)
        trace = replace(trace, source=source or f"{path} (synthetic {model.key}, seed {seed})")
        try:
            save_cache(path, trace, source_key=f"synth:{model.key}:{requests}:{seed}")
        except OSError as e:
            raise InputError(f"{path}: cannot write the cache ({e.strerror or e})") from None
        del trace
    return load_cache(path)[0]
