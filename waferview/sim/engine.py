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

import functools

import numpy as np

from waferview.policies import get_placement, get_predictor
from waferview.policies.base import PolicyOptions
from waferview.policies.placement_base import base_first_dies
from waferview.sim import fused, kernels
from waferview.sim.batch import batch_counts, select_batch
from waferview.sim.frame import Frame
from waferview.sim.heatmap import default_top_n, heatmap_top_bits
from waferview.trace.arrays import TraceArrays
from waferview.wafer.hardware import Hardware
from waferview.wafer.mesh import Mesh
from waferview.wafer.homes import capacity, home_dies


_NO_PREDICTION = np.zeros(0, dtype=np.bool_)
_NO_HEAT = np.zeros((1, 1, 1, 1), dtype=np.uint64)   # run_layers' heat_bits when the predictor is not heatmap
_NO_HEAT.setflags(write=False)                          # (read-only like real heat bits: one compiled type)


@functools.lru_cache(maxsize=8)
def _mesh(width: int, height: int) -> Mesh:
    """One Mesh per shape, shared by engines (its routes are built in Python: ~1 ms for 5x5; nothing writes it)."""
    return Mesh(width, height)


class Engine:
    """One batch of a trace replayed on one wafer.

    Engine(trace, hardware, batch=None (all requests), seed=0, placement="allo", predictor="heatmap",
           options=PolicyOptions())
    step() -> Frame | None      one (step, MoE layer); None when finished
    run(progress=None) -> dict  to the end; progress(position, total) now and then; returns summary()
    summary() -> dict           the summary fields so far (fresh dict)
    done, position, total, mesh, placement, predictor, set_placement(name), set_predictor(name),
    fits_in_hbm, hbm_note, batch_note, batch (the Batch: size, requests, weights, steps), counts,
    expert_bytes and bytes_per_param (options.bytes_per_param, 2 = BF16), eviction (options.eviction,
    admit by default), base_first_die (steps x layers: where the base placement's round-robin starts,
    drawn from the seed when the engine is made, so a mode switch does not change it).
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
        self.mesh = _mesh(hw.width, hw.height)
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
        self._lru = np.full((D, L * E, 4), -1, dtype=np.int32)   # per slot: kernels.PREV, NEXT, LAST_USED, READS
        self._lru[:, :, kernels.READS] = 0
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
        self._eviction = kernels.EVICTION_CODES[self.options.eviction]
        self._step_tokens = [int(x) for x in self.batch.tokens_per_step]
        self._step_tokens_array = np.ascontiguousarray(self.batch.tokens_per_step, dtype=np.int64)
        # run totals (kernels.ACC_*), and the last layer's own figures (for step()'s Frame)
        self._acc_i = np.zeros(kernels.ACC_I_SIZE, dtype=np.int64)
        self._acc_f = np.zeros(kernels.ACC_F_SIZE)
        self._layer_out = np.zeros(8)
        self._last_task_count = 0
        self._heat = None
        # base placement: the die that gets each (step, layer)'s first active expert (seeded, fixed per run)
        self.base_first_die = base_first_dies(self.seed, self.batch.steps, L, D)

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
        step, layer = divmod(self.position, self.num_layers)
        placement, predictor = self.placement, self.predictor
        selections = self._advance()
        out = self._layer_out
        copies_made = int(out[6])
        return Frame(
            seq=self.position, total=self.total, step=step, layer_index=layer,
            layer_id=self.model.moe_layer_ids[layer], phase="prefill" if step == 0 else "decode",
            placement=placement, predictor=predictor, token_selections=int(selections),
            die_busy_ns=self._die_busy.copy(), die_tokens=self._die_tokens.copy(),
            die_copies=self.copies[layer].sum(axis=1, dtype=np.int64),
            link_bytes=self._link_bytes.copy(), layer_time_ns=float(out[0]),
            local_read_bytes=int(out[1]), remote_read_bytes=int(out[2]),
            local_write_bytes=copies_made * self.expert_bytes, hops=int(out[3]),
            weight_reads=self._last_task_count, local_weight_reads=int(out[5]), totals=self.summary(),
            die_hbm_bytes=self._die_hbm_bytes.copy(), die_d2d_in_bytes=self._die_d2d_bytes.copy(),
            header_bytes=int(out[4]), copies_made=copies_made, evictions=int(out[7]))

    def run(self, progress=None) -> dict:
        """Simulate to the end; `progress(position, total)` is called now and then. Returns summary().
        With built-in modes a whole step goes through one numba call (sim.fused: the same calls in the
        same order as step(), so the same results); other modes go layer by layer."""
        every = max(1, self.num_layers)
        while not self.done:
            placement = fused.PLACEMENT_CODES.get(self._placement.name)
            predictor = fused.PREDICTOR_CODES.get(self._predictor.name)
            if (placement is None or predictor is None or self._placement is not get_placement(self.placement)
                    or self._predictor is not get_predictor(self.predictor)):
                self._advance()
            else:
                self._run_fused(min(self.total, (self.position // every + 1) * every), placement, predictor)
            if progress is not None and self.position % every == 0:
                progress(self.position, self.total)
        if progress is not None:
            progress(self.position, self.total)
        return self.summary()

    def _run_fused(self, stop: int, placement: int, predictor: int) -> None:
        heat = self.heat_bits() if predictor == fused.PRED_HEATMAP else _NO_HEAT
        hw, mesh, opt = self.hardware, self.mesh, self.options
        fused.run_layers(
            self.position, stop, self.num_layers, self.batch.steps, placement, predictor, self.counts,
            self.base_first_die, heat, self._step_tokens_array, self.home, self.copies, self.copy_count,
            self.copy_slots, self._eviction, self._lru, self._lru_head, self._lru_tail, self.dist,
            mesh.route_offsets, mesh.route_links, mesh.num_links, self.expert_bytes, hw.request_header_bytes,
            self.flops_per_token, self.flops_per_ns, self.hbm_rate, self.link_rate, hw.hbm_latency_ns,
            hw.hop_latency_ns, opt.block_size, opt.max_split, self._die_busy, self._die_tokens,
            self._link_bytes, self._die_hbm_bytes, self._die_d2d_bytes, self._acc_i, self._acc_f,
            self._layer_out)
        self.position = stop

    def _advance(self) -> int:
        """Simulate the next (step, layer); the run totals go to _acc_i/_acc_f, the layer's own figures to
        _layer_out (what step() puts in the Frame). Returns the layer's token selections."""
        position = self.position
        step, layer = divmod(position, self.num_layers)
        counts = self.counts[step, layer]
        copies_l = self.copies[layer]
        predictor = self._predictor
        task_e, task_d, task_tok = self._placement.tasks(self, step, layer, counts, copies_l)
        task_e = np.ascontiguousarray(task_e, dtype=np.int64)
        task_d = np.ascontiguousarray(task_d, dtype=np.int64)
        task_tok = np.ascontiguousarray(task_tok, dtype=np.int64)
        task_src = kernels.resolve_sources(task_e, task_d, self.home, copies_l, self.dist)
        want, predicted = predictor.wanted(self, step, layer, task_e, task_d, task_src)
        has_next = step + 1 < self.batch.steps
        if not (predictor.active and has_next):
            pred_mode, predicted = kernels.PRED_NONE, _NO_PREDICTION
        elif predicted is None:  # the mode's prediction is what it copied
            pred_mode, predicted = kernels.PRED_COPIED, _NO_PREDICTION
        else:
            pred_mode, predicted = kernels.PRED_GIVEN, np.ascontiguousarray(predicted, dtype=np.bool_)
        self._last_task_count = len(task_e)
        hw, mesh = self.hardware, self.mesh
        selections = kernels.finish_layer(
            step, layer, position, np.ascontiguousarray(want, dtype=np.bool_), task_e, task_d, task_tok, task_src,
            self.home, self.copies, self.copy_count, self.copy_slots, self._eviction,
            self._lru, self._lru_head, self._lru_tail, np.empty(len(task_e), dtype=np.bool_),
            pred_mode, predicted, self.counts[step + 1 if has_next else step, layer],
            self._step_tokens[step], self.dist, mesh.route_offsets, mesh.route_links, mesh.num_links,
            self.expert_bytes, hw.request_header_bytes, self.flops_per_token, self.flops_per_ns, self.hbm_rate,
            self.link_rate, hw.hbm_latency_ns, hw.hop_latency_ns, self._die_busy, self._die_tokens,
            self._link_bytes, self._die_hbm_bytes, self._die_d2d_bytes, self._acc_i, self._acc_f, self._layer_out)
        self.position = position + 1
        return selections

    # ---- results -------------------------------------------------------------------------------
    def summary(self) -> dict:
        """The summary fields for the run so far (a fresh dict; definitions in waferview.report.summary)."""
        K = kernels
        acc_i = [int(x) for x in self._acc_i]
        acc_f = [float(x) for x in self._acc_f]
        t = {"decode_token_layers": acc_i[K.ACC_DECODE_TOKEN_LAYERS], "decode_time_ns": acc_f[K.ACC_DECODE_TIME],
             "prefill_time_ns": acc_f[K.ACC_PREFILL_TIME], "busy_sum_ns": acc_f[K.ACC_BUSY_SUM],
             "busy_max_sum_ns": acc_f[K.ACC_BUSY_MAX_SUM], "layer_time_sum_ns": acc_f[K.ACC_LAYER_TIME_SUM],
             "weight_reads": acc_i[K.ACC_WEIGHT_READS], "local_weight_reads": acc_i[K.ACC_LOCAL_WEIGHT_READS],
             "pred_hits": acc_i[K.ACC_PRED_HITS], "pred_size": acc_i[K.ACC_PRED_SIZE],
             "next_active": acc_i[K.ACC_NEXT_ACTIVE], "token_selections": acc_i[K.ACC_TOKEN_SELECTIONS],
             "hops": acc_i[K.ACC_HOPS], "remote_read_bytes": acc_i[K.ACC_REMOTE_READ_BYTES],
             "local_read_bytes": acc_i[K.ACC_LOCAL_READ_BYTES], "local_write_bytes": acc_i[K.ACC_LOCAL_WRITE_BYTES],
             "header_bytes": acc_i[K.ACC_HEADER_BYTES], "copies_made": acc_i[K.ACC_COPIES_MADE],
             "copy_reads": acc_i[K.ACC_COPY_READS], "evictions": acc_i[K.ACC_EVICTIONS]}
        decode_tokens = t["decode_token_layers"] / self.num_layers
        decode_s = t["decode_time_ns"] * 1e-9
        mean_busy_sum = t["busy_sum_ns"] / self.num_dies
        reads = t["weight_reads"]
        on = acc_i[K.ACC_PRED_LAYERS] > 0
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

