"""The interface of a link model: a waferview.modes.Mode whose kernel (registered with
modes.register_link_model) times one (step, layer); see modes.layer_costs for its contract."""

from __future__ import annotations

from waferview.modes import Mode


class LinkModel(Mode):
    pass
