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
