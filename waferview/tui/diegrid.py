"""The die grid: the mesh drawn cell by cell, shaded by utilisation, with the links between neighbours.

Readable without colour: every utilisation level has its own fill character (a density ramp) and the cell
carries its number; link intensity is a line weight ramp and direction an arrow. Colours come from
component classes so waferview.tcss (and themes) restyle them. Uses the line API: the strips are built
once per (frame, size) and cached.
"""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from waferview.sim.frame import Frame

# utilisation levels: [0, 20%) [20, 40%) [40, 60%) [60, 80%) [80%, ...]
UTIL_THRESHOLDS = (0.2, 0.4, 0.6, 0.8)
UTIL_FILL = "·░▒▓█"
# link levels by busy fraction of the layer time: idle, (0, 10%) [10, 40%) [40, 80%) [80%, ...]
LINK_THRESHOLDS = (0.1, 0.4, 0.8)
LINK_H = " ·─━█"
LINK_V = " ·│┃█"
LINK_CLASSES = ("link--idle", "link--low", "link--mid", "link--high", "link--saturated")
COPY_MARK = "◆"
# a direction is drawn when one way carries at least this many times the other
DIRECTION_RATIO = 1.5


def util_level(u: float) -> int:
    return int(np.searchsorted(UTIL_THRESHOLDS, u, side="right"))


def link_level(busy: float) -> int:
    if busy <= 0:
        return 0
    return 1 + int(np.searchsorted(LINK_THRESHOLDS, busy, side="right"))


