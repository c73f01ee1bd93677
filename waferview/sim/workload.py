"""What one run replays: the batch, its routing collapsed per (step, MoE layer), and (on demand) its heatmap.

A Workload depends only on the trace and how the batch is drawn, not on the wafer or the modes, so the
engines of a comparison or a sweep chunk share one explicitly (Engine(..., workload=w)): the counts and the
heatmaps are then computed once. Nothing is shared behind the caller's back.

    w = Workload(trace, batch=None, seed=0, order="seeded", max_steps=None, prefill_rule="position")
    w.batch (sim.batch.Batch), w.counts (steps, L, E) int64 read-only, w.steps, w.layers, w.tokens_per_step
    w.prefill_steps       leading steps that are prefill: 1; under prefill_rule "study" 0 when the batch's last
                          request has a one-row prompt (the study's simulator then calls step 0 a decode step)
    w.heat_bits(top_n, progress=None, rule="waferview")   the heatmap top-n bit masks, kept per (rule, top_n)
    w.first_seen()        (steps, L, E) order of first appearance of each expert (the study's Base)
    w.step_prefill        (steps,) bool: the step is a prefill (timed apart from decode)

sim.recorded.RecordedWorkload is the same interface for recorded batches; sim.recorded.workload_for(trace,
batch, seed, options) picks the one a source needs.
"""

from __future__ import annotations

import threading

import numpy as np

from waferview.errors import InputError
from waferview.sim.batch import batch_counts, first_seen_ranks, select_batch

PREFILL_RULES = ("position", "study")
HEATMAP_RULES = ("waferview", "study")


class Workload:
    def __init__(self, trace, batch: int | None = None, seed: int = 0, progress=None, order: str = "seeded",
                 max_steps: int | None = None, prefill_rule: str = "position"):
        if prefill_rule not in PREFILL_RULES:
            raise InputError(f"--prefill-rule {prefill_rule!r}: expected one of {', '.join(PREFILL_RULES)}")
        self.trace = trace
        self.model = trace.model
        self.seed = int(seed)
        self.order = order
        self.max_steps = max_steps
        self.prefill_rule = prefill_rule
        self.batch = select_batch(trace, batch, seed, order, max_steps)
        self.counts = batch_counts(trace, self.batch, progress)
        self.steps = self.batch.steps
        self.layers = self.model.moe_layers
        self.tokens_per_step = np.ascontiguousarray(self.batch.tokens_per_step, dtype=np.int64)
        self.tokens_per_step.setflags(write=False)
        last = self.batch.last_request
        one_row = int(trace.prefill_offsets[last + 1] - trace.prefill_offsets[last]) <= 1
        self.prefill_steps = 0 if prefill_rule == "study" and one_row else 1
        self.step_prefill = np.arange(self.steps) < self.prefill_steps
        self.step_prefill.setflags(write=False)
        self._heat: dict[tuple[str, int], np.ndarray] = {}
        self._first_seen = None
        self._lock = threading.Lock()

    @classmethod
    def for_options(cls, trace, batch, seed, options, progress=None) -> "Workload":
        """The workload a run with these PolicyOptions replays (batch order, step limit, prefill rule)."""
        return cls(trace, batch, seed, progress, options.batch_order, options.max_steps, options.prefill_rule)

    def matches(self, options) -> bool:
        return (self.order, self.max_steps, self.prefill_rule) == (options.batch_order, options.max_steps,
                                                                    options.prefill_rule)

    @property
    def note(self) -> str | None:
        return self.batch.note

    @property
    def reported_batch(self) -> int:
        """What the summary's `batch` says (a recorded batch says "as recorded": sim.recorded)."""
        return self.batch.size

    @property
    def paper_batch(self) -> int:
        """The batch the study's paper_throughput multiplies by its 128 steps."""
        return self.batch.size

    def heat_bits(self, top_n: int, progress=None, rule: str = "waferview") -> np.ndarray:
        with self._lock:
            key = (rule, int(top_n))
            bits = self._heat.get(key)
            if bits is None:
                if rule == "study":
                    from waferview.sim.heatmap_study import study_top_bits as compute
                else:
                    from waferview.sim.heatmap import compute_top_bits as compute
                bits = self._heat[key] = compute(self.trace, self.batch, int(top_n), progress)
            return bits

    def first_seen(self) -> np.ndarray:
        with self._lock:
            if self._first_seen is None:
                self._first_seen = first_seen_ranks(self.trace, self.batch)
            return self._first_seen
