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
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from waferview.errors import InputError
from waferview.files import os_reason, read_capped

PRESET_DIR = Path(__file__).with_name("presets")
PRESETS = ("5x5", "8x3")
_SHAPE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$", re.ASCII)
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


# Every number of a hardware file, with the range it must lie in: (low, high, low is allowed). Bounds
# keep every rate, time and byte count downstream finite and exact in 64 bits (no NaN or inf in a table,
# no integer overflow in a kernel), and far outside anything a real wafer has.
NUMBER_RANGES = {
    "die_tflops": (1e-3, 1e6, True),             # 1 GFLOPS .. 1 EFLOPS per die
    "hbm_gb": (1e-3, 1e6, True),                 # 1 MB .. 1 PB per die
    "hbm_bytes_per_ns": (1e-3, 1e7, True),       # 1 MB/s .. 10 PB/s
    "hbm_latency_ns": (0.0, 1e9, True),          # up to 1 s
    "hbm_reserved_fraction": (0.0, 1.0, True),   # [0, 1): checked apart (1 is excluded)
    "llc_mb": (0.0, 1e9, True),
    "link_bytes_per_ns": (1e-3, 1e7, True),
    "hop_latency_ns": (0.0, 1e9, True),
    "link_efficiency": (1e-3, 1.0, True),
}
MAX_HEADER_BYTES = 1 << 20       # request_header_bytes: 0 .. 1 MiB
MAX_SIDE = MAX_DIES              # width, height
MAX_FILE_BYTES = 1 << 20         # a hardware file is a small JSON object
_EFFICIENCY = (1e-3, 1.0)
_TEXT = 4096                     # characters of name / description


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _in_range(v, lo: float, hi: float) -> bool:
    return _is_number(v) and math.isfinite(v) and lo <= v <= hi


def _check(hw: Hardware, origin: str) -> Hardware:
    def bad(what):
        raise InputError(f"{origin}: {what}")

    if hw.width < 1 or hw.height < 1:
        bad(f"mesh {hw.width}x{hw.height}: width and height must be at least 1")
    if hw.num_dies > MAX_DIES:
        bad(f"mesh {hw.width}x{hw.height} has {hw.num_dies} dies: at most {MAX_DIES} are supported")
    for name, (lo, hi, _) in NUMBER_RANGES.items():
        v = getattr(hw, name)
        if name == "hbm_reserved_fraction":
            if not (_in_range(v, 0.0, 1.0) and v < 1):
                bad(f"hbm_reserved_fraction must be in [0, 1), got {v!r}")
        elif not _in_range(v, lo, hi):
            if lo > 0 and (not _is_number(v) or not v > 0):
                bad(f"{name} must be a positive number, got {v!r}")
            if lo == 0 and (not _is_number(v) or not v >= 0):
                bad(f"{name} must be a number >= 0, got {v!r}")
            bad(f"{name} must be a number from {lo:g} to {hi:g}, got {v!r}")
    if not (_is_number(hw.request_header_bytes) and 0 <= hw.request_header_bytes <= MAX_HEADER_BYTES):
        bad(f"request_header_bytes must be an integer from 0 to {MAX_HEADER_BYTES}, got {hw.request_header_bytes!r}")
    for name in ("name", "description"):
        v = getattr(hw, name)
        if not isinstance(v, str) or len(v) > _TEXT:
            bad(f"{name} must be a string of at most {_TEXT} characters")
    lo, hi = _EFFICIENCY
    if not isinstance(hw.hbm_efficiency, dict) or not hw.hbm_efficiency:
        bad("hbm_efficiency must be an object like {\"default\": 0.9, \"llama4\": 0.85}")
    for k, v in hw.hbm_efficiency.items():
        if not _in_range(v, lo, hi):
            bad(f"hbm_efficiency[{k!r}] must be in (0, 1], got {_show(v)}{_least(v, lo)}")
    if not isinstance(hw.compute_efficiency, dict) or not hw.compute_efficiency:
        bad("compute_efficiency must be an object: model -> [[max_batch or null, efficiency], ...]")
    for k, table in hw.compute_efficiency.items():
        ok = isinstance(table, list) and table and all(isinstance(row, (list, tuple)) and len(row) == 2 for row in table)
        if not ok:
            bad(f"compute_efficiency[{k!r}] must be a list of [max_batch or null, efficiency] pairs")
        for bound, eff in table:
            if not _in_range(eff, lo, hi):
                bad(f"compute_efficiency[{k!r}]: efficiency must be in (0, 1], got {_show(eff)}{_least(eff, lo)}")
            if bound is not None and not (_is_number(bound) and isinstance(bound, int) and 0 < bound < 1 << 62):
                bad(f"compute_efficiency[{k!r}]: max_batch must be a positive integer or null, got {_show(bound)}")
    return hw


def _from_dict(data: dict, origin: str) -> Hardware:
    known = set(Hardware.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{origin}: unknown field(s) {', '.join(map(str, unknown))}; expected some of "
                         f"{', '.join(sorted(known))}")
    base = json.loads((PRESET_DIR / "5x5.json").read_text())
    base.update(data)
    for name in ("width", "height", "request_header_bytes"):
        v = base[name]
        if not isinstance(v, int) or isinstance(v, bool):
            what = f"an integer from 0 to {MAX_HEADER_BYTES}" if name == "request_header_bytes" else "an integer"
            raise InputError(f"{origin}: {name} must be {what}, got {_show(v)}")
        if name != "request_header_bytes" and not 1 <= v <= MAX_SIDE:
            raise InputError(f"{origin}: mesh {base['width']}x{base['height']}: width and height must be from 1 "
                             f"to {MAX_SIDE} (and at most {MAX_DIES} dies in all)" if v >= 1 else
                             f"{origin}: mesh {base['width']}x{base['height']}: width and height must be at least 1")
    for name in NUMBER_RANGES:
        if not _is_number(base.get(name)):
            raise InputError(f"{origin}: {name} must be a number, got {_show(base.get(name))}")
    return _check(Hardware(**base), origin)


def _least(v, lo: float) -> str:
    return f" (at least {lo:g})" if _is_number(v) and 0 < v < lo else ""


def _show(v) -> str:
    """A value as the file wrote it (true, not True), shortened."""
    text = json.dumps(v) if isinstance(v, (bool, type(None), str, list, dict)) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


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
    if not spec.strip() or (not path.suffix.lower() == ".json" and not os.path.lexists(path)):
        raise InputError(f"--mesh {spec!r}: expected 5x5, 8x3, WxH (e.g. 4x4) or a hardware .json file")
    try:
        text = read_capped(path, MAX_FILE_BYTES, "hardware file")
        data = orjson.loads(text)
    except FileNotFoundError:
        raise InputError(f"{spec}: hardware file not found") from None
    except OSError as e:   # not a regular file (a FIFO, /dev/zero), too large, a symlink loop ...
        raise InputError(f"{spec}: cannot read the hardware file: {os_reason(e)}") from None
    except orjson.JSONDecodeError as e:
        raise InputError(f"{spec}: not a readable JSON hardware file ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{spec}: a hardware file is one JSON object with the preset's fields")
    data.setdefault("name", path.stem)
    return _from_dict(data, spec)
