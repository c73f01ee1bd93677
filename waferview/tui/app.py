"""The live view: `make_app(...)` builds the app for the CLI, the tests and `python -m`.

The engine runs on a worker thread (waferview.tui.driver.ReplayDriver); the app receives immutable
ViewState snapshots through a message that replaces any pending one, so stale frames are dropped rather
than queued, and draws them in one batch.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from waferview.policies import PLACEMENTS, PREDICTORS
from waferview.report.summary import summary_fields
from waferview.tui.diegrid import DieGrid
from waferview.tui.driver import DEFAULT_SPEED, ReplayDriver, ViewState
from waferview.tui.panels import ComparePanel, HeaderBar, Legend, StatsPanel, modes_label, per_second
from waferview.tui.screens import HelpScreen, SummaryScreen

WIDE_COMPARE_COLUMNS = 120   # from this width the two grids of a comparison sit side by side


def second_modes(placement: str, predictor: str) -> tuple[str, str]:
    """The mode a comparison starts with: Base against the paper's best, or the best against the current."""
    return ("base", "off") if (placement, predictor) == ("allo", "heatmap") else ("allo", "heatmap")


class StateUpdate(Message):
    """A new snapshot from the worker; a newer one replaces a pending older one."""

    def __init__(self, state: ViewState):
        super().__init__()
        self.state = state

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StateUpdate)


class ReplayScreen(Screen):
    """The main screen: header, wafer grid(s) with legend, side panel, footer."""

    def __init__(self, app: "WaferviewApp"):
        super().__init__()
        self.owner = app
        self.ready = False       # widgets composed and mounted (and not yet torn down at exit)

    def compose(self) -> ComposeResult:
        app = self.owner
        yield HeaderBar(app.facts_line, id="header")
        with Horizontal(id="body"):
            with Vertical(id="wafers"):
                yield Static(app.warning, id="hbm-warning", classes="" if app.warning else "-hidden")
                with Horizontal(id="grids"):
                    with Vertical(id="wafer-a", classes="wafer"):
                        yield Static("", id="title-a", classes="wafer-title")
                        yield DieGrid(app.mesh, app.link_capacity, id="grid-a")
                    with Vertical(id="wafer-b", classes="wafer"):
                        yield Static("", id="title-b", classes="wafer-title")
                        yield DieGrid(app.mesh, app.link_capacity, id="grid-b")
                yield Legend(id="legend")
            with Vertical(id="side"):
                yield StatsPanel(app.layers, id="stats")
                yield ComparePanel(app.layers, id="compare-stats")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # the widgets drawn on every snapshot, looked up once
        self.header = self.query_one(HeaderBar)
        self.grid_a, self.grid_b = self.query_one("#grid-a", DieGrid), self.query_one("#grid-b", DieGrid)
        self.title_a, self.title_b = self.query_one("#title-a", Static), self.query_one("#title-b", Static)
        self.stats, self.compare_stats = self.query_one(StatsPanel), self.query_one(ComparePanel)
        self.ready = True
        self.set_class(self.app.size.width < WIDE_COMPARE_COLUMNS, "-narrow")
        self.owner.screen_ready()

    def on_unmount(self) -> None:
        self.ready = False

    def on_resize(self, event) -> None:
        self.set_class(event.size.width < WIDE_COMPARE_COLUMNS, "-narrow")


