"""SGLang response logs: `--enable-return-routed-experts` and `return_routed_experts: true`, one
`/generate` response per line (a batch request's list of responses also works), or OpenAI-compatible
responses with the routing under `sglext`.

Forms read (checked against SGLang's source, see README "Capture recipes"):

* `meta_info["routed_experts"]`: base64 of the flat ids, int32 unless `meta_info["routed_experts_dtype"]`
  says uint8/uint16, rows [prompt + completion - 1 - routed_experts_start_len, num_hidden_layers, top_k].
  The layer axis is every decoder layer: SGLang's capture buffers start at 0 and dense layers never
  write, so dense planes read 0 (not -1) and only the model description tells them apart; they are
  ignored. Prefix-cached prompt rows hold the routing their KV slots were computed with.
* `input_expert_ids` / `output_expert_ids` with `expert_ids_schema` (num_layers, top_k, moe_layer_ids,
  *_num_rows, *_start_position): input rows are positions [0, prompt - 1), output rows [prompt - 1,
  prompt + completion - 1). Upstream splits at prompt_tokens - 1 to line rows up with logprobs (the
  forward at the prompt's last token predicted the first output token).

waferview splits by where the forward ran instead: all prompt positions, the last one included, ran in
the prefill, so prefill rows = positions [0, prompt), decode rows = the rest (one per generated token
fed back; the last generated token never runs). Concatenated, both forms give the same rows.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

from waferview.models import ModelSpec
from waferview.trace.formats.common import (BadRecord, Skips, cached_requests, jsonl_records, pack_requests,
                                            require_model, route_rows)

NAME = "sglang"
VERSION = 1
_WIRE = {"int32": "<i4", "uint16": "<u2", "uint8": "u1"}


def looks_like(record) -> bool:
    if isinstance(record, list) and record:
        record = record[0]
    if not isinstance(record, dict):
        return False
    meta = record.get("meta_info")
    ext = record.get("sglext")
    return (isinstance(meta, dict) and ("routed_experts" in meta or "expert_ids_schema" in meta)) or \
        (isinstance(ext, dict) and ("routed_experts" in ext or "expert_ids_schema" in ext))


def read(path: str, label: str, model: ModelSpec | None, strict: bool, use_cache: bool):
    model = require_model(model, label, "an SGLang response log")
    return cached_requests(path, label, NAME, VERSION, model, strict, use_cache,
                           lambda: _parse(path, label, model, strict))


def _parse(path: str, label: str, model: ModelSpec, strict: bool):
    skips = Skips(strict)
    per_request, names = [], []
    for line, record in jsonl_records(path, label):
        items = record if isinstance(record, list) else [record]
        for i, item in enumerate(items):
            where = f"line {line}" + (f" item {i}" if isinstance(record, list) else "")
            try:
                if isinstance(item, BadRecord):
                    raise item
                rid, rows = _response(item, model)
            except BadRecord as e:
                skips.skip(label, where, str(e))
                continue
            per_request.append(rows)
            names.append(rid or where)
    return pack_requests(model, per_request, names, skips, label, "SGLang response log")


def _response(record, model: ModelSpec):
    if not isinstance(record, dict):
        raise BadRecord("expected a JSON object (one SGLang response)")
    if isinstance(record.get("meta_info"), dict):
        meta = record["meta_info"]
        prompt, completion = meta.get("prompt_tokens"), meta.get("completion_tokens")
        rid = meta.get("id")
    elif isinstance(record.get("sglext"), dict):
        meta = record["sglext"]
        usage = record.get("usage") if isinstance(record.get("usage"), dict) else {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        rid = record.get("id")
    else:
        raise BadRecord("no meta_info (expected an SGLang /generate response)")
    rid = rid if isinstance(rid, str) else None
    start = record.get("routed_experts_start_len", 0)
    if not _whole(start):
        raise BadRecord(f"routed_experts_start_len must be a non-negative integer, got {start!r}")
    if not _whole(prompt):
        raise BadRecord(f"prompt_tokens is {prompt!r}, expected the prompt's token count")
    if meta.get("routed_experts") is not None:
        ids = _legacy(meta, model, prompt, completion, start)
        split = max(prompt - start, 0)
        return rid, (ids[:split], ids[split:])
    if meta.get("expert_ids_schema") is not None:
        return rid, _partitioned(meta, model)
    raise BadRecord("no routed_experts in the response (start the server with --enable-return-routed-experts "
                    "and send return_routed_experts: true)")


def _legacy(meta: dict, model: ModelSpec, prompt: int, completion, start: int) -> np.ndarray:
    flat = _ids(meta["routed_experts"], meta.get("routed_experts_dtype") or "int32", "routed_experts")
    width = model.num_layer_keys * model.top_k
    if flat.size % width:
        raise BadRecord(f"routed_experts holds {flat.size} ids, not whole rows of {model.num_layer_keys} layers x "
                        f"top-k {model.top_k} (SGLang returns every decoder layer of the model)")
    rows = flat.reshape(-1, model.num_layer_keys, model.top_k)
    if _whole(completion):
        expected = max(prompt + completion - 1 - start, 0)
        if len(rows) != expected:
            raise BadRecord(f"routed_experts has {len(rows)} rows, expected prompt_tokens + completion_tokens - 1 - "
                            f"routed_experts_start_len = {expected}")
    return route_rows(rows, model, "routed_experts")


def _partitioned(meta: dict, model: ModelSpec):
    schema = meta["expert_ids_schema"]
    if not isinstance(schema, dict):
        raise BadRecord("expert_ids_schema is not an object")
    layers, top_k, moe_ids = schema.get("num_layers"), schema.get("top_k"), schema.get("moe_layer_ids")
    if layers != model.num_layer_keys:
        raise BadRecord(f"expert_ids_schema has {layers!r} layers, {model.key} has {model.num_layer_keys}")
    if top_k != model.top_k:
        raise BadRecord(f"expert_ids_schema has top_k {top_k!r}, {model.key} has {model.top_k}")
    if not isinstance(moe_ids, list) or sorted(moe_ids) != list(model.moe_layer_ids):
        raise BadRecord(f"expert_ids_schema's moe_layer_ids are not {model.key}'s MoE layers "
                        f"({model.moe_layers} layers, numbers {model.moe_layer_ids[0]}..{model.moe_layer_ids[-1]})")
    dtype = schema.get("dtype") or "int32"
    parts = []
    for part in ("input", "output"):
        n = schema.get(f"{part}_num_rows")
        if n is None:
            parts.append(None)
            continue
        if not _whole(n) or meta.get(f"{part}_expert_ids") is None:
            raise BadRecord(f"expert_ids_schema announces {n!r} {part} rows but {part}_expert_ids is missing")
        flat = _ids(meta[f"{part}_expert_ids"], dtype, f"{part}_expert_ids")
        if flat.size != n * layers * top_k:
            raise BadRecord(f"{part}_expert_ids holds {flat.size} ids, expected {part}_num_rows {n} x {layers} "
                            f"layers x top-k {top_k}")
        parts.append(route_rows(flat.reshape(n, layers, top_k), model, f"{part}_expert_ids"))
    inputs, outputs = parts
    if outputs is None:
        raise BadRecord("only input_expert_ids: without output rows the prompt's last position and the decode "
                        "steps are unknown (send return_output_expert_ids: true)")
    prefill = outputs[:1] if inputs is None else np.concatenate([inputs, outputs[:1]])
    return prefill, outputs[1:]


def _ids(text, dtype: str, what: str) -> np.ndarray:
    if not isinstance(text, str):
        raise BadRecord(f"{what} is not a base64 string")
    if dtype not in _WIRE:
        raise BadRecord(f"unknown id dtype {dtype!r} (SGLang sends {', '.join(_WIRE)})")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRecord(f"{what} is not valid base64 ({e})") from None
    size = np.dtype(_WIRE[dtype]).itemsize
    if len(raw) % size:
        raise BadRecord(f"{what} is {len(raw)} bytes, not whole {dtype} ids (truncated?)")
    return np.frombuffer(raw, dtype=_WIRE[dtype]).astype(np.int64)


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0
