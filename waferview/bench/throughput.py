"""How fast trace JSON becomes arrays, against the floor of orjson.loads on the same bytes.

For the benchmark: `parse_throughput(raws)` times `orjson.loads(raw)` (the objects dropped at
once, the interpreter's GC left as it is) and `parse_bytes(raw)` (everything: loads, checks,
arrays) on the same in-memory bytes, alternating the two, best of `repeats` for each file.
"""

from __future__ import annotations

import time

import orjson

from waferview.models import ModelSpec
from waferview.trace.parse import parse_bytes


def _best(fn, raw: bytes, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(raw)
        best = min(best, time.perf_counter() - t0)
    return best


def parse_throughput(raws: list[bytes], model: ModelSpec | None = None, repeats: int = 5) -> dict:
    """{"bytes", "orjson_s", "parse_s", "orjson_mb_s", "parse_mb_s", "ratio"}; ratio = parse / orjson speed."""
    total = sum(len(r) for r in raws)
    loads_s = parse_s = 0.0
    for i, raw in enumerate(raws):
        name = f"file {i}"
        loads_s += _best(orjson.loads, raw, repeats)
        parse_s += _best(lambda r: parse_bytes(r, name, model), raw, repeats)
    return {
        "bytes": total,
        "orjson_s": loads_s,
        "parse_s": parse_s,
        "orjson_mb_s": total / loads_s / 1e6 if loads_s else 0.0,
        "parse_mb_s": total / parse_s / 1e6 if parse_s else 0.0,
        "ratio": loads_s / parse_s if parse_s else 0.0,
    }
