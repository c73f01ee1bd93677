"""`waferview` entry point: parse, dispatch, and turn user errors into one line + exit 2."""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys

from waferview import __version__
from waferview.errors import InputError

# command name -> (module under waferview.cli, one-line help)
COMMANDS = {
    "replay": ("cmd_replay", "live replay in the terminal, with mode toggles"),
    "summary": ("cmd_summary", "headless run of one mode: a table, or one JSON object"),
    "compare": ("cmd_compare", "the paper's five strategies (or --modes) on the same batch"),
    "explain": ("cmd_explain", "where the study's speedups come from: its timing rules switched on one by one"),
    "sweep": ("cmd_sweep", "a grid of runs (the paper's, or any axes) on every core or a Ray cluster"),
    "insights": ("cmd_insights", "trace statistics behind the paper's insights"),
    "fetch": ("cmd_fetch", "download traces from the Hugging Face Hub"),
    "synth": ("cmd_synth", "synthetic traces in the dataset's exact format, or straight to a cache"),
    "bench": ("cmd_bench", "the performance benchmark"),
    "cache": ("cmd_cache", "list, clear or locate the trace caches"),
}

_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<given>[^']*)' \(choose from (?P<choices>.*)\)")


def _did_you_mean(given: str, choices) -> str:
    # compare without the leading dashes, which every option shares
    by_name = {c.lstrip("-"): c for c in choices}
    close = difflib.get_close_matches(given.lstrip("-"), list(by_name), n=1, cutoff=0.6)
    return f" (did you mean {by_name[close[0]]}?)" if close else ""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """A bad value: one line, exit 2 (argparse's own code). A misspelled option or command: the
        line with a "did you mean", then the usage line of the command it was given to."""
        m = _INVALID_CHOICE.search(message)
        if m:
            choices = [c.strip().strip("'") for c in m.group("choices").split(",")]
            hint = _did_you_mean(m.group("given"), choices)
            if self._subparsers is not None and m.group("given") not in choices and "argument COMMAND" in message:
                self.exit(2, f"{self.prog}: error: unknown command {m.group('given')!r}{hint}\n"
                             f"{self.format_usage()}")
            self.exit(2, f"{self.prog}: error: {message}{hint}\n")
        self.exit(2, f"{self.prog}: error: {message}\n")

    def unrecognized(self, extras: list[str]):
        """Arguments this command does not know: name each, suggest the nearest option, show usage."""
        options = [o for o in self._option_string_actions if o.startswith("--")]
        parts = []
        for item in extras:
            name = item.split("=", 1)[0]
            hint = _did_you_mean(name, options) if name.startswith("-") else ""
            parts.append(f"{item}{hint}")
        self.exit(2, f"{self.prog}: error: unrecognized argument{'s' if len(extras) > 1 else ''}: "
                     f"{', '.join(parts)}\n{self.format_usage()}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="waferview", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.description = ("Replay Mixture-of-Experts routing traces on a simulated wafer-scale GPU "
                          "and see where the data moves.")
    parser.add_argument("--version", action="version", version=f"waferview {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser._command_parsers = {}
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(f"waferview.cli.{module}")
        p = sub.add_parser(name, help=help_text, description=getattr(mod, "DESCRIPTION", help_text),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        _bound_number_types(p)
        p.set_defaults(_module=mod)
        parser._command_parsers[name] = p
    return parser


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush of the closed pipe says nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _end_progress() -> None:
    """Take any progress bar off the screen before a message is printed (progress is loaded only when
    something drew a bar, so this costs nothing otherwise)."""
    progress = sys.modules.get("waferview.progress")
    if progress is not None:
        progress.end_all()


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
    args, extras = parser.parse_known_args(argv)
    if extras:
        command = getattr(args, "command", None)
        (parser._command_parsers.get(command) or parser).unrecognized(extras)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    # what provenance records as the command line (argv given by a caller, else the process's)
    args.command_line = list(sys.argv) if argv is None else ["waferview", *argv]
    try:
        code = int(args._module.run(args) or 0)
        sys.stdout.flush()   # here, not at exit: a reader that left must not turn into a traceback there
        return code
    except InputError as e:
        _end_progress()
        print(f"waferview {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _end_progress()
        print("waferview: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # `waferview compare --json | head`: the reader left; end quietly
        _quiet_stdout()
        return 0
    except MemoryError as e:   # asked for more than the machine has: one line, no traceback
        detail = f" ({e})" if str(e) else ""
        print(f"waferview {args.command}: not enough memory{detail}; ask for less (a smaller --batch, "
              f"--requests, --mesh or source)", file=sys.stderr)
        return 2
    except Exception as e:  # internal error: short line, traceback only on request
        _end_progress()
        if os.environ.get("WAFERVIEW_DEBUG"):
            raise
        print(f"waferview {args.command}: internal error: {e.__class__.__name__}: {e} "
              f"(set WAFERVIEW_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
