"""compare --jobs: strategies run at once on threads give the same rows, in the same order, as one after another;
an error in one run stops the others and is the error raised (bars from two threads: test_progress.py)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from simcases import random_trace
from waferview.bench.paper_profile import paper_options
from waferview.cli.main import main
from waferview.models import get_model
from waferview.policies import PAPER_STRATEGIES
from waferview.sim.compare import compare
from waferview.sim.engine import Engine, RunCancelled
from waferview.trace.cache import save_cache
from waferview.wafer.hardware import load_hardware


@pytest.fixture(scope="module")
def trace():
    return random_trace(np.random.default_rng(11), get_model("qwen3"), requests=6, max_prefill=4, max_decode=6)


@pytest.mark.parametrize("profile", ["waferview", "paper"])
def test_rows_are_the_same_for_any_number_of_jobs(trace, profile):
    options = paper_options()[0] if profile == "paper" else None
    hardware = load_hardware("3x2")
    modes = list(PAPER_STRATEGIES) + [("ep/lru", "ep", "lru")]
    one = compare(trace, hardware, modes, options=options, links=("fluid", "circuit"), jobs=1)
    for jobs in (2, 3, 16):
        assert compare(trace, hardware, modes, options=options, links=("fluid", "circuit"), jobs=jobs) == one
    assert [(r["strategy"], r["links"]) for r in one] == [(name, links) for links in ("fluid", "circuit")
                                                          for name, _, _ in modes]
    assert len({r["throughput_tokens_per_s"] for r in one}) > 2   # the runs differ: the test can tell them apart


def test_the_cli_gives_the_same_json_for_any_jobs(trace, tmp_path, capsys):
    source = str(save_cache(tmp_path / "qwen3.wvtrace", trace))
    outputs = []
    for jobs in ("1", "2"):
        assert main(["compare", source, "--profile", "paper", "--mesh", "3x2", "--json", "--jobs", jobs]) == 0
        outputs.append(json.loads(capsys.readouterr().out)["rows"])
    assert outputs[0] == outputs[1] and len(outputs[0]) == 5


def test_jobs_below_one_is_one_line(trace, tmp_path, capsys):
    source = str(save_cache(tmp_path / "qwen3.wvtrace", trace))
    assert main(["compare", source, "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--jobs 0: expected 1 or more" in err


def test_cancel_stops_a_run_before_its_next_step(trace):
    engine = Engine(trace, load_hardware("3x2"), placement="base", predictor="off")
    engine.run(stop=engine.model.moe_layers)            # one step
    engine.cancel()
    with pytest.raises(RunCancelled):
        engine.run()
    assert engine.position == engine.model.moe_layers   # nothing more was simulated


def test_an_error_in_one_run_stops_the_others_and_is_raised(trace):
    """Base waits at its first step until it is cancelled; EP fails once Base is running. compare() must cancel
    Base (not wait for it to finish), raise EP's error, and start none of the strategies still queued."""
    base_running = threading.Event()
    seen = {}

    def run(engine):
        name = engine.placement
        seen[name] = "started"
        if name == "base":
            def hold(position, total):
                base_running.set()
                for _ in range(500):          # at most 5 s, then the test fails below
                    if engine._cancelled:
                        return
                    threading.Event().wait(0.01)

            try:
                return engine.run(progress=hold)
            except RunCancelled:
                seen[name] = "cancelled"
                raise
        base_running.wait(5)
        raise RuntimeError(f"{name} broke")

    with pytest.raises(RuntimeError, match="ep broke"):
        compare(trace, load_hardware("3x2"), [("EP", "ep", "off"), ("Allo Only", "allo", "off")], run=run, jobs=2)
    assert seen == {"base": "cancelled", "ep": "started"}
