"""Plain-text rendering of report dicts."""

from __future__ import annotations


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    return str(value)


def format_table(fields: dict, title: str = "") -> str:
    width = max((len(k) for k in fields), default=0)
    lines = [title] if title else []
    for key, value in fields.items():
        lines.append(f"  {key:<{width}}  {_fmt(value)}")
    for item in fields.get("skipped") or []:
        lines.append(f"    skipped {item['file']}: {item['reason']}")
    return "\n".join(lines)
