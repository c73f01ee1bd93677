"""`off`: no predictor, no copies."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.modes import PRED_NONE, register_predictor
from waferview.policies.base import PredictorMode


class OffState(NamedTuple):
    pass


@register_predictor(OffState)
@njit(nogil=True, cache=True)
def predict_nothing(state, ctx, step, layer, task_e, task_d, task_src):
    return np.zeros(task_e.shape[0], dtype=np.bool_), np.zeros(0, dtype=np.bool_), PRED_NONE


class OffPredictor(PredictorMode):
    name = "off"
    help = "no copies"
    active = False

    def kernel_state(self):
        return OffState()


MODE = OffPredictor
