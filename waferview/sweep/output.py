"""What a sweep writes: rows (columns, CSV and JSONL lines written whole), the terminal table as rows
finish, the progress line, and the compact bar chart of speedups (rich) that ends the table."""

from __future__ import annotations

import os
import sys
import time

import orjson

# every row: where it sits in the grid, whether it ran, then the axes, then summary's fields, then ours
HEAD_COLUMNS = ("config", "status", "error")
TAIL_COLUMNS = ("ceiling_tokens_per_s", "speedup_vs_base", "hop_reduction_vs_base")


def columns(axis_columns: list[str]) -> list[str]:
    from waferview.report.summary import FIELD_DOCS

    return [*HEAD_COLUMNS, "sweep_source", "sweep_model", *axis_columns,
            *(["strategy"] if "strategy" not in axis_columns else []), *FIELD_DOCS, *TAIL_COLUMNS]


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        value = orjson.dumps(value).decode()
    elif isinstance(value, float):
        value = repr(value)
    else:
        value = str(value)
    if any(c in value for c in ',"\n\r'):
        value = '"' + value.replace('"', '""') + '"'
    return value


def csv_line(row: dict, cols: list[str]) -> str:
    return ",".join(_csv_cell(row.get(c)) for c in cols) + "\n"


class RowFile:
    """CSV or JSONL rows, each written with one write call and flushed, so the file holds whole rows only
    (on a short write, e.g. a full disk, the partial row is cut off again)."""

    def __init__(self, path: str, kind: str, cols: list[str]):
        self.kind, self.cols = kind, cols
        self.fd = sys.stdout.fileno() if path == "-" else os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        self.own = path != "-"
        if path == "-":
            sys.stdout.flush()
        if kind == "csv":
            self._write(",".join(cols) + "\n")

    def _write(self, text: str) -> None:
        data = text.encode()
        start = os.lseek(self.fd, 0, os.SEEK_CUR) if self.own else None
        try:
            written = os.write(self.fd, data)
            while written < len(data):
                more = os.write(self.fd, data[written:])
                if more <= 0:
                    raise OSError("short write")
                written += more
        except OSError:
            if start is not None:
                os.ftruncate(self.fd, start)
                os.lseek(self.fd, start, os.SEEK_SET)
            raise

    def write(self, row: dict) -> None:
        if self.kind == "csv":
            self._write(csv_line(row, self.cols))
        else:
            self._write(orjson.dumps({c: row.get(c) for c in self.cols}).decode() + "\n")

    def close(self) -> None:
        if self.own:
            os.close(self.fd)


# ---- the terminal table ---------------------------------------------------------------------

def _num(v, fmt):
    return "-" if v is None else fmt.format(v)


def _hop(row):
    v = row.get("hop_reduction_vs_base")
    if v is not None:
        return f"{v:,.0f}x" if v >= 100 else f"{v:.1f}x"
    return "no hops" if row.get("hops") == 0 else "-"


VALUE_COLUMNS = (
    ("tokens/s", lambda r: _num(r.get("throughput_tokens_per_s"), "{:,.0f}")),
    ("speedup", lambda r: _num(r.get("speedup_vs_base"), "{:.2f}x")),
    ("hop red.", _hop),
    ("hit rate", lambda r: _num(r.get("cache_hit_rate"), "{:.3f}")),
    ("util", lambda r: _num(r.get("mean_die_utilization"), "{:.3f}")),
)


def _label(v) -> str:
    return "default" if v is None else str(v)


