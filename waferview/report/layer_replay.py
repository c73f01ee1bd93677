"""replay --record FILE: the per-layer rows of what the live view replayed, written when the app exits.

The live view's main engine is replaced when the replay goes back or restarts (a new engine replays from
step 0, fast up to the target, with the mode changes where they were made); every such engine is attached
here. Rows are kept by position: rows simulated again replace the earlier ones from that position on, so
the file is the run as last replayed (one row per (step, layer) reached, the modes in force at each), and
quitting mid-run writes the rows so far. No textual here: the app calls close() when it exits.
"""

from __future__ import annotations

import threading

from waferview.report.layer_files import LayerFile


class ReplayRecord:
    def __init__(self, path: str, option: str = "--record"):
        self.file = LayerFile(path, option)   # a bad path: InputError now, before the screen opens
        self.chunks: list = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def rows(self) -> int:
        with self._lock:
            return sum(len(c) for c in self.chunks)

    def attach(self, engine) -> None:
        """Record `engine`'s layers from now on (the worker thread calls this for each new main engine)."""
        with self._lock:
            if self._closed:
                return
            self.file.bind(engine)
        engine.record_layers(self.add)

    def add(self, chunk) -> None:
        with self._lock:
            if self._closed or len(chunk) == 0:
                return
            chunks = self.chunks
            while chunks and chunks[-1].first >= chunk.first:      # replayed again: a new branch from here
                chunks.pop()
            if chunks and chunks[-1].first + len(chunks[-1]) > chunk.first:
                keep = chunk.first - chunks[-1].first
                last = chunks.pop()
                chunks.append(type(last)(last.first, last.layer[:keep], last.die_busy[:keep],
                                         last.link_bytes[:keep], last.placement, last.predictor, last.links))
            chunks.append(chunk.copy())

    def close(self) -> None:
        """Write the rows (InputError when the file cannot be written; nothing is left behind then)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            chunks, self.chunks = self.chunks, []
        try:
            if self.file.shape is not None:
                for chunk in chunks:
                    self.file.write(chunk)
        except BaseException:
            self.file.discard()
            raise
        self.file.close()

    def discard(self) -> None:
        with self._lock:
            self._closed = True
        self.file.discard()
