"""Megatron-Core router traces (`--moe-routing-trace-path DIR`): `router_trace_rank{r}.jsonl` per rank.

One record per (step, block, layer) (megatron/core/transformer/moe/router_trace.py):
    {"step": 0, "stage": "pre_dispatch", "block": "decoder", "layer": 3, "rank": 0,
     "num_tokens": 128, "topk": 8, "top_indices": [[12, 45, ...], ...]}
MTP records ("block": "mtp", with "mtp_idx") are left out (they are not decoder MoE layers).

Layer numbering differs by capture path: the forward-hook path writes the index in
`decoder.layers` (0-based), the routing-replay sink (`--moe-enable-routing-replay`) writes
TransformerLayer.layer_number (1-based); both are recognised (formats.common.layer_map). Only MoE layers
have routers, so the model description says which layer numbers those are.

Batch-major: one pass is one step of one rank (a layer firing again within a step, as with
several micro-batches in training, starts the next pass of that step). Ranks' pieces of the same
pass are merged; a rank whose piece equals another's (tensor-parallel replicas, which the sink
all-gathers) is left out. No request ids and no phase flag (see passes.PHASE_BY_TOKENS_NOTE).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from waferview.errors import InputError
from waferview.models import ModelSpec
from waferview.trace.formats.common import BadRecord, jsonl_records, layer_map, layer_rows, require_model
from waferview.trace.passes import DECODE_MAX_TOKENS, PHASE_BY_TOKENS_NOTE, PassBuilder

NAME = "megatron"
RANK_FILE = re.compile(r"^router_trace_rank(\d+)\.jsonl$")


def looks_like(record) -> bool:
    return isinstance(record, dict) and "top_indices" in record and "layer" in record and "step" in record


def rank_files(path: Path) -> list[tuple[int, Path]]:
    if path.is_dir():
        found = [(int(m.group(1)), path / n) for n in os.listdir(path) if (m := RANK_FILE.match(n))]
        return sorted(found)
    m = RANK_FILE.match(path.name)
    return [(int(m.group(1)) if m else 0, path)]


def read(path: Path, label: str, model: ModelSpec | None, strict: bool):
    model = require_model(model, label, "a Megatron router trace")
    files = rank_files(path)
    if not files:
        raise InputError(f"{label}: no router_trace_rank*.jsonl files in this folder")
    builder = PassBuilder(model, strict)
    groups, layer_ids, mtp = [], set(), 0
    for rank, file in files:
        name = file.name if path.is_dir() else label
        per_step: dict[int, list[dict]] = {}
        for line, record in jsonl_records(str(file), name):
            where = f"line {line}"
            try:
                if isinstance(record, BadRecord):
                    raise record
                step, layer, block = _header(record)
                if block == "mtp":
                    mtp += 1
                    continue
                where = f"line {line} (step {step}, layer {layer})"
                layer_ids.add(layer)   # even when its rows are bad: a wrong --model is named as such below
                rows = layer_rows(record["top_indices"], model, "top_indices", record["num_tokens"])
            except BadRecord as e:
                builder.skip(name, where, str(e))
                continue
            subs = per_step.setdefault(step, [{}])
            if layer in subs[-1]:
                subs.append({})      # the layer fires again: the next pass of this step
            subs[-1][layer] = rows
        for step, subs in per_step.items():
            for sub, layers in enumerate(subs):
                groups.append((name, rank, step, sub, layers))
    if not layer_ids:
        skipped = builder.skips.entries
        first = f"; first: {skipped[0]['file']}: {skipped[0]['reason']}" if skipped else ""
        raise InputError(f"{label}: no decoder routing records ({len(skipped)} record(s) skipped{first})")
    index, numbering = layer_map(model, layer_ids, label)
    for name, rank, step, sub, layers in groups:
        where = f"step {step}" + (f" pass {sub}" if sub else "")
        missing = sorted(set(index) - set(layers))
        if missing:
            builder.skip(name, where, f"no record for layer(s) {', '.join(map(str, missing[:5]))}"
                                      f"{' ...' if len(missing) > 5 else ''} (a pass routes every MoE layer)")
            continue
        ordered = sorted(layers, key=index.__getitem__)
        sizes = {len(layers[l]) for l in ordered}
        if len(sizes) > 1:
            builder.skip(name, where, "layers of one pass route different token counts "
                                      f"({', '.join(f'layer {l}: {len(layers[l])}' for l in ordered[:4])} ...)")
            continue
        ids = np.stack([layers[l] for l in ordered], axis=1)
        builder.add_ids((step, sub), rank, ids, prefill=len(ids) > DECODE_MAX_TOKENS)
    notes = [PHASE_BY_TOKENS_NOTE, numbering]
    if mtp:
        notes.append(f"{mtp} MTP record(s) left out (multi-token-prediction heads are not decoder MoE layers)")
    return builder.build(label, notes)


def _header(record):
    if not isinstance(record, dict):
        raise BadRecord("expected a JSON object (one router trace record)")
    for field in ("step", "layer", "num_tokens"):
        v = record.get(field)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise BadRecord(f"{field} is {v!r}, expected a non-negative integer")
    if "top_indices" not in record:
        raise BadRecord("no top_indices")
    block = record.get("block", "decoder")
    if "mtp_idx" in record:
        block = "mtp"
    if block not in ("decoder", "mtp"):
        raise BadRecord(f"block {block!r}, expected 'decoder' or 'mtp'")
    return record["step"], record["layer"], block
