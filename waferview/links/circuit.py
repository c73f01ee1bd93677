"""`circuit`: the study's own timing discipline (its artefact simulator, as measured and written up in the
paper-profile work; the pure-Python restatement is tests/reference_circuit.py). One (step, layer) is a
discrete-event simulation in integer nanoseconds:

  * every task (expert, die, tokens) makes three chains, one per weight matrix ("slice" = a third of the
    expert), created at the layer's start in (expert, matrix) order; a chain's priority is 1 when its die is
    not the expert's home;
  * a chain is a sequence of stages, each holding resources: the cache port, the DRAM and the compute unit of
    a die, and one resource per mesh edge (both directions, request and data legs: half duplex) that a leg
    holds on every link of its route at once, for 200 ns x hops + its serialisation (a circuit);
  * a stage is admitted when it is created if none of its resources is locked (it then locks them all and
    starts no earlier than any of them is free), else it waits on every one of them; when a stage ends, each
    resource it releases offers itself to the head of its wait queue only (head-of-line);
  * the next layer starts when every stage of this one has ended (a barrier).
Stages of a chain (durations in ns, the study's formulas):
  issue (port of d; 110, or 100 on a hit in d's LLC)
    local:  local read (DRAM of d; 300 + ceil((slice + activations) / (HBM rate)))
              -> [LLC fill (port of d, 30)] + compute (compute of d; ceil(flops / (die rate x u(tokens))))
    remote: request leg (links d -> src; 200 h + ceil(16 / link rate)) -> holder read (DRAM of src)
              -> [LLC fill (port of src, 30)] + data leg (links src -> d; 200 h + ceil(slice / link rate))
              -> [copy write (DRAM of d), when the predictor wants it] + compute
            or, when src's LLC holds the slice, a 100 ns LLC read (port of src) instead of the holder read
Copies and the LLC change in event time: the read path is chosen when the issue stage starts, a local read
refreshes a copy, a copy write stores it (evicting as the copy store's kind says).

The rules of the discipline can be switched off one at a time (CircuitRules; `waferview explain` measures
what each one costs): shared edges, request legs holding links, head-of-line wake-up, circuit occupancy, lock
at creation, LLC hits. The event loop is in links/circuit_engine.py, one layer around it in links/circuit_layer.py.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from waferview.links.base import LinkModel
from waferview.links.circuit_layer import simulate_layer
from waferview.links.circuit_rules import CircuitRules, RULES  # noqa: F401 (the rules live beside the model)
from waferview.modes import register_link_model

class CircuitState(NamedTuple):
    shared_edges: bool
    request_legs: bool
    head_of_line: bool
    circuit_latency: bool
    lock_at_creation: bool
    llc_hits: bool
    link_resource: np.ndarray     # (n_links,) the resource (after the 3 per die) each directed link uses
    n_link_resources: int
    slice_bytes: float            # a third of the expert's bytes
    hidden: int
    inter: int
    compute_rate: float           # operations per ns of one die at efficiency 1
    eff_bounds: np.ndarray        # (k,) int64: compute efficiency u(tokens) = eff_values[first bound >= tokens]
    eff_values: np.ndarray        # (k,) float64 (the last bound is -1: any)
    issue_ns: int                 # the study's cache miss penalty (the issue stage)
    llc_hit_ns: int
    llc_fill_ns: int
    llc: np.ndarray               # (D, sets, ways) int64 slice keys, oldest first, -1 empty (outlives layers)
    llc_len: np.ndarray           # (D, sets) int64


@register_link_model(CircuitState)
@njit(nogil=True, cache=True)
def circuit_layer_costs(state, ctx, step, layer, position, tasks, store, buffers):
    simulate_layer(state, ctx, step, layer, position, tasks, store, buffers)


def efficiency_table(hardware, model_key: str):
    """(bounds, values) of the hardware's compute efficiency table for a model, for lookups by token count."""
    table = hardware.compute_efficiency.get(model_key, hardware.compute_efficiency.get("default", [[None, 0.7]]))
    bounds = np.array([-1 if b is None else int(b) for b, _ in table], dtype=np.int64)
    values = np.array([float(v) for _, v in table])
    return bounds, values


class CircuitLinks(LinkModel):
    name = "circuit"
    help = ("the study's timing discipline: each weight-matrix slice a chain of stages over die resources and "
            "half-duplex mesh edges held as circuits, head-of-line wake-up, a barrier per layer")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.rules = ctx.options.circuit_rules
        mesh, hw, model = ctx.mesh, ctx.hardware, ctx.workload.model
        if self.rules.shared_edges:   # one resource per unordered neighbour pair
            edges = {}
            resource = [edges.setdefault((min(a, b), max(a, b)), len(edges)) for a, b in mesh.links.tolist()]
        else:
            resource = list(range(mesh.num_links))
        self.link_resource = np.array(resource, dtype=np.int64)
        self.n_link_resources = int(self.link_resource.max()) + 1 if len(resource) else 0
        slice_bytes = ctx.rates.expert_bytes / 3
        ways = max(1, int(hw.llc_ways))
        sets = max(1, int(hw.llc_mb * 1024 * 1024 // (ways * slice_bytes)))
        self.llc = np.full((mesh.num_dies, sets, ways), -1, dtype=np.int64)
        self.llc_len = np.zeros((mesh.num_dies, sets), dtype=np.int64)
        self.eff_bounds, self.eff_values = efficiency_table(hw, model.key)
        self.slice_bytes = slice_bytes

    def kernel_state(self):
        r, ctx = self.rules, self.ctx
        model, hw = ctx.workload.model, ctx.hardware
        return CircuitState(r.shared_edges, r.request_legs, r.head_of_line, r.circuit_latency, r.lock_at_creation,
                            r.llc_hits, self.link_resource, self.n_link_resources, float(self.slice_bytes),
                            int(model.hidden), int(model.expert_inter), float(hw.die_tflops) * 1e3,
                            self.eff_bounds, self.eff_values, int(hw.llc_miss_ns), int(hw.llc_hit_ns),
                            int(hw.llc_fill_ns), self.llc, self.llc_len)


MODE = CircuitLinks
