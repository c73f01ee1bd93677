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


MODELS: dict[str, ModelSpec] = {
    m.key: m
    for m in (
        ModelSpec("qwen3", "Qwen/Qwen3-235B-A22B-FP8", 94, (), False, 8, 128, 4096, 1536),
        ModelSpec("deepseek", "cognitivecomputations/DeepSeek-R1-AWQ", 61, (0, 1, 2), False, 8, 256, 7168, 2048),
        ModelSpec("llama4", "meta-llama/Llama-4-Maverick-17B-128E-Instruct", 48, tuple(range(0, 48, 2)), False, 1, 128, 5120, 8192),
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


def get_model(name: str) -> ModelSpec:
    key = _ALIASES.get(name.strip().lower())
    if key is None:
        raise InputError(f"unknown model {name!r}: expected one of {', '.join(MODELS)} "
                         f"(or a dataset folder such as {MODELS['qwen3'].folder})")
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
