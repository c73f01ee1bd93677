"""Number formatting shared by the panels, the comparison and the summary screen (no textual here)."""

from __future__ import annotations

from dataclasses import dataclass

SPARK = "▁▂▃▄▅▆▇█"


def num(value) -> float:
    """None (a field with no value yet) reads as 0 in the panels."""
    return 0.0 if value is None else float(value)


def si(value: float | None, unit: str = "", digits: int = 3) -> str:
    """12345678 -> '12.3M' (with unit: '12.3 MB'); None -> '-'."""
    if value is None:
        return "-"
    v = float(value)
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= factor:
            text = f"{v / factor:.{digits}g}{prefix}"
            break
    else:
        text = f"{v:.{digits}g}"
    return f"{text[:-1]} {text[-1]}{unit}" if unit and text[-1].isalpha() else (f"{text} {unit}" if unit else text)


def duration(ns: float, sep: str = " ", digits: int = 1) -> str:
    """Nanoseconds as '123.4 µs', or '12.3 ms' from 10 ms (Kimi's layers at 16,384 requests take ~0.1 s)."""
    if ns >= 1e7:
        return f"{ns / 1e6:,.{digits}f}{sep}ms"
    return f"{ns / 1e3:,.{digits}f}{sep}µs"


def pct(value: float | None, digits: int = 1) -> str:
    """0.4567 -> '45.7%'. A value short of 100% (or above 0) never prints as 100.0% (0.0%): more digits
    until it does not, up to 4 (0.9997 -> '99.97%'), then '>99.99%'."""
    if value is None:
        return "-"
    v = 100 * float(value)
    text = f"{v:.{digits}f}"
    while (float(text) >= 100 > v or float(text) <= 0 < v) and digits < 4:
        digits += 1
        text = f"{v:.{digits}f}"
    if float(text) >= 100 > v:
        return ">99.99%"
    if float(text) <= 0 < v:
        return "<0.01%"
    return text + "%"


def sparkline(values, width: int, lo: float | None = None, hi: float | None = None) -> str:
    """The last `width` values as block characters, scaled to [lo, hi] (default: their min and max)."""
    vals = list(values)[-width:] if width > 0 else []
    if not vals:
        return ""
    lo = min(vals) if lo is None else lo
    hi = max(vals) if hi is None else hi
    span = hi - lo
    out = []
    for v in vals:
        f = 0.5 if span <= 0 else (v - lo) / span
        out.append(SPARK[max(0, min(len(SPARK) - 1, int(f * (len(SPARK) - 1) + 0.5)))])
    return "".join(out)


def marks(labels, width: int) -> str:
    """The marker row under a sparkline: a letter where the mode changed, blank elsewhere."""
    labs = list(labels)[-width:] if width > 0 else []
    return "".join(("*" if len(m) > 1 else m) if m else " " for m in labs)


def fit(variants, width: int) -> str:
    """The first of `variants` (longest, most complete first) that fits in `width` cells, else the last."""
    variants = list(variants)
    for text in variants:
        if len(text) <= width:
            return text
    return variants[-1] if variants else ""


def middle_cut(text: str, width: int) -> str:
    """'synthetic-qwen3-16k.wvtrace' -> 'synthe…k.wvtrace' in `width` cells (the end says the format)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    tail = min(len(text) - 1, max(1, (width - 1) // 2))
    return text[: width - 1 - tail] + "…" + text[-tail:]


def header_variants(model: str, mesh: str, batch: int | str, reused: bool, source: str, synthetic: bool,
                    width: int, profile: str = "", links: str = "") -> list[str]:
    """The header's facts, most complete first. Abbreviations come in this order: the app name, "profile P,
    L links" to "P/L", the source file name, the batch figure, the separators; 'requests reused',
    'synthetic' and the profile and link model stay to the end."""
    reuse = " (requests reused)" if reused else ""
    kind = " (synthetic)" if synthetic and source else ("synthetic" if synthetic else "")
    choice_long = f"profile {profile}, {links} links" if profile else ""
    choice_short = f"{profile}/{links}" if profile else ""

    exact, short = (f"batch {batch:,}", f"batch {si(batch)}") if isinstance(batch, int) else (f"batch {batch}",
                                                                                               "recorded")

    def line(name, sep=" · ", batch_text=exact, src=source, choice=choice_long):
        parts = [model, mesh, batch_text + reuse] + ([choice] if choice else [])
        tail = (src + kind) if src else kind.strip(" ()")
        if tail:
            parts.append(tail)
        return name + sep.join(parts)

    out = [line("waferview "), line("")]
    if profile:
        # the source, whole, outranks the long spelling of the profile and link model
        out.append(line("", choice=choice_short))
    choice = choice_short if profile else ""
    fixed = len(line("", src="", choice=choice))
    room = width - fixed - len(" · ") - len(kind)
    if source and room >= 6:
        out.append(line("", src=middle_cut(source, room), choice=choice))
    out.append(line("", src="", choice=choice))
    out.append(line("", batch_text=short, src="", choice=choice_short))
    out.append(line("", sep="·", batch_text=short, src="", choice=choice_short))
    return out


@dataclass(frozen=True)
class HeaderFacts:
    model: str
    mesh: str
    batch: int | str          # requests in the batch, or "as recorded" (recorded batches)
    reused: bool
    source: str               # the file name, without " (synthetic)"
    synthetic: bool
    profile: str = ""         # the profile the run's choices come from, and its first link model
    links: str = ""
