"""Placement and predictor modes: one small module per mode behind one interface (see base.py),
and this registry. Registry order is the cycle order of the live view's `p` and `r` keys.

Adding a mode: write one module (its state NamedTuple, its numba kernel registered with waferview.modes,
a class following base.PlacementMode or base.PredictorMode, `MODE = TheClass`) and add one line below
(name -> module path). This module stays light (no numba) so `--help` can list the names.
"""

from __future__ import annotations

import importlib

from waferview.errors import InputError

_PLACEMENT_MODULES = {
    "base": "waferview.policies.placement_base",   # active experts round-robin over dies, ignoring where weights live
    "ep": "waferview.policies.placement_ep",       # every expert on its home die
    "allo": "waferview.policies.placement_allo",   # the paper's Algorithm 1 (placement-aware, load-balanced)
}
_PREDICTOR_MODULES = {
    "off": "waferview.policies.predictor_off",          # no copies
    "heatmap": "waferview.policies.predictor_heatmap",  # the paper's cross-token heatmap, demand-triggered copies
    "oracle": "waferview.policies.predictor_oracle",    # knows the next step's routing: the upper bound
    "lru": "waferview.policies.predictor_lru",          # copy every remote read (the eviction rule decides when full)
}

PLACEMENTS: tuple[str, ...] = tuple(_PLACEMENT_MODULES)
PREDICTORS: tuple[str, ...] = tuple(_PREDICTOR_MODULES)

# The paper's five strategies, in its order: (name, placement, predictor).
PAPER_STRATEGIES: tuple[tuple[str, str, str], ...] = (
    ("Base", "base", "off"),
    ("EP", "ep", "off"),
    ("Pred Only", "base", "heatmap"),
    ("Allo Only", "allo", "off"),
    ("Allo+Pred", "allo", "heatmap"),
)


def _load(kind: str, table: dict, name: str):
    if name not in table:
        raise InputError(f"unknown {kind} mode {name!r}: expected one of {', '.join(table)}")
    return importlib.import_module(table[name]).MODE


def get_placement(name: str):
    """The placement mode object registered under `name` (InputError for an unknown name)."""
    return _load("placement", _PLACEMENT_MODULES, name)


def get_predictor(name: str):
    """The predictor mode object registered under `name` (InputError for an unknown name)."""
    return _load("predictor", _PREDICTOR_MODULES, name)
