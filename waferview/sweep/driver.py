"""Running a plan: rows from the cache, the missing ones on a backend, each finished row cached at once,
assembled (axes + summary fields + speedup and hop reduction against its Base sibling) and handed to the
outputs as it finishes. A row waits only for its Base sibling, so its speedup is known when it is written."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from waferview.sweep.plan import Plan, chunks
from waferview.sweep.results import RowCache


@dataclass
class Outcome:
    rows: list[dict]                    # grid order
    computed: int = 0
    cached: int = 0
    failed: int = 0
    seconds: float = 0.0
    backend: str = "local"
    workers: int = 1
    order: list[int] = field(default_factory=list)   # indices in the order rows were emitted


class InlinePool:
    """Every chunk in this process, one after another (`--workers 0`; tests and debugging)."""
    name = "in-process"
    workers = 0

    def run(self, chunk_list, traces, on_result) -> None:
        from waferview.sweep.runner import one_line, run_chunk
        from waferview.sweep.traces import open_trace

        for t, configs in chunk_list:
            try:
                trace = open_trace(traces[t].ref)
            except Exception as e:
                for index, _ in configs:
                    on_result(index, {"error": one_line(e)})
                continue
            for index, result in run_chunk(trace, configs):
                on_result(index, result)


def _derive(row: dict, base: dict | None) -> None:
    row["speedup_vs_base"] = row["hop_reduction_vs_base"] = None
    if base is None or base["status"] != "ok" or row["status"] != "ok":
        return
    bt, t = base.get("throughput_tokens_per_s"), row.get("throughput_tokens_per_s")
    row["speedup_vs_base"] = t / bt if (bt and t is not None) else None
    row["hop_reduction_vs_base"] = base["hops"] / row["hops"] if row.get("hops") else None


class Assembler:
    """Builds rows and releases each once its Base sibling (if the grid has one) is known."""

    def __init__(self, plan: Plan, emit):
        self.plan, self.emit = plan, emit
        self.rows: dict[int, dict] = {}
        self.held: dict[int, list[int]] = {}          # base index -> rows waiting for it
        self.emitted: list[int] = []

    def add(self, index: int, result: dict) -> None:
        c = self.plan.configs[index]
        row = {"config": index, "status": "ok" if "fields" in result else "failed", "error": result.get("error"),
               **c.columns}
        row.setdefault("strategy", _strategy(c.ns))
        row.update(result.get("fields") or {})
        self.rows[index] = row
        base = self.plan.base_of.get(self.plan.siblings[index])
        if base is not None and base != index and base not in self.rows:
            self.held.setdefault(base, []).append(index)
            return
        self._release(index, base)

    def _release(self, index: int, base: int | None) -> None:
        row = self.rows[index]
        _derive(row, self.rows.get(base) if base is not None else None)
        self.emitted.append(index)
        self.emit(row)
        for waiting in self.held.pop(index, []):
            self._release(waiting, index)


def _strategy(ns) -> str:
    from waferview.policies import PAPER_STRATEGIES

    for name, p, q in PAPER_STRATEGIES:
        if (p, q) == (ns.placement, ns.predictor):
            return name
    return f"{ns.placement}/{ns.predictor}"


def run_plan(plan: Plan, pool, cache: RowCache, *, fresh: bool = False, emit=None, on_cached=None) -> Outcome:
    """Rows of every configuration; `emit(row)` as each is final (cached rows first, in grid order)."""
    started = time.perf_counter()
    out = Outcome(rows=[], backend=pool.name, workers=getattr(pool, "workers", 1))
    assembler = Assembler(plan, emit or (lambda row: None))
    missing, found = [], {}
    for c in plan.configs:
        fields = None if fresh else cache.get(plan.keys[c.index])
        if fields is None:
            missing.append(c.index)
        else:
            found[c.index] = fields
    out.cached = len(found)
    if on_cached is not None:
        on_cached(out.cached)
    for index, fields in found.items():
        assembler.add(index, {"fields": fields})

    def on_result(index: int, result: dict) -> None:
        if "fields" in result:
            cache.put(plan.keys[index], result["fields"])
            out.computed += 1
        else:
            out.failed += 1
        assembler.add(index, result)

    if missing:
        pool.run(chunks(plan, missing, max(1, out.workers)), plan.traces, on_result)
    out.rows = [assembler.rows[c.index] for c in plan.configs]
    out.order = assembler.emitted
    out.seconds = time.perf_counter() - started
    return out
