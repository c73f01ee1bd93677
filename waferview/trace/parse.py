"""Read one trace file (the dataset's JSON format) into expert-id arrays, fully validated.

    model, prefill, decode = parse_file("Qwen/Qwen3-235B-A22B-FP8/mmlu/x/17.json")
    prefill: [p, L, k]  rows of step 0 (the prefill), L = the model's MoE layers in key order
    decode:  [d, L, k]  steps 1..d, one row each

This is the ingest hot path, so the common case runs no Python bytecode per row: the rows of
all MoE layers are gathered with C-level iteration (itemgetter, chain, map), their widths
checked with one set(map(len, ...)), and all ids turned into one array by a single C loop
(`bytearray` when ids fit in a byte, `struct.pack` otherwise: both reject non-integers and
out-of-range values), then the model's expert count checked with numpy max. The cyclic GC is
paused meanwhile. Only when something is off does the exhaustive walk in validate.py run, to
name the first offending step / layer / row. Measured on a Qwen-sized file (6 MB, 200 prefill
rows, 128 decode steps), the whole parse runs at 0.8-1.0x the speed of orjson.loads alone.

Phase is by position: step 0 is the prefill, every later step is a decode step. A file may
have any number of decode steps, 0 included (the dataset has at most 128; more are accepted,
nothing downstream depends on the bound).
"""

from __future__ import annotations

import gc
import os
import struct
from contextlib import contextmanager
from itertools import chain
from operator import itemgetter

import numpy as np
import orjson

from waferview.errors import TraceFileError
from waferview.models import MODELS, ModelSpec, infer_model_from_step
from waferview.files import os_reason, read_capped
from waferview.trace.validate import describe_keys, find_problem, json_type

MAX_TRACE_FILE_BYTES = 128 << 20   # the dataset's largest files are under 10 MB

_FOLDERS = {m.name.lower(): m for m in MODELS.values()}


def model_from_dataset_path(path: str) -> ModelSpec | None:
    """The model whose dataset folder name (e.g. Qwen3-235B-A22B-FP8) is a folder of `path`, the one
    nearest the file when several are; None when no folder is one."""
    parts = path.replace("\\", "/").split("/")[:-1]
    for part in reversed(parts):
        model = _FOLDERS.get(part.lower())
        if model is not None:
            return model
    return None


PATH_ORIGIN = "inferred from the path; pass --model to override"


def parse_file(path: str | os.PathLike, model: ModelSpec | None = None, *, name: str | None = None,
               model_origin: str = "") -> tuple[ModelSpec, np.ndarray, np.ndarray]:
    """Parse one trace file. `name` is how errors call the file (default: the path).

    The model is `model` when given (a file that contradicts it is a bad file), else the one whose
    dataset folder the path holds (model_from_dataset_path), else the one the first step's keys match.
    Only a regular file of at most MAX_TRACE_FILE_BYTES is read."""
    name = str(path) if name is None else name
    try:
        raw = read_capped(path, MAX_TRACE_FILE_BYTES, "trace file")
    except OSError as e:
        raise TraceFileError(name, f"cannot read: {os_reason(e)}") from None
    if model is None:
        model = model_from_dataset_path(os.path.abspath(path))
        model_origin = PATH_ORIGIN if model else model_origin
    return parse_bytes(raw, name, model, model_origin=model_origin)


