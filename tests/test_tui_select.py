"""Selecting a die or a link, the layer's bottleneck on the grid, and the 80x24 details (header, warning,
labels, percentages, the comparison's rows, the palette, help and themes)."""

from __future__ import annotations

import pytest

from waferview.cli.main import build_parser
from waferview.tui.diegrid import DieGrid
from waferview.tui.fmt import fit, header_variants, pct
from waferview.tui.keys import KEYS, help_rows, keys_line
from waferview.tui.panels import ComparePanel, HeaderBar, StatsPanel
from waferview.tui.screens import HelpScreen
from waferview.tui.selection import (MeshView, bound_lines, bound_of, die_info, element_lattice, expert_ranges,
                                     lattice_element, link_info, move_cursor)
from waferview.wafer.hardware import load_hardware
from waferview.wafer.homes import home_dies
from waferview.wafer.mesh import Mesh

from tui_support import ScriptedEngine, ScriptedFrame, app_for, async_test, scripted_app, small_trace, step, wait_until

MESH = MeshView(Mesh(8, 3))


def scripted_frame(position: int):
    return ScriptedEngine(small_trace(), load_hardware("8x3")).layer(position)


def grid_text(app, side="a") -> str:
    grid = app.query_one(f"#grid-{side}", DieGrid)
    return "\n".join(grid.render_line(y).text for y in range(grid.size.height))


def panel_text(app) -> str:
    return str(app.query_one("#selection").render())


# ---- what the panel says, from a hand-made frame ----------------------------------------------------------

def test_expert_ranges():
    assert expert_ranges([5, 0, 1, 2, 7, 8]) == "e0-2, e5, e7-8"
    assert expert_ranges([]) == "none"


def test_die_info_from_a_hand_made_layer():
    f = scripted_frame(0)                        # die 5 runs e25 (900 tokens), e29 (300), e26 and e28 from home
    info = die_info(f, 5, MESH, home_dies(128, 24), ScriptedEngine.EXPERT_BYTES)
    assert (info.die, info.x, info.y) == (5, 5, 0)
    assert info.homes == "e25-29, e125" and info.home_count == 6
    assert [(t.expert, t.tokens, t.source) for t in info.tasks][:2] == [(25, 900, 5), (29, 300, 5)]
    assert info.tokens == sum(t.tokens for t in info.tasks) == int(f.die_tokens[5])
    assert info.parts == tuple(float(v) for v in f.die_time_parts[5])
    assert info.hbm_bytes == int(f.die_hbm_bytes[5]) and info.bytes_in == int(f.die_d2d_in_bytes[5])
    # the tasks elsewhere that read their weights from die 5
    served = [(int(e), int(d)) for e, d, s in zip(f.task_expert, f.task_die, f.task_source) if s == 5 and d != 5]
    assert [(t.expert, t.die) for t in info.served] == sorted(served, key=lambda ed: ed[0]) or not served
    assert info.bytes_out == len(served) * ScriptedEngine.EXPERT_BYTES


def test_link_info_lists_the_weights_crossing_it():
    f = scripted_frame(1)                        # odd layer: five weights 11 -> 12, two going on to 13
    info = link_info(f, 12, 11, MESH, ScriptedEngine.LINK_RATE)
    assert (info.a, info.b) == (11, 12)
    link = MESH.link(11, 12)
    over = [(int(e), int(s), int(d)) for e, s, d in zip(f.task_expert, f.task_source, f.task_die)
            if s != d and link in Mesh(8, 3).xy_route(int(s), int(d))]
    assert info.forward_bytes == int(f.link_bytes[link]) == len(over) * ScriptedEngine.EXPERT_BYTES
    assert info.forward_busy == pytest.approx(1.0)             # it sets the layer time
    crossing = [(t.expert, t.source, t.die) for t, way in info.crossing if way == "11->12"]
    assert sorted(crossing) == sorted(over) and len(crossing) == len(info.crossing)
    assert sorted(over).count((66, 11, 12)) == 3 and sorted(over).count((66, 11, 13)) == 2


def test_bound_from_the_engine_fields_and_the_fallback_without_them():
    link = bound_of(scripted_frame(1), MESH, ScriptedEngine.LINK_RATE)
    assert (link.kind, link.link, link.label, link.derived) == ("link", MESH.link(11, 12), "link 11->12", False)
    assert bound_lines(link)[0] == "bound by link 11->12: 100% busy, 226 MB"
    hbm = bound_of(scripted_frame(0), MESH, ScriptedEngine.LINK_RATE)
    assert (hbm.kind, hbm.die, hbm.label) == ("hbm", 5, "die 5 HBM")
    assert bound_lines(hbm)[0] == "bound by die 5 HBM: 99% busy, 151 MB"
    # a frame without the engine's attribution: the slowest die or the busiest link, said as such
    plain = scripted_frame(1)
    for name in ("bound_kind", "bound_die", "bound_link", "bound_share", "bound_label"):
        delattr(plain, name)
    derived = bound_of(plain, MESH, ScriptedEngine.LINK_RATE)
    assert derived.derived and derived.label == "busiest link 11->12" and derived.share == pytest.approx(1.0)
    bare = ScriptedFrame(**{k: v for k, v in vars(scripted_frame(0)).items() if not k.startswith("bound_")})
    assert bound_of(bare, MESH, ScriptedEngine.LINK_RATE).label == "slowest die 5"


