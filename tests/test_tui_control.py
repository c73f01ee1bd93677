"""The live view's setup on the worker, quitting in every phase, a failing engine, and replay control
(restart, jump, one layer back, modes from step 0, the end of the trace, the summary so far)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from waferview.cli.cmd_replay import finish
from waferview.errors import InputError
from waferview.report.summary import summary_fields
from waferview.tui import mainscreen
from waferview.tui.driver import Activity, ViewState
from waferview.tui.screens import JumpScreen, SummaryScreen

from tui_support import ScriptedEngine, app_for, async_test, scripted_app, small_trace, step, wait_until

QWEN_LAYERS = 94


def status_text(app) -> str:
    return str(app.query_one("#status").render())


class BlockingEngine(ScriptedEngine):
    """An engine whose construction blocks (like a long numba call) until `release` is set."""
    release = threading.Event()
    entered = threading.Event()

    def __init__(self, *args, **kwargs):
        BlockingEngine.entered.set()
        BlockingEngine.release.wait(60)
        super().__init__(*args, **kwargs)


class SlowPrepareEngine(ScriptedEngine):
    """prepare() reports the heatmap half built, then blocks until `release`."""
    release = threading.Event()

    def prepare(self, progress=None):
        progress("building the heatmap", 3, 10)
        SlowPrepareEngine.release.wait(60)


@async_test
async def test_the_screen_is_up_while_setup_runs_and_q_exits_during_it():
    BlockingEngine.release.clear()
    BlockingEngine.entered.clear()
    app = scripted_app(engine=BlockingEngine)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, BlockingEngine.entered.is_set, "setup started")
            assert "SETUP" in str(app.query_one("#header").render())
            assert app.driver.engine is None                  # still inside the engine's construction
            await pilot.press("q")
        # the app is gone while its worker is still in setup: nothing waited for it
        assert app.return_code == 0
        assert app.engine_thread.is_alive() and app.engine_thread.daemon
        assert not BlockingEngine.release.is_set()
    finally:
        BlockingEngine.release.set()
    app.engine_thread.join(30)
    assert app.driver.stopped.is_set()


@async_test
async def test_ctrl_c_exits_during_setup_too():
    SlowPrepareEngine.release.clear()
    app = scripted_app(engine=SlowPrepareEngine)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.state is not None and app.state.activity is not None
                             and app.state.activity.label == "building the heatmap", "the heatmap's progress")
            await pilot.press("ctrl+c")
        assert app.return_code == 0 and app.engine_thread.is_alive()
    finally:
        SlowPrepareEngine.release.set()


@async_test
async def test_setup_progress_is_on_screen(monkeypatch):
    monkeypatch.setattr(mainscreen, "SETUP_SHOWN_AFTER_S", 0.0)
    SlowPrepareEngine.release.clear()
    app = scripted_app(engine=SlowPrepareEngine)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: "building the heatmap" in status_text(app), "the status line")
            assert "30%" in status_text(app)
            SlowPrepareEngine.release.set()
            await wait_until(pilot, lambda: app.state.ready and not app.query_one("#status").display, "setup done")
            assert "PAUSED" in str(app.query_one("#header").render())
    finally:
        SlowPrepareEngine.release.set()


def test_setup_is_announced_only_after_a_second():
    def state(activity):
        return ViewState(None, None, True, 100, 1, activity)

    act = Activity("building the heatmap", 250, 1000, since=100.0)
    assert mainscreen.activity_text(state(act), 100.5) == ""
    text = mainscreen.activity_text(state(act), 102.25)
    assert text.startswith("building the heatmap") and " 25%" in text and "2.2 s" in text
    unknown = mainscreen.activity_text(state(Activity("reading the batch", 0, 0, since=100.0)), 101.5)
    assert unknown == "reading the batch …  1.5 s"                  # no bar when the total is unknown
    assert mainscreen.activity_text(state(None), 200.0) == ""


PROCESS_EXITS = """
import sys
sys.path.insert(0, {tests!r})
from numba import njit
from tui_support import ScriptedEngine, scripted_app, wait_until
from waferview.cli.cmd_replay import finish

