"""Counts and heatmap read a memory-mapped trace in request chunks and release the pages: same results,
and the released pages really leave the resident set."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from simcases import random_trace
from waferview.models import get_model
from waferview.sim import heatmap as hm
from waferview.sim import pages
from waferview.sim.batch import _batch_counts, select_batch
from waferview.trace.cache import load_cache, save_cache


@pytest.fixture()
def mapped(tmp_path):
    trace = random_trace(np.random.default_rng(3), get_model("qwen3"), requests=40, max_prefill=6, max_decode=7)
    save_cache(tmp_path / "t.wvtrace", trace)
    return load_cache(tmp_path / "t.wvtrace")[0]


def whole_counts(trace, batch):
    m = trace.model
    out = np.zeros((batch.steps, m.moe_layers, m.num_experts), dtype=np.int64)
    _batch_counts(trace.prefill_ids, trace.decode_ids, trace.prefill_offsets, trace.decode_offsets,
                  batch.requests, batch.weights, out)
    return out


def whole_heatmap(trace, batch, top_n, monkeypatch):
    """The heatmap in one chunk and one block of requests."""
    m = trace.model
    out = np.zeros((batch.steps, m.moe_layers, m.num_experts, (m.num_experts + 63) // 64), dtype=np.uint64)
    monkeypatch.setattr(pages, "CHUNK_BYTES", 1 << 40)
    monkeypatch.setattr(hm, "BLOCK_BYTES", 1 << 40)
    hm._heatmap_top_bits(trace, batch, top_n, out)
    return out


def test_chunks_cover_the_requests_in_order(mapped):
    batch = select_batch(mapped, 100, 2)   # repeats: weights > 1
    chunks = pages.request_chunks(mapped, batch.requests, chunk_bytes=20_000)
    assert len(chunks) > 3
    assert chunks[0][0] == 0 and chunks[-1][1] == len(batch.requests)
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    assert pages.request_chunks(mapped, batch.requests[:0]) == []


@pytest.mark.parametrize("chunk_bytes, block_bytes", [(64, 1), (30_000, 20_000), (1 << 30, 1 << 30)])
def test_chunked_counts_and_heatmap_equal_one_pass(mapped, monkeypatch, chunk_bytes, block_bytes):
    from waferview.sim.batch import batch_counts

    batch = select_batch(mapped, 100, 2)
    want_counts = whole_counts(mapped, batch)
    want_bits = whole_heatmap(mapped, batch, 4, monkeypatch)
    monkeypatch.setattr(pages, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(hm, "BLOCK_BYTES", block_bytes)     # 1 byte: one request per block
    monkeypatch.setattr(hm, "PAIRS_PER_LINE", 0 if block_bytes < 1 << 30 else hm.PAIRS_PER_LINE)
    assert np.array_equal(batch_counts(mapped, batch), want_counts)
    assert np.array_equal(hm.heatmap_top_bits(mapped, batch, 4), want_bits)
    assert want_bits.any() and want_counts.sum() > 0


def _rss_file_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and /proc are Linux")
def test_released_rows_leave_the_resident_set(tmp_path):
    path = tmp_path / "big.bin"
    rows = np.arange(8 << 20, dtype=np.uint64).reshape(-1, 4)     # 64 MB of rows
    rows.tofile(path)
    arr = np.memmap(path, dtype=np.uint64, mode="r", shape=rows.shape)
    assert int(arr[:, 0].sum()) == int(rows[:, 0].sum())          # touches every page
    before = _rss_file_kb()
    pages.release_rows(arr, 0, arr.shape[0])
    after = _rss_file_kb()
    assert before - after > 48 * 1024                               # most of the 64 MB left
    assert int(arr[:, 0].sum()) == int(rows[:, 0].sum())          # and reads still see the data
    pages.release_rows(np.zeros((4, 4)), 0, 4)                      # arrays in RAM: nothing to do
