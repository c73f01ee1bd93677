"""The sizes of the benchmark: the full run, --quick, and a tiny configuration for the tests.

Every size that differs from the paper's setup is printed with the figures (runner.sizes_note), so a
--quick figure is never mistaken for a full one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PAPER_BATCHES = (4096, 8192, 16384)
PAPER_MESHES = ("5x5", "8x3")
ALL_MODELS = ("qwen3", "deepseek", "llama4", "kimi")


@dataclass(frozen=True)
class BenchSizes:
    name: str
    # engine against the pure-Python reference: one small synthetic batch, every mode
    ref_model: str
    ref_requests: int
    ref_max_decode: int
    ref_prefill_median: float
    engine_repeats: int                    # the engine side is timed best-of-N (it is fast)
    # engine rates
    rate_models: tuple[str, ...]
    rate_batches: tuple[int, ...]
    # distinct synthetic requests per model; batches larger than this reuse requests (seeded order)
    pool_requests: int
    pool_max_decode: int | None            # None: the generator's default (128 decode steps, as the paper)
    # paper sweep: 5 strategies x meshes x batches, per model
    sweep_models: tuple[str, ...]          # measured; the others are estimated
    sweep_batches: tuple[int, ...]
    sweep_meshes: tuple[str, ...]
    # ingest: JSON files written per model
    ingest_requests: int
    ingest_repeats: int
    # peak RSS of one run in a child process
    rss_model: str
    rss_batch: int
    # cold/warm start of `waferview summary` in a subprocess
    start: bool
    # `waferview sweep`'s local pool: pool_seeds chunks of the five strategies at pool_batch on pool_model;
    # and the paper grid through the sweep on 2 workers for grid_models (the others estimated)
    pool_model: str = "qwen3"
    pool_batch: int = 4096
    pool_seeds: int = 4
    grid_models: tuple[str, ...] = ALL_MODELS
    # the paper profile: circuit against fluid links on circuit_batch requests of circuit_model (8x3), and
    # `compare --profile paper` on compare_requests Qwen requests (the study's timed input had 64)
    circuit_model: str = "qwen3"
    circuit_batch: int = 16384
    compare_requests: int = 64

    def as_dict(self) -> dict:
        return asdict(self)


FULL = BenchSizes(
    name="full", ref_model="deepseek", ref_requests=512, ref_max_decode=3, ref_prefill_median=4.0,
    engine_repeats=3, rate_models=("qwen3", "deepseek"), rate_batches=(4096, 16384),
    pool_requests=16384, pool_max_decode=None,
    sweep_models=ALL_MODELS, sweep_batches=PAPER_BATCHES, sweep_meshes=PAPER_MESHES,
    ingest_requests=32, ingest_repeats=3, rss_model="qwen3", rss_batch=16384, start=True)

QUICK = BenchSizes(
    name="quick", ref_model="deepseek", ref_requests=256, ref_max_decode=3, ref_prefill_median=4.0,
    engine_repeats=3, rate_models=("qwen3", "deepseek"), rate_batches=(4096, 16384),
    pool_requests=1024, pool_max_decode=None,
    sweep_models=("qwen3",), sweep_batches=PAPER_BATCHES, sweep_meshes=PAPER_MESHES,
    ingest_requests=8, ingest_repeats=3, rss_model="qwen3", rss_batch=16384, start=True,
    pool_batch=1024, grid_models=("qwen3",), circuit_batch=1024)

# For tests only (seconds, not minutes): the figures are real but meaningless as speed.
TINY = BenchSizes(
    name="tiny", ref_model="deepseek", ref_requests=3, ref_max_decode=2, ref_prefill_median=2.0,
    engine_repeats=1, rate_models=("qwen3", "deepseek"), rate_batches=(8, 16), pool_requests=8, pool_max_decode=4,
    sweep_models=("llama4",), sweep_batches=(8, 16, 32), sweep_meshes=PAPER_MESHES,
    ingest_requests=2, ingest_repeats=1, rss_model="qwen3", rss_batch=16, start=False,
    pool_model="llama4", pool_batch=8, grid_models=("llama4",), circuit_model="llama4", circuit_batch=8,
    compare_requests=4)

CONFIGS = {c.name: c for c in (FULL, QUICK, TINY)}
