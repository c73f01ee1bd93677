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
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="also draw the layer N -> N+1 and token t -> t+1 co-activation heatmaps of the middle MoE "
                        "layer (FILE.png|.svg|.pdf, the plotted counts in FILE.csv); needs "
                        "`pip install 'waferview[plot]'`")


def run(args) -> int:
    import orjson

    from waferview.analysis.insights import compute_insights
    from waferview.analysis.insights_format import format_insights
    from waferview.cli.common import load_source_from_args

    if args.plot is not None:
        from waferview.sweep.session import check_plot

        check_plot(args.plot)   # before any work
    trace = load_source_from_args(args)
    tables = None
    if args.plot is not None:
        from waferview.analysis.insights import layer_counts
        from waferview.errors import InputError
        from waferview.trace.passes import RecordedPasses

        if isinstance(trace, RecordedPasses):
            raise InputError(f"{trace.source}: --plot draws per-request routing (token t -> t+1); a capture of "
                             "recorded batches has no requests to follow")
        tables = layer_counts(trace)
    result = compute_insights(trace, tables)
    if args.plot is not None:
        import sys

        from waferview.analysis.insights_plot import plot_insights

        for path in plot_insights(trace, tables, args.plot):
            print(f"waferview insights: wrote {path}", file=sys.stderr)
    if args.json:
        from waferview.report.provenance import provenance_from_args

        # insights simulate nothing: no hardware, no run options
        result["provenance"] = provenance_from_args(args, model=trace.model, synthetic=trace.synthetic,
                                                    run_options={})
        print(orjson.dumps(result).decode())
    else:
        print(format_insights(result, per_layer=not args.no_layers))
    return 0
