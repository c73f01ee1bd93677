"""`waferview replay`: the live Textual view of the wafer (imports textual only inside run())."""

from __future__ import annotations

import argparse

from waferview.cli.common import add_sim_args, add_source_args

from waferview.tui.keys import keys_line  # light: no textual

DESCRIPTION = f"""\
Live replay of a batch on the modelled wafer: per-die utilisation, link traffic, cache hits, and what
bound each layer (marked ! on the grid and named under it). Arrow keys and enter (or a click) select a
die or a link: its tasks, where they read from, bytes in and out, busy time by compute / HBM / links /
latency. The replay goes back (N, re-simulated from step 0 with your mode changes), jumps (g) and
restarts (0); a mode can also be applied from step 0 (command palette). The screen opens at once; the
batch's setup (counts, heatmap, kernels) shows its progress there, and q quits in every phase.
{keys_line()}
With no SOURCE, the shipped synthetic trace in assets/ is used (no network).
Exit code 1 (2 for bad input) when the engine failed; the screen showed the line, stderr repeats it."""

SPEED_CHOICES = "1, 3, 10, 30, 100, 300, 1000 or max"


def _speed(text: str) -> int:
    from waferview.tui.driver import SPEEDS  # light: no textual

    if text == "max":
        return 0
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value not in SPEEDS or value == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {SPEED_CHOICES} (layers per second)")
    return value


def add_arguments(p):
    add_source_args(p)
    add_sim_args(p)
    g = p.add_argument_group("replay")
    g.add_argument("--speed", type=_speed, default=100, metavar="N",
                   help=f"layers per second: {SPEED_CHOICES} (default 100; + and - change it live)")
    g.add_argument("--paused", action="store_true", help="start paused (space plays, n steps one layer)")
    g.add_argument("--loop", action="store_true", help="start over at the end of the trace")
    g.add_argument("--record", default=None, metavar="FILE",
                   help="when the app exits (q included), write one row per (step, MoE layer) replayed to FILE "
                        "(.csv or .jsonl; summary --layers' columns, the modes in force at each layer included); "
                        "going back or restarting replaces the rows from there: the file is the run as last "
                        "replayed")


def run(args) -> int:
    from waferview.cli.common import links_from_args, load_trace_from_args, policy_options_from_args
    from waferview.policies import get_placement, get_predictor
    from waferview.wafer.hardware import load_hardware

    get_placement(args.placement)       # unknown modes: one line, exit 2, before the screen opens
    get_predictor(args.predictor)
    hardware = load_hardware(args.mesh)
    options = policy_options_from_args(args)
    record = None
    if args.record is not None:
        from waferview.report.layer_replay import ReplayRecord

        record = ReplayRecord(args.record)   # a bad path: one line, before the screen opens
    try:
        trace = load_trace_from_args(args)

        from waferview.tui.app import make_app

        app = make_app(trace, hardware, batch=args.batch, seed=args.seed, placement=args.placement,
                       predictor=args.predictor, options=options, paused=args.paused, loop=args.loop,
                       speed=args.speed, links=links_from_args(args), record=record)
    except BaseException:
        if record is not None:
            record.discard()
        raise
    app.run()
    return finish(app)


def finish(app) -> int:
    """After the screen closed: the worker's failure on stderr, the exit code; and if the engine thread is
    still in a long call (setup of a big batch), end the process now rather than wait for it."""
    import os
    import sys

    code = int(app.return_code or 0)
    failure = getattr(app, "failure", None)
    if failure is not None:
        if os.environ.get("WAFERVIEW_DEBUG") and failure.details:
            print(failure.details, file=sys.stderr, end="")
        print(f"waferview replay: {failure.line}", file=sys.stderr)
        code = code or failure.exit_code
    if getattr(app, "record_error", None):
        print(f"waferview replay: {app.record_error}", file=sys.stderr)
        code = code or 2
    thread = getattr(app, "engine_thread", None)
    if thread is not None and thread.is_alive():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
