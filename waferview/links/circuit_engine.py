"""The event engine of the circuit link model (links/circuit.py says what it simulates; tests/reference_circuit.py
is the slow, obvious restatement it agrees with exactly, event for event).

Everything is arrays: stages (time, kind, chain, resources, admitted), chains (task, matrix, start, flags),
resources (locked, free_at, a wait queue each: a row of q_stage / q_seq), the event heap. Layers start at
time 0 (a layer depends only on the LLC and the copy store it starts with, not on when it starts).
Order matters as much as time: successors are created in the study's order, wake-ups follow the released
resources' order, and the heaps make CPython heapq's moves (links/heaps.py), so equal times resolve the same.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from waferview.links.heaps import heapify_wait, pop_time, pop_wait, push_time, push_wait
from waferview.sim.copystore import count_read, holds_slice, read_slice, write_slice
from waferview.wafer.routes import route_into

# stage kinds
ISSUE, LOCAL_READ, REQUEST_LEG, HOLDER_READ, REMOTE_LLC_READ, DATA_LEG = 0, 1, 2, 3, 4, 5
LOCAL_FILL, REMOTE_FILL, COPY_WRITE, COMPUTE, DONE, CREATE = 6, 7, 8, 9, 10, 11
MATRICES = 3


@njit(nogil=True, cache=True, inline="always")
def _ceil(x):
    return math.ceil(x)


@njit(nogil=True, cache=True)
def _efficiency(bounds, values, tokens):
    for i in range(bounds.shape[0]):
        if bounds[i] < 0 or tokens <= bounds[i]:
            return values[i]
    return values[values.shape[0] - 1]


@njit(nogil=True, cache=True)
def _llc_holds(llc, llc_len, d, key, sets, expert):
    s = expert % sets
    for w in range(llc_len[d, s]):
        if llc[d, s, w] == key:
            return True
    return False


@njit(nogil=True, cache=True)
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


@njit(nogil=True, cache=True)
def _admit(stages, n, st_time, st_prio, st_admitted, st_res0, st_nres, pool, locked, free_at, heap, n_heap,
           q_stage, q_seq, q_len, seq):
    """Admission of newly created stages, in creation order: a stage whose resources are all free locks them
    and starts no earlier than any is free; any other waits on every one of them (free ones included).
    Returns (q_stage, q_seq, seq, n_heap): the queue rows grow (doubling) when one is full."""
    for k in range(n):
        s = stages[k]
        free = True
        for j in range(st_res0[s], st_res0[s] + st_nres[s]):
            if locked[pool[j]]:
                free = False
                break
        if free:
            for j in range(st_res0[s], st_res0[s] + st_nres[s]):
                r = pool[j]
                locked[r] = True
                if st_time[s] < free_at[r]:
                    st_time[s] = free_at[r]
            st_admitted[s] = True
            n_heap = push_time(heap, n_heap, s, st_time)
        else:
            for j in range(st_res0[s], st_res0[s] + st_nres[s]):
                r = pool[j]
                if q_len[r] >= q_stage.shape[1]:
                    cap = q_stage.shape[1]
                    bigger_s = np.empty((q_stage.shape[0], 2 * cap), dtype=np.int64)
                    bigger_q = np.empty((q_stage.shape[0], 2 * cap), dtype=np.int64)
                    bigger_s[:, :cap] = q_stage
                    bigger_q[:, :cap] = q_seq
                    q_stage, q_seq = bigger_s, bigger_q
                q_len[r] = push_wait(q_stage[r], q_seq[r], q_len[r], s, seq, st_time, st_prio)
                seq += 1
    return q_stage, q_seq, seq, n_heap


@njit(nogil=True, cache=True)
def simulate_layer(state, ctx, step, layer, position, tasks, store, buffers):
    mesh, rates = ctx.mesh, ctx.rates
    D = mesh.num_dies
    E = store.copies.shape[2]
    home = ctx.home
    task_e, task_d, task_tok, task_src, want, copied = (tasks.expert, tasks.die, tasks.tokens, tasks.source,
                                                        tasks.want, tasks.copied)
    T = task_e.shape[0]
    link_resource = state.link_resource
    llc, llc_len = state.llc, state.llc_len
    sets = llc.shape[1]
    use_llc = state.llc_hits
    slice_bytes = state.slice_bytes
    hbm_rate, link_rate = rates.hbm_rate, rates.link_rate
    dram_lat, hop_ns = rates.hbm_latency, rates.hop_latency
    request_ser = _ceil(rates.header_bytes / link_rate)
    data_ser = _ceil(slice_bytes / link_rate)
    holder_ns = int(dram_lat) + _ceil(slice_bytes / hbm_rate)

    # ---- chains, in (expert, matrix) order: the plan sorted by expert, stably
    order = np.argsort(task_e, kind="mergesort")
    C = T * MATRICES
    ch_task = np.empty(C, dtype=np.int64)
    ch_matrix = np.empty(C, dtype=np.int64)
    ch_start = np.zeros(C, dtype=np.int64)
    ch_src = np.empty(C, dtype=np.int64)      # where a remote fetch reads from (set at issue)
    ch_via_llc = np.zeros(C, dtype=np.bool_)
    for i in range(T):
        for m in range(MATRICES):
            c = i * MATRICES + m
            ch_task[c] = order[i]
            ch_matrix[c] = m
    # ---- stages (a generous bound: 11 stages a chain, doubled for deferred creation) and their resources
    route_room = mesh.width + mesh.height
    S = C * 24 + 16
    st_time = np.zeros(S, dtype=np.int64)
    st_kind = np.zeros(S, dtype=np.int64)
    st_chain = np.zeros(S, dtype=np.int64)
    st_prio = np.zeros(S, dtype=np.int64)
    st_admitted = np.zeros(S, dtype=np.bool_)
    st_res0 = np.zeros(S, dtype=np.int64)
    st_nres = np.zeros(S, dtype=np.int64)
    st_defer = np.full(S, -1, dtype=np.int64)
    pool = np.empty(C * (2 * route_room + 12) + 16, dtype=np.int64)
    n_pool = 0
    n_st = 0
    # ---- resources: port, DRAM, compute of each die, then the mesh edges (or directed links)
    R = 3 * D + state.n_link_resources
    locked = np.zeros(R, dtype=np.bool_)
    free_at = np.zeros(R, dtype=np.int64)
    q_stage = np.empty((R, 16), dtype=np.int64)
    q_seq = np.empty((R, 16), dtype=np.int64)
    q_len = np.zeros(R, dtype=np.int64)
    seq = 0
    heap = np.empty(S, dtype=np.int64)
    n_heap = 0
    heads = np.empty(route_room + 4, dtype=np.int64)
    waiting = np.empty(S, dtype=np.int64)    # non-head-of-line wake-ups
    wseq = np.empty(S, dtype=np.int64)
    route = np.empty(route_room, dtype=np.int64)
    # successors of the stage being run: (kind, time, resources ...) created after it, in order
    succ_kind = np.empty(2, dtype=np.int64)
    succ_time = np.empty(2, dtype=np.int64)
    succ_res0 = np.empty(2, dtype=np.int64)
    succ_nres = np.empty(2, dtype=np.int64)
    # ---- outputs
    span_start = np.full(D, -1, dtype=np.int64)
    span_end = np.zeros(D, dtype=np.int64)
    die_compute = np.zeros(D)
    die_dram = np.zeros(D)
    die_in = np.zeros(D)
    die_port = np.zeros(D)
    link_bytes = buffers.link_bytes
    link_bytes[:] = 0
    dram_bytes = buffers.die_hbm_bytes
    dram_bytes[:] = 0
    d2d = buffers.die_d2d_bytes
    d2d[:] = 0
    writes = buffers.copy_writes
    writes[:] = 0
    hops = 0
    headers = 0
    local_bytes = 0.0
    remote_bytes = 0.0
    write_bytes = 0.0
    local_slices = 0
    copy_reads = 0
    evictions = 0
    events = 0
    llc_hits = 0
    end = 0
    for t in range(T):
        copied[t] = False

    # ---- the initial issue stages
    for c in range(C):
        t = ch_task[c]
        st_time[n_st] = 0
        st_kind[n_st] = ISSUE
        st_chain[n_st] = c
        st_prio[n_st] = 1 if task_d[t] != home[task_e[t]] else 0
        st_res0[n_st] = n_pool
        st_nres[n_st] = 1
        pool[n_pool] = task_d[t]          # the port of d
        n_pool += 1
        n_st += 1
    pending = 0   # stages created and not yet admitted or queued (processed through `admit_list`)
    admit_list = np.empty(S, dtype=np.int64)
    for s in range(n_st):
        admit_list[pending] = s
        pending += 1

    while True:
        q_stage, q_seq, seq, n_heap = _admit(admit_list, pending, st_time, st_prio, st_admitted, st_res0, st_nres,
                                             pool, locked, free_at, heap, n_heap, q_stage, q_seq, q_len, seq)
        pending = 0
        if n_heap == 0:
            break
        s, n_heap = pop_time(heap, n_heap, st_time)
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
            if m == 0 and home[e] != d:
                count_read(store, layer, d, e)
            own_dram = home[e] == d or holds_slice(store, layer, d, e, m)
            own_llc = use_llc and _llc_holds(llc, llc_len, d, key, sets, e)
            if own_llc:
                llc_hits += 1
                latency = state.llc_hit_ns
                succ_kind[0] = COMPUTE
                succ_res0[0] = n_pool
                pool[n_pool] = 2 * D + d
                n_pool += 1
                succ_nres[0] = 1
                n_succ = 1
                local_slices += 1
            elif own_dram:
                latency = state.issue_ns
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
                src = home[e]
                if ctx.read_nearest and task_src[t] != d:
                    src = task_src[t]
                ch_src[c] = src
                via = use_llc and _llc_holds(llc, llc_len, src, key, sets, e)
                ch_via_llc[c] = via
                if via:
                    llc_hits += 1
                latency = state.issue_ns
                succ_kind[0] = REQUEST_LEG
                succ_res0[0] = n_pool
                n_links = 0
                if state.request_legs:
                    h = route_into(mesh, d, src, route)
                    for i in range(h):
                        pool[n_pool + i] = 3 * D + link_resource[route[i]]
                    n_links = h
                n_pool += n_links
                succ_nres[0] = n_links
                n_succ = 1
            occupancy = latency
        elif kind == REQUEST_LEG:
            src = ch_src[c]
            h = route_into(mesh, d, src, route)
            hops += h
            headers += rates.header_bytes
            for i in range(h):
                link_bytes[route[i]] += rates.header_bytes
            d2d[src] += rates.header_bytes
            latency = int(hop_ns * h) + request_ser
            succ_kind[0] = REMOTE_LLC_READ if ch_via_llc[c] else HOLDER_READ
            succ_res0[0] = n_pool
            pool[n_pool] = src if ch_via_llc[c] else D + src
            n_pool += 1
            succ_nres[0] = 1
            n_succ = 1
            occupancy = latency if state.circuit_latency else request_ser
        elif kind == HOLDER_READ or kind == REMOTE_LLC_READ:
            src = ch_src[c]
            if kind == HOLDER_READ:
                latency = holder_ns
                remote_bytes += slice_bytes
                dram_bytes[src] += int(slice_bytes)
                die_dram[src] += latency
                succ_kind[n_succ] = REMOTE_FILL
                succ_res0[n_succ] = n_pool
                pool[n_pool] = src
                n_pool += 1
                succ_nres[n_succ] = 1
                n_succ += 1
            else:
                latency = state.llc_hit_ns
                die_port[src] += latency
            h = route_into(mesh, src, d, route)
            succ_kind[n_succ] = DATA_LEG
            succ_res0[n_succ] = n_pool
            for i in range(h):
                pool[n_pool + i] = 3 * D + link_resource[route[i]]
            n_pool += h
            succ_nres[n_succ] = h
            n_succ += 1
            occupancy = latency
        elif kind == DATA_LEG:
            src = ch_src[c]
            h = route_into(mesh, src, d, route)
            for i in range(h):
                link_bytes[route[i]] += int(slice_bytes)
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
            occupancy = latency if state.circuit_latency else data_ser
        elif kind == LOCAL_READ:
            read_slice(store, layer, d, e, m, position)
            nbytes = slice_bytes + task_tok[t] * (state.hidden + state.inter) * 3 * 2 / 3
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
            latency = state.llc_fill_ns
            die_port[d if kind == LOCAL_FILL else ch_src[c]] += latency
            succ_kind[0] = DONE
            succ_nres[0] = 0
            n_succ = 1
            occupancy = latency
        elif kind == COPY_WRITE:
            written, evicted = write_slice(store, layer, d, e, m, position)
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
            ops = 2 * 3 * state.hidden * state.inter * n / 3
            latency = _ceil(ops / (state.compute_rate * _efficiency(state.eff_bounds, state.eff_values, n)))
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
            if state.lock_at_creation:
                admit_list[pending] = ns
                pending += 1
            else:
                holder = n_st
                n_st += 1
                st_time[holder] = now + latency
                st_kind[holder] = CREATE
                st_defer[holder] = ns
                st_admitted[holder] = True
                st_nres[holder] = 0
                n_heap = push_time(heap, n_heap, holder, st_time)
        # the study admits successors before it releases this stage's resources: do the same
        q_stage, q_seq, seq, n_heap = _admit(admit_list, pending, st_time, st_prio, st_admitted, st_res0, st_nres,
                                             pool, locked, free_at, heap, n_heap, q_stage, q_seq, q_len, seq)
        pending = 0
        # release this stage's resources, then wake their waiters
        release = now + occupancy
        for j in range(st_res0[s], st_res0[s] + st_nres[s]):
            r = pool[j]
            locked[r] = False
            if free_at[r] < release:
                free_at[r] = release
        if state.head_of_line:
            n_heads = 0
            for j in range(st_res0[s], st_res0[s] + st_nres[s]):
                r = pool[j]
                while q_len[r] > 0 and st_admitted[q_stage[r, 0]]:
                    q_len[r] = pop_wait(q_stage[r], q_seq[r], q_len[r], st_time, st_prio)
                if q_len[r] > 0:
                    n_heads = push_time(heads, n_heads, q_stage[r, 0], st_time)
            while n_heads > 0:
                w, n_heads = pop_time(heads, n_heads, st_time)
                if _try_admit(w, release, st_admitted, st_res0, st_nres, pool, locked, free_at, st_time):
                    n_heap = push_time(heap, n_heap, w, st_time)
        else:
            n_w = 0
            for j in range(st_res0[s], st_res0[s] + st_nres[s]):
                r = pool[j]
                for i in range(q_len[r]):
                    w = q_stage[r, i]
                    if st_admitted[w]:
                        continue
                    seen = -1
                    for k in range(n_w):
                        if waiting[k] == w:
                            seen = k
                            break
                    if seen < 0:
                        waiting[n_w] = w
                        wseq[n_w] = q_seq[r, i]
                        n_w += 1
                    elif q_seq[r, i] < wseq[seen]:
                        wseq[seen] = q_seq[r, i]
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
                if _try_admit(w, release, st_admitted, st_res0, st_nres, pool, locked, free_at, st_time):
                    n_heap = push_time(heap, n_heap, w, st_time)
            for j in range(st_res0[s], st_res0[s] + st_nres[s]):
                r = pool[j]
                kept = 0
                for i in range(q_len[r]):
                    if not st_admitted[q_stage[r, i]]:
                        q_stage[r, kept] = q_stage[r, i]
                        q_seq[r, kept] = q_seq[r, i]
                        kept += 1
                q_len[r] = kept
                heapify_wait(q_stage[r], q_seq[r], kept, st_time, st_prio)
        end = now

    # ---- the layer's figures
    busy_sum = 0.0
    busy_max = 0.0
    bound_die = -1
    for dd in range(D):
        busy = float(span_end[dd] - span_start[dd]) if span_start[dd] >= 0 else 0.0
        buffers.die_busy[dd] = busy
        buffers.die_tokens[dd] = 0
        buffers.die_parts[dd, 0] = die_compute[dd]
        buffers.die_parts[dd, 1] = die_dram[dd]
        buffers.die_parts[dd, 2] = die_in[dd]
        buffers.die_parts[dd, 3] = die_port[dd]
        busy_sum += busy
        if busy > busy_max:
            busy_max = busy
            bound_die = dd
    for t in range(T):
        buffers.die_tokens[task_d[t]] += task_tok[t]
    n_copied = 0
    for t in range(T):
        if copied[t]:
            n_copied += 1
    out = buffers.scalars[0]
    out.layer_time = float(end)
    out.busy_sum = busy_sum
    out.busy_max = busy_max
    out.local_bytes = int(round(local_bytes))
    out.remote_bytes = int(round(remote_bytes))
    out.hops = hops
    out.headers = headers
    out.local_reads = local_slices
    out.reads = C   # weight reads are slices here
    out.copy_reads = copy_reads
    out.evictions = evictions
    out.copies_made = n_copied
    out.write_bytes = int(round(write_bytes))
    out.events = events
    out.llc_hits = llc_hits
    out.bound_kind = 0
    out.bound_index = -1
    out.bound_busy = 0.0
    if bound_die >= 0:   # the die whose work ends last; its busiest resource (compute, DRAM, incoming legs)
        kind = 1
        if die_dram[bound_die] > die_compute[bound_die]:
            kind = 2
        if die_in[bound_die] > buffers.die_parts[bound_die, kind - 1]:
            kind = 3
        out.bound_kind = kind
        out.bound_index = bound_die
        out.bound_busy = buffers.die_parts[bound_die, kind - 1]


@njit(nogil=True, cache=True, inline="always")
def _try_admit(s, release, admitted, res0, nres, pool, locked, free_at, time):
    """A woken stage starts only if all its resources are free: at the latest of its time, their free-ats
    and the moment of release. Returns whether it was admitted (the caller pushes it)."""
    if admitted[s]:
        return False
    for j in range(res0[s], res0[s] + nres[s]):
        if locked[pool[j]]:
            return False
    for j in range(res0[s], res0[s] + nres[s]):
        r = pool[j]
        locked[r] = True
        if time[s] < free_at[r]:
            time[s] = free_at[r]
    admitted[s] = True
    if time[s] < release:
        time[s] = release
    return True
