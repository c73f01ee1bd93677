"""The on-disk cache of finished rows, so an interrupted sweep reruns only what is missing.

One small JSON file per finished configuration under $WAFERVIEW_CACHE_DIR/sweep/rows/, named by the
sha256 of (the trace's content fingerprint, the trace's label, the full Namespace of summary options the
configuration builds, defaults included, and waferview's version with a digest of its sources). Files are
written to a temporary name and renamed, so a killed sweep leaves whole entries or none. Failed
configurations are not cached: a rerun tries them again. An entry that does not read back is ignored.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson

def row_key(fingerprint: str, label: str, ns, version: str) -> str:
    from waferview.sweep.grid import NOT_AXES, source_dests

    # how the trace was read does not enter the key (the trace itself is fingerprinted), nor summary's outputs
    ignored = set(source_dests()) | set(NOT_AXES)
    options = {k: v for k, v in sorted(vars(ns).items()) if k not in ignored and not k.startswith("_")}
    blob = orjson.dumps({"trace": fingerprint, "label": label, "options": options, "version": version},
                        option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(blob).hexdigest()


class RowCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        try:
            entry = orjson.loads(self._path(key).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return entry.get("fields") if isinstance(entry, dict) and entry.get("key") == key else None

    def put(self, key: str, fields: dict) -> None:
        """Store one finished row (a cache that cannot be written only costs a rerun)."""
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(orjson.dumps({"key": key, "fields": fields}))
            os.replace(tmp, path)
        except OSError:
            try:
                tmp.unlink()
            except OSError:
                pass

    def count(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0
