"""What the live view says about one die, one link and the layer's bottleneck, read from a Frame (no textual).

Frames of engines that do not carry the per-task fields (task_expert, task_die, task_tokens, task_source,
task_copied), the busy-time split (die_time_parts) or the bottleneck (bound_*) still work: the parts that
need them are left out, and the bottleneck falls back to the slowest die or busiest link, said as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PART_NAMES = ("compute", "HBM", "links in", "latency")
KIND_NAMES = {"compute": "compute", "hbm": "HBM", "links": "incoming links"}


def field(frame, name: str):
    return getattr(frame, name, None) if frame is not None else None


@dataclass(frozen=True)
class Task:
    expert: int
    die: int                  # where it runs
    tokens: int
    source: int | None        # the die it read the weights from (None: not known)
    copied: bool              # a predictor copy of the expert was written to its die


@dataclass(frozen=True)
class DieInfo:
    die: int
    x: int
    y: int
    busy_ns: float
    layer_ns: float
    tokens: int
    parts: tuple[float, ...] | None     # ns of compute, HBM, links in, latency
    homes: str                          # its home experts, as ranges
    home_count: int
    copies_held: int
    copied_now: tuple[int, ...]         # experts copied to it in this layer
    tasks: tuple[Task, ...] | None      # what it runs, most tokens first
    served: tuple[Task, ...] | None     # other dies' tasks that read their weights from it
    bytes_in: int | None                # weights (and request headers) arriving for it
    bytes_out: int | None               # weights it sent to other dies
    hbm_bytes: int | None               # bytes its HBM served


@dataclass(frozen=True)
class LinkInfo:
    a: int                              # the pair's lower die
    b: int
    forward_bytes: int                  # a -> b
    back_bytes: int                     # b -> a
    forward_busy: float                 # busy share of the layer
    back_busy: float
    crossing: tuple[tuple[Task, str], ...] | None   # (task, "a->b" / "b->a") whose weights cross it


def expert_ranges(experts) -> str:
    """[0, 1, 2, 5, 7, 8] -> 'e0-2, e5, e7-8'."""
    items = sorted(int(e) for e in experts)
    out, i = [], 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(f"e{items[i]}" if i == j else f"e{items[i]}-{items[j]}")
        i = j + 1
    return ", ".join(out) or "none"


def frame_tasks(frame) -> list[Task] | None:
    e, d, tok = field(frame, "task_expert"), field(frame, "task_die"), field(frame, "task_tokens")
    if e is None or d is None or tok is None:
        return None
    src, copied = field(frame, "task_source"), field(frame, "task_copied")
    return [Task(int(e[i]), int(d[i]), int(tok[i]), int(src[i]) if src is not None else None,
                 bool(copied[i]) if copied is not None else False) for i in range(len(e))]


def die_info(frame, die: int, mesh: MeshView, home: np.ndarray, expert_bytes: int) -> DieInfo:
    busy = field(frame, "die_busy_ns")
    layer_ns = float(field(frame, "layer_time_ns") or 0.0)
    tokens = field(frame, "die_tokens")
    parts = field(frame, "die_time_parts")
    copies = field(frame, "die_copies")
    tasks = frame_tasks(frame)
    mine = served = None
    bytes_out = None
    copied_now: tuple[int, ...] = ()
    if tasks is not None:
        mine = tuple(sorted((t for t in tasks if t.die == die), key=lambda t: (-t.tokens, t.expert)))
        copied_now = tuple(sorted(t.expert for t in mine if t.copied))
        if all(t.source is not None for t in tasks):
            served = tuple(sorted((t for t in tasks if t.source == die and t.die != die),
                                  key=lambda t: (-t.tokens, t.expert)))
            bytes_out = len(served) * int(expert_bytes)
    homes = np.flatnonzero(np.asarray(home) == die)
    d2d, hbm = field(frame, "die_d2d_in_bytes"), field(frame, "die_hbm_bytes")
    return DieInfo(
        die, die % mesh.width, die // mesh.width,
        float(busy[die]) if busy is not None else 0.0, layer_ns,
        int(tokens[die]) if tokens is not None else 0,
        tuple(float(v) for v in parts[die]) if parts is not None else None,
        expert_ranges(homes), len(homes), int(copies[die]) if copies is not None else 0, copied_now,
        mine, served, int(d2d[die]) if d2d is not None else None, bytes_out,
        int(hbm[die]) if hbm is not None else None)


class MeshView:
    """What the panels need of a mesh, from its links and the dies' coordinates only (so it does not depend
    on which tables a Mesh keeps): hops, the index of a directed link, the XY route's links."""

    def __init__(self, mesh):
        self.width, self.height = int(mesh.width), int(mesh.height)
        self.num_dies = self.width * self.height
        self.links = np.asarray(mesh.links, dtype=np.int64).reshape(-1, 2)
        self._index = {(int(a), int(b)): i for i, (a, b) in enumerate(self.links)}
        self._routes: dict[tuple[int, int], tuple[int, ...]] = {}

    def hops(self, a: int, b: int) -> int:
        return abs(a % self.width - b % self.width) + abs(a // self.width - b // self.width)

    def link(self, a: int, b: int) -> int:
        """Index of the directed link a -> b, or -1 when a and b are not neighbours."""
        return self._index.get((int(a), int(b)), -1)

    def route(self, src: int, dst: int) -> tuple[int, ...]:
        """Links of the XY route src -> dst (along x first, then y: the engine's default order)."""
        key = (int(src), int(dst))
        if key not in self._routes:
            W = self.width
            x, y, tx, ty = src % W, src // W, dst % W, dst // W
            out = []
            while x != tx:
                nx = x + (1 if tx > x else -1)
                out.append(self.link(y * W + x, y * W + nx))
                x = nx
            while y != ty:
                ny = y + (1 if ty > y else -1)
                out.append(self.link(y * W + x, ny * W + x))
                y = ny
            self._routes[key] = tuple(out)
        return self._routes[key]


def link_info(frame, a: int, b: int, mesh: MeshView, link_rate: float) -> LinkInfo:
    a, b = min(a, b), max(a, b)
    fwd, back = mesh.link(a, b), mesh.link(b, a)
    link_bytes = field(frame, "link_bytes")
    layer_ns = float(field(frame, "layer_time_ns") or 0.0)

    def amount(i):
        return int(link_bytes[i]) if link_bytes is not None and i >= 0 else 0

    def busy(nbytes):
        if nbytes <= 0:
            return 0.0
        return nbytes / (link_rate * layer_ns) if layer_ns > 0 and link_rate > 0 else 1.0

    crossing = None
    tasks = frame_tasks(frame)
    if tasks is not None and all(t.source is not None for t in tasks):
        rows = []
        for t in tasks:
            if t.source == t.die:
                continue
            links = mesh.route(t.source, t.die)
            if fwd in links:
                rows.append((t, f"{a}->{b}"))
            elif back in links:
                rows.append((t, f"{b}->{a}"))
        crossing = tuple(sorted(rows, key=lambda r: (-r[0].tokens, r[0].expert)))
    return LinkInfo(a, b, amount(fwd), amount(back), busy(amount(fwd)), busy(amount(back)), crossing)


@dataclass(frozen=True)
class Bound:
    kind: str | None          # compute / hbm / links (a die's), link, or None when only derived
    die: int                  # -1 unless a die
    link: int                 # -1 unless a link (index into mesh.links)
    share: float              # busy share of the layer time
    label: str                # "die 5 HBM", "link 11->12", or "slowest die 5" when derived
    amount: str               # bytes or tokens behind it
    derived: bool             # not the engine's attribution: the slowest die or busiest link


def bound_of(frame, mesh, link_rate: float) -> Bound | None:
    """The resource that set the layer's time: the engine's attribution when the frame has it, else the
    slowest die or the busiest link (which one of a die's resources is then unknown)."""
    if frame is None or float(getattr(frame, "layer_time_ns", 0.0) or 0.0) <= 0:
        return None
    from waferview.tui.fmt import si

    kind = field(frame, "bound_kind")
    link_bytes = field(frame, "link_bytes")
    if kind is not None:
        die, link = _int(field(frame, "bound_die")), _int(field(frame, "bound_link"))
        label = field(frame, "bound_label") or ""
        if kind == "link":
            a, b = (int(v) for v in mesh.links[link])
            label = label or f"link {a}->{b}"
            amount = si(int(link_bytes[link]), "B") if link_bytes is not None else ""
        else:
            label = label or f"die {die} {KIND_NAMES.get(kind, kind)}"
            amount = _die_amount(frame, kind, die)
        return Bound(kind, die, link, float(field(frame, "bound_share") or 0.0), label, amount, False)
    busy = field(frame, "die_busy_ns")
    layer_ns = float(frame.layer_time_ns)
    die = int(np.argmax(busy)) if busy is not None and len(busy) else -1
    die_ns = float(busy[die]) if die >= 0 else 0.0
    if link_bytes is not None and len(link_bytes) and link_rate > 0:
        link = int(np.argmax(link_bytes))
        link_ns = float(link_bytes[link]) / link_rate
        if link_ns > die_ns:
            a, b = (int(v) for v in mesh.links[link])
            return Bound("link", -1, link, link_ns / layer_ns, f"busiest link {a}->{b}",
                         si(int(link_bytes[link]), "B"), True)
    if die < 0:
        return None
    return Bound(None, die, -1, die_ns / layer_ns, f"slowest die {die}", _die_amount(frame, None, die), True)


def _int(value) -> int:
    return -1 if value is None else int(value)


def _die_amount(frame, kind, die: int) -> str:
    from waferview.tui.fmt import si

    arrays = {"hbm": "die_hbm_bytes", "links": "die_d2d_in_bytes"}
    arr = field(frame, arrays.get(kind, ""))
    if arr is not None:
        return si(int(arr[die]), "B")
    tokens = field(frame, "die_tokens")
    return f"{int(tokens[die]):,} tokens" if tokens is not None else ""


def bound_lines(bound: Bound | None) -> list[str]:
    """'bound by link 11->12: 62% busy, 3.1 GB', then shorter forms of it (for narrow grids)."""
    if bound is None:
        return [""]
    share = f"{100 * bound.share:.0f}%"
    text = f"bound by {bound.label}: {share} busy"
    out = [f"{text}, {bound.amount}"] if bound.amount else []
    return out + [text, f"{BOUND_PREFIX}{bound.label} {share}"]


BOUND_PREFIX = "! "


# ---- the grid cursor: dies and links on one lattice -------------------------------------------------------
# Lattice (lx, ly), 0 <= lx <= 2W-2, 0 <= ly <= 2H-2: both even = die (lx/2, ly/2); lx odd = the link
# between (lx//2, y) and its right neighbour; ly odd = the link between (x, ly//2) and the die below.
# An element is ("die", d) or ("link", a, b) with a < b (both directions of the pair).

def lattice_element(lx: int, ly: int, width: int) -> tuple | None:
    if lx % 2 and ly % 2:
        return None
    x, y = lx // 2, ly // 2
    d = y * width + x
    if lx % 2:
        return ("link", d, d + 1)
    if ly % 2:
        return ("link", d, d + width)
    return ("die", d)


def element_lattice(element: tuple, width: int) -> tuple[int, int]:
    if element[0] == "die":
        d = element[1]
        return 2 * (d % width), 2 * (d // width)
    a, b = element[1], element[2]
    lx, ly = 2 * (a % width), 2 * (a // width)
    return (lx + 1, ly) if b == a + 1 else (lx, ly + 1)


def move_cursor(lx: int, ly: int, dx: int, dy: int, width: int, height: int,
                vertical_links: bool = True) -> tuple[int, int]:
    """One place left/right/up/down on the lattice (over a link to the next die), kept on the mesh."""
    nx, ny = lx + dx, ly + dy
    if nx % 2 and ny % 2:            # between four dies: go on to the next element that way
        nx, ny = nx + dx, ny + dy
    if ny % 2 and not vertical_links:   # vertical links not drawn (no gap rows): jump to the next die
        ny += dy
    nx = max(0, min(2 * width - 2, nx))
    ny = max(0, min(2 * height - 2, ny))
    if nx % 2 and ny % 2:
        return lx, ly
    return nx, ny
