"""Engine.run() without a viewer: many (step, layer)s in one numba call, for the built-in modes.

Engine._advance drives one (step, layer) from Python: the placement's tasks, resolve_sources, the
predictor's choice, kernels.finish_layer. That costs ~10-20 us of Python and dispatch per layer, more
than the simple modes' own work. run_layers makes the same calls, in the same order, on the same
arrays, from inside numba, so a run to the end gives bit for bit what stepping gives. step() (the live
view) keeps the per-layer path; run() uses this one only when both modes are built in (MODE_CODES).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from waferview.policies.placement_allo import allo_tasks
from waferview.policies.placement_base import base_tasks
from waferview.policies.placement_ep import ep_tasks
from waferview.policies.predictor_heatmap import heatmap_wanted
from waferview.sim.kernels import PRED_COPIED, PRED_GIVEN, PRED_NONE, finish_layer, resolve_sources

PLACE_BASE, PLACE_EP, PLACE_ALLO = 0, 1, 2
PRED_OFF, PRED_HEATMAP, PRED_ORACLE, PRED_LRU = 0, 1, 2, 3
PLACEMENT_CODES = {"base": PLACE_BASE, "ep": PLACE_EP, "allo": PLACE_ALLO}
PREDICTOR_CODES = {"off": PRED_OFF, "heatmap": PRED_HEATMAP, "oracle": PRED_ORACLE, "lru": PRED_LRU}


@njit(nogil=True, cache=True)
def run_layers(pos0, pos1, num_layers, steps, placement, predictor, counts, base_first_die, heat_bits,
               step_tokens, home, copies, copy_count, copy_slots, eviction, lru, lru_head, lru_tail, dist,
               route_off, route_links, n_links, expert_bytes, header_bytes, flops_per_token, flops_per_ns,
               hbm_rate, link_rate, hbm_latency, hop_latency, block_size, max_split, die_busy, die_tokens,
               link_bytes, dram_bytes, d2d_bytes, acc_i, acc_f, layer_out):
    """Positions pos0 .. pos1-1 (position = step * num_layers + layer)."""
    D = dist.shape[0]
    E = counts.shape[2]
    no_prediction = np.zeros(0, dtype=np.bool_)
    for position in range(pos0, pos1):
        step = position // num_layers
        layer = position - step * num_layers
        c = counts[step, layer]
        copies_l = copies[layer]
        if placement == PLACE_BASE:
            task_e, task_d, task_tok = base_tasks(c, base_first_die[step, layer], D)
        elif placement == PLACE_EP:
            task_e, task_d, task_tok = ep_tasks(c, home)
        else:
            task_e, task_d, task_tok = allo_tasks(c, home, copies_l, dist, expert_bytes, flops_per_token,
                                                  flops_per_ns, hbm_rate, link_rate, hop_latency, block_size,
                                                  max_split)
        T = task_e.shape[0]
        task_src = resolve_sources(task_e, task_d, home, copies_l, dist)
        has_next = step + 1 < steps
        next_counts = counts[step + 1 if has_next else step, layer]
        pred_mode = PRED_NONE
        predicted = no_prediction
        if predictor == PRED_HEATMAP:
            want, predicted = heatmap_wanted(heat_bits[step, layer], task_e, task_d, task_src, D)
            if has_next:
                pred_mode = PRED_GIVEN
        elif predictor == PRED_ORACLE:
            want = np.zeros(T, dtype=np.bool_)
            if has_next:
                predicted = np.empty(E, dtype=np.bool_)
                for e in range(E):
                    predicted[e] = next_counts[e] > 0
                for t in range(T):
                    want[t] = predicted[task_e[t]] and task_src[t] != task_d[t]
                pred_mode = PRED_GIVEN
        elif predictor == PRED_LRU:
            want = np.empty(T, dtype=np.bool_)
            for t in range(T):
                want[t] = task_src[t] != task_d[t]
            if has_next:
                pred_mode = PRED_COPIED
        else:
            want = np.zeros(T, dtype=np.bool_)
        finish_layer(step, layer, position, want, task_e, task_d, task_tok, task_src, home, copies, copy_count,
                     copy_slots, eviction, lru, lru_head, lru_tail, np.empty(T, dtype=np.bool_), pred_mode,
                     predicted, next_counts, step_tokens[step], dist, route_off, route_links, n_links,
                     expert_bytes, header_bytes, flops_per_token, flops_per_ns, hbm_rate, link_rate,
                     hbm_latency, hop_latency, die_busy, die_tokens, link_bytes, dram_bytes, d2d_bytes, acc_i,
                     acc_f, layer_out)
