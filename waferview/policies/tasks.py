"""Kernel pieces shared by placement modes."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def active_experts(counts):
    """The experts with a non-zero count, in id order, and their counts (int64 arrays): one task each
    for the placements that never split an expert."""
    n = 0
    for e in range(counts.shape[0]):
        if counts[e] != 0:
            n += 1
    task_e = np.empty(n, dtype=np.int64)
    task_tok = np.empty(n, dtype=np.int64)
    j = 0
    for e in range(counts.shape[0]):
        if counts[e] != 0:
            task_e[j] = e
            task_tok[j] = counts[e]
            j += 1
    return task_e, task_tok


@njit(nogil=True, cache=True)
def copied_experts(copies_l):
    """(E,) uint8, non-zero for the experts some die holds a copy (or a slice) of in this layer: one pass in
    memory order, so the per-expert searches over every die (a strided column each) run only for those."""
    any_copy = np.zeros(copies_l.shape[1], dtype=np.uint8)
    for d in range(copies_l.shape[0]):
        for e in range(copies_l.shape[1]):
            any_copy[e] |= copies_l[d, e]
    return any_copy
