"""Checks of a cache file (see cache.py for the format): the header against the model and the file
size, the streaming pass over the data (checksum, every expert id in range), and the "verified" markers
that let later runs skip that pass. Nothing here trusts a byte it has not checked."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import orjson

from waferview.errors import InputError
from waferview.files import NotReadable, open_regular
from waferview.models import ModelSpec, model_from_dict

ALIGN = 64
ARRAYS = ("prefill_ids", "decode_ids", "prefill_offsets", "decode_offsets")
IDS = ("prefill_ids", "decode_ids")
OFFSET_DTYPE = np.dtype("<i8")
CHUNK = 16 << 20              # bytes per read of the verifying pass (a multiple of ALIGN)
HEADER_FIELDS = {"format_version", "model", "model_spec", "source_key", "source", "request_names", "skipped",
                 "arrays", "data_len", "data_crc", "header_crc"}
_MARK_AFTER_NS = 2_000_000_000  # a file changed this recently is not marked: a write within the same
                                # timestamp tick (1-10 ms) would leave its ctime as it was


class CacheCorrupt(InputError):
    """The file is not a complete, consistent waferview cache of this format version."""


class CacheVersionError(CacheCorrupt):
    """The file is a waferview cache of another format version (an older waferview wrote it)."""


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def id_dtype(model: ModelSpec) -> np.dtype:
    return np.dtype(model.id_dtype).newbyteorder("<")


def _whole(value, lo: int, hi: int) -> bool:
    return type(value) is int and lo <= value <= hi


def check_header(h: dict, path: Path, data_offset: int, file_size: int) -> ModelSpec:
    """Every field of a header against its type, the model and the file size; returns the model."""
    def bad(what):
        raise CacheCorrupt(f"{path}: malformed cache header: {what}")

    if set(h) != HEADER_FIELDS:
        bad(f"fields {sorted(set(h) ^ HEADER_FIELDS)} missing or unexpected")
    try:
        model = model_from_dict(h["model_spec"], "model_spec")
    except InputError as e:
        bad(str(e))
    if h["model"] != model.key:
        bad(f"model {h['model']!r} is not the described model {model.key!r}")
    for name in ("source_key", "source", "data_crc"):
        if type(h[name]) is not str:
            bad(f"{name} is not a string")
    if not re.fullmatch(r"[0-9a-f]{8}", h["data_crc"]):
        bad("data_crc is not 8 hex digits")
    names = h["request_names"]
    if type(names) is not list or not names or not all(type(n) is str for n in names):
        bad("request_names is not a non-empty list of strings")
    skipped = h["skipped"]
    if type(skipped) is not list or not all(type(s) is dict and set(s) == {"file", "reason"}
                                            and type(s["file"]) is str and type(s["reason"]) is str
                                            for s in skipped):
        bad("skipped is not a list of {file, reason} objects")
    data_len = h["data_len"]
    if not _whole(data_len, 0, 1 << 62) or data_offset + data_len != file_size:
        raise CacheCorrupt(f"{path}: cache is {file_size} bytes, its header says "
                           f"{data_offset + data_len if _whole(data_len, 0, 1 << 62) else '?'} (truncated or damaged)")
    table = h["arrays"]
    if type(table) is not dict or list(table) != list(ARRAYS):
        bad(f"arrays is not a table of {', '.join(ARRAYS)}")
    requests = len(names)
    expected_shape = {"prefill_ids": (None, model.moe_layers, model.top_k),
                      "decode_ids": (None, model.moe_layers, model.top_k),
                      "prefill_offsets": (requests + 1,), "decode_offsets": (requests + 1,)}
    expected_dtype = {"prefill_ids": id_dtype(model), "decode_ids": id_dtype(model),
                      "prefill_offsets": OFFSET_DTYPE, "decode_offsets": OFFSET_DTYPE}
    end = 0
    for name in ARRAYS:
        spec = table[name]
        if type(spec) is not dict or set(spec) != {"dtype", "shape", "offset"}:
            bad(f"{name}: expected {{dtype, shape, offset}}")
        if spec["dtype"] != expected_dtype[name].str:
            bad(f"{name}: dtype {spec['dtype']!r}, expected {expected_dtype[name].str!r} for {model.key}")
        shape = spec["shape"]
        want = expected_shape[name]
        if type(shape) is not list or len(shape) != len(want) or not all(_whole(n, 0, data_len) for n in shape) \
                or any(w is not None and n != w for n, w in zip(shape, want)):
            bad(f"{name}: shape {shape!r}, expected {['n' if w is None else w for w in want]}")
        offset = spec["offset"]
        nbytes = int(np.prod(shape, dtype=object)) * expected_dtype[name].itemsize
        if not _whole(offset, end, data_len) or offset % ALIGN or offset + nbytes > data_len:
            bad(f"{name}: {nbytes} bytes at offset {offset!r} do not lie in the data ({data_len} bytes) "
                f"after the previous array (ends at {end})")
        end = offset + nbytes
    return model


def verify_file(f, header: dict, model: ModelSpec, path: Path) -> None:
    """The verifying pass over the data, read in chunks (nothing stays resident)."""
    data_len = header["data_len"]
    buf = bytearray(min(CHUNK, max(data_len, 1)))
    view = memoryview(buf)
    f.seek(header["_data_offset"])
    checker = _Checker(header, model, path)
    position = 0
    while position < data_len:
        want = min(len(buf), data_len - position)
        n = f.readinto(view[:want])
        if n != want:
            raise CacheCorrupt(f"{path}: cache ended after {position + (n or 0)} of {data_len} data bytes (truncated)")
        checker.feed(view[:want], position)
        position += want
    checker.finish()


def verify(raw: np.ndarray, header: dict, model: ModelSpec, path: Path) -> None:
    checker = _Checker(header, model, path)
    view = memoryview(raw)
    for start in range(0, len(raw), CHUNK):
        checker.feed(view[start:start + CHUNK], start)
    checker.finish()


class _Checker:
    """Streaming check of the data: CRC-32 of every byte, and every expert id below the expert count."""

    def __init__(self, header: dict, model: ModelSpec, path: Path):
        self.crc = 0
        self.path = path
        self.expected_crc = header["data_crc"]
        self.model = model
        self.regions = []   # (start, end, name) of the id arrays, in bytes from the data start
        for name in IDS:
            spec = header["arrays"][name]
            size = int(np.prod(spec["shape"], dtype=object)) * id_dtype(model).itemsize
            self.regions.append((spec["offset"], spec["offset"] + size, name))

    def feed(self, chunk: memoryview, position: int) -> None:
        self.crc = zlib.crc32(chunk, self.crc)
        end = position + len(chunk)
        for start, stop, name in self.regions:
            a, b = max(start, position), min(stop, end)
            if a < b:
                ids = np.frombuffer(chunk[a - position:b - position], dtype=id_dtype(self.model))
                top = int(ids.max())
                if top >= self.model.num_experts:
                    raise CacheCorrupt(f"{self.path}: {name} holds expert id {top}, out of range for "
                                       f"{self.model.key} ({self.model.num_experts} experts): the cache is damaged")

    def finish(self) -> None:
        if f"{self.crc:08x}" != self.expected_crc:
            raise CacheCorrupt(f"{self.path}: cache data checksum mismatch (the data is damaged)")


# ---- "verified" markers ----------------------------------------------------------------------------

def _marker_path(st: os.stat_result) -> Path:
    from waferview.trace.store import cache_dir   # (store imports this module)

    digest = hashlib.sha256(f"{st.st_dev}:{st.st_ino}".encode()).hexdigest()[:32]
    return cache_dir() / "verified" / f"{digest}.json"


def _identity(st: os.stat_result, header_sha: str) -> dict:
    return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns, "header_sha256": header_sha}


def is_marked(st: os.stat_result, header_sha: str) -> bool:
    try:
        fd = open_regular(_marker_path(st))
        with os.fdopen(fd, "rb") as f:
            return orjson.loads(f.read(4096)) == _identity(st, header_sha)
    except (OSError, NotReadable, orjson.JSONDecodeError):
        return False


def mark_verified(st: os.stat_result, header_sha: str) -> None:
    """Remember that this exact file was verified; a marker that cannot be written costs only time.

    Not for a file changed in the last two seconds: timestamps advance in ticks, so a write right
    after this one could keep the same ctime, and the marker would vouch for it (it is checked
    again next time instead)."""
    if time.time_ns() - st.st_ctime_ns < _MARK_AFTER_NS:
        return
    try:
        marker = _marker_path(st)
        marker.parent.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        marker.parent.mkdir(exist_ok=True, mode=0o700)   # (only we may vouch for a file)
        fd, tmp = tempfile.mkstemp(prefix=marker.name + ".", suffix=".tmp", dir=marker.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(orjson.dumps(_identity(st, header_sha)))
            os.replace(tmp, marker)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass
