"""Where the caches of JSON sources live, and when one may be trusted.

Caches are stored under $WAFERVIEW_CACHE_DIR, else $XDG_CACHE_HOME/waferview, else
~/.cache/waferview, one file per (absolute source path, requested model), named
`<source name>-<hash>.wvtrace`. A cache is trusted only if it reads back completely
(cache.load_cache checks magic, version, size and checksums) and its source key (see
scan.fingerprint) equals the one computed from the files now. Otherwise a one-line notice
goes to stderr and the caller rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

from waferview.trace.arrays import TraceArrays
from waferview.trace.cache import SUFFIX, CacheCorrupt, load_cache, save_cache


def cache_dir() -> Path:
    if os.environ.get("WAFERVIEW_CACHE_DIR"):
        return Path(os.environ["WAFERVIEW_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "waferview"
    return Path.home() / ".cache" / "waferview"


def cache_path_for(source_path: str | os.PathLike, model_key: str) -> Path:
    """The cache file of one source read as one model ("auto" when inferred)."""
    absolute = str(Path(source_path).resolve())
    digest = hashlib.sha256(f"{absolute}\0{model_key}".encode("utf-8", "surrogatepass")).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(absolute).name)[:48] or "root"
    return cache_dir() / f"{stem}-{model_key}-{digest}{SUFFIX}"


def notice(message: str) -> None:
    print(f"waferview: {message}", file=sys.stderr)


def read_trusted(path: Path, source_key: str, label: str) -> TraceArrays | None:
    """The cached trace if it is complete and built from exactly these files, else None."""
    if not path.exists():
        return None
    try:
        trace, header = load_cache(path)
    except CacheCorrupt:
        notice(f"trace cache for {label} is corrupt; rebuilding")
        return None
    if header.get("source_key") != source_key:
        notice(f"trace cache for {label} is stale (files changed); rebuilding")
        return None
    return trace


def write(path: Path, trace: TraceArrays, source_key: str) -> None:
    """Save the cache; a cache that cannot be written is not an error, only slower next time."""
    try:
        save_cache(path, trace, source_key)
    except OSError as e:
        notice(f"cannot write the trace cache {path} ({e.strerror or e}); continuing without it")
