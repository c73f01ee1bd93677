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

--allo-planner study runs the study's own planner instead (policies/allo_study.py: its coarser cost model,
candidates and 512-token blocks).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.modes import register_placement
from waferview.policies.allo_study import STUDY_MIN_CANDIDATES, STUDY_MIN_THRESHOLD, study_allo_tasks
from waferview.policies.base import PlacementMode
from waferview.policies.tasks import copied_experts
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
    any_copy = copied_experts(copies_l)
    for e in range(counts.shape[0]):
        if counts[e] > 0 and any_copy[e]:
            for d in range(copies_l.shape[0]):
                if copies_l[d, e] and d != home[e]:
                    return True
    return False


@njit(nogil=True, cache=True)
def allo_plan(counts, home, copies_l, use_copies, mesh, rates, block_size, max_split):
    """Algorithm 1 with the home dies, plus the copies if use_copies, as holders:
    (task_e, task_d, task_tok, estimated layer time in ns). mesh: wafer.mesh.MeshTables, rates: sim.state.Rates.
    Only the holders and their neighbours are visited (in die order, as a scan of every die would), so a
    big mesh costs what its copies do, not dies x experts x holders."""
    E = counts.shape[0]
    D = mesh.num_dies
    w, h = mesh.width, mesh.height
    hop_latency = rates.hop_latency
    est_cl = np.zeros(D)
    est_cr = np.zeros(D)
    est_dram = np.zeros(D)
    est_d2d = np.zeros(D)
    n_active = 0
    total = 0
    room = 0    # tasks at most: an expert's tasks are at most its blocks, and at most the dies
    for e in range(E):
        if counts[e] > 0:
            n_active += 1
            total += counts[e]
            room += min(D, (counts[e] + block_size - 1) // block_size)
    task_e = np.empty(room, dtype=np.int64)
    task_d = np.empty(room, dtype=np.int64)
    task_tok = np.empty(room, dtype=np.int64)
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
    near = np.zeros(D, dtype=np.bool_)   # die within 1 hop of a holder (reset after each expert)
    cand = np.empty(D, dtype=np.int64)
    key = np.empty(D)
    assigned = np.zeros(D, dtype=np.int64)
    n_tasks = 0
    holders = np.empty(D, dtype=np.int64)
    nearby = np.empty(D, dtype=np.int64)  # the candidates in die order
    any_copy = copied_experts(copies_l) if use_copies else np.zeros(E, dtype=np.uint8)
    for e in order:
        r = counts[e]
        # holders: home first, then copies by die id (the engine's nearest-holder tie order)
        holders[0] = home[e]
        n_h = 1
        if use_copies and any_copy[e]:
            for d in range(D):
                if copies_l[d, e] and d != home[e]:
                    holders[n_h] = d
                    n_h += 1
        # candidates: every die within one hop of a holder, collected then put in die order
        n_near = 0
        for i in range(n_h):
            x, y = mesh.die_x[holders[i]], mesh.die_y[holders[i]]
            for k in range(5):
                nx = x + (0, 0, -1, 1, 0)[k]
                ny = y + (0, -1, 0, 0, 1)[k]
                if 0 <= nx < w and 0 <= ny < h:
                    d = ny * w + nx
                    if not near[d]:
                        near[d] = True
                        nearby[n_near] = d
                        n_near += 1
        nearby[:n_near].sort()
        n_cand = 0
        for j in range(n_near):
            d = nearby[j]
            near[d] = False
            s = holders[0]
            ds = distance(mesh, d, s)
            for i in range(1, n_h):
                di = distance(mesh, d, holders[i])
                if di < ds:
                    s = holders[i]
                    ds = di
            src[d] = s
            holder[d] = s == d
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
        for j in range(n_near):   # only candidates were assigned; in die order, as before
            d = nearby[j]
            if assigned[d] > 0:
                task_e[n_tasks] = e
                task_d[n_tasks] = d
                task_tok[n_tasks] = assigned[d]
                n_tasks += 1
                assigned[d] = 0
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


class StudyAlloState(NamedTuple):
    """--allo-planner study (policies.allo_study)."""
    block_size: int
    threshold: int
    min_candidates: int
    die_rate: float        # operations per ns of a die at efficiency 1
    hbm_rate: float        # bytes per ns before efficiency
    link_rate: float


@register_placement(StudyAlloState)
@njit(nogil=True, cache=True)
def study_allo_placement(state, ctx, step, layer, counts_l, copies_l):
    return study_allo_tasks(counts_l, ctx.home, copies_l, ctx.mesh, ctx.rates, state.die_rate, state.hbm_rate,
                            state.link_rate, state.block_size, state.threshold, state.min_candidates)


ALLO_PLANNERS = ("waferview", "study")


class AlloPlacement(PlacementMode):
    name = "allo"
    help = ("the paper's Algorithm 1: holders and their neighbours as candidates, hot experts split, "
            "blocks to the cheapest die")

    def kernel_state(self):
        opt, hw = self.ctx.options, self.ctx.hardware
        if opt.allo_planner == "study":
            return StudyAlloState(opt.block_size, STUDY_MIN_THRESHOLD, STUDY_MIN_CANDIDATES, hw.die_tflops * 1e3,
                                  float(hw.hbm_bytes_per_ns), float(hw.link_bytes_per_ns))
        return AlloState(opt.block_size, opt.max_split)


MODE = AlloPlacement
