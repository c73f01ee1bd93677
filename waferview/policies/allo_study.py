"""The study's own Allo planner (`--allo-planner study`, its _allocate_experts_ours), for the paper profile.
waferview's planner (placement_allo.allo_plan) follows the paper's Algorithm 1 as described; the study's code
differs in its cost model and its candidates:

  * a coarse per-die estimate in ns over whole experts: est(d) = max(max(compute_local, dram_local +
    dram_remote), d2d_in) + compute_remote, with the planner's own constants: compute ceil(2 h i n 3 /
    (die rate x 0.7)), a DRAM read 300 + expert bytes / (HBM rate x 0.9), a transfer over h hops 2 h x 200 +
    expert bytes / (link rate x 0.9) (0.7 and 0.9 for every model and batch);
  * every active expert's home is charged one read before planning; experts go coldest first, ties by id;
  * candidates: the dies holding any slice of the expert (home, copies), and the home's neighbours (in the
    study's order: up, left, right, down) that hold none, which read from the home and cost est + a 1-hop
    transfer; all ranked by (cost, die); the first max(5, n // max(mean count over all experts, 512)) are used;
  * tokens go in blocks of 512 (the last block takes a remainder under 512), each to the candidate with the
    lowest max(est of the executing die, est of the die it reads from) after the block; equal costs keep the
    earlier candidate unless a local one ties a remote best;
  * one task per (expert, die), in candidate order, experts coldest first (the engine's circuit model runs
    them sorted by expert, stably, as the study does).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from waferview.policies.tasks import active_experts

PLANNER_COMPUTE_EFFICIENCY = 0.7
PLANNER_RATE_EFFICIENCY = 0.9
STUDY_BLOCK = 512
STUDY_MIN_THRESHOLD = 512
STUDY_MIN_CANDIDATES = 5


@njit(nogil=True, cache=True, inline="always")
def _estimate(cl, cr, dl, dr, din, d):
    return max(max(cl[d], dl[d] + dr[d]), din[d]) + cr[d]


@njit(nogil=True, cache=True)
def study_allo_tasks(counts, home, copies_l, mesh, rates, die_rate, hbm_rate, link_rate, block, threshold,
                     min_candidates):
    """counts[E] -> (task_e, task_d, task_tok); die_rate = operations per ns at efficiency 1; hbm_rate and
    link_rate in bytes per ns before efficiency (the planner applies its own)."""
    E = counts.shape[0]
    D = mesh.num_dies
    w, h = mesh.width, mesh.height
    size = rates.expert_bytes
    hidden_inter = rates.flops_per_token // 6          # hidden x inter
    dram_lat = rates.hbm_latency + size / (hbm_rate * PLANNER_RATE_EFFICIENCY)
    link_ns = size / (link_rate * PLANNER_RATE_EFFICIENCY)
    hop = rates.hop_latency
    cl, cr, dl, dr, din = np.zeros(D), np.zeros(D), np.zeros(D), np.zeros(D), np.zeros(D)
    active, _ = active_experts(counts)
    total = 0
    for e in active:
        total += counts[e]
        dl[home[e]] += dram_lat
    mean_count = float(total) / float(E)
    order = active[np.argsort(counts[active], kind="mergesort")]   # coldest first, ties by id
    task_e = np.empty(active.shape[0] * (D + 4), dtype=np.int64)
    task_d = np.empty_like(task_e)
    task_tok = np.empty_like(task_e)
    n_tasks = 0
    local = np.zeros(D, dtype=np.bool_)
    cand = np.empty(D + 4, dtype=np.int64)
    cost = np.empty(D + 4)
    alloc = np.zeros(D + 4, dtype=np.int64)
    first = np.zeros(D + 4, dtype=np.bool_)
    for e in order:
        n = counts[e]
        he = home[e]
        m = 0
        for d in range(D):   # local candidates, ascending
            local[d] = d == he or copies_l[d, e] != 0
            if local[d]:
                cand[m] = d
                cost[m] = _estimate(cl, cr, dl, dr, din, d)
                m += 1
        hx, hy = he % w, he // w
        for k in range(4):   # the home's neighbours in the study's order: up, left, right, down
            dx, dy = (0, -1, 1, 0)[k], (-1, 0, 0, 1)[k]
            x, y = hx + dx, hy + dy
            if 0 <= x < w and 0 <= y < h and not local[y * w + x]:
                d = y * w + x
                cand[m] = d
                cost[m] = _estimate(cl, cr, dl, dr, din, d) + (2 * 1 * hop + link_ns)
                m += 1
        for i in range(1, m):   # sort by (cost, die)
            c, d = cost[i], cand[i]
            j = i - 1
            while j >= 0 and (cost[j] > c or (cost[j] == c and cand[j] > d)):
                cost[j + 1] = cost[j]
                cand[j + 1] = cand[j]
                j -= 1
            cost[j + 1] = c
            cand[j + 1] = d
        keep = int(max(float(min_candidates), n // max(mean_count, float(threshold))))
        m = min(m, keep)
        for i in range(m):
            alloc[i] = 0
            first[i] = False
        remaining = n
        while remaining > 0:
            b = min(block, remaining)
            if remaining - b < block:
                b = remaining
            compute = math.ceil(2 * hidden_inter * b * 3 / (die_rate * PLANNER_COMPUTE_EFFICIENCY))
            best = 0
            best_cost = np.inf
            for i in range(m):
                d = cand[i]
                src = d if local[d] else he
                if d == src:
                    trial = max(max(cl[d] + compute, dl[d] + dr[d]), din[d]) + cr[d]
                    c = max(trial, trial)
                else:
                    d2d = 2 * (abs(d % w - hx) + abs(d // w - hy)) * hop + link_ns
                    exec_est = max(max(cl[d], dl[d] + dr[d]), din[d] + d2d) + (cr[d] + compute)
                    src_dr = dr[src] + (0.0 if first[i] else dram_lat)
                    src_est = max(max(cl[src], dl[src] + src_dr), din[src]) + cr[src]
                    c = max(exec_est, src_est)
                if c < best_cost or (c == best_cost and local[d] and not local[cand[best]]):
                    best = i
                    best_cost = c
            d = cand[best]
            src = d if local[d] else he
            if d == src:
                cl[d] += compute
            else:
                d2d = 2 * (abs(d % w - hx) + abs(d // w - hy)) * hop + link_ns
                cr[d] += compute
                din[d] += d2d
                if not first[best]:
                    dr[src] += dram_lat
            first[best] = True
            alloc[best] += b
            remaining -= b
        for i in range(m):
            if alloc[i] > 0:
                task_e[n_tasks] = e
                task_d[n_tasks] = cand[i]
                task_tok[n_tasks] = alloc[i]
                n_tasks += 1
    return task_e[:n_tasks], task_d[:n_tasks], task_tok[:n_tasks]
