"""A recorded batch as the engine's workload: each forward pass a serving engine recorded is one step, its
tokens the batch as it ran (trace.passes.RecordedPasses from the sglang-recorder, megatron and trtllm-stats
readers). The same interface as sim.workload.Workload, so the engine, the modes, the live view and the
reports never learn the difference.

What does not apply: --batch (the batch is as recorded), the batch order and the prefill rule (the
recording has its own order and phase flags; a profile's values for them are left unused, and the summary
says "as recorded"). --max-steps keeps the first N passes. A pass's phase is the recording's flag (or, with
none, its size: trace.passes.PHASE_BY_TOKENS_NOTE); prefill passes are timed apart from decode ones
wherever they fall. The compute efficiency is looked up at the mean tokens of a decode pass (the requests
in flight). Count-only recordings have no token order: the heatmap predictor and the first-seen Base
refuse with one line.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from waferview.errors import InputError

AS_RECORDED = "as recorded"


@dataclass(frozen=True, eq=False)
class RecordedBatch:
    size: int                      # the requests in flight: mean tokens of a decode pass (compute efficiency)
    seed: int
    steps: int                     # passes replayed
    tokens_per_step: np.ndarray    # (steps,) int64
    step_prefill: np.ndarray       # (steps,) bool
    note: str

    @property
    def prefill_tokens(self) -> int:
        return int(self.tokens_per_step[self.step_prefill].sum())

    @property
    def decode_tokens(self) -> int:
        return int(self.tokens_per_step[~self.step_prefill].sum())


class RecordedWorkload:
    reported_batch = AS_RECORDED
    order = prefill_rule = AS_RECORDED   # what the summary reports for the batch order and prefill rule

    def __init__(self, passes, seed: int = 0, max_steps: int | None = None):
        self.trace = passes
        self.model = passes.model
        self.seed = int(seed)
        self.max_steps = max_steps
        steps = passes.passes if max_steps is None else min(passes.passes, int(max_steps))
        self.steps = steps
        self.layers = self.model.moe_layers
        self.counts = np.ascontiguousarray(passes.counts[:steps], dtype=np.int64)
        self.counts.setflags(write=False)
        self.tokens_per_step = np.ascontiguousarray(passes.tokens[:steps], dtype=np.int64)
        self.tokens_per_step.setflags(write=False)
        self.step_prefill = np.ascontiguousarray(passes.prefill[:steps], dtype=np.bool_)
        self.step_prefill.setflags(write=False)
        decode = self.tokens_per_step[~self.step_prefill]
        in_flight = int(round(float(decode.mean()))) if len(decode) else int(self.tokens_per_step.max(initial=1))
        prefill = int(self.step_prefill.sum())
        note = (f"{AS_RECORDED}: {steps:,} forward passes ({prefill:,} prefill, {steps - prefill:,} decode"
                + (f", the first {steps:,} of {passes.passes:,}" if steps < passes.passes else "") + ")")
        self.batch = RecordedBatch(max(1, in_flight), self.seed, steps, self.tokens_per_step, self.step_prefill,
                                   note)
        self._heat: dict[tuple[str, int], np.ndarray] = {}
        self._first_seen = None
        self._lock = threading.Lock()

    @classmethod
    def for_options(cls, passes, batch, seed, options, progress=None) -> "RecordedWorkload":
        if batch is not None:
            raise InputError(f"--batch {batch}: {passes.source} is recorded batches ({passes.passes:,} forward "
                             "passes, replayed as recorded); --batch does not apply (--max-steps N keeps the "
                             "first N passes)")
        return cls(passes, seed, getattr(options, "max_steps", None))

    def matches(self, options) -> bool:
        return self.max_steps == options.max_steps

    @property
    def note(self) -> str:
        return self.batch.note

    @property
    def paper_batch(self) -> None:
        return None                 # the study's 128-step throughput needs a batch of requests

    def _need_ids(self, what: str) -> None:
        if self.trace.ids is None:
            raise InputError(f"{what}: {self.trace.source} has per-expert counts only (no per-token expert ids), "
                             "so there is no token order to follow; use --predictor off, oracle or lru and "
                             "--base-order seeded")

    def heat_bits(self, top_n: int, progress=None, rule: str = "waferview") -> np.ndarray:
        from waferview.sim.heatmap_recorded import recorded_top_bits

        self._need_ids("the heatmap predictor")
        with self._lock:
            key = (rule, int(top_n))
            if key not in self._heat:
                self._heat[key] = recorded_top_bits(self.trace, self.steps, int(top_n), rule, progress)
            return self._heat[key]

    def first_seen(self) -> np.ndarray:
        self._need_ids("--base-order first-seen")
        with self._lock:
            if self._first_seen is None:
                self._first_seen = first_seen_of_passes(self.trace, self.steps)
            return self._first_seen


def first_seen_of_passes(passes, steps: int) -> np.ndarray:
    """(steps, L, E) int64 read-only: rank of each expert's first appearance in its pass (rows in recorded
    order, ids in row order; E when absent), as sim.batch.first_seen_ranks does for a batch of requests."""
    from waferview.sim.batch import _first_seen

    m = passes.model
    L, E = m.moe_layers, m.num_experts
    out = np.empty((steps, L, E), dtype=np.int64)
    for s in range(steps):
        a, b = int(passes.pass_offsets[s]), int(passes.pass_offsets[s + 1])
        # one pass = the "prefill" of a one-request batch whose rows are the pass's rows
        one = np.empty((1, L, E), dtype=np.int64)
        _first_seen(passes.ids[a:b], passes.ids[:0], np.array([0, b - a], dtype=np.int64),
                    np.array([0, 0], dtype=np.int64), np.array([0], dtype=np.int64), one)
        out[s] = one[0]
    out.setflags(write=False)
    return out


def workload_for(trace, batch, seed, options, progress=None):
    """The workload a run with these PolicyOptions replays: a drawn batch of requests (sim.workload), or
    the recorded batches of a batch-major or count-only source."""
    from waferview.sim.workload import Workload
    from waferview.trace.passes import RecordedPasses

    if isinstance(trace, RecordedPasses):
        return RecordedWorkload.for_options(trace, batch, seed, options, progress)
    return Workload.for_options(trace, batch, seed, options, progress)


def preview_batch(trace, batch, seed, options) -> tuple[int | str, bool, int]:
    """(what the header says the batch is, requests reused, steps), cheaply: the live view's header before
    the worker builds the workload. The same refusals as the workload (a bad --batch, --seed)."""
    from waferview.sim.batch import select_batch
    from waferview.trace.passes import RecordedPasses

    if isinstance(trace, RecordedPasses):
        workload = RecordedWorkload.for_options(trace, batch, seed, options)   # cheap: the passes' own counts
        return workload.reported_batch, False, workload.steps
    chosen = select_batch(trace, batch, seed, getattr(options, "batch_order", "seeded"),
                          getattr(options, "max_steps", None))
    return chosen.size, chosen.note is not None, chosen.steps


def available_predictors(trace, predictors) -> tuple[str, ...]:
    """The predictors a source can drive: count-only recordings have no token order for the heatmap."""
    if getattr(trace, "count_only", False):
        return tuple(p for p in predictors if p != "heatmap")
    return tuple(predictors)
