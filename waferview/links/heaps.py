"""Binary heaps on arrays, with exactly CPython heapq's algorithm (heappush = append + _siftdown, heappop =
move the last item to the root + _siftup that walks the smaller child down to a leaf, then _siftdown;
heapify = _siftup from the last parent up). The study's simulator keeps its events and wait queues in heapq
lists whose items compare on part of their state only, so equal keys pop in the order this exact sequence
of moves gives; the circuit model must make the same moves to give the same times.

Two orders, each read live where it must be (a stage's time can change while it sits in a wait queue, as in
the study):
  by time    stage a before b  iff  time[a] < time[b]        (the heads of released queues; the event heap,
                                                              whose times never change, keeps them inline)
  waiting    entry i before j  iff  (priority desc, time of its stage asc, arrival asc)  (a resource's queue),
             read from one live array, wait_key[s] = time - priority x PRIORITY_STEP, that the engine updates
             wherever the time of a queued stage changes
Heaps are (items, length) with items an int64 array; the wait queues share two flat arrays (stage ids and
arrival numbers), each queue a segment starting at `base` (a view per queue would cost a reference count).
"""

from __future__ import annotations

from numba import njit


# ---- by time: items are stage ids -----------------------------------------------------------------

@njit(nogil=True, cache=True, inline="always")
def _down_time(heap, start, pos, time):
    item = heap[pos]
    while pos > start:
        parent = (pos - 1) >> 1
        if time[item] < time[heap[parent]]:
            heap[pos] = heap[parent]
            pos = parent
            continue
        break
    heap[pos] = item


@njit(nogil=True, cache=True, inline="always")
def push_time(heap, n, item, time):
    """Push `item`; returns the new length (heap needs room for it)."""
    heap[n] = item
    _down_time(heap, 0, n, time)
    return n + 1


@njit(nogil=True, cache=True, inline="always")
def pop_time(heap, n, time):
    """Pop the first item; returns (item, new length)."""
    last = heap[n - 1]
    n -= 1
    if n == 0:
        return last, 0
    first = heap[0]
    heap[0] = last
    pos = 0
    child = 1
    while child < n:
        if child + 1 < n:   # the right child unless the left is strictly smaller, without a branch
            child += time[heap[child + 1]] <= time[heap[child]]
        heap[pos] = heap[child]
        pos = child
        child = 2 * pos + 1
    heap[pos] = last
    _down_time(heap, 0, pos, time)
    return first, n


# ---- by time, keys alongside: for a heap whose items' times never change while they sit in it (the event
# heap), the same moves with each item's time stored next to it (no lookup through the item per comparison)

@njit(nogil=True, cache=True, inline="always")
def _down_keyed(heap, keys, pos, item, key):
    """heapq's _siftdown of (item, key) from `pos` (to the root at most)."""
    while pos > 0:
        parent = (pos - 1) >> 1
        if key < keys[parent]:
            heap[pos] = heap[parent]
            keys[pos] = keys[parent]
            pos = parent
            continue
        break
    heap[pos] = item
    keys[pos] = key


@njit(nogil=True, cache=True, inline="always")
def push_keyed(heap, keys, n, item, key):
    """Push `item` with time `key`; returns the new length."""
    _down_keyed(heap, keys, n, item, key)
    return n + 1


@njit(nogil=True, cache=True, inline="always")
def pop_keyed(heap, keys, n):
    """Pop the first item; returns (item, new length)."""
    last, last_key = heap[n - 1], keys[n - 1]
    n -= 1
    if n == 0:
        return last, 0
    first = heap[0]
    pos = 0
    child = 1
    while child < n:
        if child + 1 < n:   # as in pop_time
            child += keys[child + 1] <= keys[child]
        heap[pos] = heap[child]
        keys[pos] = keys[child]
        pos = child
        child = 2 * pos + 1
    _down_keyed(heap, keys, pos, last, last_key)
    return first, n


# ---- waiting: a resource's queue row (stage ids and arrival numbers side by side) ------------------

PRIORITY_STEP = 1 << 52    # wait_key = time - priority x this (times in a layer stay far below it: 52 days in ns)


@njit(nogil=True, cache=True, inline="always")
def wait_key(time, priority):
    """A stage's place in a wait queue before its arrival number: priority desc, then time asc, in one int64."""
    return time - priority * PRIORITY_STEP


@njit(nogil=True, cache=True, inline="always")
def _first(si, qi, sj, qj, key):
    """Whether entry (stage si, arrival qi) comes before (sj, qj), as 0 or 1 and without a branch (a heap's
    child choice is a coin toss to a branch predictor)."""
    ki, kj = key[si], key[sj]
    return (ki < kj) | ((ki == kj) & (qi < qj))


@njit(nogil=True, cache=True, inline="always")
def _down_wait(stages, seqs, base, start, pos, key):
    s, q = stages[base + pos], seqs[base + pos]
    while pos > start:
        parent = (pos - 1) >> 1
        if _first(s, q, stages[base + parent], seqs[base + parent], key):
            stages[base + pos] = stages[base + parent]
            seqs[base + pos] = seqs[base + parent]
            pos = parent
            continue
        break
    stages[base + pos] = s
    seqs[base + pos] = q


@njit(nogil=True, cache=True, inline="always")
def _up_wait(stages, seqs, base, n, pos, key):
    start = pos
    s, q = stages[base + pos], seqs[base + pos]
    child = 2 * pos + 1
    while child < n:
        if child + 1 < n:   # as in pop_time: the right child unless the left comes strictly first
            child += 1 - _first(stages[base + child], seqs[base + child], stages[base + child + 1],
                                seqs[base + child + 1], key)
        stages[base + pos] = stages[base + child]
        seqs[base + pos] = seqs[base + child]
        pos = child
        child = 2 * pos + 1
    stages[base + pos] = s
    seqs[base + pos] = q
    _down_wait(stages, seqs, base, start, pos, key)


@njit(nogil=True, cache=True, inline="always")
def push_wait(stages, seqs, base, n, stage, seq, key):
    stages[base + n] = stage
    seqs[base + n] = seq
    _down_wait(stages, seqs, base, 0, n, key)
    return n + 1


@njit(nogil=True, cache=True, inline="always")
def pop_wait(stages, seqs, base, n, key):
    """Drop the first entry of the queue at `base`; returns the new length."""
    n -= 1
    if n > 0:
        stages[base] = stages[base + n]
        seqs[base] = seqs[base + n]
        _up_wait(stages, seqs, base, n, 0, key)
    return n


@njit(nogil=True, cache=True, inline="always")
def heapify_wait(stages, seqs, base, n, key):
    for pos in range(n // 2 - 1, -1, -1):
        _up_wait(stages, seqs, base, n, pos, key)
