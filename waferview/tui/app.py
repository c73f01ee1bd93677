"""The live view: `make_app(...)` builds the app for the CLI, the tests and `python -m`.

The engine is built and run on a daemon thread (waferview.tui.driver.ReplayDriver), so the screen is up
at once and `q` ends the process in every phase, even while a long numba call runs (the thread does not
hold the process open). The app receives immutable ViewState snapshots through a message that replaces
any pending one, so stale frames are dropped rather than queued, and draws each in one batch.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from functools import partial
from typing import Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from waferview.errors import InputError
from waferview.links import LINK_MODELS
from waferview.policies import PLACEMENTS, PREDICTORS
from waferview.tui.diegrid import Marks
from waferview.tui.driver import DEFAULT_SPEED, ReplayDriver, ViewState
from waferview.tui.factory import AppSetup, app_setup, engine_maker
from waferview.tui.fmt import header_variants
from waferview.tui.keys import KEYS
from waferview.tui.mainscreen import ReplayScreen, StateUpdate, activity_text
from waferview.tui.panels import modes_label, per_second
from waferview.tui.screens import HelpScreen, JumpScreen, SummaryScreen
from waferview.tui.selection import bound_lines, element_lattice, lattice_element, move_cursor

NOTICE_S = 4.0               # how long a notice stays on the status line


def second_modes(placement: str, predictor: str, predictors=PREDICTORS) -> tuple[str, str]:
    """The mode a comparison starts with: Base against the paper's best, or the best against the current
    (the best the source allows: a count-only source has no heatmap)."""
    best = ("allo", "heatmap" if "heatmap" in predictors else "off")
    return ("base", "off") if (placement, predictor) == best else best


class WaferviewApp(App):
    CSS_PATH = "waferview.tcss"
    TITLE = "waferview replay"

    BINDINGS = [Binding(k.keys, k.action, k.label, show=k.show, priority=k.priority,
                        key_display=k.display or None) for k in KEYS]

    def __init__(self, driver: ReplayDriver, setup: AppSetup, *, autostart: bool = True, record=None):
        super().__init__()
        self.driver = driver
        self.setup = setup
        self.mesh = setup.mesh
        self.layers = setup.layers
        self.autostart = autostart
        self.state: ViewState | None = None
        self.failure = None                  # the worker's Failure, once it failed (the CLI prints it)
        self.cursor: tuple[int, int] | None = None     # lattice position (selection.lattice_element)
        self.selected: tuple | None = None
        self._summary_shown_for_run = 0
        self._binding_state = None
        self._notice = ("", 0.0)
        self._quitting = False
        self.engine_thread: threading.Thread | None = None
        # registry order = cycle order; a count-only source has no heatmap to cycle to
        self.placements, self.predictors = PLACEMENTS, setup.predictors or PREDICTORS
        self.link_models = LINK_MODELS
        self.record = record                 # report.layer_replay.ReplayRecord (replay --record) or None
        self.record_error: str | None = None

    @property
    def facts_line(self) -> str:
        """The header's facts in full (model · mesh · batch · source): the screen abbreviates them to fit."""
        f = self.setup.facts
        return header_variants(f.model, f.mesh, f.batch, f.reused, f.source, f.synthetic, 10_000, f.profile,
                               f.links)[1]

    # ---- layout -------------------------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        self.main_screen = ReplayScreen(self)
        return self.main_screen

    def screen_ready(self) -> None:
        """Called by the main screen once its widgets exist: first draw, then start the engine thread."""
        self._draw(self.driver.state())
        self.set_interval(0.25, self._tick)
        if self.autostart:
            self.start_engine()

    # ---- the engine thread ----------------------------------------------------------------------------
    def start_engine(self) -> None:
        """The worker on a daemon thread: quitting never waits for it (a long numba call cannot be cut)."""
        if self.engine_thread is None:
            self.engine_thread = threading.Thread(target=self._engine_main, name="waferview engine", daemon=True)
            self.engine_thread.start()

    def _engine_main(self) -> None:
        self.driver.run(lambda: self._quitting, self._publish)

    def _publish(self, state: ViewState) -> None:
        try:
            self.post_message(StateUpdate(state))
        except RuntimeError:      # the event loop is gone: the app has exited
            pass

    def on_state_update(self, message: StateUpdate) -> None:
        self._draw(message.state)

    def _tick(self) -> None:
        """Keep the status line's elapsed time and notices current between snapshots."""
        if self.state is not None and self.main_screen.ready:
            self._draw_status(self.state)

    # ---- drawing ------------------------------------------------------------------------------------
    def _marks(self) -> Marks:
        cursor = lattice_element(*self.cursor, self.mesh.width) if self.cursor is not None else None
        return Marks(cursor=cursor, selected=self.selected)

    def _draw(self, state: ViewState) -> None:
        # the controls' own fields are the UI's: a snapshot made before a key press may carry old ones
        if state.paused != self.driver.paused or state.speed != self.driver.speed:
            state = replace(state, paused=self.driver.paused, speed=self.driver.speed)
        self.state = state
        screen = self.main_screen
        if not screen.ready:                 # not composed yet, or torn down at exit
            return
        with self.batch_update():
            self._draw_all(screen, state)
        self._after_draw(state)

    def _draw_all(self, screen: ReplayScreen, state: ViewState) -> None:
        comparing = state.compare is not None or screen.has_class("-compare")
        screen.set_class(state.paused, "-paused")
        screen.set_class(self.selected is not None, "-selected")
        screen.header.show(state)
        if state.failure is not None and self.failure is None:
            self.failure = state.failure
        screen.failure.update(f"! {self.failure.line}  (q quits)" if self.failure else "")
        screen.failure.set_class(self.failure is None, "-hidden")
        self._draw_status(state)
        marks = self._marks()
        wanted = (self.driver.wanted_mode("placement"), self.driver.wanted_mode("predictor"),
                  self.driver.wanted_mode("links"))
        views = [("a", state.main, wanted, "A " if comparing else "")]
        if comparing and state.compare is not None:
            b = state.compare
            views.append(("b", b, (self.driver.wanted_mode("placement", compare=True) or b.placement,
                                   self.driver.wanted_mode("predictor", compare=True) or b.predictor,
                                   self.driver.wanted_mode("links", compare=True) or b.links), "B "))
        for side, view, want, prefix in views:
            grid = screen.grids[side]
            grid.show(view.frame, marks)
            screen.titles[side].update(self._title(prefix, view, want))
            screen.bounds[side].set_variants(bound_lines(grid.bound))
        screen.stats.show(state.main, wanted, self._short_bound(screen.grids["a"].bound))
        if comparing:
            waiting = state.activity.label if state.activity is not None else ""
            screen.compare_stats.show(state.main, state.compare, waiting)
        if self.selected is not None:
            frames = [("A" if len(views) > 1 else "", state.main.frame)]
            if len(views) > 1:
                frames.append(("B", views[1][1].frame))
            screen.selection.show(self.selected, frames)

    @staticmethod
    def _short_bound(bound) -> str:
        return f"{bound.label} {100 * bound.share:.0f}%" if bound is not None else ""

    def _draw_status(self, state: ViewState) -> None:
        now = time.monotonic()
        text = activity_text(state, now)
        if not text and self._notice[0] and now < self._notice[1]:
            text = self._notice[0]
        status = self.main_screen.status
        if str(status.render()) != text:
            status.update(text)
        status.set_class(not text, "-hidden")

    def _after_draw(self, state: ViewState) -> None:
        binding_state = (self.driver.paused, state.main.done, state.compare is not None, state.ready,
                         state.main.position > 0)
        if binding_state != self._binding_state:        # footer: dim `n` while playing, etc.
            self._binding_state = binding_state
            self.refresh_bindings()
        if state.main.done and state.main.summary is not None and self._summary_shown_for_run < state.run:
            if self.driver.loop:
                self._summary_shown_for_run = state.run
                self.notice(f"end of trace (run {state.run}): "
                            f"{per_second(state.main.summary.get('throughput_tokens_per_s'))}; starting over")
            elif state.compare is None or state.compare.summary is not None:
                self._summary_shown_for_run = state.run
                self.action_summary()

    def notice(self, text: str) -> None:
        """A short message on the status line; the next one replaces it."""
        self._notice = (text, time.monotonic() + NOTICE_S)
        if self.state is not None and self.main_screen.ready:
            self._draw_status(self.state)

    def _redraw(self) -> None:
        """Draw the last snapshot again after a key (the worker owns the live data: the snapshot is
        immutable, so only the controls' own fields are refreshed here)."""
        if self.state is not None:
            self._draw(self.state)

    def _title(self, prefix: str, view, wanted) -> str:
        f = view.frame
        ran = (f.placement, f.predictor, f.links) if f is not None else wanted
        text = f"{prefix}{modes_label(*ran)}"
        if wanted != ran:
            when = "on restart (0)" if view.done else "next layer"
            text += f" → {modes_label(*wanted)} {when}"
        elif view.done:
            text += " · end: 0 restarts, g jumps, N back"
        return text

    # ---- command palette (ctrl+p): every mode by name, beside the keys that cycle them ----------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        runs = [("", False)] + ([("B ", True)] if self.driver.compare is not None else [])
        for prefix, compare in runs:
            for kind, names in (("placement", self.placements), ("predictor", self.predictors),
                                ("links", self.link_models)):
                for name in names:
                    title = f"{prefix}{kind.capitalize()}: {name}"
                    yield SystemCommand(title, "use this mode from the next layer",
                                        partial(self.use_mode, kind, name, compare))
                    yield SystemCommand(f"{title} from step 0", "restart the replay with this mode",
                                        partial(self.use_mode, kind, name, compare, True))
        yield SystemCommand("Compare", "open or close the side-by-side comparison (c)", self.action_compare)
        yield SystemCommand("Compare link models", "B: the same modes under the other link model (fluid / circuit)",
                            self.compare_link_models)
        yield SystemCommand("Pause / resume", "(space)", self.action_toggle_pause)
        yield SystemCommand("Restart", "from step 0 with the current modes (0)", self.action_restart)
        yield SystemCommand("Jump to a step", "(g)", self.action_jump)
        yield SystemCommand("Back one layer", "(N)", self.action_back)
        yield SystemCommand("Summary", "the run's summary so far (s)", self.action_summary)

    def use_mode(self, kind: str, name: str, compare: bool = False, from_start: bool = False) -> None:
        self.driver.set_mode(kind, name, compare=compare, from_start=from_start)
        if from_start:
            self.notice(f"restarting with {kind} {name}")
        elif self.state is not None and self.state.main.done:
            self.notice(f"{kind} {name}: the trace has ended; 0 restarts with it")
        self._redraw()

    # ---- actions ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        done = self.state is not None and self.state.main.done
        if action == "step":
            return True if self.driver.paused and not done else None      # dimmed while playing
        if action == "cycle" and len(parameters) > 1 and parameters[1]:
            return True if self.driver.compare is not None else None
        if action == "back":
            return True if self.state is not None and self.state.main.position > 0 else None
        return True

    def action_toggle_pause(self) -> None:
        self.driver.toggle_pause()
        self._redraw()

    def action_step(self) -> None:
        if self.state is not None and self.state.main.done:
            self.notice("end of trace: 0 restarts, g jumps, N steps back")
        elif self.driver.paused:
            self.driver.request_step()
            self._redraw()

    def action_back(self) -> None:
        self.driver.pause()
        self.driver.request_back()
        self._redraw()

    def action_restart(self) -> None:
        self.driver.request_restart()
        self.notice("restarting from step 0")
        self._redraw()

    def action_jump(self) -> None:
        last = max(0, (self.state.main.total // max(1, self.layers)) - 1) if self.state else 0

        def jump(step: int | None) -> None:
            if step is not None:
                self.driver.request_seek(min(self.state.main.total, step * self.layers + 1))
                self.notice(f"jumping to step {step}")

        self.push_screen(JumpScreen(last), jump)

    def action_speed(self, direction: int) -> None:
        speed = self.driver.change_speed(direction)
        self.notice(f"speed: {speed} layers/s" if speed else "speed: max")
        self._redraw()

    def action_cycle(self, kind: str, compare: bool = False) -> None:
        if compare and self.driver.compare is None:
            return
        names = {"placement": self.placements, "predictor": self.predictors, "links": self.link_models}[kind]
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
            screen.grids["b"].show(None)
            modes = second_modes(self.driver.wanted_mode("placement"), self.driver.wanted_mode("predictor"),
                                 self.predictors)
            links = self.driver.wanted_mode("links")
            screen.titles["b"].update(f"B {modes_label(*modes, links)} (starting)")
            self.driver.open_compare(*modes, links)
        self._redraw()

    def compare_link_models(self) -> None:
        """The comparison with the same modes under the other link model (the palette's command)."""
        screen = self.main_screen
        if screen.has_class("-compare"):
            self.driver.close_compare()
        screen.add_class("-compare")
        screen.grids["b"].show(None)
        modes = (self.driver.wanted_mode("placement"), self.driver.wanted_mode("predictor"))
        current = self.driver.wanted_mode("links")
        other = next((n for n in self.link_models if n != current), current)
        screen.titles["b"].update(f"B {modes_label(*modes, other)} (starting)")
        self.driver.open_compare(*modes, other)
        self._redraw()

    def action_move(self, dx: int, dy: int) -> None:
        if self.cursor is None:          # it appears on the selection, else on the layer's bottleneck
            self.cursor = element_lattice(self.selected or self._bound_element() or ("die", 0), self.mesh.width)
        else:
            vertical = self.main_screen.grids["a"].vertical_links
            self.cursor = move_cursor(*self.cursor, dx, dy, self.mesh.width, self.mesh.height, vertical)
        self._redraw()

    def _bound_element(self) -> tuple | None:
        bound = self.main_screen.grids["a"].bound
        if bound is None:
            return None
        if bound.link >= 0:
            a, b = (int(v) for v in self.mesh.links[bound.link])
            return ("link", min(a, b), max(a, b))
        return ("die", bound.die)

    def action_select(self) -> None:
        if self.cursor is not None:
            self.select(lattice_element(*self.cursor, self.mesh.width))

    def select(self, element: tuple | None) -> None:
        self.selected = element
        if element is not None:
            self.cursor = element_lattice(element, self.mesh.width)
        self._redraw()

    def action_clear_selection(self) -> None:
        self.selected = self.cursor = None
        self._redraw()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    def action_summary(self) -> None:
        state = self.state
        if state is None or isinstance(self.screen, SummaryScreen):
            return
        main = state.main
        if main.summary is None and main.frame is None:
            self.notice("no summary yet: nothing simulated")
            return
        partial_run = main.summary is None
        note = f"layer {main.position:,} of {main.total:,}; the end of the trace gives the whole run" \
            if partial_run else ""
        summaries = [("A " + modes_label(main.placement, main.predictor, main.links), self._fields(main))]
        if state.compare is not None and (state.compare.summary is not None or state.compare.frame is not None):
            b = state.compare
            summaries.append(("B " + modes_label(b.placement, b.predictor, b.links), self._fields(b)))
        self.push_screen(SummaryScreen(summaries, note, partial=partial_run))

    def _fields(self, view) -> dict:
        return view.summary if view.summary is not None else self.setup.summary_of(view.frame.totals)

    async def action_quit(self) -> None:
        self._quitting = True
        self.driver.stop()
        self.exit(return_code=self.failure.exit_code if self.failure is not None else 0)

    def on_unmount(self) -> None:
        self._quitting = True
        self.driver.stop()
        if self.record is not None:   # replay --record: the rows so far, also on q mid-run
            try:
                self.record.close()
            except InputError as e:
                self.record_error = str(e)


def make_app(trace, hardware, *, batch: int | None = None, seed: int = 0, placement: str = "allo",
             predictor: str = "heatmap", options=None, paused: bool = False, loop: bool = False,
             speed: int = DEFAULT_SPEED, engine_factory=None, summarize=None,
             autostart: bool = True, links: str | None = None, record=None) -> WaferviewApp:
    """The app over one trace on one wafer. No engine is made here: the worker thread makes it (with
    `engine_factory`, default waferview.sim.engine.Engine; tests pass stand-ins with its constructor).
    `summarize(engine)` gives the end-of-trace summary (default: what `summary --json` prints).
    `record` (report.layer_replay.ReplayRecord): gets the main engine's layers, written when the app exits."""
    if engine_factory is None:
        from waferview.sim.engine import Engine as engine_factory
    setup = app_setup(trace, hardware, batch=batch, seed=seed, options=options, links=links)
    if setup.predictors and predictor not in setup.predictors:
        predictor = "off"            # count-only: no token order for the heatmap (the `r` key skips it too)
    make_engine = engine_maker(engine_factory, trace, hardware, batch=batch, seed=seed, options=options, links=links)
    summarize = summarize or (lambda engine: setup.summary_of(engine.summary()))
    driver = ReplayDriver(make_engine, summarize, placement=placement, predictor=predictor, paused=paused,
                          loop=loop, speed=speed, layers=setup.layers, total=setup.total,
                          on_main_engine=record.attach if record is not None else None)
    return WaferviewApp(driver, setup, autostart=autostart, record=record)
