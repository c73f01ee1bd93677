"""The copy store: predictor copies per (layer, die, expert), each die's capacity in whole-expert slots, and
a per-die least-recently-used list over its slots idx = layer * E + e.

CopyArrays (the kernels' group):
  copies[L, D, E] uint8     1 where die d holds a copy of expert e of layer l
  count[D], slots[D]        copies held, copies allowed
  lru[D, L * E, 4] int32    (prev + 1, next + 1, last_used, reads) of each slot (0 = no neighbour), one 16-byte
                            record (a list step or a touch reads one cache line); all zero at the start, so the
                            pages of a big mesh's store stay untouched until used
  head[D], tail[D]          least / most recently used slot, -1 = empty list
  eviction                  EVICT_NEVER / EVICT_LRU / EVICT_ADMIT
reads = how often the die has read that expert while not homed on it (remote or from its copy), counted only
under EVICT_ADMIT, the one rule that reads it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

PREV, NEXT, LAST_USED, READS = 0, 1, 2, 3
# eviction rules (--eviction): when a die's copy space is full ...
EVICT_NEVER = 0   # ... the copy is skipped (the paper)
EVICT_LRU = 1     # ... the least recently used copy makes room
EVICT_ADMIT = 2   # ... it does only if the die has read the new expert more often than that copy's expert
EVICTION_CODES = {"never": EVICT_NEVER, "lru": EVICT_LRU, "admit": EVICT_ADMIT}   # by policies.base.EVICTIONS


class CopyArrays(NamedTuple):
    copies: np.ndarray
    count: np.ndarray
    slots: np.ndarray
    lru: np.ndarray
    head: np.ndarray
    tail: np.ndarray
    eviction: int


class CopyStore:
    """The arrays of one engine's copy store (mutated only by the kernels below)."""

    def __init__(self, layers: int, dies: int, experts: int, slots: np.ndarray, eviction: str):
        self.arrays = CopyArrays(np.zeros((layers, dies, experts), dtype=np.uint8), np.zeros(dies, dtype=np.int64),
                                 np.ascontiguousarray(slots, dtype=np.int64),
                                 np.zeros((dies, layers * experts, 4), dtype=np.int32),
                                 np.full(dies, -1, dtype=np.int64), np.full(dies, -1, dtype=np.int64),
                                 EVICTION_CODES[eviction])

    @property
    def copies(self) -> np.ndarray:
        return self.arrays.copies

    @property
    def held(self) -> int:
        return int(self.arrays.count.sum())

    def copies_of_layer(self, layer: int) -> np.ndarray:
        """(D,) copies each die holds for `layer` (a fresh array)."""
        return self.arrays.copies[layer].sum(axis=1, dtype=np.int64)


# (list helpers take the arrays, not the CopyArrays tuple: a call passing a tuple of arrays pays a reference
# count per member, more than the list step itself)
@njit(nogil=True, cache=True, inline="always")
def _unlink(lru, head, tail, d, idx):
    p = lru[d, idx, PREV] - 1
    n = lru[d, idx, NEXT] - 1
    if p >= 0:
        lru[d, p, NEXT] = n + 1
    else:
        head[d] = n
    if n >= 0:
        lru[d, n, PREV] = p + 1
    else:
        tail[d] = p
    lru[d, idx, PREV] = 0
    lru[d, idx, NEXT] = 0


@njit(nogil=True, cache=True, inline="always")
def _append(lru, head, tail, d, idx):
    t = tail[d]
    lru[d, idx, PREV] = t + 1
    lru[d, idx, NEXT] = 0
    if t >= 0:
        lru[d, t, NEXT] = idx + 1
    else:
        head[d] = idx
    tail[d] = idx


@njit(nogil=True, cache=True)
def touch_copies(store, home, layer, task_e, task_d, task_src, now):
    """Under EVICT_ADMIT, count every read of an expert away from its home die; a task that reads a copy on
    its own die makes that copy the most recently used. Returns the number of reads served by a copy."""
    copies, lru, head, tail = store.copies, store.lru, store.head, store.tail
    admit = store.eviction == EVICT_ADMIT
    E = copies.shape[2]
    hits = 0
    for t in range(task_e.shape[0]):
        d = task_d[t]
        e = task_e[t]
        if home[e] == d:
            continue
        idx = layer * E + e
        if admit:
            lru[d, idx, READS] += 1
        if task_src[t] == d and copies[layer, d, e]:
            if tail[d] != idx:   # already the most recently used: unlink + append would change nothing
                _unlink(lru, head, tail, d, idx)
                _append(lru, head, tail, d, idx)
            lru[d, idx, LAST_USED] = now
            hits += 1
    return hits


@njit(nogil=True, cache=True)
def apply_copies(store, layer, want, task_e, task_d, task_src, now, copied):
    """Copy expert task_e[t] to die task_d[t] for each remote task with want[t], in task order.

    A die with no free slot skips the copy (EVICT_NEVER, the paper), or drops its least recently used
    copy first (EVICT_LRU), or does so only when it has read the new expert more often than the victim
    (EVICT_ADMIT: a copy read once is not worth a copy read often, so cyclic or random reuse larger
    than the copy space does not flush it). A copy used in this very layer is never the victim.
    Sets copied[t]; returns the number of evictions.
    """
    copies, count, slots, lru, head, tail = store.copies, store.count, store.slots, store.lru, store.head, store.tail
    eviction = store.eviction
    E = copies.shape[2]
    evictions = 0
    for t in range(task_e.shape[0]):
        copied[t] = False
        d = task_d[t]
        e = task_e[t]
        if not want[t] or task_src[t] == d or copies[layer, d, e]:
            continue
        if count[d] >= slots[d]:
            if eviction == EVICT_NEVER or count[d] == 0:
                continue
            victim = head[d]
            if lru[d, victim, LAST_USED] >= now:
                continue
            if eviction == EVICT_ADMIT and lru[d, victim, READS] >= lru[d, layer * E + e, READS]:
                continue
            vl = victim // E
            ve = victim - vl * E
            _unlink(lru, head, tail, d, victim)
            copies[vl, d, ve] = 0
            count[d] -= 1
            evictions += 1
        copies[layer, d, e] = 1
        count[d] += 1
        idx = layer * E + e
        lru[d, idx, LAST_USED] = now
        _append(lru, head, tail, d, idx)
        copied[t] = True
    return evictions
