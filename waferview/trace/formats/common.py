"""What every serving-engine reader shares: naming records, skipping bad ones, mapping an engine's
layer axis onto the model's MoE layers, and validating expert ids before anything else sees them.

A bad record is one line naming the file and the record ("capture.jsonl: line 7: ..."). By default
it is skipped and listed (`Skips`); under --strict the first one stops the run (TraceFileError, exit 2).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import numpy as np
import orjson

from waferview.errors import InputError, TraceFileError
from waferview.files import open_regular_file
from waferview.models import ModelSpec

MODEL_HINT = "pass --model (qwen3, deepseek, llama4, kimi, or a model description .json file)"


class BadRecord(Exception):
    """One record cannot be read; the message says where in the record and what was expected."""


class Skips:
    """Records left out, as {"file": ..., "reason": ...} (the shape TraceArrays.skipped uses)."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.entries: list[dict] = []

    def skip(self, file: str, where: str, reason: str) -> None:
        text = f"{where}: {reason}" if where else reason
        if self.strict:
            raise TraceFileError(file, text)
        self.entries.append({"file": file, "reason": text})


def jsonl_records(path: str, label: str) -> Iterator[tuple[int, object | BadRecord]]:
    """(line number, parsed JSON value or BadRecord) for every non-blank line, streamed."""
    try:
        f = open_regular_file(path)
    except OSError as e:
        raise InputError(f"{label}: cannot read ({e.strerror or e})") from None
    with f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError as e:
                if not line.endswith(b"\n") and (e.pos >= len(line.rstrip()) or "end of data" in e.msg):
                    yield number, BadRecord("truncated JSON record (the file ends inside it)")
                else:
                    yield number, BadRecord(f"invalid JSON at column {e.colno}: {e.msg}")


def content_key(path: str, *parts) -> str:
    """A cache key from a file's bytes and what they were read as (format, reader version, model)."""
    h = hashlib.sha256(orjson.dumps([str(p) for p in parts]))
    with open_regular_file(path) as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def model_from_record(name) -> ModelSpec | None:
    """The built-in model a record names by its full name (vLLM's "model" field: the served model), if
    it does. Short aliases ("qwen") are not trusted here: a server may give any model a short name."""
    from waferview.models import MODELS

    if not isinstance(name, str):
        return None
    low = name.strip().lower()
    return next((m for m in MODELS.values() if low in (m.folder.lower(), m.name.lower())), None)


def require_model(model: ModelSpec | None, label: str, what: str) -> ModelSpec:
    if model is None:
        raise InputError(f"{label}: {what} does not say which model it routes: {MODEL_HINT}")
    return model


# ---- layer axes -------------------------------------------------------------------------------

def moe_planes(model: ModelSpec, planes: int) -> np.ndarray:
    """Which planes of an engine's layer axis are the model's MoE layers, in layer order.

    Engines give either every decoder layer (SGLang, vLLM >= 0.30: dense layers stay 0) or only
    the MoE layers (vLLM 0.21-0.2x). Raises BadRecord when the count fits neither."""
    if planes == model.num_layer_keys:
        return np.asarray(model.moe_layer_ids, dtype=np.int64)
    if planes == model.moe_layers:
        return np.arange(planes, dtype=np.int64)
    raise BadRecord(f"{planes} layers per row, expected {model.num_layer_keys} (every layer of {model.key}) "
                    f"or {model.moe_layers} (its MoE layers)")


def layer_map(model: ModelSpec, layer_ids, label: str) -> tuple[dict[int, int], str | None]:
    """{layer id as the source numbers it: MoE layer index 0..L-1} for sources that key records by layer.

    Accepts the model's own layer numbers (0-based, dense layers counted), the same numbers 1-based
    (Megatron's routing-replay sink uses TransformerLayer.layer_number), or, failing both, as many ids
    as the model has MoE layers, taken in order (a note says so)."""
    ids = sorted(set(layer_ids))
    moe = list(model.moe_layer_ids)
    if ids == moe:
        return {v: i for i, v in enumerate(ids)}, None
    if ids == [m + 1 for m in moe]:
        return {v: i for i, v in enumerate(ids)}, ("layer ids are 1-based (Megatron's layer_number): layer n is model "
                                                   "layer n-1")
    if len(ids) == len(moe):
        shown = f"{ids[0]}..{ids[-1]}" if ids else "none"
        return ({v: i for i, v in enumerate(ids)},
                f"layer ids {shown} are not {model.key}'s MoE layer numbers; mapped in order onto its {len(moe)} MoE "
                "layers")
    raise InputError(f"{label}: records name {len(ids)} distinct layers, but {model.key} has {len(moe)} MoE layers "
                     f"(layer numbers {_span(moe)}); check --model (a pipeline-parallel trace keeps a stage's layers "
                     "per rank and cannot be read)")


def _span(values) -> str:
    values = list(values)
    return f"{values[0]}..{values[-1]}" if values else "none"


# ---- expert ids -------------------------------------------------------------------------------

