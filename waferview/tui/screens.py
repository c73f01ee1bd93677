"""Modal screens: the help listing every key, and the end-of-trace summary."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from waferview.report.summary import _fmt as format_value

KEYS = (
    ("space", "pause / resume (PAUSED shows in the top right)"),
    ("n", "one layer while paused"),
    ("+ / -", "replay speed (layers per second; max = as fast as the engine goes)"),
    ("p", "cycle placement mode: base, ep, allo (from the next layer)"),
    ("r", "cycle predictor mode: off, heatmap, oracle, lru (from the next layer)"),
    ("c", "compare: the same batch under a second mode, side by side, in lockstep"),
    ("P / R", "in the comparison: cycle the second engine's placement / predictor"),
    ("s", "show the summary again (at the end of the trace)"),
    ("?", "this help (escape or ? closes it)"),
    ("q", "quit"),
)

READING = (
    "Each cell is a die, laid out as the mesh (die = y*width + x); its number is its busy time as a "
    "percentage of the layer time (the slowest die or link sets the layer time). Fill density and colour "
    "follow the legend's thresholds. ◆ marks a die holding predictor copies for this layer. Between "
    "neighbours, the line weight is the link's busy share of the layer; an arrow shows the direction "
    "carrying at least 1.5x the other. Sparklines cover recent steps; p / r under them mark a mode change."
)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,h", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("waferview replay: keys\n\n", Style(bold=True))
        for key, what in KEYS:
            text.append(f"  {key:<7}", Style(bold=True)).append(f"{what}\n")
        text.append("\n").append(READING)
        with VerticalScroll(id="help-box"):
            yield Static(text, id="help-text")


def summary_text(summaries: list[tuple[str, dict]]) -> Text:
    """Fields and values as `waferview summary` prints them; one value column per engine."""
    keys = [k for k in summaries[0][1] if k != "skipped"]
    width = max(len(k) for k in keys)
    text = Text()
    if len(summaries) > 1:
        text.append(" " * (width + 2))
        for label, _ in summaries:
            text.append(f"{label:>18}", Style(bold=True))
        text.append("\n")
    for key in keys:
        text.append(f"{key:<{width}}  ", Style(dim=True))
        for _, fields in summaries:
            value = format_value(fields.get(key))
            text.append(f"{value:>18}" if len(summaries) > 1 else value)
        text.append("\n")
    return text


class SummaryScreen(ModalScreen):
    """The run's summary at the end of the trace (the same fields and values as `waferview summary`)."""

    BINDINGS = [Binding("escape,enter,s", "app.pop_screen", "Close")]

    def __init__(self, summaries: list[tuple[str, dict]], note: str = ""):
        super().__init__()
        self.summaries = summaries
        self.note = note

    def compose(self) -> ComposeResult:
        head = Text("end of trace: summary", Style(bold=True))
        head.append("  (same as `waferview summary`; escape closes, q quits)", Style(dim=True))
        if self.note:
            head.append(f"\n{self.note}", Style(italic=True))
        with VerticalScroll(id="summary-box"):
            yield Static(head, id="summary-title")
            yield Static(summary_text(self.summaries), id="summary-text")
