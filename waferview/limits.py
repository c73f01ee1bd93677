"""Bounds on the numbers a user can pass, shared by the command line (checked while parsing, before any
file is read) and the engine's own checks (for callers of the Python API). Kept free of heavy imports:
`waferview --help` loads this module.

Every integer that reaches a numba kernel is bounded so that it and every product the kernels form
with it fit in int64; the bounds are far beyond any meaningful value.
"""

INT64_MAX = 2 ** 63 - 1

# --batch: requests replayed together. 64 times the paper's largest batch (16,384). The batch is never
# materialised (each request's multiplicity is arithmetic), but every per-step token count grows with it:
# beyond this a layer's FLOP count of a long-prefill trace nears 64-bit overflow (select_batch also
# checks the exact figure for the trace at hand).
MAX_BATCH = 1 << 20
BATCH_WHY = ("64x the paper's largest batch, 16,384; a larger batch only scales every count, toward "
             "64-bit overflow")

# --seed: any non-negative 64-bit integer.
MAX_SEED = INT64_MAX

# --block-size, --max-split, --top-n, --copy-slots: counts of tokens, dies, experts or copies, inside int32.
MAX_KNOB = 2 ** 31 - 1
