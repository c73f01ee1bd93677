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
from waferview.policies.tasks import active_experts


@njit(nogil=True, cache=True)
def base_tasks(counts, start, num_dies):
    """The active experts in id order, die (start + i) % num_dies for the i-th, and their counts."""
    task_e, task_tok = active_experts(counts)
    task_d = np.empty(task_e.shape[0], dtype=np.int64)
    for j in range(task_e.shape[0]):
        task_d[j] = (start + j) % num_dies
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
