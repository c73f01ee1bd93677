"""`base`: work spread evenly over all dies, ignoring where weights live.

A literal round-robin: the layer's active experts, in id order, each go to the die a pointer names, and
the pointer moves on by one die per expert. The pointer is engine state (`ctx.base_next`, 0 at the start
of a run) and continues across layers and steps, so an expert does not land on the same die at every
step. Each whole expert is one task. Other placements leave the pointer where it is.
"""

from __future__ import annotations

import numpy as np

from waferview.policies.base import PlacementMode


class BasePlacement(PlacementMode):
    name = "base"
    help = ("active experts round-robin over the dies (one pointer continuing across layers and steps), "
            "ignoring where weights live")

    def tasks(self, ctx, step, layer, counts, copies_l):
        active = np.flatnonzero(counts).astype(np.int64)
        D = ctx.num_dies
        dies = (ctx.base_next + np.arange(len(active), dtype=np.int64)) % D
        ctx.base_next = int((ctx.base_next + len(active)) % D)
        return active, dies, counts[active].astype(np.int64)


MODE = BasePlacement()
