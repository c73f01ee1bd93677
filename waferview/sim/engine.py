"""The stepwise engine: one (step, MoE layer) at a time, prefill step 0 first (all layers), then
decode step 1, ... The live view calls step(); summary and compare call run(); both go through
_advance(), so a run stepped one layer at a time equals a run to the end, bit for bit.

Per (step, layer): counts c[e] of the batch -> the placement mode's tasks (expert, die, tokens) ->
each task's source (its own die when it holds the expert, else the nearest holder over the XY route)
-> the predictor's copies (remote reads only; capacity and eviction enforced here) -> the layer's
cost (kernels.layer_costs). Placement and predictor may change between layers (set_placement,
set_predictor); nothing restarts. Copies live per (layer, die, expert) and persist across steps.
"""

from __future__ import annotations

import numpy as np

from waferview.policies import get_placement, get_predictor
from waferview.policies.base import PolicyOptions
from waferview.sim import kernels
from waferview.sim.batch import batch_counts, select_batch
from waferview.sim.frame import Frame
from waferview.sim.heatmap import default_top_n, heatmap_top_bits
from waferview.trace.arrays import TraceArrays
from waferview.wafer.hardware import Hardware
from waferview.wafer.mesh import Mesh
from waferview.wafer.placement import capacity, home_dies


