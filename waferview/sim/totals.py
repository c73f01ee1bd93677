"""Run totals: what the summary is made of, summed over the (step, layer)s simulated so far.

RunTotals (the kernels' group):
  sums[0]               a TOTALS record: counts and times, named
  bound_time[5]         ns of decode time whose layer was set by each state.BOUND_* kind
  bound_die_layers      (D, 4) layers (prefill and decode) a die's compute / HBM / links set, by BOUND_* column
  bound_link_layers     (n_links,) layers a link set
  link_bytes            (n_links,) bytes over each directed link (Mesh.links order), weights and headers
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.modes import PRED_COPIED, PRED_NONE
from waferview.sim.state import BOUND_LINK

TOTALS = np.dtype([
    ("token_selections", "i8"), ("hops", "i8"), ("remote_read_bytes", "i8"), ("local_read_bytes", "i8"),
    ("local_write_bytes", "i8"), ("header_bytes", "i8"), ("weight_reads", "i8"), ("local_weight_reads", "i8"),
    ("copies_made", "i8"), ("copy_reads", "i8"), ("evictions", "i8"), ("decode_token_layers", "i8"),
    ("pred_hits", "i8"), ("pred_size", "i8"), ("next_active", "i8"), ("pred_layers", "i8"),
    ("decode_time", "f8"), ("prefill_time", "f8"), ("busy_sum", "f8"), ("busy_max_sum", "f8"),
    ("layer_time_sum", "f8"),
    # the study's die statistics (layers with work; only dies with work in min and mean) and event counts
    ("span_capacity", "f8"), ("span_max_over_min", "f8"), ("span_max_over_mean", "f8"), ("span_layers", "i8"),
    ("events", "i8"), ("llc_hits", "i8"),
])


class RunTotals(NamedTuple):
    sums: np.ndarray
    bound_time: np.ndarray
    bound_die_layers: np.ndarray
    bound_link_layers: np.ndarray
    link_bytes: np.ndarray


def run_totals(num_dies: int, num_links: int) -> RunTotals:
    return RunTotals(np.zeros(1, dtype=TOTALS), np.zeros(5), np.zeros((num_dies, 4), dtype=np.int64),
                     np.zeros(num_links, dtype=np.int64), np.zeros(num_links, dtype=np.int64))


def totals_dict(totals: RunTotals) -> dict:
    """The sums as Python numbers, by field name."""
    rec = totals.sums[0]
    return {name: rec[name].item() for name in TOTALS.names}


@njit(nogil=True, cache=True)
def add_layer(totals, buffers, prefill, step_tokens, task_e, copied, pred_mode, predicted, next_counts):
    """Add one (step, layer) to the totals (the same additions in the same order whichever way the run is
    stepped, so a run stepped layer by layer equals a run to the end, bit for bit)."""
    s = buffers.scalars[0]
    t = totals.sums[0]
    t.token_selections += s.selections
    t.hops += s.hops
    t.remote_read_bytes += s.remote_bytes
    t.local_read_bytes += s.local_bytes
    t.local_write_bytes += s.write_bytes
    t.header_bytes += s.headers
    t.weight_reads += s.reads
    t.local_weight_reads += s.local_reads
    t.copies_made += s.copies_made
    t.copy_reads += s.copy_reads
    t.evictions += s.evictions
    t.busy_sum += s.busy_sum
    t.busy_max_sum += s.busy_max
    t.layer_time_sum += s.layer_time
    if prefill:
        t.prefill_time += s.layer_time
    else:
        t.decode_time += s.layer_time
        t.decode_token_layers += step_tokens
        totals.bound_time[s.bound_kind] += s.layer_time
    t.events += s.events
    t.llc_hits += s.llc_hits
    run_links, layer_links = totals.link_bytes, buffers.link_bytes
    for i in range(layer_links.shape[0]):
        run_links[i] += layer_links[i]
    if task_e.shape[0] > 0:   # the study's usage and die ratios, over dies with work
        busy = buffers.die_busy
        top = 0.0
        low = np.inf
        total = 0.0
        working = 0
        for d in range(busy.shape[0]):
            if busy[d] > 0:
                working += 1
                total += busy[d]
                top = max(top, busy[d])
                low = min(low, busy[d])
        if working > 0:
            t.span_capacity += top * busy.shape[0]
            t.span_max_over_min += top / low
            t.span_max_over_mean += top / (total / working)
            t.span_layers += 1
    if s.bound_kind == BOUND_LINK:
        totals.bound_link_layers[s.bound_index] += 1
    elif s.bound_kind > 0:
        totals.bound_die_layers[s.bound_index, s.bound_kind] += 1
    if pred_mode != PRED_NONE:
        E = next_counts.shape[0]
        if pred_mode == PRED_COPIED:
            predicted = np.zeros(E, dtype=np.bool_)
            for i in range(task_e.shape[0]):
                if copied[i]:
                    predicted[task_e[i]] = True
        hits = 0
        size = 0
        active = 0
        for e in range(E):
            nxt = next_counts[e] > 0
            if predicted[e]:
                size += 1
                if nxt:
                    hits += 1
            if nxt:
                active += 1
        t.pred_hits += hits
        t.pred_size += size
        t.next_active += active
        t.pred_layers += 1


def bottlenecks(totals: RunTotals, mesh, decode_ns: float, layers: int) -> dict:
    """`bound_by` (share of decode time by kind) and `top_bottlenecks` (the resources that set most layers)."""
    from waferview.sim.state import BOUND_KINDS

    shares = {kind: (float(totals.bound_time[i]) / decode_ns if decode_ns > 0 else 0.0)
              for i, kind in enumerate(BOUND_KINDS) if kind is not None}
    found = []
    labels = {1: "compute", 2: "HBM", 3: "incoming links"}
    dies = totals.bound_die_layers
    for d, col in zip(*np.nonzero(dies)):
        found.append((int(dies[d, col]), f"die {d} {labels[int(col)]}"))
    for i in np.flatnonzero(totals.bound_link_layers):
        a, b = mesh.links[i]
        found.append((int(totals.bound_link_layers[i]), f"link {a}->{b}"))
    found.sort(key=lambda item: (-item[0], item[1]))
    top = [{"resource": label, "layers": n, "share": n / layers if layers else 0.0} for n, label in found[:10]]
    return {"bound_by": shares, "top_bottlenecks": top}
