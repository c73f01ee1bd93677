"""Options shared by several commands. Keep imports light: this module loads for --help."""

from __future__ import annotations

import argparse

from waferview.policies.base import EVICTIONS

SOURCE_HELP = ("a dataset-layout directory, one .json trace file, a waferview cache (.wvtrace), or "
               "hf:<org>/<model>[/<benchmark>[/<subject>]]; default: the shipped synthetic trace in assets/")


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE", help=SOURCE_HELP)
    p.add_argument("--model", default=None,
                   help="qwen3, deepseek, llama4 or kimi (inferred from the path or the file when omitted)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first bad trace file (exit 2) instead of skipping it")
    p.add_argument("--no-cache", action="store_true", help="parse the JSON again even if a cache exists")


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


# ---- simulation options shared by summary, compare, replay and bench -----------------------------

SIM_HELP = """\
the modelled wafer (--mesh): 5x5 (Dojo-like) or 8x3 (TSMC-SoW-like) presets, any WxH with the
preset's per-die figures, or a hardware .json file with the preset's fields (copy
waferview/wafer/presets/5x5.json and edit it). Per die: 1000 TFLOPS FP16, 80 GB HBM at 3.35 TB/s
(10% reserved), 1741 bytes/ns per directed link to each neighbour, 200 ns per hop, 300 ns HBM latency,
16 B header per remote read; efficiencies HBM 0.9 (Llama 0.85), links 0.9, compute by model and batch.
The 64 MB LLC and token activations are not modelled (an LLC holds < 2 expert matrices).

Each (step, MoE layer): the batch's token selections per expert -> tasks (expert, die, tokens) from
--placement (base: experts round-robin over dies from a seeded random start per layer; ep: each on
its home die; allo: the paper's Algorithm 1) -> a task reads the whole expert from its own HBM when its die holds it (home or copy),
else from the nearest holder along the XY route (the weights cross every link of the route, a 16 B
header goes back) -> --predictor may copy a remote read to the reading die (heatmap: the paper's
cross-token heatmap; oracle: the next step's true routing; lru: every remote read). A die's copy
space is its free HBM; when full, --eviction admit (default) drops its least recently used copy only
for an expert the die has read more often, lru always drops it, never (the paper) keeps every copy and
stops copying. Experts are BF16 (--bytes-per-param 2).
Die busy = max(max(compute_local, HBM), d2d_in) + compute_remote + 300 ns (+ 200 ns x its longest
route); layer time = max(slowest die, busiest link): layers are separated by a barrier.
"""


def add_sim_args(p: argparse.ArgumentParser, *, modes: bool = True) -> None:
    """--mesh, --batch, --seed, [--placement, --predictor], and the policy knobs."""
    from waferview.policies import PLACEMENTS, PREDICTORS  # light: no numba

    g = p.add_argument_group("simulation")
    g.add_argument("--mesh", default="5x5", metavar="MESH",
                   help="5x5, 8x3, WxH or a hardware .json file (default 5x5)")
    g.add_argument("--batch", type=_positive_or_none, default=None, metavar="N",
                   help="requests replayed together (default: all requests in the trace; when N exceeds "
                        "them, requests are reused in a fixed seeded order and the output says so)")
    g.add_argument("--seed", type=int, default=0, help="seed of the batch's request order and of where base's "
                        "round-robin starts in each layer (default 0)")
    if modes:
        g.add_argument("--placement", default="allo", metavar="MODE",
                       help=f"task placement: {', '.join(PLACEMENTS)} (default allo)")
        g.add_argument("--predictor", default="heatmap", metavar="MODE",
                       help=f"copy predictor: {', '.join(PREDICTORS)} (default heatmap)")
    g.add_argument("--block-size", type=int, default=50, metavar="N",
                   help="allo: tokens per assigned block (default 50, the paper's)")
    g.add_argument("--max-split", type=int, default=5, metavar="N",
                   help="allo: candidate dies an expert gets at least (default 5)")
    g.add_argument("--top-n", type=int, default=None, metavar="N",
                   help="heatmap: experts predicted per row (default ceil(0.2 x experts))")
    g.add_argument("--eviction", default="admit", choices=EVICTIONS,
                   help="when a die's copy space is full: admit (default) evicts its least recently used "
                        "copy only for an expert the die has read more often; lru always evicts it; never "
                        "copies no more (the paper's rule: copies are kept forever)")
    g.add_argument("--copy-slots", type=int, default=None, metavar="N",
                   help="expert copies each die may hold (default: its free HBM after weights and reserve)")
    g.add_argument("--bytes-per-param", type=float, default=2.0, metavar="B",
                   help="expert weight precision: 2 = BF16 (default), 1 = FP8, 0.5 = INT4; sets the "
                        "expert size, hence HBM fit, copy space and traffic (compute stays at the FP16 rate)")


