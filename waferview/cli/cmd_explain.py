"""`waferview explain`: the decomposition of the study's speedups by the rules of its timing discipline."""

from __future__ import annotations

from waferview.cli.common import add_jobs_arg, add_json_arg, add_sim_args, add_source_args

DESCRIPTION = """\
Measure, on your own trace, where the study's speedups come from. For one configuration (SOURCE, --mesh,
--batch and the profile's choices; default --profile paper), the five strategies run first under
waferview's fluid link model, then under the circuit model (the study's discipline) with every rule
off, then with its rules switched on one at a time, cumulatively: shared half-duplex edges, request legs
holding links, head-of-line wake-up, circuit latency (hop latency as occupancy), locking at creation, LLC
hits, and last the study's route order. Each row shows Base's throughput, how much slower Base got than
the row above, and each strategy's speedup over Base. --one-off adds the study's own kind of table:
each rule switched off alone from the full discipline."""


def add_arguments(p):
    add_source_args(p)
    add_sim_args(p, modes=False)
    p.add_argument("--one-off", action="store_true",
                   help="also switch each rule off alone from the full discipline (6-7 more comparisons)")
    add_jobs_arg(p)
    add_json_arg(p)
    p.set_defaults(profile="paper")


def run(args) -> int:
    import orjson

    from waferview.cli.common import jobs_from_args, load_trace_from_args, policy_options_from_args, run_with_progress
    from waferview.sim.explain import explain, format_explain
    from waferview.wafer.hardware import load_hardware

    hardware = load_hardware(args.mesh)
    jobs = jobs_from_args(args)
    options = policy_options_from_args(args)
    trace = load_trace_from_args(args)
    result = explain(trace, hardware, options, batch=args.batch, seed=args.seed, one_off=args.one_off, jobs=jobs,
                     run=lambda engine: run_with_progress(
                         engine, f"{engine.placement}/{engine.predictor} ({engine.links}, "
                                 f"{len(engine.options.circuit_rules.off)} rules off)"))
    if args.json:
        from waferview.report.provenance import provenance_from_args

        result["provenance"] = provenance_from_args(args, model=trace.model, hardware=hardware,
                                                    synthetic=trace.synthetic)
        print(orjson.dumps(result).decode())
    else:
        print(format_explain(result, title=f"waferview explain: {trace.source}  model {trace.model.key}  mesh "
                                           f"{hardware.name}  profile {options.profile}"))
    return 0
