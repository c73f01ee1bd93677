"""`heatmap`: the paper's predictor. Per layer, a cross-token heatmap H[a, b] counts (expert a at token t
-> expert b at token t+1) pairs of the batch's requests (see waferview.sim.heatmap for how it is seeded
and updated). The predicted set of die d at (step, layer) = the union, over the experts d runs now, of
their rows' top-n (default ceil(0.2 x experts)). When d reads an expert remotely now and it is in d's
predicted set, the expert is copied to d's HBM (demand-triggered: nothing is fetched speculatively).
For precision and recall the prediction is the union over dies of their predicted sets.

--heatmap-rule study is the study's predictor instead: its heatmap (sim.heatmap_study: float counts, NumPy's
argsort for the top-n, no pair from the last prompt token to the first decode token), decode steps only, and
its copy predicate over each die's list of experts with the study's quirk (study_wanted).
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


@njit(nogil=True, cache=True)
def study_wanted(bits_l, task_e, task_d, num_dies):
    """The study's copy predicate: die d's list = the experts of its tasks in plan order (sorted by expert,
    stably), appended only while no expert in it has the id d (its code tests the die id against a list of
    expert ids: the quirk); d copies a fetched expert when it is in the top-n of the row of some expert of
    its list."""
    E = bits_l.shape[0]
    W = bits_l.shape[1]
    order = np.argsort(task_e, kind="mergesort")
    die_sets = np.zeros((num_dies, W), dtype=np.uint64)
    closed = np.zeros(num_dies, dtype=np.bool_)
    for i in range(order.shape[0]):
        t = order[i]
        d = task_d[t]
        if closed[d]:
            continue
        e = task_e[t]
        for w in range(W):
            die_sets[d, w] |= bits_l[e, w]
        if e == d:
            closed[d] = True
    want = np.zeros(task_e.shape[0], dtype=np.bool_)
    for t in range(task_e.shape[0]):
        e = task_e[t]
        want[t] = (die_sets[task_d[t], e >> 6] >> np.uint64(e & 63)) & np.uint64(1) == np.uint64(1)
    predicted = np.zeros(E, dtype=np.bool_)
    for e in range(E):
        for d in range(num_dies):
            if (die_sets[d, e >> 6] >> np.uint64(e & 63)) & np.uint64(1) == np.uint64(1):
                predicted[e] = True
                break
    return want, predicted


class StudyHeatmapState(NamedTuple):
    bits: np.ndarray   # (steps, L, E, W) uint64: the study's heatmap top-n sets (sim.heatmap_study)


@register_predictor(StudyHeatmapState)
@njit(nogil=True, cache=True)
def predict_as_the_study(state, ctx, step, layer, task_e, task_d, task_src):
    if ctx.step_prefill[step]:   # the study predicts in decode only
        return np.zeros(task_e.shape[0], dtype=np.bool_), np.zeros(0, dtype=np.bool_), PRED_NONE
    want, predicted = study_wanted(state.bits[step, layer], task_e, task_d, ctx.mesh.num_dies)
    return want, predicted, PRED_GIVEN if step + 1 < ctx.counts.shape[0] else PRED_NONE


class HeatmapPredictor(PredictorMode):
    name = "heatmap"
    help = "the paper's cross-token heatmap: copy a remote read when it is in the die's predicted top-n set"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.bits = None

    def prepare(self, progress=None):
        if self.bits is None:
            self.bits = self.ctx.workload.heat_bits(self.ctx.top_n, progress, self.ctx.options.heatmap_rule)

    def kernel_state(self):
        self.prepare()
        if self.ctx.options.heatmap_rule == "study":
            return StudyHeatmapState(self.bits)
        return HeatmapState(self.bits)


MODE = HeatmapPredictor
