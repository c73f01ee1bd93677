"""Modal screens: the help listing every key (from waferview.tui.keys), the summary, the jump prompt."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from waferview.report.summary import format_value
from waferview.tui.keys import help_rows

READING = (
    "A cell is a die (die = y*width + x); its number is its busy time as a % of the layer time, which "
    "the slowest die or link sets. Fill and colour follow the legend. ◆: the die holds predictor copies "
    "of this layer. Between neighbours, line weight is the link's busy share of the layer; an arrow "
    "points the way carrying 1.5x the other. ! marks the layer's bottleneck (the line under the grid "
    "names it), [ ] the cursor, » « the selected die or link. Under the sparklines, p / r mark a mode change."
)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,h", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("waferview replay: keys\n\n", Style(bold=True))
        for key, what in help_rows():
            text.append(f"  {key:<8}", Style(bold=True)).append(f"{what}\n")
        text.append("\n").append(READING)
        with VerticalScroll(id="help-box"):
            yield Static(text, id="help-text")


# shown first: the run's results; every other field follows in `summary --json` order
HEADLINE = ("throughput_tokens_per_s", "decode_time_ms", "prefill_time_ms", "cache_hit_rate", "hops",
            "remote_read_bytes", "local_read_bytes", "local_write_bytes", "predictor_precision",
            "predictor_recall", "mean_die_utilization", "die_max_over_mean", "fits_in_hbm")


def summary_text(summaries: list[tuple[str, dict]]) -> Text:
    """Fields and values as `waferview summary` prints them; one value column per engine."""
    fields = summaries[0][1]
    keys = [k for k in HEADLINE if k in fields] + [k for k in fields if k not in HEADLINE and k != "skipped"]
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
    """The run's summary (the same fields and values as `waferview summary`): at the end of the trace, or
    so far (partial: `note` says how far)."""

    BINDINGS = [Binding("escape,enter,s", "app.pop_screen", "Close")]

    def __init__(self, summaries: list[tuple[str, dict]], note: str = "", partial: bool = False):
        super().__init__()
        self.summaries = summaries
        self.note = note
        self.partial = partial

    def compose(self) -> ComposeResult:
        head = Text("PARTIAL summary so far" if self.partial else "end of trace: summary", Style(bold=True))
        head.append(" (as `waferview summary`; esc closes)", Style(dim=True))
        if self.note:
            head.append(f"\n{self.note}", Style(italic=True))
        with VerticalScroll(id="summary-box"):
            yield Static(head, id="summary-title")
            yield Static(summary_text(self.summaries), id="summary-text")


class JumpScreen(ModalScreen[int | None]):
    """`g`: the step to jump to (0 = the prefill); dismissed with the number, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, last_step: int):
        super().__init__()
        self.last_step = last_step

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="jump-box"):
            yield Static(f"jump to step (0 = prefill, 1-{self.last_step} decode), enter:", id="jump-title")
            yield Input(placeholder="step", type="integer", id="jump-input")
            yield Static("", id="jump-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text.isdigit() or int(text) > self.last_step:
            self.query_one("#jump-error", Static).update(f"a step from 0 to {self.last_step}")
            return
        self.dismiss(int(text))

    def action_cancel(self) -> None:
        self.dismiss(None)
