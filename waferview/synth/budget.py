"""What a synth run will need, known before anything is allocated, and the up-front refusal.

The numbers are estimates from the model's dimensions and the mean request shape of the parameters
(prefill rows and decode steps, measured on a fixed 4,096-request sample of the length model):
  ids      prefill and decode expert ids: rows x MoE layers x top-k x id size
  per-request arrays   lengths, offsets, seeds, file indices and names: about 200 bytes per request
  json     the dataset files: per (row, MoE layer) 28 + top-k x (18 + mean digits) bytes, per (step,
           layer key) about 26 bytes (json.dumps indent=4 layout, see json_dataset)
--out holds the ids in memory and writes the JSON; --cache keeps arrays up to a quarter of RAM in
memory, bigger ones in memory maps beside the cache (then disk holds them twice until the end).
"""

from __future__ import annotations

import os
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path

from waferview.errors import InputError
from waferview.models import ModelSpec

PER_REQUEST_BYTES = 200


@dataclass(frozen=True)
class Need:
    rows: int              # token rows (prefill rows + decode steps)
    id_bytes: int          # the id arrays
    request_bytes: int     # the per-request arrays
    json_bytes: int        # the dataset files of --out


def _mean_digits(num_experts: int) -> float:
    total = sum(len(str(e)) for e in range(num_experts))
    return total / num_experts


def estimate(model: ModelSpec, requests: int, params) -> Need:
    from waferview.synth.generate import request_lengths

    pre, dec = request_lengths(4096, params, seed=12345)
    rows_per_request = float(pre.mean() + dec.mean())
    steps_per_request = 1.0 + float(dec.mean())
    rows = int(requests * rows_per_request)
    L, k = model.moe_layers, model.top_k
    id_bytes = rows * L * k * model.id_dtype.itemsize
    per_row = L * (28 + k * (18 + _mean_digits(model.num_experts)))
    per_step = model.num_layer_keys * 26 + 13
    json_bytes = int(rows * per_row + requests * steps_per_request * per_step)
    return Need(rows, id_bytes, requests * PER_REQUEST_BYTES, json_bytes)


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if abs(n) < 1000 or unit == "EB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} EB"


def available_memory() -> int:
    """Bytes this process may still allocate: MemAvailable, capped by an address-space limit
    (ulimit -v) less what the process maps already."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            avail = 1 << 62
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ValueError, OSError):
        soft = resource.RLIM_INFINITY
    if soft != resource.RLIM_INFINITY:
        avail = min(avail, max(0, soft - _mapped_bytes()))
    return avail


def _mapped_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def free_disk(path: Path) -> tuple[int, Path]:
    """Free bytes on the file system that will hold `path` (its nearest existing folder)."""
    here = Path(os.path.abspath(path))
    while not here.exists() and here.parent != here:
        here = here.parent
    try:
        return shutil.disk_usage(here).free, here
    except OSError:
        return 1 << 62, here


def check_fits(model: ModelSpec, requests: int, params, *, out: str | None = None,
               cache: str | None = None) -> Need:
    """Refuse (InputError naming the memory and disk needed) a run that cannot fit this machine."""
    from waferview.synth.generate import _ram_budget

    need = estimate(model, requests, params)
    if out is not None:
        memory, disk, where = need.id_bytes + need.request_bytes, need.json_bytes, Path(out)
        disk_what = "for the JSON files"
    else:
        in_ram = need.id_bytes <= _ram_budget()
        memory = need.request_bytes + (need.id_bytes if in_ram else 0)
        disk = need.id_bytes * (1 if in_ram else 2)
        where, disk_what = Path(cache).parent, "for the cache"
    have_memory = available_memory()
    have_disk, disk_at = free_disk(where)
    if memory > have_memory or disk > have_disk:
        raise InputError(
            f"--requests {requests:,}: {model.key} would need about {human_bytes(memory)} of memory "
            f"({human_bytes(have_memory)} available) and {human_bytes(disk)} of disk {disk_what} "
            f"({human_bytes(have_disk)} free in {disk_at}); ask for fewer requests")
    return need
