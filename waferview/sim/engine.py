"""The stepwise engine: one batch of a trace replayed on one wafer, one (step, MoE layer) at a time, prefill
step 0 first (all layers), then decode step 1, ...

The Engine composes small objects, one per concern:
  workload  (sim.workload)   the batch, its counts per (step, layer), its heatmap; shareable between engines
  rates     (sim.state)      flops, bytes and latencies of the run, after efficiencies
  store     (sim.copystore)  the predictor copies, their capacity and eviction
  totals    (sim.totals)     the run's sums; `summary()` derives every reported field from them
  layer     (sim.state)      the last layer's outputs (what step() puts in its Frame)
and three bound modes (waferview.modes): a placement, a predictor and a link model, each holding its own
state. All the simulation happens in sim.loop.run_layers; step() runs one position, run() a whole step per
call, so a run stepped one layer at a time equals a run to the end, bit for bit. Modes may change between
layers (set_placement, set_predictor, set_links); nothing restarts.

    Engine(trace, hardware, batch=None (all requests), seed=0, placement="allo", predictor="heatmap",
           links="fluid", options=PolicyOptions(), workload=None (made from trace, batch, seed), progress=None)
    prepare(progress=None)     setup that step() and run() would otherwise do on first use (heatmap, compile)
    step() -> Frame | None     one (step, MoE layer); None when finished
    run(progress=None, stop=None) -> dict   to the end (or to position `stop`); returns summary()
    cancel()                   from any thread: run() raises RunCancelled before its next step
    summary() -> dict          the summary fields so far (definitions in waferview.report.summary)
    record_layers(sink)        from now on, each kernel call's per-layer rows go to sink(LayerChunk)
                               (sim.layerlog); record_layers(None) stops
Unknown mode names raise InputError; a mode change applies from the next layer.
"""

from __future__ import annotations

import math

import numpy as np

from waferview.links import DEFAULT_LINKS, get_link_model
from waferview.policies import get_placement, get_predictor
from waferview.policies.base import PolicyOptions, copy_region_label
from waferview.sim.context import ModeContext
from waferview.sim.copystore import CopyStore
from waferview.sim.frame import Frame, frame_from_layer
from waferview.sim.heatmap import default_top_n
from waferview.sim.kernel_cache import check_once
from waferview.sim.layerlog import LayerRecorder, empty_log
from waferview.sim.loop import loop_for
from waferview.sim.state import KernelContext, layer_buffers, rates_for
from waferview.sim.totals import bottlenecks, run_totals, totals_dict
from waferview.sim.recorded import workload_for
from waferview.sim.workload import Workload
from waferview.wafer.homes import capacity, home_dies
from waferview.wafer.mesh import Mesh

PAPER_STEPS = 128   # the study's throughput multiplies the batch by 128 whatever was simulated
_GET = {"placement": get_placement, "predictor": get_predictor, "links": get_link_model}


def region_slices(copy_region, expert_bytes: int) -> int | None:
    """The copy store's region in slices per die: None for slots, -1 unbounded, else floor(bytes / slice), at
    least 1 (the study's max(1, floor(region / slice)))."""
    if copy_region is None:
        return None
    if copy_region == "unbounded":
        return -1
    return max(1, math.floor(copy_region / (expert_bytes / 3)))


def top_n_for(options, num_experts: int) -> int:
    """The heatmap's row top-n: --top-n, else 20% of the experts rounded up (the study: ceil(0.2 * E) in
    floating point, which is one more for some E, e.g. 15)."""
    if options.top_n is not None:
        return options.top_n
    return int(math.ceil(0.2 * num_experts)) if options.heatmap_rule == "study" else default_top_n(num_experts)


class RunCancelled(Exception):
    """Engine.run() was stopped by cancel() (another run of the same comparison failed, or was interrupted)."""


