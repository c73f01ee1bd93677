"""The compact trace cache: one file, a JSON header then raw arrays that later runs memory-map.

File layout (format 2):
  8 bytes   magic b"WVTRACE\\n"
  8 bytes   header length, little-endian uint64
  header    orjson object: format version, the model's full description, source key, names, skipped,
            array table, data length, data checksum; its last field is "header_crc", the CRC-32 of
            everything before it (magic and length included)
  padding   to a 64-byte boundary
  data      the arrays, each starting on a 64-byte boundary; "data_crc" is the CRC-32 of all of it

Caches are shared (`synth --cache`), so nothing in one is trusted beyond what was checked: the
kernels index the id arrays without bounds checks. Every load checks the whole header (its checksum,
every field's type, the model description) and every array's dtype, shape and byte range against the
model and the data length before any view is made, and the per-request offsets (small) before they are
used. The body (data checksum, every expert id < the model's expert count) is checked in one streaming
pass on first use: a file is "verified" for its (device, inode, size, mtime, ctime, header) in a small
marker under the cache folder (cache_dir()/verified), so later runs map it at no cost; any write to the
file changes its ctime and it is checked again (a file changed in the last two seconds is not marked:
timestamps move in ticks, so it is checked once more on a later run). A cache that someone else can write
(another owner, or group/world-writable) is not mapped: it is read into memory and that copy is checked, so it
cannot change under the kernels.

Writing goes to a temporary file made with exclusive creation (never a predictable name) in the target's
folder, locked (flock) while it is written, then renamed: a reader never sees a half-written cache.
Temporary files of the same target whose writer is gone (no lock held: killed with kill -9) are removed
by the next write. Cache files are never group- or world-writable, whatever the umask.

A cache whose header, size, checksums or contents are wrong is "corrupt" (CacheCorrupt), one of another
format version CacheVersionError; one whose source key differs from the caller's is "stale". The cache
folder rebuilds all three (store.py); a cache given as SOURCE is an error.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import stat
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import orjson

from waferview.errors import InputError
from waferview.files import open_regular, os_reason
from waferview.models import ModelSpec
from waferview.trace.arrays import TraceArrays
from waferview.trace.cache_check import (ARRAYS, CHUNK, IDS, OFFSET_DTYPE, CacheCorrupt, CacheVersionError,
                                         align, check_header, id_dtype, is_marked, mark_verified, verify, verify_file)

MAGIC = b"WVTRACE\n"
FORMAT_VERSION = 2
SUFFIX = ".wvtrace"
SYNTH_KEY_PREFIX = "synth:"   # source keys of caches written by `waferview synth`
MAX_HEADER_BYTES = 256 << 20  # names of a million files fit ten times over
_CRC_TAIL = re.compile(rb',"header_crc":"([0-9a-f]{8})"\}')
_TAIL_LEN = len(b',"header_crc":"00000000"}')
_STALE_TEMP_SECONDS = 10      # an unlocked, empty temp file younger than this may be a writer starting up


def _file_mode() -> int:
    """0o666 minus the umask, and never group- or world-writable."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask & ~0o022


# ---- writing ---------------------------------------------------------------------------------------

def _header(fields: dict) -> bytes:
    """The header bytes with the trailing header_crc over magic + length + the rest of the header."""
    body = orjson.dumps(fields)[:-1]
    total = len(body) + _TAIL_LEN
    crc = zlib.crc32(body, zlib.crc32(MAGIC + struct.pack("<Q", total)))
    return body + b',"header_crc":"%08x"}' % crc


