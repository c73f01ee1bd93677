"""What the engine hands to its viewers after each simulated (step, MoE layer).

A Frame is immutable and compared by identity (numpy fields would break equality checks in
reactive UI code). Arrays in a frame are private copies: the engine never mutates them later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    seq: int                   # (step, layer) pairs simulated so far, this one included (1-based)
    total: int                 # (step, layer) pairs in the whole run
    step: int                  # 0 = prefill, 1..N = decode step
    layer_index: int           # 0..L-1 among the MoE layers
    layer_id: int              # the layer's key in the trace files
    phase: str                 # "prefill" or "decode"
    placement: str             # mode used for this layer
    predictor: str             # mode used for this layer
    token_selections: int      # sum of the batch's expert counts in this layer
    die_busy_ns: np.ndarray    # (D,) busy time of each die in this layer
    die_tokens: np.ndarray     # (D,) token selections computed on each die
    die_copies: np.ndarray     # (D,) predictor copies each die holds for this layer, after it ran
    link_bytes: np.ndarray     # (n_links,) bytes over each directed link (Mesh.links order)
    layer_time_ns: float       # barrier time of the layer: slowest die or link
    local_read_bytes: int
    remote_read_bytes: int
    local_write_bytes: int
    hops: int
    weight_reads: int          # tasks, i.e. expert weight reads, in this layer
    local_weight_reads: int    # of which served by the reading die's own HBM
    totals: dict               # the run's summary fields so far (same keys as `summary --json`)
    # added by the engine work (defaults keep older constructors valid):
    die_hbm_bytes: np.ndarray | None = None     # (D,) bytes each die's HBM served: own reads, reads for others,
                                                # copy writes
    die_d2d_in_bytes: np.ndarray | None = None  # (D,) bytes arriving for each die: remote weights, request headers
    header_bytes: int = 0                       # request header bytes of this layer's remote reads
    copies_made: int = 0                        # predictor copies written in this layer
    evictions: int = 0                          # copies evicted in this layer
    links: str = "fluid"                        # link model used for this layer
    # the layer's tasks (one per (expert, die)): expert, executing die, tokens, the die it read the weights
    # from, and whether a predictor copy of the expert was written to the executing die
    task_expert: np.ndarray | None = None
    task_die: np.ndarray | None = None
    task_tokens: np.ndarray | None = None
    task_source: np.ndarray | None = None
    task_copied: np.ndarray | None = None
    die_time_parts: np.ndarray | None = None    # (D, 4) ns of compute, HBM, incoming links, latency per die
    # what set the layer time: "compute" / "hbm" / "links" (a die's) or "link" (a mesh link), or None
    bound_kind: str | None = None
    bound_die: int = -1
    bound_link: int = -1
    bound_share: float = 0.0                    # that resource's busy time / the layer time
    bound_label: str = ""                       # e.g. "die 5 HBM", "link 11->12"

    @property
    def die_utilization(self) -> np.ndarray:
        if self.layer_time_ns <= 0:
            return np.zeros_like(self.die_busy_ns)
        return self.die_busy_ns / self.layer_time_ns


_KIND_LABELS = {"compute": "compute", "hbm": "HBM", "links": "incoming links"}


def bound_label(kind: str | None, index: int, mesh_links) -> str:
    """What set a layer's time, as the live view and the per-layer records name it: "die 5 HBM",
    "link 11->12", or "" (nothing ran)."""
    if kind == "link":
        a, b = mesh_links[index]
        return f"link {a}->{b}"
    return f"die {index} {_KIND_LABELS[kind]}" if kind is not None else ""


def frame_from_layer(engine, step: int, layer: int, tasks) -> Frame:
    """The Frame of the (step, layer) the engine has just simulated (private copies of its buffers)."""
    from waferview.sim.state import BOUND_KINDS

    buf, s = engine.layer, engine.layer.scalars[0]
    task_e, task_d, task_tok, task_src, copied = tasks
    kind = BOUND_KINDS[int(s["bound_kind"])]
    index = int(s["bound_index"])
    layer_time = float(s["layer_time"])
    label = bound_label(kind, index, engine.mesh.links)
    return Frame(
        seq=engine.position, total=engine.total, step=step, layer_index=layer,
        layer_id=engine.model.moe_layer_ids[layer], phase="prefill" if engine.workload.step_prefill[step] else "decode",
        placement=engine.placement, predictor=engine.predictor, token_selections=int(s["selections"]),
        die_busy_ns=buf.die_busy.copy(), die_tokens=buf.die_tokens.copy(),
        die_copies=engine.store.copies_of_layer(layer), link_bytes=buf.link_bytes.copy(),
        layer_time_ns=layer_time, local_read_bytes=int(s["local_bytes"]), remote_read_bytes=int(s["remote_bytes"]),
        local_write_bytes=int(s["write_bytes"]), hops=int(s["hops"]), weight_reads=int(s["reads"]),
        local_weight_reads=int(s["local_reads"]), totals=engine.summary(), die_hbm_bytes=buf.die_hbm_bytes.copy(),
        die_d2d_in_bytes=buf.die_d2d_bytes.copy(), header_bytes=int(s["headers"]),
        copies_made=int(s["copies_made"]), evictions=int(s["evictions"]), links=engine.links,
        task_expert=task_e, task_die=task_d, task_tokens=task_tok, task_source=task_src, task_copied=copied,
        die_time_parts=buf.die_parts.copy(), bound_kind=kind, bound_die=index if kind not in (None, "link") else -1,
        bound_link=index if kind == "link" else -1,
        bound_share=float(s["bound_busy"]) / layer_time if layer_time > 0 else 0.0, bound_label=label)
