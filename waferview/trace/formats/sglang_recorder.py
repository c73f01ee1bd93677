"""SGLang's expert distribution recorder (`--expert-distribution-recorder-mode`, dumped by
`/dump_expert_distribution_record` into SGLANG_EXPERT_DISTRIBUTION_RECORDER_DIR), read from its torch
`.pt` dump (needs torch, imported here only) or from the `.npz` that `python -m waferview.convert
sglang-recorder FILE.pt OUT.npz` writes (numpy only).

The dump (sglang/srt/eplb/expert_distribution.py), by mode:
* per_token: `expert_distribution_recorder_{time}_{rank}.pt` = {"records": [...], "last_physical_to_logical_map":
  [layers, physical experts]}; each record is one forward pass of one rank: forward_pass_id, rank,
  input_ids, positions, extend_seq_lens (None for a decode pass), forward_mode, topk_ids_of_layer int32
  [num_hidden_layers, tokens, 8] (-1 = none: dense layers, ids past top-k, padded tokens). Ids are
  physical (after EPLB's logical-to-physical remap): the map turns them back. No request ids (`rids`
  is still commented out upstream): a converted dump keeps them when a newer SGLang records them.
* per_pass: the same records with global_physical_count [layers, physical experts] only: counts.
* stat: `expert_distribution_recorder_{time}.pt` from rank 0 = {"logical_count": [buffered passes,
  layers, experts], ...}, summed over ranks; a circular buffer, so unfilled (all-zero) rows are left
  out and the pass order may be rotated.

The .npz (format "sglang-recorder/1") holds the same data as plain arrays; `dump_arrays` makes it.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np

from waferview.files import open_regular_file
from waferview.errors import InputError
from waferview.models import ModelSpec
from waferview.trace.formats.common import BadRecord, moe_planes, require_model, route_rows
from waferview.trace.passes import PHASE_BY_TOKENS_NOTE, PassBuilder

NAME = "sglang-recorder"
FORMAT = "sglang-recorder/1"
DUMP_FILE = re.compile(r"^expert_distribution_recorder.*\.(pt|npz)$")
CONVERT_HINT = "python -m waferview.convert sglang-recorder {path} OUT.npz"


def dump_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path / n for n in os.listdir(path) if DUMP_FILE.match(n))
    return [path]


# ---- .pt -> arrays (torch objects in, numpy out; used by the reader and by waferview.convert) ----

def load_pt(path: Path, label: str):
    try:
        import torch
    except ImportError:
        raise InputError(f"{label}: reading a .pt recorder dump needs torch, which is not installed here; convert it "
                         f"where torch is: {CONVERT_HINT.format(path=path)}, then read OUT.npz") from None
    try:
        # weights_only: tensors, dicts, lists and numbers only; no code runs from the file
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a truncated or foreign file
        raise BadRecord(f"not a readable torch dump ({e.__class__.__name__}: {str(e).splitlines()[0][:120]})") from None


def _np(value, dtype=np.int64) -> np.ndarray:
    value = value.numpy() if hasattr(value, "numpy") else value
    return np.asarray(value).astype(dtype)


def dump_arrays(dump) -> dict[str, np.ndarray]:
    """The loaded dump (see the module docstring) as the .npz's arrays. BadRecord when it is none of the modes."""
    if not isinstance(dump, dict):
        raise BadRecord("expected a dict (an SGLang expert distribution recorder dump)")
    out = {"waferview_format": np.array(FORMAT)}
    if "logical_count" in dump:
        out["mode"] = np.array("stat")
        out["logical_count"] = _np(dump["logical_count"])
        return out
    records = dump.get("records")
    if not isinstance(records, list):
        raise BadRecord("no 'records' and no 'logical_count' (not an expert distribution recorder dump)")
    if dump.get("last_physical_to_logical_map") is not None:
        out["physical_to_logical"] = _np(dump["last_physical_to_logical_map"])
    meta = {f: np.array([int(r.get(f, 0)) for r in records], dtype=np.int64) for f in ("forward_pass_id", "rank")}
    out.update(meta)
    if records and all("topk_ids_of_layer" in r for r in records):
        out["mode"] = np.array("per_token")
        blocks = [_np(r["topk_ids_of_layer"], np.int32) for r in records]
        out["pass_tokens"] = np.array([b.shape[1] for b in blocks], dtype=np.int64)
        out["topk_ids"] = np.concatenate(blocks, axis=1)
        out["extend"] = np.array([bool(r.get("extend_seq_lens")) for r in records], dtype=bool)
        requests = _token_requests(records, out["pass_tokens"])
        if requests is not None:
            out["token_request"] = requests
    elif records and all("global_physical_count" in r for r in records):
        out["mode"] = np.array("per_pass")
        out["physical_count"] = np.stack([_np(r["global_physical_count"]) for r in records])
    else:
        raise BadRecord("records hold neither topk_ids_of_layer (per_token) nor global_physical_count (per_pass)")
    return out


