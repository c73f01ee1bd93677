"""The compact trace cache: one file, a JSON header then raw arrays that later runs memory-map.

File layout:
  8 bytes   magic b"WVTRACE\\n"
  8 bytes   header length, little-endian uint64
  header    orjson object: format version, model, source key, names, skipped, array table, checksums
  padding   to a 64-byte boundary
  data      the arrays, each starting on a 64-byte boundary

The file is written to a temporary name in the same folder and renamed, so a reader never
sees a half-written cache. A cache whose header, size or sampled checksum is wrong is
"corrupt"; one whose source key differs from the caller's is "stale". Both get rebuilt.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import orjson

from waferview.errors import InputError
from waferview.models import get_model
from waferview.trace.arrays import TraceArrays

MAGIC = b"WVTRACE\n"
FORMAT_VERSION = 1
SUFFIX = ".wvtrace"
_ALIGN = 64
_ARRAYS = ("prefill_ids", "decode_ids", "prefill_offsets", "decode_offsets")
_SAMPLE = 1 << 16
SYNTH_KEY_PREFIX = "synth:"  # source keys of caches written by `waferview synth`  # bytes checksummed at each of a few places in the data


class CacheCorrupt(InputError):
    """The file is not a complete waferview cache of this format version."""


def _default_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _sample_crc(buf) -> int:
    """Checksum of a few spread-out windows of the data: catches truncation and overwrites
    without reading gigabytes on every start."""
    n = len(buf)
    crc = zlib.crc32(struct.pack("<Q", n))
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        start = max(0, min(n - _SAMPLE, int(n * frac)))
        crc = zlib.crc32(bytes(buf[start:start + _SAMPLE]), crc)
    return crc


def save_cache(path: str | os.PathLike, trace: TraceArrays, source_key: str = "") -> Path:
    """Write `trace` to `path` atomically (temp file + rename), streaming the arrays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table, offset = {}, 0
    arrays = {name: np.ascontiguousarray(getattr(trace, name)) for name in _ARRAYS}
    for name, arr in arrays.items():
        table[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape), "offset": offset}
        offset = _align(offset + arr.nbytes)
    data_len = offset

    def header_bytes(crc: int) -> bytes:
        # the checksum is fixed-width so the header's length does not depend on it
        return orjson.dumps({
            "format_version": FORMAT_VERSION,
            "model": trace.model.key,
            "source_key": source_key,
            "source": trace.source,
            "request_names": list(trace.request_names),
            "skipped": list(trace.skipped),
            "arrays": table,
            "data_len": data_len,
            "data_crc": f"{crc:08x}",
        })

    header = header_bytes(0)
    data_offset = _align(16 + len(header))
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as f:
            f.write(MAGIC + struct.pack("<Q", len(header)) + header)
            for name, arr in arrays.items():
                f.seek(data_offset + table[name]["offset"])
                f.write(memoryview(arr.reshape(-1)).cast("B"))
            f.truncate(data_offset + data_len)
            f.flush()
            crc = _sample_crc(np.memmap(f, dtype=np.uint8, mode="r", offset=data_offset, shape=(data_len,))
                              if data_len else b"")
            f.seek(16)
            f.write(header_bytes(crc))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_file_mode())  # mkstemp makes 0600; a cache is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        # an interrupted write leaves nothing a later run could trust
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def read_header(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if f.read(8) != MAGIC:
                raise CacheCorrupt(f"{path}: not a waferview cache (bad magic)")
            (hlen,) = struct.unpack("<Q", f.read(8))
            header = orjson.loads(f.read(hlen))
    except (OSError, struct.error, orjson.JSONDecodeError) as e:
        raise CacheCorrupt(f"{path}: unreadable cache header ({e.__class__.__name__})") from None
    if not isinstance(header, dict) or header.get("format_version") != FORMAT_VERSION:
        raise CacheCorrupt(f"{path}: cache format version {header.get('format_version') if isinstance(header, dict) else '?'}"
                           f" is not {FORMAT_VERSION}")
    header["_data_offset"] = _align(16 + hlen)
    return header


def load_cache(path: str | os.PathLike) -> tuple[TraceArrays, dict]:
    """Memory-map a cache. Returns the trace and its header (with "source_key")."""
    path = Path(path)
    header = read_header(path)
    data_offset = header["_data_offset"]
    try:
        size = path.stat().st_size
        if size != data_offset + header["data_len"]:
            raise CacheCorrupt(f"{path}: cache is {size} bytes, expected {data_offset + header['data_len']} (truncated?)")
        raw = np.memmap(path, dtype=np.uint8, mode="r", offset=data_offset, shape=(header["data_len"],)) \
            if header["data_len"] else np.zeros(0, np.uint8)
        if f"{_sample_crc(raw):08x}" != header["data_crc"]:
            raise CacheCorrupt(f"{path}: cache checksum mismatch")
        model = get_model(header["model"])
        arrays = {}
        for name in _ARRAYS:
            spec = header["arrays"][name]
            dt = np.dtype(spec["dtype"])
            count = int(np.prod(spec["shape"]))
            start = spec["offset"]
            arrays[name] = raw[start:start + count * dt.itemsize].view(dt).reshape(spec["shape"])
    except CacheCorrupt:
        raise
    except (KeyError, TypeError, ValueError, InputError) as e:
        raise CacheCorrupt(f"{path}: malformed cache ({e})") from None
    trace = TraceArrays(model, arrays["prefill_ids"], arrays["decode_ids"], arrays["prefill_offsets"],
                        arrays["decode_offsets"], tuple(header["request_names"]),
                        tuple(header["skipped"]), header.get("source", str(path)),
                        synthetic=str(header.get("source_key", "")).startswith(SYNTH_KEY_PREFIX))
    return trace, header


def is_cache_file(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == MAGIC
    except OSError:
        return False
