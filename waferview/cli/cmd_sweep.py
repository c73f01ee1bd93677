"""`waferview sweep`: a grid of `summary` runs on every core or a Ray cluster, as a table, files and figures."""

from __future__ import annotations

import argparse
import os

DESCRIPTION = """\
Run every combination of the axes, one `summary` run per configuration, on a local process pool (default)
or a Ray cluster (--ray). Each configuration is one row: the axes, then every field of `summary --json`,
then ceiling_tokens_per_s, speedup_vs_base and hop_reduction_vs_base (against the row of the same
configuration with the Base strategy, when the grid has one; null otherwise).

axes: --models, --meshes, --batches, --strategies (paper names Base, EP, "Pred Only", "Allo Only",
"Allo+Pred", `paper` for all five, or placement/predictor pairs), --profiles, --links, --set NAME=V1,V2,
and every option of `summary` with comma-separated values (--top-n 13,26 --eviction admit,never). The
value `default` leaves an option at summary's default. A grid file holds the same as TOML:
    # grid.toml: waferview sweep grid.toml
    models = ["qwen3", "deepseek"]        # or sources = ["traces/qwen"], or synth = true
    meshes = ["5x5", "8x3"]
    batches = [4096, 8192]
    strategies = ["Base", "Allo+Pred"]
    top_n = [13, 26, 52]                   # any summary option, by its name
--paper is the paper's Fig. 12 grid: models deepseek, kimi, llama4, qwen3 x meshes 5x5, 8x3 x batches
4096, 8192, 16384 x the five strategies; with --synth each model's calibrated synthetic pool of
--synth-requests requests (default 16384) is generated once and kept in the cache folder. --paper
prints REPRODUCTION.md's tables after the rows.

Every finished row is cached ($WAFERVIEW_CACHE_DIR/sweep/rows), keyed by the trace's content, the full
configuration and waferview's version: an interrupted sweep, rerun, computes only the missing rows
(--fresh ignores the cache). A configuration that fails is a row with status `failed` and its reason, and
the sweep goes on; the exit code is then 1. More than 100,000 configurations need --yes."""


def add_arguments(p):
    from waferview.cli.common import SOURCE_HELP
    from waferview.sweep import grid

    p.add_argument("sources", nargs="*", metavar="SOURCE",
                   help=f"traces to sweep (each: {SOURCE_HELP}); or one grid .toml file")
    g = p.add_argument_group("grid")
    g.add_argument("--paper", action="store_true", help="the paper's Fig. 12 grid (4 models x 2 meshes x 3 batches "
                                                        "x 5 strategies); other axes given are added or override")
    g.add_argument("--synth", action="store_true", help="sweep each model's calibrated synthetic pool (generated once)")
    g.add_argument("--synth-requests", type=int, default=None, metavar="N",
                   help="requests in each synthetic pool (default 16384, the paper's largest batch)")
    taken = set()
    for plural, dest in (("models", "model"), ("meshes", "mesh"), ("batches", "batch"), ("strategies", "strategy"),
                         ("profiles", "profile"), ("links", "links")):
        flags = [f"--{plural}"] + ([f"--{dest}"] if dest not in ("strategy", "links") else [])
        g.add_argument(*flags, dest=f"axis:{plural}", default=None, metavar="V,V...",
                       help=f"axis: {_axis_help(dest)}")
        taken |= {dest}
    g.add_argument("--set", action="append", default=[], metavar="NAME=V,V...",
                   help="an axis of any summary option by name (repeatable): --set top_n=13,26 --set block_size=50,512")
    r = p.add_argument_group("reading the traces (summary's own options, for every SOURCE)")
    for action in _source_actions():
        r._add_action(action)
    x = p.add_argument_group("running")
    x.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"local worker processes (default: the cores, {os.cpu_count() or 1} here; 0 = in this process)")
    x.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on the Ray cluster at ADDRESS (host:port, ray://host:port, or local to start one "
                        "here); without ADDRESS, $RAY_ADDRESS. Needs `pip install 'waferview[ray]'`")
    x.add_argument("--fresh", action="store_true", help="ignore rows cached by earlier sweeps (and replace them)")
    x.add_argument("--yes", action="store_true", help="run a grid of more than 100,000 configurations")
    o = p.add_argument_group("output")
    o.add_argument("--csv", default=None, metavar="FILE", help="write the rows as CSV as they finish (- = stdout)")
    o.add_argument("--jsonl", default=None, metavar="FILE",
                   help="write one JSON row per line as they finish (- = stdout)")
    o.add_argument("--json", action="store_true", help="print one JSON object ({\"rows\": [...], \"sweep\": {...}}) "
                                                      "instead of the table")
    o.add_argument("--plot", default=None, metavar="FILE",
                   help="draw the paper's Fig. 12 layout (FILE.png|.svg|.pdf, and FILE-hops.* for hop reduction) "
                        "with the plotted numbers in FILE.csv; needs `pip install 'waferview[plot]'`")
    # every other option of summary is an axis under its own name (last, so that a summary option whose
    # flag the sweep uses for itself stays reachable through --set instead of breaking the parser)
    for dest, action in grid.axis_options().items():
        flags = [f for f in action.option_strings if f not in p._option_string_actions]
        if dest in taken or not flags:
            continue
        g.add_argument(*flags, dest=f"axis:{dest}", default=None, metavar="V,V...",
                       help=f"axis: {action.help or dest}" if action.help != argparse.SUPPRESS else argparse.SUPPRESS)


