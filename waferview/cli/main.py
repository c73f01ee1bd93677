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
    "sweep": ("cmd_sweep", "a grid of runs (the paper's, or any axes) on every core or a Ray cluster"),
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
        p.set_defaults(_module=mod)
    return parser


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
    except Exception as e:  # internal error: short line, traceback only on request
        if os.environ.get("WAFERVIEW_DEBUG"):
            raise
        print(f"waferview {args.command}: internal error: {e.__class__.__name__}: {e} "
              f"(set WAFERVIEW_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
