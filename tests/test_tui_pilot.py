"""Every key of the live view, driven with Textual's pilot; modes asserted on the engine itself."""

from __future__ import annotations

import orjson
import pytest

from waferview.cli.main import main
from waferview.trace.cache import save_cache
from waferview.trace.source import load_source
from waferview.tui.app import make_app
from waferview.tui.diegrid import DieGrid
from waferview.tui.driver import SPEEDS
from waferview.tui.panels import HeaderBar, StatsPanel
from waferview.tui.screens import HelpScreen, KEYS, SummaryScreen
from waferview.wafer.hardware import load_hardware

from tui_support import SEED, app_for, async_test, small_trace, step, wait_until


def header_text(app) -> str:
    return str(app.query_one(HeaderBar).render())


@async_test
async def test_space_pauses_and_resumes_with_paused_visible():
    app = app_for(paused=False, speed=10)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state is not None and app.state.main.position >= 1, "playing")
        assert "PAUSED" not in header_text(app)
        await pilot.press("space")
        assert app.driver.paused
        assert "PAUSED" in header_text(app)
        await pilot.press("space")
        assert not app.driver.paused
        assert "PAUSED" not in header_text(app)


@async_test
async def test_n_advances_exactly_one_layer_while_paused():
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.driver.engine.position == 0
        await step(pilot)
        assert app.driver.engine.position == 1
        assert app.state.main.frame.seq == 1 and app.state.main.frame.step == 0
        await step(pilot, 3)
        assert app.driver.engine.position == 4
        assert app.query_one("#grid-a", DieGrid).frame is app.state.main.frame
        assert app.state.main.frame.layer_index == 3


@async_test
async def test_n_is_disabled_while_playing():
    app = app_for(paused=False, speed=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.check_action("step", ()) is None
        await pilot.press("space")
        assert app.check_action("step", ()) is True


@async_test
async def test_p_and_r_cycle_the_engine_modes_from_the_next_layer():
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot)
        engine = app.driver.engine
        assert (engine.placement, engine.predictor) == ("allo", "heatmap")
        await pilot.press("p")
        assert engine.placement == "base"
        assert app.state.main.frame.placement == "allo"        # the layer already shown keeps its mode
        await step(pilot)
        assert app.state.main.frame.placement == "base"
        await pilot.press("p", "p")
        assert engine.placement == "allo"
        await pilot.press("r")
        assert engine.predictor == "oracle"
        await pilot.press("r", "r")
        assert engine.predictor == "off"
        await step(pilot)
        assert (app.state.main.frame.placement, app.state.main.frame.predictor) == ("allo", "off")
        panel = str(app.query_one(StatsPanel).render())
        assert "allo + off" in panel


@async_test
async def test_mode_change_while_playing_reaches_the_engine():
    app = app_for(paused=False, speed=30)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")
        await wait_until(pilot, lambda: app.driver.engine.placement == "base", "placement applied")
        await wait_until(pilot, lambda: app.state.main.frame is not None
                         and app.state.main.frame.placement == "base", "a layer run with the new mode")
        marks = [p.mark for p in app.state.main.history]
        assert app.state.main.frame.seq == 1 or "p" in marks


@async_test
async def test_plus_and_minus_change_the_speed():
    app = app_for(speed=100)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("plus")
        assert app.driver.speed == SPEEDS[SPEEDS.index(100) + 1]
        await pilot.press("minus", "minus")
        assert app.driver.speed == SPEEDS[SPEEDS.index(100) - 1]


@async_test
async def test_c_opens_the_comparison_in_lockstep_and_closes_it():
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot, 3)
        await pilot.press("c")
        await wait_until(pilot, lambda: app.state.compare is not None, "comparison engine")
        assert app.screen.has_class("-compare")
        assert app.query_one("#wafer-b").display
        second = app.driver.compare_engine
        assert (second.placement, second.predictor) == ("base", "off")
        assert second.position == app.driver.engine.position == 3       # caught up with the first
        await step(pilot, 2)
        assert second.position == app.driver.engine.position == 5
        assert app.state.compare.frame.seq == app.state.main.frame.seq == 5
        await pilot.press("R")                                          # the second engine's predictor
        assert second.predictor == "heatmap" and app.driver.engine.predictor == "heatmap"
        await pilot.press("c")
        await wait_until(pilot, lambda: app.state.compare is None, "comparison closed")
        assert not app.query_one("#wafer-b").display


@async_test
async def test_question_mark_opens_and_closes_help_listing_every_key():
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        for key, _ in KEYS:
            assert key in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)


@async_test
async def test_q_exits_and_stops_the_worker():
    app = app_for(paused=False, speed=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state is not None and app.state.main.position > 0, "playing")
        worker = next(iter(app.workers))
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert app.driver.stopped.wait(10), "the engine thread did not stop"
    assert worker.is_cancelled or worker.is_finished


@async_test
async def test_resize_switches_layout_and_redraws():
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot)
        grid = app.query_one("#grid-a", DieGrid)
        assert app.screen.has_class("-narrow")
        small = grid.size
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert not app.screen.has_class("-narrow")
        assert grid.size.width > small.width and grid.size.height > small.height
        assert grid.render_line(0).cell_length == grid.size.width


