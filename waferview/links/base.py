"""The interface of a link model: a waferview.modes.Mode whose kernel (registered with
modes.register_link_model) applies a layer's copies and times it; see modes.layer_costs for its contract.

copies_in_task_order is what a link model without event time does first: the copy store's operations of the
layer in task order (sim.copystore.layer_copies), then buffers.copy_writes and the copy scalars filled in.
"""

from __future__ import annotations

from numba import njit

from waferview.modes import Mode
from waferview.sim.copystore import layer_copies


class LinkModel(Mode):
    pass


@njit(nogil=True, cache=True)
def copies_in_task_order(ctx, layer, position, tasks, store, buffers):
    task_d, copied = tasks.die, tasks.copied
    hits, evictions = layer_copies(store, ctx.home, layer, tasks.expert, task_d, tasks.source, tasks.want,
                                   position, copied)
    writes = buffers.copy_writes
    writes[:] = 0
    n_copied = 0
    for t in range(task_d.shape[0]):
        if copied[t]:
            writes[task_d[t]] += 1
            n_copied += 1
    out = buffers.scalars[0]
    out.copy_reads = hits
    out.evictions = evictions
    out.copies_made = n_copied
    out.write_bytes = n_copied * ctx.rates.expert_bytes
