"""`waferview compare`: several placement/predictor pairs on the same batch, against Base."""

from __future__ import annotations

from waferview.cli.common import SIM_HELP, add_jobs_arg, add_json_arg, add_sim_args, add_source_args

DESCRIPTION = (
    "Run several placement/predictor pairs on the same batch and compare them. Default: the paper's five "
    "strategies Base=base/off, EP=ep/off, Pred Only=base/heatmap, Allo Only=allo/off, Allo+Pred=allo/heatmap.\n"
    "speedup_vs_base = this throughput / Base throughput; hop_reduction_vs_base = Base hops / this run's hops "
    "(null when this run has no hops: the table says 'no hops'). Base is base/off, run even when --modes "
    "leaves it out.\n\n" + SIM_HELP)


def add_arguments(p):
    from waferview.report.summary import HELP_EPILOG

    add_source_args(p)
    add_sim_args(p, modes=False, links_list=True)
    p.add_argument("--modes", default=None, metavar="P/Q,...",
                   help="comma-separated placement/predictor pairs, e.g. base/off,allo/heatmap,ep/lru "
                        "(default: the paper's five strategies)")
    add_jobs_arg(p)
    add_json_arg(p)
    p.add_argument("--layers", default=None, metavar="DIR",
                   help="also write every run's per-layer rows into folder DIR (made when missing), one file per "
                        "strategy and link model, named STRATEGY.LINKS.csv: base.fluid.csv, ep.fluid.csv, "
                        "pred-only.fluid.csv, allo-only.fluid.csv, allo-pred.fluid.csv (--modes base/lru: "
                        "base-lru.fluid.csv; Base always runs, so its file is always there)")
    p.add_argument("--layers-format", default="csv", choices=("csv", "jsonl"),
                   help="the files of --layers: csv (default, .csv) or JSON lines (.jsonl)")
    p.epilog = HELP_EPILOG


def parse_modes(text: str | None) -> list[tuple[str, str, str]]:
    """--modes text -> [(strategy name, placement, predictor)] (InputError on a bad pair or mode)."""
    from waferview.errors import InputError
    from waferview.policies import PAPER_STRATEGIES, PLACEMENTS, PREDICTORS

    names = {(p, q): name for name, p, q in PAPER_STRATEGIES}
    if text is None:
        return list(PAPER_STRATEGIES)
    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        parts = item.split("/")
        if len(parts) != 2:
            raise InputError(f"--modes {item!r}: expected placement/predictor, e.g. allo/heatmap")
        p, q = parts[0].strip().lower(), parts[1].strip().lower()
        if p not in PLACEMENTS:
            raise InputError(f"--modes {item!r}: unknown placement mode {p!r}: expected one of {', '.join(PLACEMENTS)}")
        if q not in PREDICTORS:
            raise InputError(f"--modes {item!r}: unknown predictor mode {q!r}: expected one of {', '.join(PREDICTORS)}")
        out.append((names.get((p, q), f"{p}/{q}"), p, q))
    if not out:
        raise InputError("--modes: no placement/predictor pair given")
    return out


def run(args) -> int:
    import orjson

    from waferview.cli.common import load_trace_from_args
    from waferview.report.summary import format_compare

    from waferview.cli.common import jobs_from_args, links_from_args, policy_options_from_args, run_with_progress
    from waferview.links import get_link_model
    from waferview.sim.compare import compare, strategy_name
    from waferview.wafer.hardware import load_hardware

    strategies = parse_modes(args.modes)
    jobs = jobs_from_args(args)
    hardware = load_hardware(args.mesh)
    options = policy_options_from_args(args)
    links = [name.strip() for name in links_from_args(args).split(",") if name.strip()]
    for name in links:
        get_link_model(name)   # unknown names: one line, before any work
    folder = None
    if args.layers is not None:
        from waferview.report.layer_files import LayerFolder

        folder = LayerFolder(args.layers, f".{args.layers_format}")    # a bad path: one line, before any work

    def run_one(engine):
        label = f"simulating {engine.placement}/{engine.predictor} ({engine.links} links)"
        if folder is None:
            return run_with_progress(engine, label)
        with folder.file_for(strategy_name(engine.placement, engine.predictor), engine.links) as records:
            engine.record_layers(records.bind(engine).write)
            return run_with_progress(engine, label)

    left_out: list = []
    try:
        trace = load_trace_from_args(args)
        rows = compare(trace, hardware, strategies, batch=args.batch, seed=args.seed, options=options, links=links,
                       left_out=left_out, run=run_one, jobs=jobs)
        if folder is not None:
            folder.commit()
    except BaseException:
        if folder is not None:
            folder.discard()
        raise
    if left_out:
        from waferview.trace.store import notice

        for item in left_out:
            notice(f"{item['strategy']} left out: {item['reason']}")
    if args.json:
        from waferview.report.provenance import provenance_from_args, run_options_from_args

        options = run_options_from_args(args, strategies=[f"{p}/{q}" for _, p, q in strategies])
        prov = provenance_from_args(args, model=trace.model, hardware=hardware, synthetic=trace.synthetic,
                                    run_options=options)
        out = {"rows": rows, "provenance": prov}
        if left_out:
            out["left_out"] = left_out
        print(orjson.dumps(out).decode())
    else:
        r0 = rows[0]
        title = (f"waferview compare: {trace.source}  model {trace.model.key}  mesh {r0['mesh']}  "
                 f"batch {r0['batch']}  seed {r0['seed']}  profile {r0['profile']}  links {','.join(links)}")
        print(format_compare(rows, title=title))
    return 0
