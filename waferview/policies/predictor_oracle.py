"""`oracle`: knows the batch's true routing at the next step. Every die's predicted set is the set of
experts active in this layer at the next step; a remote read is copied iff its expert is in it.
Precision and recall are 1 by construction: the upper bound of any demand-triggered predictor.
At the last step there is no next step: nothing is copied.
"""

from __future__ import annotations

import numpy as np

from waferview.policies.base import PredictorMode


class OraclePredictor(PredictorMode):
    name = "oracle"
    help = "copy a remote read iff its expert is active at the next step (the upper bound)"

    def wanted(self, ctx, step, layer, task_e, task_d, task_src):
        nxt = ctx.next_active(step, layer)
        if nxt is None:
            return np.zeros(len(task_e), dtype=np.bool_), None
        return nxt[task_e] & (task_src != task_d), nxt.copy()


MODE = OraclePredictor()
