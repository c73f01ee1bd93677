"""The copy store: predictor copies per (layer, die, expert), what each die may hold, and a per-die least-
recently-used list. Two kinds, one group of arrays:

  slots   (waferview)  whole-expert copies; a die holds as many as its free HBM allows (or --copy-slots);
                       when full, the eviction rule decides (never / lru / admit)
  region  (the study)  copies per weight-matrix slice (3 per expert) in a region of fixed size per die (the
                       study's 50 GiB), the least recently used slice evicted, a local read refreshing it; or
                       unbounded (the paper's original code: nothing is ever evicted)

CopyArrays (the kernels' group):
  copies[L, D, E] uint8     bit m set where die d holds slice m of expert e of layer l (slots: all 3 bits)
  count[D], capacity[D]     entries held, entries allowed (slots: experts; region: slices)
  lru[D, keys, 4] int32     (prev + 1, next + 1, last_used, reads) of each key (0 = no neighbour): keys are
                            layer * E + e (slots) or (layer * E + e) * 3 + m (region); one 16-byte record, all
                            zero at the start so a big mesh's pages stay untouched until used
  head[D], tail[D]          least / most recently used key, -1 = empty list
  eviction                  EVICT_NEVER / EVICT_LRU / EVICT_ADMIT (slots), EVICT_REGION, EVICT_UNBOUNDED
reads = how often the die has read that expert while not homed on it (remote or from its copy), counted only
under EVICT_ADMIT, the one rule that reads it.

A link model applies the layer's copies itself (modes.layer_costs): in task order with layer_copies (fluid),
or slice by slice in event time with read_slice / write_slice (circuit).
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
EVICT_REGION = 3  # (region) the least recently used slice makes room, always
EVICT_UNBOUNDED = 4   # (region) no bound: nothing is evicted
EVICTION_CODES = {"never": EVICT_NEVER, "lru": EVICT_LRU, "admit": EVICT_ADMIT}   # by policies.base.EVICTIONS
FULL = 7          # the three slices of an expert
SLICES = 3


class CopyArrays(NamedTuple):
    copies: np.ndarray
    count: np.ndarray
    capacity: np.ndarray
    lru: np.ndarray
    head: np.ndarray
    tail: np.ndarray
    eviction: int


class CopyStore:
    """The arrays of one engine's copy store (mutated only by the kernels below).
    region_slices=None: slots of whole experts (capacity `slots`, rule `eviction`); else a region of that
    many slices per die (-1: unbounded)."""

    def __init__(self, layers: int, dies: int, experts: int, slots: np.ndarray, eviction: str,
                 region_slices: int | None = None):
        if region_slices is None:
            keys, rule = layers * experts, EVICTION_CODES[eviction]
            capacity = np.ascontiguousarray(slots, dtype=np.int64)
        else:
            unbounded = region_slices < 0
            keys = layers * experts * SLICES
            capacity = np.full(dies, keys if unbounded else region_slices, dtype=np.int64)
            rule = EVICT_UNBOUNDED if unbounded else EVICT_REGION
        self.region = region_slices is not None
        self.arrays = CopyArrays(np.zeros((layers, dies, experts), dtype=np.uint8), np.zeros(dies, dtype=np.int64),
                                 capacity, np.zeros((dies, keys, 4), dtype=np.int32),
                                 np.full(dies, -1, dtype=np.int64), np.full(dies, -1, dtype=np.int64), rule)

    @property
    def copies(self) -> np.ndarray:
        return self.arrays.copies

    @property
    def held(self) -> int:
        """Copies held: experts (slots) or experts with at least one slice (region)."""
        return int(self.arrays.count.sum()) if not self.region else int(np.count_nonzero(self.arrays.copies))

    def copies_of_layer(self, layer: int) -> np.ndarray:
        """(D,) experts of `layer` each die holds a copy (or a slice of one) of (a fresh array)."""
        return np.count_nonzero(self.arrays.copies[layer], axis=1).astype(np.int64)


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


@njit(nogil=True, cache=True, inline="always")
def _refresh(lru, head, tail, d, idx):
    if tail[d] != idx:   # already the most recently used: unlink + append would change nothing
        _unlink(lru, head, tail, d, idx)
        _append(lru, head, tail, d, idx)


# ---- slots: whole experts, in task order (the waferview profile) -----------------------------------

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
            _refresh(lru, head, tail, d, idx)
            lru[d, idx, LAST_USED] = now
            hits += 1
    return hits


@njit(nogil=True, cache=True, inline="always")
def _copy_expert(copies, count, capacity, lru, head, tail, eviction, layer, d, e, now):
    """Write a whole-expert copy of (layer, e) to die d under the slot rules; returns (copied, evicted)."""
    E = copies.shape[2]
    if count[d] >= capacity[d]:
        if eviction == EVICT_NEVER or count[d] == 0:
            return False, 0
        victim = head[d]
        if lru[d, victim, LAST_USED] >= now:   # a copy used in this very layer is never the victim
            return False, 0
        if eviction == EVICT_ADMIT and lru[d, victim, READS] >= lru[d, layer * E + e, READS]:
            return False, 0
        vl = victim // E
        _unlink(lru, head, tail, d, victim)
        copies[vl, d, victim - vl * E] = 0
        count[d] -= 1
        evicted = 1
    else:
        evicted = 0
    copies[layer, d, e] = FULL
    count[d] += 1
    idx = layer * E + e
    lru[d, idx, LAST_USED] = now
    _append(lru, head, tail, d, idx)
    return True, evicted


@njit(nogil=True, cache=True)
def apply_copies(store, layer, want, task_e, task_d, task_src, now, copied):
    """Copy expert task_e[t] to die task_d[t] for each remote task with want[t], in task order.

    A die with no free slot skips the copy (EVICT_NEVER, the paper), or drops its least recently used
    copy first (EVICT_LRU), or does so only when it has read the new expert more often than the victim
    (EVICT_ADMIT: a copy read once is not worth a copy read often, so cyclic or random reuse larger
    than the copy space does not flush it). A copy used in this very layer is never the victim.
    Sets copied[t]; returns the number of evictions.
    """
    copies, count, capacity, lru, head, tail = store.copies, store.count, store.capacity, store.lru, store.head, \
        store.tail
    eviction = store.eviction
    evictions = 0
    for t in range(task_e.shape[0]):
        copied[t] = False
        d = task_d[t]
        e = task_e[t]
        if not want[t] or task_src[t] == d or copies[layer, d, e]:
            continue
        ok, evicted = _copy_expert(copies, count, capacity, lru, head, tail, eviction, layer, d, e, now)
        copied[t] = ok
        evictions += evicted
    return evictions


# ---- regions: slices, in event time (the study) ----------------------------------------------------

@njit(nogil=True, cache=True, inline="always")
def _store_slice(copies, count, capacity, lru, head, tail, eviction, layer, d, e, m):
    """The study's region store of slice m of (layer, e) on die d: refresh if present, else add and evict the
    least recently used slices beyond the capacity (unbounded: add only). Returns the evictions."""
    E = copies.shape[2]
    key = (layer * E + e) * SLICES + m
    bit = np.uint8(1 << m)
    if copies[layer, d, e] & bit:
        if eviction == EVICT_REGION:
            _refresh(lru, head, tail, d, key)
        return 0
    copies[layer, d, e] |= bit
    count[d] += 1
    if eviction == EVICT_UNBOUNDED:
        return 0
    _append(lru, head, tail, d, key)
    evicted = 0
    while count[d] > capacity[d]:
        victim = head[d]
        _unlink(lru, head, tail, d, victim)
        vm = victim % SLICES
        ve = victim // SLICES
        vl = ve // E
        copies[vl, d, ve - vl * E] &= np.uint8(~(1 << vm) & 0xFF)
        count[d] -= 1
        evicted += 1
    return evicted


@njit(nogil=True, cache=True)
def holds_slice(store, layer, d, e, m):
    """Does die d hold slice m of (layer, e) as a copy (homes are not in the store)?"""
    return (store.copies[layer, d, e] >> m) & 1 == 1


@njit(nogil=True, cache=True, inline="always")
def read_slice_of(copies, lru, head, tail, eviction, layer, d, e, m, now):
    """read_slice on the store's arrays (for event loops, which fetch them once)."""
    E = copies.shape[2]
    if eviction == EVICT_REGION:
        if (copies[layer, d, e] >> m) & 1 == 1:   # only listed keys may move (a partial copy lacks some)
            _refresh(lru, head, tail, d, (layer * E + e) * SLICES + m)
    elif eviction < EVICT_REGION and copies[layer, d, e]:
        idx = layer * E + e
        _refresh(lru, head, tail, d, idx)
        lru[d, idx, LAST_USED] = now


