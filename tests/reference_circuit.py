"""A slow, obvious pure-Python reference of the study's own simulator discipline: the circuit link model.

The study's artefact simulator (TIMING.md, "the event engine") moves every weight-matrix slice as a chain of
stages over per-die resources (cache port, DRAM, compute) and one resource per mesh edge. This file restates
that discipline with plain loops, heapq and dicts, for ONE (iteration, MoE layer): `run_layer`. The paper
profile around it (strategies, prediction, the copy region's policy, the whole-run driver and the outputs as
the study prints them) is in reference_paper.py.

What the numba port must copy exactly, and why it is spelled out here:
  * The event heap compares stages by time only, so equal times pop in the order CPython's heapq gives for
    the exact push sequence. We keep that sequence (successors in the study's order, wake-ups in its order).
  * Wait queues order by (priority desc, time asc, arrival asc) with keys read live: a stage admitted through
    another resource leaves stale entries behind whose time changed. They are skipped lazily, only at the
    head, exactly as the study does; the heaps are real heapq lists so their (possibly broken) invariants are
    the study's too.
  * Region operations happen in event time: the local/remote choice when the issue stage pops, the LRU touch
    when a local read pops, the copy store (and its evictions) when a copy write pops.

Stages of a chain (durations in ns; `Rates` has the formulas):
  issue (cache port of d; 110, or 100 on a local LLC hit)
    -> local read (DRAM of d) -> [local LLC fill (port of d, 30) -> done] + compute (compute of d) -> done
    -> request leg (links d->home, 200h+1) -> holder read (DRAM of home)
         -> [LLC fill (port of home, 30) -> done] + data leg (links home->d, 200h+ser)
              -> [copy write (DRAM of d) -> done] + compute -> done
    -> request leg -> remote LLC read (port of home, 100) -> data leg -> ...   (home's LLC holds the slice)
    -> compute directly                                                          (d's LLC holds the slice)
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict, deque
from dataclasses import dataclass

# ------------------------------------------------------------------ the study's constants (TimingConfig)

ISSUE_MISS_NS = 110       # cache_miss_penalty: the issue stage when d's LLC does not hold the slice
LLC_HIT_NS = 100          # cache_hit_latency: the issue stage on a local LLC hit; a remote LLC read
LLC_FILL_NS = 30          # cache_store_latency
HOP_NS = 200              # link_latency, per hop of a leg's route
DRAM_NS = 300             # mem_access_latency
REQUEST_BYTES = 16
LINK_BYTES_PER_NS = 1741
LINK_EFFICIENCY = 0.9
DRAM_BYTES_PER_NS = 3350
DIE_GFLOPS_PER_NS = 1000  # compte_power_per_die; ops / (1000 * 1000 * u) ns
LLC_BYTES = 64 * 1024 * 1024
LLC_WAYS = 2

# Stage kinds
ISSUE, LOCAL_READ, REQUEST_LEG, HOLDER_READ, REMOTE_LLC_READ, DATA_LEG = "issue", "local_read", "request_leg", \
    "holder_read", "remote_llc_read", "data_leg"
LOCAL_FILL, REMOTE_FILL, COPY_WRITE, COMPUTE, DONE = "local_fill", "remote_fill", "copy_write", "compute", "done"


# ------------------------------------------------------------------ switches: the rules of TIMING.md's table

@dataclass(frozen=True)
class Rules:
    """Each rule of TIMING.md's "Effects" table as a switch; all True is the study's discipline.

    shared_edges      on: one link resource per mesh edge (unordered die pair), shared by both directions and
                      by request and data legs (half duplex).
                      off: one resource per direction of an edge (a->b and b->a independent; request and data
                      legs going the same way still share it).
    request_legs_hold_links
                      on: a request leg holds every link of its route for 200*h + 1 ns.
                      off: a request leg holds no resource: admitted at once, it still takes 200*h + 1 ns and
                      still counts its h hops.
    head_of_line      on: when a stage ends, each resource it releases offers itself only to the head of its
                      wait queue (stale heads dropped); those heads are tried in time order; a blocked head
                      holds back everything behind it.
                      off: every waiting stage of every released resource is tried, in wait-queue order
                      (priority desc, time asc, arrival asc); each is admitted if all its resources are free.
    circuit_occupancy on: a leg holds all h links of its route for its whole duration 200*h + serialisation
                      (hop latency is occupancy).
                      off: a leg holds its links for the serialisation time only (ceil(bytes / (1741*0.9)));
                      its successors still start 200*h + serialisation after it starts (pipeline latency).
    route_y_first     on: XY routes go along y (die div width) first, then x: the study's order, the short
                      axis first on 8x3 (width 8, height 3).
                      off: x (die mod width) first, then y: waferview's own route order.
    lock_at_creation  on: a stage is created, and admitted (locking its resources, or queueing on them), when
                      its predecessor starts (pops); it starts when the predecessor ends.
                      off: a stage is created and admitted only when its predecessor ends (the clock reaching
                      the predecessor's end, through a deferred creation step in the heap that is not counted
                      as an event); nothing is locked ahead of time.
    llc_hits          on: the 64 MB LLC per die (sets of 2 ways of slices, set = expert mod sets) is checked
                      and filled as the study does (it rarely hits: only when the same slice is fetched again
                      before two other slices of its set pass through that die).
                      off: LLC checks always miss (the fill stages still take their port time).
    """
    shared_edges: bool = True
    request_legs_hold_links: bool = True
    head_of_line: bool = True
    circuit_occupancy: bool = True
    route_y_first: bool = True
    lock_at_creation: bool = True
    llc_hits: bool = True


STUDY_RULES = Rules()


# ------------------------------------------------------------------ rates: every duration formula

def efficiency_table(model_key: str):
    """Compute efficiency u(n) of the study's _cal_compute_latency, looked up with the task's token count n."""
    if model_key in ("deepseek", "kimi"):
        steps, last = ((128, 0.5), (256, 0.53), (512, 0.68), (1024, 0.7), (4096, 0.69)), 0.69
    elif model_key in ("qwen3", "qwen"):
        steps, last = ((128, 0.7), (256, 0.6), (512, 0.7), (1024, 0.7), (2048, 0.69), (4096, 0.71)), 0.70
    elif model_key in ("llama4", "llama"):
        steps, last = ((128, 0.65), (256, 0.65), (512, 0.72), (1024, 0.7)), 0.65
    else:
        raise ValueError(f"the study's simulator has no compute efficiency for model {model_key!r}")

    def u(n):
        for bound, rate in steps:
            if n <= bound:
                return rate
        return last
    return u


@dataclass(frozen=True)
class Rates:
    """Durations of the study's stages for one model. Expressions keep the study's operand order (floats)."""
    hidden: int
    inter: int
    dram_efficiency: float          # 0.9; 0.85 for Llama (the study's _cal_mem_latency)
    compute_efficiency: object      # n -> u

    @classmethod
    def for_model(cls, model_key: str, hidden: int, inter: int):
        dram = 0.85 if model_key in ("llama4", "llama") else 0.9
        return cls(hidden, inter, dram, efficiency_table(model_key))

    @property
    def expert_bytes(self) -> int:
        return 3 * self.hidden * self.inter * 2

    @property
    def slice_bytes(self) -> float:
        return self.expert_bytes / 3 / 1          # a float in the study (expert_size / matrices / slices)

    def activation_bytes(self, n: int) -> float:
        return n * (self.hidden + self.inter) * 3 * 2 / 3

    def dram_ns(self, nbytes: float) -> int:
        return DRAM_NS + math.ceil(nbytes / (DRAM_BYTES_PER_NS * self.dram_efficiency))

    # one method per stage, so a test can substitute round numbers
    def local_read_ns(self, n: int) -> int:
        """Activations are counted here only (the study's _read_data_from_local_dram)."""
        return self.dram_ns(self.slice_bytes + self.activation_bytes(n))

    def holder_read_ns(self) -> int:
        return self.dram_ns(self.slice_bytes)

    def copy_write_ns(self) -> int:
        return self.dram_ns(self.slice_bytes)

    @staticmethod
    def serialisation_ns(nbytes: float) -> int:
        return math.ceil(nbytes / (LINK_BYTES_PER_NS * LINK_EFFICIENCY))

    def request_serialisation_ns(self) -> int:
        return self.serialisation_ns(REQUEST_BYTES)

    def data_serialisation_ns(self) -> int:
        return self.serialisation_ns(self.slice_bytes)

    def request_leg_ns(self, hops: int) -> int:
        return HOP_NS * hops + self.request_serialisation_ns()

    def data_leg_ns(self, hops: int) -> int:
        return HOP_NS * hops + self.data_serialisation_ns()

    def compute_ns(self, n: int) -> int:
        operations = 2 * 3 * self.hidden * self.inter * n / 3
        return math.ceil(operations / (DIE_GFLOPS_PER_NS * 1000 * self.compute_efficiency(n)))


# ------------------------------------------------------------------ the mesh

class PaperMesh:
    """width x height dies, die = y * width + x (the study's 8x3: 8 along its y_chiplets, die = s + 8 t)."""

    def __init__(self, width: int, height: int, rules: Rules = STUDY_RULES):
        self.width, self.height = int(width), int(height)
        self.num_dies = self.width * self.height
        self.rules = rules
        self._routes, self._links = {}, {}

    def coords(self, die):
        return die % self.width, die // self.width

    def die(self, x, y):
        return y * self.width + x

    def distance(self, a, b):
        (ax, ay), (bx, by) = self.coords(a), self.coords(b)
        return abs(ax - bx) + abs(ay - by)

    def route(self, a, b):
        """The dies a route visits from a to b, a and b included."""
        key = (a, b)
        if key not in self._routes:
            self._routes[key] = self._walk(a, b)
        return self._routes[key]

    def _walk(self, a, b):
        x, y = self.coords(a)
        bx, by = self.coords(b)
        path = [a]
        for axis in (("y", "x") if self.rules.route_y_first else ("x", "y")):
            if axis == "x":
                while x != bx:
                    x += 1 if bx > x else -1
                    path.append(self.die(x, y))
            else:
                while y != by:
                    y += 1 if by > y else -1
                    path.append(self.die(x, y))
        return path

    def link_names(self, path):
        """Resource names of a path's links, in travel order."""
        key = tuple(path)
        if key not in self._links:
            self._links[key] = self._names(path)
        return self._links[key]

    def _names(self, path):
        names = []
        for a, b in zip(path, path[1:]):
            names.append(("link", min(a, b), max(a, b)) if self.rules.shared_edges else ("link", a, b))
        return names

    def edges(self):
        """Undirected mesh edges (the study registers one resource per edge: 37 on 8x3, 40 on 5x5)."""
        out = []
        for d in range(self.num_dies):
            x, y = self.coords(d)
            if x + 1 < self.width:
                out.append((d, d + 1))
            if y + 1 < self.height:
                out.append((d, d + self.width))
        return sorted(out)


# ------------------------------------------------------------------ the state that outlives a layer

class CopyRegion:
    """Per-die DRAM contents: home slices (implicit, never evicted) plus copies in a region bounded to
    `capacity_slices` per die (None = unbounded), least recently used evicted. A slice is (layer, expert,
    matrix). The study's hardware/dram.py: store adds and refreshes, a local read refreshes, eviction drops
    the oldest copy; capacity = max(1, floor(region bytes / slice bytes))."""

    def __init__(self, num_dies: int, home: dict, capacity_slices=None):
        self.home = home
        self.capacity = capacity_slices
        self.copies = [OrderedDict() for _ in range(num_dies)]
        self.count = [dict() for _ in range(num_dies)]   # (layer, expert) -> copied slices present
        self.evictions = 0

    def holds(self, die, key) -> bool:
        return self.home[key[1]] == die or key in self.copies[die]

    def touch(self, die, key) -> None:
        if self.capacity is not None and key in self.copies[die]:
            self.copies[die].move_to_end(key)

    def store(self, die, key) -> None:
        region = self.copies[die]
        if key in region:
            region.move_to_end(key)
            return
        region[key] = None
        self.count[die][key[:2]] = self.count[die].get(key[:2], 0) + 1
        while self.capacity is not None and len(region) > self.capacity:
            victim, _ = region.popitem(last=False)
            self.count[die][victim[:2]] -= 1
            self.evictions += 1

    def dies_holding(self, layer, expert):
        """Dies whose DRAM holds any slice of (layer, expert), ascending (the study's
        _gen_exp_chiplet_distribution, which Allo's candidates start from)."""
        return [d for d in range(len(self.copies))
                if self.home[expert] == d or self.count[d].get((layer, expert), 0) > 0]


class LLCs:
    """The 64 MB LLC of every die: max(1, int(64 MiB // (2 * slice))) sets of 2 ways, set = expert mod sets,
    LRU per set, updated only by fills (a check does not refresh), as the study's hardware/cache.py."""

    def __init__(self, num_dies: int, slice_bytes: float):
        self.sets = max(1, int(LLC_BYTES // (LLC_WAYS * slice_bytes)))
        self.ways = [dict() for _ in range(num_dies)]     # set index -> deque of slices, made when first used

    def holds(self, die, key) -> bool:
        return key in self.ways[die].get(key[1] % self.sets, ())

    def fill(self, die, key) -> None:
        ways = self.ways[die].setdefault(key[1] % self.sets, deque())
        if key in ways:
            ways.remove(key)
        elif len(ways) >= LLC_WAYS:
            ways.popleft()
        ways.append(key)


# ------------------------------------------------------------------ one layer's input and output

@dataclass
class Task:
    """One entry of the layer's plan: `tokens` tokens of `expert` run on `die`; the weights live on `home`.
    copy_write: the copy predicate for this (die, expert), per slice or one bool for all three (used on a
    remote fetch in copies_mode). sources: optional static read source per slice (die = local, else home),
    used in copies_mode when run_layer gets no CopyRegion; with a region the choice is made in event time,
    when the issue stage pops."""
    expert: int
    die: int
    tokens: int
    home: int
    copy_write: object = False
    sources: tuple | None = None


@dataclass
class LayerResult:
    end: int                                   # the barrier: the last event's time
    spans: dict                                # die -> [first chain start, last completion], dies with work
    hops: int = 0                              # request legs only, h per remote slice fetch
    local_read_bytes: float = 0.0              # weights + activations of local reads
    remote_read_bytes: float = 0.0             # holder reads (a remote LLC hit reads no DRAM)
    write_bytes: float = 0.0                   # copy writes
    events: int = 0                            # stages popped, completions included
    llc_hits: int = 0
    log: list | None = None                    # (time, kind, task index, matrix, duration) per pop


# ------------------------------------------------------------------ the event engine

class _Resource:
    __slots__ = ("name", "locked", "free_at", "queue")

    def __init__(self, name):
        self.name, self.locked, self.free_at, self.queue = name, False, 0, []


class _Stage:
    """The study's SimulationEvent: ordered by time only (heap ties follow CPython's heapq); its priority is
    its chain's."""
    __slots__ = ("time", "kind", "chain", "resources", "priority", "admitted", "deferred")

    def __init__(self, time, kind, chain, resources):
        self.time, self.kind, self.chain, self.resources = time, kind, chain, resources
        self.priority = chain.priority if chain is not None else 0.0
        self.admitted = False
        self.deferred = None          # lock_at_creation off: the stage this placeholder creates when it pops

    def __lt__(self, other):
        return self.time < other.time


class _Waiting:
    """A wait-queue entry: (priority desc, the stage's current time asc, arrival asc), keys read live."""
    __slots__ = ("stage", "seq")

    def __init__(self, stage, seq):
        self.stage, self.seq = stage, seq

    def __lt__(self, other):      # (-priority, time, seq) < (...), spelled out because it is the hot spot
        a, b = self.stage, other.stage
        if a.priority != b.priority:
            return a.priority > b.priority
        if a.time != b.time:
            return a.time < b.time
        return self.seq < other.seq


class _Chain:
    __slots__ = ("index", "task", "matrix", "key", "priority", "start", "via_llc", "copy")

    def __init__(self, index, task, matrix, layer):
        self.index, self.task, self.matrix = index, task, matrix
        self.key = (layer, task.expert, matrix)
        self.priority = 1.0 if task.die != task.home else 0.0
        self.start = None
        self.via_llc = False
        cw = task.copy_write
        self.copy = bool(cw[matrix] if isinstance(cw, (tuple, list)) else cw)


class _Layer:
    def __init__(self, mesh, rates, rules, region, llc, copies_mode, log):
        self.mesh, self.rates, self.rules = mesh, rates, rules
        self.region, self.llc, self.copies_mode = region, llc, copies_mode
        self.resources = {}
        self.heap = []
        self.seq = 0
        self.result = LayerResult(end=0, spans={}, log=[] if log else None)

    # -- resources and admission
    def res(self, name):
        r = self.resources.get(name)
        if r is None:
            r = self.resources[name] = _Resource(name)
        return r

    def add(self, stage):
        """Admission when a stage is created: all free -> lock them all, time = max(time, free-ats), onto the
        heap; else wait on every one of its resources (free ones included)."""
        if all(not r.locked for r in stage.resources):
            self.lock(stage)
            heapq.heappush(self.heap, stage)
        else:
            for r in stage.resources:
                heapq.heappush(r.queue, _Waiting(stage, self.seq))
                self.seq += 1

    def lock(self, stage):
        for r in stage.resources:
            r.locked = True
            if stage.time < r.free_at:
                stage.time = r.free_at
        stage.admitted = True

    def create(self, stage, predecessor_end):
        if self.rules.lock_at_creation:
            self.add(stage)
        else:   # placeholder at the predecessor's end; it admits the stage when it pops
            holder = _Stage(predecessor_end, "create", None, [])
            holder.deferred = stage
            holder.admitted = True
            heapq.heappush(self.heap, holder)

    def wake(self, released, now_end):
        if self.rules.head_of_line:
            heads = []
            for r in released:
                q = r.queue
                while q and q[0].stage.admitted:
                    heapq.heappop(q)
                if q:
                    heapq.heappush(heads, q[0].stage)
            while heads:
                self.try_admit(heapq.heappop(heads), now_end)
        else:
            waiting = {}          # stage -> its earliest wait-queue entry (arrival order)
            for r in released:
                for entry in r.queue:
                    s = entry.stage
                    if not s.admitted and (id(s) not in waiting or entry.seq < waiting[id(s)].seq):
                        waiting[id(s)] = entry
            for entry in sorted(waiting.values()):
                self.try_admit(entry.stage, now_end)
            for r in released:
                r.queue = [e for e in r.queue if not e.stage.admitted]
                heapq.heapify(r.queue)

    def try_admit(self, stage, now_end):
        if stage.admitted or any(r.locked for r in stage.resources):
            return
        self.lock(stage)
        if stage.time < now_end:
            stage.time = now_end
        heapq.heappush(self.heap, stage)

    # -- the loop
    def run(self, tasks, layer, start, matrices):
        for index, task in enumerate(tasks):
            for matrix in range(matrices):
                chain = _Chain(index, task, matrix, layer)
                self.add(_Stage(start, ISSUE, chain, [self.res(("port", task.die))]))
        self.result.end = start
        while self.heap:
            stage = heapq.heappop(self.heap)
            now = stage.time
            if stage.deferred is not None:
                self.add(stage.deferred)
                continue
            self.result.events += 1
            latency, occupancy = self.pop(stage, now)
            if self.result.log is not None:
                c = stage.chain
                self.result.log.append((now, stage.kind, c.index, c.matrix, latency))
            for r in stage.resources:
                r.locked = False
                if r.free_at < now + occupancy:
                    r.free_at = now + occupancy
            self.wake(stage.resources, now + occupancy)
            self.result.end = now
        stuck = [r.name for r in self.resources.values() if any(not e.stage.admitted for e in r.queue)]
        assert not stuck, f"stages left waiting at the end of the layer on {stuck[:3]}"
        return self.result

    def then(self, kind, chain, resources, now, latency):
        self.create(_Stage(now + latency, kind, chain, resources), now + latency)

    def pop(self, stage, now):
        """Run one stage: its successors are created (and admitted) now, in the study's order; returns
        (latency = when the successors start, occupancy = how long its resources stay busy)."""
        c, t, r, rates = stage.chain, stage.chain.task, self.result, self.rates
        kind = stage.kind
        if kind == ISSUE:
            c.start = now
            return self.issue(c, now)
        if kind == REQUEST_LEG:
            h = len(self.mesh.route(t.die, t.home)) - 1
            r.hops += h
            latency = rates.request_leg_ns(h)
            nxt = (REMOTE_LLC_READ, ("port", t.home)) if c.via_llc else (HOLDER_READ, ("dram", t.home))
            self.then(nxt[0], c, [self.res(nxt[1])], now, latency)
            return latency, latency if self.rules.circuit_occupancy else rates.request_serialisation_ns()
        if kind == HOLDER_READ:
            latency = rates.holder_read_ns()
            r.remote_read_bytes += rates.slice_bytes
            self.then(REMOTE_FILL, c, [self.res(("port", t.home))], now, latency)
            self.then(DATA_LEG, c, self.links(t.home, t.die), now, latency)
            return latency, latency
        if kind == REMOTE_LLC_READ:
            latency = LLC_HIT_NS
            self.then(DATA_LEG, c, self.links(t.home, t.die), now, latency)
            return latency, latency
        if kind == DATA_LEG:
            h = len(self.mesh.route(t.home, t.die)) - 1
            latency = rates.data_leg_ns(h)
            if self.copies_mode and c.copy:
                self.then(COPY_WRITE, c, [self.res(("dram", t.die))], now, latency)
            self.then(COMPUTE, c, [self.res(("compute", t.die))], now, latency)
            return latency, latency if self.rules.circuit_occupancy else rates.data_serialisation_ns()
        if kind == LOCAL_READ:
            if self.region is not None:
                self.region.touch(t.die, c.key)
            latency = rates.local_read_ns(t.tokens)
            r.local_read_bytes += rates.slice_bytes + rates.activation_bytes(t.tokens)
            self.then(LOCAL_FILL, c, [self.res(("port", t.die))], now, latency)
            self.then(COMPUTE, c, [self.res(("compute", t.die))], now, latency)
            return latency, latency
        if kind in (LOCAL_FILL, REMOTE_FILL):
            if self.llc is not None:
                self.llc.fill(t.die if kind == LOCAL_FILL else t.home, c.key)
            self.then(DONE, c, [], now, LLC_FILL_NS)
            return LLC_FILL_NS, LLC_FILL_NS
        if kind == COPY_WRITE:
            if self.region is not None:
                self.region.store(t.die, c.key)
            latency = rates.copy_write_ns()
            r.write_bytes += rates.slice_bytes
            self.then(DONE, c, [], now, latency)
            return latency, latency
        if kind == COMPUTE:
            latency = rates.compute_ns(t.tokens)
            self.then(DONE, c, [], now, latency)
            return latency, latency
        if kind == DONE:
            span = r.spans.get(t.die)
            if span is None:
                r.spans[t.die] = [c.start, now]
            else:
                span[0], span[1] = min(span[0], c.start), max(span[1], now)
            return 0, 0
        raise AssertionError(kind)

    def issue(self, c, now):
        """The read path, chosen when the issue stage pops (the study's _process_request*)."""
        t, llc = c.task, self.llc
        own_llc = llc is not None and llc.holds(t.die, c.key)
        if self.region is not None:
            own_dram = self.region.holds(t.die, c.key)
        elif t.sources is not None:
            own_dram = t.sources[c.matrix] == t.die
        else:
            own_dram = t.die == t.home
        if not self.copies_mode:        # the study's base path: only the home die reads locally
            own_dram = t.die == t.home
            own_llc = own_llc and own_dram
        if own_llc:
            self.result.llc_hits += 1
            self.then(COMPUTE, c, [self.res(("compute", t.die))], now, LLC_HIT_NS)
            return LLC_HIT_NS, LLC_HIT_NS
        if own_dram:
            self.then(LOCAL_READ, c, [self.res(("dram", t.die))], now, ISSUE_MISS_NS)
            return ISSUE_MISS_NS, ISSUE_MISS_NS
        c.via_llc = llc is not None and llc.holds(t.home, c.key)
        if c.via_llc:
            self.result.llc_hits += 1
        legs = self.links(t.die, t.home) if self.rules.request_legs_hold_links else []
        self.then(REQUEST_LEG, c, legs, now, ISSUE_MISS_NS)
        return ISSUE_MISS_NS, ISSUE_MISS_NS

    def links(self, a, b):
        return [self.res(n) for n in self.mesh.link_names(self.mesh.route(a, b))]


def run_layer(tasks, mesh: PaperMesh, rates: Rates, *, layer=0, start=0, region: CopyRegion | None = None,
              llc: LLCs | None = None, copies_mode=False, rules: Rules | None = None, log=False,
              matrices=3) -> LayerResult:
    """One (iteration, MoE layer) under the circuit discipline, from `start` (ns) to its barrier.

    tasks: the layer's plan in the study's order (sorted by expert id; chains are created in (task, matrix)
    order). copies_mode: the study's Pred read path (own LLC, own DRAM incl. copies, home LLC, home DRAM, and
    copy writes where a task's copy_write says so); off, only a task on its home die reads locally.
    region/llc: state that outlives the layer (None: no copies beyond `sources`, no LLC).
    matrices: chains per task (the study: 3, one per weight matrix; hand-worked tests use 1)."""
    rules = rules or mesh.rules
    engine = _Layer(mesh, rates, rules, region, llc if rules.llc_hits else None, copies_mode, log)
    return engine.run(tasks, layer, start, matrices)


def span_stats(spans: dict, num_dies: int):
    """(sum of busy spans, max span, max/min, max/avg) of one layer as the study's process_records computes
    them: only dies with work enter min and avg; usage divides by max * all dies."""
    durations = [end - begin for begin, end in spans.values()]
    top, low = max(durations), min(durations)
    avg = sum(durations) / len(durations)
    return sum(durations), top, (top / low if low > 0 else 0.0), (top / avg if avg > 0 else 0.0)
