"""The four MoE models of the dataset: layer layout, routing width and expert sizes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from waferview.errors import InputError

BYTES_PER_PARAM = 2  # expert weights are modelled as BF16


@dataclass(frozen=True)
class ModelSpec:
    key: str                      # short name used on the command line
    folder: str                   # "<org>/<model>" folder in the Hub dataset
    num_layer_keys: int           # layer keys "0".."num_layer_keys-1"
    dense_layers: tuple[int, ...] # keys whose value is null
    dense_may_be_absent: bool     # the dense key may be missing from a step
    top_k: int
    num_experts: int
    hidden: int
    expert_inter: int

    @property
    def moe_layer_ids(self) -> tuple[int, ...]:
        dense = set(self.dense_layers)
        return tuple(i for i in range(self.num_layer_keys) if i not in dense)

    @cached_property
    def moe_layer_keys(self) -> tuple[str, ...]:
        """The MoE layers' keys as they appear in a trace step ("0", "1", ...), in layer order.
        (Cached: the parser asks for them once per step.)"""
        return tuple(str(i) for i in self.moe_layer_ids)

    @cached_property
    def moe_layer_key_set(self) -> frozenset[str]:
        return frozenset(self.moe_layer_keys)

    @cached_property
    def dense_layer_keys(self) -> tuple[str, ...]:
        return tuple(str(i) for i in self.dense_layers)

    @cached_property
    def layer_keys(self) -> frozenset[str]:
        """Every key a step of this model carries (dense ones included)."""
        return frozenset(str(i) for i in range(self.num_layer_keys))

    @property
    def moe_layers(self) -> int:
        return len(self.moe_layer_ids)

    @property
    def expert_params(self) -> int:
        # gate, up and down projections
        return 3 * self.hidden * self.expert_inter

    @property
    def expert_bytes(self) -> int:
        return self.expert_params * BYTES_PER_PARAM

    @property
    def flops_per_token(self) -> int:
        # one multiply-add per weight, per token
        return 2 * self.expert_params

    @property
    def total_expert_bytes(self) -> int:
        return self.expert_bytes * self.num_experts * self.moe_layers

    @property
    def id_dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.num_experts <= 256 else np.dtype(np.uint16)

    @property
    def org(self) -> str:
        return self.folder.split("/")[0]

    @property
    def name(self) -> str:
        return self.folder.split("/")[1]

    @property
    def builtin(self) -> bool:
        """One of the four models of the dataset (MODELS), as opposed to one from a description file."""
        return MODELS.get(self.key) == self

    def to_dict(self) -> dict:
        """The description as plain JSON values (model_from_dict reads it back)."""
        return {"key": self.key, "folder": self.folder, "num_layer_keys": self.num_layer_keys,
                "dense_layers": list(self.dense_layers), "dense_may_be_absent": self.dense_may_be_absent,
                "top_k": self.top_k, "num_experts": self.num_experts, "hidden": self.hidden,
                "expert_inter": self.expert_inter}


MODELS: dict[str, ModelSpec] = {
    m.key: m
    for m in (
        ModelSpec("qwen3", "Qwen/Qwen3-235B-A22B-FP8", 94, (), False, 8, 128, 4096, 1536),
        ModelSpec("deepseek", "cognitivecomputations/DeepSeek-R1-AWQ", 61, (0, 1, 2), False, 8, 256, 7168, 2048),
        ModelSpec("llama4", "meta-llama/Llama-4-Maverick-17B-128E-Instruct", 48, tuple(range(0, 48, 2)), False, 1, 128,
                  5120, 8192),
        ModelSpec("kimi", "moonshotai/Kimi-K2-Thinking", 61, (0,), True, 8, 384, 7168, 2048),
    )
}

# Names a user or a path may use for a model, lower case, mapped to the key.
_ALIASES = {
    "qwen3": "qwen3", "qwen": "qwen3",
    "deepseek": "deepseek", "deepseek-r1": "deepseek",
    "llama4": "llama4", "llama": "llama4", "llama-4": "llama4",
    "kimi": "kimi", "kimi-k2": "kimi",
}
for _m in MODELS.values():
    _ALIASES[_m.name.lower()] = _m.key
    _ALIASES[_m.folder.lower()] = _m.key


MAX_EXPERTS = 65536       # ids are stored as uint16 at most
MAX_LAYER_KEYS = 4096
MAX_TOP_K = 256
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIELDS = ("key", "folder", "num_layer_keys", "dense_layers", "moe_layer_ids", "dense_may_be_absent", "top_k",
           "num_experts", "hidden", "expert_inter")


def model_from_dict(data, origin: str) -> ModelSpec:
    """A validated ModelSpec from a description (a model description file, a cache header). `origin` names
    where it came from in the one-line InputError. Fields: key, num_layer_keys (or layers), dense_layers
    (layer numbers that are not MoE, default none) or, instead, moe_layer_ids (the layer numbers that are
    MoE; the rest are dense), top_k, num_experts, hidden, expert_inter; optional folder ("<org>/<name>",
    default "custom/<key>") and dense_may_be_absent (default false). Layer numbers count every decoder
    layer from 0, dense ones included, as the model's config numbers them."""
    if not isinstance(data, dict):
        raise InputError(f"{origin}: a model description is one JSON object with the fields {', '.join(_FIELDS)}")
    data = dict(data)
    if "layers" in data and "num_layer_keys" not in data:
        data["num_layer_keys"] = data.pop("layers")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise InputError(f"{origin}: unknown model field(s) {', '.join(map(str, unknown))}; expected some of "
                         f"{', '.join(_FIELDS)}")
    key = data.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise InputError(f"{origin}: key must be a short name of letters, digits, '.', '_' or '-', got {key!r}")

    def whole(name, lo, hi):
        v = data.get(name)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise InputError(f"{origin}: {name} must be an integer from {lo} to {hi}, got {v!r}")
        return v

    layers = whole("num_layer_keys", 1, MAX_LAYER_KEYS)
    experts = whole("num_experts", 1, MAX_EXPERTS)
    top_k = whole("top_k", 1, min(MAX_TOP_K, experts))
    hidden = whole("hidden", 1, 1 << 20)
    inter = whole("expert_inter", 1, 1 << 20)
    def layer_list(name):
        v = data.get(name, [])
        if not isinstance(v, (list, tuple)) or any(isinstance(d, bool) or not isinstance(d, int) for d in v):
            raise InputError(f"{origin}: {name} must be a list of layer numbers, got {v!r}")
        if any(not 0 <= d < layers for d in v) or len(set(v)) != len(v):
            raise InputError(f"{origin}: {name} must be distinct layer numbers in 0..{layers - 1}")
        return list(v)

    dense = layer_list("dense_layers")
    if "moe_layer_ids" in data:
        moe = set(layer_list("moe_layer_ids"))
        from_moe = [i for i in range(layers) if i not in moe]
        if "dense_layers" in data and sorted(dense) != from_moe:
            raise InputError(f"{origin}: dense_layers and moe_layer_ids disagree (give one of them)")
        dense = from_moe
    if len(dense) >= layers:
        raise InputError(f"{origin}: every layer is dense; a MoE model needs at least one MoE layer")
    absent = data.get("dense_may_be_absent", False)
    if not isinstance(absent, bool):
        raise InputError(f"{origin}: dense_may_be_absent must be true or false, got {absent!r}")
    folder = data.get("folder", f"custom/{key}")
    if not isinstance(folder, str) or folder.count("/") != 1 or not all(folder.split("/")):
        raise InputError(f"{origin}: folder must look like '<org>/<model>', got {folder!r}")
    spec = ModelSpec(key, folder, layers, tuple(sorted(dense)), absent, top_k, experts, hidden, inter)
    builtin = MODELS.get(key)
    if builtin is not None and builtin != spec:
        raise InputError(f"{origin}: key {key!r} is a built-in model with other dimensions; give the description "
                         "another key")
    return builtin or spec