def _positive_or_none(text: str):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of requests") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected a positive number of requests")
    return value


def policy_options_from_args(args):
    from waferview.policies.base import PolicyOptions

    return PolicyOptions(block_size=args.block_size, max_split=args.max_split, top_n=args.top_n,
                         eviction=args.eviction, copy_slots=args.copy_slots,
                         bytes_per_param=args.bytes_per_param)


def engine_from_args(args, trace, *, placement: str | None = None, predictor: str | None = None):
    """An Engine for `trace` from the parsed simulation options (modes may be overridden)."""
    import inspect

    from waferview.sim.engine import Engine
    from waferview.wafer.hardware import load_hardware

    hw = load_hardware(args.mesh)
    report = setup_progress()
    takes = "progress" in inspect.signature(Engine).parameters   # the batch counts' progress
    try:
        return Engine(trace, hw, batch=args.batch, seed=args.seed,
                      placement=placement or getattr(args, "placement", "allo"),
                      predictor=predictor or getattr(args, "predictor", "heatmap"),
                      options=policy_options_from_args(args), **({"progress": report} if takes else {}))
    finally:
        report.close()


def load_trace_from_args(args):
    """The trace named by the source options (helper A's load_source)."""
    from waferview.trace.source import load_source

    return load_source(args.source, model=args.model, strict=args.strict, use_cache=not args.no_cache)


def setup_progress():
    """progress(label, done, total) for an engine's setup: a bar on stderr per label, once that step has
    lasted a second (on a terminal only: waferview.progress). Call .close() when the setup is done."""
    import time

    from waferview.progress import Progress

    now = {"label": None, "since": 0.0, "done": 0, "bar": None}

    def close():
        if now["bar"] is not None:
            now["bar"].close()
            now["bar"] = None

    def report(label, done, total):
        if label != now["label"]:
            close()
            now.update(label=label, since=time.monotonic(), done=0)
        if now["bar"] is None and time.monotonic() - now["since"] >= 1.0:
            now["bar"] = Progress(total if total and total > 1 else None, label)
        if now["bar"] is not None:
            now["bar"].update(max(0, int(done) - now["done"]))
        now["done"] = int(done)

    report.close = close
    return report


def prepare_with_progress(engine) -> None:
    """The engine's setup (heatmap, kernels) before it runs, with setup_progress on stderr. Engines without
    prepare(): the heatmap is built here through its memo (the engine then finds it)."""
    report = setup_progress()
    try:
        prepare = getattr(engine, "prepare", None)
        if callable(prepare):
            prepare(progress=report)
        elif getattr(engine, "predictor", None) == "heatmap" and hasattr(engine, "heat_bits"):
            from waferview.sim.heatmap import heatmap_top_bits

            heatmap_top_bits(engine.trace, engine.batch, engine.top_n, progress=report)
    finally:
        report.close()


def run_with_progress(engine, label: str) -> dict:
    """engine.run() with its setup's and then its own progress bar on stderr when it is a terminal."""
    from waferview.progress import Progress

    prepare_with_progress(engine)
    bar = Progress(engine.total, label)
    last = [0]

    def tick(position, total):
        bar.update(position - last[0])
        last[0] = position

    try:
        return engine.run(progress=tick)
    finally:
        bar.close()