class Engine:
    def __init__(self, trace, hardware, *, batch: int | None = None, seed: int = 0, placement: str = "allo",
                 predictor: str = "heatmap", links: str = DEFAULT_LINKS, options: PolicyOptions | None = None,
                 workload: Workload | None = None, progress=None):
        check_once()
        self.trace = trace
        self.model = m = trace.model
        self.hardware = hw = hardware
        self.options = opt = options or PolicyOptions()
        modes = {"placement": _GET["placement"](placement), "predictor": _GET["predictor"](predictor),
                 "links": _GET["links"](links)}   # unknown names fail before any work
        if workload is not None and not workload.matches(opt):
            raise ValueError("the workload was drawn with other batch options than these PolicyOptions")
        self.workload = workload if workload is not None else workload_for(trace, batch, seed, opt, progress)
        self.batch = self.workload.batch
        self.counts = self.workload.counts
        self.mesh = mesh = Mesh(hw.width, hw.height)
        self.home = home_dies(m.num_experts, mesh.num_dies)
        self.capacity = capacity(m, hw, self.home, float(opt.bytes_per_param))
        slots = self.capacity.copy_slots if opt.copy_slots is None else np.full(mesh.num_dies, opt.copy_slots)
        self.rates = rates_for(hw, m, self.batch.size, float(opt.bytes_per_param))
        self.store = CopyStore(m.moe_layers, mesh.num_dies, m.num_experts, slots, opt.eviction,
                               region_slices(opt.copy_region, self.rates.expert_bytes))
        self.totals = run_totals(mesh.num_dies, mesh.num_links)
        self.layer = layer_buffers(mesh.num_dies, mesh.num_links)
        self._no_log = empty_log(self.layer.scalars, mesh.num_dies, mesh.num_links)
        self._recorder: LayerRecorder | None = None
        copies = self.store.copies.view()
        copies.setflags(write=False)
        kernel = KernelContext(mesh.tables(opt.route_order), self.rates, self.home, self.counts,
                               self.workload.tokens_per_step, self.workload.step_prefill, opt.read_from == "nearest")
        self.context = ModeContext(mesh, hw, self.home, copies, self.rates, opt, top_n_for(opt, m.num_experts),
                                   self.workload.seed, self.workload, kernel)
        self._bound: dict[tuple[str, str], object] = {}   # bound modes by (kind, name), kept for the run
        self._modes = {kind: self._bind(kind, cls) for kind, cls in modes.items()}
        self.total = self.workload.steps * m.moe_layers
        self.position = 0
        self._cancelled = False

    # ---- modes ---------------------------------------------------------------------------------
    def _bind(self, kind: str, cls):
        key = (kind, cls.name)
        if key not in self._bound:
            self._bound[key] = cls.bind(self.context)
        return self._bound[key]

    def bound_mode(self, kind: str):
        """The bound "placement", "predictor" or "links" mode in use (it holds that mode's state)."""
        return self._modes[kind]

    def _set(self, kind: str, name: str) -> None:
        self._modes[kind] = self._bind(kind, _GET[kind](name))

    def set_placement(self, name: str) -> None:
        """Use placement mode `name` from the next layer on (InputError for an unknown name)."""
        self._set("placement", name)

    def set_predictor(self, name: str) -> None:
        """Use predictor mode `name` from the next layer on (InputError for an unknown name)."""
        self._set("predictor", name)

    def set_links(self, name: str) -> None:
        """Use link model `name` from the next layer on (InputError for an unknown name)."""
        self._set("links", name)

    @property
    def placement(self) -> str:
        return self._modes["placement"].name

    @property
    def predictor(self) -> str:
        return self._modes["predictor"].name

    @property
    def links(self) -> str:
        return self._modes["links"].name

    # ---- facts of the run ------------------------------------------------------------------------
    @property
    def batch_note(self) -> str | None:
        return self.batch.note

    @property
    def fits_in_hbm(self) -> bool:
        return self.capacity.fits_in_hbm

    @property
    def hbm_note(self) -> str | None:
        return self.capacity.note(self.model, self.hardware)

    @property
    def expert_bytes(self) -> int:
        return self.rates.expert_bytes

    @property
    def copies(self) -> np.ndarray:
        return self.store.copies

    @property
    def compute_efficiency(self) -> float:
        return self.hardware.compute_eff(self.model.key, self.batch.size)

    # ---- stepping ------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.position >= self.total

    def prepare(self, progress=None) -> None:
        """Do the setup step() and run() would do on first use: the modes' own (the heatmap) and loading or
        compiling the loop for these modes. progress(label, done, total)."""
        for mode in self._modes.values():
            mode.prepare(progress)
        if progress is not None:
            progress("preparing the kernels (compiled on first use, then cached)", 0, 1)
        self._run_to(self.position)
        if progress is not None:
            progress("preparing the kernels (compiled on first use, then cached)", 1, 1)

    def record_layers(self, sink) -> None:
        """Hand every layer simulated from now on to `sink(chunk)` (a sim.layerlog.LayerChunk per kernel call,
        valid only during the call); None stops recording."""
        self._recorder = None if sink is None else LayerRecorder(sink, self.layer.scalars, self.mesh.num_dies,
                                                                 self.mesh.num_links)

    def _run_to(self, stop: int):
        states = [self._modes[kind].kernel_state() for kind in ("placement", "predictor", "links")]
        start, recorder = self.position, self._recorder
        log = self._no_log if recorder is None else recorder.begin(start, stop - start)
        tasks = loop_for(*states)(start, stop, self.context.kernel, *states, self.store.arrays, self.layer,
                                  self.totals, log)
        self.position = max(self.position, stop)
        if recorder is not None:
            recorder.end(start, stop - start, self.placement, self.predictor, self.links)
        return tasks

    def step(self) -> Frame | None:
        """Simulate the next (step, layer) and return its Frame, or None when the run is finished."""
        if self.done:
            return None
        position = self.position
        tasks = self._run_to(position + 1)
        step, layer = divmod(position, self.model.moe_layers)
        return frame_from_layer(self, step, layer, tasks)

    def run(self, progress=None, stop: int | None = None) -> dict:
        """Simulate to the end, or to position `stop`, one step (all its layers) per kernel call;
        `progress(position, total)` after each. Returns summary()."""
        stop = self.total if stop is None else max(self.position, min(int(stop), self.total))
        every = max(1, self.model.moe_layers)
        while self.position < stop:
            if self._cancelled:
                raise RunCancelled(f"{self.placement}/{self.predictor} stopped at position {self.position}")
            self._run_to(min(stop, (self.position // every + 1) * every))
            if progress is not None:
                progress(self.position, self.total)
        return self.summary()

    def cancel(self) -> None:
        """Make run() (from any thread) stop before its next step, raising RunCancelled."""
        self._cancelled = True

    # ---- results -------------------------------------------------------------------------------
    def summary(self) -> dict:
        """The summary fields for the run so far (a fresh dict; definitions in waferview.report.summary)."""
        t = totals_dict(self.totals)
        D, L = self.mesh.num_dies, self.model.moe_layers
        decode_tokens = t["decode_token_layers"] / L
        decode_s = t["decode_time"] * 1e-9
        mean_busy_sum = t["busy_sum"] / D
        reads = t["weight_reads"]
        on = t["pred_layers"] > 0
        return {
            "mesh": self.hardware.name,
            "dies": D,
            "batch": self.workload.reported_batch,
            "batch_note": self.batch_note,
            "seed": self.workload.seed,
            "placement": self.placement,
            "predictor": self.predictor,
            "eviction": self.options.eviction,
            "bytes_per_param": float(self.options.bytes_per_param),
            "layers_simulated": self.position,
            "layers_total": self.total,
            "steps": self.batch.steps,
            "batch_prefill_tokens": self.batch.prefill_tokens,
            "batch_decode_tokens": self.batch.decode_tokens,
            "token_selections": t["token_selections"],
            "decode_time_ms": t["decode_time"] * 1e-6,
            "prefill_time_ms": t["prefill_time"] * 1e-6,
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
            "copies_held": self.store.held,
            "copy_slots_per_die": int(self.store.arrays.capacity.min()) if D else 0,
            "mean_die_utilization": (t["busy_sum"] / (D * t["layer_time_sum"]) if t["layer_time_sum"] > 0
                                     else None),
            "die_max_over_mean": t["busy_max_sum"] / mean_busy_sum if mean_busy_sum > 0 else None,
            "compute_efficiency": self.compute_efficiency,
            "fits_in_hbm": self.fits_in_hbm,
            "hbm_note": self.hbm_note,
            **self._choices(),
            "paper_throughput": (self.workload.paper_batch * PAPER_STEPS / decode_s
                                 if decode_s > 0 and self.workload.paper_batch is not None else None),
            "paper_usage": t["busy_sum"] / t["span_capacity"] if t["span_capacity"] > 0 else None,
            "paper_die_max_over_min": t["span_max_over_min"] / t["span_layers"] if t["span_layers"] else None,
            "paper_die_max_over_avg": t["span_max_over_mean"] / t["span_layers"] if t["span_layers"] else None,
            "events": t["events"],
            "llc_hits": t["llc_hits"],
            **bottlenecks(self.totals, self.mesh, t["decode_time"], self.position),
            "traffic_matrix": self.layer.run_traffic.tolist(),
            "link_bytes": [{"from": a, "to": b, "bytes": n}
                           for (a, b), n in zip(self.mesh.links.tolist(), self.totals.link_bytes.tolist())],
        }

    def _choices(self) -> dict:
        opt = self.options
        return {"profile": opt.profile, "links": self.links, "route_order": opt.route_order,
                "base_order": opt.base_order, "allo_planner": opt.allo_planner, "read_from": opt.read_from,
                "heatmap_rule": opt.heatmap_rule,
                "copy_region": copy_region_label(opt.copy_region),
                "batch_order": self.workload.order, "prefill_rule": self.workload.prefill_rule,
                "max_steps": opt.max_steps,
                "circuit_rules_off": list(opt.circuit_rules.off)}
