"""Per-layer records (summary --layers, compare --layers, replay --record) and the run's traffic matrix and
link bytes: the rows add up to the run's totals exactly, under both link models and both profiles, for
request traces and recorded batches; files are whole or absent."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import orjson
import pytest

from enginefiles import megatron_records, routing, tiny_model, write_jsonl
from tracefiles import isolated_cache, run_cli  # noqa: F401
from tui_support import SEED, async_test, small_trace, step, wait_until
from waferview.trace.cache import save_cache

SUMMED = ("remote_read_bytes", "local_read_bytes", "local_write_bytes", "header_bytes", "hops", "copies_made",
          "copy_reads", "evictions", "token_selections")


@pytest.fixture
def qwen_cache(tmp_path) -> str:
    path = tmp_path / "tiny-qwen3.wvtrace"
    save_cache(path, small_trace("qwen3", 5, 6), source_key="layer-records")
    return str(path)


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_jsonl(path) -> list[dict]:
    return [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]


def summary_with_layers(capsys, source, out, *options) -> dict:
    code, stdout, err = run_cli(["summary", source, "--json", "--layers", out, *options], capsys)
    assert code == 0, err
    return orjson.loads(stdout)


def number(text: str):
    return float(text) if any(c in text for c in ".e") else int(text)


def assert_rows_add_up(rows: list[dict], fields: dict, *, from_csv: bool) -> None:
    value = number if from_csv else (lambda v: v)
    assert len(rows) == fields["layers_total"] == fields["steps"] * fields["moe_layers"]
    for key in SUMMED:
        assert sum(value(r[key]) for r in rows) == fields[key], key
    decode = prefill = 0.0                       # the engine's additions, in the engine's order
    for r in rows:
        if r["phase"] == "decode":
            decode += float(r["layer_time_ns"])
        else:
            prefill += float(r["layer_time_ns"])
    assert decode * 1e-6 == fields["decode_time_ms"] and prefill * 1e-6 == fields["prefill_time_ms"]
    links = fields["link_bytes"]
    for i, link in enumerate(links):
        cells = (r[f"link_bytes_{i}"] for r in rows) if from_csv else (r["link_bytes"][i] for r in rows)
        assert sum(int(c) for c in cells) == link["bytes"], i
    # (step, layer) in order, each once
    L = fields["moe_layers"]
    assert [(int(r["step"]), int(r["layer"])) for r in rows] == [divmod(p, L) for p in range(len(rows))]


def assert_traffic_adds_up(fields: dict, width: int) -> None:
    matrix = np.array(fields["traffic_matrix"], dtype=np.int64)
    assert matrix.shape == (fields["dies"], fields["dies"])
    assert int(matrix.sum()) == fields["remote_read_bytes"] > 0
    assert (np.diag(matrix) == 0).all()                       # a die never reads its own HBM remotely
    links = fields["link_bytes"]
    assert len({(x["from"], x["to"]) for x in links}) == len(links)
    for x in links:                                           # neighbours only, every direction
        (ax, ay), (bx, by) = divmod(x["from"], width)[::-1], divmod(x["to"], width)[::-1]
        assert abs(ax - bx) + abs(ay - by) == 1
    if fields["links"] == "fluid":
        # every remote read is one whole expert over its XY route, a 16 B header back over the same links
        remote_reads = fields["header_bytes"] // 16
        expert = fields["remote_read_bytes"] // remote_reads
        assert sum(x["bytes"] for x in links) == fields["hops"] * (expert + 16)
        i, j = np.nonzero(matrix)
        hops = sum(int(matrix[a, b] // expert) * (abs(a % width - b % width) + abs(a // width - b // width))
                   for a, b in zip(i, j))
        assert hops == fields["hops"]


@pytest.mark.parametrize("links,profile", [("fluid", "waferview"), ("circuit", "waferview"), ("fluid", "paper"),
                                           ("circuit", "paper")])
def test_summary_layers_csv_add_up_to_the_totals(tmp_path, capsys, qwen_cache, links, profile):
    out = tmp_path / "layers.csv"
    fields = summary_with_layers(capsys, qwen_cache, out, "--mesh", "3x3", "--batch", "4", "--seed", str(SEED),
                                 "--links", links, "--profile", profile, "--placement", "base")
    assert fields["links"] == links and fields["profile"] == profile
    rows = read_csv(out)
    assert len(rows) == 7 * 94                                 # 1 prefill + 6 decode steps, Qwen's 94 layers
    assert_rows_add_up(rows, fields, from_csv=True)
    assert_traffic_adds_up(fields, width=3)
    assert {r["links"] for r in rows} == {links} and {r["phase"] for r in rows} == {"prefill", "decode"}
    assert all(r["phase"] == ("prefill" if r["step"] == "0" else "decode") for r in rows)
    first = rows[0]
    busy = [float(first[f"die_busy_{d}"]) for d in range(9)]
    assert float(first["busiest_die_busy_ns"]) == max(busy) and int(first["busiest_die"]) == busy.index(max(busy))
    assert float(first["layer_time_ns"]) >= max(busy)
    if first["bound"]:
        assert first["bound_resource"].startswith("die " if first["bound"] != "link" else "link ")


def test_jsonl_holds_the_same_rows_as_csv(tmp_path, capsys, qwen_cache):
    options = ("--mesh", "2x2", "--batch", "3", "--placement", "base", "--predictor", "lru")
    a = summary_with_layers(capsys, qwen_cache, tmp_path / "a.csv", *options)
    b = summary_with_layers(capsys, qwen_cache, tmp_path / "b.jsonl", *options)
    assert a["traffic_matrix"] == b["traffic_matrix"] and a["link_bytes"] == b["link_bytes"]
    rows_csv, rows_json = read_csv(tmp_path / "a.csv"), read_jsonl(tmp_path / "b.jsonl")
    assert_rows_add_up(rows_json, b, from_csv=False)
    assert len(rows_csv) == len(rows_json)
    for c, j in zip(rows_csv, rows_json):
        assert j["die_busy"] == [float(c[f"die_busy_{d}"]) for d in range(4)]
        assert j["link_bytes"] == [int(c[f"link_bytes_{i}"]) for i in range(8)]
        for key, value in j.items():
            if key in ("die_busy", "link_bytes"):
                continue
            if value is None:
                assert c[key] == "", key
            elif isinstance(value, str):
                assert c[key] == value, key
            else:
                assert number(c[key]) == value, key


def test_a_recorded_batch_gives_a_row_per_pass_and_layer(tmp_path, capsys):
    model, desc = tiny_model(tmp_path)
    folder = tmp_path / "trace"
    folder.mkdir()
    steps = [(0, routing(model, 90, 1)), (1, routing(model, 4, 2)), (2, routing(model, 3, 3))]
    write_jsonl(folder / "router_trace_rank0.jsonl", megatron_records(model, 0, steps))
    for links in ("fluid", "circuit"):
        out = tmp_path / f"{links}.jsonl"
        fields = summary_with_layers(capsys, folder, out, "--model", desc, "--mesh", "2x2", "--links", links,
                                     "--placement", "base", "--predictor", "off")
        rows = read_jsonl(out)
        assert len(rows) == 3 * fields["moe_layers"]
        assert [r["phase"] for r in rows[:: fields["moe_layers"]]] == ["prefill", "decode", "decode"]
        assert_rows_add_up(rows, fields, from_csv=False)
        assert int(np.array(fields["traffic_matrix"]).sum()) == fields["remote_read_bytes"]


def test_compare_layers_one_file_per_strategy_and_link_model(tmp_path, capsys, qwen_cache):
    folder = tmp_path / "records"
    code, out, err = run_cli(["compare", qwen_cache, "--mesh", "3x2", "--batch", "3", "--json", "--links",
                              "fluid,circuit", "--layers", folder], capsys)
    assert code == 0, err
    result = orjson.loads(out)
    names = sorted(os.listdir(folder))
    assert names == sorted(f"{s}.{links}.csv" for s in ("base", "ep", "pred-only", "allo-only", "allo-pred")
                           for links in ("fluid", "circuit"))
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    slug = {"Base": "base", "EP": "ep", "Pred Only": "pred-only", "Allo Only": "allo-only", "Allo+Pred": "allo-pred"}
    for row in result["rows"]:
        rows = read_csv(folder / f"{slug[row['strategy']]}.{row['links']}.csv")
        assert_rows_add_up(rows, row, from_csv=True)
        assert {(r["placement"], r["predictor"]) for r in rows} == {(row["placement"], row["predictor"])}
        assert int(np.array(row["traffic_matrix"]).sum()) == row["remote_read_bytes"]


@pytest.mark.parametrize("command,target,expected", [
    ("summary", "missing-folder/layers.csv", "does not exist"),
    ("summary", "layers.txt", "expected a file name ending in .csv or .jsonl"),
    ("summary", "a-folder.csv", "is a folder"),
    ("compare", "a-file", "exists and is not a folder"),
    ("compare", "missing-folder/records", "does not exist"),
])
def test_a_bad_path_is_one_line_exit_2_and_nothing_left(tmp_path, capsys, qwen_cache, command, target, expected):
    (tmp_path / "a-folder.csv").mkdir()
    (tmp_path / "a-file").write_text("x")
    before = sorted(os.listdir(tmp_path))
    code, out, err = run_cli([command, qwen_cache, "--mesh", "2x2", "--layers", tmp_path / target], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert expected in err and f"waferview {command}: --layers" in err
    assert sorted(os.listdir(tmp_path)) == before                 # no temporary, no half file


def test_a_run_that_fails_leaves_no_file(tmp_path, capsys, qwen_cache, monkeypatch):
    from waferview.errors import InputError
    from waferview.sim.engine import Engine

    real = Engine.run

    def fail_half_way(self, progress=None, stop=None):
        real(self, stop=self.total // 2)
        raise InputError("stopped half way")

    monkeypatch.setattr(Engine, "run", fail_half_way)
    for command, target in (("summary", "layers.csv"), ("compare", "records")):
        code, out, err = run_cli([command, qwen_cache, "--mesh", "2x2", "--layers", tmp_path / target], capsys)
        assert code == 2 and "stopped half way" in err
        assert [n for n in os.listdir(tmp_path) if n not in ("tiny-qwen3.wvtrace", "wvcache")] == []


def test_the_summary_table_shows_the_big_lists_summarised(capsys, qwen_cache):
    code, out, err = run_cli(["summary", qwen_cache, "--mesh", "3x3", "--batch", "2"], capsys)
    assert code == 0, err
    assert "traffic_matrix           9x9 matrix, see --json" in out
    assert "link_bytes               24 links, see --json" in out


@async_test
async def test_replay_record_keeps_the_layers_replayed_with_the_mode_change(tmp_path):
    from waferview.report.layer_replay import ReplayRecord
    from waferview.tui.app import make_app
    from waferview.wafer.hardware import load_hardware

    path = tmp_path / "replayed.csv"
    app = make_app(small_trace("qwen3", 5, 6), load_hardware("3x3"), batch=4, seed=SEED, placement="allo",
                   predictor="heatmap", paused=True, record=ReplayRecord(str(path)))
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: app.state is not None and app.state.ready, "the engine")
        await step(pilot, 3)
        await pilot.press("p")                     # allo -> base from the next layer
        await wait_until(pilot, lambda: app.driver.engine.placement == "base", "the placement change")
        await step(pilot, 2)
        await pilot.press("l")                     # fluid -> circuit from the next layer
        await wait_until(pilot, lambda: app.driver.engine.links == "circuit", "the link model change")
        await step(pilot, 2)
        totals = app.state.main.frame.totals
        assert not path.exists()                   # written when the app exits
        await pilot.press("q")
    rows = read_csv(path)
    assert [(r["placement"], r["links"]) for r in rows] == [("allo", "fluid")] * 3 + [("base", "fluid")] * 2 + \
        [("base", "circuit")] * 2
    for key in SUMMED:
        assert sum(int(r[key]) for r in rows) == totals[key], key
    assert sum(float(r["layer_time_ns"]) for r in rows) * 1e-6 == totals["prefill_time_ms"]
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


@async_test
async def test_replay_record_after_going_back_is_the_run_as_last_replayed(tmp_path):
    from waferview.report.layer_replay import ReplayRecord
    from waferview.tui.app import make_app
    from waferview.wafer.hardware import load_hardware

    path = tmp_path / "replayed.jsonl"
    app = make_app(small_trace("qwen3", 5, 6), load_hardware("2x2"), batch=3, seed=SEED, placement="ep",
                   predictor="off", paused=True, record=ReplayRecord(str(path)))
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_until(pilot, lambda: app.state is not None and app.state.ready, "the engine")
        await step(pilot, 4)
        await pilot.press("N")                     # back to 3 layers: re-simulated from step 0
        await wait_until(pilot, lambda: app.state.main.position == 3 and not app.driver.busy, "one layer back")
        await pilot.press("p")                     # ep -> allo from layer 4 on: a new branch
        await wait_until(pilot, lambda: app.driver.engine.placement == "allo", "the placement change")
        await step(pilot, 2)
        await pilot.press("q")
    rows = read_jsonl(path)
    assert [(r["step"], r["layer"]) for r in rows] == [(0, i) for i in range(5)]
    assert [r["placement"] for r in rows] == ["ep"] * 3 + ["allo"] * 2
