"""The engine's one loop: (step, layer) positions pos0 .. pos1-1 in one numba call, whatever the modes.

Per (step, layer): the placement's tasks -> each task's source (sim.sources) -> the predictor's wanted copies
-> the link model (which applies the copies to the store, sim.copystore, and costs the layer) -> the run
totals -> the layer's row, when the engine records (sim.layerlog). The three
modes are chosen by the types of their states (waferview.modes), so this function is compiled, and cached on
disk, once per combination of modes; a run stepped one layer at a time makes the same calls in the same order
as a run to the end, so both give the same numbers bit for bit. Returns the last layer's tasks.

numba keeps one cache index per function, listing every signature compiled so far; a signature naming a mode
class from outside waferview (a user's own mode, a test's toy) would make that index unreadable to a process
without that module on its path. So modes from outside the package run the same loop compiled without the
disk cache (`loop_for` picks the dispatcher).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from waferview.modes import layer_costs, place_tasks, predict_copies
from waferview.sim.layerlog import log_layer
from waferview.sim.sources import resolve_sources
from waferview.sim.state import LayerTasks
from waferview.sim.totals import add_layer


@njit(nogil=True, cache=True)
def run_layers(pos0, pos1, ctx, placement, predictor, links, store, buffers, totals, log):
    steps = ctx.counts.shape[0]
    L = ctx.counts.shape[1]
    task_e = np.zeros(0, dtype=np.int64)
    task_d = np.zeros(0, dtype=np.int64)
    task_tok = np.zeros(0, dtype=np.int64)
    task_src = np.zeros(0, dtype=np.int64)
    copied = np.zeros(0, dtype=np.bool_)
    for position in range(pos0, pos1):
        step = position // L
        layer = position - step * L
        copies_l = store.copies[layer]
        task_e, task_d, task_tok = place_tasks(placement, ctx, step, layer, ctx.counts[step, layer], copies_l)
        task_src = resolve_sources(ctx, task_e, task_d, copies_l, ctx.read_nearest)
        want, predicted, pred_mode = predict_copies(predictor, ctx, step, layer, task_e, task_d, task_src)
        T = task_e.shape[0]
        copied = np.zeros(T, dtype=np.bool_)
        out = buffers.scalars[0]
        selections = 0
        for t in range(T):
            selections += task_tok[t]
        out.reads = T              # a link model that reads slices counts those instead
        out.selections = selections
        out.events = 0
        out.llc_hits = 0
        layer_costs(links, ctx, step, layer, position, LayerTasks(task_e, task_d, task_tok, task_src, want, copied),
                    store, buffers)
        next_counts = ctx.counts[step + 1 if step + 1 < steps else step, layer]
        add_layer(totals, buffers, ctx.step_prefill[step], ctx.step_tokens[step], task_e, copied, pred_mode,
                  predicted, next_counts)
        log_layer(log, position, buffers)
    return task_e, task_d, task_tok, task_src, copied


run_layers_uncached = njit(nogil=True)(run_layers.py_func)


def loop_for(*states):
    """run_layers for mode states defined in waferview, else the same loop without the disk cache."""
    if all(type(s).__module__.startswith("waferview.") for s in states):
        return run_layers
    return run_layers_uncached
