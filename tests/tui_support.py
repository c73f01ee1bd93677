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


async def wait_until(pilot, predicate, what: str = "condition", rounds: int = 2000) -> None:
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
        target = app.driver.engine.position + 1
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
    for _ in range(position - app.driver.engine.position):
        app.driver.request_step()
    await wait_until(pilot, lambda: app.state is not None and app.state.main.position == position
                     and (app.state.compare is None or app.state.compare.position == position),
                     f"layer {position} on screen")
    await pilot.pause()