def load_json(raw: bytes, name: str):
    """orjson.loads with the dataset's failure modes turned into clear reasons."""
    if not raw or raw.isspace():  # (isspace stops at the first other byte; strip() would copy)
        raise TraceFileError(name, "empty file" if not raw else "empty file (only whitespace)")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        if e.pos >= len(raw.rstrip()) or e.msg.startswith("unexpected end of data"):
            raise TraceFileError(name, f"truncated JSON (the data ends at line {e.lineno} column {e.colno} "
                                       f"inside an unfinished value)") from None
        raise TraceFileError(name, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


@contextmanager
def _gc_paused():
    """orjson builds tens of thousands of lists; the cyclic GC would walk the growing tree again
    and again while it does (about a fifth of the parse time). They hold no cycles: pause it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_bytes(raw: bytes, name: str, model: ModelSpec | None = None, *,
                model_origin: str = "") -> tuple[ModelSpec, np.ndarray, np.ndarray]:
    """Parse the bytes of one trace file (see parse_file)."""
    with _gc_paused():
        return _parse(raw, name, model, model_origin)


def _parse(raw: bytes, name: str, model: ModelSpec | None, model_origin: str):
    steps = load_json(raw, name)
    if type(steps) is not list:
        raise TraceFileError(name, f"top level is {json_type(steps)}, expected a list of steps")
    if not steps:
        raise TraceFileError(name, "no steps (the top-level list is empty)")
    if model is None:
        if type(steps[0]) is not dict:
            raise TraceFileError(name, f"step 0 (prefill) is {json_type(steps[0])}, expected an object of layer ids")
        model = infer_model_from_step(steps[0])
        if model is None:
            raise TraceFileError(name, f"step 0 (prefill): layer keys match no known model "
                                       f"({describe_keys(steps[0])}); pass --model")
        model_origin = "inferred from step 0"
    elif model_origin == "":
        model_origin = "--model"

    # JSON true/false would pass bytes() as 1/0; a file without a 't' or 'f' byte has none
    # (layer keys are digits), so only a file that might goes the slow, exhaustive way.
    suspect = b"t" in raw or b"f" in raw
    arrays = None if suspect or not _layout_ok(steps, model) else _fast_arrays(steps, model)
    if arrays is None:
        # name the first problem in file order (step by step, layer by layer)
        reason = find_problem(steps, model, model_origin, raw)
        if reason:
            raise TraceFileError(name, reason + _other_model_hint(steps[0], model))
        arrays = _fast_arrays(steps, model) if suspect else None
        if arrays is None:  # cannot happen: the two checks agree (tests/test_parse.py fuzzes them)
            raise TraceFileError(name, "malformed trace (rows could not be read)")
    return (model, *arrays)


def _other_model_hint(first_step, model: ModelSpec) -> str:
    """When a file is read as one model but its keys are another's, say so."""
    other = infer_model_from_step(first_step) if type(first_step) is dict else None
    return f" (the file's layer keys are those of {other.key})" if other is not None and other is not model else ""


def _layout_ok(steps: list, model: ModelSpec) -> bool:
    """Cheap first check of the layout: every step has as many keys as the model, dense layers null.

    Together with _fast_arrays fetching every MoE key (a KeyError there also means "go and find
    the problem"), this proves each step has exactly the model's keys without comparing key sets.
    False sends the caller to validate.find_problem, which names the problem."""
    n, dense = model.num_layer_keys, model.dense_layer_keys
    try:
        lengths = set(map(len, steps))  # TypeError for a number or null step
        if lengths != {n} and not (model.dense_may_be_absent and lengths <= {n, n - len(dense)}):
            return False
        if not dense:
            return True
        if model.dense_may_be_absent:
            # a full-length step must hold the dense keys, a short one must lack them
            values = []
            for step in steps:
                if len(step) == n:
                    values.extend([step[key] for key in dense])
                elif any(key in step for key in dense):
                    return False
        elif len(dense) == 1:
            values = list(map(itemgetter(dense[0]), steps))
        else:
            values = list(chain.from_iterable(map(itemgetter(*dense), steps)))
    except (TypeError, KeyError, AttributeError):  # a list or string step, a missing dense key
        return False
    return values.count(None) == len(values)


def _fast_arrays(steps: list, model: ModelSpec) -> tuple[np.ndarray, np.ndarray] | None:
    """The arrays, or None if anything is off (the caller then finds and names the problem).

    Assumes _layout_ok passed; a missing MoE key is a KeyError here, hence None."""
    keys = model.moe_layer_keys
    L, k = len(keys), model.top_k
    layers_of = itemgetter(*keys)
    try:
        prefill_layers = layers_of(steps[0])
        counts = list(map(len, prefill_layers))       # TypeError on a null or a number
        p = counts[0]
        if p == 0 or counts.count(p) != L:
            return None
        decode_layers = list(chain.from_iterable(map(layers_of, steps[1:])))
        if decode_layers and set(map(len, decode_layers)) != {1}:
            return None
        rows = list(chain(chain.from_iterable(prefill_layers), chain.from_iterable(decode_layers)))
        if set(map(len, rows)) != {k}:                   # also a TypeError on a number row
            return None
        flat = _rows_to_ids(rows, model)
    except (TypeError, KeyError, ValueError, OverflowError, struct.error):
        return None
    if flat is None:
        return None
    d = len(steps) - 1
    # prefill rows were gathered layer after layer: [L, p, k] -> [p, L, k]
    prefill = np.ascontiguousarray(flat[:L * p * k].reshape(L, p, k).transpose(1, 0, 2))
    decode = flat[L * p * k:].reshape(d, L, k)
    return prefill, decode


def _rows_to_ids(rows: list, model: ModelSpec) -> np.ndarray | None:
    """[n, k] rows of ints -> flat array in the model's id dtype; None if any id is not a valid one."""
    n_experts = model.num_experts
    # Both conversions are C loops that reject a non-int (str, float, null, list) and an id
    # that does not fit (negative, too large); only bools slip through (parse_bytes sniffs them).
    if n_experts <= 256:
        ids = np.frombuffer(bytearray(chain.from_iterable(rows)), dtype=np.uint8)
    else:
        n = len(rows) * model.top_k
        ids = np.frombuffer(struct.pack(f"<{n}H", *chain.from_iterable(rows)), dtype="<u2")
    if ids.size and int(ids.max()) >= n_experts:
        return None
    k = model.top_k
    if k > 1 and ids.size:   # a row names k distinct experts: column j against columns 0..j-1
        columns = ids.reshape(-1, k).T.copy()
        for j in range(1, k):
            if (columns[j] == columns[:j]).any():
                return None
    return ids.astype(model.id_dtype, copy=False)