def test_cursor_lattice_covers_dies_and_links():
    assert lattice_element(0, 0, 8) == ("die", 0)
    assert lattice_element(1, 0, 8) == ("link", 0, 1)
    assert lattice_element(0, 1, 8) == ("link", 0, 8)
    assert lattice_element(1, 1, 8) is None
    for element in (("die", 13), ("link", 11, 12), ("link", 5, 13)):
        assert lattice_element(*element_lattice(element, 8), 8) == element
    assert move_cursor(0, 0, -1, 0, 8, 3) == (0, 0)                 # kept on the mesh
    assert move_cursor(1, 0, 0, 1, 8, 3) == (1, 2)                  # past the corner to the next link
    assert move_cursor(0, 0, 0, 1, 8, 3, vertical_links=False) == (0, 2)


# ---- keys and clicks ---------------------------------------------------------------------------------------

@async_test
async def test_arrows_enter_and_escape_select_a_die():
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot, 2)
        await pilot.press("right")                              # the cursor appears on the bottleneck
        assert lattice_element(*app.cursor, 8) == ("link", 11, 12) and "[" in grid_text(app)
        await pilot.press("escape")
        await step(pilot)                                       # layer 3: bound by die 5's HBM
        await pilot.press("left")
        assert lattice_element(*app.cursor, 8) == ("die", 5)
        await pilot.press("left", "right", "right", "left", "left")
        assert lattice_element(*app.cursor, 8) == ("link", 4, 5)
        await pilot.press("right")
        await pilot.press("enter")
        assert app.selected == ("die", 5) and app.screen.has_class("-selected")
        assert app.query_one("#selection").display and not app.query_one(StatsPanel).display
        text = panel_text(app)
        for want in ("die 5", "HBM", "homes e25-29, e125 (6)", "e25", "900", "home", "latency"):
            assert want in text, want
        assert "»" in grid_text(app)
        await pilot.press("escape")
        assert app.selected is None and app.cursor is None and app.query_one(StatsPanel).display


@async_test
async def test_a_link_is_selected_with_the_cursor():
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot)                                        # layer 1: bound by die 5
        await pilot.press("down")                                # the cursor on die 5
        for key in ["down", "down", "left", "left", "left"]:
            await pilot.press(key)
        assert lattice_element(*app.cursor, 8) == ("link", 11, 12)
        await step(pilot)                                        # layer 2: bound by that link
        await pilot.press("enter")
        text = panel_text(app)
        assert "link 11 ↔ 12" in text and "226 MB" in text and "100% busy" in text
        assert "weights crossing 6" in text and "e66" in text


@async_test
async def test_a_click_selects_what_is_under_it():
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot)
        grid = app.query_one("#grid-a", DieGrid)
        spot = next((x, y) for y in range(grid.size.height) for x in range(grid.size.width)
                    if grid.element_at(x, y) == ("die", 13))
        await pilot.click("#grid-a", offset=spot)
        assert app.selected == ("die", 13)
        assert "die 13" in panel_text(app)


@async_test
async def test_the_bottleneck_is_marked_on_the_grid_and_named_under_it():
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot)
        assert str(app.query_one("#bound-a").render()).strip() == "bound by die 5 HBM: 99% busy, 151 MB"
        assert "!100" in grid_text(app)                          # die 5 carries the mark
        await step(pilot)
        assert str(app.query_one("#bound-a").render()).strip() == "bound by link 11->12: 100% busy, 226 MB"
        assert "!" in grid_text(app) and "!100" not in grid_text(app)


@async_test
async def test_marks_read_without_colour(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot)
        await pilot.press("right", "left", "left", "enter", "right", "right")
        text = grid_text(app)
        assert "!" in text and "»" in text and "«" in text and "[" in text and "]" in text


# ---- 80x24 ---------------------------------------------------------------------------------------------------

def test_header_abbreviates_before_it_drops_synthetic_or_reused():
    for width in (120, 76, 60, 50):
        text = fit(header_variants("kimi", "5x5", 16384, True, "a-very-long-synthetic-trace-name.wvtrace", True,
                                   width), width)
        assert len(text) <= width or width < 50
        assert "synthetic" in text and "requests reused" in text
    assert fit(header_variants("kimi", "5x5", 16384, True, "t.wvtrace", True, 120), 120).startswith("waferview")


