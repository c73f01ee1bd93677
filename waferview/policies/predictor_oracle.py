"""`oracle`: knows the batch's true routing at the next step. Every die's predicted set is the set of
experts active in this layer at the next step; a remote read is copied iff its expert is in it.
Precision and recall are 1 by construction: the upper bound of any demand-triggered predictor.
At the last step there is no next step: nothing is copied.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.modes import PRED_GIVEN, PRED_NONE, register_predictor
from waferview.policies.base import PredictorMode


class OracleState(NamedTuple):
    pass


@register_predictor(OracleState)
@njit(nogil=True, cache=True)
def predict_next_step(state, ctx, step, layer, task_e, task_d, task_src):
    T = task_e.shape[0]
    want = np.zeros(T, dtype=np.bool_)
    if step + 1 >= ctx.counts.shape[0]:
        return want, np.zeros(0, dtype=np.bool_), PRED_NONE
    next_counts = ctx.counts[step + 1, layer]
    predicted = np.empty(next_counts.shape[0], dtype=np.bool_)
    for e in range(next_counts.shape[0]):
        predicted[e] = next_counts[e] > 0
    for t in range(T):
        want[t] = predicted[task_e[t]] and task_src[t] != task_d[t]
    return want, predicted, PRED_GIVEN


class OraclePredictor(PredictorMode):
    name = "oracle"
    help = "copy a remote read iff its expert is active at the next step (the upper bound)"

    def kernel_state(self):
        return OracleState()


MODE = OraclePredictor
