"""Progress bars: drawn on a terminal only, never on a pipe, and never sharing a line with a message.

The screen tests replay what was written through a tiny terminal (carriage return, newline, cursor up,
erase line), so they check what a user would see, not the escape codes rich happens to use."""

from __future__ import annotations

import io
import re
import sys

import pytest

import waferview.progress as progress_module
from waferview.cli.main import main
from waferview.progress import Progress, progress, status


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def screen(text: str) -> list[str]:
    """The lines left on a terminal after `text` is written to it."""
    lines, row, col = [""], 0, 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]", text):
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif token.startswith("\x1b["):
            args, cmd = token[2:-1], token[-1]
            if cmd == "A":
                row = max(0, row - int(args or 1))
            elif cmd == "K":
                lines[row] = "" if args == "2" else lines[row][:col]
            # colours (m), cursor show/hide (?25h/l): nothing to draw
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + 1:]
            col += 1
    while lines and lines[-1] == "":
        lines.pop()
    return lines


@pytest.fixture
def draw_at_once(monkeypatch):
    monkeypatch.delenv("WAFERVIEW_NO_PROGRESS", raising=False)
    monkeypatch.setattr(progress_module, "_DELAY", 0.0)
    monkeypatch.setattr(progress_module, "_INTERVAL", 0.0)


def test_nothing_is_written_when_not_a_terminal(draw_at_once):
    stream = io.StringIO()
    assert list(progress(range(5), "reading", stream=stream)) == [0, 1, 2, 3, 4]
    with progress(100, "fetching", unit="B", stream=stream) as bar:
        bar.update(40)
    with status("listing", stream=stream):
        pass
    assert stream.getvalue() == ""


def test_bar_is_drawn_and_taken_off_the_screen(draw_at_once):
    stream = FakeTerminal()
    seen = []
    for item in progress([1, 2, 3, 4], "reading 4 trace files", stream=stream):
        seen.append(item)
        if item == 3:
            drawn = screen(stream.getvalue())
    assert seen == [1, 2, 3, 4]
    assert len(drawn) == 1 and drawn[0].startswith("reading 4 trace files ") and " 2/4 " in drawn[0]
    assert screen(stream.getvalue()) == []          # transient: nothing left behind
    assert progress_module._live == []


def test_byte_counts_are_human(draw_at_once):
    stream = FakeTerminal()
    with progress(3_000_000, "fetching 2 files", unit="B", stream=stream, enabled=True) as bar:
        bar.update(1_500_000)
        assert "1.5/3.0 MB" in screen(stream.getvalue())[0]


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("WAFERVIEW_NO_PROGRESS", "1")
    monkeypatch.setattr(progress_module, "_DELAY", 0.0)
    stream = FakeTerminal()
    list(progress(range(3), "x", stream=stream))
    assert stream.getvalue() == ""


def test_a_message_during_a_bar_gets_its_own_line(draw_at_once, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = Progress(10, "simulating allo/heatmap")
    bar.update(4)
    print("waferview: trace cache for x is stale (files changed); rebuilding", file=sys.stderr)
    sys.stderr.write("half a line, ")
    sys.stderr.write("then the rest\n")
    lines = screen(terminal.getvalue())
    assert lines[:2] == ["waferview: trace cache for x is stale (files changed); rebuilding",
                         "half a line, then the rest"]
    assert len(lines) == 3 and lines[2].startswith("simulating allo/heatmap ")     # the bar, below
    bar.close()
    assert sys.stderr is terminal                                                  # the proxy is gone
    assert screen(terminal.getvalue()) == lines[:2]


def test_an_error_ends_the_bar_before_its_line(draw_at_once, monkeypatch, tmp_path):
    """--strict stops inside the file-reading loop, with the bar on screen: the error line stands alone."""
    from waferview.synth.generate import generate
    from waferview.synth.json_dataset import write_dataset

    subject = write_dataset(generate("llama4", 4, 1), tmp_path)
    last = sorted(subject.iterdir(), key=lambda p: p.name)[-1]
    last.write_text('[{"0": null, "1": [[999]]}]')
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["summary", str(tmp_path), "--strict", "--no-cache"]) == 2
    assert "reading" in terminal.getvalue()                                        # a bar was drawn
    lines = screen(terminal.getvalue())
    assert len(lines) == 1 and lines[0].startswith(f"waferview summary: {tmp_path}/")
    assert progress_module._live == [] and sys.stderr is terminal


def test_a_second_bar_waits_for_the_first(draw_at_once):
    stream = FakeTerminal()
    with Progress(5, "outer", stream=stream) as outer:
        outer.update(1)
        with Progress(5, "inner", stream=stream) as inner:
            inner.update(1)
            assert [line.split()[0] for line in screen(stream.getvalue())] == ["outer"]
    assert screen(stream.getvalue()) == []


def test_bars_from_two_threads_take_turns(draw_at_once):
    """Two bars updated at once from two threads (compare --jobs): only one is ever on screen, none is left."""
    import threading

    stream = FakeTerminal()
    most = [0]

    def work(label):
        bar = Progress(200, label, stream=stream)
        for _ in range(200):
            bar.update(1)
            most[0] = max(most[0], len(progress_module._live))
        bar.close()

    threads = [threading.Thread(target=work, args=(f"run {i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and progress_module._live == []
    assert "run 0" in stream.getvalue() or "run 1" in stream.getvalue()
