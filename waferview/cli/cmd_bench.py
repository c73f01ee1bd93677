"""`waferview bench`: the performance benchmark (see BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import os

from waferview.errors import InputError

DESCRIPTION = """\
Measure waferview's speed and memory, each figure a ratio or rate within one run on the same
synthetic input (so a noisy machine still gives comparable figures), with the targets beside them:
  engine_speedup_vs_reference   numba engine over the pure-Python reference (tests/reference_model.py),
                                same batch, every placement x predictor mode; the smallest   >= 100x
  engine_layers_per_s, engine_token_selections_per_s   allo/heatmap on 5x5, Qwen and DeepSeek,
                                batches 4096 and 16384
  ingest_vs_raw_orjson          JSON -> cache MB/s over orjson.loads of the same bytes (GC      >= 0.7
                                paused: the parse alone); the GC-on ratio is shown beside it
  cache_bytes_over_json_bytes   per model                                                      <= 1/20
  sweep_seconds                 the paper sweep of one model: 5 strategies x 2 meshes x batches
                                4096/8192/16384 = 30 runs                                       < 120 s
  sweep_seconds_all_models      the four models                                                 < 8 min
  peak_rss_mb                   a batch-16384 Qwen run in a child process                       < 2 GB
  cold_start_s, warm_start_s    `waferview summary` on the shipped default, fresh numba cache
                                then reused                                                      warm < 2 s
  sweep_parallel_efficiency     `waferview sweep`'s local pool: 2 workers' rate over 1 worker's  >= 1.8x
                                (Qwen, 4 batch seeds x 5 strategies, one chunk per seed)
  sweep_pool_overhead           the 1-worker pool's CPU seconds over the same chunks run in
                                the process, minus 1: startup, warm-up, transfer, results        < 5%
  sweep_paper_grid_seconds      the paper grid (4 models x 2 meshes x 3 batches x 5
                                strategies) through the sweep on 2 workers                       < 60 s
  circuit_events_per_s          the circuit link model (the paper profile's), Base on 16384 Qwen
                                requests, 8x3, one core                                      >= 5 M/s
  circuit_over_fluid_layer_cost the same run's time over the fluid model's
  paper_compare_seconds         `compare --profile paper` of the five strategies, 64 Qwen requests,
                                128 iterations, strategies on every core (--jobs' default)       <= 18 s
The full run takes 5-15 minutes on 2 cores and needs ~9 GB of free disk in the temp folder;
--quick takes 3-6 minutes with smaller synthetic pools (stated in the output)."""


def add_arguments(p):
    p.add_argument("--quick", action="store_true",
                   help="smaller inputs (1024 distinct requests per model, one model's sweep measured, the "
                        "others estimated); 3-6 minutes on 2 cores")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--workdir", default=None, metavar="DIR",
                   help="where the temporary inputs go (default: the system temp folder; removed afterwards)")
    p.add_argument("--config", default=None, choices=("full", "quick", "tiny"), help=argparse.SUPPRESS)


def run(args) -> int:
    import orjson

    from waferview.bench.runner import render_table, run_bench
    from waferview.bench.sizes import CONFIGS

    if args.workdir and not os.path.isdir(args.workdir):
        raise InputError(f"--workdir {args.workdir}: no such directory")
    name = args.config or ("quick" if args.quick else "full")
    result = run_bench(CONFIGS[name], workdir=args.workdir)
    result["provenance"]["command_line"] = getattr(args, "command_line", result["provenance"]["command_line"])
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS).decode())
    else:
        print(render_table(result))
    return 0
