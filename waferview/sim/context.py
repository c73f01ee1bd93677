"""ModeContext: exactly what a mode may read when it is bound to an engine (placements, predictors and link
models get the same one). Read-only: modes keep their own state on their bound instance, never here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from waferview.policies.base import PolicyOptions
from waferview.sim.state import KernelContext, Rates
from waferview.sim.workload import Workload
from waferview.wafer.mesh import Mesh


@dataclass(frozen=True, eq=False)
class ModeContext:
    mesh: Mesh                 # the wafer's dies and links
    home: np.ndarray           # (E,) home die of each expert
    copies: np.ndarray         # (L, D, E) the copy store, read-only view (1 = die d holds a copy of e in layer l)
    rates: Rates               # flops, bytes and latencies after efficiencies
    options: PolicyOptions     # the run's policy knobs
    top_n: int                 # heatmap row top-n (options.top_n, or ceil(0.2 E))
    seed: int                  # the run's seed (batch order, base's start dies)
    workload: Workload         # the schedule: batch, steps, layers, counts, heatmap
    kernel: KernelContext      # the same, as the kernels see it
