"""`waferview synth`: synthetic requests in the dataset's exact file format, or straight into a cache."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from waferview.errors import InputError

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
statistics (see REPRODUCTION.md). Synthetic batches approximate real routing; they are not real routing.

Labels: --out also writes OUT/.waferview-synth.json (generator, version, model, seed, requests,
parameters); every command reads a SOURCE at or under that folder as synthetic ("synthetic: yes", the
source name ends in "(synthetic)"). Caches written by --cache carry the label themselves.
Safety: --out refuses a folder that already holds *.json files (two datasets would mix) unless
--force; --benchmark and --subject are plain folder names (a/b allowed, never .. or a hidden name);
a run that would not fit memory or disk is refused up front with what it would need; an interrupted
(Ctrl-C, SIGTERM) or failed run removes the files and folders it made."""


_COUNT = re.compile(r"^\s*(\d[\d_]*)\s*(?:(?:\^|\*\*)\s*(\d+)|[eE]\+?(\d+))?\s*$")


def _count(text: str) -> int:
    """A request count: 16384, 16_384, 1e5 or 10^11 (exact integers only)."""
    m = _COUNT.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of requests (e.g. 1000, 1e5, 10^6)")
    base = int(m.group(1).replace("_", ""))
    if m.group(2) is not None:
        if len(m.group(2)) > 3:
            raise argparse.ArgumentTypeError(f"{text!r}: far too many requests")
        return base ** int(m.group(2))
    if m.group(3) is not None:
        if len(m.group(3)) > 3:
            raise argparse.ArgumentTypeError(f"{text!r}: far too many requests")
        return base * 10 ** int(m.group(3))
    return base


MAX_SEED = 2**63 - 1


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number from 0 to 2^63-1") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value}: expected a whole number from 0 to 2^63-1")
    return value


def add_arguments(p):
    p.add_argument("--model", required=True, help="qwen3, deepseek, llama4 or kimi")
    p.add_argument("--requests", type=_count, required=True, metavar="N",
                   help="number of requests (files) to write: 1000, 1e5, 10^6 ... (refused up front when the "
                        "output would not fit memory or disk)")
    p.add_argument("--out", default=None, metavar="DIR", help="root folder of the dataset layout (JSON files)")
    p.add_argument("--cache", default=None, metavar="FILE.wvtrace", help="write a trace cache instead of JSON")
    p.add_argument("--seed", type=_seed, default=0,
                   help="random seed (default 0); the same seed gives the same trace")
    p.add_argument("--benchmark", default="synthetic", help="benchmark folder name (default: synthetic)")
    p.add_argument("--subject", default="synthetic", help="subject folder name (default: synthetic)")
    p.add_argument("--max-decode", type=int, default=None, help="decode steps per request at most (default 128)")
    p.add_argument("--force", action="store_true",
                   help="write into an --out folder that already holds *.json files (files of the same name "
                        "are replaced; the whole folder is then labelled synthetic), or replace a --cache "
                        "file that is not a waferview cache")


def _check_destination(args) -> None:
    from waferview.synth.output import holds_json
    from waferview.trace.cache import is_cache_file

    if args.out is not None:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {args.out}: exists and is not a folder")
        if out.is_dir() and not args.force:
            found = holds_json(out)
            if found is not None:
                raise InputError(f"--out {args.out} already holds trace files ({found}); writing there would "
                                 "mix two datasets: choose a new or empty folder, or pass --force")
    else:
        cache = Path(args.cache)
        if cache.is_dir():
            raise InputError(f"--cache {args.cache}: is a folder; expected a file name such as synth.wvtrace")
        if cache.exists() and not is_cache_file(cache) and not args.force:
            raise InputError(f"--cache {args.cache}: exists and is not a waferview cache; refusing to overwrite "
                             "it (--force replaces it)")


def _manifest_run(args, model, params, subject_folder: Path) -> dict:
    import datetime
    from dataclasses import asdict

    from waferview import __version__
    from waferview.report.provenance import git_commit
    from waferview.trace.manifest import GENERATOR

    return {
        "generator": GENERATOR,
        "waferview_version": __version__,
        "git_commit": git_commit(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": model.key,
        "model_spec": model.to_dict(),
        "requests": args.requests,
        "seed": args.seed,
        "benchmark": args.benchmark,
        "subject": args.subject,
        "folder": subject_folder.relative_to(args.out).as_posix(),
        "parameters": asdict(params),
        "command_line": list(sys.argv),
    }


def run(args) -> int:
    from dataclasses import replace

    from waferview.models import get_model
    from waferview.synth.output import Created, Terminated, check_component, sigterm_unwinds

    model = get_model(args.model)
    if args.requests < 1:
        raise InputError(f"--requests {args.requests}: expected at least 1 request")
    if (args.out is None) == (args.cache is None):
        raise InputError("give either --out DIR (JSON files) or --cache FILE.wvtrace")
    if args.max_decode is not None and not 1 <= args.max_decode <= 128:
        raise InputError(f"--max-decode {args.max_decode}: expected 1..128")
    if args.out is not None:
        parts = [*check_component(model.org, "model folder"), *check_component(model.name, "model folder"),
                 *check_component(args.benchmark, "--benchmark"), *check_component(args.subject, "--subject")]
    _check_destination(args)
    if args.out is not None:
        from waferview.synth.output import refuse_escape

        refuse_escape(Path(args.out).joinpath(*parts), Path(args.out), f"--out {args.out}")

    from waferview.synth.budget import check_fits
    from waferview.synth.generate import default_params, generate, generate_to_cache

    params = default_params(model)
    if args.max_decode is not None:
        params = replace(params, max_decode=args.max_decode)
    check_fits(model, args.requests, params, out=args.out, cache=args.cache)

    created = Created()
    try:
        with sigterm_unwinds():
            try:
                if args.cache:
                    if not os.path.lexists(args.cache):
                        created.files.append(Path(args.cache))   # removed again if the run fails
                    trace = generate_to_cache(model, args.requests, args.seed, args.cache, params, created=created)
                    where = args.cache
                else:
                    from waferview.synth.json_dataset import write_dataset
                    from waferview.synth.output import write_manifest

                    trace = generate(model, args.requests, args.seed, params)
                    out = Path(args.out)
                    created.makedirs(out)
                    # the label goes first: even a run killed with -9 leaves labelled files
                    manifest = write_manifest(out, _manifest_run(args, model, params, out.joinpath(*parts)),
                                              created)
                    where = f"{write_dataset(trace, out, args.benchmark, args.subject, created)} (labelled " \
                            f"synthetic by {manifest})"
            except BaseException:
                created.undo()
                raise
    except Terminated:
        print("waferview synth: terminated; removed what it had written", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("waferview synth: interrupted; removed what it had written", file=sys.stderr)
        return 130
    print(f"wrote {trace.requests} synthetic {model.key} requests ({trace.prefill_tokens} prefill rows, "
          f"{trace.decode_tokens} decode steps) to {where}", file=sys.stderr)
    return 0