class WaferviewApp(App):
    CSS_PATH = "waferview.tcss"
    TITLE = "waferview replay"

    BINDINGS = [
        Binding("space", "toggle_pause", "Pause", priority=True),
        Binding("n", "step", "Step"),
        Binding("plus,equals_sign", "speed(1)", "Faster", show=False),
        Binding("minus,underscore", "speed(-1)", "Slower", show=False),
        Binding("p", "cycle('placement')", "Placement"),
        Binding("r", "cycle('predictor')", "Predictor"),
        Binding("P", "cycle('placement', True)", "B placement", show=False),
        Binding("R", "cycle('predictor', True)", "B predictor", show=False),
        Binding("c", "compare", "Compare"),
        Binding("s", "summary", "Summary", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit", priority=True),
    ]

    def __init__(self, driver: ReplayDriver, *, mesh, link_capacity: float, layers: int, facts_line: str,
                 warning: str = "", autostart: bool = True):
        super().__init__()
        self.driver = driver
        self.mesh = mesh
        self.link_capacity = link_capacity
        self.layers = layers
        self.facts_line = facts_line
        self.warning = warning
        self.autostart = autostart
        self.state: ViewState | None = None
        self._summary_shown_for_run = 0
        self._binding_state = None
        self.placements, self.predictors = PLACEMENTS, PREDICTORS     # registry order = cycle order

    # ---- layout -------------------------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        self.main_screen = ReplayScreen(self)
        return self.main_screen

    def screen_ready(self) -> None:
        """Called by the main screen once its widgets exist: first draw, then start the engine."""
        self._draw(self.driver.state())
        if self.autostart:
            self.run_engine()

    # ---- worker -------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="engine", description="replay engine")
    def run_engine(self) -> None:
        worker = get_current_worker()
        self.driver.run(lambda: worker.is_cancelled, lambda state: self.post_message(StateUpdate(state)))

    def on_state_update(self, message: StateUpdate) -> None:
        self._draw(message.state)

    # ---- drawing ------------------------------------------------------------------------------------
    def _draw(self, state: ViewState) -> None:
        self.state = state
        screen = self.main_screen
        if not screen.ready:                 # not composed yet, or torn down at exit
            return
        comparing = state.compare is not None or screen.has_class("-compare")
        screen.set_class(state.paused, "-paused")
        screen.header.show(state)
        wanted = (self.driver.wanted_mode("placement"), self.driver.wanted_mode("predictor"))
        screen.grid_a.show(state.main.frame)
        screen.title_a.update(self._title("A " if comparing else "", state.main, wanted))
        screen.stats.show(state.main, wanted)
        if comparing:
            b = state.compare
            if b is not None:
                wanted_b = (self.driver.wanted_mode("placement", compare=True) or b.placement,
                            self.driver.wanted_mode("predictor", compare=True) or b.predictor)
                screen.grid_b.show(b.frame)
                screen.title_b.update(self._title("B ", b, wanted_b))
            screen.compare_stats.show(state.main, b, state.catching_up)
        binding_state = (self.driver.paused, state.main.summary is not None, state.compare is not None)
        if binding_state != self._binding_state:        # footer: dim `n` while playing, etc.
            self._binding_state = binding_state
            self.refresh_bindings()
        if state.main.done and state.main.summary is not None and self._summary_shown_for_run < state.run:
            if self.driver.loop:
                self._summary_shown_for_run = state.run
                self.notify(f"end of trace: {per_second(state.main.summary.get('throughput_tokens_per_s'))}; "
                            "starting over (--loop)")
            elif state.compare is None or state.compare.summary is not None:
                self._summary_shown_for_run = state.run
                self.action_summary()

    def _redraw(self) -> None:
        """Draw the last snapshot again after a key (the worker owns the live data: the snapshot is
        immutable, so only the controls' own fields are refreshed here)."""
        if self.state is not None:
            self._draw(replace(self.state, paused=self.driver.paused, speed=self.driver.speed))

    def _title(self, prefix: str, view, wanted) -> str:
        f = view.frame
        ran = (f.placement, f.predictor) if f is not None else wanted
        text = f"{prefix}{modes_label(*ran)}"
        if f is None and (not self.driver.paused or self.driver.pending_steps):
            return text + " · starting (a first run compiles the kernels)"
        if wanted != ran:
            text += f" → {modes_label(*wanted)} next layer"
        return text

    # ---- command palette (ctrl+p): every mode by name, beside the keys that cycle them ----------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name in self.placements:
            yield SystemCommand(f"Placement: {name}", "use this placement mode from the next layer",
                                partial(self.use_mode, "placement", name))
        for name in self.predictors:
            yield SystemCommand(f"Predictor: {name}", "use this predictor mode from the next layer",
                                partial(self.use_mode, "predictor", name))
        yield SystemCommand("Compare", "open or close the side-by-side comparison (c)", self.action_compare)
        yield SystemCommand("Pause / resume", "(space)", self.action_toggle_pause)
        if self.state is not None and self.state.main.summary is not None:
            yield SystemCommand("Summary", "the run's summary (s)", self.action_summary)

    def use_mode(self, kind: str, name: str, compare: bool = False) -> None:
        self.driver.set_mode(kind, name, compare=compare)
        self._redraw()

    # ---- actions ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "step":
            return True if self.driver.paused else None      # dimmed while playing
        if action == "cycle" and len(parameters) > 1 and parameters[1]:
            return True if self.driver.compare is not None else None
        if action == "summary":
            return True if (self.state and self.state.main.summary is not None) else None
        return True

    def action_toggle_pause(self) -> None:
        self.driver.toggle_pause()
        self._redraw()

    def action_step(self) -> None:
        if self.driver.paused:
            self.driver.request_step()
            self._redraw()

    def action_speed(self, direction: int) -> None:
        speed = self.driver.change_speed(direction)
        self.notify(f"speed: {speed} layers/s" if speed else "speed: max", timeout=1.5)
        self._redraw()

    def action_cycle(self, kind: str, compare: bool = False) -> None:
        if compare and self.driver.compare is None:
            return
        names = self.placements if kind == "placement" else self.predictors
        current = self.driver.wanted_mode(kind, compare=compare)
        name = names[(names.index(current) + 1) % len(names)] if current in names else names[0]
        self.use_mode(kind, name, compare)

    def action_compare(self) -> None:
        screen = self.main_screen
        if screen.has_class("-compare"):
            self.driver.close_compare()
            screen.remove_class("-compare")
        else:
            screen.add_class("-compare")
            screen.grid_b.show(None)
            modes = second_modes(self.driver.wanted_mode("placement"), self.driver.wanted_mode("predictor"))
            screen.title_b.update(f"B {modes_label(*modes)} (starting)")
            self.driver.open_compare(*modes)
        self._redraw()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    def action_summary(self) -> None:
        state = self.state
        if state is None or state.main.summary is None or isinstance(self.screen, SummaryScreen):
            return
        summaries = [("A " + modes_label(state.main.placement, state.main.predictor), state.main.summary)]
        if state.compare is not None and state.compare.summary is not None:
            summaries.append(("B " + modes_label(state.compare.placement, state.compare.predictor),
                              state.compare.summary))
        self.push_screen(SummaryScreen(summaries))

    async def action_quit(self) -> None:
        self.driver.stop()
        self.exit()

    def on_unmount(self) -> None:
        self.driver.stop()


def _default_summarize(trace):
    def summarize(engine) -> dict:
        # exactly what `waferview summary --json` prints: the trace facts, then the engine's summary
        return summary_fields(trace, engine.summary())
    return summarize


def make_app(trace, hardware, *, batch: int | None = None, seed: int = 0, placement: str = "allo",
             predictor: str = "heatmap", options=None, paused: bool = False, loop: bool = False,
             speed: int = DEFAULT_SPEED, engine_factory: Callable | None = None,
             summarize: Callable | None = None, autostart: bool = True) -> WaferviewApp:
    """The app over one trace on one wafer. `engine_factory` defaults to waferview.sim.engine.Engine
    (tests may pass a stand-in with the same constructor)."""
    if engine_factory is None:
        from waferview.sim.engine import Engine as engine_factory

    def make_engine(placement_name: str, predictor_name: str):
        return engine_factory(trace, hardware, batch=batch, seed=seed, placement=placement_name,
                              predictor=predictor_name, options=options)

    driver = ReplayDriver(make_engine, summarize or _default_summarize(trace), placement=placement,
                          predictor=predictor, paused=paused, loop=loop, speed=speed)
    engine = driver.engine
    source = Path(trace.source).name if trace.source else "in-memory trace"
    batch_shown = getattr(engine.batch, "size", engine.batch)
    reused = " (requests reused)" if getattr(engine, "batch_note", None) else ""
    facts = f"{trace.model.key} · {hardware.width}x{hardware.height} · batch {batch_shown:,}{reused} · {source}"
    notes = []
    if not engine.fits_in_hbm:
        # at the precision the engine runs (--bytes-per-param), not the model's BF16 default
        capacity = getattr(engine, "capacity", None)
        per_expert = getattr(capacity, "expert_bytes", 0) or trace.model.expert_bytes
        tb = per_expert * trace.model.num_experts * trace.model.moe_layers / 1e12
        notes.append(f"! {trace.model.key}: {tb:.2f} TB of expert weights do not fit this wafer's usable HBM "
                     f"({hardware.num_dies} x {hardware.usable_hbm_bytes / 1e9:.0f} GB); simulated anyway, "
                     "no room for copies")
    link_capacity = float(hardware.link_bytes_per_ns) * float(getattr(hardware, "link_efficiency", 1.0))
    return WaferviewApp(driver, mesh=engine.mesh, link_capacity=link_capacity, layers=trace.model.moe_layers,
                        facts_line=facts, warning="\n".join(notes), autostart=autostart)