class Table:
    """One line per row as rows finish: the axes that vary, the strategy, the headline figures."""

    def __init__(self, key_columns: list[str], rows_hint: list[dict], stream=None):
        self.stream = stream or sys.stdout
        self.keys = key_columns
        self.widths = [max(len(_short(k)), *(len(_label(r.get(k))) for r in rows_hint)) if rows_hint else len(_short(k))
                       for k in key_columns]
        self.value_widths = [max(len(n), 9) for n, _ in VALUE_COLUMNS]

    def header(self) -> str:
        cells = [_short(k).ljust(w) for k, w in zip(self.keys, self.widths)]
        cells += [n.rjust(w) for (n, _), w in zip(VALUE_COLUMNS, self.value_widths)]
        return "  ".join(cells).rstrip()

    def line(self, row: dict) -> str:
        cells = [_label(row.get(k)).ljust(w) for k, w in zip(self.keys, self.widths)]
        if row["status"] == "failed":
            return "  ".join(cells) + "  FAILED: " + (row.get("error") or "")
        cells += [fn(row).rjust(w) for (_, fn), w in zip(VALUE_COLUMNS, self.value_widths)]
        return "  ".join(cells).rstrip()

    def print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _short(column: str) -> str:
    return column[6:] if column.startswith("sweep_") else column


# ---- progress -------------------------------------------------------------------------------

def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class SweepProgress:
    """`sweep: 37/120 rows (12 cached), 4.1 rows/min, ETA 3m12s` on stderr, only on a terminal."""

    def __init__(self, total: int, cached: int, stream=None, enabled: bool | None = None):
        from waferview.progress import _isatty

        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = _isatty(self.stream) and not os.environ.get("WAFERVIEW_NO_PROGRESS")
        self.enabled = enabled
        self.total, self.cached, self.done = total, cached, 0
        self.start = time.monotonic()
        self._shown = False
        self._last = 0.0

    def text(self, now: float) -> str:
        computed = max(0, self.done - self.cached)
        elapsed = max(now - self.start, 1e-9)
        line = f"sweep: {self.done}/{self.total} rows" + (f" ({self.cached} cached)" if self.cached else "")
        if computed:
            rate = computed / elapsed * 60
            line += f", {rate:,.1f} rows/min, ETA {_duration((self.total - self.done) / (rate / 60))}"
        return line + f", {_duration(elapsed)} elapsed"

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < 0.2):
            return
        self._last = now
        self.stream.write("\r" + self.text(now) + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def advance(self) -> None:
        self.done += 1
        self.draw(force=True)   # a row was just printed over the line: put it back at once


# ---- the bar chart --------------------------------------------------------------------------

def _bars(rows: list[dict], group_columns: list[str], most: int):
    """(labels, speedup, note) per bar: every row when they are few, else the mean per first column and
    strategy (with the range), so the chart stays compact."""
    have = [r for r in rows if r.get("speedup_vs_base") is not None and r.get("strategy") != "Base"]
    if len(have) <= most or not group_columns:
        return [([_label(r.get(c)) for c in group_columns] + [str(r["strategy"])], r["speedup_vs_base"], "")
                for r in have], group_columns
    first = group_columns[0]
    groups: dict = {}
    for r in have:
        groups.setdefault((_label(r.get(first)), str(r["strategy"])), []).append(r["speedup_vs_base"])
    bars = [([g, s], sum(v) / len(v), f" (mean of {len(v)}, {min(v):.2f}-{max(v):.2f}x)")
            for (g, s), v in groups.items()]
    return bars, [first]


def speedup_chart(rows: list[dict], group_columns: list[str], width: int = 40, most: int = 24) -> str | None:
    """Speedups over Base as horizontal bars drawn with rich: one per row when there are at most `most`,
    else the mean per first varying column and strategy."""
    bars, shown = _bars(rows, group_columns, most)
    if not bars:
        return None
    from io import StringIO

    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    top = max(v for _, v, _ in bars)
    scale = width / top if top > 0 else 0
    t = RichTable(title="speedup over Base", box=None, show_header=True, pad_edge=False, title_justify="left")
    for c in shown:
        t.add_column(_short(c))
    t.add_column("strategy")
    t.add_column("", no_wrap=True)
    for labels, v, note in bars:
        n = v * scale
        full = int(n)
        bar = "█" * full + (" ▏▎▍▌▋▊▉"[int((n - full) * 8)] if n - full >= 0.125 else "")
        t.add_row(*labels, Text(bar, style="green" if v > 1 else "red") + Text(f" {v:.2f}x{note}"))
    buf = StringIO()
    force = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    Console(file=buf, width=160, force_terminal=force, no_color=not force, highlight=False).print(t)
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").splitlines())