def save_cache(path: str | os.PathLike, trace: TraceArrays, source_key: str = "") -> Path:
    """Write `trace` to `path` atomically (exclusive temp file + rename), streaming the arrays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = trace.model
    expected = {"prefill_ids": id_dtype(model), "decode_ids": id_dtype(model),
                "prefill_offsets": OFFSET_DTYPE, "decode_offsets": OFFSET_DTYPE}
    arrays = {name: np.ascontiguousarray(getattr(trace, name), dtype=expected[name]) for name in ARRAYS}
    for name in IDS:   # never write (and mark as verified) what a load would refuse
        if arrays[name].size and int(arrays[name].max()) >= model.num_experts:
            raise ValueError(f"{name}: expert id {int(arrays[name].max())} >= {model.num_experts}")
    table, offset = {}, 0
    for name, arr in arrays.items():
        table[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape), "offset": offset}
        offset = align(offset + arr.nbytes)
    data_len = offset

    def header_bytes(crc: int) -> bytes:
        return _header({
            "format_version": FORMAT_VERSION,
            "model": model.key,
            "model_spec": model.to_dict(),
            "source_key": source_key,
            "source": trace.source,
            "request_names": list(trace.request_names),
            "skipped": [{"file": str(s.get("file", "")), "reason": str(s.get("reason", ""))} for s in trace.skipped],
            "arrays": table,
            "data_len": data_len,
            "data_crc": f"{crc:08x}",   # fixed width: the header's length does not depend on it
        })

    header = header_bytes(0)
    data_offset = align(16 + len(header))
    remove_stale_temps(path.parent, prefix=path.name + ".")
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)  # O_EXCL, 0600
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)   # "a writer is alive": remove_stale_temps leaves this file alone
        with os.fdopen(fd, "w+b", closefd=False) as f:
            f.write(MAGIC + struct.pack("<Q", len(header)) + header)
            f.write(b"\0" * (data_offset - 16 - len(header)))
            crc, position = 0, 0
            for name, arr in arrays.items():
                pad = b"\0" * (table[name]["offset"] - position)
                crc = zlib.crc32(pad, crc)
                f.write(pad)
                flat = memoryview(arr.reshape(-1)).cast("B")
                for start in range(0, len(flat), CHUNK):
                    piece = flat[start:start + CHUNK]
                    crc = zlib.crc32(piece, crc)
                    f.write(piece)
                position = table[name]["offset"] + arr.nbytes
            pad = b"\0" * (data_len - position)
            crc = zlib.crc32(pad, crc)
            f.write(pad)
            f.seek(16)
            final = header_bytes(crc)
            f.write(final)
            f.flush()
            os.fsync(f.fileno())
        os.fchmod(fd, _file_mode())   # mkstemp makes 0600; a cache is an ordinary (never shared-writable) file
        os.replace(tmp, path)
    except BaseException:
        # an interrupted write leaves nothing a later run could trust
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.close(fd)   # (after the rename: the lock says "being written" until then)
    return path


def remove_stale_temps(folder: str | os.PathLike, prefix: str = "", contains: str = "") -> None:
    """Remove the temporary files `<prefix>...<contains>....tmp` in `folder` whose writer is gone.

    A live writer holds an exclusive flock on its temp file until the rename, so it is never touched;
    one killed (kill -9) leaves the lock free and its file is removed. An empty unlocked file younger
    than a few seconds may belong to a writer between creating and locking it, and is left alone."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".tmp") and contains in n]
    except OSError:
        return
    for name in names:
        candidate = os.path.join(folder, name)
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            young = st.st_size == 0 and time.time() - st.st_ctime < _STALE_TEMP_SECONDS
            if not stat.S_ISREG(st.st_mode) or young:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue   # a writer holds it
            if os.path.samestat(st, os.lstat(candidate)):
                os.unlink(candidate)
        except OSError:
            pass
        finally:
            os.close(fd)


# ---- reading ---------------------------------------------------------------------------------------

def read_header(path: str | os.PathLike) -> dict:
    """The validated header of a cache (every field, the model, the array table against the file size),
    with "_data_offset" added. CacheCorrupt / CacheVersionError otherwise. Reads no array data."""
    path = Path(path)
    try:
        fd = open_regular(path)
    except OSError as e:
        raise CacheCorrupt(f"{path}: cannot read the cache: {os_reason(e)}") from None
    with os.fdopen(fd, "rb") as f:
        header, _, _ = _read_checked_header(f, path)
    return header


def _read_checked_header(f, path: Path) -> tuple[dict, ModelSpec, str]:
    """(header, model, sha256 of magic + length + header) from an open cache file."""
    st = os.fstat(f.fileno())
    try:
        prelude = f.read(16)
    except OSError as e:
        raise CacheCorrupt(f"{path}: cannot read the cache: {os_reason(e)}") from None
    if prelude[:8] != MAGIC:
        raise CacheCorrupt(f"{path}: not a waferview cache (bad magic)")
    if len(prelude) < 16:
        raise CacheCorrupt(f"{path}: cache is {st.st_size} bytes, shorter than its 16-byte prelude (truncated)")
    (hlen,) = struct.unpack("<Q", prelude[8:])
    if hlen > min(st.st_size - 16, MAX_HEADER_BYTES):
        raise CacheCorrupt(f"{path}: cache header length {hlen} does not fit the file ({st.st_size} bytes; "
                           f"at most {MAX_HEADER_BYTES} allowed): damaged or truncated")
    raw = f.read(hlen)
    if len(raw) != hlen:
        raise CacheCorrupt(f"{path}: cache header is truncated")
    tail = _CRC_TAIL.fullmatch(raw[-_TAIL_LEN:])
    crc_ok = tail is not None and int(tail.group(1), 16) == zlib.crc32(raw[:-_TAIL_LEN], zlib.crc32(prelude))
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError:
        header = None
    version = header.get("format_version") if isinstance(header, dict) else None
    if not crc_ok:
        if isinstance(version, int) and not isinstance(version, bool) and version != FORMAT_VERSION:
            raise CacheVersionError(f"{path}: cache format {version} (an older waferview wrote it); "
                                    f"this waferview reads format {FORMAT_VERSION}")
        raise CacheCorrupt(f"{path}: cache header checksum mismatch (the header is damaged)")
    if not isinstance(header, dict) or version != FORMAT_VERSION:
        raise CacheCorrupt(f"{path}: cache header is not a format-{FORMAT_VERSION} object")
    model = check_header(header, path, align(16 + hlen), st.st_size)
    if f.read(align(16 + hlen) - 16 - hlen).strip(b"\0"):
        raise CacheCorrupt(f"{path}: the padding after the cache header is not zero (damaged)")
    header["_data_offset"] = align(16 + hlen)
    return header, model, hashlib.sha256(prelude + raw).hexdigest()


