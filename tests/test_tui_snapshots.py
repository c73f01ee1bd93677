"""Screenshots of the live view, compared with the committed SVGs in tests/__snapshots__/.

Deterministic: a small synthetic trace with a fixed seed, the app starts paused and every layer is
stepped by hand with `n`, waiting until it is on screen. A changed snapshot is looked at
(`pytest --snapshot-report`), never updated blindly (`--snapshot-update`).
"""

from __future__ import annotations

import pytest

from tui_support import advance, app_for, step, wait_until

SMALL, LARGE = (80, 24), (160, 48)


def stepped(layers: int, *keys: str):
    async def run_before(pilot):
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        await step(pilot, layers)
    return run_before


def test_initial_screen(snap_compare):
    assert snap_compare(app_for(), terminal_size=SMALL)


def test_after_ten_layers(snap_compare):
    assert snap_compare(app_for(), terminal_size=SMALL, run_before=stepped(10))


def test_after_ten_layers_large(snap_compare):
    assert snap_compare(app_for(), terminal_size=LARGE, run_before=stepped(10))


def test_help_screen(snap_compare):
    async def run_before(pilot):
        await pilot.pause()
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
