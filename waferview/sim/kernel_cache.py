"""Keeping numba's on-disk caches of waferview's kernels honest.

numba checks a cached function against its own source file only. The engine's loop (sim.loop.run_layers)
compiles every mode's kernel into itself, so after an edit to, say, policies/placement_allo.py, a cached loop
would still run the old allo. Once per process, before the first engine runs, every waferview kernel cache
is dropped when any waferview source is newer than the oldest of them (an edit, or a new version installed
over old caches); they are rebuilt on first use. A fresh install has no caches: nothing to do.
"""

from __future__ import annotations

import threading
from pathlib import Path

import waferview

_checked = False
_lock = threading.Lock()


def drop_stale_caches(package: Path | None = None) -> int:
    """Remove waferview's numba cache files if any source is newer than the oldest; returns how many."""
    package = Path(package or Path(waferview.__file__).resolve().parent)
    caches = [p for pattern in ("*.nbi", "*.nbc") for p in package.rglob(pattern)]
    if not caches:
        return 0
    try:
        newest_source = max(p.stat().st_mtime for p in package.rglob("*.py"))
        stale = newest_source > min(p.stat().st_mtime for p in caches)
    except OSError:   # a file vanished meanwhile (another process cleaning): leave it to that one
        return 0
    removed = 0
    if stale:
        for p in caches:
            try:
                p.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def check_once() -> None:
    global _checked
    with _lock:
        if not _checked:
            _checked = True
            drop_stale_caches()
