"""Small deterministic inputs and pilot helpers shared by the TUI tests."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from waferview.models import get_model
from waferview.trace.arrays import concat_requests
from waferview.tui.app import make_app
from waferview.wafer.hardware import load_hardware

SEED = 7


def _rows(rng, n: int, L: int, k: int, E: int, log_pop: np.ndarray) -> np.ndarray:
    """n rows of k distinct experts per layer, skewed by a per-layer popularity (Gumbel top-k)."""
    keys = log_pop[None, :, :] + rng.gumbel(size=(n, L, E))
    return np.argsort(-keys, axis=2)[:, :, :k]


@lru_cache(maxsize=None)
def small_trace(model: str = "qwen3", requests: int = 6, max_decode: int = 12):
    """A few short hand-made requests: fast, and independent of the synthetic generator's tuning, so the
    snapshots change only when the view or the engine does."""
    m = get_model(model)
    rng = np.random.default_rng(SEED)
    L, k, E = m.moe_layers, m.top_k, m.num_experts
    log_pop = -0.9 * np.log1p(rng.permuted(np.tile(np.arange(E, dtype=float), (L, 1)), axis=1))
    per_request = []
    for r in range(requests):
        prefill = _rows(rng, int(rng.integers(4, 16)), L, k, E, log_pop)
        decode = _rows(rng, max_decode if r % 3 else max(1, max_decode - 3), L, k, E, log_pop)
        per_request.append((prefill, decode))
    return concat_requests(m, per_request, [f"r{r}" for r in range(requests)],
                           source=f"hand-made {model}, {requests} requests")


def app_for(model: str = "qwen3", mesh: str = "8x3", *, paused: bool = True, requests: int = 6,
            max_decode: int = 12, **kwargs):
    return make_app(small_trace(model, requests, max_decode), load_hardware(mesh), seed=SEED, paused=paused,
                    **kwargs)


async def wait_until(pilot, predicate, what: str = "condition", rounds: int = 24000) -> None:
    """Let the app and its worker run until `predicate()` holds (bounded, so a bug fails instead of hanging)."""
    for _ in range(rounds):
        if predicate():
            return
        await pilot.pause(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def step(pilot, layers: int = 1) -> None:
    """Press n `layers` times, each time waiting until the app shows the new layer."""
    app = pilot.app
    for _ in range(layers):
        target = app.driver.main.position + 1
        await pilot.press("n")
        await wait_until(pilot, lambda: app.state is not None and app.state.main.position == target
                         and (app.state.compare is None or app.state.compare.position == target),
                         f"layer {target} on screen")
    await pilot.pause()


def async_test(fn):
    """Run an async test function with asyncio.run (no async pytest plugin needed)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))
    return wrapper


async def advance(pilot, position: int) -> None:
    """Step a paused app to `position` layers (one request per layer, as `n` would), then wait for it."""
    app = pilot.app
    for _ in range(position - app.driver.main.position):
        app.driver.request_step()
    await wait_until(pilot, lambda: app.state is not None and app.state.main.position == position
                     and (app.state.compare is None or app.state.compare.position == position),
                     f"layer {position} on screen")
    await pilot.pause()


# ---- a scripted engine: hand-made layers with every field the live view reads ---------------------------

