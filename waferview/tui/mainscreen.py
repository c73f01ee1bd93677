"""The main screen of the live view: header, warning and status lines, the wafer grid(s) with their
bottleneck lines and legend, the side panel (numbers, comparison or selection), footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from waferview.tui.diegrid import DieGrid
from waferview.tui.driver import ViewState
from waferview.tui.inspector import SelectionPanel
from waferview.tui.panels import ComparePanel, FitLine, HeaderBar, Legend, StatsPanel

WIDE_COMPARE_COLUMNS = 120   # from this width the two grids of a comparison sit side by side
SETUP_SHOWN_AFTER_S = 1.0    # setup shorter than this is not announced (no flicker)


class StateUpdate(Message):
    """A new snapshot from the worker; a newer one replaces a pending older one."""

    def __init__(self, state: ViewState):
        super().__init__()
        self.state = state

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StateUpdate)


def activity_text(state: ViewState | None, now: float) -> str:
    """The status line while the worker is busy (setup, re-simulation), once that lasted a second."""
    act = state.activity if state is not None else None
    if act is None or now - act.since < SETUP_SHOWN_AFTER_S:
        return ""
    elapsed = f"{now - act.since:,.1f} s"
    if act.total > 1:
        frac = max(0.0, min(1.0, act.done / act.total))
        bar = "█" * int(frac * 16) + "░" * (16 - int(frac * 16))
        return f"{act.label}  {bar} {100 * frac:3.0f}%  {elapsed}"
    return f"{act.label} …  {elapsed}"


class ReplayScreen(Screen):
    """The main screen: header, wafer grid(s) with legend, side panel, footer."""

    def __init__(self, app):   # the WaferviewApp
        super().__init__()
        self.owner = app
        self.ready = False       # widgets composed and mounted (and not yet torn down at exit)

    def compose(self) -> ComposeResult:
        s = self.owner.setup
        yield HeaderBar(s.facts, id="header")
        yield FitLine(s.warnings, id="hbm-warning")
        yield Static("", id="failure", classes="-hidden")
        yield Static("", id="status", classes="-hidden")
        with Horizontal(id="body"):
            with Vertical(id="wafers"):
                with Horizontal(id="grids"):
                    for side in "ab":
                        with Vertical(id=f"wafer-{side}", classes="wafer"):
                            yield Static("", id=f"title-{side}", classes="wafer-title")
                            yield DieGrid(s.mesh, s.link_rate, id=f"grid-{side}")
                            yield FitLine(id=f"bound-{side}", classes="bound-line")
                yield Legend(id="legend")
            with Vertical(id="side"):
                yield StatsPanel(s.layers, id="stats")
                yield ComparePanel(s.layers, id="compare-stats")
                yield SelectionPanel(s.mesh, s.home, s.expert_bytes, s.link_rate, id="selection")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # the widgets drawn on every snapshot, looked up once
        q = self.query_one
        self.header = q(HeaderBar)
        self.grids = {"a": q("#grid-a", DieGrid), "b": q("#grid-b", DieGrid)}
        self.titles = {"a": q("#title-a", Static), "b": q("#title-b", Static)}
        self.bounds = {"a": q("#bound-a", FitLine), "b": q("#bound-b", FitLine)}
        self.stats, self.compare_stats = q(StatsPanel), q(ComparePanel)
        self.selection = q(SelectionPanel)
        self.failure, self.status = q("#failure", Static), q("#status", Static)
        self.ready = True
        self.set_class(self.app.size.width < WIDE_COMPARE_COLUMNS, "-narrow")
        self.owner.screen_ready()

    def on_unmount(self) -> None:
        self.ready = False

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < WIDE_COMPARE_COLUMNS, "-narrow")

    def on_die_grid_picked(self, message: DieGrid.Picked) -> None:
        self.owner.select(message.element)


