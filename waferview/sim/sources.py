"""Where each task reads its expert's weights.

Holders of expert e in layer l: its home die, plus every die d with copies[l, d, e] set. The nearest holder
of e seen from die d: d itself when it holds e; otherwise the holder at the smallest Manhattan distance,
ties to the home die, then to the lowest die id.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from waferview.wafer.routes import distance


@njit(nogil=True, cache=True)
def nearest_holder(mesh, home, copies_l, e, d):
    if home[e] == d or copies_l[d, e]:
        return d
    best = home[e]
    best_dist = distance(mesh, d, best)
    for h in range(copies_l.shape[0]):
        if copies_l[h, e]:
            dh = distance(mesh, d, h)
            if dh < best_dist:
                best = h
                best_dist = dh
    return best


@njit(nogil=True, cache=True)
def resolve_sources(ctx, task_e, task_d, copies_l):
    src = np.empty(task_e.shape[0], dtype=np.int64)
    for t in range(task_e.shape[0]):
        src[t] = nearest_holder(ctx.mesh, ctx.home, copies_l, task_e[t], task_d[t])
    return src
