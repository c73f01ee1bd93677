"""`allo`: the paper's placement-aware task distribution (Algorithm 1), after its one known implementation.

Estimated time of a die (ns): est(d) = max(max(compute_local, dram), d2d_in) + compute_remote, from the
tasks placed so far in this layer (compute over flops/ns, dram = bytes its HBM serves over the HBM rate,
d2d_in = weight bytes arriving over the link rate; no latencies).

Experts are placed coldest first, hottest last (ties: lower id first). For an expert with r tokens:
  - holders = its home die and dies holding a predictor copy; candidates = holders and their distance-1
    neighbours. A candidate that holds the expert reads it locally; any other reads it from its nearest
    holder (the engine's rule: smallest distance, ties home, then lowest id).
  - candidates are ranked by est(d), plus for non-holders the transfer time
    (expert bytes over the link rate + hops x hop latency); ties: the home die, then other holders, then
    lower die id (the engine's nearest-holder order: home first).
  - the first m = min(#candidates, max(max_split, r // max(mean tokens per active expert, 512)))
    candidates are used (the mean is an integer: total tokens // active experts).
  - tokens go in blocks of block_size, each to the candidate minimising max(est of the executing die,
    est of the die it reads from) after adding the block; ties: a holder, then the better-ranked one.
    A die pays the expert's weight read (HBM of the source, plus d2d_in when remote) once per expert.
  - blocks on the same die merge: one task per (expert, die), emitted in die order.

Copies and the greedy order: placing coldest first, a cold expert with a copy can take a copy holder
while that die looks idle, before the die's own hot experts (which only it holds) arrive; it then ends
the layer with one expert read more than with no copies (Llama on 8x3: 7 reads instead of 6 on copy
holders, every layer). So when the layer has copies, the plan is made twice, with and without them,
and the one with the lower estimated layer time (max est over dies) is kept; ties keep the copies.
A predictor therefore never makes allo's own estimate worse.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.modes import register_placement
from waferview.policies.base import PlacementMode
from waferview.wafer.routes import distance


@njit(nogil=True, cache=True)
def allo_tasks(counts, home, copies_l, mesh, rates, block_size, max_split):
    """The tasks of the better of the plans with and without the layer's copies (see the module doc)."""
    task_e, task_d, task_tok, est = allo_plan(counts, home, copies_l, True, mesh, rates, block_size, max_split)
    if not _active_expert_copied(counts, home, copies_l):   # then both plans are the same
        return task_e, task_d, task_tok
    home_e, home_d, home_tok, home_est = allo_plan(counts, home, copies_l, False, mesh, rates, block_size, max_split)
    if home_est < est:
        return home_e, home_d, home_tok
    return task_e, task_d, task_tok


@njit(nogil=True, cache=True)
def _active_expert_copied(counts, home, copies_l):
    for e in range(counts.shape[0]):
        if counts[e] > 0:
            for d in range(copies_l.shape[0]):
                if copies_l[d, e] and d != home[e]:
                    return True
    return False