def _token_requests(records, pass_tokens) -> np.ndarray | None:
    """Request index of every token when records carry `rids` (extend: extend_seq_lens tokens per rid,
    decode: one token per rid); None when any record lacks them or they do not add up."""
    index, parts = {}, []
    for r, n in zip(records, pass_tokens):
        rids = r.get("rids")
        if not isinstance(rids, list):
            return None
        lens = r.get("extend_seq_lens") or [1] * len(rids)
        if len(lens) != len(rids) or sum(lens) != n:
            return None
        parts.append(np.repeat([index.setdefault(str(x), len(index)) for x in rids], lens))
    return np.concatenate(parts).astype(np.int64) if parts else None


# ---- reading --------------------------------------------------------------------------------

def load_arrays(path: Path, label: str) -> dict[str, np.ndarray]:
    if path.suffix.lower() == ".pt":
        return dump_arrays(load_pt(path, label))
    try:
        with open_regular_file(path) as f, np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise BadRecord(f"not a readable .npz ({e.__class__.__name__}: {e}; truncated?)") from None
    if str(arrays.get("waferview_format", "")) != FORMAT:
        raise BadRecord(f"not a converted recorder dump (no waferview_format '{FORMAT}'; make one with "
                        f"{CONVERT_HINT.format(path='FILE.pt')})")
    return arrays


def read(path: Path, label: str, model: ModelSpec | None, strict: bool):
    model = require_model(model, label, "an SGLang recorder dump")
    files = dump_files(path)
    if not files:
        raise InputError(f"{label}: no expert_distribution_recorder*.pt or .npz files in this folder")
    loaded, modes = [], set()
    skipped_early = PassBuilder(model, strict)
    for file in files:
        name = file.name if path.is_dir() else label
        try:
            arrays = load_arrays(file, name)
        except BadRecord as e:
            skipped_early.skip(name, "", str(e))
            continue
        loaded.append((name, arrays))
        modes.add(str(arrays["mode"]))
    if len(modes) > 1:
        raise InputError(f"{label}: dumps of different recorder modes ({', '.join(sorted(modes))}); read one at a time")
    mode = modes.pop() if modes else "per_token"
    builder = PassBuilder(model, strict, count_only=mode != "per_token")
    builder.skips.entries.extend(skipped_early.skips.entries)
    notes = []
    for name, arrays in loaded:
        try:
            notes += {"per_token": _per_token, "per_pass": _per_pass, "stat": _stat}[mode](name, arrays, model, builder)
        except (BadRecord, KeyError, ValueError, IndexError) as e:
            reason = f"missing array {e}" if isinstance(e, KeyError) else str(e)
            builder.skip(name, "", f"malformed dump: {reason}")
    return builder.build(label, notes)


def _map(arrays, model: ModelSpec, planes: np.ndarray, physical: int):
    """[L, physical] -> logical id table for the MoE planes, or None (ids are logical already)."""
    table = arrays.get("physical_to_logical")
    if table is None:
        if physical > model.num_experts:
            raise BadRecord(f"{physical} physical experts and no physical-to-logical map to turn them into "
                            f"{model.num_experts} experts")
        return None
    if table.ndim != 2 or table.shape[0] <= int(planes.max()):
        raise BadRecord(f"physical-to-logical map of shape {list(table.shape)} does not cover the layers")
    table = table[planes].astype(np.int64)
    if ((table < 0) | (table >= model.num_experts)).any():
        raise BadRecord(f"physical-to-logical map names experts outside 0..{model.num_experts - 1}")
    return table


