"""`waferview summary`: one headless run, as a table or one JSON object."""

from __future__ import annotations

from waferview.cli.common import add_json_arg, add_source_args

DESCRIPTION = "Headless run of one placement/predictor mode over a batch; prints a table or one JSON object."


def add_arguments(p):
    add_source_args(p)
    add_json_arg(p)


def run(args) -> int:
    import orjson

    from waferview.report.summary import format_table
    from waferview.trace.source import load_source

    trace = load_source(args.source, model=args.model, strict=args.strict, use_cache=not args.no_cache)
    fields = trace.facts()
    if args.json:
        print(orjson.dumps(fields).decode())
    else:
        print(format_table(fields, title=f"waferview summary: {trace.source}"))
    return 0
