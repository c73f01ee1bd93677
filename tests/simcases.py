"""Small hand-made traces and wafers for the engine tests (no files, no network)."""

from __future__ import annotations

import numpy as np

from waferview.models import ModelSpec
from waferview.trace.arrays import TraceArrays, concat_requests
from waferview.wafer.hardware import Hardware


def tiny_model(num_experts=8, top_k=2, layers=2, hidden=4096, inter=1536, key="tiny") -> ModelSpec:
    return ModelSpec(key, f"test/{key}", layers, (), False, top_k, num_experts, hidden, inter)


def tiny_hardware(width=2, height=2, **over) -> Hardware:
    fields = dict(name=f"{width}x{height}", width=width, height=height,
                  compute_efficiency={"default": [[None, 0.5]]})
    fields.update(over)
    return Hardware(**fields)


def trace_from_rows(model: ModelSpec, requests: list[tuple[list, list]]) -> TraceArrays:
    """requests = [(prefill rows, decode rows)], each row = per-layer lists of k expert ids."""
    L, k = model.moe_layers, model.top_k
    per = [(np.array(p, dtype=np.int64).reshape(-1, L, k), np.array(d, dtype=np.int64).reshape(-1, L, k))
           for p, d in requests]
    return concat_requests(model, per, [f"req{i}" for i in range(len(requests))], source="test")


def random_trace(rng, model: ModelSpec, requests: int, max_prefill=4, max_decode=5, skew=1.2) -> TraceArrays:
    E, L, k = model.num_experts, model.moe_layers, model.top_k
    w = 1.0 / np.arange(1, E + 1) ** skew
    w /= w.sum()
    perms = [rng.permutation(E) for _ in range(L)]

    def rows(n):
        out = np.empty((n, L, k), dtype=np.int64)
        for i in range(n):
            for l in range(L):
                out[i, l] = perms[l][rng.choice(E, size=k, replace=False, p=w)]
        return out

    per = [(rows(int(rng.integers(1, max_prefill + 1))), rows(int(rng.integers(0, max_decode + 1))))
           for _ in range(requests)]
    return concat_requests(model, per, [f"r{i}" for i in range(requests)], source="random")
