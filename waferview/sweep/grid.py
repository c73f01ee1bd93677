"""A sweep's grid: axes of `summary` options -> configurations, each one checked by summary's own parser.

A configuration is a dict of `summary` options by their argparse dest (`{"mesh": "8x3", "batch": "4096",
"placement": "allo", "predictor": "heatmap", "top_n": "13"}`), values as the user wrote them; `namespace()`
turns it into exactly the argparse Namespace `waferview summary` would build from the same options (the same
parser, so the same defaults, types and choices). Any option `summary` has is therefore an axis, including
options added to `summary` later, with no change here.

Axes: `--models`, `--meshes`, `--batches`, `--profiles` are the plural names of summary's `--model`,
`--mesh`, `--batch`, `--profile`; `--strategies` sets placement and predictor together (the paper's names
or placement/predictor pairs); `--set NAME=V1,V2` and every option of summary given to `sweep` directly
(`--top-n 13,26`) are axes of that option. The value `default` leaves an option at summary's default.
"""

from __future__ import annotations

import argparse
import functools
import itertools
from dataclasses import dataclass, field

from waferview.errors import InputError

# plural axis names of the sweep -> summary's option dest
PLURALS = {"models": "model", "meshes": "mesh", "batches": "batch", "profiles": "profile", "links": "links"}
STRATEGY = "strategy"          # the pseudo-axis that sets placement and predictor
NOT_AXES = ("json", "layers")   # how summary prints and what else it writes, not what it runs
DEFAULT = "default"            # an axis value that leaves the option at summary's default
MAX_CONFIGURATIONS = 100_000   # above this, `--yes`

PAPER_MODELS = ("deepseek", "kimi", "llama4", "qwen3")
PAPER_MESHES = ("5x5", "8x3")
PAPER_BATCHES = (4096, 8192, 16384)


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message):
        raise InputError(message)


@functools.lru_cache(maxsize=1)
def summary_parser() -> argparse.ArgumentParser:
    """`waferview summary`'s own argument parser (errors raise InputError instead of exiting)."""
    from waferview.cli import cmd_summary

    p = _RaisingParser(prog="waferview summary", add_help=False)
    cmd_summary.add_arguments(p)
    return p


@functools.lru_cache(maxsize=1)
def source_dests() -> tuple[str, ...]:
    """summary's options that say how the trace is read (cli.common.add_source_args: SOURCE, --model,
    --strict, ...): not axes; --models is the sweep's trace axis, the others apply to every source."""
    from waferview.cli.common import add_source_args

    p = _RaisingParser(add_help=False)
    add_source_args(p)
    return tuple(a.dest for a in p._actions if a.dest != "help")


def source_flags() -> set[str]:
    return {f for d, a in summary_actions().items() if d in source_dests() for f in a.option_strings}


def summary_actions() -> dict[str, argparse.Action]:
    """summary's options by dest, in the parser's order (the positional SOURCE included)."""
    return {a.dest: a for a in summary_parser()._actions if a.dest != "help"}


def axis_options() -> dict[str, argparse.Action]:
    """The summary options a sweep may vary."""
    return {d: a for d, a in summary_actions().items() if d not in source_dests() + NOT_AXES}


def flag_of(action: argparse.Action) -> str:
    return next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])


def _is_flag(action: argparse.Action) -> bool:
    return action.nargs == 0


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def config_argv(config: dict) -> list[str]:
    """The summary command line of a configuration (SOURCE last, after `--`)."""
    actions = summary_actions()
    argv = []
    for dest, value in config.items():
        if dest == "source" or value is None:
            continue
        action = actions[dest]
        if _is_flag(action):
            if str(value).lower() in _TRUE:
                argv.append(flag_of(action))
            elif str(value).lower() not in _FALSE:
                raise InputError(f"{flag_of(action)} {value!r}: expected true or false")
        else:
            argv.append(f"{flag_of(action)}={value}")
    if config.get("source") is not None:
        argv += ["--", str(config["source"])]
    return argv


def namespace(config: dict) -> argparse.Namespace:
    """The Namespace `waferview summary` builds from these options (InputError when it would refuse them)."""
    return summary_parser().parse_args(config_argv(config))


def resolve_option(name: str) -> str:
    """An axis name as the user wrote it (top_n, top-n, --top-n, meshes) -> summary's dest (InputError)."""
    key = name.strip().lstrip("-").replace("-", "_").lower()
    key = PLURALS.get(key, key)
    if key in ("strategy", "strategies"):
        return STRATEGY
    if key == "model":
        return "model"
    options = axis_options()
    if key not in options:
        if key in source_dests() or f"--{key.replace('_', '-')}" in source_flags():
            raise InputError(f"{name!r} is how a trace is read, not an axis: give it once (it applies to every "
                             "source), and the sources as SOURCE arguments")
        known = ", ".join(sorted({flag_of(a)[2:] for a in options.values()} | {"strategies"}))
        hint = f" (this version of summary has no --{key.replace('_', '-')} option)" if key in PLURALS.values() else ""
        raise InputError(f"unknown axis {name!r}{hint}: expected one of {known}")
    return key


