"""Small files in the exact formats serving engines write, for the format readers' tests.

Each writer follows the upstream writer it is named after (see waferview/trace/formats/*): vLLM and
SGLang responses as their HTTP servers serialize them, Megatron-Core's RouterTracer records,
TensorRT-LLM's ExpertStatistic files (safetensors written from its documented layout here, and by the
`safetensors` package where it is installed), SGLang's expert distribution recorder dump as the dict
it hands to torch.save.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from pathlib import Path

import numpy as np

from waferview.models import ModelSpec, model_from_dict

TINY = {"key": "tiny-moe", "num_layer_keys": 4, "dense_layers": [0], "top_k": 2, "num_experts": 8,
        "hidden": 64, "expert_inter": 32}


def tiny_model(tmp_path: Path) -> tuple[ModelSpec, Path]:
    path = tmp_path / "tiny-moe.json"
    path.write_text(json.dumps(TINY), encoding="utf-8")
    return model_from_dict(TINY, "test"), path


def routing(model: ModelSpec, rows: int, seed: int) -> np.ndarray:
    """[rows, L, k] distinct experts per row, deterministic."""
    rng = np.random.default_rng(seed)
    out = np.empty((rows, model.moe_layers, model.top_k), dtype=np.int64)
    for r in range(rows):
        for l in range(model.moe_layers):
            out[r, l] = rng.choice(model.num_experts, model.top_k, replace=False)
    return out


def all_layers(model: ModelSpec, moe_rows: np.ndarray, fill: int = 0) -> np.ndarray:
    """[R, L, k] MoE rows -> [R, num_layer_keys, k], dense planes = fill (engines leave them 0 or -1)."""
    out = np.full((len(moe_rows), model.num_layer_keys, model.top_k), fill, dtype=np.int64)
    out[:, list(model.moe_layer_ids), :] = moe_rows
    return out


def write_jsonl(path: Path, records, trailing_newline: bool = True) -> Path:
    text = "\n".join(json.dumps(r) for r in records) + ("\n" if trailing_newline else "")
    path.write_text(text, encoding="utf-8")
    return path


def dataset_steps(model: ModelSpec, prefill: np.ndarray, decode: np.ndarray) -> list[dict]:
    """The same routing as a dataset trace file (step 0 = prefill rows, then one row per step)."""
    keys = model.moe_layer_keys
    steps = []
    for rows in [prefill] + [decode[i:i + 1] for i in range(len(decode))]:
        step = {k: None for k in model.dense_layer_keys}
        for l, key in enumerate(keys):
            step[key] = rows[:, l, :].tolist()
        steps.append(dict(sorted(step.items(), key=lambda kv: int(kv[0]))))
    return steps


# ---- vLLM ------------------------------------------------------------------------------------

def vllm_old(rid: str, prompt, gens, model_name=None) -> dict:
    """vLLM 0.21-0.2x: prompt_routed_experts at response level, routed_experts per choice (nested lists)."""
    rec = {"id": rid, "object": "text_completion",
           "choices": [{"index": i, "text": "", "routed_experts": None if g is None else np.asarray(g).tolist(),
                        "finish_reason": "length"} for i, g in enumerate(gens)],
           "usage": {"prompt_tokens": 0 if prompt is None else len(prompt),
                     "completion_tokens": sum(0 if g is None else len(g) for g in gens)},
           "prompt_routed_experts": None if prompt is None else np.asarray(prompt).tolist()}
    if model_name:
        rec["model"] = model_name
    return rec


def npy_b64(array: np.ndarray) -> str:
    with io.BytesIO() as buffer:
        np.save(buffer, array, allow_pickle=False)     # vllm.utils.serial_utils.numpy2base64
        return base64.b64encode(buffer.getvalue()).decode("ascii")


def vllm_new(rid: str, rows: np.ndarray, prompt_tokens: int, completion_tokens: int) -> dict:
    """vLLM >= 0.30: choices[0].routed_experts = base64 .npy of [prompt + generated - 1, layers, k]."""
    return {"id": rid, "object": "text_completion",
            "choices": [{"index": 0, "text": "", "routed_experts": npy_b64(rows), "finish_reason": "length"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


# ---- SGLang ----------------------------------------------------------------------------------

def b64_ids(array: np.ndarray, dtype="int32") -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("utf-8")


def sglang_legacy(rid: str, rows: np.ndarray, prompt_tokens: int, completion_tokens: int, dtype=None) -> dict:
    """/generate response with meta_info.routed_experts (rows over every decoder layer)."""
    meta = {"id": rid, "finish_reason": {"type": "length", "length": completion_tokens},
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "cached_tokens": 0,
            "routed_experts": b64_ids(rows, dtype or "int32")}
    if dtype:
        meta["routed_experts_dtype"] = dtype
    return {"text": "", "output_ids": list(range(completion_tokens)), "meta_info": meta}


def sglang_partitioned(rid: str, model: ModelSpec, rows: np.ndarray, prompt_tokens: int,
                       completion_tokens: int, with_input: bool = True) -> dict:
    """/generate response with input_expert_ids / output_expert_ids and expert_ids_schema."""
    boundary = prompt_tokens - 1
    schema = {"num_layers": model.num_layer_keys, "top_k": model.top_k, "moe_layer_ids": list(model.moe_layer_ids),
              "dtype": "int32", "layout": "row_major", "id_space": "logical_global",
              "input_num_rows": boundary if with_input else None, "input_start_position": 0 if with_input else None,
              "output_num_rows": len(rows) - boundary, "output_start_position": boundary}
    meta = {"id": rid, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "expert_ids_schema": schema, "output_expert_ids": b64_ids(rows[boundary:])}
    if with_input:
        meta["input_expert_ids"] = b64_ids(rows[:boundary])
    return {"text": "", "meta_info": meta}


# ---- Megatron-Core ---------------------------------------------------------------------------

def megatron_records(model: ModelSpec, rank: int, passes, one_based: bool = False, mtp: bool = False) -> list[dict]:
    """RouterTracer records: for each (step, ids [t, L, k]) one record per MoE layer, in layer order."""
    out = []
    for step, ids in passes:
        for l, layer in enumerate(model.moe_layer_ids):
            out.append({"step": step, "stage": "pre_dispatch", "block": "decoder", "layer": layer + one_based,
                        "rank": rank, "num_tokens": len(ids), "topk": model.top_k,
                        "top_indices": ids[:, l, :].tolist()})
        if mtp:
            out.append({"step": step, "stage": "pre_dispatch", "block": "mtp", "layer": 0, "rank": rank,
                        "num_tokens": len(ids), "topk": model.top_k, "top_indices": ids[:, 0, :].tolist(),
                        "mtp_idx": 0})
    return out


# ---- TensorRT-LLM ----------------------------------------------------------------------------

def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata=None) -> Path:
    """The documented layout: u64 LE header size, JSON header, then the data."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype="<i8")
        header[name] = {"dtype": "I64", "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        blobs.append(arr.tobytes())
        offset += arr.nbytes
    if metadata:
        header["__metadata__"] = metadata
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))
    return path