class ScriptedFrame:
    """A Frame's fields plus the engine's per-task and bottleneck fields, for hand-made layers."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @property
    def die_utilization(self):
        return self.die_busy_ns / self.layer_time_ns if self.layer_time_ns > 0 else np.zeros_like(self.die_busy_ns)


class ScriptedEngine:
    """An engine stand-in (same constructor as waferview.sim.engine.Engine) whose layers are made by hand, so
    the screens that show tasks, the busy-time split and the bottleneck do not change with the real engine's
    numbers. Even layers are bound by a die's HBM (die 5), odd layers by the link 11->12 (8x3 mesh)."""

    EXPERT_BYTES = 37_748_736
    LINK_RATE = 1741 * 0.9

    def __init__(self, trace, hardware, *, batch=None, seed=0, placement="allo", predictor="heatmap", links="fluid",
                 options=None):
        from waferview.wafer.homes import home_dies
        from waferview.wafer.mesh import Mesh

        self.trace, self.model = trace, trace.model
        self.mesh = Mesh(hardware.width, hardware.height)
        self.home = home_dies(self.model.num_experts, self.mesh.num_dies)
        self.placement, self.predictor, self.links = placement, predictor, links
        self.layers = self.model.moe_layers
        self.total = 3 * self.layers          # prefill and two decode steps
        self.position = 0

    @property
    def done(self):
        return self.position >= self.total

    def set_placement(self, name):
        self.placement = name

    def set_predictor(self, name):
        self.predictor = name

    def set_links(self, name):
        self.links = name

    def summary(self):
        p = self.position
        return {"placement": self.placement, "predictor": self.predictor, "layers_simulated": p,
                "layers_total": self.total, "throughput_tokens_per_s": 1234.5 + p if p > self.layers else None,
                "cache_hit_rate": 0.9997, "remote_read_bytes": 3 * p * self.EXPERT_BYTES,
                "local_read_bytes": 40 * p * self.EXPERT_BYTES, "local_write_bytes": p * self.EXPERT_BYTES,
                "hops": 7 * p, "die_max_over_mean": 1.5, "predictor_precision": 0.5, "predictor_recall": 0.25}

    def layer(self, position: int) -> ScriptedFrame:
        mesh, D = self.mesh, self.mesh.num_dies
        step, layer = divmod(position, self.layers)
        E = self.model.num_experts
        experts = np.array([(layer * 7 + i * 13) % E for i in range(20)], dtype=np.int64)
        dies = np.array([(self.home[e] + (i % 3 == 1)) % D for i, e in enumerate(experts)], dtype=np.int64)
        tokens = np.array([10 + (i * 37 + layer) % 200 for i in range(20)], dtype=np.int64)
        source = np.array([self.home[e] for e in experts], dtype=np.int64)
        copied = np.array([i % 7 == 1 for i in range(20)], dtype=bool)
        # die 5 runs two more tasks from its own HBM; odd layers send five weights over 11 -> 12 (to 12, 13)
        experts = np.concatenate([experts, [25, 29], [66] * 5])
        dies = np.concatenate([dies, [5, 5], [12, 12, 12, 13, 13]])
        tokens = np.concatenate([tokens, [900, 300], [50, 40, 30, 20, 10]])
        source = np.concatenate([source, [5, 5], [11] * 5])
        copied = np.concatenate([copied, [False, False], [False] * 5])
        if layer % 2 == 0:
            keep = np.arange(len(experts)) < 22
            experts, dies, tokens, source, copied = (a[keep] for a in (experts, dies, tokens, source, copied))
        die_tokens = np.bincount(dies, weights=tokens, minlength=D).astype(np.int64)
        link_bytes = np.zeros(mesh.num_links, dtype=np.int64)
        d2d = np.zeros(D, dtype=np.int64)
        hbm = np.zeros(D, dtype=np.int64)
        for d, s in zip(dies, source):
            hbm[s] += self.EXPERT_BYTES
            if d != s:
                d2d[d] += self.EXPERT_BYTES
                for link in mesh.xy_route(int(s), int(d)):
                    link_bytes[link] += self.EXPERT_BYTES
        compute = die_tokens * 10.0
        hbm_ns = hbm / (3350 * 0.9)
        links_ns = d2d / self.LINK_RATE
        latency = np.where(die_tokens > 0, 500.0, 0.0)
        busy = np.maximum(np.maximum(compute, hbm_ns), links_ns) + latency
        link_ns = link_bytes / self.LINK_RATE
        layer_ns = float(max(busy.max(), link_ns.max()))
        if link_ns.max() >= busy.max():
            link = int(np.argmax(link_ns))
            a, b = (int(v) for v in mesh.links[link])
            bound = dict(bound_kind="link", bound_die=-1, bound_link=link, bound_share=1.0,
                         bound_label=f"link {a}->{b}")
        else:
            die = int(np.argmax(busy))
            parts = (compute[die], hbm_ns[die], links_ns[die])
            kind = ("compute", "hbm", "links")[int(np.argmax(parts))]
            bound = dict(bound_kind=kind, bound_die=die, bound_link=-1, bound_share=float(max(parts) / layer_ns),
                         bound_label=f"die {die} {dict(compute='compute', hbm='HBM', links='incoming links')[kind]}")
        copies = np.bincount(dies[copied], minlength=D).astype(np.int64)
        return ScriptedFrame(
            seq=position + 1, total=self.total, step=step, layer_index=layer, layer_id=layer,
            phase="prefill" if step == 0 else "decode", placement=self.placement, predictor=self.predictor,
            links=self.links, token_selections=int(tokens.sum()), die_busy_ns=busy, die_tokens=die_tokens,
            die_copies=copies,
            link_bytes=link_bytes, layer_time_ns=layer_ns, local_read_bytes=int(hbm.sum() - d2d.sum()),
            remote_read_bytes=int(d2d.sum()), local_write_bytes=int(copied.sum()) * self.EXPERT_BYTES,
            hops=int(sum(self.hops(s, d) for s, d in zip(source, dies))), weight_reads=len(experts),
            local_weight_reads=int((source == dies).sum()), totals=self.summary(), die_hbm_bytes=hbm,
            die_d2d_in_bytes=d2d, task_expert=experts, task_die=dies, task_tokens=tokens, task_source=source,
            task_copied=copied, die_time_parts=np.stack([compute, hbm_ns, links_ns, latency], axis=1), **bound)

    def hops(self, a, b):
        W = self.mesh.width
        return abs(int(a) % W - int(b) % W) + abs(int(a) // W - int(b) // W)

    def step(self):
        if self.done:
            return None
        self.position += 1
        return self.layer(self.position - 1)


def scripted_app(*, paused: bool = True, engine=ScriptedEngine, model: str = "qwen3", **kwargs):
    return make_app(small_trace(model), load_hardware("8x3"), seed=SEED, paused=paused, engine_factory=engine,
                    **kwargs)
