"""Link models: how a layer's transfers occupy the mesh and what the layer costs. One module per model behind
one interface (links/base.py), and this registry (light: `--help` lists the names without numba).

Adding a link model: one module with a class following base.LinkModel whose kernel is registered with
sim.kernel_api.register_link_model, and one line below (name -> module path).
"""

from __future__ import annotations

import importlib

from waferview.errors import InputError

_MODULES = {
    "fluid": "waferview.links.fluid",   # full-duplex bandwidth bound per link (waferview's model, the default)
}

LINK_MODELS: tuple[str, ...] = tuple(_MODULES)
DEFAULT_LINKS = "fluid"


def get_link_model(name: str):
    """The link model class registered under `name` (InputError for an unknown name)."""
    if name not in _MODULES:
        raise InputError(f"unknown link model {name!r}: expected one of {', '.join(_MODULES)}")
    return importlib.import_module(_MODULES[name]).MODE