@njit(nogil=True, cache=True)
def allo_plan(counts, home, copies_l, use_copies, mesh, rates, block_size, max_split):
    """Algorithm 1 with the home dies, plus the copies if use_copies, as holders:
    (task_e, task_d, task_tok, estimated layer time in ns). mesh: wafer.mesh.MeshTables, rates: sim.state.Rates."""
    E = counts.shape[0]
    D = mesh.num_dies
    hop_latency = rates.hop_latency
    est_cl = np.zeros(D)
    est_cr = np.zeros(D)
    est_dram = np.zeros(D)
    est_d2d = np.zeros(D)
    n_active = 0
    total = 0
    for e in range(E):
        if counts[e] > 0:
            n_active += 1
            total += counts[e]
    task_e = np.empty(n_active * D, dtype=np.int64)
    task_d = np.empty(n_active * D, dtype=np.int64)
    task_tok = np.empty(n_active * D, dtype=np.int64)
    if n_active == 0:
        return task_e[:0], task_d[:0], task_tok[:0], 0.0
    active = np.empty(n_active, dtype=np.int64)
    j = 0
    for e in range(E):
        if counts[e] > 0:
            active[j] = e
            j += 1
    order = active[np.argsort(counts[active], kind="mergesort")]  # coldest first, ties lower id
    thr = max(total // n_active, 512)
    read_hbm = rates.expert_bytes / rates.hbm_rate
    read_link = rates.expert_bytes / rates.link_rate
    per_token = rates.flops_per_token / rates.flops_per_ns
    src = np.empty(D, dtype=np.int64)
    holder = np.zeros(D, dtype=np.bool_)
    cand = np.empty(D, dtype=np.int64)
    key = np.empty(D)
    assigned = np.zeros(D, dtype=np.int64)
    n_tasks = 0
    holders = np.empty(D, dtype=np.int64)
    for e in order:
        r = counts[e]
        # holders: home first, then copies by die id (the engine's nearest-holder tie order)
        holders[0] = home[e]
        n_h = 1
        for h in range(D):
            if use_copies and copies_l[h, e] and h != home[e]:
                holders[n_h] = h
                n_h += 1
        n_cand = 0
        for d in range(D):
            s = holders[0]
            ds = distance(mesh, d, s)
            for i in range(1, n_h):
                di = distance(mesh, d, holders[i])
                if di < ds:
                    s = holders[i]
                    ds = di
            src[d] = s
            holder[d] = s == d
            assigned[d] = 0
            if ds <= 1:
                base = max(max(est_cl[d], est_dram[d]), est_d2d[d]) + est_cr[d]
                if not holder[d]:
                    base += read_link + ds * hop_latency
                # insertion sort by (key, rank, id), rank 0 = home, 1 = other holder, 2 = not a holder;
                # d ascending so id ties are already in order
                rank_d = 0 if d == home[e] else (1 if holder[d] else 2)
                i = n_cand
                while i > 0 and (key[i - 1] > base or (key[i - 1] == base and rank_d < (
                        0 if cand[i - 1] == home[e] else (1 if holder[cand[i - 1]] else 2)))):
                    key[i] = key[i - 1]
                    cand[i] = cand[i - 1]
                    i -= 1
                key[i] = base
                cand[i] = d
                n_cand += 1
        m = min(n_cand, max(max_split, r // thr))
        remaining = r
        while remaining > 0:
            b = min(block_size, remaining)
            t_block = b * per_token
            best = -1
            best_cost = 0.0
            for i in range(m):
                d = cand[i]
                first = assigned[d] == 0
                if holder[d]:
                    dram = est_dram[d] + (read_hbm if first else 0.0)
                    cost = max(max(est_cl[d] + t_block, dram), est_d2d[d]) + est_cr[d]
                else:
                    s = src[d]
                    d2d = est_d2d[d] + (read_link if first else 0.0)
                    cost_exec = max(max(est_cl[d], est_dram[d]), d2d) + est_cr[d] + t_block
                    sdram = est_dram[s] + (read_hbm if first else 0.0)
                    cost_src = max(max(est_cl[s], sdram), est_d2d[s]) + est_cr[s]
                    cost = max(cost_exec, cost_src)
                if best < 0 or cost < best_cost or (cost == best_cost and holder[d] and not holder[best]):
                    best = d
                    best_cost = cost
            first = assigned[best] == 0
            if holder[best]:
                est_cl[best] += t_block
                if first:
                    est_dram[best] += read_hbm
            else:
                est_cr[best] += t_block
                if first:
                    est_d2d[best] += read_link
                    est_dram[src[best]] += read_hbm
            assigned[best] += b
            remaining -= b
        for d in range(D):
            if assigned[d] > 0:
                task_e[n_tasks] = e
                task_d[n_tasks] = d
                task_tok[n_tasks] = assigned[d]
                n_tasks += 1
    est_max = 0.0
    for d in range(D):
        est_max = max(est_max, max(max(est_cl[d], est_dram[d]), est_d2d[d]) + est_cr[d])
    return task_e[:n_tasks], task_d[:n_tasks], task_tok[:n_tasks], est_max


class AlloState(NamedTuple):
    block_size: int
    max_split: int


@register_placement(AlloState)
@njit(nogil=True, cache=True)
def allo_placement(state, ctx, step, layer, counts_l, copies_l):
    return allo_tasks(counts_l, ctx.home, copies_l, ctx.mesh, ctx.rates, state.block_size, state.max_split)


class AlloPlacement(PlacementMode):
    name = "allo"
    help = ("the paper's Algorithm 1: holders and their neighbours as candidates, hot experts split, "
            "blocks to the cheapest die")

    def kernel_state(self):
        return AlloState(self.ctx.options.block_size, self.ctx.options.max_split)


MODE = AlloPlacement
