"""What one run replays: the batch, its routing collapsed per (step, MoE layer), and (on demand) its heatmap.

A Workload depends only on the trace, the batch size and the seed, not on the wafer or the modes, so the
engines of a comparison or a sweep chunk share one explicitly (Engine(..., workload=w)): the counts and the
heatmap are then computed once. Nothing is shared behind the caller's back.

    w = Workload(trace, batch=None, seed=0)
    w.batch (sim.batch.Batch), w.counts (steps, L, E) int64 read-only, w.steps, w.layers, w.tokens_per_step
    w.heat_bits(top_n, progress=None)   the heatmap top-n bit masks (sim.heatmap), kept per top_n
"""

from __future__ import annotations

import threading

import numpy as np

from waferview.sim.batch import batch_counts, select_batch


class Workload:
    def __init__(self, trace, batch: int | None = None, seed: int = 0, progress=None):
        self.trace = trace
        self.model = trace.model
        self.seed = int(seed)
        self.batch = select_batch(trace, batch, seed)
        self.counts = batch_counts(trace, self.batch, progress)
        self.steps = self.batch.steps
        self.layers = self.model.moe_layers
        self.tokens_per_step = np.ascontiguousarray(self.batch.tokens_per_step, dtype=np.int64)
        self.tokens_per_step.setflags(write=False)
        self._heat: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def note(self) -> str | None:
        return self.batch.note

    def heat_bits(self, top_n: int, progress=None) -> np.ndarray:
        from waferview.sim.heatmap import compute_top_bits

        with self._lock:
            bits = self._heat.get(int(top_n))
            if bits is None:
                bits = self._heat[int(top_n)] = compute_top_bits(self.trace, self.batch, int(top_n), progress)
            return bits
