"""The numba circuit link model (waferview.links.circuit) agrees exactly with the slow reference
(tests/reference_circuit.py): event counts, the barrier, spans, hops, bytes, LLC hits and the copy region's
contents, layer after layer, on random meshes from 1x1 to 4x4 with every rule switched on or off."""

from __future__ import annotations

import numpy as np
import pytest

from circuit_cases import Pair, random_tasks
from waferview.links.circuit_rules import RULES, CircuitRules


@pytest.mark.parametrize("case", range(36))
def test_numba_circuit_equals_the_reference_on_random_layers(case):
    rng = np.random.default_rng(500 + case)
    width, height = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    key = ("deepseek", "qwen3", "llama4")[case % 3]
    off = [r for r in RULES if rng.random() < 0.3] if case >= 6 else []
    region = (None, 3, 24)[case % 3]          # unbounded, tight, roomy (slices per die)
    pair = Pair(key, width, height, int(rng.integers(3, 13)), 2, CircuitRules.without(off), region)
    for _ in range(int(rng.integers(0, 8))):   # copies already there, some partial
        pair.store_copy(int(rng.integers(0, 2)), int(rng.integers(0, width * height)), int(rng.integers(0, pair.E)),
                        int(rng.integers(0, 3)))
    events = 0
    for layer in (0, 1, 0, 1):
        ours, theirs = pair.run(layer, random_tasks(rng, pair, 14))
        assert ours == theirs, (case, off, layer)
        events += ours["events"]
    assert pair.region_contents()[0] == pair.region_contents()[1]
    assert events > 0


def test_the_random_layers_exercise_every_path():
    # guards the test above against passing on trivial layers: remote fetches, LLC hits, copies and evictions
    totals = dict(hops=0, llc=0, writes=0, events=0)
    evictions = 0
    for case in range(12):
        rng = np.random.default_rng(900 + case)
        pair = Pair("qwen3", 3, 2, 6, 2, CircuitRules(), 4)
        for layer in (0, 1, 0, 1, 0):
            ours, _ = pair.run(layer, random_tasks(rng, pair, 14))
            totals["hops"] += ours["hops"]
            totals["llc"] += ours["llc_hits"]
            totals["writes"] += ours["write"] > 0
            totals["events"] += ours["events"]
        evictions += pair.region.evictions
    assert totals["hops"] > 0 and totals["llc"] > 0 and totals["writes"] > 0 and evictions > 0


def test_a_whole_deepseek_layer_worked_by_hand():
    # tests/test_reference_circuit.py works this layer out event by event: expert 0 (home 0) and expert 1 (home 1)
    # both on die 0 of a 2x1 mesh, one token each: 42 events, the barrier at 67,392 ns, 3 hops (one request leg
    # per remote slice), three local and three remote slice reads
    pair = Pair("deepseek", 2, 1, 2, 1, CircuitRules(), None)
    ours, _ = pair.run(0, [(0, 0, 1, False), (1, 0, 1, False)])
    assert (ours["end"], ours["events"], ours["hops"], ours["busy"]) == (67392, 42, 3, [67392.0, 0.0])
    assert (ours["local"], ours["remote"], ours["write"]) == (3 * (29360128 + 18432), 3 * 29360128, 0)
    # stages created when their predecessor ends: the last local compute is no longer overtaken
    later = Pair("deepseek", 2, 1, 2, 1, CircuitRules(lock_at_creation=False), None)
    assert later.run(0, [(0, 0, 1, False), (1, 0, 1, False)])[0]["end"] == 67333
