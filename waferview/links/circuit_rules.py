"""The rules of the circuit link model's discipline, each one a switch (light: no numba, so option parsing and
`--help` can name them). All on is the study's simulator; `waferview explain` switches them off one at a time."""

from __future__ import annotations

from dataclasses import dataclass

RULES = ("shared_edges", "request_legs", "head_of_line", "circuit_latency", "lock_at_creation", "llc_hits")
RULE_HELP = {
    "shared_edges": "one resource per mesh edge, shared by both directions and by request and data legs "
                    "(off: one per direction)",
    "request_legs": "a 16 B request leg holds every link of its route for 200 ns x hops + 1 ns (off: it holds "
                    "none, but still takes that long)",
    "head_of_line": "a freed resource is offered only to the head of its wait queue (off: every waiter whose "
                    "resources are all free starts, in queue order)",
    "circuit_latency": "a leg holds its links for 200 ns x hops + serialisation (off: for the serialisation "
                       "only; the hop latency is then pipeline delay)",
    "lock_at_creation": "a stage locks (or queues on) its resources when its predecessor starts (off: when its "
                        "predecessor ends)",
    "llc_hits": "the 64 MB LLC of each die is checked and filled (off: it never hits)",
}


@dataclass(frozen=True)
class CircuitRules:
    """Every rule of the study's discipline; all True is the study (see RULE_HELP)."""
    shared_edges: bool = True
    request_legs: bool = True
    head_of_line: bool = True
    circuit_latency: bool = True
    lock_at_creation: bool = True
    llc_hits: bool = True

    @classmethod
    def without(cls, names) -> "CircuitRules":
        return cls(**{name: False for name in names})

    @property
    def off(self) -> tuple[str, ...]:
        return tuple(name for name in RULES if not getattr(self, name))
