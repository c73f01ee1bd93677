"""Per-layer records: one row per (step, MoE layer) replayed, as CSV or JSON lines (no numba, no textual).

The engine hands its rows over in chunks (sim.layerlog.LayerChunk: the layer's scalars, per-die busy times,
per-link bytes); rows_of turns a chunk into table rows with whole-column numpy work and one Python list per
row, so 12,000 layers cost a fraction of the run. Columns (LAYER_DOCS says what each means): the HEAD
columns, then in CSV die_busy_0 .. die_busy_{D-1} and link_bytes_0 .. link_bytes_{n-1} (link i is entry i of
`--json`'s link_bytes), in JSONL the lists die_busy and link_bytes. The byte, hop and time columns add up to
the run's totals in `summary --json` (remote_read_bytes, local_read_bytes, local_write_bytes, header_bytes,
hops; layer_time_ns over decode rows x 1e-6 = decode_time_ms, over prefill rows = prefill_time_ms).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import numpy as np
import orjson

LAYER_DOCS = {
    "step": "0 = the prefill of a request batch, then decode steps (a recorded batch: its forward passes)",
    "layer": "the MoE layer's index among the MoE layers (0 .. moe_layers-1)",
    "layer_id": "the layer's key in the trace files",
    "phase": "prefill or decode (how the layer is timed: prefill_time_ms or decode_time_ms)",
    "placement": "placement mode in force at this layer",
    "predictor": "predictor mode in force at this layer",
    "links": "link model in force at this layer",
    "layer_time_ns": "the layer's time (barrier: slowest die or link)",
    "bound": "what set the layer time: compute, hbm or links (of a die) or link (a mesh link); empty: no work",
    "bound_resource": "that die or link, e.g. 'die 5 HBM' or 'link 11->12'",
    "bound_busy_ns": "that resource's busy time in the layer",
    "local_read_bytes": "expert weight bytes read from the executing die's own HBM",
    "remote_read_bytes": "expert weight bytes read from another die's HBM",
    "local_write_bytes": "bytes written by predictor copies",
    "header_bytes": "request header bytes of the layer's remote reads",
    "hops": "links crossed by the layer's remote reads",
    "weight_reads": "expert weight reads (tasks; circuit: weight-matrix slices)",
    "local_weight_reads": "of which served by the reading die's own HBM",
    "hit_rate": "local_weight_reads / weight_reads (empty when nothing was read)",
    "copies_made": "predictor copies written in this layer",
    "copy_reads": "weight reads served by a predictor copy",
    "evictions": "copies dropped to make room",
    "token_selections": "the batch's expert selections in this layer",
    "busiest_die": "the die with the longest busy time (lowest id on ties; empty when no die worked)",
    "busiest_die_busy_ns": "its busy time",
    "busiest_link": "index of the directed link that carried the most bytes (empty when none carried any)",
    "busiest_link_from": "its source die",
    "busiest_link_to": "its destination die",
    "busiest_link_bytes": "its bytes",
    "die_busy": "busy time of every die, ns (CSV: die_busy_0 ..)",
    "link_bytes": "bytes over every directed link, in --json's link_bytes order (CSV: link_bytes_0 ..)",
}
HEAD = tuple(k for k in LAYER_DOCS if k not in ("die_busy", "link_bytes"))
FORMATS = (".csv", ".jsonl")

# the LAYER record's field behind each copied column
_COPIED = {"local_read_bytes": "local_bytes", "remote_read_bytes": "remote_bytes", "local_write_bytes": "write_bytes",
           "header_bytes": "headers", "hops": "hops", "weight_reads": "reads", "local_weight_reads": "local_reads",
           "copies_made": "copies_made", "copy_reads": "copy_reads", "evictions": "evictions",
           "token_selections": "selections"}


@dataclass(frozen=True, eq=False)
class RunShape:
    """What turns a position into (step, layer) and an index into a die or link: from the engine."""
    moe_layers: int
    layer_ids: np.ndarray      # (L,) the MoE layers' keys
    step_prefill: np.ndarray   # (steps,) bool
    links: np.ndarray          # (n_links, 2) from, to
    num_dies: int


def run_shape(engine) -> RunShape:
    model = engine.model
    return RunShape(model.moe_layers, np.asarray(model.moe_layer_ids, dtype=np.int64),
                    np.asarray(engine.workload.step_prefill, dtype=bool), np.asarray(engine.mesh.links),
                    engine.mesh.num_dies)


def header(shape: RunShape) -> list[str]:
    """The CSV header."""
    return [*HEAD, *(f"die_busy_{d}" for d in range(shape.num_dies)),
            *(f"link_bytes_{i}" for i in range(len(shape.links)))]


def _first_max(values: np.ndarray) -> tuple[np.ndarray, list, list]:
    """Per row: the index of the largest value (lowest on ties), the value, and whether it is above 0."""
    if values.shape[1] == 0:
        return np.zeros(values.shape[0], dtype=np.int64), [0] * values.shape[0], [False] * values.shape[0]
    index = values.argmax(axis=1)
    top = values[np.arange(values.shape[0]), index]
    return index, top.tolist(), (top > 0).tolist()


def _kept(values, kept) -> list:
    return [v if k else None for v, k in zip(values, kept)]


def head_columns(chunk, shape: RunShape) -> list[list]:
    """The HEAD columns of a chunk's rows, one Python list each (None for an empty cell)."""
    from waferview.sim.frame import bound_label
    from waferview.sim.state import BOUND_KINDS

    n = len(chunk)
    rec = chunk.layer
    position = np.arange(chunk.first, chunk.first + n)
    step, layer = np.divmod(position, shape.moe_layers)
    reads, local = rec["reads"], rec["local_reads"]
    hit = np.divide(local, reads, out=np.zeros(n), where=reads > 0).tolist()
    hit = [h if r else None for h, r in zip(hit, reads.tolist())]
    kinds = [BOUND_KINDS[k] for k in rec["bound_kind"].tolist()]
    resources = [bound_label(k, i, shape.links) or None for k, i in zip(kinds, rec["bound_index"].tolist())]
    die, die_busy, die_kept = _first_max(chunk.die_busy)
    link, link_top, link_kept = _first_max(chunk.link_bytes)
    ends = shape.links[link] if len(shape.links) else np.zeros((n, 2), dtype=np.int64)
    columns = {
        "step": step.tolist(), "layer": layer.tolist(), "layer_id": shape.layer_ids[layer].tolist(),
        "phase": np.where(shape.step_prefill[step], "prefill", "decode").tolist(),
        "placement": [chunk.placement] * n, "predictor": [chunk.predictor] * n, "links": [chunk.links] * n,
        "layer_time_ns": rec["layer_time"].tolist(), "bound": kinds, "bound_resource": resources,
        "bound_busy_ns": [b if k else None for b, k in zip(rec["bound_busy"].tolist(), kinds)],
        **{name: rec[field].tolist() for name, field in _COPIED.items()},
        "hit_rate": hit,
        "busiest_die": _kept(die.tolist(), die_kept), "busiest_die_busy_ns": _kept(die_busy, die_kept),
        "busiest_link": _kept(link.tolist(), link_kept), "busiest_link_from": _kept(ends[:, 0].tolist(), link_kept),
        "busiest_link_to": _kept(ends[:, 1].tolist(), link_kept), "busiest_link_bytes": _kept(link_top, link_kept),
    }
    return [columns[name] for name in HEAD]


