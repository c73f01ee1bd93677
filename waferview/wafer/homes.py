"""Where expert weights live (their home die) and how much HBM is left for predictor copies.

Home placement (the paper's expert-parallel layout), the same for every MoE layer: with E experts and N dies, die d
holds the contiguous block of ids [d*q, (d+1)*q) where q = floor(E/N); the E - q*N leftover ids
q*N + i go round-robin to die i mod N.

Capacity: usable HBM per die = hbm_gb * (1 - reserve). Home bytes of a die = experts homed there x
MoE layers x expert bytes (expert bytes = 3 x hidden x inter x bytes per parameter; 2 = BF16 by default).
The model fits when every die's home bytes <= usable. A die's copy capacity (in expert copies, any layer)
= (usable - home bytes) // expert bytes, floored at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from waferview.models import ModelSpec
from waferview.wafer.hardware import Hardware


def home_dies(num_experts: int, num_dies: int) -> np.ndarray:
    """home[e] = the die holding expert e's weights (every layer)."""
    q = num_experts // num_dies
    home = np.empty(num_experts, dtype=np.int64)
    home[: q * num_dies] = np.arange(q * num_dies) // max(q, 1) if q else 0
    left = num_experts - q * num_dies
    home[q * num_dies:] = np.arange(left) % num_dies
    return home


def expert_bytes(model: ModelSpec, bytes_per_param: float = 2.0) -> int:
    """Bytes of one expert's weights (gate, up, down) at `bytes_per_param` (rounded up to a whole byte)."""
    return int(math.ceil(model.expert_params * bytes_per_param))


@dataclass(frozen=True)
class Capacity:
    usable_bytes: int             # per die
    home_bytes: np.ndarray        # (D,) weights homed on each die, all layers
    copy_slots: np.ndarray        # (D,) expert copies each die can still hold
    fits_in_hbm: bool
    expert_bytes: int = 0         # bytes of one expert at the precision used
    bytes_per_param: float = 2.0

    def note(self, model: ModelSpec, hw: Hardware) -> str | None:
        if self.fits_in_hbm:
            return None
        worst = int(self.home_bytes.max())
        total = self.expert_bytes * model.num_experts * model.moe_layers
        return (f"{model.key} expert weights ({total / 1e12:.2f} TB at {self.bytes_per_param:g} bytes/param) do not "
                f"fit the usable HBM of {hw.shape} ({hw.num_dies} dies x {self.usable_bytes / 1e9:.0f} GB): the "
                f"fullest die needs {worst / 1e9:.1f} GB; simulated anyway, with no room for copies")


def capacity(model: ModelSpec, hw: Hardware, home: np.ndarray, bytes_per_param: float = 2.0) -> Capacity:
    eb = expert_bytes(model, bytes_per_param)
    usable = hw.usable_hbm_bytes
    per_die = np.bincount(home, minlength=hw.num_dies).astype(np.int64)
    home_bytes = per_die * model.moe_layers * eb
    free = usable - home_bytes
    slots = np.maximum(free // eb, 0).astype(np.int64)
    return Capacity(usable, home_bytes, slots, bool((home_bytes <= usable).all()), eb, float(bytes_per_param))
