"""`base`: work spread evenly over all dies, ignoring where weights live.

The layer's active experts, in id order, go round-robin to the dies, starting at die (layer index mod D)
so die 0 is not always first. Each whole expert is one task.
"""

from __future__ import annotations

import numpy as np

from waferview.policies.base import PlacementMode


class BasePlacement(PlacementMode):
    name = "base"
    help = "active experts round-robin over the dies (start at die layer mod D), ignoring where weights live"

    def tasks(self, ctx, step, layer, counts, copies_l):
        active = np.flatnonzero(counts).astype(np.int64)
        dies = (layer + np.arange(len(active), dtype=np.int64)) % ctx.num_dies
        return active, dies, counts[active].astype(np.int64)


MODE = BasePlacement()
