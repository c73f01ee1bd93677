"""Numba kernels of one (step, MoE layer): where each task reads its weights, what the layer costs,
and the copy store (capacity, LRU order). Plain functions over flat arrays; `nogil` so a viewer
thread stays responsive while they run.

Holders of expert e in layer l: its home die, plus every die d with copies[l, d, e] set.
The nearest holder of e seen from die d: d itself when it holds e; otherwise the holder at the
smallest Manhattan distance, ties to the home die, then to the lowest die id.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def nearest_holder(e, d, home, copies_l, dist):
    if home[e] == d or copies_l[d, e]:
        return d
    best = home[e]
    best_dist = dist[d, best]
    for h in range(dist.shape[0]):
        if copies_l[h, e] and dist[d, h] < best_dist:
            best = h
            best_dist = dist[d, h]
    return best


@njit(nogil=True, cache=True)
def resolve_sources(task_e, task_d, home, copies_l, dist):
    src = np.empty(task_e.shape[0], dtype=np.int64)
    for t in range(task_e.shape[0]):
        src[t] = nearest_holder(task_e[t], task_d[t], home, copies_l, dist)
    return src


@njit(nogil=True, cache=True)
def layer_costs(task_e, task_d, task_tok, task_src, copy_writes, dist, route_off, route_links, n_links,
                expert_bytes, header_bytes, flops_per_token, flops_per_ns, hbm_rate, link_rate,
                hbm_latency, hop_latency, die_busy, die_tokens, link_bytes, dram_bytes, d2d_bytes):
    """Fill die_busy[D] (ns), die_tokens[D], link_bytes[n_links], dram_bytes[D] (bytes each die's HBM
    serves), d2d_bytes[D] (bytes arriving for each die); return the layer's scalars.

    Per die: compute_local / compute_remote = flops of tasks reading locally / remotely over
    flops_per_ns; dram = bytes its HBM serves (own reads, reads served to others, copy writes) over
    hbm_rate; d2d_in = bytes arriving for it (weights it reads remotely, request headers of reads it
    serves) over link_rate. busy = max(max(compute_local, dram), d2d_in) + compute_remote + latency,
    latency = hbm_latency if the die did anything + hop_latency x the longest of its remote reads.
    Link time = bytes / link_rate; layer time = max(max busy, max link time).
    """
    D = dist.shape[0]
    flops_local = np.zeros(D)
    flops_remote = np.zeros(D)
    max_hops = np.zeros(D, dtype=np.int64)
    for d in range(D):
        die_tokens[d] = 0
        d2d_bytes[d] = 0
        dram_bytes[d] = copy_writes[d] * expert_bytes
    for i in range(n_links):
        link_bytes[i] = 0
    local_bytes = 0
    remote_bytes = 0
    hops = 0
    headers = 0
    local_reads = 0
    for t in range(task_e.shape[0]):
        d = task_d[t]
        s = task_src[t]
        tok = task_tok[t]
        die_tokens[d] += tok
        dram_bytes[s] += expert_bytes
        if s == d:
            flops_local[d] += tok * flops_per_token
            local_bytes += expert_bytes
            local_reads += 1
        else:
            flops_remote[d] += tok * flops_per_token
            remote_bytes += expert_bytes
            h = dist[s, d]
            hops += h
            if h > max_hops[d]:
                max_hops[d] = h
            d2d_bytes[d] += expert_bytes
            d2d_bytes[s] += header_bytes
            headers += header_bytes
            for i in range(route_off[s * D + d], route_off[s * D + d + 1]):
                link_bytes[route_links[i]] += expert_bytes
            for i in range(route_off[d * D + s], route_off[d * D + s + 1]):
                link_bytes[route_links[i]] += header_bytes
    layer_time = 0.0
    busy_sum = 0.0
    busy_max = 0.0
    for d in range(D):
        busy = max(max(flops_local[d] / flops_per_ns, dram_bytes[d] / hbm_rate), d2d_bytes[d] / link_rate)
        busy += flops_remote[d] / flops_per_ns
        if die_tokens[d] > 0 or dram_bytes[d] > 0:
            busy += hbm_latency + hop_latency * max_hops[d]
        die_busy[d] = busy
        busy_sum += busy
        if busy > busy_max:
            busy_max = busy
    layer_time = busy_max
    for i in range(n_links):
        lt = link_bytes[i] / link_rate
        if lt > layer_time:
            layer_time = lt
    return layer_time, busy_sum, busy_max, local_bytes, remote_bytes, hops, headers, local_reads


# ---- the copy store: copies[L, D, E] uint8, and a per-die LRU list over slots idx = l * E + e ----------
# lru[D, L * E, 4] int32: (prev, next, last_used, reads) of each slot, one 16-byte record (a list step
# or a touch reads one cache line, not one line in each of four arrays); -1 = none / never used.
# reads = how often the die has read that expert while not homed on it (remote or from its copy);
# counted only under EVICT_ADMIT, the one rule that reads it.
PREV, NEXT, LAST_USED, READS = 0, 1, 2, 3
# eviction rules (engine option --eviction): when a die's copy space is full ...
EVICT_NEVER = 0   # ... the copy is skipped (the paper)
EVICT_LRU = 1     # ... the least recently used copy makes room
EVICT_ADMIT = 2   # ... it does only if the die has read the new expert more often than that copy's expert
EVICTION_CODES = {"never": EVICT_NEVER, "lru": EVICT_LRU, "admit": EVICT_ADMIT}   # by policies.base.EVICTIONS


@njit(nogil=True, cache=True)
def _lru_unlink(d, idx, lru, lru_head, lru_tail):
    p = lru[d, idx, PREV]
    n = lru[d, idx, NEXT]
    if p >= 0:
        lru[d, p, NEXT] = n
    else:
        lru_head[d] = n
    if n >= 0:
        lru[d, n, PREV] = p
    else:
        lru_tail[d] = p
    lru[d, idx, PREV] = -1
    lru[d, idx, NEXT] = -1


@njit(nogil=True, cache=True)
def _lru_append(d, idx, lru, lru_head, lru_tail):
    t = lru_tail[d]
    lru[d, idx, PREV] = t
    lru[d, idx, NEXT] = -1
    if t >= 0:
        lru[d, t, NEXT] = idx
    else:
        lru_head[d] = idx
    lru_tail[d] = idx


@njit(nogil=True, cache=True)
def touch_copies(layer, task_e, task_d, task_src, home, copies, now, eviction, lru, lru_head, lru_tail):
    """Under EVICT_ADMIT, count every read of an expert away from its home die (only admit reads the
    counts); a task that reads a copy on its own die makes that copy the most recently used.
    Returns the number of reads served by a predictor copy."""
    E = copies.shape[2]
    hits = 0
    for t in range(task_e.shape[0]):
        d = task_d[t]
        e = task_e[t]
        if home[e] == d:
            continue
        idx = layer * E + e
        if eviction == EVICT_ADMIT:
            lru[d, idx, READS] += 1
        if task_src[t] == d and copies[layer, d, e]:
            if lru_tail[d] != idx:   # already the most recently used: unlink + append would change nothing
                _lru_unlink(d, idx, lru, lru_head, lru_tail)
                _lru_append(d, idx, lru, lru_head, lru_tail)
            lru[d, idx, LAST_USED] = now
            hits += 1
    return hits


@njit(nogil=True, cache=True)
def apply_copies(layer, want, task_e, task_d, task_src, copies, copy_count, copy_slots, now,
                 eviction, lru, lru_head, lru_tail, copied):
    """Copy expert task_e[t] to die task_d[t] for each remote task with want[t], in task order.

    A die with no free slot skips the copy (EVICT_NEVER, the paper), or drops its least recently used
    copy first (EVICT_LRU), or does so only when it has read the new expert more often than the victim
    (EVICT_ADMIT: a copy read once is not worth a copy read often, so cyclic or random reuse larger
    than the copy space does not flush it). A copy used in this very layer is never the victim.
    Sets copied[t]; returns the number of evictions.
    """
    E = copies.shape[2]
    evictions = 0
    for t in range(task_e.shape[0]):
        copied[t] = False
        d = task_d[t]
        e = task_e[t]
        if not want[t] or task_src[t] == d or copies[layer, d, e]:
            continue
        if copy_count[d] >= copy_slots[d]:
            if eviction == EVICT_NEVER or copy_count[d] == 0:
                continue
            victim = lru_head[d]
            if lru[d, victim, LAST_USED] >= now:
                continue
            if eviction == EVICT_ADMIT and lru[d, victim, READS] >= lru[d, layer * E + e, READS]:
                continue
            vl = victim // E
            ve = victim - vl * E
            _lru_unlink(d, victim, lru, lru_head, lru_tail)
            copies[vl, d, ve] = 0
            copy_count[d] -= 1
            evictions += 1
        copies[layer, d, e] = 1
        copy_count[d] += 1
        idx = layer * E + e
        lru[d, idx, LAST_USED] = now
        _lru_append(d, idx, lru, lru_head, lru_tail)
        copied[t] = True
    return evictions


# ---- the rest of a (step, layer) in one call: fewer Python round trips per layer -------------------

# run totals kept by finish_layer: acc_i (int64) and acc_f (float64) indices
(ACC_TOKEN_SELECTIONS, ACC_HOPS, ACC_REMOTE_READ_BYTES, ACC_LOCAL_READ_BYTES, ACC_LOCAL_WRITE_BYTES,
 ACC_HEADER_BYTES, ACC_WEIGHT_READS, ACC_LOCAL_WEIGHT_READS, ACC_COPIES_MADE, ACC_COPY_READS, ACC_EVICTIONS,
 ACC_DECODE_TOKEN_LAYERS, ACC_PRED_HITS, ACC_PRED_SIZE, ACC_NEXT_ACTIVE, ACC_PRED_LAYERS) = range(16)
ACC_I_SIZE = 16
(ACC_DECODE_TIME, ACC_PREFILL_TIME, ACC_BUSY_SUM, ACC_BUSY_MAX_SUM, ACC_LAYER_TIME_SUM) = range(5)
ACC_F_SIZE = 5
# finish_layer's pred_mode: no precision/recall this layer; the mode's predicted[E]; what was copied
PRED_NONE, PRED_GIVEN, PRED_COPIED = 0, 1, 2


@njit(nogil=True, cache=True)
def finish_layer(step, layer, now, want, task_e, task_d, task_tok, task_src, home, copies, copy_count,
                 copy_slots, eviction, lru, lru_head, lru_tail, copied,
                 pred_mode, predicted, next_counts, step_tokens, dist, route_off, route_links, n_links,
                 expert_bytes, header_bytes, flops_per_token, flops_per_ns, hbm_rate, link_rate, hbm_latency,
                 hop_latency, die_busy, die_tokens, link_bytes, dram_bytes, d2d_bytes, acc_i, acc_f, layer_out):
    """touch_copies, apply_copies and layer_costs of one (step, layer), in that order, and the run totals
    (acc_i, acc_f: the same additions, in the same order, as one at a time). The touches come after the
    predictor chose `want`, which reads none of the copy store's LRU state. layer_out[8] (float64) gets
    the layer's layer_time, local bytes, remote bytes, hops, headers, local reads, copies made, evictions."""
    D = dist.shape[0]
    copy_reads = touch_copies(layer, task_e, task_d, task_src, home, copies, now, eviction, lru, lru_head,
                              lru_tail)
    evictions = apply_copies(layer, want, task_e, task_d, task_src, copies, copy_count, copy_slots, now,
                             eviction, lru, lru_head, lru_tail, copied)
    copy_writes = np.zeros(D, dtype=np.int64)
    n_copied = 0
    for t in range(task_e.shape[0]):
        if copied[t]:
            copy_writes[task_d[t]] += 1
            n_copied += 1
    (layer_time, busy_sum, busy_max, local_b, remote_b, hops, headers, local_reads) = layer_costs(
        task_e, task_d, task_tok, task_src, copy_writes, dist, route_off, route_links, n_links, expert_bytes,
        header_bytes, flops_per_token, flops_per_ns, hbm_rate, link_rate, hbm_latency, hop_latency,
        die_busy, die_tokens, link_bytes, dram_bytes, d2d_bytes)
    selections = 0
    for t in range(task_tok.shape[0]):
        selections += task_tok[t]
    acc_i[ACC_TOKEN_SELECTIONS] += selections
    acc_i[ACC_HOPS] += hops
    acc_i[ACC_REMOTE_READ_BYTES] += remote_b
    acc_i[ACC_LOCAL_READ_BYTES] += local_b
    acc_i[ACC_LOCAL_WRITE_BYTES] += n_copied * expert_bytes
    acc_i[ACC_HEADER_BYTES] += headers
    acc_i[ACC_WEIGHT_READS] += task_e.shape[0]
    acc_i[ACC_LOCAL_WEIGHT_READS] += local_reads
    acc_i[ACC_COPIES_MADE] += n_copied
    acc_i[ACC_COPY_READS] += copy_reads
    acc_i[ACC_EVICTIONS] += evictions
    acc_f[ACC_BUSY_SUM] += busy_sum
    acc_f[ACC_BUSY_MAX_SUM] += busy_max
    acc_f[ACC_LAYER_TIME_SUM] += layer_time
    if step == 0:
        acc_f[ACC_PREFILL_TIME] += layer_time
    else:
        acc_f[ACC_DECODE_TIME] += layer_time
        acc_i[ACC_DECODE_TOKEN_LAYERS] += step_tokens
    if pred_mode != PRED_NONE:
        E = next_counts.shape[0]
        if pred_mode == PRED_COPIED:
            predicted = np.zeros(E, dtype=np.bool_)
            for t in range(task_e.shape[0]):
                if copied[t]:
                    predicted[task_e[t]] = True
        hits = 0
        size = 0
        active = 0
        for e in range(E):
            nxt = next_counts[e] > 0
            if predicted[e]:
                size += 1
                if nxt:
                    hits += 1
            if nxt:
                active += 1
        acc_i[ACC_PRED_HITS] += hits
        acc_i[ACC_PRED_SIZE] += size
        acc_i[ACC_NEXT_ACTIVE] += active
        acc_i[ACC_PRED_LAYERS] += 1
    layer_out[0] = layer_time
    layer_out[1] = local_b
    layer_out[2] = remote_b
    layer_out[3] = hops
    layer_out[4] = headers
    layer_out[5] = local_reads
    layer_out[6] = n_copied
    layer_out[7] = evictions
    return selections
