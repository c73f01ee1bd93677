"""A toy link model for tests/test_toy_modes.py (this one file and one registry line)."""

from __future__ import annotations

from typing import NamedTuple

from numba import njit

from waferview.links.base import LinkModel, copies_in_task_order
from waferview.modes import register_link_model


class PerTaskState(NamedTuple):
    ns_per_task: float


@register_link_model(PerTaskState)
@njit(nogil=True, cache=True)
def per_task_costs(state, ctx, step, layer, position, tasks, store, buffers):
    """A layer costs ns_per_task per task, all on the executing dies; nothing else is counted."""
    copies_in_task_order(ctx, layer, position, tasks, store, buffers)
    buffers.die_busy[:] = 0.0
    for t in range(tasks.expert.shape[0]):
        buffers.die_busy[tasks.die[t]] += state.ns_per_task
    out = buffers.scalars[0]
    out.layer_time = buffers.die_busy.max()
    out.busy_sum = buffers.die_busy.sum()
    out.busy_max = out.layer_time


class PerTaskLinks(LinkModel):
    name = "per-task"
    help = "1 us per task"

    def kernel_state(self):
        return PerTaskState(1000.0)


MODE = PerTaskLinks
