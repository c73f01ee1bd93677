"""`waferview` entry point: parse, dispatch, and turn user errors into one line + exit 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from waferview import __version__
from waferview.errors import InputError

# command name -> (module under waferview.cli, one-line help)
COMMANDS = {
    "replay": ("cmd_replay", "live replay in the terminal, with mode toggles"),
    "summary": ("cmd_summary", "headless run of one mode: a table, or one JSON object"),
    "compare": ("cmd_compare", "the paper's five strategies (or --modes) on the same batch"),
    "insights": ("cmd_insights", "trace statistics behind the paper's insights"),
    "fetch": ("cmd_fetch", "download traces from the Hugging Face Hub"),
    "synth": ("cmd_synth", "synthetic traces in the dataset's exact format, or straight to a cache"),
    "bench": ("cmd_bench", "the performance benchmark"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one line, exit 2 (argparse's own code)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="waferview", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.description = ("Replay Mixture-of-Experts routing traces on a simulated wafer-scale GPU "
                          "and see where the data moves.")
    parser.add_argument("--version", action="version", version=f"waferview {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(f"waferview.cli.{module}")
        p = sub.add_parser(name, help=help_text, description=getattr(mod, "DESCRIPTION", help_text),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        _bound_number_types(p)
        p.set_defaults(_module=mod)
    return parser


def _bound_number_types(p: argparse.ArgumentParser) -> None:
    """Every plain `type=int` / `type=float` option of every command becomes a bounded one: an integer
    must fit int64 (anything numba sees does), a float must be finite. Options with a meaningful range
    declare it themselves (common.whole_number); this is the floor for all the others."""
    from waferview.cli.common import real_number, whole_number
    from waferview.limits import INT64_MAX

    for action in p._actions:
        if action.type is int:
            action.type = whole_number(-INT64_MAX - 1, INT64_MAX, "a 64-bit integer")
        elif action.type is float:
            action.type = real_number(-1.7e308, 1.7e308, "a finite number")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except InputError as e:
        print(f"waferview {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("waferview: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError as e:   # asked for more than the machine has: one line, no traceback
        detail = f" ({e})" if str(e) else ""
        print(f"waferview {args.command}: not enough memory{detail}; ask for less (a smaller --batch, "
              f"--requests, --mesh or source)", file=sys.stderr)
        return 2
    except Exception as e:  # internal error: short line, traceback only on request
        if os.environ.get("WAFERVIEW_DEBUG"):
            raise
        print(f"waferview {args.command}: internal error: {e.__class__.__name__}: {e} "
              f"(set WAFERVIEW_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
