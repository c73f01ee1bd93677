"""The die grid: the mesh drawn cell by cell, shaded by utilisation, with the links between neighbours.

Readable without colour: every utilisation level has its own fill character (a density ramp) and the cell
carries its number; link intensity is a line weight ramp and direction an arrow. The layer's bottleneck
is marked "!", the cursor "[ ]" and the selection "» «", so they read without colour too. Colours come from
component classes so waferview.tcss (and themes) restyle them. Uses the line API: the strips are built
once per (frame, marks, size) and cached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from textual.events import Click
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from waferview.tui.selection import bound_of, element_lattice, lattice_element

# utilisation levels: [0, 20%) [20, 40%) [40, 60%) [60, 80%) [80%, ...]
UTIL_THRESHOLDS = (0.2, 0.4, 0.6, 0.8)
UTIL_FILL = "·░▒▓█"
# link levels by busy fraction of the layer time: idle, (0, 10%) [10, 40%) [40, 80%) [80%, ...]
LINK_THRESHOLDS = (0.1, 0.4, 0.8)
LINK_H = " ·─━█"
LINK_V = " ·│┃█"
LINK_CLASSES = ("link--idle", "link--low", "link--mid", "link--high", "link--saturated")
COPY_MARK = "◆"
BOUND_MARK = "!"
CURSOR_MARKS = "[]"
SELECTED_MARKS = "»«"
# a direction is drawn when one way carries at least this many times the other
DIRECTION_RATIO = 1.5


def util_level(u: float) -> int:
    return int(np.searchsorted(UTIL_THRESHOLDS, u, side="right"))


def link_level(busy: float) -> int:
    if busy <= 0:
        return 0
    return 1 + int(np.searchsorted(LINK_THRESHOLDS, busy, side="right"))


@dataclass(frozen=True)
class Marks:
    """What the grid marks besides the frame: the cursor and the selected element (("die", d) or
    ("link", a, b)); the bottleneck comes from the frame itself."""
    cursor: tuple | None = None
    selected: tuple | None = None
    show_bound: bool = True


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


def grid_fits(width: int, height: int, mesh_w: int, mesh_h: int) -> bool:
    """Whether the mesh can be drawn whole in width x height (one cell a die at the least)."""
    cw, ch, gx, gy = grid_geometry(width, height, mesh_w, mesh_h)
    return mesh_w * cw + (mesh_w - 1) * gx <= width and mesh_h * ch + (mesh_h - 1) * gy <= height


def too_small_lines(width: int, height: int, mesh_w: int, mesh_h: int) -> list[str]:
    """What the grid says instead of a cropped mesh (a part of the wafer drawn as if whole would mislead)."""
    need_w, need_h = 2 * mesh_w - 1, mesh_h
    return [f"the {mesh_w}x{mesh_h} die grid needs {need_w}x{need_h} cells,",
            f"this pane has {width}x{height}:",
            "enlarge the terminal or use a smaller --mesh",
            "(the panels still show the run)"]


class DieGrid(Widget):
    """W x H dies of the mesh, shaded by the utilisation of the frame's layer."""

    COMPONENT_CLASSES = {
        "diegrid--u0", "diegrid--u1", "diegrid--u2", "diegrid--u3", "diegrid--u4",
        "diegrid--label", "diegrid--copy", "diegrid--bound", "diegrid--cursor", "diegrid--selected",
        *LINK_CLASSES,
    }

    class Picked(Message):
        """A click on a die or a link: element = ("die", d) or ("link", a, b)."""

        def __init__(self, grid: "DieGrid", element: tuple):
            super().__init__()
            self.grid = grid
            self.element = element

    def __init__(self, mesh, link_capacity_bytes_per_ns: float, *, name=None, id=None, classes=None):
        super().__init__(name=name, id=id, classes=classes)
        self.mesh = mesh
        self.mesh_w, self.mesh_h = int(mesh.width), int(mesh.height)
        self.links = np.asarray(mesh.links, dtype=np.int64).reshape(-1, 2)
        self.link_capacity = float(link_capacity_bytes_per_ns)
        self.frame = None
        self.marks = Marks()
        self.bound = None
        self._cache_key = None
        self._strips: list[Strip] = []
        # (a, b) -> index of the directed link a -> b
        self._link_index = {(int(a), int(b)): i for i, (a, b) in enumerate(self.links)}

    def show(self, frame, marks: Marks | None = None) -> None:
        marks = marks if marks is not None else self.marks
        if frame is not self.frame or marks != self.marks:
            if frame is not self.frame:
                self.bound = bound_of(frame, self.mesh, self.link_capacity)
            self.frame, self.marks = frame, marks
            self.refresh()

    @property
    def vertical_links(self) -> bool:
        """Whether the vertical links have rows of their own at this size (else the cursor skips them)."""
        return grid_geometry(*self.size, self.mesh_w, self.mesh_h)[3] > 0 if self.size.height else True

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache_key = None

    # ---- geometry -------------------------------------------------------------------------------------
    def _layout(self):
        width, height = self.size
        mw, mh = self.mesh_w, self.mesh_h
        cw, ch, gx, gy = grid_geometry(width, height, mw, mh)
        grid_w, grid_h = mw * cw + (mw - 1) * gx, mh * ch + (mh - 1) * gy
        return cw, ch, gx, gy, max(0, (width - grid_w) // 2), max(0, (height - grid_h) // 2)

    def element_at(self, x: int, y: int) -> tuple | None:
        """The die or link drawn at cell (x, y) of the widget, or None."""
        cw, ch, gx, gy, ox, oy = self._layout()
        px, py = x - ox, y - oy
        if px < 0 or py < 0 or not grid_fits(*self.size, self.mesh_w, self.mesh_h):
            return None
        col, rx = divmod(px, cw + gx)
        row, ry = divmod(py, ch + gy)
        if col >= self.mesh_w or row >= self.mesh_h:
            return None
        lx, ly = 2 * col + (rx >= cw), 2 * row + (ry >= ch)
        if lx > 2 * self.mesh_w - 2 or ly > 2 * self.mesh_h - 2:
            return None
        return lattice_element(lx, ly, self.mesh_w)

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        element = self.element_at(offset.x, offset.y)
        if element is not None:
            self.post_message(self.Picked(self, element))

    # ---- drawing --------------------------------------------------------------------------------------
    def _styles(self):
        get = self.get_component_rich_style
        return {"util": [get(f"diegrid--u{i}") for i in range(5)], "label": get("diegrid--label"),
                "copy": get("diegrid--copy"), "links": [get(c) for c in LINK_CLASSES],
                "bound": get("diegrid--bound"), "cursor": get("diegrid--cursor"),
                "selected": get("diegrid--selected")}

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

        st = self._styles()
        mw, mh = self.mesh_w, self.mesh_h
        if not grid_fits(width, height, mw, mh):
            lines = too_small_lines(width, height, mw, mh)
            top = max(0, (height - len(lines)) // 2)
            for i, text in enumerate(lines):
                text = text[:width]
                put((width - len(text)) // 2, top + i, text, st["label"])
            return self._strips_of(canvas, width)
        cw, ch, gx, gy, ox, oy = self._layout()
        frame = self.frame
        D = mw * mh
        util = frame.die_utilization if frame is not None else np.zeros(D)
        copies = frame.die_copies if frame is not None else np.zeros(D, dtype=np.int64)
        link_bytes = frame.link_bytes if frame is not None else np.zeros(len(self.links))
        layer_ns = frame.layer_time_ns if frame is not None else 0.0
        mid = ch // 2
        bound = self.bound if self.marks.show_bound else None
        bound_die = bound.die if bound is not None and bound.link < 0 else -1
        bound_pair = None
        if bound is not None and bound.link >= 0:
            a, b = (int(v) for v in self.links[bound.link])
            bound_pair = (min(a, b), max(a, b))

        for y in range(mh):
            for x in range(mw):
                d = y * mw + x
                u = float(util[d]) if d < len(util) else 0.0
                lvl = util_level(u)
                style = st["util"][lvl]
                cx, cy = ox + x * (cw + gx), oy + y * (ch + gy)
                for r in range(ch):
                    put(cx, cy + r, UTIL_FILL[lvl] * cw, style)
                pct = min(100, int(round(u * 100)))
                label = str(pct) if cw >= 3 else (str(min(9, pct // 10)) if pct < 100 else "█")
                if frame is None:
                    label = "-"
                label_style = style + st["label"]
                if d == bound_die:
                    label = BOUND_MARK + label if cw >= len(label) + 1 else BOUND_MARK
                    label_style = label_style + st["bound"]
                if cw >= len(label) + 2:
                    label = f" {label} "
                put(cx + (cw - len(label)) // 2, cy + mid, label, label_style)
                if d < len(copies) and copies[d] > 0:
                    put(cx + cw - 1, cy if ch >= 2 else cy + mid, COPY_MARK, st["copy"])
                # link to the right neighbour, drawn in the gap on the middle row
                if x + 1 < mw and gx > 0:
                    fwd, back = self._pair(d, d + 1, link_bytes)
                    lvl_l = link_level(self._busy(max(fwd, back), layer_ns))
                    glyph, gstyle = self._h_glyph(gx, lvl_l, fwd, back), st["links"][lvl_l]
                    if bound_pair == (d, d + 1):
                        glyph, gstyle = BOUND_MARK + glyph[1:], gstyle + st["bound"]
                    put(cx + cw, cy + mid, glyph, gstyle)
                # link to the neighbour below, drawn in the gap row under the cell's centre
                if y + 1 < mh and gy > 0:
                    fwd, back = self._pair(d, d + mw, link_bytes)
                    lvl_l = link_level(self._busy(max(fwd, back), layer_ns))
                    glyph, gstyle = self._v_glyph(cw, lvl_l, fwd, back), st["links"][lvl_l]
                    if bound_pair == (d, d + mw):
                        glyph, gstyle = (BOUND_MARK + glyph.strip())[:max(1, cw)], gstyle + st["bound"]
                    put(cx + (cw - len(glyph)) // 2, cy + ch, glyph, gstyle)

        for element, marks, style in ((self.marks.cursor, CURSOR_MARKS, st["cursor"]),
                                      (self.marks.selected, SELECTED_MARKS, st["selected"])):
            if element is not None:
                self._bracket(put, element, marks, style, cw, ch, gx, gy, ox, oy)
        return self._strips_of(canvas, width)

    @staticmethod
    def _strips_of(canvas, width: int) -> list[Strip]:
        strips = []
        for row in canvas:
            segments, run_text, run_style = [], "", None
            for ch_, style_ in row:
                if style_ is run_style or style_ == run_style:
                    run_text += ch_
                else:
                    if run_text:
                        segments.append(Segment(run_text, run_style))
                    run_text, run_style = ch_, style_
            if run_text:
                segments.append(Segment(run_text, run_style))
            strips.append(Strip(segments, width))
        return strips

    def _label_width(self, die: int) -> int:
        """Cells of a die's number as drawn (with the bottleneck mark), for placing the cursor's marks."""
        frame = self.frame
        if frame is None:
            return 1
        u = float(frame.die_utilization[die]) if die < len(frame.die_utilization) else 0.0
        width = len(str(min(100, int(round(u * 100)))))
        bound = self.bound if self.marks.show_bound else None
        return width + (bound is not None and bound.link < 0 and bound.die == die)

    def _bracket(self, put, element, marks, style, cw, ch, gx, gy, ox, oy) -> None:
        """Draw `marks` (left, right) around a die's middle row or beside a link's glyph."""
        lx, ly = element_lattice(element, self.mesh_w)
        x, y = lx // 2, ly // 2
        cx, cy = ox + x * (cw + gx), oy + y * (ch + gy)
        mid = ch // 2
        if lx % 2 == 0 and ly % 2 == 0:       # a die: its first and last column, or beside it when the
            inside = cw >= self._label_width(element[1]) + 4   # label fills the cell (in the link gaps)
            put(cx if inside else cx - 1, cy + mid, marks[0], style)
            put(cx + cw - 1 if inside else cx + cw, cy + mid, marks[1], style)
        elif lx % 2:                                         # a horizontal link: the dies' facing columns
            put(cx + cw - 1, cy + mid, marks[0], style)
            put(cx + cw + gx, cy + mid, marks[1], style)
        elif gy > 0:                                         # a vertical link: beside its glyph
            start = cx + (cw - 2) // 2                       # a glyph is at most 2 cells wide
            put(start - 1, cy + ch, marks[0], style)
            put(start + 2, cy + ch, marks[1], style)

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
        key = (self.frame, self.marks, self.size)
        if key != self._cache_key:
            self._strips = self._build()
            self._cache_key = key
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)