def grid_geometry(width: int, height: int, mesh_w: int, mesh_h: int) -> tuple[int, int, int, int]:
    """(cell_w, cell_h, gap_x, gap_y) that fit the mesh in width x height; cells never vanish.
    Gaps (where the links are drawn) shrink before cells do; cells are about twice as wide as tall."""
    gap_x = 1
    for gx in (3, 2):
        if (width - (mesh_w - 1) * gx) // mesh_w >= 2 * gx:
            gap_x = gx
            break
    cell_w = max(1, min(12, (width - (mesh_w - 1) * gap_x) // mesh_w))
    gap_y = 1 if height >= 2 * mesh_h - 1 else 0
    cell_h = (height - (mesh_h - 1) * gap_y) // mesh_h if mesh_h else 1
    cell_h = max(1, min(cell_h, 5, max(1, cell_w // 2)))
    return cell_w, cell_h, gap_x, gap_y


class DieGrid(Widget):
    """W x H dies of the mesh, shaded by the utilisation of the frame's layer."""

    COMPONENT_CLASSES = {
        "diegrid--u0", "diegrid--u1", "diegrid--u2", "diegrid--u3", "diegrid--u4",
        "diegrid--copy", *LINK_CLASSES,
    }

    def __init__(self, mesh, link_capacity_bytes_per_ns: float, *, name=None, id=None, classes=None):
        super().__init__(name=name, id=id, classes=classes)
        self.mesh_w, self.mesh_h = int(mesh.width), int(mesh.height)
        self.links = np.asarray(mesh.links, dtype=np.int64).reshape(-1, 2)
        self.link_capacity = float(link_capacity_bytes_per_ns)
        self.frame: Frame | None = None
        self._cache_key = None
        self._strips: list[Strip] = []
        # (a, b) -> index of the directed link a -> b
        self._link_index = {(int(a), int(b)): i for i, (a, b) in enumerate(self.links)}

    def show(self, frame: Frame | None) -> None:
        if frame is not self.frame:
            self.frame = frame
            self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache_key = None

    # ---- drawing --------------------------------------------------------------------------------------
    def _styles(self):
        get = self.get_component_rich_style
        return ([get(f"diegrid--u{i}") for i in range(5)], get("diegrid--copy"), [get(c) for c in LINK_CLASSES])

    def _pair(self, a: int, b: int, link_bytes) -> tuple[float, float]:
        ia, ib = self._link_index.get((a, b)), self._link_index.get((b, a))
        return (float(link_bytes[ia]) if ia is not None else 0.0, float(link_bytes[ib]) if ib is not None else 0.0)

    def _busy(self, nbytes: float, layer_ns: float) -> float:
        if nbytes <= 0:
            return 0.0
        return nbytes / (self.link_capacity * layer_ns) if layer_ns > 0 else 1.0

    def _build(self) -> list[Strip]:
        width, height = self.size
        base = self.rich_style
        if width <= 0 or height <= 0:
            return []
        canvas = [[(" ", base)] * width for _ in range(height)]

        def put(x, y, text, style):
            if 0 <= y < height:
                row = canvas[y]
                for i, ch in enumerate(text):
                    if 0 <= x + i < width:
                        row[x + i] = (ch, base + style)

        util_styles, copy_style, link_styles = self._styles()
        mw, mh = self.mesh_w, self.mesh_h
        cw, ch, gx, gy = grid_geometry(width, height, mw, mh)
        grid_w, grid_h = mw * cw + (mw - 1) * gx, mh * ch + (mh - 1) * gy
        ox, oy = max(0, (width - grid_w) // 2), max(0, (height - grid_h) // 2)
        frame = self.frame
        D = mw * mh
        util = frame.die_utilization if frame is not None else np.zeros(D)
        copies = frame.die_copies if frame is not None else np.zeros(D, dtype=np.int64)
        link_bytes = frame.link_bytes if frame is not None else np.zeros(len(self.links))
        layer_ns = frame.layer_time_ns if frame is not None else 0.0
        mid = ch // 2

        for y in range(mh):
            for x in range(mw):
                d = y * mw + x
                u = float(util[d]) if d < len(util) else 0.0
                lvl = util_level(u)
                style = util_styles[lvl]
                cx, cy = ox + x * (cw + gx), oy + y * (ch + gy)
                for r in range(ch):
                    put(cx, cy + r, UTIL_FILL[lvl] * cw, style)
                pct = min(100, int(round(u * 100)))
                label = str(pct) if cw >= 3 else (str(min(9, pct // 10)) if pct < 100 else "█")
                if frame is None:
                    label = "-"
                if cw >= len(label) + 2:
                    label = f" {label} "
                put(cx + (cw - len(label)) // 2, cy + mid, label, style + Style(reverse=True, bold=True))
                if d < len(copies) and copies[d] > 0:
                    if ch >= 2:
                        put(cx + cw - 1, cy, COPY_MARK, copy_style)
                    else:
                        put(cx + cw - 1, cy + mid, COPY_MARK, copy_style)
                # link to the right neighbour, drawn in the gap on the middle row
                if x + 1 < mw and gx > 0:
                    fwd, back = self._pair(d, d + 1, link_bytes)
                    lvl_l = link_level(self._busy(max(fwd, back), layer_ns))
                    put(cx + cw, cy + mid, self._h_glyph(gx, lvl_l, fwd, back), link_styles[lvl_l])
                # link to the neighbour below, drawn in the gap row under the cell's centre
                if y + 1 < mh and gy > 0:
                    fwd, back = self._pair(d, d + mw, link_bytes)
                    lvl_l = link_level(self._busy(max(fwd, back), layer_ns))
                    glyph = self._v_glyph(cw, lvl_l, fwd, back)
                    put(cx + (cw - len(glyph)) // 2, cy + ch, glyph, link_styles[lvl_l])

        strips = []
        for row in canvas:
            segments, run_text, run_style = [], "", None
            for ch_, st in row:
                if st is run_style or st == run_style:
                    run_text += ch_
                else:
                    if run_text:
                        segments.append(Segment(run_text, run_style))
                    run_text, run_style = ch_, st
            if run_text:
                segments.append(Segment(run_text, run_style))
            strips.append(Strip(segments, width))
        return strips

    @staticmethod
    def _direction(fwd: float, back: float) -> int:
        """+1 when the forward direction dominates, -1 backward, 0 balanced or idle."""
        if fwd <= 0 and back <= 0:
            return 0
        if fwd >= DIRECTION_RATIO * back:
            return 1
        if back >= DIRECTION_RATIO * fwd:
            return -1
        return 0

    def _h_glyph(self, gap: int, level: int, fwd: float, back: float) -> str:
        fill = LINK_H[level]
        if level == 0:
            return " " * gap
        way = self._direction(fwd, back)
        if gap == 1:
            return {1: "▶", -1: "◀", 0: fill}[way]
        body = fill * gap
        if way == 1:
            return body[:-1] + "▶"
        if way == -1:
            return "◀" + body[1:]
        return "◀" + body[1:-1] + "▶" if gap >= 3 else body

    def _v_glyph(self, cell_w: int, level: int, fwd: float, back: float) -> str:
        fill = LINK_V[level]
        if level == 0:
            return " "
        way = self._direction(fwd, back)
        arrow = {1: "▼", -1: "▲", 0: ""}[way]
        if cell_w < 2:
            return arrow or fill
        return fill + arrow if arrow else fill

    def render_line(self, y: int) -> Strip:
        key = (self.frame, self.size)
        if key != self._cache_key:
            self._strips = self._build()
            self._cache_key = key
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)