def _per_token(name, arrays, model: ModelSpec, builder: PassBuilder) -> list[str]:
    topk = arrays["topk_ids"]
    tokens = arrays["pass_tokens"].astype(np.int64)
    if topk.ndim != 3 or topk.shape[1] != int(tokens.sum()):
        raise BadRecord(f"topk_ids of shape {list(topk.shape)} do not hold the {int(tokens.sum())} tokens of its "
                        "passes")
    planes = moe_planes(model, topk.shape[0])
    if topk.shape[2] < model.top_k:
        raise BadRecord(f"{topk.shape[2]} ids kept per token, fewer than top-k = {model.top_k} (SGLang's recorder "
                        "keeps 8 per token)")
    table = _map(arrays, model, planes, int(arrays["physical_to_logical"].shape[1]) if "physical_to_logical" in arrays
                 else model.num_experts)
    requests = arrays.get("token_request")
    offsets = np.concatenate([[0], np.cumsum(tokens)])
    padded = 0
    for p in range(len(tokens)):
        fpid, rank = int(arrays["forward_pass_id"][p]), int(arrays["rank"][p])
        where = f"record {p} (forward pass {fpid}, rank {rank})"
        rows = topk[planes, offsets[p]:offsets[p + 1], :model.top_k].transpose(1, 0, 2).astype(np.int64)
        keep = ~(rows == -1).all(axis=(1, 2))      # a padded token routes nowhere
        padded += int((~keep).sum())
        rows = rows[keep]
        try:
            if table is not None:
                phys = rows
                if ((phys < -1) | (phys >= table.shape[1])).any():
                    raise BadRecord(f"physical expert id outside 0..{table.shape[1] - 1}")
                lookup = table[np.arange(len(planes))[None, :, None], np.maximum(phys, 0)]
                rows = np.where(phys < 0, -1, lookup)
            ids = route_rows(rows, model, "topk_ids_of_layer", planes=np.arange(len(planes)),
                             row_names=lambda r: f"token {int(np.flatnonzero(keep)[r])}")
        except BadRecord as e:
            builder.skip(name, where, str(e))
            continue
        req = None if requests is None else requests[offsets[p]:offsets[p + 1]][keep]
        builder.add_ids((fpid,), rank, ids, prefill=bool(arrays["extend"][p]), request_ids=req)
    notes = ["phase from extend_seq_lens: a pass with extend (prefill) sequences counts as prefill, a pure decode "
             "pass as decode"]
    if table is None:
        notes.append("no physical-to-logical map in the dump: ids taken as logical expert ids")
    else:
        notes.append("physical ids mapped back with the dump's last_physical_to_logical_map (EPLB rebalancing "
                     "during the recording would make earlier passes' mapping differ)")
    if padded:
        notes.append(f"{padded} padded token(s) (-1 in every MoE layer) left out")
    return notes


def _logical(counts: np.ndarray, table) -> np.ndarray:
    """[L, physical] counts -> [L, E] logical counts (scatter-add through the map)."""
    if table is None:
        return counts
    out = np.zeros((counts.shape[0], int(table.max()) + 1), dtype=np.int64)
    for l in range(counts.shape[0]):
        out[l] = np.bincount(table[l], weights=counts[l], minlength=out.shape[1]).astype(np.int64)
    return out


def _per_pass(name, arrays, model: ModelSpec, builder: PassBuilder) -> list[str]:
    counts = arrays["physical_count"]
    if counts.ndim != 3:
        raise BadRecord(f"physical_count of shape {list(counts.shape)}, expected [passes, layers, physical experts]")
    planes = moe_planes(model, counts.shape[1])
    table = _map(arrays, model, planes, counts.shape[2])
    for p in range(len(counts)):
        fpid, rank = int(arrays["forward_pass_id"][p]), int(arrays["rank"][p])
        c = _padded(_logical(counts[p][planes].astype(np.int64), table), model.num_experts)
        builder.add_counts((fpid,), rank, c, None, name, f"record {p} (forward pass {fpid}, rank {rank})")
    return [PHASE_BY_TOKENS_NOTE]


def _stat(name, arrays, model: ModelSpec, builder: PassBuilder) -> list[str]:
    counts = arrays["logical_count"]
    if counts.ndim != 3 or counts.shape[2] != model.num_experts:
        raise BadRecord(f"logical_count of shape {list(counts.shape)}, expected [passes, layers, {model.num_experts}]")
    planes = moe_planes(model, counts.shape[1])
    unfilled = 0
    for p in range(len(counts)):
        c = counts[p][planes].astype(np.int64)
        if not c.any():
            unfilled += 1
            continue
        builder.add_counts((p,), 0, c, None, name, f"buffered pass {p}")
    notes = [PHASE_BY_TOKENS_NOTE, "stat mode: counts summed over all ranks by SGLang (with tensor parallelism each "
             "token is counted once per rank); the buffer is circular, so the pass order may be rotated"]
    if unfilled:
        notes.append(f"{unfilled} unfilled (all-zero) buffer row(s) left out")
    return notes


def _padded(counts: np.ndarray, experts: int) -> np.ndarray:
    if counts.shape[1] == experts:
        return counts
    if counts.shape[1] > experts:
        raise BadRecord(f"counts for {counts.shape[1]} experts, the model has {experts}")
    return np.pad(counts, ((0, 0), (0, experts - counts.shape[1])))
