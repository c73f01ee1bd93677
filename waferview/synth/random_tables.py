"""Random-number helpers for the synthetic generator's numba kernel: a xorshift64* stream per request,
multiply-shift bounded draws (no division) and Walker/Vose alias tables (O(1) draws from a
distribution, small enough to stay in cache)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


def alias_tables(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias tables for every distribution on the last axis: draw i uniformly, keep it
    with probability accept[i] (as a 2**21 threshold), else take alias[i]. O(1) per draw, and small
    enough (E entries per layer) to stay in cache, unlike a binary search or a big lookup table."""
    flat = probs.reshape(-1, probs.shape[-1])
    n = flat.shape[1]
    accept = np.empty(flat.shape, np.uint64)
    alias = np.empty(flat.shape, np.int16)
    for row in range(flat.shape[0]):
        scaled = flat[row] / flat[row].sum() * n
        acc = np.ones(n)
        ali = np.arange(n)
        small = [i for i in range(n) if scaled[i] < 1.0]
        large = [i for i in range(n) if scaled[i] >= 1.0]
        while small and large:
            s_i, l_i = small.pop(), large.pop()
            acc[s_i], ali[s_i] = scaled[s_i], l_i
            scaled[l_i] -= 1.0 - scaled[s_i]
            (small if scaled[l_i] < 1.0 else large).append(l_i)
        accept[row] = (np.clip(acc, 0.0, 1.0) * 2.0 ** 21).astype(np.uint64)
        accept[row][acc >= 1.0] = np.uint64(2 ** 21)
        alias[row] = ali
    return accept.reshape(probs.shape), alias.reshape(probs.shape)


@njit(nogil=True, cache=True, inline="always")
def next_bits(state):
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return (x * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(11)   # 53 random bits


@njit(nogil=True, cache=True, inline="always")
def chance(state, threshold):
    """True with probability threshold / 2**53 (thresholds come from threshold)."""
    return next_bits(state) < threshold


@njit(nogil=True, cache=True, inline="always")
def below(state, n):
    """Uniform in [0, n) from the top 32 bits, by multiplication (no division)."""
    return np.int64(((next_bits(state) >> np.uint64(21)) * np.uint64(n)) >> np.uint64(32))


def binomial_table(k: int, prob: float):
    pmf = np.array([math.comb(k, c) * prob ** c * (1 - prob) ** (k - c) for c in range(k + 1)])
    return alias_tables((pmf + 1e-300)[None, None])


def threshold(prob: float) -> np.uint64:
    return np.uint64(min(max(prob, 0.0), 1.0) * 2.0 ** 53)


@njit(nogil=True, cache=True, inline="always")
def sample(state, accept, alias, a, b):
    """One draw from the alias table accept[a, b, :], alias[a, b, :] (branch-free: the choice is
    random, so a branch would be mispredicted half the time)."""
    x = next_bits(state)                     # top 32 bits pick i, the low 21 bits decide keep-or-alias
    i = np.int64(((x >> np.uint64(21)) * np.uint64(accept.shape[2])) >> np.uint64(32))
    keep = np.int64((x & np.uint64(0x1FFFFF)) < accept[a, b, i])
    other = np.int64(alias[a, b, i])
    return other + (i - other) * keep
