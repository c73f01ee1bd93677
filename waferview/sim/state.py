"""The state the kernels share, in a few named groups (NamedTuples of arrays and numbers: numba caches
functions that take them, and a field is read by name, so two swapped rates cannot compile silently).

  KernelContext   what every mode kernel may read: the mesh, the rates, the homes, the schedule's counts
  Rates           flops, bytes and latencies of one run (after efficiencies)
  LayerBuffers    one (step, layer)'s outputs: per-die and per-link arrays plus the named scalars (LAYER)
The copy store (sim.copystore) and the run totals (sim.totals) are groups of their own.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from waferview.wafer.mesh import MeshTables


class Rates(NamedTuple):
    expert_bytes: int          # one expert's weights at the run's precision
    header_bytes: int          # request header of a remote read
    flops_per_token: int       # 2 x expert parameters
    flops_per_ns: float        # die peak x compute efficiency
    hbm_rate: float            # bytes per ns of one die's HBM, after efficiency
    link_rate: float           # bytes per ns of one directed link, after efficiency
    hbm_latency: float         # ns
    hop_latency: float         # ns per link crossed


def rates_for(hardware, model, batch_size: int, bytes_per_param: float) -> Rates:
    from waferview.wafer.homes import expert_bytes

    eff = hardware.compute_eff(model.key, batch_size)
    return Rates(expert_bytes(model, bytes_per_param), int(hardware.request_header_bytes), int(model.flops_per_token),
                 hardware.die_tflops * 1e3 * eff, hardware.hbm_bytes_per_ns * hardware.hbm_eff(model.key),
                 hardware.link_bytes_per_ns * hardware.link_efficiency, float(hardware.hbm_latency_ns),
                 float(hardware.hop_latency_ns))


class KernelContext(NamedTuple):
    mesh: MeshTables
    rates: Rates
    home: np.ndarray           # (E,) int64: each expert's home die
    counts: np.ndarray         # (steps, L, E) int64, read-only: token selections per (step, layer, expert)
    step_tokens: np.ndarray    # (steps,) int64: tokens of each step (prefill rows at step 0)
    step_prefill: np.ndarray   # (steps,) bool, read-only: the step is a prefill (timed apart, not decode): step 0
                               # of a batch (the study: none when its last request has a one-row prompt, see
                               # sim.workload); a recorded batch's prefill/extend passes
    read_nearest: bool         # a remote read comes from the nearest holder (waferview), else from the home die


class LayerTasks(NamedTuple):
    """One (step, layer)'s tasks as the link model gets them (one entry per (expert, die))."""
    expert: np.ndarray         # int64
    die: np.ndarray            # int64: where it runs
    tokens: np.ndarray         # int64
    source: np.ndarray         # int64: the die it reads the weights from (sim.sources)
    want: np.ndarray           # bool: the predictor wants the expert copied to the die
    copied: np.ndarray         # bool: set by the link model: a copy was written


# One (step, layer)'s scalars, in LayerBuffers.scalars[0] (a numpy record: named, one argument).
# bound_kind: what set the layer time (BOUND_*), bound_index: the die or link
BOUND_NONE, BOUND_COMPUTE, BOUND_HBM, BOUND_LINKS, BOUND_LINK = 0, 1, 2, 3, 4
BOUND_KINDS = (None, "compute", "hbm", "links", "link")
LAYER = np.dtype([
    ("layer_time", "f8"), ("busy_sum", "f8"), ("busy_max", "f8"),
    ("local_bytes", "i8"), ("remote_bytes", "i8"), ("hops", "i8"), ("headers", "i8"), ("local_reads", "i8"),
    ("reads", "i8"), ("copies_made", "i8"), ("write_bytes", "i8"), ("copy_reads", "i8"), ("evictions", "i8"),
    ("selections", "i8"),
    ("bound_kind", "i8"), ("bound_index", "i8"), ("bound_busy", "f8"), ("events", "i8"), ("llc_hits", "i8"),
])


class LayerBuffers(NamedTuple):
    die_busy: np.ndarray       # (D,) ns
    die_tokens: np.ndarray     # (D,) token selections computed on each die
    link_bytes: np.ndarray     # (n_links,) bytes over each directed link
    die_hbm_bytes: np.ndarray  # (D,) bytes each die's HBM served (own reads, reads for others, copy writes)
    die_d2d_bytes: np.ndarray  # (D,) bytes arriving for each die (remote weights, request headers)
    die_parts: np.ndarray      # (D, 4) ns of compute, HBM, incoming links and latency behind each die's busy time
    copy_writes: np.ndarray    # (D,) copies written to each die
    scalars: np.ndarray        # (1,) LAYER record
    # (D, D) weight bytes the run's remote reads moved from holder die i to reading die j. A run sum, not
    # the layer's: the link model adds each remote read as it costs it and nothing resets it (a (D, D) reset
    # per layer would cost more than the layer on a big mesh). Its total is the run's remote_read_bytes.
    run_traffic: np.ndarray


def layer_buffers(num_dies: int, num_links: int) -> LayerBuffers:
    return LayerBuffers(np.zeros(num_dies), np.zeros(num_dies, dtype=np.int64), np.zeros(num_links, dtype=np.int64),
                        np.zeros(num_dies, dtype=np.int64), np.zeros(num_dies, dtype=np.int64),
                        np.zeros((num_dies, 4)), np.zeros(num_dies, dtype=np.int64), np.zeros(1, dtype=LAYER),
                        np.zeros((num_dies, num_dies), dtype=np.int64))