def as_int_array(value, what: str) -> np.ndarray:
    """A JSON nested list or a numpy array of integers as int64 (BadRecord otherwise)."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        raise BadRecord(f"{what} is ragged (rows of different lengths)") from None
    if arr.dtype == object:
        raise BadRecord(f"{what} is ragged or holds non-numbers")
    if arr.size and arr.dtype.kind not in "iu":
        raise BadRecord(f"{what} holds {arr.dtype.name} values, expected integer expert ids")
    return arr.astype(np.int64, copy=False)


def route_rows(rows: np.ndarray, model: ModelSpec, what: str, *, planes: np.ndarray | None = None,
               row_names=None, wider_ok: bool = False) -> np.ndarray:
    """rows [R, planes, width] of raw ids -> [R, L, k] in the model's id dtype, validated.

    Keeps the MoE planes (dense ones are ignored: engines leave them 0 or -1) and the first k ids
    of each row only when the engine stores more (SGLang's recorder keeps 8). Raises BadRecord naming
    the first bad row and layer: a wrong width, a -1 where a MoE layer must route, an id out of range."""
    if rows.ndim != 3:
        raise BadRecord(f"{what}: expected [tokens, layers, top-k] ids, got {rows.ndim} dimension(s)")
    if planes is None:
        planes = moe_planes(model, rows.shape[1])
    k = model.top_k
    if wider_ok and rows.shape[2] > k:
        rows = rows[:, :, :k]
    if rows.shape[2] != k:
        raise BadRecord(f"{what}: {rows.shape[2]} expert ids per row, expected top-k = {k} for {model.key}")
    ids = rows[:, planes, :]
    bad = (ids < 0) | (ids >= model.num_experts)
    if bad.any():
        r, l, j = np.unravel_index(int(np.argmax(bad)), bad.shape)
        value = int(ids[r, l, j])
        row = row_names(r) if row_names else f"row {r}"
        layer = model.moe_layer_ids[l]
        if value == -1:
            raise BadRecord(f"{what} {row} layer {layer}: -1 (no expert), but layer {layer} is a MoE layer of "
                            f"{model.key} and must route {k} experts")
        raise BadRecord(f"{what} {row} layer {layer}: expert id {value} out of range ({model.key} has "
                        f"{model.num_experts} experts: 0..{model.num_experts - 1})")
    return ids.astype(model.id_dtype)


def is_regular_file(path) -> bool:
    try:
        return os.path.isfile(path)
    except OSError:
        return False


# ---- per-request sources: one TraceArrays, cached like JSON sources ------------------------------

def cached_requests(path: str, label: str, fmt: str, version: int, model: ModelSpec, strict: bool,
                    use_cache: bool, parse):
    """The TraceArrays of a per-request capture file, from the cache when it was built from exactly
    these bytes, read as this format and model; else `parse()` (-> TraceArrays) and cache it.

    Caches whose header names a model by key only cannot carry a model description yet (cache.py
    reads the model back with get_model), so only the built-in models are cached for now."""
    import dataclasses

    from waferview.trace import store
    from waferview.trace.ingest import raise_first_skipped

    cacheable = use_cache   # caches carry the full model description (any model, not only the built-in ones)
    if cacheable:
        cache_path = store.cache_path_for(path, f"{fmt}-{model.key}")
        key = content_key(path, "waferview-formats", fmt, version, orjson.dumps(model.to_dict()).decode())
        cached = store.read_trusted(cache_path, key, label)
        if cached is not None:
            if strict:
                raise_first_skipped(cached, lambda rel: rel)
            return dataclasses.replace(cached, source=label)
    trace = parse()
    if cacheable:
        store.write(cache_path, trace, key)
    return trace


def pack_requests(model: ModelSpec, per_request, names, skips: Skips, label: str, what: str):
    from waferview.trace.arrays import concat_requests

    if not per_request:
        first = skips.entries[0] if skips.entries else None
        detail = f"; first: {first['file']}: {first['reason']}" if first else ""
        raise InputError(f"{label}: no request with routing in this {what} ({len(skips.entries)} record(s) "
                         f"skipped{detail})")
    return concat_requests(model, per_request, names, skips.entries, source=label, consume=True)


def layer_rows(value, model: ModelSpec, what: str, expected_rows: int | None = None) -> np.ndarray:
    """One MoE layer's [tokens, k] ids (a record keyed by layer) in the model's id dtype, validated."""
    arr = as_int_array(value, what)
    if arr.size == 0 and expected_rows in (0, None):
        return np.zeros((0, model.top_k), dtype=model.id_dtype)
    if arr.ndim != 2:
        raise BadRecord(f"{what}: expected [tokens, top-k] rows of expert ids")
    if expected_rows is not None and arr.shape[0] != expected_rows:
        raise BadRecord(f"{what}: {arr.shape[0]} rows, but num_tokens is {expected_rows}")
    if arr.shape[1] != model.top_k:
        raise BadRecord(f"{what}: {arr.shape[1]} expert ids per row, expected top-k = {model.top_k} for {model.key}")
    bad = (arr < 0) | (arr >= model.num_experts)
    if bad.any():
        r, j = np.unravel_index(int(np.argmax(bad)), bad.shape)
        value = int(arr[r, j])
        if value == -1:
            raise BadRecord(f"{what} row {r}: -1 (no expert), but a MoE layer must route {model.top_k} experts")
        raise BadRecord(f"{what} row {r}: expert id {value} out of range ({model.key} has {model.num_experts} "
                        f"experts: 0..{model.num_experts - 1})")
    return arr.astype(model.id_dtype)
