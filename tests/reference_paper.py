"""The study's simulator as a whole run, slow and obvious: what `--profile paper` means, around the circuit
discipline of reference_circuit.py (one layer). Strategies as that simulator runs them, its prediction
heatmap and copy predicate (quirk included), its copy region and LLC state across layers, its request order
and batch filling, and its outputs exactly as it prints them.

    run_paper(trace, 8, 3, "pred_only", max_iterations=16) -> dict of the study's output columns
    format_row(result) -> the CSV line of tests/fixtures/paper_vectors/deepseek_seed2_16steps.csv

`trace` is a waferview TraceArrays (only model, prefill/decode ids and offsets, request_names are read).
numpy is used where the study's own semantics are numpy's: argsort order of the heatmap rows.
"""

from __future__ import annotations

import math

import numpy as np

from reference_circuit import (DIE_GFLOPS_PER_NS, DRAM_BYTES_PER_NS, DRAM_NS, HOP_NS, LINK_BYTES_PER_NS,
                               STUDY_RULES, CopyRegion, LLCs, PaperMesh, Rates, Rules, Task, run_layer,
                               span_stats)

STRATEGIES = {                 # the study's names -> (placement, copies)
    "base": ("base", False),            # EXP_EVEN, BASELINE_CACHE_LOCAL
    "norm_ep": ("ep", False),           # NEAREST
    "allo_only": ("allo", False),       # OURS
    "pred_only": ("base", True),        # EXP_EVEN, PRED_NEXT_TOKEN
    "allo_and_pred": ("allo", True),    # OURS, PRED_NEXT_TOKEN
}
GIB = 1024 ** 3
COPY_REGION_BYTES = 50 * GIB    # hardware_manage_dram_size_per_die = 50 (GB, counted as GiB)
ITERATIONS_IN_THROUGHPUT = 128  # the study's throughput formula, whatever was simulated
BASE_OFFSET = 7                 # EXP_EVEN: rank k -> die (k + 7) mod N
ALLO_BLOCK = 512
ALLO_MIN_THRESHOLD = 512
ALLO_MIN_CANDIDATES = 5
ALLO_COMPUTE_EFFICIENCY = 0.7   # the planner's fixed u (its _compute_lat), not the engine's table
PLANNER_EFFICIENCY = 0.9        # the planner's DRAM and link efficiency (0.9 for every model)
TOP_SHARE = 0.2                 # the copy predicate's top ceil(0.2 E) of a heatmap row


# ------------------------------------------------------------------ homes, request order, the batch

