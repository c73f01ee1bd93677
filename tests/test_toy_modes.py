"""A mode added from outside the package (one file, one registry line) runs on the engine's fast path, and
leaves the package's kernel caches readable by processes that do not have it (run in a subprocess: the
toy modes are registered there only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

SCRIPT = r"""
import sys
sys.path.insert(0, TESTS)
import numpy as np
import orjson
from waferview import links, policies
policies._PLACEMENT_MODULES["one-die"] = "toy_placement"   # the one registry line of a placement
links._MODULES["per-task"] = "toy_links"                       # ... and of a link model
from simcases import random_trace, tiny_hardware, tiny_model
from waferview.sim.engine import Engine
from waferview.sim.loop import run_layers, run_layers_uncached

trace = random_trace(np.random.default_rng(3), tiny_model(num_experts=6, top_k=2, layers=2), requests=4)
hw = tiny_hardware(3, 2)
fast = Engine(trace, hw, placement="one-die", predictor="lru", links="per-task").run()
slow = Engine(trace, hw, placement="one-die", predictor="lru", links="per-task")
frames = []
while (f := slow.step()) is not None:
    frames.append(f)
counts = slow.counts
expected_reads = int((counts > 0).sum())
print(orjson.dumps({
    "fast": fast, "stepped": slow.summary(), "expected_reads": expected_reads,
    "expected_time_ms": float(sum((c > 0).sum() for c in counts.reshape(-1, counts.shape[2]))) * 1000 * 1e-6,
    "all_on_last_die": all(set(f.task_die.tolist()) <= {5} for f in frames),
    "signatures": [str(s) for s in run_layers_uncached.signatures],
    "cached_signatures": [str(s) for s in run_layers.signatures],
}).decode())
"""


def test_a_toy_placement_and_link_model_run_on_the_fast_path(tmp_path):
    tests = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONPATH=str(tests))
    out = subprocess.run([sys.executable, "-c", f"TESTS = {str(tests)!r}\n" + SCRIPT], capture_output=True,
                         text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = orjson.loads(out.stdout.splitlines()[-1])
    assert r["fast"] == r["stepped"]
    assert r["all_on_last_die"]
    assert r["fast"]["placement"] == "one-die" and r["fast"]["weight_reads"] == r["expected_reads"] > 0
    # per-task links: every task costs 1 us on its die, and all of a layer's tasks run on die 5
    assert abs(r["fast"]["prefill_time_ms"] + r["fast"]["decode_time_ms"] - r["expected_time_ms"]) < 1e-12
    assert any("OneDieState" in s and "PerTaskState" in s for s in r["signatures"])
    assert not any("OneDieState" in s for s in r["cached_signatures"])
    # and a process without the toys still loads the package's cached loop
    plain = subprocess.run([sys.executable, "-m", "waferview", "summary", "--json", "--model", "llama4",
                            "--placement", "base", "--predictor", "lru"], capture_output=True, text=True,
                           timeout=600, env=dict(os.environ))
    assert plain.returncode == 0, plain.stderr[-2000:]
    # the lru predictor copied remote reads to die 5 through the engine's copy store
    assert r["fast"]["copies_made"] > 0