@njit(nogil=True, cache=True)
def read_slice(store, layer, d, e, m, now):
    """A local read of d's copy of slice m: the copy becomes the most recently used."""
    read_slice_of(store.copies, store.lru, store.head, store.tail, store.eviction, layer, d, e, m, now)


@njit(nogil=True, cache=True, inline="always")
def write_slice_of(copies, count, capacity, lru, head, tail, eviction, layer, d, e, m, now):
    """write_slice on the store's arrays."""
    if eviction >= EVICT_REGION:
        held = (copies[layer, d, e] >> m) & 1 == 1
        evicted = _store_slice(copies, count, capacity, lru, head, tail, eviction, layer, d, e, m)
        return not held, evicted
    if copies[layer, d, e]:
        return False, 0
    return _copy_expert(copies, count, capacity, lru, head, tail, eviction, layer, d, e, now)


@njit(nogil=True, cache=True)
def write_slice(store, layer, d, e, m, now):
    """Write slice m of (layer, e) to die d's copies; returns (written, evictions). Slots copy the whole
    expert at its first slice (the others then find it held)."""
    return write_slice_of(store.copies, store.count, store.capacity, store.lru, store.head, store.tail,
                          store.eviction, layer, d, e, m, now)


@njit(nogil=True, cache=True)
def count_read(store, layer, d, e):
    """An expert read away from its home die (the admit rule's counts)."""
    if store.eviction == EVICT_ADMIT:
        store.lru[d, layer * store.copies.shape[2] + e, READS] += 1


@njit(nogil=True, cache=True)
def layer_copies(store, home, layer, task_e, task_d, task_src, want, now, copied):
    """A layer's copy store operations in task order (for link models without event time): the reads' touches,
    then the wanted copies of remote reads. Returns (reads served by a copy, evictions); sets copied[t]."""
    if store.eviction < EVICT_REGION:
        hits = touch_copies(store, home, layer, task_e, task_d, task_src, now)
        return hits, apply_copies(store, layer, want, task_e, task_d, task_src, now, copied)
    hits = 0
    evictions = 0
    for t in range(task_e.shape[0]):
        d = task_d[t]
        e = task_e[t]
        if home[e] != d and task_src[t] == d:
            hits += 1
            for m in range(SLICES):
                read_slice(store, layer, d, e, m, now)
    for t in range(task_e.shape[0]):
        copied[t] = False
        d = task_d[t]
        if want[t] and task_src[t] != d:
            for m in range(SLICES):
                written, evicted = write_slice(store, layer, d, task_e[t], m, now)
                copied[t] = copied[t] or written
                evictions += evicted
    return hits, evictions
