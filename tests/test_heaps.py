"""The array heaps of links/heaps.py make CPython heapq's moves exactly: after every push and pop the array
holds the same items in the same places as a heapq list of objects that compare the way the study's do
(by time only; wait entries by live key, then arrival). Ties are the point: with few distinct times, the
order equal items leave in depends on every move, and the circuit model's event times depend on that order.
"""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from waferview.links.heaps import (pop_keyed, pop_time, pop_wait, push_keyed, push_time, push_wait,
                                   wait_key)


class _ByTime:
    """A heapq item compared by its stage's time only, read live (as the study's events compare)."""

    def __init__(self, stage, time):
        self.stage, self.time = stage, time

    def __lt__(self, other):
        return self.time[self.stage] < self.time[other.stage]


class _Waiting:
    """A wait-queue entry: live key of its stage, then arrival number."""

    def __init__(self, stage, seq, key):
        self.stage, self.seq, self.key = stage, seq, key

    def __lt__(self, other):
        a, b = self.key[self.stage], self.key[other.stage]
        return a < b if a != b else self.seq < other.seq


def _ops(rng, count):
    """A random push/pop sequence that keeps the heap between empty and about 40 items."""
    size = 0
    for _ in range(count):
        if size == 0 or (size < 40 and rng.random() < 0.55):
            size += 1
            yield "push"
        else:
            size -= 1
            yield "pop"


@pytest.mark.parametrize("seed", range(6))
def test_time_heaps_make_heapqs_moves(seed):
    rng = np.random.default_rng(seed)
    n_items = 400
    time = rng.integers(0, 4, n_items).astype(np.int64)      # four distinct times: ties everywhere
    keyed, keys, n_keyed = np.empty(n_items, np.int64), np.empty(n_items, np.int64), 0
    lookup, n_lookup = np.empty(n_items, np.int64), 0
    reference: list[_ByTime] = []
    nxt = 0
    for op in _ops(rng, 600):
        if op == "push":
            if nxt == n_items:
                break
            heapq.heappush(reference, _ByTime(nxt, time))
            n_keyed = push_keyed(keyed, keys, n_keyed, nxt, time[nxt])
            n_lookup = push_time(lookup, n_lookup, nxt, time)
            nxt += 1
        else:
            expected = heapq.heappop(reference).stage
            got_keyed, n_keyed = pop_keyed(keyed, keys, n_keyed)
            got_lookup, n_lookup = pop_time(lookup, n_lookup, time)
            assert got_keyed == got_lookup == expected
        layout = [item.stage for item in reference]
        assert keyed[:n_keyed].tolist() == layout
        assert keys[:n_keyed].tolist() == [time[s] for s in layout]
        assert lookup[:n_lookup].tolist() == layout


@pytest.mark.parametrize("seed", range(6))
def test_wait_queue_makes_heapqs_moves_with_live_keys(seed):
    """A wait queue whose stages' keys change while they sit in it (a stage admitted through another
    resource gets a later time, as in the study): same layout as heapq after every move, invariant
    broken or not."""
    rng = np.random.default_rng(100 + seed)
    n_stages = 300
    times = rng.integers(0, 5, n_stages).astype(np.int64)
    priority = rng.integers(0, 2, n_stages).astype(np.int64)
    key = np.array([wait_key(t, p) for t, p in zip(times, priority)], np.int64)
    base = 7                                                  # a queue segment inside shared arrays
    stages, seqs = np.full(base + n_stages, -1, np.int64), np.full(base + n_stages, -1, np.int64)
    n = 0
    reference: list[_Waiting] = []
    nxt = seq = 0
    for op in _ops(rng, 500):
        if op == "push":
            if nxt == n_stages:
                break
            heapq.heappush(reference, _Waiting(nxt, seq, key))
            n = push_wait(stages, seqs, base, n, nxt, seq, key)
            nxt += 1
            seq += 1
        else:
            heapq.heappop(reference)
            n = pop_wait(stages, seqs, base, n, key)
        if n and rng.random() < 0.3:                          # a queued stage's time moves later
            s = reference[int(rng.integers(0, n))].stage
            key[s] += int(rng.integers(1, 3))
        assert stages[base:base + n].tolist() == [w.stage for w in reference]
        assert seqs[base:base + n].tolist() == [w.seq for w in reference]
    assert (stages[:base] == -1).all()                        # nothing written outside the segment
