"""`waferview replay`: the live Textual view of the wafer (imports textual only inside run())."""

from __future__ import annotations

import argparse

from waferview.cli.common import add_sim_args, add_source_args

DESCRIPTION = """\
Live replay of a batch on the modelled wafer: per-die utilisation, link traffic, cache hits.
Keys: space pause, n one layer (paused), +/- speed, p placement, r predictor, c compare, s summary, ? help, ctrl+p palette, q quit.
With no SOURCE, the shipped synthetic trace in assets/ is used (no network)."""

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


def run(args) -> int:
    from waferview.cli.common import load_trace_from_args, policy_options_from_args
    from waferview.policies import get_placement, get_predictor
    from waferview.wafer.hardware import load_hardware

    get_placement(args.placement)       # unknown modes: one line, exit 2, before the screen opens
    get_predictor(args.predictor)
    hardware = load_hardware(args.mesh)
    options = policy_options_from_args(args)
    trace = load_trace_from_args(args)

    from waferview.tui.app import make_app

    app = make_app(trace, hardware, batch=args.batch, seed=args.seed, placement=args.placement,
                   predictor=args.predictor, options=options, paused=args.paused, loop=args.loop,
                   speed=args.speed)
    app.run()
    return int(app.return_code or 0)
