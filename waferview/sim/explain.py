"""`waferview explain`: where the study's speedups come from, measured on one configuration.

Starting from waferview's fluid link model, the rules of the study's timing discipline (the circuit link
model) are switched on one at a time, cumulatively, ending at the full discipline; at each step the five
strategies run on the same batch (one Workload), so each row's speedups over Base, and the Base slowdown
from the row before, are what that rule adds. A second table switches each rule off alone from the full
discipline, as the study's own measurements did ("Base slower by").

    explain(trace, hardware, options, batch=None, seed=0, one_off=False, run=None) -> dict
"""

from __future__ import annotations

from dataclasses import replace

from waferview.links.circuit_rules import RULE_HELP, RULES, CircuitRules
from waferview.policies import PAPER_STRATEGIES
from waferview.sim.compare import compare

# the cumulative order: the largest effects first (the study's measured table), then the small ones
STEPS = ("shared_edges", "request_legs", "head_of_line", "circuit_latency", "lock_at_creation", "llc_hits")
ROUTE_STEP = "route_order"


def _row(label: str, rule: str | None, rows: list[dict]) -> dict:
    by = {r["strategy"]: r for r in rows}
    base = by["Base"]
    return {"step": label, "rule": rule, "base_tokens_per_s": base["throughput_tokens_per_s"],
            "base_decode_ms": base["decode_time_ms"],
            "speedup": {name: by[name]["speedup_vs_base"] for name in by},
            "hop_reduction": {name: by[name]["hop_reduction_vs_base"] for name in by}}


def explain(trace, hardware, options, *, batch=None, seed=0, one_off=False, run=None, on_step=None,
            jobs: int = 1) -> dict:
    """The cumulative decomposition (and, with one_off, each rule off alone from the full discipline); each
    comparison runs `jobs` strategies at once (sim.compare.compare)."""
    steps = []
    route_last = options.route_order    # the run's own route order is the last switch (the study: yx)
    plain = replace(options, circuit_rules=CircuitRules.without(RULES), route_order="xy")

    def measure(label, rule, opts, links):
        rows = compare(trace, hardware, PAPER_STRATEGIES, batch=batch, seed=seed, options=opts, run=run,
                       links=(links,), jobs=jobs)
        row = _row(label, rule, rows)
        if on_step is not None:
            on_step(row)
        return row

    steps.append(measure("fluid links (waferview's bound)", None, replace(options, route_order="xy"), "fluid"))
    steps.append(measure("circuit, every rule off", None, plain, "circuit"))
    on = set()
    for rule in STEPS:
        on.add(rule)
        opts = replace(plain, circuit_rules=CircuitRules.without(set(RULES) - on))
        steps.append(measure(f"+ {rule.replace('_', ' ')}", rule, opts, "circuit"))
    full = replace(options, circuit_rules=CircuitRules())
    if route_last != "xy":
        steps.append(measure(f"+ routes {route_last} (the study's order)", ROUTE_STEP, full, "circuit"))
    for prev, row in zip(steps, steps[1:]):
        if prev["base_decode_ms"] and row["base_decode_ms"]:
            row["base_slower_by"] = row["base_decode_ms"] / prev["base_decode_ms"]
    result = {"cumulative": steps, "rules": {r: RULE_HELP[r] for r in RULES}}
    if one_off:
        reference = steps[-1]
        offs = []
        for rule in STEPS:
            opts = replace(full, circuit_rules=CircuitRules.without([rule]))
            row = measure(f"without {rule.replace('_', ' ')}", rule, opts, "circuit")
            row["base_slower_by"] = (reference["base_decode_ms"] / row["base_decode_ms"] if row["base_decode_ms"]
                                     else None)
            offs.append(row)
        if route_last != "xy":
            row = measure("routes xy instead", ROUTE_STEP, replace(full, route_order="xy"), "circuit")
            row["base_slower_by"] = (reference["base_decode_ms"] / row["base_decode_ms"] if row["base_decode_ms"]
                                     else None)
            offs.append(row)
        result["one_off"] = offs
    return result


def format_explain(result: dict, title: str = "") -> str:
    names = [name for name, _, _ in PAPER_STRATEGIES if name != "Base"]

    def table(rows, slower_label):
        header = ["step", "Base tok/s", slower_label] + [f"{n}" for n in names]
        body = []
        for r in rows:
            slower = r.get("base_slower_by")
            body.append([r["step"], f"{r['base_tokens_per_s']:,.0f}" if r["base_tokens_per_s"] else "-",
                         "-" if slower is None else f"x{slower:.2f}"]
                        + [("-" if r["speedup"].get(n) is None else f"{r['speedup'][n]:.2f}x") for n in names])
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]

        def fmt(cells):
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        return [fmt(header)] + [fmt(b) for b in body]

    lines = [title] if title else []
    lines.append("the study's rules switched on one at a time (speedups over Base under each row's links; "
                 "'Base slower by': against the row above)")
    lines += table(result["cumulative"], "Base slower by")
    if "one_off" in result:
        lines.append("")
        lines.append("each rule switched off alone from the full discipline ('Base slower by': how much slower "
                     "the full discipline's Base is than this row's)")
        lines += table(result["one_off"], "Base slower by")
    lines.append("")
    for rule, text in result["rules"].items():
        lines.append(f"  {rule}: {text}")
    return "\n".join(lines)
