"""Screenshots of the live view, compared with the committed SVGs in tests/__snapshots__/.

Deterministic: a small synthetic trace with a fixed seed, the app starts paused and every layer is
stepped by hand with `n`, waiting until it is on screen. A changed snapshot is looked at
(`pytest --snapshot-report`), never updated blindly (`--snapshot-update`).
"""

from __future__ import annotations

import pytest

from tui_support import SEED, ScriptedEngine, advance, app_for, scripted_app, small_trace, step, wait_until

SMALL, LARGE = (80, 24), (160, 48)


def stepped(layers: int, *keys: str):
    async def run_before(pilot):
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        await step(pilot, layers)
    return run_before


async def set_up(pilot):
    """The engine built and set up (no setup line on screen)."""
    app = pilot.app
    await wait_until(pilot, lambda: app.state is not None and app.state.ready and app.state.activity is None,
                     "setup done")
    await pilot.pause()


def test_initial_screen(snap_compare):
    assert snap_compare(app_for(), terminal_size=SMALL, run_before=set_up)


def test_after_ten_layers(snap_compare):
    assert snap_compare(app_for(), terminal_size=SMALL, run_before=stepped(10))


def test_after_ten_layers_large(snap_compare):
    assert snap_compare(app_for(), terminal_size=LARGE, run_before=stepped(10))


def test_help_screen(snap_compare):
    async def run_before(pilot):
        await set_up(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
    assert snap_compare(app_for(), terminal_size=SMALL, run_before=run_before)


def test_comparison(snap_compare):
    async def run_before(pilot):
        app = pilot.app
        await step(pilot, 4)
        await pilot.press("c")
        await wait_until(pilot, lambda: app.state.compare is not None, "comparison")
        await step(pilot, 4)
    assert snap_compare(app_for(), terminal_size=SMALL, run_before=run_before)


def test_comparison_large(snap_compare):
    async def run_before(pilot):
        app = pilot.app
        await pilot.press("c")
        await wait_until(pilot, lambda: app.state.compare is not None, "comparison")
        await step(pilot, 10)
    assert snap_compare(app_for(mesh="5x5"), terminal_size=LARGE, run_before=run_before)


QWEN_LAYERS = 94


@pytest.mark.parametrize("placement", ["base", "ep", "allo"])
def test_placement_modes(snap_compare, placement):
    app = app_for(placement=placement, predictor="off")
    assert snap_compare(app, terminal_size=SMALL, run_before=stepped(3))


@pytest.mark.parametrize("predictor", ["off", "heatmap", "oracle", "lru"])
def test_predictor_modes(snap_compare, predictor):
    """Decode step 2, layer 5: the predictors' copies (◆) and their effect on the links."""
    app = app_for(placement="base", predictor=predictor)

    async def run_before(pilot):
        await advance(pilot, 2 * QWEN_LAYERS + 5)
    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_hbm_warning(snap_compare):
    assert snap_compare(app_for("kimi", "5x5", requests=2, max_decode=2), terminal_size=SMALL,
                        run_before=stepped(2))


def test_end_of_trace_summary(snap_compare):
    app = app_for("llama4", "8x3", requests=3, max_decode=3, paused=False, speed=0)

    async def run_before(pilot):
        from waferview.tui.screens import SummaryScreen
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SummaryScreen)
                         and pilot.app.screen.query("#summary-text"), "the summary")
    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


# ---- hand-made layers (tui_support.ScriptedEngine): tasks, busy-time split and bottleneck fields -----------

def keys_then_steps(layers: int, *keys: str):
    async def run_before(pilot):
        await step(pilot, layers)
        for key in keys:
            await pilot.press(key)
        await pilot.pause()
    return run_before


def test_selection_panel_die(snap_compare):
    """Die 5 selected in a layer it bounds (its HBM): homes, tasks, where they read from, the busy split."""
    assert snap_compare(scripted_app(), terminal_size=SMALL,
                        run_before=keys_then_steps(1, "right", "enter"))   # the cursor starts on die 5


def test_selection_panel_link(snap_compare):
    """The link 11 <-> 12 selected in a layer it bounds: both directions and the weights crossing it."""
    assert snap_compare(scripted_app(), terminal_size=SMALL,
                        run_before=keys_then_steps(2, "down", "enter"))    # it starts on the link 11 -> 12


def test_bottleneck_link(snap_compare):
    """A layer bound by the link 11 -> 12: marked ! on the grid and named under it."""
    assert snap_compare(scripted_app(), terminal_size=SMALL, run_before=keys_then_steps(2))


def test_bottleneck_die_large(snap_compare):
    """A layer bound by die 5's HBM, at 160x48, with the cursor on the die next to it."""
    assert snap_compare(scripted_app(), terminal_size=LARGE,
                        run_before=keys_then_steps(1, "right", "left", "left"))


def test_end_of_trace_state(snap_compare):
    """At the end (summary closed): what the keys still do, and p offering a restart with its mode."""
    app = scripted_app()

    async def run_before(pilot):
        from waferview.tui.screens import SummaryScreen
        await advance(pilot, 3 * QWEN_LAYERS)
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SummaryScreen), "the summary")
        await pilot.press("escape", "p")
        await pilot.pause()
    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_long_header_80x24(snap_compare):
    """A long synthetic source, reused requests and the HBM warning at 80x24: abbreviated, none dropped."""
    import dataclasses

    from waferview.tui.app import make_app
    from waferview.wafer.hardware import load_hardware

    trace = dataclasses.replace(small_trace("kimi", 2, 2), synthetic=True,
                                source="/data/traces/kimi-k2-thinking-mmlu-abstract-algebra-all.wvtrace (synthetic)")
    app = make_app(trace, load_hardware("5x5"), batch=5, seed=SEED, paused=True, engine_factory=ScriptedEngine)
    assert snap_compare(app, terminal_size=SMALL, run_before=keys_then_steps(1))
