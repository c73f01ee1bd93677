"""`waferview summary`: one headless run, as a table or one JSON object."""

from __future__ import annotations

from waferview.cli.common import SIM_HELP, add_json_arg, add_sim_args, add_source_args

DESCRIPTION = ("Headless run of one placement/predictor mode over a batch of requests on the modelled wafer; "
               "prints the trace facts and the simulation fields as a table, or one JSON object (--json).\n\n"
               + SIM_HELP)


def add_arguments(p):
    from waferview.report.summary import HELP_EPILOG

    add_source_args(p)
    add_sim_args(p)
    add_json_arg(p)
    p.add_argument("--layers", default=None, metavar="FILE",
                   help="also write one row per (step, MoE layer) to FILE: CSV when it ends in .csv, JSON lines "
                        "when .jsonl (columns: waferview.report.layers; they add up to the totals of --json)")
    p.epilog = HELP_EPILOG


def simulate(trace, args, placement=None, predictor=None, workload=None, records=None) -> dict:
    """Trace facts + the summary fields of one run to the end (workload: a batch drawing to share;
    records: a report.layer_files.LayerFile that gets every layer's row)."""
    from waferview.cli.common import engine_from_args, run_with_progress
    from waferview.report.summary import summary_fields

    engine = engine_from_args(args, trace, placement=placement, predictor=predictor, workload=workload)
    if records is not None:
        engine.record_layers(records.bind(engine).write)
    return summary_fields(trace, run_with_progress(engine, f"simulating {engine.placement}/{engine.predictor}"))


def run(args) -> int:
    import contextlib

    import orjson

    from waferview.cli.common import load_trace_from_args
    from waferview.report.summary import format_table

    records = None
    if args.layers is not None:
        from waferview.report.layer_files import LayerFile

        records = LayerFile(args.layers)    # a bad path: one line now, before any work
    with records or contextlib.nullcontext():
        trace = load_trace_from_args(args)
        fields = simulate(trace, args, records=records)
    if args.json:
        from waferview.report.provenance import provenance_from_args
        from waferview.wafer.hardware import load_hardware

        # after the summary fields, which stay exactly as they are (tests/test_summary_fixture.py)
        fields["provenance"] = provenance_from_args(args, model=trace.model, hardware=load_hardware(args.mesh),
                                                    synthetic=trace.synthetic)
        print(orjson.dumps(fields).decode())
    else:
        print(format_table(fields, title=f"waferview summary: {trace.source}"))
    return 0