@async_test
async def test_80x24_header_and_warning_keep_what_matters():
    import dataclasses

    trace = dataclasses.replace(small_trace("kimi", 2, 2), source="/data/traces/kimi-k2-mmlu-abstract-algebra-"
                                "all-requests.wvtrace (synthetic)", synthetic=True)
    from waferview.tui.app import make_app
    app = make_app(trace, load_hardware("5x5"), batch=5, paused=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        header = str(app.query_one(HeaderBar).render())
        assert "synthetic" in header and "requests reused" in header and "batch 5" in header
        assert "waferview/fluid" in header                      # the profile and link model, abbreviated
        assert app.facts_line == ("kimi · 5x5 · batch 5 (requests reused) · profile waferview, fluid links · "
                                  "kimi-k2-mmlu-abstract-algebra-all-requests.wvtrace (synthetic)")
        warning = str(app.query_one("#hbm-warning").render())
        assert "do not fit" in warning and "no copies" in warning and "\n" not in warning.strip()
        assert len(warning.strip()) <= 80


@async_test
async def test_side_panel_labels_run_totals_and_this_layer():
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot, 2)
        text = str(app.query_one(StatsPanel).render())
        assert "run so far" in text and "this layer" in text
        assert "99.97%" in text and "100.0%" not in text          # the run's hit rate is 0.9997
        assert "per step: hit rate 0-100%" in text and "per step: layer" in text


def test_percentages_never_round_to_a_bound_they_do_not_reach():
    assert pct(0.9997) == "99.97%" and pct(1.0) == "100.0%" and pct(0.00001) == "0.001%"
    assert pct(0.4567) == "45.7%" and pct(None) == "-" and pct(0.99999999) == ">99.99%"


@async_test
async def test_compare_rows_are_labelled_by_run_and_unit_and_the_palette_sets_b():
    app = app_for()
    async with app.run_test(size=(80, 30)) as pilot:
        await step(pilot, 2)
        await pilot.press("c")
        await wait_until(pilot, lambda: app.state.compare is not None, "comparison")
        text = str(app.query_one(ComparePanel).render()).splitlines()
        head = next(line for line in text if line.startswith("run so far"))
        assert head.split()[-2:] == ["A", "B"]
        remote = next(line for line in text if line.startswith("remote"))
        assert remote.split()[0] == "remote" and remote.count("B") == 2   # units in the values: "… MB"
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        commands["B Predictor: lru"].callback()
        await step(pilot)
        assert app.driver.compare_engine.predictor == "lru" and app.driver.engine.predictor == "heatmap"
        assert app.state.compare.frame.predictor == "lru"


@async_test
async def test_help_lists_every_binding():
    app = scripted_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        keys = {b.key for b in app.BINDINGS}
        assert keys >= {"n", "N", "g", "0,home", "enter", "escape", "left", "s", "q", "ctrl+c"}
        for key, what in help_rows():
            assert key in text and what in text
    line = keys_line()
    for k in KEYS:
        if k.help:
            assert (k.display or k.keys.split(",")[0]) in line
    replay = build_parser()._subparsers._group_actions[0].choices["replay"]
    assert line in replay.description


@async_test
async def test_grid_colours_follow_the_theme():
    app = scripted_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot)
        grid = app.query_one("#grid-a", DieGrid)
        dark = {c: grid.get_component_rich_style(c) for c in ("diegrid--u4", "link--mid", "diegrid--bound")}
        app.theme = "nord"
        await pilot.pause()
        nord = {c: grid.get_component_rich_style(c) for c in dark}
        assert all(dark[c].color != nord[c].color and nord[c].color is not None for c in dark)
        assert "!100" in grid_text(app)                          # redrawn in the new colours


@async_test
async def test_a_mesh_too_big_for_the_pane_says_so_and_redraws_when_it_fits():
    app = app_for("qwen3", "25x25")            # at 80x24 the grid pane is 48 cells wide; 25 dies need 49
    async with app.run_test(size=(80, 24)) as pilot:
        await step(pilot)
        grid = app.query_one("#grid-a", DieGrid)
        text = grid_text(app)
        assert "the 25x25 die grid needs 49x25 cells," in text
        assert f"this pane has {grid.size.width}x{grid.size.height}:" in text
        assert "enlarge the terminal or use a smaller --mesh" in text
        assert "█" not in text and "·" not in text       # no cropped corner of the wafer drawn as if whole
        assert all(grid.element_at(x, y) is None for y in range(grid.size.height) for x in range(grid.size.width))
        await pilot.resize_terminal(200, 80)
        await pilot.pause()
        assert "needs" not in grid_text(app)
        drawn = {grid.element_at(x, y) for y in range(grid.size.height) for x in range(grid.size.width)}
        assert ("die", 0) in drawn and ("die", 624) in drawn
