"""One engine of the live view with what the replay needs around it (no textual here).

A Lane owns an engine, its step history, and the tape of mode changes: (position, kind, name) = "mode
`kind` was set to `name` before layer `position` ran". The tape lets the replay go back: a new engine
with the same first modes, run fast to the target, with every change applied at the layer it was made,
gives the very same layers (the engine is deterministic). A change made after going back starts a new
branch: the tape's later entries are dropped.

Engines are built here, on the worker thread: construction (the batch's counts), `prepare` (heatmap,
kernel warm-up) and a fast `run(stop=...)` are used when the engine has them; otherwise the lane falls
back to what every engine has (construction, `heat_bits`, `step()` in a loop).
"""

from __future__ import annotations

import copy
import inspect
import time
from typing import Callable

from waferview.tui.history import StepHistory

Progress = Callable[[str, int, int], None]   # progress(label, done, total); total 0 = unknown


def accepts(func, name: str) -> bool:
    """Whether `func` (a callable or a class) takes keyword argument `name`."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class Lane:
    """One engine and its history (mutable; the worker thread owns it)."""

    def __init__(self, make_engine, placement: str, predictor: str, *, layers: int, total: int,
                 links: str | None = None):
        self.make_engine = make_engine           # make_engine(placement, predictor, workload=, progress=)
        self.initial_modes = (placement, predictor)
        self.initial_links = links               # None: the engine factory's (the profile's) link model
        self.tape: list[tuple[int, str, str]] = []
        self.layers = max(1, int(layers))
        self.total_hint = int(total)
        self.engine = None
        self.history = StepHistory()
        self.frame = None
        self.summary: dict | None = None
        self._prepared = False          # engine.prepare() ran (or the fallback's heatmap is built)
        self._heat_ready = False
        self._stepped = False           # a first layer has run (kernels loaded)

    # ---- what the UI reads ------------------------------------------------------------------------
    @property
    def position(self) -> int:
        return self.engine.position if self.engine is not None else 0

    @property
    def total(self) -> int:
        return self.engine.total if self.engine is not None else self.total_hint

    @property
    def done(self) -> bool:
        return self.engine is not None and bool(self.engine.done)

    def mode(self, kind: str) -> str:
        if self.engine is not None:
            return getattr(self.engine, kind, "fluid" if kind == "links" else "")
        if kind == "links":
            value = self.initial_links or "fluid"
        else:
            value = self.initial_modes[0 if kind == "placement" else 1]
        for _, k, name in self.tape:            # not built yet: the tape's entries at position 0
            if k == kind:
                value = name
        return value

    # ---- building (worker thread) -----------------------------------------------------------------
    def build(self, report: Progress, workload=None) -> None:
        """Make the engine (sharing `workload`, the batch's counts and heatmap, when the engine takes one)
        and do its setup, reporting progress."""
        if self.engine is not None:
            return
        report("reading the batch (expert counts per layer)", 0, 0)
        self.engine = self.make_engine(*self.initial_modes, workload=workload, progress=report)
        if self.initial_links is not None and getattr(self.engine, "links", None) != self.initial_links:
            self.engine.set_links(self.initial_links)
        self._apply_tape()
        prepare = getattr(self.engine, "prepare", None)
        if callable(prepare):
            prepare(progress=report)
            self._prepared = self._heat_ready = self._stepped = True
        else:
            self._ensure_heat(report)

    @property
    def workload(self):
        return getattr(self.engine, "workload", None)

    def _ensure_heat(self, report: Progress) -> None:
        """Fallback for engines without prepare(): build the heatmap with progress before the predictor asks
        for it (through the shared memo, so the engine's own heat_bits() then finds it)."""
        e = self.engine
        if self._heat_ready or getattr(e, "predictor", None) != "heatmap":
            return
        if all(hasattr(e, name) for name in ("trace", "batch", "top_n", "heat_bits")):
            from waferview.sim.heatmap import heatmap_top_bits

            heatmap_top_bits(e.trace, e.batch, e.top_n, progress=report)
            e.heat_bits()
        self._heat_ready = True

    # ---- the tape ---------------------------------------------------------------------------------
    def set_mode(self, kind: str, name: str) -> None:
        """A change by the user, from the next layer: a new branch of the tape."""
        pos = self.position
        self.tape = [(p, k, n) for p, k, n in self.tape if p < pos or (p == pos and k != kind)] + [(pos, kind, name)]
        if self.engine is not None:
            getattr(self.engine, f"set_{kind}")(name)
            self._heat_ready = self._heat_ready and kind != "predictor"

    def _apply_tape(self) -> None:
        pos = self.position
        for p, kind, name in self.tape:
            if p == pos and getattr(self.engine, kind) != name:
                getattr(self.engine, f"set_{kind}")(name)
                if kind == "predictor":
                    self._heat_ready = False

    def _next_change(self) -> int | None:
        pos = self.position
        later = [p for p, _, _ in self.tape if p > pos]
        return min(later) if later else None

    # ---- stepping (worker thread) -----------------------------------------------------------------
    def step(self, report: Progress):
        self._apply_tape()
        self._ensure_heat(report)
        if not self._stepped:
            report("preparing the kernels (first layer)", 0, 1)
        frame = self.engine.step()
        self._stepped = True
        if frame is not None:
            self.frame = frame
            self.history.add(frame)
        return frame

    def advance_to(self, target: int, report: Progress, stopping: Callable[[], bool]) -> None:
        """Run to position `target`: fast up to the start of the target's step, then layer by layer (so the
        last frame and the step's history are there)."""
        target = max(0, min(int(target), self.total))
        L = self.layers
        frames_from = max(self.position, ((target - 1) // L) * L) if target > 0 else 0
        if frames_from > self.position or self.position == 0:   # the history of those steps is rebuilt below
            self.history.truncate(frames_from // L)
        self._fast_forward(frames_from, target, report, stopping)
        while self.position < target and not stopping():
            self.step(report)
            report(_seek_label(target, L), self.position, target)

    def _fast_forward(self, stop: int, target: int, report: Progress, stopping) -> None:
        e = self.engine
        label = _seek_label(target, self.layers)
        fast = accepts(getattr(e, "run", None), "stop")
        last = 0.0
        while self.position < stop and not stopping():
            self._apply_tape()
            self._ensure_heat(report)
            change = self._next_change()
            end = stop if change is None else min(stop, change)
            if fast:
                e.run(progress=lambda position, total: report(label, position, target), stop=end)
                self._stepped = True
            else:
                while self.position < end and not stopping():
                    e.step()
                    self._stepped = True
                    now = time.monotonic()
                    if now - last > 0.05:
                        report(label, self.position, target)
                        last = now
        report(label, self.position, target)

    def replayed(self, restart_modes: tuple[str, str] | None = None) -> "Lane":
        """A new lane (engine not built) that replays this one: same first modes and tape, history kept up to
        where the replay will show frames again; or, with restart_modes, a fresh start in those modes."""
        lane = Lane(self.make_engine, *(restart_modes[:2] if restart_modes else self.initial_modes),
                    layers=self.layers, total=self.total,
                    links=(restart_modes[2] if restart_modes and len(restart_modes) > 2 else self.initial_links))
        if restart_modes is None:
            lane.tape = list(self.tape)
            lane.history = copy.deepcopy(self.history)
        return lane


def _seek_label(target: int, layers: int) -> str:
    if target <= 0:
        return "restarting"
    step, layer = divmod(target - 1, layers)
    return f"re-simulating to step {step}, layer {layer + 1}"
