"""One layer of the circuit link model: the chains of the layer's tasks laid out with their routes and the
sizes of every resource's wait queue, the initial issue stages, the event loop (links/circuit_engine.py), then
the layer's figures (time, busy dies, bytes, hops, the bound) and its remote bytes into the run's traffic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from waferview.links.circuit_engine import ISSUE, MATRICES, _events
from waferview.wafer.routes import route_into


@njit(nogil=True, cache=True)
def simulate_layer(state, ctx, step, layer, position, tasks, store, buffers):
    mesh = ctx.mesh
    D = mesh.num_dies
    home = ctx.home
    task_e, task_d, task_tok, task_src, copied = tasks.expert, tasks.die, tasks.tokens, tasks.source, tasks.copied
    T = task_e.shape[0]
    link_resource = state.link_resource
    lock_at_creation, head_of_line = state.lock_at_creation, state.head_of_line
    # ---- chains, in (expert, matrix) order: the plan sorted by expert, stably; a remote fetch's source and
    # both its routes are fixed by the task, so they are laid out now: request links, request resources,
    # data links, data resources (the resources are where the queues' sizes come from)
    order = np.argsort(task_e, kind="mergesort")
    C = T * MATRICES
    route_room = mesh.width + mesh.height
    pool = np.empty(C * (4 * route_room + 12) + 16, dtype=np.int64)
    n_pool = 0
    ch = (np.empty(C, dtype=np.int64), np.empty(C, dtype=np.int64), np.zeros(C, dtype=np.int64),
          np.empty(C, dtype=np.int64), np.zeros(C, dtype=np.bool_), np.zeros(C, dtype=np.int64),
          np.zeros(C, dtype=np.int64), np.zeros(C, dtype=np.int64))
    ch_task, ch_matrix, _, ch_src, _, ch_hops, ch_req0, ch_data0 = ch
    R = 3 * D + state.n_link_resources
    q_cap = np.zeros(R, dtype=np.int64)   # stages that can wait on each resource (each waits once at most)
    route = np.empty(route_room, dtype=np.int64)
    for i in range(T):
        t = order[i]
        d = task_d[t]
        e = task_e[t]
        src = home[e]
        if ctx.read_nearest and task_src[t] != d:
            src = task_src[t]
        for m in range(MATRICES):
            c = i * MATRICES + m
            ch_task[c] = t
            ch_matrix[c] = m
            ch_src[c] = src
            q_cap[d] += 2            # port: issue, local LLC fill
            q_cap[D + d] += 2        # DRAM: local read, copy write
            q_cap[2 * D + d] += 1    # compute
            if home[e] != d:         # a fetch is possible: its legs, the holder's DRAM and port
                q_cap[src] += 2
                q_cap[D + src] += 1
                ch_req0[c] = n_pool
                h = route_into(mesh, d, src, route)
                ch_hops[c] = h
                n_pool = _lay_leg(route, h, pool, n_pool, q_cap, link_resource, D)
                ch_data0[c] = n_pool
                route_into(mesh, src, d, route)
                n_pool = _lay_leg(route, h, pool, n_pool, q_cap, link_resource, D)
    q_off = np.zeros(R, dtype=np.int64)
    for r in range(1, R):
        q_off[r] = q_off[r - 1] + q_cap[r - 1]
    total = q_off[R - 1] + q_cap[R - 1] if R > 0 else 0
    res = (np.zeros(R, dtype=np.bool_), np.zeros(R, dtype=np.int64), np.empty(total + 1, dtype=np.int64),
           np.empty(total + 1, dtype=np.int64), q_off, np.zeros(R, dtype=np.int64))
    # ---- stages: at most 11 a chain, twice that when creation is deferred; every entry written when made
    S = C * (11 if lock_at_creation else 22) + 1
    # a stage's fields: time, kind, chain, priority, admitted, first resource, resource count, the stage it
    # creates (creation deferred), its wait key
    st = (np.empty(S, dtype=np.int64), np.empty(S, dtype=np.int64), np.empty(S, dtype=np.int64),
          np.empty(S, dtype=np.int64), np.zeros(S, dtype=np.bool_), np.empty(S, dtype=np.int64),
          np.empty(S, dtype=np.int64), np.empty(S if not lock_at_creation else 1, dtype=np.int64),
          np.empty(S, dtype=np.int64))
    st_time, st_kind, st_chain, st_prio, _, st_res0, st_nres, _, _ = st
    admit_list = np.empty(S, dtype=np.int64)
    work = (np.empty(S, dtype=np.int64), np.empty(S, dtype=np.int64), np.empty(route_room + 4, dtype=np.int64),
            admit_list, pool,
            np.empty(S if not head_of_line else 1, dtype=np.int64),
            np.empty(S if not head_of_line else 1, dtype=np.int64),
            np.empty(2, dtype=np.int64), np.empty(2, dtype=np.int64), np.empty(2, dtype=np.int64))
    out = (np.full(D, -1, dtype=np.int64), np.zeros(D, dtype=np.int64), np.zeros(D), np.zeros(D), np.zeros(D),
           np.zeros(D), buffers.link_bytes, buffers.die_hbm_bytes, buffers.die_d2d_bytes, buffers.copy_writes,
           np.zeros(8, dtype=np.int64), np.zeros(3), np.zeros(C, dtype=np.bool_))
    span_start, span_end, die_compute, die_dram, die_in, die_port = out[0], out[1], out[2], out[3], out[4], out[5]
    buffers.link_bytes[:] = 0
    buffers.die_hbm_bytes[:] = 0
    buffers.die_d2d_bytes[:] = 0
    buffers.copy_writes[:] = 0
    for t in range(T):
        copied[t] = False
    # ---- the initial issue stages, to be admitted first
    n_st = 0
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
        admit_list[n_st] = n_st
        n_st += 1
    _events(state, ctx, layer, position, tasks, store, st, ch, res, work, out, n_st, n_pool)
    counts, sums = out[10], out[11]
    hops, headers, local_slices, copy_reads, evictions, events, llc_hits, end = (counts[0], counts[1], counts[2],
                                                                               counts[3], counts[4], counts[5],
                                                                               counts[6], counts[7])
    local_bytes, remote_bytes, write_bytes = sums[0], sums[1], sums[2]
    _add_traffic(buffers.run_traffic, out[12], ch_src, ch_task, task_d, int(round(remote_bytes)))

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
def _lay_leg(route, h, pool, n_pool, q_cap, link_resource, D):
    """A leg's h links, then their h resources, into the pool from n_pool (each resource's queue one entry
    longer); returns the pool's new length."""
    for k in range(h):
        pool[n_pool + k] = route[k]
        pool[n_pool + h + k] = 3 * D + link_resource[route[k]]
        q_cap[3 * D + link_resource[route[k]]] += 1
    return n_pool + 2 * h


@njit(nogil=True, cache=True)
def _add_traffic(traffic, held, ch_src, ch_task, task_d, remote_bytes):
    """The layer's remote bytes (the slices read from a holder's DRAM; a slice a holder's LLC served is not a
    remote read) into the run's (holder, reader) matrix: whole bytes per slice, the first ones one byte more
    when a slice is not a whole number of bytes, so the matrix adds up to remote_read_bytes exactly."""
    n = 0
    for c in range(held.shape[0]):
        if held[c]:
            n += 1
    if n == 0:
        return
    base = remote_bytes // n
    extra = remote_bytes - base * n
    k = 0
    for c in range(held.shape[0]):
        if held[c]:
            traffic[ch_src[c], task_d[ch_task[c]]] += base + (1 if k < extra else 0)
            k += 1
