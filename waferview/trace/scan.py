"""Finding the trace files of a source and fingerprinting them for the cache.

A directory is searched recursively for `*.json` files; hidden folders and files (a leading
dot, e.g. `.cache/` that huggingface_hub writes next to downloads) and anything that is not
`.json` are ignored. Files are listed in sorted order of their path relative to the root
(as a POSIX string), which is also the request name. Folder names may be any Unicode.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import orjson

from waferview.errors import InputError

# Bump when the parser's output for the same bytes changes: old caches then read as stale.
PARSER_VERSION = 1


@dataclass(frozen=True)
class TraceFile:
    rel: str      # path relative to the source root, "/"-separated: the request name
    path: str     # absolute path to open
    size: int
    mtime_ns: int


def scan_directory(root: str | os.PathLike) -> list[TraceFile]:
    """Every `*.json` under `root` (recursively, hidden entries skipped), sorted by relative path.

    One stat per file (following symlinks: Hub snapshots link into blobs/). A file that cannot
    be stat'ed (a dangling link) is still listed, with size -1: parsing it then reports why."""
    root = os.path.abspath(root)
    found = []
    seen = {os.path.realpath(root)}  # symlinked folders are followed, each real folder once
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for d in dirnames:
            real = os.path.realpath(os.path.join(dirpath, d))
            if not d.startswith(".") and real not in seen:
                seen.add(real)
                keep.append(d)
        dirnames[:] = keep
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(".json"):
                continue
            rel = Path(name if rel_dir == "." else os.path.join(rel_dir, name)).as_posix()
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:
                found.append(TraceFile(rel, path, -1, 0))
                continue
            if stat.S_ISREG(st.st_mode):
                found.append(TraceFile(rel, path, st.st_size, st.st_mtime_ns))
    found.sort(key=lambda f: f.rel)
    return found


def single_file(path: str | os.PathLike) -> list[TraceFile]:
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise InputError(f"{path}: cannot stat ({e.strerror or e})") from None
    return [TraceFile(os.path.basename(path), path, st.st_size, st.st_mtime_ns)]


def fingerprint(files: list[TraceFile], model_key: str, cache_format: int) -> str:
    """What a cache was built from: format and parser versions, model, and every file's
    (relative path, size, mtime). Any change to the set of files or to one file changes it."""
    listing = [[f.rel, f.size, f.mtime_ns] for f in files]
    blob = orjson.dumps({"format": cache_format, "parser": PARSER_VERSION, "model": model_key, "files": listing})
    return hashlib.sha256(blob).hexdigest()
