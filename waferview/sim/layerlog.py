"""Per-layer rows of a run: what the engine's loop copies out of each (step, layer) when someone records.

The loop (sim.loop.run_layers) calls log_layer after every layer: the layer's LAYER record (as raw bytes),
its per-die busy times and its per-link bytes go into row `position - first` of a LayerLog, a few hundred
bytes a layer and no Python. Not recording, the log has no rows and the call does nothing.

LayerRecorder (Python) owns the arrays: before each kernel call the engine asks for room for that call's
rows (begin), after it hands them to the sink as one LayerChunk (end). A chunk's arrays are the recorder's
own buffers, valid only during the sink call: a sink that keeps rows copies them (LayerChunk.copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
from numba import njit

from waferview.sim.state import LAYER


class LayerLog(NamedTuple):
    first: np.ndarray         # (1,) int64: the position of row 0
    scalar: np.ndarray        # (LAYER.itemsize,) uint8: the engine's LayerBuffers.scalars[0], as bytes
    rows: np.ndarray          # (capacity, LAYER.itemsize) uint8: one LAYER record per row
    die_busy: np.ndarray      # (capacity, D) float64 ns
    link_bytes: np.ndarray    # (capacity, n_links) int64


@njit(nogil=True, cache=True)
def log_layer(log, position, buffers):
    row = position - log.first[0]
    if row < 0 or row >= log.rows.shape[0]:
        return
    out = log.rows[row]
    for i in range(out.shape[0]):
        out[i] = log.scalar[i]
    busy, die_busy = log.die_busy[row], buffers.die_busy
    for d in range(die_busy.shape[0]):
        busy[d] = die_busy[d]
    links, link_bytes = log.link_bytes[row], buffers.link_bytes
    for i in range(link_bytes.shape[0]):
        links[i] = link_bytes[i]


def empty_log(scalars: np.ndarray, num_dies: int, num_links: int) -> LayerLog:
    """A log with no rows (not recording): log_layer returns at once."""
    return LayerLog(np.zeros(1, dtype=np.int64), scalars.view(np.uint8).reshape(-1),
                    np.zeros((0, LAYER.itemsize), dtype=np.uint8), np.zeros((0, num_dies)),
                    np.zeros((0, num_links), dtype=np.int64))


@dataclass(frozen=True, eq=False)
class LayerChunk:
    """Rows first .. first+n-1 of a run, all under the same modes."""
    first: int                # position (step x MoE layers + layer) of row 0
    layer: np.ndarray         # (n,) LAYER records: the layer's scalars (sim.state.LAYER)
    die_busy: np.ndarray      # (n, D) ns
    link_bytes: np.ndarray    # (n, n_links) bytes over each directed link (Mesh.links order)
    placement: str
    predictor: str
    links: str

    def __len__(self) -> int:
        return self.layer.shape[0]

    def copy(self) -> "LayerChunk":
        return LayerChunk(self.first, self.layer.copy(), self.die_busy.copy(), self.link_bytes.copy(),
                          self.placement, self.predictor, self.links)


class LayerRecorder:
    """The rows of an engine's kernel calls, handed to `sink(chunk)` after each call."""

    def __init__(self, sink: Callable[[LayerChunk], None], scalars: np.ndarray, num_dies: int, num_links: int):
        self.sink = sink
        self.log = empty_log(scalars, num_dies, num_links)
        self._dies, self._links = num_dies, num_links

    def begin(self, position: int, rows: int) -> LayerLog:
        """The log for a kernel call that simulates positions position .. position+rows-1."""
        log = self.log
        if log.rows.shape[0] < rows:    # grown once to the longest call (a step's layers under run())
            log = self.log = LayerLog(log.first, log.scalar, np.zeros((rows, LAYER.itemsize), dtype=np.uint8),
                                      np.zeros((rows, self._dies)), np.zeros((rows, self._links), dtype=np.int64))
        log.first[0] = position
        return log

    def end(self, position: int, rows: int, placement: str, predictor: str, links: str) -> None:
        if rows <= 0:
            return
        log = self.log
        self.sink(LayerChunk(position, log.rows[:rows].reshape(-1).view(LAYER), log.die_busy[:rows],
                             log.link_bytes[:rows], placement, predictor, links))
