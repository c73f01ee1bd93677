"""Side panels: the run's numbers so far, sparklines over recent steps, the legend and the header line."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from waferview.tui.diegrid import LINK_CLASSES, LINK_H, LINK_THRESHOLDS, UTIL_FILL, UTIL_THRESHOLDS, COPY_MARK
from waferview.tui.driver import EngineView, ViewState
from waferview.tui.fmt import marks, num, pct, si, sparkline


def modes_label(placement: str, predictor: str) -> str:
    return f"{placement} + {predictor}"


def position_lines(view: EngineView, layers: int) -> list[str]:
    f = view.frame
    if f is None:
        return ["not started", f"layer 0 of {view.total:,}"]
    return [f"{f.phase} step {f.step}  layer {f.layer_index + 1}/{layers}",
            f"layer {f.seq:,} of {f.total:,}"]


def per_second(value) -> str:
    return "- (decode not started)" if value is None else f"{value:,.0f} tok/s"


def number_rows(view: EngineView) -> list[tuple[str, str]]:
    """(label, value) rows from the run's totals so far: the same fields as `summary --json`."""
    f = view.frame
    t = (view.summary or (f.totals if f is not None else None)) or {}
    if not t:
        return [(label, "-") for label in ("throughput", "hit rate", "remote", "local", "copies", "hops",
                                           "die max/mean")]
    rows = [
        ("throughput", per_second(t.get("throughput_tokens_per_s"))),
        ("hit rate", pct(t.get("cache_hit_rate"))),
        ("remote", si(t.get("remote_read_bytes"), "B")),
        ("local", si(t.get("local_read_bytes"), "B")),
        ("copies", si(t.get("local_write_bytes"), "B")),
        ("hops", f"{num(t.get('hops')):,.0f}"),
        ("die max/mean", f"{num(t.get('die_max_over_mean')):.3g}"),
    ]
    if t.get("predictor_precision") is not None or t.get("predictor_recall") is not None:
        prec, rec = t.get("predictor_precision"), t.get("predictor_recall")
        both = "/".join("-" if v is None else f"{100 * v:.1f}" for v in (prec, rec))
        rows.append(("pred P/R %", both))
    return rows


def compact_rows(view: EngineView) -> dict[str, str]:
    """Short values (at most 7 characters) for the comparison table."""
    f = view.frame
    t = (view.summary or (f.totals if f is not None else None)) or {}
    rows = {
        "tok/s": si(t.get("throughput_tokens_per_s")),
        "hit rate": pct(t.get("cache_hit_rate")),
        "remote B": si(t.get("remote_read_bytes")),
        "local B": si(t.get("local_read_bytes")),
        "copies B": si(t.get("local_write_bytes")),
        "hops": si(t.get("hops")),
        "max/mean": f"{num(t.get('die_max_over_mean')):.3g}",
    }
    if t.get("predictor_precision") is not None:
        rows["pred P"] = pct(t.get("predictor_precision"))
        rows["pred R"] = pct(t.get("predictor_recall"))
    if f is not None:
        rows["layer µs"] = f"{f.layer_time_ns / 1e3:,.1f}"
    return rows


class StatsPanel(Static):
    """One engine's numbers: position, modes, totals so far, sparklines with mode-change marks."""

    def __init__(self, layers: int, **kwargs):
        super().__init__("", **kwargs)
        self.moe_layers = layers
        self.view: EngineView | None = None
        self.wanted: tuple[str, str] | None = None

    def show(self, view: EngineView, wanted: tuple[str, str]) -> None:
        self.view, self.wanted = view, wanted
        self.update(self._text())

    def on_resize(self) -> None:
        if self.view is not None:
            self.update(self._text())

    def _text(self) -> Text:
        view = self.view
        width = max(10, self.size.width - 2) if self.size.width else 30
        text = Text(no_wrap=True, overflow="ellipsis")
        dim = Style(dim=True)
        for line in position_lines(view, self.moe_layers):
            text.append(line + "\n")
        f = view.frame
        ran = modes_label(f.placement, f.predictor) if f is not None else modes_label(*self.wanted)
        text.append("modes ", dim).append(ran, Style(bold=True))
        if f is not None and self.wanted != (f.placement, f.predictor):
            text.append(f"\n  next: {modes_label(*self.wanted)}", Style(italic=True))
        text.append("\n")
        label_w = 13
        for label, value in number_rows(view):
            text.append(f"{label:<{label_w}}", dim).append(value + "\n")
        if f is not None:
            text.append(f"{'layer time':<{label_w}}", dim).append(f"{f.layer_time_ns / 1e3:,.1f} µs\n")
        hist = view.history
        spark_w = max(4, width - 6)
        if hist:
            text.append("hit rate per step", dim).append(" 0-100%\n", dim)
            text.append(sparkline([p.hit_rate for p in hist], spark_w, 0.0, 1.0) + "\n")
            text.append(marks([p.mark for p in hist], spark_w) + "\n", Style(bold=True))
            top = max(p.mean_layer_ns for p in list(hist)[-spark_w:])
            text.append("layer time per step", dim).append(f" ≤{top / 1e3:,.0f}µs\n", dim)
            text.append(sparkline([p.mean_layer_ns for p in hist], spark_w, 0.0) + "\n")
            text.append(marks([p.mark for p in hist], spark_w), Style(bold=True))
        return text


