"""Profiles: named sets of defaults for the simulation's choices, one module each behind one interface (a
DESCRIPTION and a SETTINGS dict of option name -> value), and this registry. `--profile NAME` applies a
profile's settings to every option the command line leaves unset; an option given explicitly always wins,
so a user can walk from one profile to the other one switch at a time. Every output names the profile and
each choice. Light: `--help` lists the profiles without numba.

Adding a profile: one module and one line below.
"""

from __future__ import annotations

import importlib

from waferview.errors import InputError

_MODULES = {
    "waferview": "waferview.profiles.waferview",   # waferview's own model (the default)
    "paper": "waferview.profiles.paper",           # every choice the study's simulator makes
}
PROFILES: tuple[str, ...] = tuple(_MODULES)
DEFAULT_PROFILE = "waferview"


def get_profile(name: str):
    """The profile module registered under `name` (InputError for an unknown name)."""
    if name not in _MODULES:
        raise InputError(f"unknown profile {name!r}: expected one of {', '.join(_MODULES)}")
    return importlib.import_module(_MODULES[name])


def settings(name: str) -> dict:
    return dict(get_profile(name).SETTINGS)
