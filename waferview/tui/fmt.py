"""Number formatting shared by the panels, the comparison and the summary screen (no textual here)."""

from __future__ import annotations

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


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


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
