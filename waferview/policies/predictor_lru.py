"""`lru`: the baseline a user tries first. Every remote read is copied to the reading die; when the die's
copy space is full, the engine's eviction rule applies (--eviction lru: its least recently used copy,
last read or written longest ago, is evicted; admit, the default: only for an expert read more often
than that copy's; never: the copy is skipped).
Its prediction, for precision and recall, is what it copied.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.modes import PRED_COPIED, PRED_NONE, register_predictor
from waferview.policies.base import PredictorMode


class LRUState(NamedTuple):
    pass


@register_predictor(LRUState)
@njit(nogil=True, cache=True)
def predict_every_remote_read(state, ctx, step, layer, task_e, task_d, task_src):
    want = np.empty(task_e.shape[0], dtype=np.bool_)
    for t in range(task_e.shape[0]):
        want[t] = task_src[t] != task_d[t]
    mode = PRED_COPIED if step + 1 < ctx.counts.shape[0] else PRED_NONE
    return want, np.zeros(0, dtype=np.bool_), mode


class LRUPredictor(PredictorMode):
    name = "lru"
    help = "copy every remote read (when full, the eviction rule decides: see --eviction)"

    def kernel_state(self):
        return LRUState()


MODE = LRUPredictor
