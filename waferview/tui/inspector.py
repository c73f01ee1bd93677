"""The selection panel: what one die or one link does in the layer on screen (for A, and B when comparing)."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from waferview.tui.fmt import duration, si
from waferview.tui.selection import PART_NAMES, DieInfo, LinkInfo, MeshView, Task, die_info, link_info

DIM, BOLD, ITALIC = Style(dim=True), Style(bold=True), Style(italic=True)
TASK_ROWS = 8          # tasks listed before "… n more"


def us(ns: float) -> str:
    return duration(ns)


def source_text(task: Task, die: int, home, mesh) -> str:
    if task.source is None:
        return "?"
    if task.source == die:
        return "home" if int(home[task.expert]) == die else "copy here"
    return f"die {task.source}, {mesh.hops(task.source, die)} hop"


def die_text(text: Text, info: DieInfo, home, mesh) -> None:
    text.append(f"die {info.die}", BOLD).append(f"  x{info.x} y{info.y}\n", DIM)
    share = info.busy_ns / info.layer_ns if info.layer_ns > 0 else 0.0
    text.append("busy ", DIM).append(f"{us(info.busy_ns)} = {100 * share:.0f}% of layer\n")
    if info.parts is not None:
        total = sum(info.parts) or 1.0
        for name, ns in zip(PART_NAMES, info.parts):
            text.append(f" {name:<9}", DIM).append(f"{us(ns):>11} {100 * ns / total:3.0f}%\n")
    in_out = []
    if info.bytes_in is not None:
        in_out.append(f"in {si(info.bytes_in, 'B')}")
    if info.bytes_out is not None:
        in_out.append(f"out {si(info.bytes_out, 'B')}")
    if in_out:
        text.append(" · ".join(in_out) + "\n")
    if info.hbm_bytes is not None:
        text.append("HBM served ", DIM).append(si(info.hbm_bytes, "B") + "\n")
    text.append("homes ", DIM).append(f"{info.homes} ({info.home_count})\n")
    text.append("copies ", DIM).append(f"{info.copies_held} held")
    if info.copied_now:
        text.append(" · new " + ", ".join(f"e{e}" for e in info.copied_now))
    text.append("\n")
    if info.tasks is None:
        text.append(f"{info.tokens:,} tokens (no task list)\n", ITALIC)
        return
    text.append("runs ", DIM).append(f"{len(info.tasks)} tasks, {info.tokens:,} tokens\n")
    if info.tasks:
        text.append(f" {'expert':<7}{'tokens':>7} from\n", DIM)
    for t in info.tasks[:TASK_ROWS]:
        text.append(f" e{t.expert:<6}{t.tokens:>7,} {source_text(t, info.die, home, mesh)}\n")
    if len(info.tasks) > TASK_ROWS:
        text.append(f" … {len(info.tasks) - TASK_ROWS} more\n", DIM)
    if info.served:
        text.append("serves ", DIM).append(", ".join(f"e{t.expert}→{t.die}" for t in info.served[:6]))
        text.append(f" (+{len(info.served) - 6})\n" if len(info.served) > 6 else "\n")


def link_text(text: Text, info: LinkInfo) -> None:
    kind = "horizontal" if info.b == info.a + 1 else "vertical"
    text.append(f"link {info.a} ↔ {info.b}", BOLD).append(f"  {kind}\n", DIM)
    for (src, dst), nbytes, busy in (((info.a, info.b), info.forward_bytes, info.forward_busy),
                                     ((info.b, info.a), info.back_bytes, info.back_busy)):
        text.append(f" {src}->{dst}".ljust(9)).append(f"{si(nbytes, 'B'):>9} {100 * busy:4.0f}% busy\n")
    if info.crossing is None:
        text.append("(no task list)\n", ITALIC)
        return
    text.append("weights crossing ", DIM).append(f"{len(info.crossing)}\n")
    for t, _ in info.crossing[:TASK_ROWS]:
        text.append(f" e{t.expert:<5}{t.source}→{t.die}".ljust(15)).append(f"{t.tokens:>6,} tok\n")
    if len(info.crossing) > TASK_ROWS:
        text.append(f" … {len(info.crossing) - TASK_ROWS} more\n", DIM)


class SelectionPanel(Static):
    """The selected die or link in the frame(s) on screen; escape clears it."""

    def __init__(self, mesh, home, expert_bytes: int, link_rate: float, **kwargs):
        super().__init__("", **kwargs)
        self.mesh, self.home = MeshView(mesh), home
        self.expert_bytes, self.link_rate = int(expert_bytes), float(link_rate)

    def show(self, element: tuple, views: list[tuple[str, object]]) -> None:
        """views: [(label, frame or None)] for A (and B)."""
        text = Text(no_wrap=True, overflow="ellipsis")
        for label, frame in views:
            if label:
                text.append(label + "\n", Style(bold=True, underline=True))
            if frame is None:
                text.append("no layer yet\n", ITALIC)
                continue
            text.append(f"{frame.phase} step {frame.step} layer {frame.layer_index + 1}\n", DIM)
            if element[0] == "die":
                die_text(text, die_info(frame, element[1], self.mesh, self.home, self.expert_bytes), self.home,
                         self.mesh)
            else:
                link_text(text, link_info(frame, element[1], element[2], self.mesh, self.link_rate))
        text.append("esc clears", DIM)
        self.update(text)
