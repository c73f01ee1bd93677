"""The modelled wafer: one description of the hardware, presets as JSON files users can copy and edit.

`load_hardware("5x5" | "8x3" | "WxH" | "path/to/file.json")`:
  - "5x5" and "8x3" are the presets in waferview/wafer/presets/ (the paper's two wafers);
  - any other "WxH" is the 5x5 preset's per-die figures on a W x H mesh;
  - a path is a JSON file with the preset's fields (missing fields take the 5x5 preset's values).
presets/5x5.json is the one source of every figure: the dataclass defaults below are read from it, and
8x3.json holds only what differs (its shape and name).

Units: bandwidths in bytes per ns (1 TB/s = 1000 bytes/ns), latencies in ns, HBM in GB (1e9 bytes).
The 64 MB last-level cache is modelled by the circuit link model only (as the study's simulator does: sets of
`llc_ways` slices, with its hit, miss and fill latencies); the fluid model leaves it out: it holds less than
two expert matrices (37.7-251.7 MB each), so a weight read can almost never hit it.
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
_BASE = json.loads((PRESET_DIR / "5x5.json").read_text())   # the defaults of every field
_SHAPE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$", re.ASCII)
MAX_DIES = 4096


@dataclass(frozen=True)
class Hardware:
    name: str
    width: int
    height: int
    die_tflops: float = _BASE["die_tflops"]                # FP16 peak per die
    hbm_gb: float = _BASE["hbm_gb"]                        # per die, 1 GB = 1e9 bytes
    hbm_bytes_per_ns: float = _BASE["hbm_bytes_per_ns"]    # 3.35 TB/s per die
    hbm_latency_ns: float = _BASE["hbm_latency_ns"]        # fluid: once per layer by every die that did anything
    hbm_reserved_fraction: float = _BASE["hbm_reserved_fraction"]   # kept free (runtime, activations)
    llc_mb: float = _BASE["llc_mb"]                        # the circuit model's LLC (see module docstring)
    llc_ways: int = _BASE["llc_ways"]                      # slices per LLC set
    llc_hit_ns: int = _BASE["llc_hit_ns"]                  # circuit: an LLC read (the issue stage on a hit)
    llc_miss_ns: int = _BASE["llc_miss_ns"]                # circuit: the issue stage on a miss
    llc_fill_ns: int = _BASE["llc_fill_ns"]                # circuit: an LLC fill
    link_bytes_per_ns: float = _BASE["link_bytes_per_ns"]  # per direction, per neighbour
    hop_latency_ns: float = _BASE["hop_latency_ns"]
    request_header_bytes: int = _BASE["request_header_bytes"]   # travels reader -> holder for every remote read
    link_efficiency: float = _BASE["link_efficiency"]
    hbm_efficiency: dict = field(default_factory=lambda: dict(_BASE["hbm_efficiency"]))
    # model -> [[max tokens or None, efficiency], ...] in increasing bound; None = above all. Looked up with the
    # batch by the fluid model (the authors' calibration), with the task's tokens by the circuit model (the study)
    compute_efficiency: dict = field(default_factory=lambda: {k: [list(r) for r in v] for k, v in
                                                              _BASE["compute_efficiency"].items()})
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
# integer fields (ns and counts): (low, high)
INTEGER_RANGES = {"request_header_bytes": (0, MAX_HEADER_BYTES), "llc_ways": (1, 64), "llc_hit_ns": (0, 10**9),
                  "llc_miss_ns": (0, 10**9), "llc_fill_ns": (0, 10**9)}
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
    for name, (lo_i, hi_i) in INTEGER_RANGES.items():
        v = getattr(hw, name)
        if not (isinstance(v, int) and not isinstance(v, bool) and lo_i <= v <= hi_i):
            bad(f"{name} must be an integer from {lo_i} to {hi_i}, got {v!r}")
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
        ok = isinstance(table, list) and table and \
            all(isinstance(row, (list, tuple)) and len(row) == 2 for row in table)
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
    base = json.loads(json.dumps(_BASE))   # a deep copy: nested tables must not be shared
    base.update(data)
    for name in ("width", "height", *INTEGER_RANGES):
        v = base[name]
        if not isinstance(v, int) or isinstance(v, bool):
            what = (f"an integer from {INTEGER_RANGES[name][0]} to {INTEGER_RANGES[name][1]}"
                    if name in INTEGER_RANGES else "an integer")
            raise InputError(f"{origin}: {name} must be {what}, got {_show(v)}")
        if name in ("width", "height") and not 1 <= v <= MAX_SIDE:
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
