"""`ep`: expert parallelism. Each active expert runs on its home die: weights never cross a link,
and the load is as uneven as the routing."""

from __future__ import annotations

import numpy as np

from waferview.policies.base import PlacementMode


class EPPlacement(PlacementMode):
    name = "ep"
    help = "each expert on its home die: no weights cross links, load as skewed as the routing"

    def tasks(self, ctx, step, layer, counts, copies_l):
        active = np.flatnonzero(counts).astype(np.int64)
        return active, ctx.home[active], counts[active].astype(np.int64)


MODE = EPPlacement()