@async_test
async def test_hbm_warning_when_the_model_does_not_fit():
    app = app_for("kimi", "5x5", requests=2, max_decode=2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        warning = app.query_one("#hbm-warning")
        assert warning.display and "HBM" in str(warning.render())
    fits = app_for("qwen3", "8x3")
    async with fits.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not fits.query_one("#hbm-warning").display


def parse_number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


@async_test
async def test_numbers_at_the_end_equal_summary_json(tmp_path, capsys):
    path = tmp_path / "tiny-qwen3.wvtrace"
    save_cache(path, small_trace("qwen3", 5, 6), source_key="tui-test")
    args = [str(path), "--model", "qwen3", "--mesh", "8x3", "--batch", "8", "--seed", str(SEED),
            "--placement", "allo", "--predictor", "heatmap"]
    assert main(["summary", *args, "--json"]) == 0
    expected = orjson.loads(capsys.readouterr().out)
    del expected["provenance"]                        # --json only: what produced the fields, not a field

    trace = load_source(str(path), model="qwen3")    # the same loader `summary` uses
    app = make_app(trace, load_hardware("8x3"), batch=8, seed=SEED, placement="allo", predictor="heatmap",
                   paused=False, speed=0)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SummaryScreen)
                         and app.screen.query("#summary-text"), "the summary at the end")
        shown = app.state.main.summary
        assert shown == expected                          # the very same fields and values
        # and what is on screen: every field of the summary screen, as `waferview summary` prints it
        from waferview.report.summary import format_value
        lines = str(app.screen.query_one("#summary-text").render()).splitlines()
        table = {line.split()[0]: line.split(None, 1)[1].strip() for line in lines if line.strip()}
        for key, value in expected.items():
            if key != "skipped":
                assert table[key] == format_value(value), key
        # the side panel's numbers are the same run's totals
        await pilot.press("escape")
        panel = str(app.query_one(StatsPanel).render())
        rows = {line[:13].strip(): line[13:].strip() for line in panel.splitlines()}
        thr = parse_number(rows["throughput"].split()[0])
        assert thr == pytest.approx(expected["throughput_tokens_per_s"], abs=0.5)
        assert parse_number(rows["hit rate"]) == pytest.approx(100 * expected["cache_hit_rate"], abs=0.05)
        assert parse_number(rows["hops"]) == expected["hops"]
        assert parse_number(rows["die max/mean"]) == pytest.approx(expected["die_max_over_mean"], rel=5e-3)


@async_test
async def test_loop_starts_over_at_the_end():
    app = app_for(paused=False, speed=0, loop=True, requests=2, max_decode=2)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state is not None and app.state.run >= 2, "a second pass")
        assert not isinstance(app.screen, SummaryScreen)


@async_test
async def test_grid_reads_without_colour(monkeypatch):
    """Under NO_COLOR the grid still carries every level: a fill character per level and the number."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(placement="base", predictor="off")
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color
        await step(pilot)
        grid = app.query_one("#grid-a", DieGrid)
        text = "\n".join(grid.render_line(y).text for y in range(grid.size.height))
        util = app.state.main.frame.die_utilization
        for d in range(len(util)):
            assert f"{min(100, round(util[d] * 100))}" in text
        from waferview.tui.diegrid import UTIL_FILL, util_level
        for level in {util_level(u) for u in util}:
            assert UTIL_FILL[level] in text
        assert any(ch in text for ch in "─━█·▶◀")          # base moves weights: links are drawn


@pytest.mark.parametrize("argv, message", [
    (["--placement", "nope"], "unknown placement mode 'nope'"),
    (["--predictor", "nope"], "unknown predictor mode 'nope'"),
    (["--mesh", "0x3"], "--mesh 0x3"),
    (["--speed", "7"], "--speed"),
])
def test_replay_bad_options_exit_2_with_one_line(argv, message):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "waferview", "replay", *argv], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""


@async_test
async def test_command_palette_sets_a_mode_by_name():
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {"Placement: ep", "Predictor: lru", "Compare"} <= commands.keys()
        commands["Placement: ep"].callback()
        commands["Predictor: lru"].callback()
        assert (app.driver.engine.placement, app.driver.engine.predictor) == ("ep", "lru")
        await step(pilot)
        assert (app.state.main.frame.placement, app.state.main.frame.predictor) == ("ep", "lru")
        assert app.screen.has_class("-paused")


@async_test
async def test_after_pausing_the_screen_shows_the_engine_layer_and_n_adds_one():
    app = app_for(paused=False, speed=100)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state is not None and app.state.main.position >= 3, "playing")
        await pilot.press("space")
        # the worker finishes the layer it is on, then the screen shows exactly where the engine stopped
        await wait_until(pilot, lambda: app.state.main.position == app.driver.engine.position, "last layer shown")
        stopped = app.driver.engine.position
        await step(pilot)
        assert app.driver.engine.position == app.state.main.position == stopped + 1