class Engine:
    """One batch of a trace replayed on one wafer.

    Engine(trace, hardware, batch=None (all requests), seed=0, placement="allo", predictor="heatmap",
           options=PolicyOptions())
    step() -> Frame | None      one (step, MoE layer); None when finished
    run(progress=None) -> dict  to the end; progress(position, total) now and then; returns summary()
    summary() -> dict           the summary fields so far (fresh dict)
    done, position, total, mesh, placement, predictor, set_placement(name), set_predictor(name),
    fits_in_hbm, hbm_note, batch_note, batch (the Batch: size, requests, weights, steps), counts,
    expert_bytes and bytes_per_param (options.bytes_per_param, 2 = BF16), eviction (options.eviction, lru by
    default), base_next (the base placement's round-robin pointer: run state, kept across mode switches).
    Unknown mode names raise InputError; a mode change applies from the next layer.
    """

    def __init__(self, trace: TraceArrays, hardware: Hardware, *, batch: int | None = None, seed: int = 0,
                 placement: str = "allo", predictor: str = "heatmap", options: PolicyOptions | None = None):
        self.trace = trace
        self.model = m = trace.model
        self.hardware = hw = hardware
        self.options = options or PolicyOptions()
        self.seed = int(seed)
        self._placement = get_placement(placement)
        self._predictor = get_predictor(predictor)
        self.batch = select_batch(trace, batch, seed)
        self.batch_note = self.batch.note
        self.counts = batch_counts(trace, self.batch)
        self.mesh = Mesh(hw.width, hw.height)
        self.num_dies = D = self.mesh.num_dies
        self.num_layers = L = m.moe_layers
        self.num_experts = E = m.num_experts
        self.home = home_dies(E, D)
        self.bytes_per_param = float(self.options.bytes_per_param)
        self.capacity = capacity(m, hw, self.home, self.bytes_per_param)
        self.fits_in_hbm = self.capacity.fits_in_hbm
        self.hbm_note = self.capacity.note(m, hw)
        slots = self.capacity.copy_slots if self.options.copy_slots is None else \
            np.full(D, self.options.copy_slots, dtype=np.int64)
        self.copy_slots = np.ascontiguousarray(slots, dtype=np.int64)
        self.top_n = self.options.top_n if self.options.top_n is not None else default_top_n(E)
        # rates: flops per ns, bytes per ns after efficiencies
        self.compute_efficiency = hw.compute_eff(m.key, self.batch.size)
        self.flops_per_ns = hw.die_tflops * 1e3 * self.compute_efficiency
        self.hbm_rate = hw.hbm_bytes_per_ns * hw.hbm_eff(m.key)
        self.link_rate = hw.link_bytes_per_ns * hw.link_efficiency
        self.expert_bytes = self.capacity.expert_bytes
        self.flops_per_token = m.flops_per_token
        self.dist = self.mesh.dist
        # copy store
        self.copies = np.zeros((L, D, E), dtype=np.uint8)
        self.copy_count = np.zeros(D, dtype=np.int64)
        self.last_used = np.full((L, D, E), -1, dtype=np.int64)
        self._lru_prev = np.full((D, L * E), -1, dtype=np.int64)
        self._lru_next = np.full((D, L * E), -1, dtype=np.int64)
        self._lru_head = np.full(D, -1, dtype=np.int64)
        self._lru_tail = np.full(D, -1, dtype=np.int64)
        # scratch for the layer kernel (copied into frames)
        self._die_busy = np.zeros(D)
        self._die_tokens = np.zeros(D, dtype=np.int64)
        self._link_bytes = np.zeros(self.mesh.num_links, dtype=np.int64)
        self._die_hbm_bytes = np.zeros(D, dtype=np.int64)
        self._die_d2d_bytes = np.zeros(D, dtype=np.int64)
        self.total = self.batch.steps * L
        self.position = 0
        self._t = {k: 0 for k in ("hops", "remote_read_bytes", "local_read_bytes", "local_write_bytes",
                                  "header_bytes", "weight_reads", "local_weight_reads", "copy_reads", "copies_made",
                                  "evictions", "token_selections", "decode_token_layers", "pred_hits",
                                  "pred_size", "next_active")}
        self._t.update(decode_time_ns=0.0, prefill_time_ns=0.0, busy_sum_ns=0.0, busy_max_sum_ns=0.0,
                       layer_time_sum_ns=0.0)
        self._pred_layers = 0
        self._heat = None
        self.base_next = 0   # base placement's round-robin pointer: the next die to receive an active expert

    # ---- modes ---------------------------------------------------------------------------------
    @property
    def placement(self) -> str:
        return self._placement.name

    @property
    def predictor(self) -> str:
        return self._predictor.name

    def set_placement(self, name: str) -> None:
        """Use placement mode `name` from the next layer on (InputError for an unknown name)."""
        self._placement = get_placement(name)

    def set_predictor(self, name: str) -> None:
        """Use predictor mode `name` from the next layer on (InputError for an unknown name)."""
        self._predictor = get_predictor(name)

    @property
    def eviction(self) -> str:
        return self.options.eviction

    # ---- context the modes read ----------------------------------------------------------------
    def heat_bits(self) -> np.ndarray:
        """The batch's heatmap top-n bit masks (computed on first use, shared through the memo, kept here)."""
        if self._heat is None:
            self._heat = heatmap_top_bits(self.trace, self.batch, self.top_n)
        return self._heat

    def next_active(self, step: int, layer: int) -> np.ndarray | None:
        """bool[E]: experts active in `layer` at step+1, or None at the last step."""
        if step + 1 >= self.batch.steps:
            return None
        return self.counts[step + 1, layer] > 0

    # ---- stepping ------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.position >= self.total

    def step(self) -> Frame | None:
        """Simulate the next (step, layer) and return its Frame, or None when the run is finished."""
        if self.done:
            return None
        r = self._advance()
        step, layer = r["step"], r["layer"]
        return Frame(
            seq=self.position, total=self.total, step=step, layer_index=layer,
            layer_id=self.model.moe_layer_ids[layer], phase="prefill" if step == 0 else "decode",
            placement=r["placement"], predictor=r["predictor"], token_selections=r["token_selections"],
            die_busy_ns=self._die_busy.copy(), die_tokens=self._die_tokens.copy(),
            die_copies=self.copies[layer].sum(axis=1, dtype=np.int64),
            link_bytes=self._link_bytes.copy(), layer_time_ns=r["layer_time_ns"],
            local_read_bytes=r["local_read_bytes"], remote_read_bytes=r["remote_read_bytes"],
            local_write_bytes=r["local_write_bytes"], hops=r["hops"], weight_reads=r["weight_reads"],
            local_weight_reads=r["local_weight_reads"], totals=self.summary(),
            die_hbm_bytes=self._die_hbm_bytes.copy(), die_d2d_in_bytes=self._die_d2d_bytes.copy(),
            header_bytes=r["header_bytes"], copies_made=r["copies_made"], evictions=r["evictions"])

    def run(self, progress=None) -> dict:
        """Simulate to the end; `progress(position, total)` is called now and then. Returns summary()."""
        every = max(1, self.num_layers)
        while not self.done:
            self._advance()
            if progress is not None and self.position % every == 0:
                progress(self.position, self.total)
        if progress is not None:
            progress(self.position, self.total)
        return self.summary()

    def _advance(self) -> dict:
        step, layer = divmod(self.position, self.num_layers)
        counts = self.counts[step, layer]
        copies_l = self.copies[layer]
        placement, predictor = self._placement, self._predictor
        task_e, task_d, task_tok = placement.tasks(self, step, layer, counts, copies_l)
        task_e = np.ascontiguousarray(task_e, dtype=np.int64)
        task_d = np.ascontiguousarray(task_d, dtype=np.int64)
        task_tok = np.ascontiguousarray(task_tok, dtype=np.int64)
        task_src = kernels.resolve_sources(task_e, task_d, self.home, copies_l, self.dist)
        now = self.position
        copy_reads = kernels.touch_copies(layer, task_e, task_d, task_src, self.home, self.copies, self.last_used, now,
                             self._lru_prev, self._lru_next, self._lru_head, self._lru_tail)
        want, predicted = predictor.wanted(self, step, layer, task_e, task_d, task_src)
        copied = np.zeros(len(task_e), dtype=np.bool_)
        evictions = kernels.apply_copies(layer, np.ascontiguousarray(want, dtype=np.bool_), task_e, task_d,
                                         task_src, self.copies, self.copy_count, self.copy_slots,
                                         self.last_used, now, self.eviction == "lru", self._lru_prev,
                                         self._lru_next, self._lru_head, self._lru_tail, copied)
        copy_writes = np.bincount(task_d[copied], minlength=self.num_dies).astype(np.int64)
        (layer_time, busy_sum, busy_max, local_b, remote_b, hops, headers, local_reads) = kernels.layer_costs(
            task_e, task_d, task_tok, task_src, copy_writes, self.dist, self.mesh.route_offsets,
            self.mesh.route_links, self.mesh.num_links, self.expert_bytes, self.hardware.request_header_bytes,
            self.flops_per_token, self.flops_per_ns, self.hbm_rate, self.link_rate,
            self.hardware.hbm_latency_ns, self.hardware.hop_latency_ns,
            self._die_busy, self._die_tokens, self._link_bytes, self._die_hbm_bytes, self._die_d2d_bytes)
        n_copied = int(copied.sum())
        t = self._t
        selections = int(task_tok.sum())
        t["token_selections"] += selections
        t["hops"] += int(hops)
        t["remote_read_bytes"] += int(remote_b)
        t["local_read_bytes"] += int(local_b)
        t["local_write_bytes"] += n_copied * self.expert_bytes
        t["header_bytes"] += int(headers)
        t["weight_reads"] += len(task_e)
        t["local_weight_reads"] += int(local_reads)
        t["copies_made"] += n_copied
        t["copy_reads"] += int(copy_reads)
        t["evictions"] += int(evictions)
        t["busy_sum_ns"] += busy_sum
        t["busy_max_sum_ns"] += busy_max
        t["layer_time_sum_ns"] += layer_time
        if step == 0:
            t["prefill_time_ns"] += layer_time
        else:
            t["decode_time_ns"] += layer_time
            t["decode_token_layers"] += int(self.batch.tokens_per_step[step])
        nxt = self.next_active(step, layer)
        if predictor.active and nxt is not None:
            if predicted is None:  # the mode's prediction is what it copied
                predicted = np.zeros(self.num_experts, dtype=np.bool_)
                predicted[task_e[copied]] = True
            t["pred_hits"] += int((predicted & nxt).sum())
            t["pred_size"] += int(predicted.sum())
            t["next_active"] += int(nxt.sum())
            self._pred_layers += 1
        self.position += 1
        return {"step": step, "layer": layer, "placement": placement.name, "predictor": predictor.name,
                "token_selections": selections, "layer_time_ns": float(layer_time),
                "local_read_bytes": int(local_b), "remote_read_bytes": int(remote_b),
                "local_write_bytes": n_copied * self.expert_bytes, "hops": int(hops),
                "weight_reads": len(task_e), "local_weight_reads": int(local_reads),
                "header_bytes": int(headers), "copies_made": n_copied, "evictions": int(evictions)}

    # ---- results -------------------------------------------------------------------------------
    def summary(self) -> dict:
        """The summary fields for the run so far (a fresh dict; definitions in waferview.report.summary)."""
        t = self._t
        decode_tokens = t["decode_token_layers"] / self.num_layers
        decode_s = t["decode_time_ns"] * 1e-9
        mean_busy_sum = t["busy_sum_ns"] / self.num_dies
        reads = t["weight_reads"]
        on = self._pred_layers > 0
        return {
            "mesh": self.hardware.name,
            "dies": self.num_dies,
            "batch": self.batch.size,
            "batch_note": self.batch_note,
            "seed": self.seed,
            "placement": self.placement,
            "predictor": self.predictor,
            "eviction": self.eviction,
            "bytes_per_param": self.bytes_per_param,
            "layers_simulated": self.position,
            "layers_total": self.total,
            "steps": self.batch.steps,
            "batch_prefill_tokens": self.batch.prefill_tokens,
            "batch_decode_tokens": self.batch.decode_tokens,
            "token_selections": t["token_selections"],
            "decode_time_ms": t["decode_time_ns"] * 1e-6,
            "prefill_time_ms": t["prefill_time_ns"] * 1e-6,
            "throughput_tokens_per_s": decode_tokens / decode_s if decode_s > 0 else None,
            "hops": t["hops"],
            "remote_read_bytes": t["remote_read_bytes"],
            "local_read_bytes": t["local_read_bytes"],
            "local_write_bytes": t["local_write_bytes"],
            "header_bytes": t["header_bytes"],
            "weight_reads": reads,
            "cache_hit_rate": t["local_weight_reads"] / reads if reads else None,
            "predictor_precision": (t["pred_hits"] / t["pred_size"] if t["pred_size"] else None) if on else None,
            "predictor_recall": (t["pred_hits"] / t["next_active"] if t["next_active"] else None) if on else None,
            "copies_made": t["copies_made"],
            "copy_reads": t["copy_reads"],
            "evictions": t["evictions"],
            "copies_held": int(self.copy_count.sum()),
            "copy_slots_per_die": int(self.copy_slots.min()) if self.num_dies else 0,
            "mean_die_utilization": (t["busy_sum_ns"] / (self.num_dies * t["layer_time_sum_ns"])
                                     if t["layer_time_sum_ns"] > 0 else None),
            "die_max_over_mean": t["busy_max_sum_ns"] / mean_busy_sum if mean_busy_sum > 0 else None,
            "compute_efficiency": self.compute_efficiency,
            "fits_in_hbm": self.fits_in_hbm,
            "hbm_note": self.hbm_note,
        }

