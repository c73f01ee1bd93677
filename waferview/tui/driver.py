"""The worker side of the live view: owns the engines, steps them on a worker thread, hands out snapshots.

Nothing here imports textual, so it can be driven (and tested) without an app. The app calls the small
control methods (pause, step, speed, modes, compare) from the UI thread; `run()` is the worker loop.
Every snapshot handed to `publish` is an immutable `ViewState`; the UI keeps only the latest one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from waferview.sim.frame import Frame

# replay speed in (step, layer) pairs per second; 0 = as fast as the engine goes
SPEEDS = (1, 3, 10, 30, 100, 300, 1000, 0)
DEFAULT_SPEED = 100
PUBLISH_INTERVAL_S = 1 / 30          # at most this often while playing: the screen's rate
HISTORY_STEPS = 256                  # steps kept for the sparklines


@dataclass(frozen=True)
class StepPoint:
    """One (decode or prefill) step of one engine, aggregated over the layers seen so far."""
    step: int
    hit_rate: float          # local weight reads / weight reads in this step
    time_ns: float           # sum of layer times in this step (so far)
    layers: int              # layers of this step seen so far
    remote_bytes: int
    mark: str                # "" or which modes changed at this step: "p", "r" or "pr"

    @property
    def mean_layer_ns(self) -> float:
        return self.time_ns / self.layers if self.layers else 0.0


class StepHistory:
    """Per-step aggregates of one engine's frames (mutable; the worker owns it)."""

    def __init__(self):
        self.points: deque[StepPoint] = deque(maxlen=HISTORY_STEPS)
        self._step = None
        self._reads = self._local = self._remote = self._layers = 0
        self._time = 0.0
        self._mark = ""
        self._last_modes = None

    def add(self, frame: Frame) -> None:
        if frame.step != self._step:
            if self._step is not None:
                self.points.append(self._current())
            self._step = frame.step
            self._reads = self._local = self._remote = self._layers = 0
            self._time = 0.0
            self._mark = ""
        modes = (frame.placement, frame.predictor)
        if self._last_modes is not None and modes != self._last_modes:
            mark = ("p" if modes[0] != self._last_modes[0] else "") + ("r" if modes[1] != self._last_modes[1] else "")
            self._mark = "".join(sorted(set(self._mark + mark), key="pr".index))
        self._last_modes = modes
        self._reads += frame.weight_reads
        self._local += frame.local_weight_reads
        self._remote += frame.remote_read_bytes
        self._time += frame.layer_time_ns
        self._layers += 1

    def _current(self) -> StepPoint:
        rate = self._local / self._reads if self._reads else 0.0
        return StepPoint(self._step, rate, self._time, self._layers, self._remote, self._mark)

    def snapshot(self) -> tuple[StepPoint, ...]:
        pts = tuple(self.points)
        return pts + (self._current(),) if self._step is not None else pts


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


@dataclass(frozen=True, eq=False)
class ViewState:
    main: EngineView
    compare: EngineView | None
    paused: bool
    speed: int
    run: int                  # 1 for the first pass over the trace, +1 each --loop restart
    catching_up: tuple[int, int] | None = None   # (done, target) while the comparison engine catches up


class _Lane:
    """One engine and its history."""

    def __init__(self, engine):
        self.engine = engine
        self.history = StepHistory()
        self.frame: Frame | None = None
        self.summary: dict | None = None

    def step(self) -> Frame | None:
        frame = self.engine.step()
        if frame is not None:
            self.frame = frame
            self.history.add(frame)
        return frame

    def view(self) -> EngineView:
        e = self.engine
        return EngineView(self.frame, self.history.snapshot(), e.position, e.total, e.placement, e.predictor,
                          bool(e.done), self.summary)


