"""A pre-filled Hugging Face Hub cache in huggingface_hub's real on-disk layout, for offline tests:

  <cache>/datasets--core12345--MoE_expert_selection_trace/
      blobs/<sha256 of the file>
      refs/main                               (the commit hash)
      snapshots/<commit>/<path in repo>  ->  ../../(...)/blobs/<sha256>   (relative symlink)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tracefiles import dumps, make_steps
from waferview.models import MODELS
from waferview.trace.hub import DEFAULT_REVISION, REPO_ID


def repo_folder(cache: Path) -> Path:
    return Path(cache) / ("datasets--" + REPO_ID.replace("/", "--"))


def add_file(cache: Path, path_in_repo: str, text: str, revision: str = DEFAULT_REVISION) -> Path:
    folder = repo_folder(cache)
    data = text.encode("utf-8")
    blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    link = folder / "snapshots" / revision / path_in_repo
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(os.path.relpath(blob, link.parent))
    refs = folder / "refs" / "main"
    refs.parent.mkdir(parents=True, exist_ok=True)
    refs.write_text(revision)
    return link


def fill(cache: Path, model: str, files: dict[tuple[str, str], list[tuple[int, int, int]]]) -> dict[str, tuple]:
    """Add trace files {(benchmark, subject): [(index, prefill rows, decode steps)]}; returns {repo path: (p, d)}."""
    folder = MODELS[model].folder
    written = {}
    for (benchmark, subject), entries in files.items():
        for index, p, d in entries:
            path = f"{folder}/{benchmark}/{subject}/{index}.json"
            add_file(cache, path, dumps(make_steps(model, p, d, seed=index)))
            written[path] = (p, d)
    return written
