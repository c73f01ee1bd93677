"""The worker side of the live view: builds the engines, steps them on a worker thread, hands out snapshots.

Nothing here imports textual, so it can be driven (and tested) without an app. The app calls the small
control methods (pause, step, speed, modes, compare, restart, seek) from the UI thread; `run()` is the
worker loop, which also does every slow thing: making the engines, their setup, re-simulating after a
jump. Every snapshot handed to `publish` is an immutable `ViewState`; the UI keeps only the latest one.
A failure in the worker ends the loop with `ViewState.failure` set (the app shows it and exits non-zero).
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from waferview.errors import InputError
from waferview.sim.frame import Frame
from waferview.tui.history import HISTORY_STEPS, StepHistory, StepPoint  # noqa: F401 (re-exported)
from waferview.tui.lanes import Lane

# replay speed in (step, layer) pairs per second; 0 = as fast as the engine goes
SPEEDS = (1, 3, 10, 30, 100, 300, 1000, 0)
DEFAULT_SPEED = 100
PUBLISH_INTERVAL_S = 1 / 30          # at most this often while playing: the screen's rate


@dataclass(frozen=True, eq=False)
class EngineView:
    """What the UI shows for one engine at one moment."""
    frame: Frame | None
    history: tuple[StepPoint, ...]
    position: int
    total: int
    placement: str            # the mode the engine uses from the next layer on
    predictor: str
    done: bool
    summary: dict | None      # the run's summary (trace facts + engine summary) once the trace ended
    links: str = "fluid"      # the link model the engine uses from the next layer on


@dataclass(frozen=True)
class Activity:
    """What the worker is busy with other than playing: setup, or re-simulating after a jump."""
    label: str
    done: int
    total: int                # 0 when unknown
    since: float              # time.monotonic() when the worker got busy (the first label)


@dataclass(frozen=True)
class Failure:
    line: str                 # one line for the screen and stderr
    exit_code: int            # 2 bad input (InputError), 1 internal error
    details: str = ""         # the traceback (printed with WAFERVIEW_DEBUG)


@dataclass(frozen=True, eq=False)
class ViewState:
    main: EngineView
    compare: EngineView | None
    paused: bool
    speed: int
    run: int                  # 1 for the first pass over the trace, +1 each restart
    activity: Activity | None = None
    failure: Failure | None = None
    ready: bool = False       # the main engine is built and set up


class _Stopped(Exception):
    """Raised from a progress callback to leave a long setup when the app quits."""


def _view(lane: Lane) -> EngineView:
    return EngineView(lane.frame, lane.history.snapshot(), lane.position, lane.total, lane.mode("placement"),
                      lane.mode("predictor"), lane.done, lane.summary, lane.mode("links"))


class ReplayDriver:
    """Runs the replay; thread-safe control methods for the UI, `run()` for the worker thread.

    make_engine(placement, predictor, workload=None, progress=None) builds one engine (on the worker);
    on_main_engine(engine), when given, is called with every main engine before it simulates (replay --record)."""

    def __init__(self, make_engine: Callable, summarize: Callable[[object], dict], *, placement: str,
                 predictor: str, paused: bool = False, loop: bool = False, speed: int = DEFAULT_SPEED,
                 layers: int = 1, total: int = 0, on_main_engine: Callable | None = None):
        self._make_engine = make_engine
        self._on_main_engine = on_main_engine
        self._summarize = summarize
        self._layers, self._total = int(layers), int(total)
        self.main = self._lane(placement, predictor)
        self.compare: Lane | None = None
        self.paused = paused
        self.loop = loop
        self.speed = speed if speed in SPEEDS else DEFAULT_SPEED
        self.run_count = 1
        self.engine_lock = threading.Lock()      # held while engines step or change mode
        self._control = threading.Lock()         # guards the request fields below
        self._wake = threading.Event()
        self._step_requests = 0
        self._pending_modes: dict[str, str] = {}          # main engine: "placement"/"predictor" -> name
        self._pending_compare_modes: dict[str, str] = {}
        self._compare_request: tuple[str, str] | None = None
        self._close_compare = False
        self._seek_target: int | None = None     # position to show next (a jump or a step back)
        self._restart_request = False
        self._stop = False
        self.stopped = threading.Event()          # set when run() has returned
        self.activity: Activity | None = None
        self.failure: Failure | None = None
        self.ready = False

    def _lane(self, placement: str, predictor: str, links: str | None = None) -> Lane:
        return Lane(self._make_engine, placement, predictor, layers=self._layers, total=self._total, links=links)

    # ---- the engine the UI looks at -------------------------------------------------------------------
    @property
    def engine(self):
        return self.main.engine

    @property
    def compare_engine(self):
        return self.compare.engine if self.compare else None

    @property
    def busy(self) -> bool:
        return self.activity is not None

    # ---- controls (UI thread) -------------------------------------------------------------------------
    def toggle_pause(self) -> bool:
        with self._control:
            self.paused = not self.paused
            self._step_requests = 0            # `n` presses only count while paused
        self._wake.set()
        return self.paused

    def pause(self) -> None:
        if not self.paused:
            self.toggle_pause()

    def request_step(self) -> None:
        with self._control:
            self._step_requests += 1
        self._wake.set()

    @property
    def pending_steps(self) -> int:
        return self._step_requests

    def change_speed(self, direction: int) -> int:
        i = SPEEDS.index(self.speed) + direction
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, i))]
        self._wake.set()
        return self.speed

    def set_mode(self, kind: str, name: str, *, compare: bool = False, from_start: bool = False) -> None:
        """Set "placement" or "predictor" from the next layer, or (from_start) restart with it. Applied at
        once when the engine is idle, otherwise by the worker before its next layer."""
        with self._control:
            (self._pending_compare_modes if compare else self._pending_modes)[kind] = name
            if from_start:
                self._restart_request = True
                self._seek_target = None
        if not from_start and self.engine_lock.acquire(blocking=False):
            try:
                self._apply_pending_modes()
            finally:
                self.engine_lock.release()
        self._wake.set()

    def wanted_mode(self, kind: str, *, compare: bool = False) -> str:
        """The mode the engine will use from the next layer (including a change not applied yet)."""
        with self._control:
            pending = (self._pending_compare_modes if compare else self._pending_modes).get(kind)
        lane = self.compare if compare else self.main       # one read: the worker may drop the comparison
        if pending or lane is None:
            return pending or ""
        return lane.mode(kind)

    def open_compare(self, placement: str, predictor: str, links: str | None = None) -> None:
        with self._control:
            self._compare_request = (placement, predictor, links)
            self._close_compare = False
            self._pending_compare_modes.clear()
        self._wake.set()

    def close_compare(self) -> None:
        with self._control:
            self._close_compare = True
            self._compare_request = None
        self._wake.set()

    def request_restart(self) -> None:
        """Start over from step 0 with the current (wanted) modes."""
        with self._control:
            self._restart_request = True
            self._seek_target = None
        self._wake.set()

    def request_seek(self, position: int) -> None:
        """Show position `position` (layers done): forward runs fast, backward re-simulates from step 0."""
        with self._control:
            self._seek_target = max(0, min(int(position), self.main.total))
            self._step_requests = 0
        self._wake.set()

    def request_back(self) -> None:
        """One layer back from what is shown (or from a jump not done yet)."""
        with self._control:
            base = self._seek_target if self._seek_target is not None else self.main.position
            self._seek_target = max(0, base - 1)
            self._step_requests = 0
        self._wake.set()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()

    # ---- worker side ----------------------------------------------------------------------------------
    def _apply_pending_modes(self) -> None:   # caller holds engine_lock
        with self._control:
            main, comp = dict(self._pending_modes), dict(self._pending_compare_modes)
            self._pending_modes.clear()
            self._pending_compare_modes.clear()
        for kind, name in main.items():
            self.main.set_mode(kind, name)
        if self.compare is not None:
            for kind, name in comp.items():
                self.compare.set_mode(kind, name)

    def state(self) -> ViewState:
        compare = self.compare
        return ViewState(_view(self.main), _view(compare) if compare else None, self.paused, self.speed,
                         self.run_count, self.activity, self.failure, self.ready)

    def run(self, cancelled: Callable[[], bool], publish: Callable[[ViewState], None]) -> None:
        """The worker loop: returns within ~0.1 s (plus the layer or the setup call in progress) of
        `cancelled()` turning true or `stop()`. An exception ends it with `failure` set."""
        self._cancelled = cancelled
        self._publish = publish
        try:
            self._run()
        except _Stopped:
            pass
        except InputError as e:
            self._fail(Failure(str(e), 2, traceback.format_exc()))
        except Exception as e:  # noqa: BLE001 - any failure must reach the screen and the exit code
            if self._stopping():
                return
            self._fail(Failure(f"internal error: {e.__class__.__name__}: {e}", 1, traceback.format_exc()))
        finally:
            self.stopped.set()

    def _fail(self, failure: Failure) -> None:
        self.failure = failure
        self.activity = None
        self._publish(self.state())

    def _stopping(self) -> bool:
        return self._stop or self._cancelled()

    def _report(self, label: str, done: int, total: int) -> None:
        """Progress from setup or a re-simulation: kept for the screen, published now and then."""
        if self._stopping():
            raise _Stopped
        now = time.monotonic()
        previous = self.activity
        since = previous.since if previous is not None else now
        self.activity = Activity(label, int(done), int(total), since)
        if previous is None or previous.label != label or now - self._last_report >= 0.1:
            self._last_report = now
            self._publish(self.state())

    def _idle(self) -> None:
        if self.activity is not None:
            self.activity = None

    def _run(self) -> None:
        self._last_report = 0.0
        self._publish(self.state())
        self._report("starting", 0, 0)
        self.main.build(self._report)
        self._attach(self.main)
        self.ready = True
        self._idle()
        self._loop()

    def _loop(self) -> None:
        last_publish = 0.0
        unpublished = False
        next_due = time.monotonic()
        self._publish(self.state())
        while not self._stopping():
            with self._control:
                compare_request, self._compare_request = self._compare_request, None
                close, self._close_compare = self._close_compare, False
                restart, self._restart_request = self._restart_request, False
                seek, self._seek_target = self._seek_target, None
            if close and self.compare is not None:
                self.compare = None
                self._publish(self.state())
            if compare_request is not None:
                self._open_compare_lane(compare_request)
                self._publish(self.state())
                continue
            if restart or seek is not None:
                self._seek(0 if restart else seek, restart)
                self._publish(self.state())
                unpublished = False
                next_due = time.monotonic()
                continue
            paused = self.paused                               # read once per layer
            finished = self.main.done
            if finished and self.loop and not paused:
                self._seek(0, True)
                finished = False
            take_step = False
            with self._control:
                if finished:
                    self._step_requests = 0
                elif paused and self._step_requests > 0:
                    self._step_requests -= 1                   # `n`: exactly one layer per request
                    take_step = True
            if finished or (paused and not take_step):
                if unpublished:                                # the screen shows the very last layer
                    self._publish(self.state())
                    unpublished = False
                self._wake.wait(0.1)
                self._wake.clear()
                continue
            if not paused and self.speed:
                delay = next_due - time.monotonic()
                if delay > 0:
                    self._wake.wait(min(delay, 0.1))
                    self._wake.clear()
                    continue
            with self.engine_lock:
                self._apply_pending_modes()
                frame = self.main.step(self._report)
                if self.compare is not None:
                    self.compare.step(self._report)
            if self.activity is not None:                      # the first layer loaded the kernels
                self._idle()
                take_step = True
            now = time.monotonic()
            next_due = max(next_due + (1.0 / self.speed if self.speed else 0.0), now - 0.5)
            unpublished = True
            if frame is None or self.main.done:
                self._finish()
            if take_step or frame is None or self.main.done or now - last_publish >= PUBLISH_INTERVAL_S:
                self._publish(self.state())
                last_publish = now
                unpublished = False
        self._publish(self.state())

    def _finish(self) -> None:
        """End of the trace: the summaries (the comparison is in lockstep, so normally already there too)."""
        self.main.summary = self._summarize(self.main.engine)
        if self.compare is not None:
            while not self.compare.done and not self._stopping():
                self.compare.step(self._report)
            self.compare.summary = self._summarize(self.compare.engine)

    def _attach(self, lane: Lane) -> None:
        if self._on_main_engine is not None and hasattr(lane.engine, "record_layers"):
            self._on_main_engine(lane.engine)

    def _open_compare_lane(self, modes) -> None:
        lane = self._lane(*modes)
        lane.build(self._report, workload=self.main.workload)
        lane.advance_to(self.main.position, lambda label, done, total: self._report(
            f"comparison: catching up {done:,}/{total:,}", done, total), self._stopping)
        if self._stopping():
            return
        if self.main.done:
            lane.summary = self._summarize(lane.engine)
        self.compare = lane
        self._idle()

    def _seek(self, target: int, restart: bool) -> None:
        """Show position `target`: run on when it is ahead (and nothing restarts), else replay every lane
        from step 0 (restart: with the wanted modes and a clean tape)."""
        lanes = [("main", self.main), ("compare", self.compare)]
        built = {}
        for name, lane in lanes:
            if lane is None:
                continue
            compare = name == "compare"
            if restart:
                modes = (self.wanted_mode("placement", compare=compare), self.wanted_mode("predictor", compare=compare),
                         self.wanted_mode("links", compare=compare))
                with self._control:
                    (self._pending_compare_modes if compare else self._pending_modes).clear()
                new = lane.replayed(modes)
            elif target >= lane.position and lane.engine is not None:
                new = lane
            else:
                new = lane.replayed()
            new.build(self._report, workload=self.main.workload)
            if not compare:
                self._attach(new)
            new.advance_to(target, self._report, self._stopping)
            if self._stopping():
                return
            if new.done:
                new.summary = self._summarize(new.engine)
            built[name] = new
        with self.engine_lock:
            self.main = built["main"]
            if self.compare is not None and "compare" in built:
                self.compare = built["compare"]
        if restart:
            self.run_count += 1
        self._idle()
