"""`off`: no predictor, no copies."""

from __future__ import annotations

import numpy as np

from waferview.policies.base import PredictorMode


class OffPredictor(PredictorMode):
    name = "off"
    help = "no copies"
    active = False

    def wanted(self, ctx, step, layer, task_e, task_d, task_src):
        return np.zeros(len(task_e), dtype=np.bool_), None


MODE = OffPredictor()