class ReplayDriver:
    """Runs the replay; thread-safe control methods for the UI, `run()` for the worker thread."""

    def __init__(self, make_engine: Callable[[str, str], object], summarize: Callable[[object], dict], *,
                 placement: str, predictor: str, paused: bool = False, loop: bool = False,
                 speed: int = DEFAULT_SPEED):
        self._make_engine = make_engine
        self._summarize = summarize
        self.main = _Lane(make_engine(placement, predictor))
        self.compare: _Lane | None = None
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
        self._stop = False
        self.stopped = threading.Event()          # set when run() has returned
        self._catching_up: tuple[int, int] | None = None

    # ---- the engine the UI looks at -------------------------------------------------------------------
    @property
    def engine(self):
        return self.main.engine

    @property
    def compare_engine(self):
        return self.compare.engine if self.compare else None

    # ---- controls (UI thread) -------------------------------------------------------------------------
    def toggle_pause(self) -> bool:
        with self._control:
            self.paused = not self.paused
            self._step_requests = 0            # `n` presses only count while paused
        self._wake.set()
        return self.paused

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

    def set_mode(self, kind: str, name: str, *, compare: bool = False) -> None:
        """Set "placement" or "predictor" from the next layer. Applied at once when the engine is idle,
        otherwise by the worker before its next layer."""
        with self._control:
            (self._pending_compare_modes if compare else self._pending_modes)[kind] = name
        if self.engine_lock.acquire(blocking=False):
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
        return getattr(lane.engine, kind)

    def open_compare(self, placement: str, predictor: str) -> None:
        with self._control:
            self._compare_request = (placement, predictor)
            self._close_compare = False
            self._pending_compare_modes.clear()
        self._wake.set()

    def close_compare(self) -> None:
        with self._control:
            self._close_compare = True
            self._compare_request = None
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
            getattr(self.main.engine, f"set_{kind}")(name)
        if self.compare is not None:
            for kind, name in comp.items():
                getattr(self.compare.engine, f"set_{kind}")(name)

    def state(self) -> ViewState:
        return ViewState(self.main.view(), self.compare.view() if self.compare else None, self.paused,
                         self.speed, self.run_count, self._catching_up)

    def _open_compare_lane(self, modes, cancelled, publish) -> None:
        lane = _Lane(self._make_engine(*modes))
        target = self.main.engine.position
        last = time.monotonic()
        while lane.engine.position < target and not cancelled():
            lane.step()
            if time.monotonic() - last >= PUBLISH_INTERVAL_S * 3:
                self._catching_up = (lane.engine.position, target)
                publish(self.state())
                last = time.monotonic()
        self._catching_up = None
        if self.main.engine.done:
            lane.summary = self._summarize(lane.engine)
        self.compare = lane

    def _restart(self) -> None:
        modes = (self.wanted_mode("placement"), self.wanted_mode("predictor"))
        with self._control:
            self._pending_modes.clear()
        self.main = _Lane(self._make_engine(*modes))
        if self.compare is not None:
            cmodes = (self.wanted_mode("placement", compare=True), self.wanted_mode("predictor", compare=True))
            with self._control:
                self._pending_compare_modes.clear()
            self.compare = _Lane(self._make_engine(*cmodes))
        self.run_count += 1

    def run(self, cancelled: Callable[[], bool], publish: Callable[[ViewState], None]) -> None:
        """The worker loop: returns within ~0.1 s (plus the layer in progress) of `cancelled()` turning
        true or `stop()`."""
        try:
            self._run(cancelled, publish)
        finally:
            self.stopped.set()

    def _run(self, cancelled, publish) -> None:
        def stopping():
            return self._stop or cancelled()

        last_publish = 0.0
        unpublished = False
        next_due = time.monotonic()
        publish(self.state())
        while not stopping():
            with self._control:
                compare_request, self._compare_request = self._compare_request, None
                close, self._close_compare = self._close_compare, False
            if close and self.compare is not None:
                self.compare = None
                publish(self.state())
            if compare_request is not None:
                self._open_compare_lane(compare_request, stopping, publish)
                publish(self.state())
                continue
            paused = self.paused                               # read once per layer
            finished = self.main.engine.done
            if finished and self.loop and not paused:
                self._restart()
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
                    publish(self.state())
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
                frame = self.main.step()
                if self.compare is not None:
                    self.compare.step()
            now = time.monotonic()
            next_due = max(next_due + (1.0 / self.speed if self.speed else 0.0), now - 0.5)
            unpublished = True
            if frame is None or self.main.engine.done:
                self.main.summary = self._summarize(self.main.engine)
                if self.compare is not None:
                    while not self.compare.engine.done:          # lockstep: same total, normally a no-op
                        self.compare.step()
                    self.compare.summary = self._summarize(self.compare.engine)
            if take_step or frame is None or self.main.engine.done or now - last_publish >= PUBLISH_INTERVAL_S:
                publish(self.state())
                last_publish = now
                unpublished = False
        publish(self.state())
