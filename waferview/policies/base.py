"""The one interface every mode follows, and the options they share (plus the weight precision, which
every mode and the engine see through the same object).

A mode is a class (waferview.modes.Mode: `bind(ctx)` per engine, `kernel_state()`, `prepare()`) whose numba
kernel is registered for its state's NamedTuple class, so the engine's one loop runs it with no branch on
mode names:
  placement kernel(state, kctx, step, layer, counts[E], copies_l[D, E]) -> (task_expert, task_die, task_tokens)
    one task per (expert, die) pair; the tokens of an expert's tasks add up to its count.
  predictor kernel(state, kctx, step, layer, task_expert, task_die, task_source) -> (want[T], predicted[E], pred_mode)
    want[t]: copy task t's expert to its die (the engine copies only remote reads and enforces capacity and
    eviction); predicted = the union over dies of the predicted sets (for precision and recall), read when
    pred_mode is PRED_GIVEN; PRED_COPIED = "what was copied" (lru); PRED_NONE = no prediction this layer.
Adding a mode: one module (its State, its registered kernel, its class, `MODE = TheClass`) and one line in
policies/__init__.py.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from waferview.errors import InputError
from waferview.modes import Mode
from waferview.limits import MAX_KNOB   # a block or split larger than a layer's tokens or dies changes nothing

# when a die's copy space is full: admit (default) = the least recently used copy makes room only for an
# expert the die has read more often; lru = it always does; never = no more copies (the paper)
EVICTIONS = ("admit", "lru", "never")


@dataclass(frozen=True)
class PolicyOptions:
    block_size: int = 50            # allo: tokens per block (the paper's 50)
    max_split: int = 5              # allo: an expert gets at least this many candidate dies (if there are)
    top_n: int | None = None        # heatmap: row top-n; None = ceil(0.2 * E)
    eviction: str = "admit"         # one of EVICTIONS (default admit, every predictor)
    copy_slots: int | None = None   # copies per die; None = the free HBM after weights and the reserve
    bytes_per_param: float = 2.0    # expert weight precision: 2 = BF16 (the paper), 1 = FP8, 0.5 = INT4

    def __post_init__(self):
        _whole("--block-size", self.block_size, 1)
        _whole("--max-split", self.max_split, 1)
        if self.top_n is not None:
            _whole("--top-n", self.top_n, 1)
        if self.eviction not in EVICTIONS:
            raise InputError(f"--eviction {self.eviction!r}: expected one of {', '.join(EVICTIONS)}")
        if self.copy_slots is not None:
            _whole("--copy-slots", self.copy_slots, 0)
        bpp = self.bytes_per_param
        if isinstance(bpp, bool) or not isinstance(bpp, (int, float)) or not (0 < bpp <= 8):
            raise InputError(f"--bytes-per-param {bpp}: expected a number of bytes per weight in (0, 8], "
                             "e.g. 2 (BF16), 1 (FP8), 0.5 (INT4)")


def _whole(option: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= MAX_KNOB:
        lowest = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise InputError(f"{option} {value}: expected {lowest} (at most {MAX_KNOB:,})")


class PlacementMode(Mode):
    pass


class PredictorMode(Mode):
    active = True   # False only for "off": no precision/recall
