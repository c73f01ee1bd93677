"""`base`: work spread evenly over all dies, ignoring where weights live.

A round-robin: the layer's active experts, in id order, go to consecutive dies, starting from a die
drawn at random for each (step, layer) from the run's seed (the bound mode's `first_die[step, layer]`,
drawn when the engine binds it). Each whole expert is one task.

Why a random start, not one pointer carried across layers: a carried pointer moves by (active experts)
mod dies per layer, so when every expert is active the schedule repeats with a period set by
layers x experts mod dies (Qwen 94 x 128 on 24 dies: every expert cycles through 3 dies; DeepSeek 58 x
256: 3 dies, in an order that LRU copies always miss). Base would then line up with the copy store, for
better or worse, by arithmetic accident. A random start ignores weights and copies alike, as Base
should, and stays deterministic for a seed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.modes import register_placement
from waferview.policies.base import PlacementMode
from waferview.policies.tasks import active_experts

BASE_SEED_TAG = 0xBA5E   # keeps the start dies independent of the batch draw made from the same seed


def base_first_dies(seed: int, steps: int, layers: int, num_dies: int) -> np.ndarray:
    """(steps, layers) int64: the die that receives the first active expert of each (step, layer)."""
    rng = np.random.default_rng((int(seed), BASE_SEED_TAG))
    return rng.integers(0, num_dies, size=(steps, layers), dtype=np.int64)


@njit(nogil=True, cache=True)
def base_tasks(counts, start, num_dies):
    """The active experts in id order, die (start + i) % num_dies for the i-th, and their counts."""
    task_e, task_tok = active_experts(counts)
    task_d = np.empty(task_e.shape[0], dtype=np.int64)
    for j in range(task_e.shape[0]):
        task_d[j] = (start + j) % num_dies
    return task_e, task_d, task_tok


class BaseState(NamedTuple):
    first_die: np.ndarray   # (steps, layers) int64


@register_placement(BaseState)
@njit(nogil=True, cache=True)
def base_placement(state, ctx, step, layer, counts_l, copies_l):
    return base_tasks(counts_l, state.first_die[step, layer], ctx.mesh.num_dies)


class BasePlacement(PlacementMode):
    name = "base"
    help = ("active experts round-robin over the dies from a seeded random start per layer, "
            "ignoring where weights live")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.first_die = base_first_dies(ctx.seed, ctx.workload.steps, ctx.workload.layers, ctx.mesh.num_dies)

    def kernel_state(self):
        return BaseState(self.first_die)


MODE = BasePlacement
