"""vLLM `--enable-return-routed-experts` captures: one JSON response per line (completions or chat).

Two forms, both read (checked against vLLM's source and docs, see README "Capture recipes"):

* vLLM 0.21-0.2x: the response carries `prompt_routed_experts` [prompt_len, num_moe_layers, top_k]
  and each choice `routed_experts` [gen_len, num_moe_layers, top_k], nested lists of int16 ids.
  Prompt positions served from the prefix cache are rows of -1: that request did no MoE work for
  them, so they are left out of its prefill (a notice counts them). A choice whose `routed_experts`
  is null was preempted (vLLM drops the routing it had): it is skipped and listed.
* vLLM >= 0.30 (AuxOutput connector): no `prompt_routed_experts`; each choice's `routed_experts` is
  base64 of a `.npy` array [prompt + generated - 1 - routed_experts_prompt_start, num_hidden_layers,
  top_k], uint8/uint16 (every decoder layer; dense layers stay 0). Prefix-cached positions carry the
  routing stored with their KV blocks. Split: rows before usage.prompt_tokens are the prompt (all of
  them ran in the prefill forward), the rest are decode steps (the last generated token is never
  forwarded, so it has no row).

Prefill rows = prompt rows, decode rows = one per generated token that went through the model. With
n > 1 choices the prompt ran once: only the first choice carries the prefill rows.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np

from waferview.models import ModelSpec
from waferview.trace.formats.common import (BadRecord, Skips, as_int_array, cached_requests, jsonl_records,
                                            model_from_record, moe_planes, pack_requests, require_model,
                                            route_rows)

NAME = "vllm"
VERSION = 1


def looks_like(record) -> bool:
    if not isinstance(record, dict) or "meta_info" in record:
        return False
    if "prompt_routed_experts" in record:
        return True
    choices = record.get("choices")
    return isinstance(choices, list) and any(isinstance(c, dict) and "routed_experts" in c for c in choices)


def read(path: str, label: str, model: ModelSpec | None, strict: bool, use_cache: bool):
    if model is None:
        for _, record in jsonl_records(path, label):
            model = model_from_record(record.get("model")) if isinstance(record, dict) else None
            break
    model = require_model(model, label, "a vLLM capture")
    return cached_requests(path, label, NAME, VERSION, model, strict, use_cache,
                           lambda: _parse(path, label, model, strict))


def _parse(path: str, label: str, model: ModelSpec, strict: bool):
    from waferview.trace.store import notice

    skips = Skips(strict)
    per_request, names = [], []
    cached_rows = 0
    for line, record in jsonl_records(path, label):
        where = f"line {line}"
        try:
            if isinstance(record, BadRecord):
                raise record
            requests, cached = _record(record, model)
        except BadRecord as e:
            skips.skip(label, where, str(e))
            continue
        cached_rows += cached
        rid = record.get("id") if isinstance(record.get("id"), str) else where
        for choice, item in requests:
            if isinstance(item, BadRecord):
                skips.skip(label, f"{where} choice {choice}", str(item))
                continue
            per_request.append(item)
            names.append(rid if len(requests) == 1 else f"{rid}#{choice}")
    if cached_rows:
        notice(f"{label}: {cached_rows} prefix-cached prompt rows (-1: vLLM ran no MoE for them in that request) "
               "left out of the prefill")
    return pack_requests(model, per_request, names, skips, label, "vLLM capture")


def _record(record, model: ModelSpec):
    """[(choice index, (prefill, decode) or BadRecord)], prefix-cached rows dropped."""
    if not isinstance(record, dict):
        raise BadRecord("expected a JSON object (one vLLM response)")
    choices = record.get("choices")
    if not isinstance(choices, list) or not choices:
        raise BadRecord("no choices (expected a vLLM completions or chat completions response)")
    old_form = "prompt_routed_experts" in record
    prompt = None
    cached = 0
    if old_form and record["prompt_routed_experts"] is not None:
        raw = as_int_array(record["prompt_routed_experts"], "prompt_routed_experts")
        if raw.ndim == 3 and raw.size:
            hit = (raw == -1).all(axis=(1, 2))        # a prefix-cached position: no routing at all
            cached = int(hit.sum())
            raw = raw[~hit]
        prompt = route_rows(raw, model, "prompt_routed_experts")
    else:
        usage = record.get("usage")
        prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        start = record.get("routed_experts_prompt_start", 0)
        if not old_form and (isinstance(prompt_tokens, bool) or not isinstance(prompt_tokens, int)):
            raise BadRecord("no usage.prompt_tokens: cannot tell prompt rows from generated ones")
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise BadRecord(f"routed_experts_prompt_start must be a non-negative integer, got {start!r}")
    out = []
    for i, choice in enumerate(choices):
        try:
            if not isinstance(choice, dict):
                raise BadRecord("expected an object")
            index = choice.get("index", i)
            value = choice.get("routed_experts")
            if value is None:
                raise BadRecord("routed_experts is null (vLLM returns none for a request that was preempted, or "
                                "aborted before its first forward pass)")
            rows = _decode(value)
            if old_form:
                decode = route_rows(rows, model, "routed_experts")
                pre = prompt if prompt is not None and i == 0 else _empty(model)
            else:
                split = max(prompt_tokens - start, 0)
                if rows.ndim == 3 and rows.shape[0] < split:
                    raise BadRecord(f"{rows.shape[0]} routing rows, but the prompt alone has {split} "
                                    f"(usage.prompt_tokens {prompt_tokens}, routed_experts_prompt_start {start})")
                planes = moe_planes(model, rows.shape[1]) if rows.ndim == 3 else None
                ids = route_rows(rows, model, "routed_experts", planes=planes)
                pre = ids[:split] if i == 0 else _empty(model)
                decode = ids[split:]
            out.append((index, (pre, decode)))
        except BadRecord as e:
            out.append((choice.get("index", i) if isinstance(choice, dict) else i, e))
    return out, cached


def _decode(value) -> np.ndarray:
    if isinstance(value, str):
        try:
            array = np.load(io.BytesIO(base64.b64decode(value, validate=True)), allow_pickle=False)
        except (binascii.Error, ValueError, OSError, EOFError) as e:
            raise BadRecord(f"routed_experts is a string but not base64 of a .npy array ({e})") from None
        return as_int_array(array, "routed_experts")
    return as_int_array(value, "routed_experts")


def _empty(model: ModelSpec) -> np.ndarray:
    return np.zeros((0, model.moe_layers, model.top_k), dtype=model.id_dtype)