def _writable_by_others(st: os.stat_result) -> bool:
    return st.st_uid != os.geteuid() or bool(st.st_mode & 0o022)


def load_cache(path: str | os.PathLike) -> tuple[TraceArrays, dict]:
    """Memory-map a cache, verified (see the module docstring). Returns the trace and its header."""
    path = Path(path)
    try:
        fd = open_regular(path)
    except OSError as e:
        raise CacheCorrupt(f"{path}: cannot read the cache: {os_reason(e)}") from None
    with os.fdopen(fd, "rb") as f:
        header, model, header_sha = _read_checked_header(f, path)
        st = os.fstat(f.fileno())
        data_offset, data_len = header["_data_offset"], header["data_len"]
        try:
            if _writable_by_others(st):
                raw = _read_private(f, path, data_offset, data_len)
                verify(raw, header, model, path)
                raw.setflags(write=False)
            else:
                if not is_marked(st, header_sha):
                    verify_file(f, header, model, path)
                    mark_verified(st, header_sha)
                raw = np.memmap(f, dtype=np.uint8, mode="r", offset=data_offset, shape=(data_len,))
        except OSError as e:
            if e.errno == errno.ENOMEM:
                raise InputError(f"{path}: not enough memory (address space) to map this cache "
                                 f"({data_len / 1e9:.2f} GB)") from None
            raise CacheCorrupt(f"{path}: cannot read the cache: {os_reason(e)}") from None
    arrays = {}
    for name in ARRAYS:
        spec = header["arrays"][name]
        dt = np.dtype(spec["dtype"])
        count = int(np.prod(spec["shape"], dtype=np.int64))
        arrays[name] = raw[spec["offset"]:spec["offset"] + count * dt.itemsize].view(dt).reshape(spec["shape"])
    for kind, ids in (("prefill", "prefill_ids"), ("decode", "decode_ids")):
        off = arrays[f"{kind}_offsets"]
        rows = arrays[ids].shape[0]
        if off[0] != 0 or off[-1] != rows or (len(off) > 1 and bool((off[1:] < off[:-1]).any())):
            raise CacheCorrupt(f"{path}: {kind}_offsets do not go from 0 to {rows} without decreasing "
                               f"(the per-request offsets are damaged)")
    trace = TraceArrays(model, arrays["prefill_ids"], arrays["decode_ids"], arrays["prefill_offsets"],
                        arrays["decode_offsets"], tuple(header["request_names"]),
                        tuple(dict(s) for s in header["skipped"]), header["source"] or str(path),
                        synthetic=header["source_key"].startswith(SYNTH_KEY_PREFIX))
    return trace, header


def _read_private(f, path: Path, data_offset: int, data_len: int) -> np.ndarray:
    try:
        raw = np.empty(data_len, dtype=np.uint8)
    except MemoryError:
        raise InputError(f"{path}: not enough memory to read this cache ({data_len / 1e9:.2f} GB; it is "
                         "writable by others, so it is read into memory, not mapped)") from None
    f.seek(data_offset)
    view = memoryview(raw)
    got = 0
    while got < data_len:
        n = f.readinto(view[got:got + CHUNK])
        if not n:
            raise CacheCorrupt(f"{path}: cache ended after {got} of {data_len} data bytes (truncated)")
        got += n
    return raw


def is_cache_file(path: str | os.PathLike) -> bool:
    """Does `path` name a regular file starting with the cache magic? (Never blocks on a FIFO.)"""
    try:
        fd = open_regular(path)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        try:
            return f.read(8) == MAGIC
        except OSError:
            return False
