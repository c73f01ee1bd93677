"""Shared test setup: every test gets its own trace-cache and Hub-cache folders, so no test
reads a cache another test (or the user) wrote, and nothing reaches for the network."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.mktemp("caches")
    monkeypatch.setenv("WAFERVIEW_CACHE_DIR", str(root / "waferview"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    yield


def pytest_sessionstart(session):
    """Drop numba's on-disk caches when any waferview source is newer than the oldest of them.

    numba checks a cached function against its own file only: after an edit to kernels.py, the cached
    fused.run_layers (which compiled the old finish_layer into itself) would still load, and the tests
    would check stale machine code. A fresh clone has no caches, so this only matters while developing."""
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "waferview"
    caches = [p for pattern in ("*.nbi", "*.nbc") for p in package.rglob(pattern)]
    if not caches:
        return
    newest_source = max(p.stat().st_mtime for p in package.rglob("*.py"))
    if newest_source > min(p.stat().st_mtime for p in caches):
        for p in caches:
            p.unlink(missing_ok=True)
