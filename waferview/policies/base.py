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


# the study's choices, each one switch (waferview.profiles sets them all for --profile paper)
CHOICES = {
    "route_order": ("xy", "yx"),                    # dimension order of routes: x first, or y first (the study)
    "base_order": ("seeded", "first-seen"),         # base: seeded round-robin, or the study's by first appearance
    "allo_planner": ("waferview", "study"),         # allo: the paper's Algorithm 1 as described, or the study's
    "read_from": ("nearest", "home"),               # a remote read: the nearest holder, or always the home die
    "heatmap_rule": ("waferview", "study"),         # the heatmap predictor's rule (sim.heatmap / heatmap_study)
    "batch_order": ("seeded", "study"),             # the batch: a seeded permutation, or the study's file order
    "prefill_rule": ("position", "study"),          # step 0 is the prefill, or (the study) only when its last
}                                                   # request has a prompt of more than one row
STUDY_REGION_BYTES = 50 * 2 ** 30                   # the study's copy region per die (its "50 GB", as GiB)


def copy_region_label(region) -> str:
    """PolicyOptions.copy_region as outputs name it: slots, unbounded, or a size in GiB (50GiB)."""
    if region is None:
        return "slots"
    return "unbounded" if region == "unbounded" else f"{region / 2 ** 30:g}GiB"


@dataclass(frozen=True)
class PolicyOptions:
    block_size: int = 50            # allo: tokens per block (the paper's 50)
    max_split: int = 5              # allo: an expert gets at least this many candidate dies (if there are)
    top_n: int | None = None        # heatmap: row top-n; None = ceil(0.2 * E)
    eviction: str = "admit"         # one of EVICTIONS (default admit, every predictor)
    copy_slots: int | None = None   # copies per die; None = the free HBM after weights and the reserve
    bytes_per_param: float = 2.0    # expert weight precision: 2 = BF16 (the paper), 1 = FP8, 0.5 = INT4
    circuit_rules: object = None    # links.circuit_rules.CircuitRules: the study's discipline (None = all on)
    copy_region: int | str | None = None   # None: slots (waferview); bytes per die of a slice region; "unbounded"
    max_steps: int | None = None    # at most this many steps (the prefill included); None = the whole trace
    route_order: str = "xy"
    base_order: str = "seeded"
    allo_planner: str = "waferview"
    read_from: str = "nearest"
    heatmap_rule: str = "waferview"
    batch_order: str = "seeded"
    prefill_rule: str = "position"
    profile: str = "waferview"      # the profile these options were resolved from (reported; see waferview.profiles)

    def __post_init__(self):
        if self.circuit_rules is None:
            from waferview.links.circuit_rules import CircuitRules
            object.__setattr__(self, "circuit_rules", CircuitRules())
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"--{name.replace('_', '-')} {getattr(self, name)!r}: expected one of "
                                 f"{', '.join(allowed)}")
        region = self.copy_region
        if region is not None and region != "unbounded":
            if isinstance(region, bool) or not isinstance(region, numbers.Integral) or not 1 <= region <= 1 << 50:
                raise InputError(f"--copy-region {region!r}: expected slots, unbounded or a size such as 50GiB")
        if self.max_steps is not None:
            _whole("--max-steps", self.max_steps, 1)
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
