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


def add_jobs_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="run N strategies at once, one per core (default: the cores this process may use; "
                        "1: one after another). The results are the same for any N")


def jobs_from_args(args) -> int:
    """--jobs, else the cores this process may use (InputError below 1)."""
    import os

    if args.jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            return max(1, os.cpu_count() or 1)
    if args.jobs < 1:
        from waferview.errors import InputError

        raise InputError(f"--jobs {args.jobs}: expected 1 or more")
    return args.jobs


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
its home die; allo: the paper's Algorithm 1) -> a task reads the whole expert from its own HBM when
its die holds it (home or copy), else from the nearest holder along the XY route (the weights cross
every link of the route, a 16 B header goes back) -> --predictor may copy a remote read to the
reading die (heatmap: the paper's cross-token heatmap; oracle: the next step's true routing; lru:
every remote read). A die's copy space is its free HBM; when full, --eviction admit (default) drops
its least recently used copy only for an expert the die has read more often, lru always drops it,
never (the paper) keeps every copy and stops copying. Experts are BF16 (--bytes-per-param 2).
Die busy = max(max(compute_local, HBM), d2d_in) + compute_remote + 300 ns (+ 200 ns x its longest
route); layer time = max(slowest die, busiest link): layers are separated by a barrier.
"""


def add_sim_args(p: argparse.ArgumentParser, *, modes: bool = True, links_list: bool = False) -> None:
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
    g.add_argument("--block-size", type=whole_number(1, MAX_KNOB, "a number of tokens"), default=None, metavar="N",
                   help="allo: tokens per assigned block (default 50, the paper's; the paper profile: 512, the "
                        "study's code)")
    g.add_argument("--max-split", type=whole_number(1, MAX_KNOB, "a number of dies"), default=None, metavar="N",
                   help="allo: candidate dies an expert gets at least (default 5)")
    g.add_argument("--top-n", type=whole_number(1, MAX_KNOB, "a number of experts"), default=None, metavar="N",
                   help="heatmap: experts predicted per row (default ceil(0.2 x experts))")
    g.add_argument("--eviction", default=None, choices=EVICTIONS,
                   help="when a die's copy space is full: admit (default) evicts its least recently used "
                        "copy only for an expert the die has read more often; lru always evicts it; never "
                        "copies no more (the paper's rule: copies are kept forever)")
    g.add_argument("--copy-slots", type=whole_number(0, MAX_KNOB, "a number of copies"), default=None, metavar="N",
                   help="expert copies each die may hold (default: its free HBM after weights and reserve)")
    g.add_argument("--bytes-per-param", type=real_number(0, 8, "bytes per weight", low_open=True), default=None,
                   metavar="B",
                   help="expert weight precision: 2 = BF16 (default), 1 = FP8, 0.5 = INT4; sets the "
                        "expert size, hence HBM fit, copy space and traffic (compute stays at the FP16 rate)")
    add_profile_args(p, links_list=links_list)


def add_profile_args(p: argparse.ArgumentParser, *, links_list: bool = False) -> None:
    """--profile and the study's choices, each an option of its own (default: the profile's setting)."""
    from waferview.links import LINK_MODELS
    from waferview.links.circuit_rules import RULES
    from waferview.policies.base import CHOICES
    from waferview.profiles import DEFAULT_PROFILE, PROFILES

    g = p.add_argument_group("profile: the study's simulator's choices, one switch each (waferview.profiles)")
    g.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILES,
                   help="defaults for every choice below: waferview (waferview's own model, the default) or paper "
                        "(every choice the study's simulator makes: circuit links, short-axis-first routes, "
                        "first-seen Base, the study's Allo planner with blocks of 512, reads from home, the "
                        "study's heatmap rule, 50GiB copy regions of slices, the study's batch order and prefill "
                        "rule, 128 steps); an option given explicitly overrides the profile")
    g.add_argument("--links", default=None, metavar="MODEL" + (",..." if links_list else ""),
                   choices=None if links_list else LINK_MODELS,
                   help=f"link model: {', '.join(LINK_MODELS)} (fluid: full-duplex bandwidth bound per link; "
                        "circuit: the study's discipline)" + ("; a comma-separated list runs every strategy under "
                                                             "each" if links_list else ""))
    helps = {"route_order": "route dimension order: xy (x first, waferview) or yx (y = die id div width first, the "
                            "study's order: its short axis on 8x3)",
             "base_order": "base placement: seeded (a seeded round-robin, waferview) or first-seen (the study: by "
                           "first appearance, die (k + 7) mod dies)",
             "allo_planner": "allo: waferview (Algorithm 1 as the paper describes it) or study (the study's code)",
             "read_from": "a remote read comes from the nearest holder (waferview) or the home die (the study)",
             "heatmap_rule": "heatmap predictor: waferview's rule or the study's (its heatmap, NumPy argsort, "
                             "decode only, its copy predicate)",
             "batch_order": "the batch: a seeded permutation (waferview) or the study's order (subject folder, "
                            "then file name, repeated to fill the batch)",
             "prefill_rule": "position (step 0 is the prefill) or study (only when the batch's last request has "
                             "a prompt of more than one row)"}
    for name, allowed in CHOICES.items():
        g.add_argument(f"--{name.replace('_', '-')}", default=None, choices=allowed, help=helps[name])
    g.add_argument("--copy-region", type=copy_region, default=None, metavar="slots|SIZE|unbounded",
                   help="copy store: slots (whole-expert copies in each die's free HBM, waferview), a region of "
                        "weight-matrix slices per die of SIZE (e.g. 50GiB, the study's), least recently used "
                        "evicted, or unbounded (the paper's original code)")
    g.add_argument("--max-steps", type=whole_number(1, MAX_KNOB, "a number of steps"), default=None, metavar="N",
                   help="simulate at most N steps, the prefill included (the paper profile: 128)")
    g.add_argument("--circuit-off", type=rule_list, default=None, metavar="RULE,...",
                   help=f"circuit model: switch rules of the study's discipline off: {', '.join(RULES)} (waferview "
                        "explain measures each)")


_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def copy_region(text: str):
    """slots -> "slots", unbounded -> "unbounded", a size (50GiB, 53687091200, 2.5TB) -> bytes."""
    import re

    t = text.strip().lower()
    if t in ("slots", "unbounded"):
        return t
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?", t)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: expected slots, unbounded or a size such as 50GiB")
    value = int(float(m.group(1)) * _UNITS[m.group(2) or "b"])
    if not 1 <= value <= 1 << 50:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a region size from 1 byte to 1 PiB")
    return value


def rule_list(text: str) -> tuple:
    from waferview.links.circuit_rules import RULES

    names = tuple(n.strip().replace("-", "_") for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in RULES + ("none",)]
    if bad:
        raise argparse.ArgumentTypeError(f"{bad[0]!r}: expected rules among {', '.join(RULES)} (or none)")
    return tuple(n for n in names if n != "none")


def whole_number(low: int, high: int, what: str, why: str = ""):
    """An argparse type: an integer in [low, high], else one line naming the range and `why` it is the
    range (never an int that overflows a kernel's int64, never a float)."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected {what}, an integer from {low:,} to {high:,}") from None
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


_OPTION_NAMES = ("block_size", "max_split", "top_n", "eviction", "copy_slots", "bytes_per_param", "route_order",
                 "base_order", "allo_planner", "read_from", "heatmap_rule", "batch_order", "prefill_rule",
                 "copy_region", "max_steps")


def resolved_settings(args) -> dict:
    """Every choice of the run: given on the command line, else the profile's, else the option's default
    (PolicyOptions' field defaults, links fluid)."""
    from waferview.profiles import DEFAULT_PROFILE, settings

    profile = getattr(args, "profile", None) or DEFAULT_PROFILE
    chosen = settings(profile)
    for name in _OPTION_NAMES + ("links",):
        value = getattr(args, name, None)
        if value is not None:
            chosen[name] = value
    if chosen.get("copy_region") == "slots":
        chosen["copy_region"] = None
    off = getattr(args, "circuit_off", None)
    if off is not None:
        chosen["circuit_off"] = off
    chosen["profile"] = profile
    return chosen


def policy_options_from_args(args, links: str | None = None):
    from waferview.links.circuit_rules import CircuitRules
    from waferview.policies.base import PolicyOptions

    chosen = resolved_settings(args)
    fields = {k: chosen[k] for k in _OPTION_NAMES if k in chosen}
    return PolicyOptions(**fields, circuit_rules=CircuitRules.without(chosen.get("circuit_off", ())),
                         profile=chosen["profile"])


def links_from_args(args) -> str:
    from waferview.links import DEFAULT_LINKS

    return resolved_settings(args).get("links") or DEFAULT_LINKS


def engine_from_args(args, trace, *, placement: str | None = None, predictor: str | None = None, workload=None):
    """An Engine for `trace` from the parsed simulation options (modes may be overridden; workload: a batch
    drawing shared with other engines, drawn with the same batch options)."""
    from waferview.sim.engine import Engine
    from waferview.wafer.hardware import load_hardware

    hw = load_hardware(args.mesh)
    report = setup_progress()
    try:
        return Engine(trace, hw, batch=args.batch, seed=args.seed,
                      placement=placement or getattr(args, "placement", "allo"),
                      predictor=predictor or getattr(args, "predictor", "heatmap"), links=links_from_args(args),
                      options=policy_options_from_args(args), workload=workload, progress=report)
    finally:
        report.close()


def load_source_from_args(args):
    """What the source options name: TraceArrays, or RecordedPasses for a batch-major or count-only capture."""
    from waferview.trace.source import load_source

    return load_source(args.source, model=args.model, strict=args.strict, use_cache=not args.no_cache,
                       fmt=getattr(args, "fmt", None))


def load_trace_from_args(args):
    """What the simulation commands replay: a per-request trace (TraceArrays) or recorded batches
    (RecordedPasses: one step per recorded forward pass, sim.recorded)."""
    return load_source_from_args(args)


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
