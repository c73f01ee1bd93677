"""Where each task reads its expert's weights.

Holders of expert e in layer l: its home die, plus every die d holding a whole copy (copies[l, d, e] == FULL;
a region may hold only some slices of an expert). read_from "nearest" (waferview): d itself when it holds e,
otherwise the holder at the smallest Manhattan distance, ties to the home die, then to the lowest die id.
read_from "home" (the study): d itself when it holds e, otherwise the home die.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from waferview.policies.tasks import copied_experts
from waferview.sim.copystore import FULL
from waferview.wafer.routes import distance


@njit(nogil=True, cache=True)
def resolve_sources(ctx, task_e, task_d, copies_l, nearest):
    """The nearest holder of each task's expert, seen from its die (one flat loop: a call per task that
    passes arrays costs more than the search)."""
    mesh = ctx.mesh
    home = ctx.home
    D = copies_l.shape[0]
    src = np.empty(task_e.shape[0], dtype=np.int64)
    any_copy = np.zeros(0, dtype=np.uint8)   # made on the first remote read: which experts have copies at all
    for t in range(task_e.shape[0]):
        e = task_e[t]
        d = task_d[t]
        if home[e] == d or copies_l[d, e] == FULL:
            src[t] = d
            continue
        best = home[e]
        if not nearest:
            src[t] = best
            continue
        if any_copy.shape[0] == 0:
            any_copy = copied_experts(copies_l)
        if not any_copy[e]:
            src[t] = best
            continue
        best_dist = distance(mesh, d, best)
        for h in range(D):
            if copies_l[h, e] == FULL:
                dh = distance(mesh, d, h)
                if dh < best_dist:
                    best = h
                    best_dist = dh
        src[t] = best
    return src
