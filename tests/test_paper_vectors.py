"""`--profile paper` reproduces the study's simulator: the ten public rows of
tests/fixtures/paper_vectors/deepseek_seed2_16steps.csv (64 DeepSeek requests, 16 iterations, five strategies
on 5x5 and 8x3). Acceptance: Base, EP and Pred Only within 0.5% on every time and throughput column, hops
within 0.1%, GiB columns within 1 GiB; Allo Only and Allo+Pred within 2%. Run through the command line, as a
user would."""

from __future__ import annotations

import orjson
import pytest

from paper_vectors import INPUT, load_input, vector_rows
from tracefiles import run_cli

STRATEGIES = {"base": "base/off", "norm_ep": "ep/off", "pred_only": "base/heatmap", "allo_only": "allo/off",
              "allo_and_pred": "allo/heatmap"}
GIB = 2 ** 30
ROWS = vector_rows()


@pytest.fixture(scope="module")
def vector_cache(tmp_path_factory):
    """The vectors' input as a waferview cache (what a user would pass as SOURCE)."""
    from waferview.trace.cache import save_cache

    path = tmp_path_factory.mktemp("vectors") / "deepseek-seed2.wvtrace"
    save_cache(path, load_input())
    return path


@pytest.mark.parametrize("mesh", ["5x5", "8x3"])
def test_the_paper_profile_reproduces_the_studys_rows(vector_cache, mesh, capsys):
    code, out, err = run_cli(["compare", vector_cache, "--profile", "paper", "--max-steps", "16", "--mesh", mesh,
                              "--json", "--modes", ",".join(STRATEGIES.values())], capsys)
    assert code == 0, err
    rows = {r["placement"] + "/" + r["predictor"]: r for r in orjson.loads(out)["rows"]}
    checked = 0
    for want in ROWS:
        if f"{want['mesh_long']}x{want['mesh_short']}" != mesh:
            continue
        got = rows[STRATEGIES[want["strategy"]]]
        assert (got["profile"], got["links"], got["batch"]) == ("paper", "circuit", 64)
        tol = 0.02 if want["strategy"].startswith("allo") else 0.005
        times = {"time_ms": got["prefill_time_ms"] + got["decode_time_ms"], "prefill_ms": got["prefill_time_ms"],
                 "decode_ms": got["decode_time_ms"], "throughput": got["paper_throughput"]}
        for column, value in times.items():
            assert value == pytest.approx(float(want[column]), rel=tol), (want["strategy"], mesh, column)
        assert got["hops"] == pytest.approx(int(want["hop"]), rel=max(tol, 0.001), abs=1), (want["strategy"], mesh)
        gib = {"local_dram_read_gib": got["local_read_bytes"], "remote_dram_read_gib": got["remote_read_bytes"],
               "local_dram_write_gib": got["local_write_bytes"]}
        for column, nbytes in gib.items():
            assert abs(nbytes / GIB - float(want[column])) <= 1.0, (want["strategy"], mesh, column)
        for column, key in (("usage", "paper_usage"), ("die_max_over_min", "paper_die_max_over_min"),
                            ("die_max_over_avg", "paper_die_max_over_avg")):
            assert got[key] == pytest.approx(float(want[column]), abs=0.006), (want["strategy"], mesh, column)
        checked += 1
    assert checked == 5


def test_the_vectors_input_is_the_studys_64_requests():
    trace = load_input()
    assert (trace.model.key, trace.requests) == ("deepseek", 64) and INPUT.exists()
    assert len(ROWS) == 10 and {r["strategy"] for r in ROWS} == set(STRATEGIES)
