"""One (step, layer) of the numba circuit model and of the pure-Python reference (tests/reference_circuit.py)
on the same input, for the agreement tests: random tasks, copies and LLC contents, rule switches."""

from __future__ import annotations

import math

import numpy as np

from reference_circuit import CopyRegion, LLCs, PaperMesh, Rates as RefRates, Rules, Task, run_layer
from reference_paper import home_of
from waferview.links.circuit import CircuitState, efficiency_table
from waferview.links.circuit_layer import simulate_layer
from waferview.links.circuit_rules import CircuitRules
from waferview.sim.copystore import CopyStore, write_slice
from waferview.sim.state import KernelContext, LayerTasks, Rates, layer_buffers
from waferview.wafer.hardware import Hardware
from waferview.wafer.mesh import Mesh

DIMS = {"deepseek": (7168, 2048), "qwen3": (4096, 1536), "llama4": (5120, 8192)}


def reference_rules(rules: CircuitRules, y_first: bool = True) -> Rules:
    return Rules(shared_edges=rules.shared_edges, request_legs_hold_links=rules.request_legs,
                 head_of_line=rules.head_of_line, circuit_occupancy=rules.circuit_latency,
                 route_y_first=y_first, lock_at_creation=rules.lock_at_creation, llc_hits=rules.llc_hits)


class Pair:
    """The two models side by side over several layers (the copy region and the LLCs carry over)."""

    def __init__(self, model_key, width, height, experts, layers, rules: CircuitRules, region_slices):
        self.key, (self.hidden, self.inter) = model_key, DIMS[model_key]
        self.width, self.height, self.E, self.L = width, height, experts, layers
        self.rules = rules
        self.mesh = Mesh(width, height)
        D = self.mesh.num_dies
        hw = Hardware("t", width, height)
        expert_bytes = 3 * self.hidden * self.inter * 2
        eff = hw.hbm_eff(model_key)
        self.rates = Rates(expert_bytes, 16, 2 * 3 * self.hidden * self.inter, 1e6 * 0.7, 3350.0 * eff,
                           1741.0 * 0.9, 300.0, 200.0)
        self.home_d = home_of(experts, D)
        self.home = np.array([self.home_d[e] for e in range(experts)], dtype=np.int64)
        self.store = CopyStore(layers, D, experts, np.zeros(D, dtype=np.int64), "never",
                               region_slices=-1 if region_slices is None else region_slices)
        slice_bytes = expert_bytes / 3
        sets = max(1, int(64 * 1024 * 1024 // (2 * slice_bytes)))
        bounds, values = efficiency_table(hw, model_key)
        self.state = CircuitState(rules.shared_edges, rules.request_legs, rules.head_of_line, rules.circuit_latency,
                                  rules.lock_at_creation, rules.llc_hits, *self._links(rules), float(slice_bytes),
                                  self.hidden, self.inter, 1e6, bounds, values, 110, 100, 30,
                                  np.full((D, sets, 2), -1, dtype=np.int64), np.zeros((D, sets), dtype=np.int64))
        self.ref_mesh = PaperMesh(width, height, reference_rules(rules))
        self.ref_rates = RefRates.for_model(model_key, self.hidden, self.inter)
        self.region = CopyRegion(D, self.home_d, region_slices)
        self.llc = LLCs(D, self.ref_rates.slice_bytes)

    def _links(self, rules):
        if rules.shared_edges:
            edges = {}
            resource = [edges.setdefault((min(a, b), max(a, b)), len(edges)) for a, b in self.mesh.links.tolist()]
        else:
            resource = list(range(self.mesh.num_links))
        return np.array(resource, dtype=np.int64), (max(resource) + 1 if resource else 0)

    def store_copy(self, layer, die, expert, matrix):
        """Put a slice copy in both regions (same order: same LRU)."""
        write_slice(self.store.arrays, layer, die, expert, matrix, 0)
        self.region.store(die, (layer, expert, matrix))

    def run(self, layer, tasks):
        """tasks: [(expert, die, tokens, copy_write)] in plan order. Returns (ours, reference) as dicts."""
        D = self.mesh.num_dies
        e = np.array([t[0] for t in tasks], dtype=np.int64)
        d = np.array([t[1] for t in tasks], dtype=np.int64)
        tok = np.array([t[2] for t in tasks], dtype=np.int64)
        want = np.array([t[3] for t in tasks], dtype=np.bool_)
        counts = np.zeros((1, self.L, self.E), dtype=np.int64)
        ctx = KernelContext(self.mesh.tables("yx"), self.rates, self.home, counts, np.ones(1, dtype=np.int64), 1,
                            False)
        buffers = layer_buffers(D, self.mesh.num_links)
        copied = np.zeros(len(tasks), dtype=np.bool_)
        simulate_layer(self.state, ctx, 1, layer, 1, LayerTasks(e, d, tok, self.home[e], want, copied),
                       self.store.arrays, buffers)
        s = buffers.scalars[0]
        ours = {"end": int(s["layer_time"]), "hops": int(s["hops"]), "events": int(s["events"]),
                "llc_hits": int(s["llc_hits"]), "local": int(s["local_bytes"]), "remote": int(s["remote_bytes"]),
                "write": int(s["write_bytes"]), "busy": buffers.die_busy.tolist()}
        ref_tasks = [Task(int(x), int(y), int(n), self.home_d[int(x)], copy_write=bool(w)) for x, y, n, w in tasks]
        r = run_layer(ref_tasks, self.ref_mesh, self.ref_rates, layer=layer, region=self.region, llc=self.llc,
                      copies_mode=True, rules=self.ref_mesh.rules)
        busy = [0.0] * D
        for die, (begin, end) in r.spans.items():
            busy[die] = float(end - begin)
        theirs = {"end": r.end, "hops": r.hops, "events": r.events, "llc_hits": r.llc_hits,
                  "local": int(round(r.local_read_bytes)), "remote": int(round(r.remote_read_bytes)),
                  "write": int(round(r.write_bytes)), "busy": busy}
        return ours, theirs

    def region_contents(self):
        """(layer, die, expert, matrix) held as copies, in both stores."""
        masks = self.store.arrays.copies
        ours = {(l, dd, e, m) for l, dd, e in zip(*np.nonzero(masks)) for m in range(3) if (masks[l, dd, e] >> m) & 1}
        theirs = {(k[0], dd, k[1], k[2]) for dd, region in enumerate(self.region.copies) for k in region}
        return {tuple(map(int, x)) for x in ours}, theirs


def random_tasks(rng, pair: Pair, max_tasks: int):
    """A plan like the study's: sorted by expert, one task per (expert, die), tokens from 1 to a few hundred."""
    D = pair.mesh.num_dies
    n = int(rng.integers(1, max_tasks + 1))
    pairs = sorted({(int(rng.integers(0, pair.E)), int(rng.integers(0, D))) for _ in range(n)})
    return [(e, d, int(rng.choice([1, 2, 5, 40, 300, 700])), bool(rng.random() < 0.5)) for e, d in pairs]


def ceil_div(a, b):
    return math.ceil(a / b)
