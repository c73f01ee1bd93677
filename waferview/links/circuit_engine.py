"""The event loop of the circuit link model (links/circuit.py says what it simulates; links/circuit_layer.py
lays out one layer and reads its figures; tests/reference_circuit.py is the slow, obvious restatement they
agree with exactly, event for event).

Everything is arrays: stages (time, kind, chain, resources, admitted), chains (task, matrix, start, source,
routes), resources (locked, free_at, a wait queue each: a segment of q_stage / q_seq whose size is bounded
before the layer starts by the stages that can use the resource), the event heap. circuit_layer allocates
them and runs the event loop, _events, which allocates nothing and is compiled without reference counting:
numba counts references to every array a helper is handed, and that cost more than the events themselves.
Layers start at time 0 (a layer depends only on the LLC and the copy store it starts with).
Order matters as much as time: successors are created in the study's order, wake-ups follow the released
resources' order, and the heaps make CPython heapq's moves (links/heaps.py), so equal times resolve the same.
"""

from __future__ import annotations

import math

from numba import njit

from waferview.links.heaps import (heapify_wait, pop_keyed, pop_time, pop_wait, push_keyed, push_time, push_wait,
                                   wait_key)
from waferview.sim.copystore import EVICT_ADMIT, READS, read_slice_of, write_slice_of

# stage kinds
ISSUE, LOCAL_READ, REQUEST_LEG, HOLDER_READ, REMOTE_LLC_READ, DATA_LEG = 0, 1, 2, 3, 4, 5
LOCAL_FILL, REMOTE_FILL, COPY_WRITE, COMPUTE, DONE, CREATE = 6, 7, 8, 9, 10, 11
MATRICES = 3


@njit(nogil=True, cache=True, inline="always")
def _ceil(x):
    return math.ceil(x)


@njit(nogil=True, cache=True, inline="always")
def _efficiency(bounds, values, tokens):
    for i in range(bounds.shape[0]):
        if bounds[i] < 0 or tokens <= bounds[i]:
            return values[i]
    return values[values.shape[0] - 1]


@njit(nogil=True, cache=True, inline="always")
def _llc_holds(llc, llc_len, d, key, sets, expert):
    s = expert % sets
    for w in range(llc_len[d, s]):
        if llc[d, s, w] == key:
            return True
    return False


@njit(nogil=True, cache=True, inline="always")
def _llc_fill(llc, llc_len, d, key, sets, expert):
    """The study's LLC fill: a present key moves to the newest way, else the oldest way goes when full."""
    s = expert % sets
    n = llc_len[d, s]
    ways = llc.shape[2]
    at = -1
    for w in range(n):
        if llc[d, s, w] == key:
            at = w
    if at >= 0:
        for w in range(at, n - 1):
            llc[d, s, w] = llc[d, s, w + 1]
        llc[d, s, n - 1] = key
        return
    if n >= ways:
        for w in range(n - 1):
            llc[d, s, w] = llc[d, s, w + 1]
        llc[d, s, n - 1] = key
        return
    llc[d, s, n] = key
    llc_len[d, s] = n + 1


@njit(nogil=True, cache=True, inline="always")
def _admit(stages, n, st_time, st_prio, st_wkey, st_admitted, st_res0, st_nres, pool, locked, free_at, heap,
           heap_key, n_heap, q_stage, q_seq, q_off, q_len, seq):
    """Admission of newly created stages, in creation order: a stage whose resources are all free locks them
    and starts no earlier than any is free; any other waits on every one of them (free ones included).
    Returns (seq, n_heap)."""
    for k in range(n):
        s = stages[k]
        free = True
        for j in range(st_res0[s], st_res0[s] + st_nres[s]):
            if locked[pool[j]]:
                free = False
                break
        if free:
            _lock_all(s, st_res0, st_nres, pool, locked, free_at, st_time)
            st_admitted[s] = True
            n_heap = push_keyed(heap, heap_key, n_heap, s, st_time[s])
        else:
            st_wkey[s] = wait_key(st_time[s], st_prio[s])
            for j in range(st_res0[s], st_res0[s] + st_nres[s]):
                r = pool[j]
                q_len[r] = push_wait(q_stage, q_seq, q_off[r], q_len[r], s, seq, st_wkey)
                seq += 1
    return seq, n_heap


