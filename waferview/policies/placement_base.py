"""`base`: work spread evenly over all dies, ignoring where weights live.

A literal round-robin: the layer's active experts, in id order, each go to the die a pointer names, and
the pointer moves on by one die per expert. The pointer is engine state (`ctx.base_next`, 0 at the start
of a run) and continues across layers and steps, so an expert does not land on the same die at every
step. Each whole expert is one task. Other placements leave the pointer where it is.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from waferview.policies.base import PlacementMode


@njit(nogil=True, cache=True)
def base_tasks(counts, start, num_dies):
    """The active experts in id order, die (start + i) % num_dies for the i-th, and their counts."""
    n = 0
    for e in range(counts.shape[0]):
        if counts[e] != 0:
            n += 1
    task_e = np.empty(n, dtype=np.int64)
    task_d = np.empty(n, dtype=np.int64)
    task_tok = np.empty(n, dtype=np.int64)
    j = 0
    for e in range(counts.shape[0]):
        if counts[e] != 0:
            task_e[j] = e
            task_d[j] = (start + j) % num_dies
            task_tok[j] = counts[e]
            j += 1
    return task_e, task_d, task_tok


class BasePlacement(PlacementMode):
    name = "base"
    help = ("active experts round-robin over the dies (one pointer continuing across layers and steps), "
            "ignoring where weights live")

    def tasks(self, ctx, step, layer, counts, copies_l):
        D = ctx.num_dies
        tasks = base_tasks(counts, ctx.base_next, D)
        ctx.base_next = int((ctx.base_next + len(tasks[0])) % D)
        return tasks


MODE = BasePlacement()