def trtllm_folder(folder: Path, model: ModelSpec, per_rank: list[dict[int, np.ndarray]], writer=None) -> Path:
    """meta_info.json + rank{r}.safetensors with tensors '{iter}_{layer}' = int64 counts [E]."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta_info.json").write_text(json.dumps({"num_experts": model.num_experts,
                                                       "num_experts_per_token": model.top_k}))
    for rank, iters in enumerate(per_rank):
        tensors = {f"{it}_{layer}": counts[l] for it, counts in iters.items()
                   for l, layer in enumerate(model.moe_layer_ids)}
        (writer or write_safetensors)(folder / f"rank{rank}.safetensors", tensors)
    return folder


# ---- SGLang expert distribution recorder ---------------------------------------------------------

def recorder_dump(model: ModelSpec, passes, physical_to_logical=None, rank: int = 0, width: int = 8) -> dict:
    """The dict _DetailAccumulator.dump hands to torch.save (per_token mode), numpy for tensors:
    passes = [(forward_pass_id, ids [t, L, k] logical, is_extend)]; ids stored physical when a map is given."""
    records = []
    for fpid, ids, extend in passes:
        t = len(ids)
        topk = np.full((model.num_layer_keys, t, width), -1, dtype=np.int32)
        rows = ids if physical_to_logical is None else _to_physical(ids, model, physical_to_logical)
        topk[list(model.moe_layer_ids), :, :model.top_k] = rows.transpose(1, 0, 2)
        records.append({"forward_pass_id": fpid, "rank": rank, "gatherer_key": "primary",
                        "input_ids": list(range(t)), "positions": list(range(t)),
                        "extend_seq_lens": [t] if extend else None, "forward_mode": 1 if extend else 2,
                        "topk_ids_of_layer": topk, "misc_objects": [],
                        "global_physical_count": np.zeros((model.num_layer_keys, model.num_experts), np.int32)})
    dump = {"records": records}
    if physical_to_logical is not None:
        dump["last_physical_to_logical_map"] = physical_to_logical
    return dump


def _to_physical(ids: np.ndarray, model: ModelSpec, table: np.ndarray) -> np.ndarray:
    """Pick, for every logical id, the first physical slot that maps to it (table: [all layers, physical])."""
    out = np.empty_like(ids)
    for l, layer in enumerate(model.moe_layer_ids):
        first = {int(logical): phys for phys, logical in reversed(list(enumerate(table[layer])))}
        out[:, l, :] = np.vectorize(first.__getitem__)(ids[:, l, :])
    return out
