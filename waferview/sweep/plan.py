"""A sweep's plan: what the user asked for (SweepSpec), checked whole before any work, then the traces
read and every configuration given its row-cache key; and how the missing ones are cut into chunks."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from waferview.errors import InputError
from waferview.sweep import grid

# expansion order, outermost first: a chunk shares a trace, a batch and a seed; a strategy's siblings
# (same options but placement and predictor) sit next to each other, Base first
_FIRST = ("batch", "seed")
_LAST = ("profile", "links", "mesh", grid.STRATEGY)


@dataclass
class SweepSpec:
    sources: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    axes: dict[str, object] = field(default_factory=dict)    # axis name as written -> raw values
    synth: bool = False
    synth_requests: int = 16384
    paper: bool = False
    read_options: dict = field(default_factory=dict)         # summary's source options but SOURCE and --model
    yes: bool = False


@dataclass
class Plan:
    spec: SweepSpec
    axes: list[grid.Axis]
    configs: list[grid.Configuration]
    traces: list = field(default_factory=list)
    keys: dict[int, str] = field(default_factory=dict)
    siblings: dict[int, tuple] = field(default_factory=dict)   # config -> its sibling group
    base_of: dict[tuple, int] = field(default_factory=dict)    # sibling group -> its Base config

    @property
    def axis_columns(self) -> list[str]:
        return [a.column for a in self.axes]

    @property
    def varying_columns(self) -> list[str]:
        cols = ["sweep_model"] if len({t.model_key for t in self.traces}) > 1 else []
        cols += ["sweep_source"] if len({t.column for t in self.traces}) > 1 and len(self.traces) > len(
            {t.model_key for t in self.traces}) else []
        return cols + [a.column for a in self.axes if len(a.settings) > 1 and a.name != grid.STRATEGY]


def _ordered(names: list[str]) -> list[str]:
    summary_order = list(grid.axis_options())
    first = [n for n in _FIRST if n in names]
    last = [n for n in _LAST if n in names]
    middle = sorted((n for n in names if n not in first + last),
                    key=lambda n: summary_order.index(n) if n in summary_order else len(summary_order))
    return first + middle + last


def build_axes(spec: SweepSpec) -> list[grid.Axis]:
    raw: dict[str, object] = {}
    if spec.paper:
        for name, values in grid.paper_axes().items():
            raw[grid.resolve_option(name)] = values
    for name, values in spec.axes.items():
        dest = grid.resolve_option(name)
        if dest == "model":
            raise InputError(f"{name!r}: the models are the sweep's trace axis: give them as --models")
        raw[dest] = values       # the command line overrides the file and --paper
    axes = [grid.make_axis(dest, raw[dest]) for dest in _ordered(list(raw))]
    grid.check_axes(axes)
    return axes


def _models(spec: SweepSpec) -> list[str | None]:
    from waferview.models import get_model

    names = grid.split_values(spec.models) if spec.models else []
    if not names and spec.paper and not spec.sources:
        names = list(grid.PAPER_MODELS)
    out = []
    for n in names:
        key = get_model(n).key
        if key not in out:
            out.append(key)
    return out or [None]


def make_plan(spec: SweepSpec) -> Plan:
    """Every configuration, checked by summary's parser and checks (InputError before any work)."""
    from waferview.sweep.traces import synth_pool_path

    models = _models(spec)
    if spec.synth and spec.sources:
        raise InputError("--synth generates the sources: give SOURCE arguments or --synth, not both")
    if spec.synth and models == [None]:
        raise InputError("--synth needs --models (for example --models qwen3,deepseek) or --paper")
    if spec.synth and spec.synth_requests < 1:
        raise InputError(f"--synth-requests {spec.synth_requests}: expected a positive number of requests")
    axes = build_axes(spec)
    if spec.synth:
        trace_options = [(str(synth_pool_path(m, spec.synth_requests)), m) for m in models]
    else:
        trace_options = [(s, m) for s in (spec.sources or [None]) for m in models]
    n = grid.count(axes, len(trace_options))
    if n > grid.MAX_CONFIGURATIONS and not spec.yes:
        raise InputError(f"the grid has {n:,} configurations (more than {grid.MAX_CONFIGURATIONS:,}): "
                         "add --yes to run them all")
    configs = grid.expand(axes, len(trace_options))
    for c in configs:
        source, model = trace_options[c.trace]
        options = {"source": source, "model": model, **spec.read_options, **c.options}
        try:
            c.ns = grid.namespace(options)
            grid.check_namespace(c.ns)
        except InputError as e:
            raise InputError(f"configuration {describe(c)}: {e}") from None
        c.options = options
    return Plan(spec, axes, configs)