def _source_actions() -> list:
    """Copies of summary's source options but SOURCE and --model (--strict, --no-cache, --format, ...)."""
    import copy

    from waferview.cli.common import add_source_args

    tmp = argparse.ArgumentParser(add_help=False)
    add_source_args(tmp)
    out = []
    for a in tmp._actions:
        if a.option_strings and a.dest not in ("model", "help"):
            b = copy.copy(a)
            b.dest = f"read:{a.dest}"
            out.append(b)
    return out


def _axis_help(dest: str) -> str:
    from waferview.sweep import grid

    if dest == "strategy":
        return "strategies: Base, EP, 'Pred Only', 'Allo Only', 'Allo+Pred', paper (all five), or placement/predictor"
    if dest == "model":
        return "models (each one's shipped default trace, its synthetic pool with --synth, or --model for each SOURCE)"
    action = grid.axis_options().get(dest)
    if action is None:
        return f"values of summary's --{dest} (not in this version of summary)"
    return action.help or dest


def spec_from_args(args):
    """The SweepSpec of the command line, on top of a grid file when one is given."""
    from waferview.errors import InputError
    from waferview.sweep.plan import SweepSpec
    from waferview.sweep.tomlgrid import read_grid_file

    sources = list(args.sources)
    files = [s for s in sources if s.lower().endswith(".toml")]
    if len(files) > 1:
        raise InputError("one grid .toml file at a time")
    spec = read_grid_file(files[0]) if files else SweepSpec()
    sources = [s for s in sources if s not in files]
    if sources:
        spec.sources = sources
    spec.synth = spec.synth or args.synth
    spec.paper = spec.paper or args.paper
    if args.synth_requests is not None:
        spec.synth_requests = args.synth_requests
    spec.yes = args.yes
    for action in _source_actions():
        value = getattr(args, action.dest)
        if value != action.default:   # given on the command line: as summary would read it
            spec.read_options[action.dest[5:]] = "true" if value is True else str(value)
    cli_axes = {}
    for key, value in vars(args).items():
        if key.startswith("axis:") and value is not None:
            cli_axes[key[5:]] = value
    for item in args.set:
        name, sep, values = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--set {item!r}: expected NAME=V1,V2 (for example --set top_n=13,26)")
        cli_axes[name.strip()] = values
    models = cli_axes.pop("models", None) or cli_axes.pop("model", None)
    if models is not None:
        spec.models = models
    spec.axes.update(cli_axes)
    return spec


def run(args) -> int:
    from waferview.sweep.session import run_sweep

    return run_sweep(args, spec_from_args(args))