class ComparePanel(Static):
    """The same numbers for the two engines side by side, with the ratio B / A where it reads well."""

    def __init__(self, layers: int, **kwargs):
        super().__init__("", **kwargs)
        self.moe_layers = layers

    def show(self, a: EngineView, b: EngineView | None, catching_up) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        dim = Style(dim=True)
        for line in position_lines(a, self.moe_layers):
            text.append(line + "\n")
        if b is None:
            text.append("starting the comparison…" if not catching_up else
                        f"catching up {catching_up[0]:,}/{catching_up[1]:,}", Style(italic=True))
            self.update(text)
            return
        fa, fb = a.frame, b.frame
        ma = modes_label(fa.placement, fa.predictor) if fa else modes_label(a.placement, a.predictor)
        mb = modes_label(fb.placement, fb.predictor) if fb else modes_label(b.placement, b.predictor)
        text.append("A ", Style(bold=True)).append(ma + "\n")
        text.append("B ", Style(bold=True)).append(mb + "\n")
        ca, cb = compact_rows(a), compact_rows(b)
        text.append(f"{'':<11}{'A':>7} {'B':>7}\n", Style(bold=True))
        for label in [k for k in ca] + [k for k in cb if k not in ca]:
            text.append(f"{label:<11}", dim).append(f"{ca.get(label, '-'):>7} {cb.get(label, '-'):>7}\n")
        ta = (a.summary or (fa.totals if fa else {})) or {}
        tb = (b.summary or (fb.totals if fb else {})) or {}
        thr_a, thr_b = num(ta.get("throughput_tokens_per_s")), num(tb.get("throughput_tokens_per_s"))
        if thr_a > 0 and thr_b > 0:
            text.append("B/A throughput ", dim).append(f"{thr_b / thr_a:.2f}x", Style(bold=True))
        self.update(text)


class Legend(Static):
    """Numeric thresholds of the shading and the link ramp; uses the grid's own component classes."""

    COMPONENT_CLASSES = {"diegrid--u0", "diegrid--u1", "diegrid--u2", "diegrid--u3", "diegrid--u4",
                         "diegrid--copy", *LINK_CLASSES}

    def on_mount(self) -> None:
        self.update(self._text())

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:
            self.update(self._text())

    def _text(self) -> Text:
        get = self.get_component_rich_style
        text = Text(no_wrap=False)
        bounds = [0, *[int(t * 100) for t in UTIL_THRESHOLDS]]
        text.append("die busy% ")
        for i, lo in enumerate(bounds):
            label = f"<{bounds[i + 1]}" if i + 1 < len(bounds) else f"≥{lo}"
            text.append(UTIL_FILL[i], get(f"diegrid--u{i}")).append(label, get(f"diegrid--u{i}") + Style(reverse=True))
            text.append(" ")
        text.append(COPY_MARK, get("diegrid--copy")).append("copies\n")
        text.append("link busy ")
        lb = [int(t * 100) for t in LINK_THRESHOLDS]
        labels = [f"<{lb[0]}%", f"<{lb[1]}%", f"<{lb[2]}%", f"≥{lb[2]}%"]
        for i, label in enumerate(labels, start=1):
            text.append(LINK_H[i] * 2, get(LINK_CLASSES[i])).append(label + " ")
        text.append("▶ net flow")
        return text


class HeaderBar(Static):
    """model · mesh · batch · source on the left; play state and speed on the right."""

    def __init__(self, facts: str, **kwargs):
        super().__init__("", **kwargs)
        self.facts = facts
        self.state: ViewState | None = None

    def show(self, state: ViewState) -> None:
        self.state = state
        self.update(self._text())

    def on_resize(self) -> None:
        self.update(self._text())

    def _text(self) -> Text:
        state = self.state
        if state is None:
            right = ""
        elif state.main.done and not state.paused:
            right = "END"
        elif state.paused:
            right = "PAUSED"
        else:
            right = f"▶ {state.speed} layers/s" if state.speed else "▶ max speed"
        if state is not None and state.paused and state.main.done:
            right = "PAUSED END"
        if state is not None and state.run > 1:
            right += f" run {state.run}"
        width = self.size.width or 80
        left = Text(" waferview ", Style(bold=True)).append(self.facts)
        left.truncate(max(0, width - len(right) - 2), overflow="ellipsis")
        pad = max(1, width - left.cell_len - len(right) - 1)
        return left.append(" " * pad).append(right, Style(bold=True, reverse=state is not None and state.paused))