def describe(c: grid.Configuration) -> str:
    return ", ".join(f"{k[6:] if k.startswith('sweep_') else k}={'default' if v is None else v}"
                     for k, v in c.columns.items()) or f"#{c.index}"


def sibling_key(trace: int, ns: argparse.Namespace) -> tuple:
    return (trace,) + tuple(sorted((k, repr(v)) for k, v in vars(ns).items() if k not in ("placement", "predictor")))


def load(plan: Plan) -> Plan:
    """Read (or generate) the traces, fingerprint them, key every configuration's row."""
    from waferview.sweep.results import row_key
    from waferview.sweep.traces import code_version, load_traces

    spec = plan.spec
    plan.traces = load_traces(spec.sources, _models(spec), synth=spec.synth, synth_requests=spec.synth_requests,
                              read_options=spec.read_options)
    version = code_version()
    for c in plan.configs:
        t = plan.traces[c.trace]
        c.columns = {"sweep_source": t.column, "sweep_model": t.model_key, **c.columns}
        plan.keys[c.index] = row_key(t.fingerprint, t.ref.label, c.ns, version)
        key = sibling_key(c.trace, c.ns)
        plan.siblings[c.index] = key
        if (c.ns.placement, c.ns.predictor) == ("base", "off"):
            plan.base_of.setdefault(key, c.index)
    return plan


def cost(plan: Plan, c: grid.Configuration) -> float:
    """A rough relative cost of one configuration, for scheduling the longest chunks first."""
    t = plan.traces[c.trace]
    batch = c.ns.batch or t.requests
    return t.moe_layers * (t.top_k * batch + 4 * t.num_experts) * (2.0 if c.ns.predictor == "heatmap" else 1.0)


def chunks(plan: Plan, indices: list[int], workers: int, max_size: int = 256) -> list[tuple[int, list]]:
    """[(trace, [(index, options)])]: configurations sharing a trace, batch and seed, sibling groups kept
    together with Base first; a group is cut only when there are fewer groups than workers."""
    groups: dict[tuple, list[grid.Configuration]] = {}
    for i in indices:
        c = plan.configs[i]
        groups.setdefault((c.trace, c.ns.batch, c.ns.seed), []).append(c)
    out = []
    parts_per_group = max(1, -(-workers // max(1, len(groups)))) if len(groups) < workers else 1
    for (trace, _, _), members in groups.items():
        members.sort(key=lambda c: (plan.siblings[c.index], (c.ns.placement, c.ns.predictor) != ("base", "off"),
                                    c.index))
        by_sibling: dict[tuple, list] = {}
        for c in members:
            by_sibling.setdefault(plan.siblings[c.index], []).append(c)
        units = list(by_sibling.values())
        if parts_per_group > 1 and len(units) == 1:
            units = [[c] for c in units[0]]
        size = max(1, min(max_size, -(-sum(len(u) for u in units) // parts_per_group)))
        current: list = []
        for u in units:
            if current and len(current) + len(u) > size:
                out.append((trace, current))
                current = []
            current += u
        if current:
            out.append((trace, current))
    out.sort(key=lambda tc: -sum(cost(plan, c) for c in tc[1]))
    return [(t, [(c.index, c.options) for c in cs]) for t, cs in out]
