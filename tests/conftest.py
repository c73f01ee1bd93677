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
    """Drop numba's on-disk caches when any waferview source is newer than the oldest of them (see
    waferview.sim.kernel_cache: the engine does the same once per process; doing it here first keeps the
    test processes from racing each other to it)."""
    from waferview.sim.kernel_cache import drop_stale_caches

    drop_stale_caches()
