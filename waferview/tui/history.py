"""Per-step aggregates of one engine's frames, for the sparklines (no textual here)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

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
    modes: tuple[str, str] = ("", "")   # (placement, predictor) of the last layer seen

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

    def add(self, frame) -> None:
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

    def truncate(self, step: int) -> None:
        """Forget step `step` and later (the replay went back: those layers are simulated again)."""
        if self._step is not None and self._step < step:
            self.points.append(self._current())
        while self.points and self.points[-1].step >= step:
            self.points.pop()
        self._step = None
        self._last_modes = self.points[-1].modes if self.points else None

    def _current(self) -> StepPoint:
        rate = self._local / self._reads if self._reads else 0.0
        return StepPoint(self._step, rate, self._time, self._layers, self._remote, self._mark,
                         self._last_modes or ("", ""))

    def snapshot(self) -> tuple[StepPoint, ...]:
        pts = tuple(self.points)
        return pts + (self._current(),) if self._step is not None else pts