def home_of(num_experts, num_dies):
    """_expert_placement_map: floor(E/N) contiguous experts per die, leftover expert e on die e mod N."""
    per = num_experts // num_dies
    return {e: (e // per if e <= per * num_dies - 1 else e % num_dies) for e in range(num_experts)}


def study_order(names):
    """Indices of the requests in the study's order: sorted by path component (subject folder, then file
    name), each compared as a string (data_loader.gen_full_trace_data_list)."""
    return sorted(range(len(names)), key=lambda r: tuple(names[r].split("/")))


def batch_requests(names, batch, rotate=0, repeat=True):
    """The batch: the study's order, repeated in order to fill a larger batch (the paper profile).

    rotate, repeat=False: what the study's main.py does instead: rotate the sorted list to start at index
    `rotate` mod R (it passes 8192) and take the first `batch` files, fewer when there are fewer (its
    throughput still multiplies by the nominal batch). For the vectors (64 requests) both agree."""
    order = study_order(names)
    start = rotate % len(order)
    order = order[start:] + order[:start]
    if not repeat:
        return order[:batch]
    return [order[i % len(order)] for i in range(batch)]


def rows(trace, request, iteration, layer):
    """The routing rows of one request in one (iteration, MoE layer): its prefill rows at iteration 0, its
    decode step `iteration` after (none once it has ended)."""
    if iteration == 0:
        return trace.prefill_ids[trace.prefill_offsets[request]:trace.prefill_offsets[request + 1], layer]
    step = trace.decode_offsets[request] + iteration - 1
    if step >= trace.decode_offsets[request + 1]:
        return trace.prefill_ids[0:0, layer]
    return trace.decode_ids[step:step + 1, layer]


def expert_counts(trace, requests, iteration, layer):
    """Tokens per expert, keys in first appearance over requests in order, rows in order, ids in row order
    (the study's Counter.update insertion order)."""
    counts = {}
    for r in requests:
        for row in rows(trace, r, iteration, layer).tolist():
            for e in row:
                counts[e] = counts.get(e, 0) + 1
    return counts


# ------------------------------------------------------------------ placements

def plan_base(counts, num_dies):
    return [[e, n, (rank + BASE_OFFSET) % num_dies] for rank, (e, n) in enumerate(counts.items())]


def plan_ep(counts, home):
    return [[e, n, home[e]] for e, n in counts.items()]


def study_neighbours(mesh: PaperMesh, die):
    """_gen_remote_chiplet_list(distance=1) order: the study's x (our y) -1, its y (our x) -1, +1, x +1."""
    x, y = mesh.coords(die)
    out = []
    for dy, dx in ((-1, 0), (0, -1), (0, 1), (1, 0)):
        if 0 <= x + dx < mesh.width and 0 <= y + dy < mesh.height:
            out.append(mesh.die(x + dx, y + dy))
    return out


class AlloPlanner:
    """_allocate_experts_ours: the coarse per-die time estimate and the block-greedy assignment."""

    def __init__(self, rates: Rates, mesh: PaperMesh):
        self.rates, self.mesh = rates, mesh
        size = rates.expert_bytes
        self.dram_lat = DRAM_NS + size / (DRAM_BYTES_PER_NS * PLANNER_EFFICIENCY)
        self.size = size

    def d2d(self, hops):
        return 2 * hops * HOP_NS + self.size / (LINK_BYTES_PER_NS * PLANNER_EFFICIENCY)

    def compute(self, n):
        ops = 2 * self.rates.hidden * self.rates.inter * n * 3
        return math.ceil(ops / (DIE_GFLOPS_PER_NS * 1000 * ALLO_COMPUTE_EFFICIENCY))

    @staticmethod
    def estimate(state, d):
        cl, cr, dl, dr, d2d_in, _ = (s[d] for s in state)
        return max(max(cl, dl + dr), d2d_in) + cr

    def assign(self, state, allo, data, n, allocated_before):
        """_cal_allo_cost_v2 on a copy of the state."""
        cl, cr, dl, dr, d2d_in, d2d_out = (list(s) for s in state)
        compute = self.compute(n)
        if allo == data:
            cl[allo] += compute
        else:
            d2d = self.d2d(self.mesh.distance(allo, data))
            cr[allo] += compute
            d2d_in[allo] += d2d
            if not allocated_before:
                dr[data] += self.dram_lat
            d2d_out[data] += d2d
        return cl, cr, dl, dr, d2d_in, d2d_out

    def plan(self, counts, home, holders, num_experts):
        """holders(e): dies whose DRAM holds any slice of e in this layer, ascending (home included)."""
        N = self.mesh.num_dies
        mean_count = float(sum(counts.values())) / float(num_experts)
        state = tuple([0.0] * N for _ in range(6))
        for e in counts:                       # every active expert's home pre-charged one whole read
            state[2][home[e]] += self.dram_lat
        out = []
        for e, n in sorted(counts.items(), key=lambda item: (item[1], item[0])):
            local = holders(e)
            local_set = set(local)
            remote = [d for d in study_neighbours(self.mesh, home[e]) if d not in local_set]
            entries = [(self.estimate(state, d), d) for d in local]
            entries += [(self.estimate(state, d) + self.d2d(self.mesh.distance(d, home[e])), d) for d in remote]
            entries.sort()
            k = int(max(ALLO_MIN_CANDIDATES, n // max(mean_count, ALLO_MIN_THRESHOLD)))
            candidates = [d for _, d in entries[:min(len(entries), k)]]
            alloc, first = [0] * len(candidates), [False] * len(candidates)
            remaining = n
            while remaining > 0:
                block = min(ALLO_BLOCK, remaining)
                if remaining - block < ALLO_BLOCK:
                    block = remaining
                best, best_cost = 0, float("inf")
                for i, d in enumerate(candidates):
                    data = d if d in local_set else home[e]
                    trial = self.assign(state, d, data, block, first[i])
                    cost = max(self.estimate(trial, d), self.estimate(trial, data))
                    if cost < best_cost or (cost == best_cost and d in local_set
                                            and candidates[best] not in local_set):
                        best, best_cost = i, cost
                d = candidates[best]
                state = self.assign(state, d, d if d in local_set else home[e], block, first[best])
                first[best] = True
                alloc[best] += block
                remaining -= block
            out += [[e, a, d] for a, d in zip(alloc, candidates) if a]
        return out


def make_plan(placement, counts, home, num_dies, planner=None, holders=None, num_experts=None):
    """The layer's plan as the study hands it to the engine: sorted by expert id (stable)."""
    if placement == "base":
        plan = plan_base(counts, num_dies)
    elif placement == "ep":
        plan = plan_ep(counts, home)
    elif placement == "allo":
        plan = planner.plan(counts, home, holders, num_experts)
    else:
        raise ValueError(placement)
    plan.sort(key=lambda entry: entry[0])
    return plan


# ------------------------------------------------------------------ prediction

class Heatmap:
    """token_pred_heatmap per MoE layer (float64 E x E): all k x k pairs of adjacent prefill tokens of every
    request of the batch; from iteration 2 on, cumulatively, the (i-1 -> i) decode pairs of the requests still
    running at i (iteration 1 adds nothing: the last prompt token -> first decode pair is never counted)."""

    def __init__(self, trace, requests):
        self.trace, self.requests = trace, requests
        L, E = trace.model.moe_layers, trace.model.num_experts
        self.maps = np.zeros((L, E, E))
        for r in requests:
            block = trace.prefill_ids[trace.prefill_offsets[r]:trace.prefill_offsets[r + 1]].astype(np.intp)
            self._add_pairs(block[:-1], block[1:])

    def _add_pairs(self, prev, cur):
        """prev, cur: (tokens, L, k) ids of token t and t+1; every (a in prev row, b in cur row) pair."""
        k = prev.shape[2]
        for layer in range(prev.shape[1]):
            a = np.broadcast_to(prev[:, layer, :, None], (len(prev), k, k)).ravel()
            b = np.broadcast_to(cur[:, layer, None, :], (len(cur), k, k)).ravel()
            np.add.at(self.maps[layer], (a, b), 1)

    def add_decode_pairs(self, iteration):
        trace = self.trace
        running = [r for r in self.requests
                   if trace.decode_offsets[r] + iteration - 1 < trace.decode_offsets[r + 1]]
        if running:
            steps = np.array([trace.decode_offsets[r] + iteration - 1 for r in running])
            self._add_pairs(trace.decode_ids[steps - 1].astype(np.intp), trace.decode_ids[steps].astype(np.intp))


def die_expert_lists(plan):
    """The experts _pred_next_token looks at for each die: its plan entries in order, except that the
    list stops growing once it holds an expert whose id equals the die id (the study tests
    `chiplet_id not in list` on a list of expert ids: the quirk)."""
    lists = {}
    for e, _, d in plan:
        lst = lists.setdefault(d, [])
        if d not in lst:
            lst.append(e)
    return lists


def top_n(row, n):
    """np.argsort(row)[-n:][::-1] as the study takes it (NumPy's default argsort, its tie order)."""
    return np.argsort(row)[-n:][::-1]


def copy_flags(plan, heat_layer, num_experts):
    """(die, expert) -> the copy predicate: some f in the die's list has the expert among the top
    ceil(0.2 E) entries of heatmap row f."""
    n = int(np.ceil(TOP_SHARE * num_experts))
    predicted = {}
    for d, lst in die_expert_lists(plan).items():
        s = set()
        for f in lst:
            s.update(top_n(heat_layer[f], n).tolist())
        predicted[d] = s
    return {(d, e): e in predicted.get(d, ()) for e, _, d in plan}


# ------------------------------------------------------------------ the whole run

def region_slices(region_bytes, slice_bytes):
    return None if region_bytes is None else max(1, math.floor(region_bytes / slice_bytes))


def run_paper(trace, width, height, strategy, *, batch=None, max_iterations=128,
              copy_region_bytes=COPY_REGION_BYTES, rules: Rules = STUDY_RULES, rotate=0, repeat=True,
              layer_key_limit=None, on_layer=None, log=False):
    """The study's simulator on `trace`: iterations 0 (prefill) .. max_iterations-1 (decode), every MoE
    layer with work, each one run_layer from the previous layer's barrier. copy_region_bytes=None is the
    unbounded region of the paper's original code. rotate/repeat: see batch_requests. layer_key_limit: the
    study only simulates layers whose key is below the number of keys in step 1 of its first request (Kimi
    files without the dense key "0": 60, so its last MoE layer is never run); None = every MoE layer.
    on_layer(iteration, layer, plan, LayerResult) sees every layer; log=True keeps every layer's event log.
    Returns the study's output columns plus raw totals."""
    model = trace.model
    placement, copies = STRATEGIES[strategy]
    rates = Rates.for_model(model.key, model.hidden, model.expert_inter)
    mesh = PaperMesh(width, height, rules)
    N, E, L = mesh.num_dies, model.num_experts, model.moe_layers
    home = home_of(E, N)
    nominal_batch = batch or trace.requests
    requests = batch_requests(trace.request_names, nominal_batch, rotate, repeat)
    layer_ids = model.moe_layer_ids
    region = CopyRegion(N, home, region_slices(copy_region_bytes, rates.slice_bytes))
    llc = LLCs(N, rates.slice_bytes)
    planner = AlloPlanner(rates, mesh)
    heat = Heatmap(trace, requests) if copies else None
    # The study classifies each (iteration, layer) per request and keeps the last request's word: iteration 0
    # is "decode" when the batch's last request has a one-token prompt (then no prefill time is reported).
    last = requests[-1]
    stage0 = "prefill" if trace.prefill_offsets[last + 1] - trace.prefill_offsets[last] > 1 else "decode"
    clock, prefill_clock, previous_stage = 0, 0, None
    tot = dict(hops=0, local=0.0, remote=0.0, write=0.0, events=0, llc_hits=0, layers=0,
               used=0, capacity=0, max_over_min=0.0, max_over_avg=0.0)
    logs = [] if log else None
    for iteration in range(max_iterations):
        if heat is not None and iteration >= 2:
            heat.add_decode_pairs(iteration)
        for layer in range(L):
            if layer_key_limit is not None and layer_ids[layer] >= layer_key_limit:
                continue
            counts = expert_counts(trace, requests, iteration, layer)
            if not counts:
                continue
            stage = stage0 if iteration == 0 else "decode"
            if stage == "decode" and previous_stage == "prefill":
                prefill_clock = clock
            previous_stage = stage

            def holders(e, layer=layer):
                return region.dies_holding(layer, e)

            plan = make_plan(placement, counts, home, N, planner, holders, E)
            flags = copy_flags(plan, heat.maps[layer], E) if copies and stage == "decode" else {}
            tasks = [Task(e, d, n, home[e], copy_write=flags.get((d, e), False)) for e, n, d in plan]
            res = run_layer(tasks, mesh, rates, layer=layer, start=clock, region=region, llc=llc,
                            copies_mode=copies, rules=rules, log=log)
            clock = res.end
            used, top, mm, ma = span_stats(res.spans, N)
            tot["used"] += used
            tot["capacity"] += top * N
            tot["max_over_min"] += mm
            tot["max_over_avg"] += ma
            tot["layers"] += 1
            tot["hops"] += res.hops
            tot["local"] += res.local_read_bytes
            tot["remote"] += res.remote_read_bytes
            tot["write"] += res.write_bytes
            tot["events"] += res.events
            tot["llc_hits"] += res.llc_hits
            if logs is not None:
                logs.append((iteration, layer, res.log))
            if on_layer is not None:
                on_layer(iteration, layer, plan, res)
    return outputs(model.key, strategy, width, height, nominal_batch, clock, prefill_clock, tot, region, logs)


def outputs(model_key, strategy, width, height, batch, clock, prefill_clock, tot, region, logs):
    """The study's simulator_runner.collect_simulation_results."""
    time_ms = clock / 1e6
    prefill_ms = prefill_clock / 1e6
    decode_ms = time_ms - prefill_ms
    layers = tot["layers"]
    return {
        "model": model_key, "strategy": strategy, "mesh_long": width, "mesh_short": height, "batch": batch,
        "usage": tot["used"] / tot["capacity"],
        "die_max_over_min": tot["max_over_min"] / layers if layers else 0.0,
        "die_max_over_avg": tot["max_over_avg"] / layers if layers else 0.0,
        "local_dram_read_gib": tot["local"] / GIB,
        "remote_dram_read_gib": tot["remote"] / GIB,
        "local_dram_write_gib": tot["write"] / GIB,
        "hop": tot["hops"],
        "time_ms": time_ms, "prefill_ms": prefill_ms, "decode_ms": decode_ms,
        "throughput": 1 * batch * ITERATIONS_IN_THROUGHPUT / decode_ms * 1000 if decode_ms > 0 else float("inf"),
        "total_ns": clock, "prefill_ns": prefill_clock, "events": tot["events"], "llc_hits": tot["llc_hits"],
        "layers": layers, "evictions": region.evictions, "log": logs,
    }


CSV_COLUMNS = ("model", "strategy", "mesh_long", "mesh_short", "batch", "usage", "die_max_over_min",
               "die_max_over_avg", "local_dram_read_gib", "remote_dram_read_gib", "local_dram_write_gib", "hop",
               "time_ms", "prefill_ms", "decode_ms", "throughput")


def format_row(r):
    """One line as the study's format_result_line prints these columns (same format specs)."""
    return (f"{r['model']},{r['strategy']},{r['mesh_long']},{r['mesh_short']},{r['batch']},"
            f"{r['usage']:.2f},{r['die_max_over_min']:.2f},{r['die_max_over_avg']:.2f},"
            f"{r['local_dram_read_gib']:.0f},{r['remote_dram_read_gib']:.0f},{r['local_dram_write_gib']:.0f},"
            f"{r['hop']},{r['time_ms']:.2f},{r['prefill_ms']:.2f},{r['decode_ms']:.2f},{r['throughput']:.0f}")
