"""The progress helper draws on a terminal only, and never on a pipe."""

import io

import waferview.progress as progress_module
from waferview.progress import progress, status


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_nothing_is_written_when_not_a_terminal():
    stream = io.StringIO()
    assert list(progress(range(5), "reading", stream=stream)) == [0, 1, 2, 3, 4]
    with progress(100, "fetching", unit="B", stream=stream) as bar:
        bar.update(40)
    with status("listing", stream=stream):
        pass
    assert stream.getvalue() == ""


def test_bar_is_drawn_and_cleared_on_a_terminal(monkeypatch):
    monkeypatch.delenv("WAFERVIEW_NO_PROGRESS", raising=False)
    monkeypatch.setattr(progress_module, "_DELAY", 0.0)
    monkeypatch.setattr(progress_module, "_INTERVAL", 0.0)
    stream = FakeTerminal()
    assert sum(progress([1, 2, 3, 4], "reading 4 trace files", stream=stream)) == 10
    text = stream.getvalue()
    assert "\rreading 4 trace files [" in text and "] 4/4 " in text
    assert text.endswith("\r\x1b[K")  # the line is cleared at the end


def test_byte_counts_are_human(monkeypatch):
    monkeypatch.setattr(progress_module, "_DELAY", 0.0)
    stream = FakeTerminal()
    with progress(3_000_000, "fetching 2 files", unit="B", stream=stream, enabled=True) as bar:
        bar.update(1_500_000)
    assert "1.5 MB/3.0 MB" in stream.getvalue()


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("WAFERVIEW_NO_PROGRESS", "1")
    stream = FakeTerminal()
    list(progress(range(3), "x", stream=stream))
    assert stream.getvalue() == ""
