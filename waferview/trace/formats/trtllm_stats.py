"""TensorRT-LLM expert statistics (PyTorch backend, `EXPERT_STATISTIC_ITER_RANGE=start-stop` and
`EXPERT_STATISTIC_PATH=DIR`): `meta_info.json` ({"num_experts", "num_experts_per_token"}) and one
`rank{r}.safetensors` per rank, tensors keyed "{iter}_{layer}" holding int64 bincounts [num_experts]
(tensorrt_llm/_torch/expert_statistic.py; the layer is the MoE module's layer_idx). Counts only, per
iteration (one executor forward pass, context and generation requests mixed) and MoE layer.

Ranks' counts of one iteration are summed, as TensorRT-LLM's examples/ep_load_balancer/utils.py does
(with attention DP each rank routes its own tokens); a rank whose counts equal another's is a replica
of the same tokens and is left out. Other files in the folder (cooccurrence_*, *_raw, ...) are ignored.

safetensors is read from its documented layout, with no dependency: 8 bytes little-endian header size
N, N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": ...}, then
the data, offsets relative to its start. Every field is checked before any bytes are used.
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import numpy as np

from waferview.files import open_regular_file
from waferview.errors import InputError
from waferview.models import ModelSpec
from waferview.trace.formats.common import BadRecord, layer_map, require_model
from waferview.trace.passes import PHASE_BY_TOKENS_NOTE, PassBuilder

NAME = "trtllm-stats"
RANK_FILE = re.compile(r"^rank(\d+)\.safetensors$")
KEY = re.compile(r"^(\d+)_(\d+)$")
_DTYPES = {"I64": "<i8", "I32": "<i4", "I16": "<i2", "U8": "u1", "I8": "i1", "U16": "<u2", "U32": "<u4",
           "U64": "<u8", "F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<u2", "BOOL": "u1"}
_MAX_HEADER = 100 << 20


def folder_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def is_stats_folder(path: Path) -> bool:
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return "meta_info.json" in names and any(RANK_FILE.match(n) for n in names)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as a numpy array (BadRecord naming what is wrong)."""
    try:
        with open_regular_file(path) as f:
            raw = f.read()
    except OSError as e:
        raise BadRecord(f"cannot read ({e.strerror or e})") from None
    if len(raw) < 8:
        raise BadRecord(f"{len(raw)} bytes: too short for a safetensors header (truncated?)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > _MAX_HEADER or 8 + n > len(raw):
        raise BadRecord(f"header of {n} bytes does not fit the {len(raw)}-byte file (truncated?)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRecord(f"unreadable safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise BadRecord("safetensors header is not a JSON object")
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = f"tensor '{name}'"
        if not isinstance(info, dict) or info.get("dtype") not in _DTYPES:
            raise BadRecord(f"{where}: unknown dtype {info.get('dtype') if isinstance(info, dict) else info!r}")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not isinstance(shape, list) or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in shape):
            raise BadRecord(f"{where}: bad shape {shape!r}")
        dt = np.dtype(_DTYPES[info["dtype"]])
        if (not isinstance(offsets, list) or len(offsets) != 2
                or any(not isinstance(o, int) or isinstance(o, bool) for o in offsets)):
            raise BadRecord(f"{where}: bad data_offsets {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end <= len(data):
            raise BadRecord(f"{where}: data_offsets {offsets} run past the {len(data)} data bytes (truncated?)")
        if end - begin != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise BadRecord(f"{where}: {end - begin} bytes for shape {shape} of {info['dtype']}")
        out[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(shape)
    return out


def read(path: Path, label: str, model: ModelSpec | None, strict: bool):
    model = require_model(model, label, "a TensorRT-LLM expert statistic folder")
    folder = folder_of(path)
    meta = _meta(folder / "meta_info.json", model)
    files = sorted((int(m.group(1)), folder / n) for n in os.listdir(folder) if (m := RANK_FILE.match(n)))
    if not files:
        raise InputError(f"{label}: no rank*.safetensors files beside meta_info.json")
    builder = PassBuilder(model, strict, count_only=True)
    per_rank, layers = [], set()
    for rank, file in files:
        try:
            tensors = read_safetensors(file)
        except BadRecord as e:
            builder.skip(file.name, "", str(e))
            continue
        by_iter: dict[int, dict[int, np.ndarray]] = {}
        for key, counts in tensors.items():
            m = KEY.match(key)
            where = f"tensor '{key}'"
            if not m:
                builder.skip(file.name, where, "key is not '<iteration>_<layer>'")
                continue
            if counts.dtype.kind not in "iu" or counts.shape != (meta,):
                builder.skip(file.name, where, f"{counts.dtype.name} {list(counts.shape)}, expected int64 "
                                               f"[{meta}] counts (one per expert)")
                continue
            it, layer = int(m.group(1)), int(m.group(2))
            by_iter.setdefault(it, {})[layer] = counts.astype(np.int64)
            layers.add(layer)
        per_rank.append((rank, file.name, by_iter))
    if not layers:
        raise InputError(f"{label}: no '<iteration>_<layer>' count tensors in the rank files "
                         f"({len(builder.skips.entries)} skipped)")
    index, numbering = layer_map(model, layers, label)
    for rank, name, by_iter in per_rank:
        for it in sorted(by_iter):
            got = by_iter[it]
            missing = sorted(set(index) - set(got))
            if missing:
                builder.skip(name, f"iteration {it}", f"no counts for layer(s) {', '.join(map(str, missing[:5]))} "
                                                      "(a pass routes every MoE layer)")
                continue
            counts = np.stack([got[l] for l in sorted(got, key=index.__getitem__)])
            builder.add_counts((it,), rank, counts, None, name, f"iteration {it}")
    notes = [PHASE_BY_TOKENS_NOTE, numbering, "counts of one iteration summed over rank files (TensorRT-LLM's "
             "examples/ep_load_balancer/utils.py does the same)"]
    return builder.build(label, notes)


def _meta(path: Path, model: ModelSpec) -> int:
    try:
        with open_regular_file(path) as f:
            meta = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing (TensorRT-LLM writes it beside the rank files)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected a JSON object with num_experts and num_experts_per_token")
    experts, k = meta.get("num_experts"), meta.get("num_experts_per_token")
    if experts != model.num_experts:
        raise InputError(f"{path}: num_experts {experts!r}, but {model.key} has {model.num_experts} experts (with "
                         "TensorRT-LLM's EP load balancer on, the statistics count expert slots, which cannot be "
                         "mapped back to experts)")
    if k != model.top_k:
        raise InputError(f"{path}: num_experts_per_token {k!r}, but {model.key} routes top-{model.top_k}")
    return experts
