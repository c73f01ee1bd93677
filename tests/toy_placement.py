"""A toy placement for tests/test_toy_modes.py: what a user adds to waferview (this one file and one registry
line), running on the engine's fast path (sim.loop.run_layers) like the built-in modes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.modes import register_placement
from waferview.policies.base import PlacementMode
from waferview.policies.tasks import active_experts


class OneDieState(NamedTuple):
    die: int


@register_placement(OneDieState)
@njit(nogil=True, cache=True)
def one_die_tasks(state, ctx, step, layer, counts_l, copies_l):
    task_e, task_tok = active_experts(counts_l)
    return task_e, np.full(task_e.shape[0], state.die, dtype=np.int64), task_tok


class OneDiePlacement(PlacementMode):
    """Every active expert on the last die."""
    name = "one-die"
    help = "every expert on the last die"

    def kernel_state(self):
        return OneDieState(self.ctx.mesh.num_dies - 1)


MODE = OneDiePlacement
