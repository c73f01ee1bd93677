"""Checks of one parsed trace file against the model table, with messages that say where.

Two kinds of check live here:
  * `check_step_layout` (layer keys, dense nulls): cheap per step, run on every file;
  * `find_problem` (the slow, exhaustive walk over every row and id): run only when the fast
    vectorised path in parse.py has seen something wrong, to name the first offending
    step / layer / row. Both return a reason string, or None when the thing is fine.

Layers are named by their key in the file ("layer 5" is key "5"); steps by position
(step 0 is the prefill, steps 1.. are decode steps).
"""

from __future__ import annotations

import re

import orjson

from waferview.models import ModelSpec

_SHOW = 5  # keys listed in a message before "..."


def json_type(value) -> str:
    """How JSON would call the value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _key_order(key: str):
    return (0, int(key), key) if key.isdigit() else (1, 0, key)


def _listing(keys) -> str:
    keys = sorted(keys, key=_key_order)
    shown = ", ".join(f'"{k}"' for k in keys[:_SHOW])
    return shown + (f" ... ({len(keys)} in all)" if len(keys) > _SHOW else "")


def step_name(s: int) -> str:
    return "step 0 (prefill)" if s == 0 else f"step {s}"


def describe_keys(step: dict) -> str:
    """A short description of a step's keys, for "matches no model" messages."""
    keys = sorted(step, key=_key_order)
    nulls = [k for k in keys if step[k] is None]
    span = f'"{keys[0]}".."{keys[-1]}"' if keys else "none"
    return f"{len(keys)} layer keys {span}, {len(nulls)} null" + (f" ({_listing(nulls)})" if nulls else "")


def check_step_layout(step, s: int, model: ModelSpec, model_origin: str = "") -> str | None:
    """Is step `s` an object with exactly the model's layer keys, dense layers null?"""
    if type(step) is not dict:
        return f"{step_name(s)} is {json_type(step)}, expected an object of layer ids"
    expected = model.layer_keys
    if step.keys() != expected:
        missing = expected - step.keys()
        if model.dense_may_be_absent:
            missing -= set(model.dense_layer_keys)
        extra = step.keys() - expected
        if missing or extra:
            origin = f" ({model_origin})" if model_origin else ""
            parts = []
            if missing:
                parts.append(f"missing {_listing(missing)}")
            if extra:
                parts.append(f"unexpected {_listing(extra)}")
            return f"{step_name(s)}: layer keys do not match {model.key}{origin}: " + "; ".join(parts)
    for key in model.dense_layer_keys:
        value = step.get(key)
        if value is not None:
            return (f"{step_name(s)} layer {key}: expected null (a dense layer of {model.key}), "
                    f"got {json_type(value)}")
    return None


_BIG_INT = re.compile(rb"-?[0-9]{19,}(?![0-9.eE])")


def _integer_literal(raw: bytes, value: float) -> int | None:
    """The integer literal of the file that orjson read as `value` (it reads integers beyond 64 bits
    as floats), if there is one."""
    for match in _BIG_INT.finditer(raw):
        start = match.start()
        if start and raw[start - 1:start] in b".eE+-0123456789":
            continue
        literal = int(match.group())
        if float(literal) == value:
            return literal
    return None


def _check_row(row, where: str, model: ModelSpec, raw: bytes = b"") -> str | None:
    k, n = model.top_k, model.num_experts
    if type(row) is not list:
        return f"{where}: expected a list of {k} expert ids, got {json_type(row)}"
    if len(row) != k:
        return f"{where}: {len(row)} expert ids, expected top-k = {k} for {model.key}"
    for e in row:
        if type(e) is not int:
            if isinstance(e, (list, dict)):
                return f"{where}: expert id is {json_type(e)}, expected an integer"
            literal = _integer_literal(raw, e) if type(e) is float and abs(e) >= 2 ** 63 else None
            if literal is not None:   # an integer beyond 64 bits (orjson reads it as a float)
                return f"{where}: expert id {literal} out of range ({model.key} has {n} experts: 0..{n - 1})"
            return f"{where}: expert id {orjson.dumps(e).decode()} is not an integer"
        if not 0 <= e < n:
            return f"{where}: expert id {e} out of range ({model.key} has {n} experts: 0..{n - 1})"
    if len(set(row)) != len(row):
        repeated = next(e for i, e in enumerate(row) if e in row[:i])
        return f"{where}: expert id {repeated} appears more than once (a row names {k} distinct experts)"
    return None


def find_problem(steps: list, model: ModelSpec, model_origin: str = "", raw: bytes = b"") -> str | None:
    """Walk every step, layer, row and id; return the first problem, or None if the file is fine.
    `raw` (the file's bytes) lets an integer beyond 64 bits be named as the integer it is."""
    for s, step in enumerate(steps):
        reason = check_step_layout(step, s, model, model_origin)
        if reason:
            return reason
        reference = None  # (layer key, rows) of the first MoE layer of the prefill
        for key in model.moe_layer_keys:
            rows = step[key]
            where = f"{step_name(s)} layer {key}"
            if rows is None:
                return f"{where}: null, but layer {key} is a MoE layer of {model.key}"
            if type(rows) is not list:
                return f"{where}: expected a list of rows, got {json_type(rows)}"
            if s == 0:
                if not rows:
                    return f"{where}: no rows (the prefill needs at least one token)"
                if reference is None:
                    reference = (key, len(rows))
                elif len(rows) != reference[1]:
                    return (f"{where}: {len(rows)} rows, but layer {reference[0]} has {reference[1]} "
                            f"(every MoE layer of the prefill routes the same tokens)")
            elif len(rows) != 1:
                return f"{where}: {len(rows)} rows in a decode step, expected exactly 1"
            for r, row in enumerate(rows):
                reason = _check_row(row, f"{where} row {r}", model, raw)
                if reason:
                    return reason
    return None
