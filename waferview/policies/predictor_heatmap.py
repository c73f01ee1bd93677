"""`heatmap`: the paper's predictor. Per layer, a cross-token heatmap H[a, b] counts (expert a at token t
-> expert b at token t+1) pairs of the batch's requests (see waferview.sim.heatmap for how it is seeded
and updated). The predicted set of die d at (step, layer) = the union, over the experts d runs now, of
their rows' top-n (default ceil(0.2 x experts)). When d reads an expert remotely now and it is in d's
predicted set, the expert is copied to d's HBM (demand-triggered: nothing is fetched speculatively).
For precision and recall the prediction is the union over dies of their predicted sets.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.modes import PRED_GIVEN, PRED_NONE, register_predictor
from waferview.policies.base import PredictorMode


@njit(nogil=True, cache=True)
def heatmap_wanted(bits_l, task_e, task_d, task_src, num_dies):
    E = bits_l.shape[0]
    W = bits_l.shape[1]
    die_sets = np.zeros((num_dies, W), dtype=np.uint64)
    for t in range(task_e.shape[0]):
        for w in range(W):
            die_sets[task_d[t], w] |= bits_l[task_e[t], w]
    want = np.zeros(task_e.shape[0], dtype=np.bool_)
    for t in range(task_e.shape[0]):
        e = task_e[t]
        if task_src[t] != task_d[t]:
            want[t] = (die_sets[task_d[t], e >> 6] >> np.uint64(e & 63)) & np.uint64(1) == np.uint64(1)
    predicted = np.zeros(E, dtype=np.bool_)
    for e in range(E):
        for d in range(num_dies):
            if (die_sets[d, e >> 6] >> np.uint64(e & 63)) & np.uint64(1) == np.uint64(1):
                predicted[e] = True
                break
    return want, predicted


class HeatmapState(NamedTuple):
    bits: np.ndarray   # (steps, L, E, W) uint64, read-only: the batch's heatmap top-n sets (sim.heatmap)


@register_predictor(HeatmapState)
@njit(nogil=True, cache=True)
def predict_from_heatmap(state, ctx, step, layer, task_e, task_d, task_src):
    want, predicted = heatmap_wanted(state.bits[step, layer], task_e, task_d, task_src, ctx.mesh.num_dies)
    return want, predicted, PRED_GIVEN if step + 1 < ctx.counts.shape[0] else PRED_NONE


class HeatmapPredictor(PredictorMode):
    name = "heatmap"
    help = "the paper's cross-token heatmap: copy a remote read when it is in the die's predicted top-n set"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.bits = None

    def prepare(self, progress=None):
        if self.bits is None:
            self.bits = self.ctx.workload.heat_bits(self.ctx.top_n, progress)

    def kernel_state(self):
        self.prepare()
        return HeatmapState(self.bits)


MODE = HeatmapPredictor
