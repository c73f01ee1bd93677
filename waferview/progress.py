"""Progress bars on stderr, drawn only when stderr is a terminal, with rich's progress display.

    for path in progress(paths, "reading traces"):
        ...

    with progress(total_bytes, "downloading", unit="B") as bar:
        bar.update(len(chunk))

Nothing is written when stderr is not a terminal (pipes, CI, tests) or WAFERVIEW_NO_PROGRESS is set,
so data on stdout and error lines on stderr stay clean. A bar appears only after a short delay (quick
jobs do not flicker) and redraws at most ~10 times a second. rich is imported only then (about 30 ms),
so `waferview --help` and every quick run never pay for it.

Messages never land on a bar's line: while a bar is on screen, sys.stderr is a proxy that prints each
complete line above the bar (the bar is erased, the line written as is, the bar redrawn below), and
`end_all()` (called by the CLI before it prints an error, and at exit) takes every bar off the screen.
rich also keeps the bar within the terminal's width, so clearing it never leaves a wrapped tail behind.
"""

from __future__ import annotations

import atexit
import io
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator

_DELAY = 0.3      # seconds before the first draw
_INTERVAL = 0.1   # seconds between redraws
_WIDTH = 24       # cells in the bar

_live: list["Progress"] = []    # bars on screen now (at most one draws at a time)
_screen = threading.RLock()     # bars may be updated from several threads (compare --jobs): one draws at once


def _enabled_for(stream) -> bool:
    return _isatty(stream) and not os.environ.get("WAFERVIEW_NO_PROGRESS")


class _LinesAbove(io.TextIOBase):
    """sys.stderr while a bar is on screen: complete lines go above the bar, unchanged."""

    def __init__(self, console, real):
        self._console = console
        self._real = real
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            # out(): no markup, no wrapping, no highlighting -- the text exactly as given
            self._console.out(line, highlight=False)
        return len(text)

    def flush(self) -> None:
        pass

    def release(self) -> str:
        pending, self._pending = self._pending, ""
        return pending

    def isatty(self) -> bool:
        return self._real.isatty()

    def fileno(self) -> int:
        return self._real.fileno()

    def __getattr__(self, name):
        return getattr(self._real, name)


class Progress:
    """A bar counting up to `total` (None: unknown). Use update(n); close() (or `with`) removes it."""

    def __init__(self, total: int | None, label: str, unit: str = "", stream=None, enabled: bool | None = None,
                 *, spinner: bool = False):
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _enabled_for(self.stream) if enabled is None else enabled
        self.count = 0
        self._spinner = spinner
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._rich = None
        self._task = None
        self._proxy = None

    # -- drawing ---------------------------------------------------------------------------------

    def update(self, n: int = 1) -> None:
        self.count += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._start < _DELAY or now - self._last_draw < _INTERVAL:
            return
        self._last_draw = now
        with _screen:
            try:
                if self._rich is None:
                    if _live:               # another bar is on screen: stay quiet rather than fight it
                        return
                    self._begin()
                self._rich.update(self._task, completed=self.count)
                self._rich.refresh()
            except (OSError, ValueError):
                self.enabled = False
                self.close()

    def _columns(self):
        from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        columns = [SpinnerColumn()] if self._spinner else []
        columns.append(TextColumn("{task.description}"))
        if not self._spinner:
            columns.append(BarColumn(bar_width=_WIDTH))
            columns.append(DownloadColumn(binary_units=False) if self.unit == "B" else MofNCompleteColumn())
        columns.append(TimeElapsedColumn())
        if self.total and not self._spinner:
            columns.append(TimeRemainingColumn())
        return columns

    def _begin(self, auto_refresh: bool = False) -> None:
        from rich.console import Console
        from rich.progress import Progress as RichProgress

        console = Console(file=self.stream, force_terminal=True, highlight=False, soft_wrap=True)
        self._rich = RichProgress(*self._columns(), console=console, transient=True, auto_refresh=auto_refresh,
                                  refresh_per_second=10, redirect_stdout=False, redirect_stderr=False)
        self._task = self._rich.add_task(self.label, total=self.total, completed=self.count)
        self._rich.start()
        _live.append(self)
        if self.stream is sys.stderr:
            self._proxy = _LinesAbove(console, sys.stderr)
            sys.stderr = self._proxy

    def close(self) -> None:
        with _screen:
            self._close()

    def _close(self) -> None:
        if self._rich is None:
            return
        rich, self._rich = self._rich, None
        pending = ""
        if self._proxy is not None:
            if sys.stderr is self._proxy:
                sys.stderr = self._proxy._real
            pending = self._proxy.release()
            self._proxy = None
        try:
            rich.stop()             # transient: the bar's lines are erased, the cursor shown again
            if pending:
                self.stream.write(pending)
                self.stream.flush()
        except (OSError, ValueError):
            pass
        if self in _live:
            _live.remove(self)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class status(Progress):
    """`with status("listing files on the Hub"):` a spinner and the label while the block runs."""

    def __init__(self, label: str, stream=None):
        super().__init__(None, label, stream=stream, spinner=True)

    def __enter__(self) -> status:
        with _screen:
            if self.enabled and not _live:
                try:
                    self._begin(auto_refresh=True)     # no updates come: rich's thread animates it
                except (OSError, ValueError):
                    self.enabled = False
        return self


def end_all() -> None:
    """Take every bar off the screen (before an error line, and at exit)."""
    for bar in list(_live):
        bar.close()


atexit.register(end_all)


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
