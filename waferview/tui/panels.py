"""Side panels: the run's numbers so far, sparklines over recent steps, the legend and the header line."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from waferview.tui.diegrid import (BOUND_MARK, COPY_MARK, CURSOR_MARKS, LINK_CLASSES, LINK_H, LINK_THRESHOLDS,
                                   SELECTED_MARKS, UTIL_FILL, UTIL_THRESHOLDS)
from waferview.tui.driver import EngineView, ViewState
from waferview.tui.fmt import HeaderFacts, duration, fit, header_variants, marks, num, pct, si, sparkline

DIM, BOLD = Style(dim=True), Style(bold=True)
LABEL_W = 14


def modes_label(placement: str, predictor: str, links: str | None = None) -> str:
    """"allo + heatmap", with the link model when it is not waferview's default: "allo + heatmap · circuit"."""
    return f"{placement} + {predictor}" + (f" · {links}" if links and links != "fluid" else "")


def position_lines(view: EngineView, layers: int) -> list[str]:
    f = view.frame
    if f is None:
        return ["not started", f"layer 0 of {view.total:,}"]
    return [f"{f.phase} step {f.step}  layer {f.layer_index + 1}/{layers}",
            f"layer {f.seq:,} of {f.total:,}"]


def per_second(value) -> str:
    return "- (prefill)" if value is None else f"{value:,.0f} tok/s"


def totals_of(view: EngineView) -> dict:
    f = view.frame
    return (view.summary or (f.totals if f is not None else None)) or {}


def number_rows(view: EngineView) -> list[tuple[str, str]]:
    """(label, value) rows from the run's totals so far: the same fields as `summary --json`."""
    t = totals_of(view)
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
        rows.append(("pred P / R", f"{pct(prec)} / {pct(rec)}"))
    return rows


def compact_rows(view: EngineView) -> dict[str, str]:
    """Values of at most 8 cells for the comparison table (units in the value, not the label)."""
    f = view.frame
    t = totals_of(view)
    rows = {
        "tok/s": si(t.get("throughput_tokens_per_s")),
        "hit rate": pct(t.get("cache_hit_rate")),
        "remote": si(t.get("remote_read_bytes"), "B"),
        "local": si(t.get("local_read_bytes"), "B"),
        "copies": si(t.get("local_write_bytes"), "B"),
        "hops": si(t.get("hops")),
        "max/mean": f"{num(t.get('die_max_over_mean')):.3g}",
    }
    if t.get("predictor_precision") is not None:
        rows["pred P"] = pct(t.get("predictor_precision"))
        rows["pred R"] = pct(t.get("predictor_recall"))
    if f is not None:
        rows["layer"] = duration(f.layer_time_ns, sep="")
    return rows


class StatsPanel(Static):
    """One engine's numbers: position, modes, run totals so far, this layer, sparklines with mode marks."""

    def __init__(self, layers: int, **kwargs):
        super().__init__("", **kwargs)
        self.moe_layers = layers
        self.view: EngineView | None = None
        self.wanted: tuple[str, str] | None = None
        self.bound_text = ""

    def show(self, view: EngineView, wanted: tuple[str, str], bound_text: str = "") -> None:
        self.view, self.wanted, self.bound_text = view, wanted, bound_text
        self.update(self._text())

    def on_resize(self) -> None:
        if self.view is not None:
            self.update(self._text())

    def _text(self) -> Text:
        view = self.view
        width = max(10, self.size.width) if self.size.width else 30
        text = Text(no_wrap=True, overflow="ellipsis")
        for line in position_lines(view, self.moe_layers):
            text.append(line + "\n")
        f = view.frame
        ran = modes_label(f.placement, f.predictor, f.links) if f is not None else modes_label(*self.wanted)
        text.append("modes ", DIM).append(ran, BOLD)
        if f is not None and tuple(self.wanted) != (f.placement, f.predictor, f.links)[:len(self.wanted)]:
            text.append(f"\n  next: {modes_label(*self.wanted)}", Style(italic=True))
        text.append("\n")
        text.append("run so far" + (" (end)" if view.done else "") + "\n", BOLD)
        for label, value in number_rows(view):
            text.append(f" {label:<{LABEL_W - 1}}", DIM).append(value + "\n")
        if f is not None:
            text.append("this layer\n", BOLD)
            text.append(f" {'time':<{LABEL_W - 1}}", DIM).append(duration(f.layer_time_ns) + "\n")
        hist = view.history
        spark_w = max(4, width)
        if hist:
            shown = list(hist)[-spark_w:]
            text.append("per step: hit rate", DIM).append(" 0-100%\n", DIM)
            text.append(sparkline([p.hit_rate for p in hist], spark_w, 0.0, 1.0) + "\n")
            text.append(marks([p.mark for p in hist], spark_w) + "\n", BOLD)
            top = max(p.mean_layer_ns for p in shown)
            text.append("per step: layer", DIM).append(f" ≤{duration(top, sep='', digits=0)}\n", DIM)
            text.append(sparkline([p.mean_layer_ns for p in hist], spark_w, 0.0))
        return text


