"""The synthetic-dataset manifest: how a folder written by `waferview synth --out` stays labelled.

`synth --out ROOT` writes ROOT/.waferview-synth.json (generator, version, model, seed, requests,
parameters). A SOURCE is synthetic when that file sits in the source's folder or any folder above it
(the source is at or under a synthetic root), or in a folder between the source and one of its trace
files (a synthetic dataset inside a bigger folder: the mix is reported synthetic, never real).

Only the presence of a regular file with that name counts: a damaged or foreign manifest still marks
the data synthetic (a wrong "synthetic" is the safe side; reporting generated routing as real is not).
The file is hidden, so the directory scan never reads it as a trace.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import orjson

MANIFEST_NAME = ".waferview-synth.json"
GENERATOR = "waferview synth"
SYNTHETIC_SUFFIX = " (synthetic)"
_MAX_MANIFEST_BYTES = 1 << 20   # a manifest is a few kB; never read more than this


def _has_manifest(folder: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(os.path.join(folder, MANIFEST_NAME)).st_mode)
    except (OSError, ValueError):
        return False


def synthetic_root(path: str | os.PathLike) -> Path | None:
    """The nearest folder at or above `path` (a folder, or a file's folder) holding a manifest."""
    try:
        here = os.path.realpath(path)
    except (OSError, ValueError):
        return None
    if not os.path.isdir(here):
        here = os.path.dirname(here)
    while True:
        if _has_manifest(here):
            return Path(here)
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def holds_synthetic(root: str | os.PathLike, file_paths) -> bool:
    """True when `root` is at or under a synthetic root, or a folder between `root` and one of
    `file_paths` (absolute paths of its trace files) holds a manifest. One stat per distinct folder."""
    if synthetic_root(root) is not None:
        return True
    top = os.path.join(os.path.abspath(root), "")   # the scan joins file paths onto abspath(root)
    seen: set[str] = set()
    for path in file_paths:
        folder = os.path.dirname(os.path.abspath(path))
        while folder not in seen and folder.startswith(top):
            seen.add(folder)
            if _has_manifest(folder):
                return True
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
    return False


def read_manifest(root: str | os.PathLike) -> dict | None:
    """The manifest in `root` as a dict, or None when it is missing, too big or not a JSON object."""
    path = os.path.join(root, MANIFEST_NAME)
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            data = f.read(_MAX_MANIFEST_BYTES + 1)
        if len(data) > _MAX_MANIFEST_BYTES:
            return None
        value = orjson.loads(data)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def label_synthetic(trace, root: str | os.PathLike, file_paths=()):
    """`trace` marked synthetic (flag, and the source label ending in " (synthetic)") when its source
    holds synthetic data; unchanged otherwise."""
    if not holds_synthetic(root, file_paths):
        return trace
    source = trace.source if trace.source.endswith(SYNTHETIC_SUFFIX) else trace.source + SYNTHETIC_SUFFIX
    return dataclasses.replace(trace, synthetic=True, source=source)