@njit(nogil=True, cache=True, inline="always")
def _lock_all(s, res0, nres, pool, locked, free_at, time):
    """Stage s locks all its resources and starts no earlier than any of them is free."""
    for j in range(res0[s], res0[s] + nres[s]):
        r = pool[j]
        locked[r] = True
        if time[s] < free_at[r]:
            time[s] = free_at[r]


@njit(nogil=True, cache=True, inline="always")
def _try_admit(s, release, admitted, res0, nres, pool, locked, free_at, time, prio, wkey):
    """A woken stage starts only if all its resources are free: at the latest of its time, their free-ats
    and the moment of release. Returns whether it was admitted (the caller pushes it). Its new time is
    also its wait key in the queues it still sits in (read live there, as the study reads it)."""
    if admitted[s]:
        return False
    for j in range(res0[s], res0[s] + nres[s]):
        if locked[pool[j]]:
            return False
    _lock_all(s, res0, nres, pool, locked, free_at, time)
    admitted[s] = True
    if time[s] < release:
        time[s] = release
    wkey[s] = wait_key(time[s], prio[s])
    return True


@njit(nogil=True, cache=True, _nrt=False)
def _events(state, ctx, layer, position, tasks, store, st, ch, res, work, out, n_st, n_pool):
    """The event loop of one layer (see the module docstring): no allocation, no reference counting."""
    D = ctx.mesh.num_dies
    home = ctx.home
    rates = ctx.rates
    task_e, task_d, task_tok, want, copied = tasks.expert, tasks.die, tasks.tokens, tasks.want, tasks.copied
    E = store.copies.shape[2]
    copies, count, capacity, lru, lru_head, lru_tail, eviction = (store.copies, store.count, store.capacity,
                                                                  store.lru, store.head, store.tail, store.eviction)
    llc, llc_len = state.llc, state.llc_len
    sets = llc.shape[1]
    use_llc = state.llc_hits
    slice_bytes = state.slice_bytes
    hbm_rate, link_rate = rates.hbm_rate, rates.link_rate
    dram_lat, hop_ns = rates.hbm_latency, rates.hop_latency
    header_bytes = rates.header_bytes
    request_ser = _ceil(header_bytes / link_rate)
    data_ser = _ceil(slice_bytes / link_rate)
    holder_ns = int(dram_lat) + _ceil(slice_bytes / hbm_rate)
    issue_ns, llc_hit_ns, llc_fill_ns = state.issue_ns, state.llc_hit_ns, state.llc_fill_ns
    request_legs, circuit_latency = state.request_legs, state.circuit_latency
    lock_at_creation, head_of_line = state.lock_at_creation, state.head_of_line
    hidden, inter, compute_rate = state.hidden, state.inter, state.compute_rate
    eff_bounds, eff_values = state.eff_bounds, state.eff_values
    st_time, st_kind, st_chain, st_prio, st_admitted, st_res0, st_nres, st_defer, st_wkey = st
    ch_task, ch_matrix, ch_start, ch_src, ch_via_llc, ch_hops, ch_req0, ch_data0 = ch
    locked, free_at, q_stage, q_seq, q_off, q_len = res
    heap, heap_key, heads, admit_list, pool, waiting, wseq, succ_kind, succ_res0, succ_nres = work
    (span_start, span_end, die_compute, die_dram, die_in, die_port, link_bytes, dram_bytes, d2d, writes, counts,
     sums, held) = out
    hops = headers = local_slices = copy_reads = evictions = events = llc_hits = end = 0
    local_bytes = remote_bytes = write_bytes = 0.0
    seq = 0
    n_heap = 0
    pending = n_st   # the initial issue stages, in admit_list
    while True:
        seq, n_heap = _admit(admit_list, pending, st_time, st_prio, st_wkey, st_admitted, st_res0, st_nres, pool,
                             locked, free_at, heap, heap_key, n_heap, q_stage, q_seq, q_off, q_len, seq)
        pending = 0
        if n_heap == 0:
            break
        s, n_heap = pop_keyed(heap, heap_key, n_heap)
        now = st_time[s]
        kind = st_kind[s]
        if kind == CREATE:   # lock_at_creation off: the deferred stage is created now
            admit_list[0] = st_defer[s]
            pending = 1
            continue
        events += 1
        c = st_chain[s]
        t = ch_task[c]
        d = task_d[t]
        e = task_e[t]
        m = ch_matrix[c]
        key = (layer * E + e) * MATRICES + m
        n_succ = 0
        latency = 0
        occupancy = 0
        if kind == ISSUE:
            ch_start[c] = now
            if m == 0 and home[e] != d and eviction == EVICT_ADMIT:
                lru[d, layer * E + e, READS] += 1
            own_dram = home[e] == d or (copies[layer, d, e] >> m) & 1 == 1
            own_llc = use_llc and _llc_holds(llc, llc_len, d, key, sets, e)
            if own_llc:
                llc_hits += 1
                latency = llc_hit_ns
                succ_kind[0] = COMPUTE
                succ_res0[0] = n_pool
                pool[n_pool] = 2 * D + d
                n_pool += 1
                succ_nres[0] = 1
                n_succ = 1
                local_slices += 1
            elif own_dram:
                latency = issue_ns
                succ_kind[0] = LOCAL_READ
                succ_res0[0] = n_pool
                pool[n_pool] = D + d
                n_pool += 1
                succ_nres[0] = 1
                n_succ = 1
                local_slices += 1
                if home[e] != d:
                    copy_reads += 1
            else:
                src = ch_src[c]
                via = use_llc and _llc_holds(llc, llc_len, src, key, sets, e)
                ch_via_llc[c] = via
                if via:
                    llc_hits += 1
                latency = issue_ns
                # both routes were laid out in the pool before the layer (setup): request links, request
                # resources, data links, data resources
                h = ch_hops[c]
                succ_kind[0] = REQUEST_LEG
                succ_res0[0] = ch_req0[c] + h
                succ_nres[0] = h if request_legs else 0
                n_succ = 1
            occupancy = latency
        elif kind == REQUEST_LEG:
            src = ch_src[c]
            h = ch_hops[c]
            hops += h
            headers += header_bytes
            for i in range(h):
                link_bytes[pool[ch_req0[c] + i]] += header_bytes
            d2d[src] += header_bytes
            latency = int(hop_ns * h) + request_ser
            succ_kind[0] = REMOTE_LLC_READ if ch_via_llc[c] else HOLDER_READ
            succ_res0[0] = n_pool
            pool[n_pool] = src if ch_via_llc[c] else D + src
            n_pool += 1
            succ_nres[0] = 1
            n_succ = 1
            occupancy = latency if circuit_latency else request_ser
        elif kind == HOLDER_READ or kind == REMOTE_LLC_READ:
            src = ch_src[c]
            if kind == HOLDER_READ:
                latency = holder_ns
                remote_bytes += slice_bytes
                held[c] = True
                dram_bytes[src] += int(slice_bytes)
                die_dram[src] += latency
                succ_kind[n_succ] = REMOTE_FILL
                succ_res0[n_succ] = n_pool
                pool[n_pool] = src
                n_pool += 1
                succ_nres[n_succ] = 1
                n_succ += 1
            else:
                latency = llc_hit_ns
                die_port[src] += latency
            succ_kind[n_succ] = DATA_LEG
            succ_res0[n_succ] = ch_data0[c] + ch_hops[c]
            succ_nres[n_succ] = ch_hops[c]
            n_succ += 1
            occupancy = latency
        elif kind == DATA_LEG:
            h = ch_hops[c]
            for i in range(h):
                link_bytes[pool[ch_data0[c] + i]] += int(slice_bytes)
            d2d[d] += int(slice_bytes)
            latency = int(hop_ns * h) + data_ser
            die_in[d] += latency
            if want[t]:
                succ_kind[n_succ] = COPY_WRITE
                succ_res0[n_succ] = n_pool
                pool[n_pool] = D + d
                n_pool += 1
                succ_nres[n_succ] = 1
                n_succ += 1
            succ_kind[n_succ] = COMPUTE
            succ_res0[n_succ] = n_pool
            pool[n_pool] = 2 * D + d
            n_pool += 1
            succ_nres[n_succ] = 1
            n_succ += 1
            occupancy = latency if circuit_latency else data_ser
        elif kind == LOCAL_READ:
            read_slice_of(copies, lru, lru_head, lru_tail, eviction, layer, d, e, m, position)
            nbytes = slice_bytes + task_tok[t] * (hidden + inter) * 3 * 2 / 3
            latency = int(dram_lat) + _ceil(nbytes / hbm_rate)
            local_bytes += nbytes
            dram_bytes[d] += int(nbytes)
            die_dram[d] += latency
            succ_kind[0] = LOCAL_FILL
            succ_res0[0] = n_pool
            pool[n_pool] = d
            succ_nres[0] = 1
            succ_kind[1] = COMPUTE
            succ_res0[1] = n_pool + 1
            pool[n_pool + 1] = 2 * D + d
            succ_nres[1] = 1
            n_pool += 2
            n_succ = 2
            occupancy = latency
        elif kind == LOCAL_FILL or kind == REMOTE_FILL:
            if use_llc:
                _llc_fill(llc, llc_len, d if kind == LOCAL_FILL else ch_src[c], key, sets, e)
            latency = llc_fill_ns
            die_port[d if kind == LOCAL_FILL else ch_src[c]] += latency
            succ_kind[0] = DONE
            succ_nres[0] = 0
            n_succ = 1
            occupancy = latency
        elif kind == COPY_WRITE:
            written, evicted = write_slice_of(copies, count, capacity, lru, lru_head, lru_tail, eviction, layer, d, e,
                                              m, position)
            evictions += evicted
            if written:
                copied[t] = True
                writes[d] += 1
            latency = holder_ns
            write_bytes += slice_bytes
            dram_bytes[d] += int(slice_bytes)
            die_dram[d] += latency
            succ_kind[0] = DONE
            succ_nres[0] = 0
            n_succ = 1
            occupancy = latency
        elif kind == COMPUTE:
            n = task_tok[t]
            ops = 2 * 3 * hidden * inter * n / 3
            latency = _ceil(ops / (compute_rate * _efficiency(eff_bounds, eff_values, n)))
            die_compute[d] += latency
            succ_kind[0] = DONE
            succ_nres[0] = 0
            n_succ = 1
            occupancy = latency
        else:   # DONE: the chain's span on its executing die
            if span_start[d] < 0 or ch_start[c] < span_start[d]:
                span_start[d] = ch_start[c]
            if now > span_end[d]:
                span_end[d] = now
        # successors, created now (or, without lock at creation, when this stage ends)
        for k in range(n_succ):
            ns = n_st
            n_st += 1
            st_time[ns] = now + latency
            st_kind[ns] = succ_kind[k]
            st_chain[ns] = c
            st_prio[ns] = st_prio[s]
            st_res0[ns] = succ_res0[k]
            st_nres[ns] = succ_nres[k]
            if lock_at_creation:
                admit_list[pending] = ns
                pending += 1
            else:
                holder = n_st
                n_st += 1
                st_time[holder] = now + latency
                st_kind[holder] = CREATE
                st_defer[holder] = ns
                st_admitted[holder] = True
                st_res0[holder] = 0
                st_nres[holder] = 0
                st_chain[holder] = c
                st_prio[holder] = 0
                n_heap = push_keyed(heap, heap_key, n_heap, holder, st_time[holder])
        # the study admits successors before it releases this stage's resources: do the same
        seq, n_heap = _admit(admit_list, pending, st_time, st_prio, st_wkey, st_admitted, st_res0, st_nres, pool,
                             locked, free_at, heap, heap_key, n_heap, q_stage, q_seq, q_off, q_len, seq)
        pending = 0
        # release this stage's resources, then wake their waiters
        release = now + occupancy
        for j in range(st_res0[s], st_res0[s] + st_nres[s]):
            r = pool[j]
            locked[r] = False
            if free_at[r] < release:
                free_at[r] = release
        if head_of_line:
            n_heads = 0
            for j in range(st_res0[s], st_res0[s] + st_nres[s]):
                r = pool[j]
                base = q_off[r]
                while q_len[r] > 0 and st_admitted[q_stage[base]]:
                    q_len[r] = pop_wait(q_stage, q_seq, base, q_len[r], st_wkey)
                if q_len[r] > 0:
                    n_heads = push_time(heads, n_heads, q_stage[base], st_time)
            while n_heads > 0:
                w, n_heads = pop_time(heads, n_heads, st_time)
                if _try_admit(w, release, st_admitted, st_res0, st_nres, pool, locked, free_at, st_time, st_prio,
                              st_wkey):
                    n_heap = push_keyed(heap, heap_key, n_heap, w, st_time[w])
        else:
            n_w = 0
            for j in range(st_res0[s], st_res0[s] + st_nres[s]):
                r = pool[j]
                for i in range(q_off[r], q_off[r] + q_len[r]):
                    w = q_stage[i]
                    if st_admitted[w]:
                        continue
                    seen = -1
                    for k in range(n_w):
                        if waiting[k] == w:
                            seen = k
                            break
                    if seen < 0:
                        waiting[n_w] = w
                        wseq[n_w] = q_seq[i]
                        n_w += 1
                    elif q_seq[i] < wseq[seen]:
                        wseq[seen] = q_seq[i]
            # in queue order: priority desc, time asc, arrival asc (insertion sort: a few at a time)
            for i in range(1, n_w):
                w, q = waiting[i], wseq[i]
                k = i - 1
                while k >= 0 and (st_prio[w] > st_prio[waiting[k]] or (st_prio[w] == st_prio[waiting[k]] and (
                        st_time[w] < st_time[waiting[k]] or (st_time[w] == st_time[waiting[k]] and q < wseq[k])))):
                    waiting[k + 1] = waiting[k]
                    wseq[k + 1] = wseq[k]
                    k -= 1
                waiting[k + 1] = w
                wseq[k + 1] = q
            for i in range(n_w):
                w = waiting[i]
                if _try_admit(w, release, st_admitted, st_res0, st_nres, pool, locked, free_at, st_time, st_prio,
                              st_wkey):
                    n_heap = push_keyed(heap, heap_key, n_heap, w, st_time[w])
            for j in range(st_res0[s], st_res0[s] + st_nres[s]):
                r = pool[j]
                base = q_off[r]
                kept = 0
                for i in range(q_len[r]):
                    if not st_admitted[q_stage[base + i]]:
                        q_stage[base + kept] = q_stage[base + i]
                        q_seq[base + kept] = q_seq[base + i]
                        kept += 1
                q_len[r] = kept
                heapify_wait(q_stage, q_seq, base, kept, st_wkey)
        end = now

    counts[0] = hops
    counts[1] = headers
    counts[2] = local_slices
    counts[3] = copy_reads
    counts[4] = evictions
    counts[5] = events
    counts[6] = llc_hits
    counts[7] = end
    sums[0] = local_bytes
    sums[1] = remote_bytes
    sums[2] = write_bytes
