"""Options shared by several commands. Keep imports light: this module loads for --help."""

from __future__ import annotations

import argparse

from waferview.limits import BATCH_WHY, MAX_BATCH, MAX_KNOB, MAX_SEED
from waferview.policies.base import EVICTIONS

SOURCE_HELP = ("a dataset-layout directory, one .json trace file, a waferview cache (.wvtrace), "
               "hf:<org>/<model>[/<benchmark>[/<subject>]], or a serving engine's capture (see --format); "
               "default: the shipped synthetic trace in assets/")
FORMATS = ("vllm", "sglang", "sglang-recorder", "megatron", "trtllm-stats")  # = trace.formats.FORMATS (light import)


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", default=None, metavar="SOURCE", help=SOURCE_HELP)
    p.add_argument("--model", default=None, metavar="MODEL",
                   help="qwen3, deepseek, llama4, kimi, or a model description .json file for any other MoE model "
                        "(fields: key, num_layer_keys, dense_layers or moe_layer_ids, top_k, num_experts, hidden, "
                        "expert_inter; examples in assets/models/); inferred from the path or the file when "
                        "omitted; serving-engine captures need it")
    p.add_argument("--format", dest="fmt", default=None, choices=FORMATS,
                   help="read SOURCE as this serving engine's capture instead of detecting it: vllm or sglang (one "
                        "JSON response per line), sglang-recorder (expert distribution recorder .pt/.npz dumps), "
                        "megatron (router_trace_rank*.jsonl), trtllm-stats (meta_info.json + rank*.safetensors)")
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
    g.add_argument("--batch", type=whole_number(1, MAX_BATCH, "a number of requests", BATCH_WHY), default=None,
                   metavar="N",
                   help="requests replayed together (default: all requests in the trace; when N exceeds "
                        "them, requests are reused in a fixed seeded order and the output says so; at most "
                        f"{MAX_BATCH:,}, 64x the paper's largest batch, so no per-layer count can overflow)")
    g.add_argument("--seed", type=whole_number(0, MAX_SEED, "a seed"), default=0,
                   help="seed of the batch's request order and of where base's round-robin starts in each "
                        "layer (default 0; 0 .. 2^63-1)")
    if modes:
        g.add_argument("--placement", default="allo", metavar="MODE",
                       help=f"task placement: {', '.join(PLACEMENTS)} (default allo)")
        g.add_argument("--predictor", default="heatmap", metavar="MODE",
                       help=f"copy predictor: {', '.join(PREDICTORS)} (default heatmap)")
    g.add_argument("--block-size", type=whole_number(1, MAX_KNOB, "a number of tokens"), default=50, metavar="N",
                   help="allo: tokens per assigned block (default 50, the paper's)")
    g.add_argument("--max-split", type=whole_number(1, MAX_KNOB, "a number of dies"), default=5, metavar="N",
                   help="allo: candidate dies an expert gets at least (default 5)")
    g.add_argument("--top-n", type=whole_number(1, MAX_KNOB, "a number of experts"), default=None, metavar="N",
                   help="heatmap: experts predicted per row (default ceil(0.2 x experts))")
    g.add_argument("--eviction", default="admit", choices=EVICTIONS,
                   help="when a die's copy space is full: admit (default) evicts its least recently used "
                        "copy only for an expert the die has read more often; lru always evicts it; never "
                        "copies no more (the paper's rule: copies are kept forever)")
    g.add_argument("--copy-slots", type=whole_number(0, MAX_KNOB, "a number of copies"), default=None, metavar="N",
                   help="expert copies each die may hold (default: its free HBM after weights and reserve)")
    g.add_argument("--bytes-per-param", type=real_number(0, 8, "bytes per weight", low_open=True), default=2.0,
                   metavar="B",
                   help="expert weight precision: 2 = BF16 (default), 1 = FP8, 0.5 = INT4; sets the "
                        "expert size, hence HBM fit, copy space and traffic (compute stays at the FP16 rate)")


def whole_number(low: int, high: int, what: str, why: str = ""):
    """An argparse type: an integer in [low, high], else one line naming the range and `why` it is the
    range (never an int that overflows a kernel's int64, never a float)."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}, an integer from {low:,} to {high:,}") from None
        if not low <= value <= high:
            shown = text if len(text) <= 30 else text[:27] + "..."
            raise argparse.ArgumentTypeError(f"{shown}: out of range; expected {what} from {low:,} to {high:,}"
                                             + (f" ({why})" if why else ""))
        return value
    parse.__name__ = "integer"
    return parse


def real_number(low: float, high: float, what: str, *, low_open: bool = False):
    """An argparse type: a finite number in [low, high] ((low, high] with low_open)."""
    import math

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (low < value if low_open else low <= value) and value <= high
        if not ok:
            bracket = "(" if low_open else "["
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}, a number in {bracket}{low:g}, {high:g}]")
        return value
    parse.__name__ = "number"
    return parse


def policy_options_from_args(args):
    from waferview.policies.base import PolicyOptions

    return PolicyOptions(block_size=args.block_size, max_split=args.max_split, top_n=args.top_n,
                         eviction=args.eviction, copy_slots=args.copy_slots,
                         bytes_per_param=args.bytes_per_param)


def engine_from_args(args, trace, *, placement: str | None = None, predictor: str | None = None):
    """An Engine for `trace` from the parsed simulation options (modes may be overridden)."""
    from waferview.sim.engine import Engine
    from waferview.wafer.hardware import load_hardware

    hw = load_hardware(args.mesh)
    return Engine(trace, hw, batch=args.batch, seed=args.seed,
                  placement=placement or getattr(args, "placement", "allo"),
                  predictor=predictor or getattr(args, "predictor", "heatmap"),
                  options=policy_options_from_args(args))


def load_source_from_args(args):
    """What the source options name: TraceArrays, or RecordedPasses for a batch-major or count-only capture."""
    from waferview.trace.source import load_source

    return load_source(args.source, model=args.model, strict=args.strict, use_cache=not args.no_cache,
                       fmt=getattr(args, "fmt", None))


def load_trace_from_args(args):
    """The per-request trace the simulation commands replay."""
    from waferview.trace.passes import RecordedPasses

    trace = load_source_from_args(args)
    if isinstance(trace, RecordedPasses):
        # TODO(lead): replay recorded batches (one step per recorded pass) and drop this refusal.
        kind = "per-expert counts" if trace.count_only else "per-token expert ids"
        from waferview.errors import InputError

        raise InputError(f"{trace.source}: recorded batches ({trace.passes} forward passes, {kind}): recorded-batch "
                         "replay is not wired into summary, compare and replay yet (waferview insights reads them)")
    return trace


def run_with_progress(engine, label: str) -> dict:
    """engine.run() with a progress bar on stderr when it is a terminal."""
    try:
        from waferview.progress import Progress
    except ImportError:  # pragma: no cover - progress module not there yet
        return engine.run()
    bar = Progress(engine.total, label)
    last = [0]

    def tick(position, total):
        bar.update(position - last[0])
        last[0] = position

    try:
        return engine.run(progress=tick)
    finally:
        bar.close()
