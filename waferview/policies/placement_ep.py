"""`ep`: expert parallelism. Each active expert runs on its home die: weights never cross a link,
and the load is as uneven as the routing."""

from __future__ import annotations

import numpy as np
from numba import njit

from waferview.policies.base import PlacementMode


@njit(nogil=True, cache=True)
def ep_tasks(counts, home):
    """The active experts in id order, each on its home die, and their counts."""
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
            task_d[j] = home[e]
            task_tok[j] = counts[e]
            j += 1
    return task_e, task_d, task_tok


class EPPlacement(PlacementMode):
    name = "ep"
    help = "each expert on its home die: no weights cross links, load as skewed as the routing"

    def tasks(self, ctx, step, layer, counts, copies_l):
        return ep_tasks(counts, ctx.home)


MODE = EPPlacement()
