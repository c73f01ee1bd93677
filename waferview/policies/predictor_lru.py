"""`lru`: the baseline a user tries first. Every remote read is copied to the reading die; when the die's
copy space is full, the engine's eviction rule applies (--eviction lru: its least recently used copy,
last read or written longest ago, is evicted; admit, the default: only for an expert read more often
than that copy's; never: the copy is skipped).
Its prediction, for precision and recall, is what it copied.
"""

from __future__ import annotations

from waferview.policies.base import PredictorMode


class LRUPredictor(PredictorMode):
    name = "lru"
    help = "copy every remote read (when full, the eviction rule decides: see --eviction)"

    def wanted(self, ctx, step, layer, task_e, task_d, task_src):
        return task_src != task_d, None


MODE = LRUPredictor()