def split_values(text) -> list[str]:
    """An axis's values: a comma-separated string, or a list (TOML); each one as a string."""
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    out = []
    for item in items:
        if isinstance(item, bool):
            item = "true" if item else "false"
        item = str(item).strip()
        if item:
            out.append(item)
    return out


# ---- strategies -----------------------------------------------------------------------------

def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum() or ch == "+")


def parse_strategy(text: str) -> tuple[str, str, str]:
    """A paper strategy name (Base, EP, Pred Only, Allo Only, Allo+Pred; any case, spaces optional) or a
    placement/predictor pair -> (name, placement, predictor)."""
    from waferview.cli.cmd_compare import parse_modes
    from waferview.policies import PAPER_STRATEGIES

    for name, p, q in PAPER_STRATEGIES:
        if _norm(text) == _norm(name):
            return name, p, q
    if "/" not in text:
        names = ", ".join(n for n, _, _ in PAPER_STRATEGIES)
        raise InputError(f"--strategies {text!r}: expected one of {names}, paper (all five) or a "
                         f"placement/predictor pair such as allo/lru")
    (item,) = parse_modes(text)
    return item


def strategy_values(values: list[str]) -> list[tuple[str, str, str]]:
    from waferview.policies import PAPER_STRATEGIES

    out = []
    for v in values:
        items = list(PAPER_STRATEGIES) if _norm(v) == "paper" else [parse_strategy(v)]
        out += [s for s in items if s not in out]
    return out


# ---- the grid -------------------------------------------------------------------------------

@dataclass
class Axis:
    """One axis: its column name in the rows, and per value the summary options it sets and its label."""
    name: str                              # "strategy" or summary's dest (mesh, top_n, ...)
    settings: list[dict]                   # per value: {dest: raw value or None}
    labels: list                           # per value: what the row's column shows

    @property
    def column(self) -> str:
        return "strategy" if self.name == STRATEGY else f"sweep_{self.name}"


@dataclass
class Configuration:
    index: int                             # position in the grid's order
    trace: int                             # index into the sweep's traces
    options: dict                          # summary options (dest -> raw value)
    columns: dict                          # the axis columns of its row
    ns: argparse.Namespace | None = field(default=None, repr=False)


def make_axis(name: str, values) -> Axis:
    """An axis from its name and raw values; each value checked on its own by summary's parser."""
    dest = resolve_option(name)
    raw = split_values(values)
    if not raw:
        raise InputError(f"axis {name!r}: no values given")
    if dest == STRATEGY:
        items = strategy_values(raw)
        return Axis(STRATEGY, [{"placement": p, "predictor": q} for _, p, q in items], [n for n, _, _ in items])
    settings, labels = [], []
    for value in raw:
        setting = {dest: None if value.lower() == DEFAULT else value}
        ns = namespace(setting)   # argparse's message names the option and the value
        label = getattr(ns, dest)
        if setting in settings:
            continue
        settings.append(setting)
        labels.append(label)
    return Axis(dest, settings, labels)


def check_axes(axes: list[Axis]) -> None:
    names = [a.name for a in axes]
    for n in set(names):
        if names.count(n) > 1:
            raise InputError(f"axis {n!r} given twice (once is enough: list all its values there)")
    if STRATEGY in names and ({"placement", "predictor"} & set(names)):
        raise InputError("give --strategies or --placement/--predictor axes, not both")


def expand(axes: list[Axis], traces: int) -> list[Configuration]:
    """Every combination of the axes, for every trace, in a fixed order (trace outermost, the last axis
    innermost)."""
    out = []
    for t in range(traces):
        for combo in itertools.product(*(range(len(a.settings)) for a in axes)):
            options, columns = {}, {}
            for axis, i in zip(axes, combo):
                options.update(axis.settings[i])
                columns[axis.column] = axis.labels[i]
            out.append(Configuration(len(out), t, options, columns))
    return out


def count(axes: list[Axis], traces: int) -> int:
    n = traces
    for a in axes:
        n *= len(a.settings)
    return n


def paper_axes() -> dict[str, list]:
    """The paper's Fig. 12 grid: meshes x batches x the five strategies (models come with the traces)."""
    return {"batches": list(PAPER_BATCHES), "meshes": list(PAPER_MESHES), "strategies": ["paper"]}


def check_namespace(ns: argparse.Namespace, _hardware={}) -> None:
    """The checks summary makes before it simulates that its parser does not: mode names, policy
    options, the wafer. Cheap; run in the parent for every configuration before any work starts."""
    from waferview.cli.common import policy_options_from_args
    from waferview.policies import PLACEMENTS, PREDICTORS
    from waferview.wafer.hardware import load_hardware

    for kind, name, known in (("placement", ns.placement, PLACEMENTS), ("predictor", ns.predictor, PREDICTORS)):
        if name not in known:   # the registry's names (get_placement would import the mode, and numba)
            raise InputError(f"--{kind} {name!r}: unknown {kind} mode: expected one of {', '.join(known)}")
    policy_options_from_args(ns)
    if ns.mesh not in _hardware:
        _hardware[ns.mesh] = load_hardware(ns.mesh)
