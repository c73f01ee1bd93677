"""`waferview insights`: the routing statistics behind the paper's insights, per layer and over layers."""

from __future__ import annotations

from waferview.analysis.insights_format import DEFINITIONS
from waferview.cli.common import add_json_arg, add_source_args

DESCRIPTION = ("Measure the trace statistics behind the paper's insights on any SOURCE, per MoE layer and over "
               "layers, with the paper's value beside each figure where it gives one (arXiv 2510.05497).\n\n"
               "Definitions:\n" + DEFINITIONS)


def add_arguments(p):
    add_source_args(p)
    add_json_arg(p)
    p.add_argument("--no-layers", action="store_true", help="leave out the per-layer table (text output only)")


def run(args) -> int:
    import orjson

    from waferview.analysis.insights import compute_insights
    from waferview.analysis.insights_format import format_insights
    from waferview.cli.common import load_source_from_args

    trace = load_source_from_args(args)
    result = compute_insights(trace)
    if args.json:
        from waferview.report.provenance import provenance_from_args

        # insights simulate nothing: no hardware, no run options
        result["provenance"] = provenance_from_args(args, model=trace.model, synthetic=trace.synthetic,
                                                    run_options={})
        print(orjson.dumps(result).decode())
    else:
        print(format_insights(result, per_layer=not args.no_layers))
    return 0