def load_model_file(path) -> ModelSpec:
    """A model description file (JSON, see model_from_dict)."""
    import json
    import os

    try:
        if not os.path.isfile(path):
            raise InputError(f"{path}: model description file not found (or not a regular file)")
        if os.path.getsize(path) > 1 << 20:
            raise InputError(f"{path}: a model description file is a small JSON object (this one is over 1 MiB)")
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: not a readable JSON model description ({e})") from None
    return model_from_dict(data, str(path))


def get_model(name: str) -> ModelSpec:
    key = _ALIASES.get(name.strip().lower())
    if key is None and name.strip().lower().endswith(".json"):
        return load_model_file(name.strip())
    if key is None:
        raise InputError(f"unknown model {name!r}: expected one of {', '.join(MODELS)} "
                         f"(or a dataset folder such as {MODELS['qwen3'].folder}, or a model description .json file)")
    return MODELS[key]


def infer_model_from_path(path: str) -> ModelSpec | None:
    """The model whose dataset folder name appears in `path`, if exactly one does."""
    low = path.replace("\\", "/").lower()
    found = {m.key for m in MODELS.values() if m.name.lower() in low}
    if len(found) != 1:
        # fall back on short names as whole path words, e.g. ".../qwen3/..." or "qwen3.wvtrace"
        words = set(re.split(r"[/._ ]+", low))
        found = {_ALIASES[w] for w in words if w in _ALIASES}
    return MODELS[found.pop()] if len(found) == 1 else None


def infer_model_from_step(step: dict) -> ModelSpec | None:
    """Guess the model from one step's layer keys and null pattern (used when the path says nothing)."""
    if not isinstance(step, dict):
        return None
    keys = step.keys()
    nulls = {k for k, v in step.items() if v is None}
    for m in MODELS.values():
        dense = set(m.dense_layer_keys)
        if keys == m.layer_keys and nulls == dense:
            return m
        if m.dense_may_be_absent and keys == m.layer_keys - dense and not nulls:
            return m
    return None
