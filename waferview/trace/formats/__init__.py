"""Serving-engine sources, one small module per format, behind one entry point (load_foreign).

  vllm             vLLM --enable-return-routed-experts responses, one JSON per line      -> TraceArrays
  sglang           SGLang return_routed_experts responses, one JSON per line             -> TraceArrays
  sglang-recorder  SGLang expert distribution recorder dumps (.pt via torch, or .npz)    -> RecordedPasses
  megatron         Megatron-Core router_trace_rank{r}.jsonl (a file or their folder)     -> RecordedPasses
  trtllm-stats     TensorRT-LLM meta_info.json + rank{r}.safetensors (their folder)      -> RecordedPasses (counts)

Per-request sources replay like the dataset's JSON (and are cached like it); batch-major and
count-only sources become recorded passes (waferview.trace.passes). The format is detected from the
file or folder, or forced with --format.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from waferview.errors import InputError
from waferview.files import open_regular_file
from waferview.models import ModelSpec

FORMATS = ("vllm", "sglang", "sglang-recorder", "megatron", "trtllm-stats")
_JSONL = (".jsonl", ".json", ".ndjson")


def _first_record(path: Path):
    try:
        with open_regular_file(path) as f:
            for line in f:
                if line.strip():
                    return orjson.loads(line)
    except (OSError, orjson.JSONDecodeError):
        return None
    return None


def detect(path: Path) -> str | None:
    """The serving-engine format of a file or folder, or None (then it is read as the dataset's)."""
    from waferview.trace.formats import megatron, sglang, sglang_recorder, trtllm_stats, vllm  # (passes imports us)

    if path.is_dir():
        try:
            names = os.listdir(path)
        except OSError:
            return None
        if any(megatron.RANK_FILE.match(n) for n in names):
            return "megatron"
        if trtllm_stats.is_stats_folder(path):
            return "trtllm-stats"
        if any(sglang_recorder.DUMP_FILE.match(n) for n in names):
            return "sglang-recorder"
        return None
    suffix = path.suffix.lower()
    if suffix == ".safetensors" or (path.name == "meta_info.json" and trtllm_stats.is_stats_folder(path.parent)):
        return "trtllm-stats"
    if suffix in (".pt", ".npz"):
        return "sglang-recorder"
    if suffix in _JSONL:
        record = _first_record(path)
        for name, module in (("megatron", megatron), ("sglang", sglang), ("vllm", vllm)):
            if module.looks_like(record):
                return name
    return None


def load_foreign(source: str | None, fmt: str | None, model: ModelSpec | None, strict: bool, use_cache: bool):
    """TraceArrays or RecordedPasses for a serving-engine source; None when SOURCE is not one (and no
    --format forces it), so the caller reads it as the dataset's JSON, a cache or hf:."""
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if source is None or not source.strip() or source.startswith("hf:"):
        if fmt is not None:
            raise InputError(f"--format {fmt} needs a SOURCE file or folder in that format")
        return None
    path = Path(source)
    if not (path.is_dir() or path.is_file()):   # missing, a FIFO, a device: load_source names it
        return None
    found = fmt or detect(path)
    from waferview.trace.formats import megatron, sglang, sglang_recorder, trtllm_stats, vllm

    if found is None:
        return None
    label = source
    if found in ("vllm", "sglang"):
        if path.is_dir():
            raise InputError(f"{source}: a {found} capture is one JSONL file (one response per line), not a folder")
        reader = vllm if found == "vllm" else sglang
        return reader.read(os.path.abspath(path), label, model, strict, use_cache)
    if found == "megatron":
        return megatron.read(path, label, model, strict)
    if found == "sglang-recorder":
        return sglang_recorder.read(path, label, model, strict)
    return trtllm_stats.read(path, label, model, strict)
