"""A tiny progress bar on stderr, drawn only when stderr is a terminal.

    for path in progress(paths, "reading traces"):
        ...

    with progress(total_bytes, "downloading", unit="B") as bar:
        bar.update(len(chunk))

Nothing is written when stderr is not a terminal (pipes, CI, tests), so data on stdout and
error lines on stderr stay clean. The bar appears only after a short delay, so quick jobs
do not flicker, and it redraws at most ~10 times a second.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator

_DELAY = 0.3      # seconds before the first draw
_INTERVAL = 0.1   # seconds between redraws
_WIDTH = 24       # cells in the bar


def _human(n: float, unit: str) -> str:
    if unit != "B":
        return f"{int(n):,}"
    for suffix in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or suffix == "TB":
            return f"{n:.0f} {suffix}" if suffix == "B" else f"{n:.1f} {suffix}"
        n /= 1000
    return f"{n:.1f} TB"


class Progress:
    """A bar counting up to `total`. Use update(n); close() (or `with`) clears the line."""

    def __init__(self, total: int | None, label: str, unit: str = "", stream=None, enabled: bool | None = None):
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = _isatty(self.stream) and not os.environ.get("WAFERVIEW_NO_PROGRESS")
        self.enabled = enabled
        self.count = 0
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def update(self, n: int = 1) -> None:
        self.count += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._start >= _DELAY and now - self._last_draw >= _INTERVAL:
            self._draw(now)

    def _line(self, now: float) -> str:
        elapsed = now - self._start
        done = f"{_human(self.count, self.unit)}"
        if self.total:
            frac = min(1.0, self.count / self.total)
            filled = int(frac * _WIDTH)
            bar = "#" * filled + "." * (_WIDTH - filled)
            return f"{self.label} [{bar}] {done}/{_human(self.total, self.unit)} {elapsed:.1f}s"
        return f"{self.label} {done} {elapsed:.1f}s"

    def _draw(self, now: float) -> None:
        self._last_draw = now
        self._drawn = True
        try:
            self.stream.write("\r" + self._line(now) + "\x1b[K")
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False

    def close(self) -> None:
        if self.enabled and self._drawn:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
        self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class status:
    """`with status("listing files on the Hub"):` shows the label while the block runs (terminal only)."""

    def __init__(self, label: str, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.enabled = _isatty(self.stream) and not os.environ.get("WAFERVIEW_NO_PROGRESS")

    def __enter__(self) -> status:
        if self.enabled:
            self.stream.write(f"\r{self.label}...\x1b[K")
            self.stream.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _iterate(items: Iterable, bar: Progress) -> Iterator:
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()


def progress(items_or_total, label: str, *, total: int | None = None, unit: str = "",
             stream=None, enabled: bool | None = None):
    """Wrap an iterable (yields its items, counting them) or, given an int, return a Progress bar."""
    if isinstance(items_or_total, int):
        return Progress(items_or_total, label, unit, stream, enabled)
    if total is None:
        try:
            total = len(items_or_total)
        except TypeError:
            total = None
    return _iterate(items_or_total, Progress(total, label, unit, stream, enabled))
