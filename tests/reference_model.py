"""A slow, obvious pure-Python model of the wafer simulator: plain loops, dicts and sets, no numba.

It restates the model of waferview.sim (see that package's docstrings and REPRODUCTION.md) independently
of the engine's code. The fast engine must agree with it to 1e-9 relative on every summary number and on
per-layer die busy times and link bytes. When they disagree, read this file first.
Only numpy's seeded permutation is shared (so both pick the same batch).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np


# ---------------------------------------------------------------- the wafer

def home_of(num_experts, num_dies):
    q = num_experts // num_dies
    home = {}
    for e in range(num_experts):
        if e < q * num_dies:
            home[e] = e // q
        else:
            home[e] = (e - q * num_dies) % num_dies
    return home


class RefMesh:
    def __init__(self, width, height):
        self.w, self.h = width, height
        self.n = width * height
        # directed links sorted by (src, dst), as the engine numbers them
        self.links = [(a, b) for a in range(self.n) for b in range(self.n) if self.distance(a, b) == 1]
        self.link_index = {ab: i for i, ab in enumerate(self.links)}

    def xy(self, d):
        return d % self.w, d // self.w

    def distance(self, a, b):
        (ax, ay), (bx, by) = self.xy(a), self.xy(b)
        return abs(ax - bx) + abs(ay - by)

    def route(self, a, b):
        """Dies visited from a to b, x first then y, as a list of (from, to) hops."""
        x, y = self.xy(a)
        bx, by = self.xy(b)
        hops = []
        while x != bx:
            nx = x + (1 if bx > x else -1)
            hops.append((y * self.w + x, y * self.w + nx))
            x = nx
        while y != by:
            ny = y + (1 if by > y else -1)
            hops.append((y * self.w + x, ny * self.w + x))
            y = ny
        return hops


# ---------------------------------------------------------------- the batch

def pick_batch(trace, batch, seed):
    R = trace.requests
    if batch is None:
        batch = R
    order = np.random.default_rng(seed).permutation(R)
    return [int(order[i % R]) for i in range(batch)]   # with repeats


def request_rows(trace, r):
    """(prefill rows, decode rows) of request r as lists of per-layer lists of expert ids."""
    p0, p1 = int(trace.prefill_offsets[r]), int(trace.prefill_offsets[r + 1])
    d0, d1 = int(trace.decode_offsets[r]), int(trace.decode_offsets[r + 1])
    pre = [[[int(x) for x in trace.prefill_ids[i, l]] for l in range(trace.model.moe_layers)] for i in range(p0, p1)]
    dec = [[[int(x) for x in trace.decode_ids[i, l]] for l in range(trace.model.moe_layers)] for i in range(d0, d1)]
    return pre, dec


class RefBatch:
    def __init__(self, trace, batch, seed):
        self.members = pick_batch(trace, batch, seed)
        self.size = len(self.members)
        rows = {r: request_rows(trace, r) for r in set(self.members)}
        self.rows = [rows[r] for r in self.members]
        self.steps = 1 + max(len(dec) for _, dec in self.rows)
        L = trace.model.moe_layers
        # tokens of each step: at step s>=1, rows of requests still decoding
        self.step_rows = []   # step -> list of (member index, row as per-layer lists)
        self.step_rows.append([(i, row) for i, (pre, _) in enumerate(self.rows) for row in pre])
        for s in range(1, self.steps):
            self.step_rows.append([(i, dec[s - 1]) for i, (_, dec) in enumerate(self.rows) if len(dec) >= s])
        self.counts = []
        for s in range(self.steps):
            per_layer = []
            for l in range(L):
                c = {}
                for _, row in self.step_rows[s]:
                    for e in row[l]:
                        c[e] = c.get(e, 0) + 1
                per_layer.append(c)
            self.counts.append(per_layer)


def heatmap_top_sets(trace, rb, top_n):
    """top[s][l][a] = set of the top_n positive entries of heatmap row a as used at step s."""
    L = trace.model.moe_layers
    H = [dict() for _ in range(L)]   # H[l][(a, b)] = count

    def add(l, prev, cur):
        for a in prev:
            for b in cur:
                H[l][(a, b)] = H[l].get((a, b), 0) + 1

    def tops():
        out = []
        for l in range(L):
            rows = {}
            for (a, b), v in H[l].items():
                rows.setdefault(a, []).append((-v, b))
            out.append({a: {b for _, b in sorted(entries)[:top_n]} for a, entries in rows.items()})
        return out

    for pre, _ in rb.rows:
        for i in range(len(pre) - 1):
            for l in range(L):
                add(l, pre[i][l], pre[i + 1][l])
    result = [tops()]
    for s in range(1, rb.steps):
        for pre, dec in rb.rows:
            if len(dec) < s:
                continue
            if s == 1:
                if not pre:
                    continue
                prev = pre[-1]
            else:
                prev = dec[s - 2]
            for l in range(L):
                add(l, prev[l], dec[s - 1][l])
        result.append(tops())
    return result


# ---------------------------------------------------------------- the simulator

class RefSim:
    def __init__(self, trace, hw, *, batch=None, seed=0, placement="allo", predictor="heatmap",
                 block_size=50, max_split=5, top_n=None, eviction=None, copy_slots=None,
                 bytes_per_param=2.0):
        m = trace.model
        self.m, self.hw = m, hw
        self.eb = math.ceil(3 * m.hidden * m.expert_inter * bytes_per_param)   # bytes of one expert
        self.mesh = RefMesh(hw.width, hw.height)
        self.D, self.L, self.E = self.mesh.n, m.moe_layers, m.num_experts
        self.rb = RefBatch(trace, batch, seed)
        self.home = home_of(self.E, self.D)
        self.placement, self.predictor = placement, predictor
        self.block_size, self.max_split = block_size, max_split
        self.top_n = top_n if top_n is not None else math.ceil(0.2 * self.E)
        self.eviction = eviction or "admit"
        # base: each (step, layer) starts its round-robin at a die drawn from the seed (same draw as the engine's
        # documented one: default_rng((seed, 0xBA5E)).integers(0, D, size=(steps, layers)))
        self.base_first_die = np.random.default_rng((int(seed), 0xBA5E)).integers(
            0, self.D, size=(self.rb.steps, self.L), dtype=np.int64).tolist()
        usable = int(round(hw.hbm_gb * 1e9 * (1 - hw.hbm_reserved_fraction)))
        self.fits = True
        self.slots = {}
        for d in range(self.D):
            homed = sum(1 for e in range(self.E) if self.home[e] == d)
            home_bytes = homed * self.L * self.eb
            self.fits = self.fits and home_bytes <= usable
            free = (usable - home_bytes) // self.eb
            self.slots[d] = max(free, 0) if copy_slots is None else copy_slots
        eff = None
        for bound, e in hw.compute_efficiency.get(m.key, hw.compute_efficiency.get("default")):
            if bound is None or self.rb.size <= bound:
                eff = e
                break
        self.flops_per_ns = hw.die_tflops * 1e3 * eff
        self.hbm_rate = hw.hbm_bytes_per_ns * hw.hbm_efficiency.get(m.key, hw.hbm_efficiency["default"])
        self.link_rate = hw.link_bytes_per_ns * hw.link_efficiency
        self.copies = {d: OrderedDict() for d in range(self.D)}   # d -> {(layer, e): last used}, LRU first
        self.reads = {d: {} for d in range(self.D)}   # d -> {(layer, e): reads of e by d away from its home}
        self.heat = heatmap_top_sets(trace, self.rb, self.top_n) if predictor == "heatmap" else None
        self.layers = []   # per (step, layer) records
        self.allo_plans_without_copies = self.allo_plans_with_copies = 0   # allo layers that had copies

    def holds(self, d, l, e, use_copies=True):
        return self.home[e] == d or (use_copies and (l, e) in self.copies[d])

    def source(self, d, l, e, use_copies=True):
        if self.holds(d, l, e, use_copies):
            return d
        if not use_copies:
            return self.home[e]
        holders = [self.home[e]] + sorted(h for h in range(self.D) if (l, e) in self.copies[h])
        best = holders[0]
        for h in holders[1:]:
            if self.mesh.distance(d, h) < self.mesh.distance(d, best):
                best = h
        return best

    # -- placements: lists of (expert, die, tokens)
    def place(self, s, l, counts):
        active = sorted(e for e, c in counts.items() if c > 0)
        if self.placement == "base":   # round-robin from this (step, layer)'s start die
            first = self.base_first_die[s][l]
            return [(e, (first + i) % self.D, counts[e]) for i, e in enumerate(active)]
        if self.placement == "ep":
            return [(e, self.home[e], counts[e]) for e in active]
        return self.allo(l, counts, active)

    def allo(self, l, counts, active):
        # plan with and without this layer's copies; keep the lower estimated layer time (ties: copies)
        tasks, est = self.allo_plan(l, counts, active, use_copies=True)
        if not any((l, e) in self.copies[d] for e in active for d in range(self.D)):
            return tasks   # no active expert has a copy: both plans are the same
        home_tasks, home_est = self.allo_plan(l, counts, active, use_copies=False)
        if home_est < est:
            self.allo_plans_without_copies += 1
            return home_tasks
        self.allo_plans_with_copies += 1
        return tasks

    def allo_plan(self, l, counts, active, use_copies):
        D = self.D
        est = {d: {"cl": 0.0, "cr": 0.0, "dram": 0.0, "d2d": 0.0} for d in range(D)}

        def t(d):
            x = est[d]
            return max(max(x["cl"], x["dram"]), x["d2d"]) + x["cr"]

        read_hbm = self.eb / self.hbm_rate
        read_link = self.eb / self.link_rate
        per_token = self.m.flops_per_token / self.flops_per_ns
        total = sum(counts[e] for e in active)
        thr = max(total // len(active), 512) if active else 512
        tasks = []
        for e in sorted(active, key=lambda e: (counts[e], e)):
            r = counts[e]
            cands = []
            for d in range(D):
                src = self.source(d, l, e, use_copies)
                hops = self.mesh.distance(d, src)
                if hops <= 1:
                    holder = src == d
                    key = t(d) if holder else t(d) + (read_link + hops * self.hw.hop_latency_ns)
                    rank = 0 if d == self.home[e] else (1 if holder else 2)   # ties: home, other holders, others
                    cands.append((key, rank, d, src))
            cands.sort()
            cands = cands[:min(len(cands), max(self.max_split, r // thr))]
            assigned = {}
            left = r
            while left > 0:
                b = min(self.block_size, left)
                tb = b * per_token
                best = None
                for _, rank, d, src in cands:
                    not_holder = rank == 2
                    first = d not in assigned
                    x = est[d]
                    if not not_holder:
                        cost = max(max(x["cl"] + tb, x["dram"] + (read_hbm if first else 0.0)), x["d2d"]) + x["cr"]
                    else:
                        y = est[src]
                        c_exec = max(max(x["cl"], x["dram"]), x["d2d"] + (read_link if first else 0.0)) + x["cr"] + tb
                        c_src = max(max(y["cl"], y["dram"] + (read_hbm if first else 0.0)), y["d2d"]) + y["cr"]
                        cost = max(c_exec, c_src)
                    if best is None or cost < best[0] or (cost == best[0] and not not_holder and best[1]):
                        best = (cost, not_holder, d, src)
                _, not_holder, d, src = best
                first = d not in assigned
                if not not_holder:
                    est[d]["cl"] += tb
                    if first:
                        est[d]["dram"] += read_hbm
                else:
                    est[d]["cr"] += tb
                    if first:
                        est[d]["d2d"] += read_link
                        est[src]["dram"] += read_hbm
                assigned[d] = assigned.get(d, 0) + b
                left -= b
            tasks.extend((e, d, assigned[d]) for d in sorted(assigned))
        return tasks, max(t(d) for d in range(D))

    # -- predictors: (want per task, predicted set or None)
    def predict(self, s, l, tasks, sources):
        nxt = self.next_active(s, l)
        remote = [src != d for (e, d, _), src in zip(tasks, sources)]
        if self.predictor == "off":
            return [False] * len(tasks), None
        if self.predictor == "lru":
            return remote, None
        if self.predictor == "oracle":
            if nxt is None:
                return [False] * len(tasks), None
            return [rm and e in nxt for (e, d, _), rm in zip(tasks, remote)], set(nxt)
        top = self.heat[s][l]
        per_die = {}
        for e, d, _ in tasks:
            per_die.setdefault(d, set()).update(top.get(e, set()))
        want = [rm and e in per_die[d] for (e, d, _), rm in zip(tasks, remote)]
        return want, set().union(*per_die.values()) if per_die else set()

    def next_active(self, s, l):
        if s + 1 >= self.rb.steps:
            return None
        return {e for e, c in self.rb.counts[s + 1][l].items() if c > 0}

    def run(self):
        for s in range(self.rb.steps):
            for l in range(self.L):
                self.layers.append(self.one_layer(s, l, len(self.layers)))
        return self.summary()

    def one_layer(self, s, l, now):
        m, hw, D = self.m, self.hw, self.D
        counts = self.rb.counts[s][l]
        tasks = self.place(s, l, counts)
        sources = [self.source(d, l, e) for e, d, _ in tasks]
        copy_reads = 0
        for (e, d, _), src in zip(tasks, sources):     # reading a copy makes it most recently used
            if self.home[e] != d:
                self.reads[d][(l, e)] = self.reads[d].get((l, e), 0) + 1
            if src == d and self.home[e] != d and (l, e) in self.copies[d]:
                copy_reads += 1
                self.copies[d].move_to_end((l, e))
                self.copies[d][(l, e)] = now
        want, predicted = self.predict(s, l, tasks, sources)
        copied, evictions = [], 0
        for (e, d, _), src, w in zip(tasks, sources, want):
            if not w or src == d or (l, e) in self.copies[d]:
                copied.append(False)
                continue
            if len(self.copies[d]) >= self.slots[d]:
                if self.eviction == "never" or not self.copies[d]:
                    copied.append(False)
                    continue
                victim, used = next(iter(self.copies[d].items()))
                if used >= now:
                    copied.append(False)
                    continue
                if self.eviction == "admit" and self.reads[d][victim] >= self.reads[d][(l, e)]:
                    copied.append(False)   # the victim has been read at least as often: keep it
                    continue
                del self.copies[d][victim]
                evictions += 1
            self.copies[d][(l, e)] = now
            copied.append(True)
        # costs
        fl_local = [0.0] * D
        fl_remote = [0.0] * D
        dram = [0] * D
        d2d = [0] * D
        max_hops = [0] * D
        tokens = [0] * D
        link_bytes = [0] * len(self.mesh.links)
        rec = {"local": 0, "remote": 0, "hops": 0, "headers": 0, "local_reads": 0,
               "writes": sum(copied) * self.eb, "reads": len(tasks), "copies": sum(copied),
               "evictions": evictions, "tokens": sum(t for _, _, t in tasks), "copy_reads": copy_reads}
        for (e, d, tok), src, c in zip(tasks, sources, copied):
            tokens[d] += tok
            dram[src] += self.eb
            if c:
                dram[d] += self.eb
            if src == d:
                fl_local[d] += tok * m.flops_per_token
                rec["local"] += self.eb
                rec["local_reads"] += 1
            else:
                fl_remote[d] += tok * m.flops_per_token
                rec["remote"] += self.eb
                hops = self.mesh.distance(src, d)
                rec["hops"] += hops
                max_hops[d] = max(max_hops[d], hops)
                d2d[d] += self.eb
                d2d[src] += hw.request_header_bytes
                rec["headers"] += hw.request_header_bytes
                for hop in self.mesh.route(src, d):
                    link_bytes[self.mesh.link_index[hop]] += self.eb
                for hop in self.mesh.route(d, src):
                    link_bytes[self.mesh.link_index[hop]] += hw.request_header_bytes
        busy = []
        for d in range(D):
            b = max(max(fl_local[d] / self.flops_per_ns, dram[d] / self.hbm_rate), d2d[d] / self.link_rate)
            b += fl_remote[d] / self.flops_per_ns
            if tokens[d] > 0 or dram[d] > 0:
                b += hw.hbm_latency_ns + hw.hop_latency_ns * max_hops[d]
            busy.append(b)
        link_time = max([lb / self.link_rate for lb in link_bytes], default=0.0)
        rec["busy"] = busy
        rec["link_bytes"] = link_bytes
        rec["die_tokens"] = tokens
        rec["time"] = max(max(busy), link_time)
        rec["step"] = s
        nxt = self.next_active(s, l)
        rec["pred"] = None
        if self.predictor != "off" and nxt is not None:
            if predicted is None:
                predicted = {e for (e, _, _), c in zip(tasks, copied) if c}
            rec["pred"] = (len(predicted & nxt), len(predicted), len(nxt))
        return rec

    def summary(self):
        D = self.D
        recs = self.layers
        decode = [r for r in recs if r["step"] > 0]
        decode_ns = sum(r["time"] for r in decode)
        decode_tokens = sum(len(rows) for rows in self.rb.step_rows[1:])
        reads = sum(r["reads"] for r in recs)
        preds = [r["pred"] for r in recs if r["pred"] is not None]
        busy_total = sum(sum(r["busy"]) for r in recs)
        time_total = sum(r["time"] for r in recs)
        mean_total = sum(sum(r["busy"]) / D for r in recs)
        on = self.predictor != "off" and preds
        return {
            "batch": self.rb.size,
            "steps": self.rb.steps,
            "token_selections": sum(r["tokens"] for r in recs),
            "decode_time_ms": decode_ns / 1e6,
            "prefill_time_ms": sum(r["time"] for r in recs if r["step"] == 0) / 1e6,
            "throughput_tokens_per_s": decode_tokens / (decode_ns / 1e9) if decode_ns else None,
            "hops": sum(r["hops"] for r in recs),
            "remote_read_bytes": sum(r["remote"] for r in recs),
            "local_read_bytes": sum(r["local"] for r in recs),
            "local_write_bytes": sum(r["writes"] for r in recs),
            "header_bytes": sum(r["headers"] for r in recs),
            "weight_reads": reads,
            "cache_hit_rate": sum(r["local_reads"] for r in recs) / reads if reads else None,
            "predictor_precision": (sum(p[0] for p in preds) / sum(p[1] for p in preds)
                                    if on and sum(p[1] for p in preds) else None),
            "predictor_recall": (sum(p[0] for p in preds) / sum(p[2] for p in preds)
                                 if on and sum(p[2] for p in preds) else None),
            "copies_made": sum(r["copies"] for r in recs),
            "copy_reads": sum(r["copy_reads"] for r in recs),
            "evictions": sum(r["evictions"] for r in recs),
            "copies_held": sum(len(c) for c in self.copies.values()),
            "mean_die_utilization": busy_total / (D * time_total) if time_total else None,
            "die_max_over_mean": sum(max(r["busy"]) for r in recs) / mean_total if mean_total else None,
            "fits_in_hbm": self.fits,
        }