# Names the fast writers may leave to orjson: no quote, backslash, comma, bracket, brace or line break, so
# neither a null cell, a row boundary ('],[' or '},{') nor CSV quoting can occur inside one.
_PLAIN = re.compile(r"[A-Za-z0-9_.+\- ]*")


def _plain(chunk) -> bool:
    return all(_PLAIN.fullmatch(name) for name in (chunk.placement, chunk.predictor, chunk.links))


def _lines(data: bytes, n: int, sep: bytes = b"],[") -> list[bytes]:
    """orjson's text of n rows ('[[..],[..]]' or '[{..},{..}]') cut into the rows' insides."""
    return data[2:-2].split(sep) if n else []


def _block(values: np.ndarray) -> list[bytes]:
    """A 2D numeric block as one line of comma-separated numbers per row (empty rows when no columns)."""
    if values.shape[1] == 0:
        return [b""] * values.shape[0]
    return _lines(orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY), values.shape[0])


def csv_bytes(chunk, shape: RunShape) -> bytes:
    """The chunk's rows as CSV lines (floats in their shortest exact form: they read back exactly; text cells
    quoted). A few orjson calls for the whole chunk: the csv module would take longer than the run."""
    heads = list(zip(*head_columns(chunk, shape)))
    if not _plain(chunk):   # a user's own mode with an odd name: the csv module's quoting
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(
            [*h, *b, *k] for h, b, k in zip(heads, chunk.die_busy.tolist(), chunk.link_bytes.tolist()))
        return out.getvalue().encode()
    # the first cell (step) is never empty, so every null follows a comma; no text cell holds a comma
    head = _lines(orjson.dumps(heads).replace(b",null", b","), len(heads))
    parts = [head, _block(chunk.die_busy)] + ([_block(chunk.link_bytes)] if chunk.link_bytes.shape[1] else [])
    return b"\n".join(b",".join(row) for row in zip(*parts)) + b"\n"


def jsonl_bytes(chunk, shape: RunShape) -> bytes:
    """The chunk's rows as JSON lines, die_busy and link_bytes as lists."""
    heads = [dict(zip(HEAD, h)) for h in zip(*head_columns(chunk, shape))]
    if not _plain(chunk):
        return b"".join(orjson.dumps({**h, "die_busy": b, "link_bytes": k}) + b"\n"
                        for h, b, k in zip(heads, chunk.die_busy.tolist(), chunk.link_bytes.tolist()))
    head = _lines(orjson.dumps(heads), len(heads), b"},{")
    lines = [b'{%s,"die_busy":[%s],"link_bytes":[%s]}' % row
             for row in zip(head, _block(chunk.die_busy), _block(chunk.link_bytes))]
    return b"\n".join(lines) + b"\n"
