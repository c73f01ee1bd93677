"""`waferview synth`: synthetic requests in the dataset's exact file format, or straight into a cache."""

from __future__ import annotations

DESCRIPTION = """\
Write synthetic routing traces for one model.

Without --cache: one JSON file per request in the dataset layout
  OUT/<org>/<model>/<benchmark>/<subject>/<index>.json
byte-identical to json.dumps(steps, indent=4) (no trailing newline), indices sorted but not
contiguous and not starting at 0, like the real dataset.
With --cache FILE.wvtrace: the compact cache that every other command reads (fast: 16,384 Qwen
requests take seconds); OUT is then not needed.

Routing is not uniform: per-layer skewed expert popularity, temporal locality, next-layer correlation,
prefill/decode overlap and co-activated pairs, with per-model defaults calibrated against the paper's
statistics (see REPRODUCTION.md). Synthetic batches approximate real routing; they are not real routing."""


def add_arguments(p):
    p.add_argument("--model", required=True, help="qwen3, deepseek, llama4 or kimi")
    p.add_argument("--requests", type=int, required=True, help="number of requests (files) to write")
    p.add_argument("--out", default=None, help="root folder of the dataset layout (JSON files)")
    p.add_argument("--cache", default=None, metavar="FILE.wvtrace", help="write a trace cache instead of JSON")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); the same seed gives the same trace")
    p.add_argument("--benchmark", default="synthetic", help="benchmark folder name (default: synthetic)")
    p.add_argument("--subject", default="synthetic", help="subject folder name (default: synthetic)")
    p.add_argument("--max-decode", type=int, default=None, help="decode steps per request at most (default 128)")


def run(args) -> int:
    import sys
    from dataclasses import replace

    from waferview.errors import InputError
    from waferview.models import get_model

    model = get_model(args.model)
    if args.requests < 1:
        raise InputError(f"--requests {args.requests}: expected at least 1 request")
    if (args.out is None) == (args.cache is None):
        raise InputError("give either --out DIR (JSON files) or --cache FILE.wvtrace")
    if args.max_decode is not None and not 1 <= args.max_decode <= 128:
        raise InputError(f"--max-decode {args.max_decode}: expected 1..128")
    for name in (args.benchmark, args.subject):
        if not name or name in (".", "..") or "\\" in name or name.startswith("/"):
            raise InputError(f"folder name {name!r}: expected a plain relative name")

    from waferview.synth.generate import default_params, generate, generate_to_cache

    params = default_params(model)
    if args.max_decode is not None:
        params = replace(params, max_decode=args.max_decode)
    if args.cache:
        trace = generate_to_cache(model, args.requests, args.seed, args.cache, params)
        where = args.cache
    else:
        from waferview.synth.json_dataset import write_dataset

        trace = generate(model, args.requests, args.seed, params)
        where = str(write_dataset(trace, args.out, benchmark=args.benchmark, subject=args.subject))
    print(f"wrote {trace.requests} synthetic {model.key} requests ({trace.prefill_tokens} prefill rows, "
          f"{trace.decode_tokens} decode steps) to {where}", file=sys.stderr)
    return 0
