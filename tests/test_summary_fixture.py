"""The guard of engine refactorings: a fixed set of runs (every placement x predictor x eviction, two
meshes, three models; tests/fixtures/make_summary_fixture.py) gives the recorded `summary --json`,
byte for byte, on every field it recorded (fields added later are not compared)."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))
import make_summary_fixture as fixture  # noqa: E402

from waferview.policies.base import PolicyOptions  # noqa: E402
from waferview.report.summary import summary_fields  # noqa: E402
from waferview.sim.engine import Engine  # noqa: E402
from waferview.wafer.hardware import load_hardware  # noqa: E402

RECORDED = [orjson.loads(line) for line in (fixture.HERE / "summaries.jsonl").read_bytes().splitlines()]
RUNS = list(fixture.runs())


def test_fixture_covers_every_mode_and_exercises_copies_and_evictions():
    assert len(RECORDED) == len(RUNS) == 3 * 2 * 3 * 4 * 3
    assert sum(r["evictions"] > 0 for r in RECORDED) > 25 and sum(r["copies_made"] > 0 for r in RECORDED) > 50


@pytest.mark.parametrize("model", fixture.MODELS)
def test_summaries_are_byte_identical_to_the_recorded_ones(model):
    traces = fixture.load_inputs()
    for (m, mesh, placement, predictor, eviction), recorded in zip(RUNS, RECORDED):
        if m != model:
            continue
        engine = Engine(traces[m], load_hardware(mesh), batch=fixture.BATCH, seed=1, placement=placement,
                        predictor=predictor, options=PolicyOptions(eviction=eviction, copy_slots=40))
        now = summary_fields(traces[m], engine.run())
        same_keys = {k: now.get(k) for k in recorded}
        assert orjson.dumps(same_keys) == orjson.dumps(recorded), (m, mesh, placement, predictor, eviction)
