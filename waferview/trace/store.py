"""Where the caches of JSON sources live, and when one may be trusted.

Caches are stored under $WAFERVIEW_CACHE_DIR, else $XDG_CACHE_HOME/waferview, else
~/.cache/waferview, one file per (absolute source path, requested model), named
`<source name>-<hash>.wvtrace`. A cache is trusted only if it reads back completely
(cache.load_cache checks the header, the array table, the offsets, and on first use the data's
checksum and every id) and its source key (see scan.fingerprint) equals the one computed from the
files now. Otherwise a one-line notice goes to stderr and the caller rebuilds it: "corrupt",
"written by another waferview version", "stale (files changed)", or "not a regular file".

A cache folder that is a file (or under one) is named as such in a notice, and the run continues
without the cache. Temporary files left in the folder by a killed writer are removed by the next run.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
from pathlib import Path

from waferview.files import file_kind
from waferview.trace.arrays import TraceArrays
from waferview.trace.cache import (SUFFIX, CacheCorrupt, CacheVersionError, load_cache, remove_stale_temps,
                                   save_cache)


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


def _not_a_folder(path: Path) -> Path | None:
    """The first existing ancestor of `path` (itself excluded) that is not a folder, if there is one."""
    for parent in path.parents:
        try:
            if os.path.lexists(parent):
                return None if parent.is_dir() else parent
        except OSError:
            return None
    return None


def read_trusted(path: Path, source_key: str, label: str) -> TraceArrays | None:
    """The cached trace if it is complete and built from exactly these files, else None."""
    remove_stale_temps(path.parent, contains=SUFFIX + ".")
    try:
        st = os.stat(path)
    except OSError:
        return None   # no cache yet (or a folder that is not one: write() says so)
    if not stat.S_ISREG(st.st_mode):
        notice(f"trace cache for {label} is {file_kind(st.st_mode)}, not a regular file ({path}); rebuilding")
        return None
    try:
        trace, header = load_cache(path)
    except CacheVersionError:
        notice(f"trace cache for {label} was written by another waferview version; rebuilding")
        return None
    except CacheCorrupt:
        notice(f"trace cache for {label} is corrupt; rebuilding")
        return None
    if header.get("source_key") != source_key:
        notice(f"trace cache for {label} is stale (files changed); rebuilding")
        return None
    return trace


def write(path: Path, trace: TraceArrays, source_key: str) -> None:
    """Save the cache; a cache that cannot be written is not an error, only slower next time."""
    blocker = _not_a_folder(path)
    if blocker is not None:
        notice(f"cannot write the trace cache {path} ({blocker} is a file, not a folder: set "
               f"WAFERVIEW_CACHE_DIR to a folder); continuing without it")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        save_cache(path, trace, source_key)
    except OSError as e:
        notice(f"cannot write the trace cache {path} ({e.strerror or e}); continuing without it")