class ComparePanel(Static):
    """The two engines' run totals side by side (columns A and B), and the ratio B / A of throughput."""

    def __init__(self, layers: int, **kwargs):
        super().__init__("", **kwargs)
        self.moe_layers = layers

    def show(self, a: EngineView, b: EngineView | None, waiting: str = "") -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        for line in position_lines(a, self.moe_layers):
            text.append(line + "\n")
        if b is None:
            text.append(waiting or "starting the comparison…", Style(italic=True))
            self.update(text)
            return
        fa, fb = a.frame, b.frame
        ma = modes_label(fa.placement, fa.predictor) if fa else modes_label(a.placement, a.predictor)
        mb = modes_label(fb.placement, fb.predictor) if fb else modes_label(b.placement, b.predictor)
        text.append("A ", BOLD).append(ma + "\n")
        text.append("B ", BOLD).append(mb + "\n")
        ca, cb = compact_rows(a), compact_rows(b)
        text.append(f"{'run so far':<11}{'A':>8}{'B':>8}\n", BOLD)
        for label in [k for k in ca] + [k for k in cb if k not in ca]:
            if label == "layer":
                text.append("this layer\n", BOLD)
            text.append(f"{label:<11}", DIM).append(f"{ca.get(label, '-'):>8}{cb.get(label, '-'):>8}\n")
        thr_a = num(totals_of(a).get("throughput_tokens_per_s"))
        thr_b = num(totals_of(b).get("throughput_tokens_per_s"))
        if thr_a > 0 and thr_b > 0:
            text.append("B/A throughput ", DIM).append(f"{thr_b / thr_a:.2f}x", BOLD)
        self.update(text)


class Legend(Static):
    """Numeric thresholds of the shading and the link ramp; uses the grid's own component classes."""

    COMPONENT_CLASSES = {"diegrid--u0", "diegrid--u1", "diegrid--u2", "diegrid--u3", "diegrid--u4",
                         "diegrid--copy", "diegrid--bound", *LINK_CLASSES}

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
        text.append("die% ")
        for i, lo in enumerate(bounds):
            label = f"<{bounds[i + 1]}" if i + 1 < len(bounds) else f"≥{lo}"
            text.append(UTIL_FILL[i], get(f"diegrid--u{i}")).append(label, get(f"diegrid--u{i}") + Style(reverse=True))
            text.append(" ")
        text.append(COPY_MARK, get("diegrid--copy")).append("copies\n")
        text.append("link% ")
        lb = [int(t * 100) for t in LINK_THRESHOLDS]
        labels = [f"<{lb[0]}", f"<{lb[1]}", f"<{lb[2]}", f"≥{lb[2]}"]
        for i, label in enumerate(labels, start=1):
            text.append(LINK_H[i] * 2, get(LINK_CLASSES[i])).append(label + " ")
        text.append("▶flow ").append(BOUND_MARK, get("diegrid--bound")).append("bound")
        return text


class HeaderBar(Static):
    """model · mesh · batch · source on the left (abbreviated to fit); play state and speed on the right."""

    def __init__(self, facts: HeaderFacts, **kwargs):
        super().__init__("", **kwargs)
        self.facts = facts
        self.state: ViewState | None = None

    def show(self, state: ViewState) -> None:
        self.state = state
        self.update(self._text())

    def on_resize(self) -> None:
        self.update(self._text())

    def _right(self) -> str:
        state = self.state
        if state is None:
            return ""
        if state.failure is not None:
            return "ERROR"
        if not state.ready:
            return "SETUP"
        if state.paused:
            right = "PAUSED END" if state.main.done else "PAUSED"
        elif state.main.done:
            right = "END"
        else:
            right = f"▶ {state.speed} layers/s" if state.speed else "▶ max speed"
        return right + (f" run {state.run}" if state.run > 1 else "")

    def _text(self) -> Text:
        right = self._right()
        width = self.size.width or 80
        room = max(0, width - len(right) - 3)
        f = self.facts
        facts = fit(header_variants(f.model, f.mesh, f.batch, f.reused, f.source, f.synthetic, room, f.profile,
                                    f.links), room)
        left = Text(" ")
        if facts.startswith("waferview "):
            left.append("waferview", BOLD)
            facts = facts[len("waferview"):]
        left.append(facts)
        left.truncate(max(0, width - len(right) - 2), overflow="ellipsis")
        pad = max(1, width - left.cell_len - len(right) - 1)
        state = self.state
        return left.append(" " * pad).append(right, Style(bold=True, reverse=state is not None and state.paused))


class FitLine(Static):
    """One line of text, the longest of its variants that fits the width (the last one wraps)."""

    def __init__(self, variants=(), **kwargs):
        super().__init__("", **kwargs)
        self.variants = tuple(variants)

    def set_variants(self, variants) -> None:
        if tuple(variants) != self.variants:
            self.variants = tuple(variants)
            self._refit()

    def on_resize(self) -> None:
        self._refit()

    def _refit(self) -> None:
        self.update(fit(self.variants, self.size.width or 80) if self.variants else "")
        self.set_class(not self.variants, "-hidden")


MARK_HELP = (f"{CURSOR_MARKS[0]} {CURSOR_MARKS[1]} cursor, {SELECTED_MARKS[0]} {SELECTED_MARKS[1]} selected, "
             f"{BOUND_MARK} the layer's bottleneck")
