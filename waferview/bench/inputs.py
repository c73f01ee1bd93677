"""The inputs of the benchmark, made once per run in a temporary folder: synthetic trace caches (one
pool of distinct requests per model, memory-mapped), small in-memory batches for the reference, and
JSON files in the dataset's exact format for the ingest figure.

Results are memoised per trace object (counts, heatmap), so every suite asks for a *fresh* trace
object (`fresh_trace`): nothing one figure computed is reused by the next.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from waferview.models import get_model
from waferview.trace.arrays import TraceArrays


class Workspace:
    """A temporary folder holding the generated inputs; `close()` (or `with`) removes it."""

    def __init__(self, parent: str | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="waferview-bench-", dir=parent))
        self._pools: dict[tuple, Path] = {}
        self._json: dict[tuple[str, int], Path] = {}

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def path(self, name: str) -> Path:
        return self.root / name

    def pool_cache(self, model: str, requests: int, max_decode: int | None = None) -> Path:
        """A .wvtrace of `requests` distinct synthetic requests of `model` (seed 0), made once;
        `max_decode` shortens the requests (tests), None keeps the generator's default."""
        key = (model, int(requests), max_decode)
        if key not in self._pools:
            from waferview.synth.generate import default_params, generate_to_cache

            params = default_params(get_model(model))
            if max_decode is not None:
                params = dataclasses.replace(params, max_decode=int(max_decode))
            path = self.root / f"{model}-{requests}-{max_decode or 'default'}.wvtrace"
            generate_to_cache(model, int(requests), 0, path, params=params)
            self._pools[key] = path
        return self._pools[key]

    def fresh_trace(self, model: str, requests: int, max_decode: int | None = None) -> TraceArrays:
        """A new TraceArrays over the pool cache (memory-mapped; nothing memoised on it yet)."""
        from waferview.trace.cache import load_cache

        return load_cache(self.pool_cache(model, requests, max_decode))[0]

    def json_dataset(self, model: str, requests: int) -> Path:
        """`requests` synthetic requests of `model` written as JSON files in the dataset layout
        (seed 1, so they differ from the pools); returns the folder holding them."""
        key = (model, int(requests))
        if key not in self._json:
            from waferview.synth.generate import generate
            from waferview.synth.json_dataset import write_dataset

            trace = generate(model, int(requests), 1)
            self._json[key] = write_dataset(trace, self.root / f"json-{model}")
        return self._json[key]


def small_trace(model: str, requests: int, max_decode: int, prefill_median: float, seed: int = 0) -> TraceArrays:
    """A small synthetic batch in memory: short prompts and few decode steps, so that the pure-Python
    reference finishes in seconds while every layer still sees many requests."""
    from waferview.synth.generate import default_params, generate

    spec = get_model(model)
    params = dataclasses.replace(default_params(spec), max_decode=int(max_decode),
                                 prefill_median=float(prefill_median))
    return generate(spec, int(requests), seed, params)


def fresh_copy(trace: TraceArrays) -> TraceArrays:
    """The same arrays under a new object, so memoised counts and heatmaps are computed again."""
    return dataclasses.replace(trace)