@njit(nogil=True)
def spin(n):   # a long kernel without the GIL, like the setup of a 16,384-request batch (minutes here)
    x = 1
    for i in range(n):
        x = x * 6364136223846793005 + 1442695040888963407
    return x

spin(10)

class LongSetup(ScriptedEngine):
    def prepare(self, progress=None):
        progress("building the heatmap", 0, 1)
        spin(10 ** 13)

app = scripted_app(engine=LongSetup)

async def quit_in_setup(pilot):
    await wait_until(pilot, lambda: app.state is not None and app.state.activity is not None
                     and app.state.activity.label == "building the heatmap", "the long setup call", rounds=100000)
    await pilot.press("q")

app.run(headless=True, size=(80, 24), auto_pilot=quit_in_setup)
print("alive" if app.engine_thread.is_alive() else "stopped", flush=True)
sys.exit(finish(app))
"""


def test_the_process_ends_while_a_long_nogil_call_runs_in_the_worker():
    """`q` during a kernel that would run for many minutes: the command still ends (finish() exits the
    process rather than waiting for the thread). The timeout only guards against a hang."""
    script = PROCESS_EXITS.format(tests=str(Path(__file__).parent))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "alive"


class FailingEngine(ScriptedEngine):
    def step(self):
        if self.position == 2:
            raise RuntimeError("kernel said no")
        return super().step()


class BadInputEngine(ScriptedEngine):
    def __init__(self, *args, **kwargs):
        raise InputError("trace.json: step 3, layer 7: expert 999 is out of range")


@async_test
async def test_a_failing_engine_shows_one_line_and_exits_1(capsys):
    app = scripted_app(engine=FailingEngine, paused=False, speed=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.query_one("#failure").display, "the failure line")
        line = str(app.query_one("#failure").render())
        assert "internal error: RuntimeError: kernel said no" in line and "\n" not in line.strip()
        assert "ERROR" in str(app.query_one("#header").render())
        assert app.state.main.position == 2                    # the layers before it stay on screen
        await pilot.press("q")
    assert app.return_code == 1
    assert finish(app) == 1
    err = capsys.readouterr().err
    assert err == "waferview replay: internal error: RuntimeError: kernel said no\n"


@async_test
async def test_bad_input_found_by_the_engine_exits_2(capsys):
    app = scripted_app(engine=BadInputEngine)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.query_one("#failure").display, "the failure line")
        await pilot.press("q")
    assert app.return_code == 2 and finish(app) == 2
    assert capsys.readouterr().err == "waferview replay: trace.json: step 3, layer 7: expert 999 is out of range\n"


# ---- replay control -------------------------------------------------------------------------------------

@async_test
async def test_zero_restarts_from_step_0_keeping_the_modes():
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot, 4)
        await pilot.press("p")                                  # base from the next layer
        await step(pilot, 2)
        first = app.driver.engine
        await pilot.press("0")
        await wait_until(pilot, lambda: app.state.run == 2 and app.state.activity is None, "the restart")
        assert app.driver.engine is not first and app.driver.engine.position == 0
        assert app.driver.engine.placement == "base"           # the modes it had, from step 0
        await step(pilot)
        assert app.state.main.frame.placement == "base" and app.state.main.frame.seq == 1


@async_test
async def test_g_jumps_forward_and_back_to_a_step():
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot)
        await pilot.press("g")
        assert isinstance(app.screen, JumpScreen)
        await pilot.press("2", "enter")
        await wait_until(pilot, lambda: app.state.main.position == 2 * QWEN_LAYERS + 1, "step 2")
        f = app.state.main.frame
        assert (f.step, f.layer_index, f.phase) == (2, 0, "decode")
        await pilot.press("g", "0", "enter")
        await wait_until(pilot, lambda: app.state.main.position == 1 and app.state.activity is None, "step 0")
        assert app.state.main.frame.step == 0
        await pilot.press("g", "9", "9", "enter")                 # past the end: refused, the prompt stays
        assert isinstance(app.screen, JumpScreen)
        assert "a step from 0 to 12" in str(app.screen.query_one("#jump-error").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, JumpScreen)


@async_test
async def test_capital_n_goes_one_layer_back_replaying_the_mode_changes():
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot, 2)
        await pilot.press("r")                                  # predictor oracle from layer 3
        await step(pilot, 3)
        shown = app.state.main.frame                            # layer 5, run with oracle
        await step(pilot)
        history = [(p.step, p.layers, p.mark) for p in app.state.main.history]
        await pilot.press("N")
        await wait_until(pilot, lambda: app.state.main.position == 5 and app.state.activity is None, "layer 5")
        again = app.state.main.frame
        assert again is not shown and (again.seq, again.predictor) == (5, "oracle")
        for name in ("die_busy_ns", "link_bytes", "die_copies"):
            assert np.array_equal(getattr(again, name), getattr(shown, name)), name
        assert again.totals == shown.totals
        assert [(p.step, p.layers, p.mark) for p in app.state.main.history] == [(0, 5, "r")]
        assert history == [(0, 6, "r")]
        await pilot.press("N", "N", "N")
        await wait_until(pilot, lambda: app.state.main.position == 2 and app.state.activity is None, "layer 2")
        assert app.state.main.frame.predictor == "heatmap"
        await step(pilot)                                       # forward again: the tape's change comes back
        assert app.state.main.frame.predictor == "oracle"


@async_test
async def test_a_mode_from_step_0_restarts_with_it():
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot, 3)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        commands["Placement: ep from step 0"].callback()
        await wait_until(pilot, lambda: app.state.run == 2 and app.state.activity is None, "the restart")
        assert app.driver.engine.position == 0 and app.driver.engine.placement == "ep"
        await step(pilot)
        assert app.state.main.frame.placement == "ep"


@async_test
async def test_at_the_end_p_r_and_c_still_work_and_offer_a_restart():
    app = app_for("llama4", requests=2, max_decode=2, paused=False, speed=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen), "the end")
        await pilot.press("escape")
        await pilot.press("p")
        title = str(app.query_one("#title-a").render())
        assert "→ base + heatmap on restart (0)" in title and "next layer" not in title
        assert "restarts with it" in status_text(app)
        await pilot.press("c")
        await wait_until(pilot, lambda: app.state.compare is not None and app.state.compare.summary is not None,
                         "the comparison, caught up to the end")
        old_b = app.driver.compare_engine
        await pilot.press("space", "0")                          # paused, so the restart stays at step 0
        await wait_until(pilot, lambda: app.state.run == 2 and app.state.activity is None, "the restart")
        assert app.driver.engine.placement == "base" and app.driver.engine.position == 0
        b = app.driver.compare_engine
        assert b is not old_b and b.position == 0 and (b.placement, b.predictor) == (old_b.placement, old_b.predictor)


@async_test
async def test_s_shows_the_summary_so_far_marked_partial():
    app = app_for()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("s")
        assert not isinstance(app.screen, SummaryScreen)         # nothing simulated yet
        await step(pilot, 7)
        await pilot.press("s")
        assert isinstance(app.screen, SummaryScreen) and app.screen.partial
        title = str(app.screen.query_one("#summary-title").render())
        assert "PARTIAL" in title and "layer 7 of" in title
        fields = app.screen.summaries[0][1]
        assert fields == summary_fields(small_trace(), app.state.main.frame.totals)
        assert fields["layers_simulated"] == 7
        await pilot.press("escape")


@async_test
async def test_loop_notices_replace_each_other():
    app = app_for(paused=False, speed=0, loop=True, requests=2, max_decode=2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state is not None and app.state.run >= 3, "a third pass")
        await pilot.pause(0.05)
        assert not app._notifications                          # no pile of toasts
        text = status_text(app)
        assert text.count("end of trace") <= 1


@async_test
async def test_every_draw_is_one_batch(monkeypatch):
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        calls = []
        real = app.batch_update

        def counting():
            calls.append(1)
            return real()
        monkeypatch.setattr(app, "batch_update", counting)
        await step(pilot, 2)
        draws = len(calls)
        assert draws >= 2
        before = len(calls)
        app._draw(app.state)
        assert len(calls) == before + 1


@pytest.fixture(autouse=True)
def _release_blocked_engines():
    yield
    BlockingEngine.release.set()
    SlowPrepareEngine.release.set()

