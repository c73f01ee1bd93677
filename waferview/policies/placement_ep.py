"""`ep`: expert parallelism. Each active expert runs on its home die: weights never cross a link,
and the load is as uneven as the routing."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.modes import register_placement
from waferview.policies.base import PlacementMode
from waferview.policies.tasks import active_experts


@njit(nogil=True, cache=True)
def ep_tasks(counts, home):
    """The active experts in id order, each on its home die, and their counts."""
    task_e, task_tok = active_experts(counts)
    task_d = np.empty(task_e.shape[0], dtype=np.int64)
    for j in range(task_e.shape[0]):
        task_d[j] = home[task_e[j]]
    return task_e, task_d, task_tok


class EPState(NamedTuple):
    pass


@register_placement(EPState)
@njit(nogil=True, cache=True)
def ep_placement(state, ctx, step, layer, counts_l, copies_l):
    return ep_tasks(counts_l, ctx.home)


class EPPlacement(PlacementMode):
    name = "ep"
    help = "each expert on its home die: no weights cross links, load as skewed as the routing"

    def kernel_state(self):
        return EPState()


MODE = EPPlacement
