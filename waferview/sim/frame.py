"""What the engine hands to its viewers after each simulated (step, MoE layer).

A Frame is immutable and compared by identity (numpy fields would break equality checks in
reactive UI code). Arrays in a frame are private copies: the engine never mutates them later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    seq: int                   # (step, layer) pairs simulated so far, this one included (1-based)
    total: int                 # (step, layer) pairs in the whole run
    step: int                  # 0 = prefill, 1..N = decode step
    layer_index: int           # 0..L-1 among the MoE layers
    layer_id: int              # the layer's key in the trace files
    phase: str                 # "prefill" or "decode"
    placement: str             # mode used for this layer
    predictor: str             # mode used for this layer
    token_selections: int      # sum of the batch's expert counts in this layer
    die_busy_ns: np.ndarray    # (D,) busy time of each die in this layer
    die_tokens: np.ndarray     # (D,) token selections computed on each die
    die_copies: np.ndarray     # (D,) predictor copies each die holds for this layer, after it ran
    link_bytes: np.ndarray     # (n_links,) bytes over each directed link (Mesh.links order)
    layer_time_ns: float       # barrier time of the layer: slowest die or link
    local_read_bytes: int
    remote_read_bytes: int
    local_write_bytes: int
    hops: int
    weight_reads: int          # tasks, i.e. expert weight reads, in this layer
    local_weight_reads: int    # of which served by the reading die's own HBM
    totals: dict               # the run's summary fields so far (same keys as `summary --json`)
    # added by the engine work (defaults keep older constructors valid):
    die_hbm_bytes: np.ndarray | None = None     # (D,) bytes each die's HBM served: own reads, reads for others, copy writes
    die_d2d_in_bytes: np.ndarray | None = None  # (D,) bytes arriving for each die: remote weights, request headers
    header_bytes: int = 0                       # request header bytes of this layer's remote reads
    copies_made: int = 0                        # predictor copies written in this layer
    evictions: int = 0                          # copies evicted in this layer

    @property
    def die_utilization(self) -> np.ndarray:
        if self.layer_time_ns <= 0:
            return np.zeros_like(self.die_busy_ns)
        return self.die_busy_ns / self.layer_time_ns
