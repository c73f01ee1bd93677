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
