"""The modelled wafer: one description of the hardware, presets as JSON files users can copy and edit.

`load_hardware("5x5" | "8x3" | "WxH" | "path/to/file.json")`:
  - "5x5" and "8x3" are the presets in waferview/wafer/presets/ (DESIGN.md section 3);
  - any other "WxH" is the 5x5 preset's per-die figures on a W x H mesh;
  - a path is a JSON file with the preset's fields (missing fields take the 5x5 preset's values).

Units: bandwidths in bytes per ns (1 TB/s = 1000 bytes/ns), latencies in ns, HBM in GB (1e9 bytes).
The 64 MB last-level cache is recorded but not modelled: it holds less than two expert matrices
(37.7-251.7 MB each), so a weight read can almost never hit it, and activations are not modelled.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from waferview.errors import InputError

PRESET_DIR = Path(__file__).with_name("presets")
PRESETS = ("5x5", "8x3")
_SHAPE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
MAX_DIES = 4096


@dataclass(frozen=True)
class Hardware:
    name: str
    width: int
    height: int
    die_tflops: float = 1000.0           # FP16 peak per die
    hbm_gb: float = 80.0                 # per die, 1 GB = 1e9 bytes
    hbm_bytes_per_ns: float = 3350.0     # 3.35 TB/s per die
    hbm_latency_ns: float = 300.0        # paid once per layer by every die that did anything
    hbm_reserved_fraction: float = 0.1   # kept free (runtime, activations): not usable for weights
    llc_mb: float = 64.0                 # recorded, not modelled (see module docstring)
    link_bytes_per_ns: float = 1741.0    # per direction, per neighbour
    hop_latency_ns: float = 200.0
    request_header_bytes: int = 16       # travels reader -> holder for every remote read
    link_efficiency: float = 0.9
    hbm_efficiency: dict = field(default_factory=lambda: {"default": 0.9, "llama4": 0.85})
    # model -> [[max_batch or None, efficiency], ...] in increasing max_batch; None = above all
    compute_efficiency: dict = field(default_factory=lambda: {"default": [[None, 0.7]]})
    description: str = ""

    @property
    def num_dies(self) -> int:
        return self.width * self.height

    @property
    def shape(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def usable_hbm_bytes(self) -> int:
        """HBM per die that may hold weights and copies: total minus the reserve."""
        return int(round(self.hbm_gb * 1e9 * (1.0 - self.hbm_reserved_fraction)))

    def hbm_eff(self, model_key: str) -> float:
        return float(self.hbm_efficiency.get(model_key, self.hbm_efficiency.get("default", 0.9)))

    def compute_eff(self, model_key: str, batch: int) -> float:
        """Compute efficiency for a model at a batch (requests): the first row whose bound >= batch."""
        table = self.compute_efficiency.get(model_key, self.compute_efficiency.get("default", [[None, 0.7]]))
        for bound, eff in table:
            if bound is None or batch <= bound:
                return float(eff)
        return float(table[-1][1])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _check(hw: Hardware, origin: str) -> Hardware:
    def bad(what):
        raise InputError(f"{origin}: {what}")

    if hw.width < 1 or hw.height < 1:
        bad(f"mesh {hw.width}x{hw.height}: width and height must be at least 1")
    if hw.num_dies > MAX_DIES:
        bad(f"mesh {hw.width}x{hw.height} has {hw.num_dies} dies: at most {MAX_DIES} are supported")
    positive = ("die_tflops", "hbm_gb", "hbm_bytes_per_ns", "link_bytes_per_ns", "link_efficiency")
    for name in positive:
        v = getattr(hw, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            bad(f"{name} must be a positive number, got {v!r}")
    for name in ("hbm_latency_ns", "hop_latency_ns", "request_header_bytes", "llc_mb"):
        v = getattr(hw, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            bad(f"{name} must be a number >= 0, got {v!r}")
    if not (0 <= hw.hbm_reserved_fraction < 1):
        bad(f"hbm_reserved_fraction must be in [0, 1), got {hw.hbm_reserved_fraction!r}")
    if hw.link_efficiency > 1:
        bad(f"link_efficiency must be at most 1, got {hw.link_efficiency!r}")
    if not isinstance(hw.hbm_efficiency, dict) or not hw.hbm_efficiency:
        bad("hbm_efficiency must be an object like {\"default\": 0.9, \"llama4\": 0.85}")
    for k, v in hw.hbm_efficiency.items():
        if not (isinstance(v, (int, float)) and 0 < v <= 1):
            bad(f"hbm_efficiency[{k!r}] must be in (0, 1], got {v!r}")
    if not isinstance(hw.compute_efficiency, dict) or not hw.compute_efficiency:
        bad("compute_efficiency must be an object: model -> [[max_batch or null, efficiency], ...]")
    for k, table in hw.compute_efficiency.items():
        ok = isinstance(table, list) and table and all(isinstance(row, (list, tuple)) and len(row) == 2 for row in table)
        if not ok:
            bad(f"compute_efficiency[{k!r}] must be a list of [max_batch or null, efficiency] pairs")
        for bound, eff in table:
            if not (isinstance(eff, (int, float)) and 0 < eff <= 1):
                bad(f"compute_efficiency[{k!r}]: efficiency must be in (0, 1], got {eff!r}")
            if bound is not None and not (isinstance(bound, int) and bound > 0):
                bad(f"compute_efficiency[{k!r}]: max_batch must be a positive integer or null, got {bound!r}")
    return hw


def _from_dict(data: dict, origin: str) -> Hardware:
    known = set(Hardware.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{origin}: unknown field(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}")
    base = json.loads((PRESET_DIR / "5x5.json").read_text())
    base.update(data)
    for name in ("width", "height", "request_header_bytes"):
        if not isinstance(base[name], int) or isinstance(base[name], bool):
            raise InputError(f"{origin}: {name} must be an integer, got {base[name]!r}")
    for name, f in Hardware.__dataclass_fields__.items():
        if f.type == "float" and isinstance(base.get(name), bool):
            raise InputError(f"{origin}: {name} must be a number, got {base[name]!r}")
    return _check(Hardware(**base), origin)


def load_hardware(spec: str | None) -> Hardware:
    """A preset name, "WxH", or a JSON file path -> a validated Hardware (InputError otherwise)."""
    spec = "5x5" if spec is None else str(spec)
    if spec in PRESETS:
        return _from_dict(json.loads((PRESET_DIR / f"{spec}.json").read_text()), f"--mesh {spec}")
    m = _SHAPE.match(spec)
    if m:
        w, h = int(m.group(1)), int(m.group(2))
        if w < 1 or h < 1:
            raise InputError(f"--mesh {spec}: width and height must be at least 1 (e.g. 5x5, 8x3)")
        return _from_dict({"name": f"{w}x{h}", "width": w, "height": h,
                           "description": f"{w} x {h} mesh with the 5x5 preset's per-die figures"}, f"--mesh {spec}")
    path = Path(spec)
    if not path.suffix.lower() == ".json" and not path.exists():
        raise InputError(f"--mesh {spec!r}: expected 5x5, 8x3, WxH (e.g. 4x4) or a hardware .json file")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{spec}: hardware file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{spec}: not a readable JSON hardware file ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{spec}: a hardware file is one JSON object with the preset's fields")
    data.setdefault("name", path.stem)
    return _from_dict(data, spec)
