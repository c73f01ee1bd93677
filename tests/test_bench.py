"""waferview bench: structure and sane values on the tiny configuration (no timed assertions)."""

from __future__ import annotations

import math

import orjson
import pytest

from waferview.bench import runner, suites
from waferview.bench.sizes import ALL_MODELS, FULL, QUICK, TINY
from waferview.cli.main import main

TOP_KEYS = ("engine_speedup_vs_reference", "engine_layers_per_s", "engine_token_selections_per_s",
            "ingest_vs_raw_orjson", "cache_bytes_over_json_bytes", "sweep_seconds", "sweep_seconds_all_models",
            "peak_rss_mb", "cold_start_s", "warm_start_s", "targets", "met", "machine")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One in-process `waferview bench --json` on the tiny configuration, shared by the tests below."""
    capture = pytest.MonkeyPatch()
    out = tmp_path_factory.mktemp("bench")
    import io
    import sys

    buf = io.StringIO()
    capture.setattr(sys, "stdout", buf)
    try:
        code = main(["bench", "--config", "tiny", "--json", "--workdir", str(out)])
    finally:
        capture.undo()
    assert code == 0
    assert list(out.iterdir()) == [], "the bench must remove its temporary inputs"
    return orjson.loads(buf.getvalue())


def test_provenance_names_the_synthetic_inputs_meshes_and_models(tiny, tmp_path):
    from waferview.report.provenance import hardware_dict
    from waferview.wafer.hardware import load_hardware

    p = tiny["provenance"]
    assert p["synthetic"] is True
    assert p["hardware"] == [hardware_dict(load_hardware("5x5")), hardware_dict(load_hardware("8x3"))]
    assert [m["key"] for m in p["model"]] == list(ALL_MODELS)
    assert p["run_options"]["config"] == "tiny" and p["run_options"]["sweep_batches"] == [8, 16, 32]
    assert p["command_line"][:4] == ["waferview", "bench", "--config", "tiny"]


def test_every_key_is_there_with_a_sane_value(tiny):
    for key in TOP_KEYS:
        assert key in tiny, key
    assert tiny["config"] == "tiny"
    assert tiny["notes"].keys() == {"cold_start_s", "warm_start_s"}, tiny["notes"]  # nothing else failed
    assert tiny["cold_start_s"] is None and tiny["warm_start_s"] is None
    assert tiny["engine_speedup_vs_reference"] > 0
    assert tiny["ingest_vs_raw_orjson"] > 0 and tiny["ingest_vs_raw_orjson_gc_on"] > 0
    for x in tiny["details"]["ingest"]["by_model"].values():
        assert min(x["ingest_mb_per_s"], x["parse_only_mb_per_s"], x["raw_orjson_mb_per_s"]) > 0
    assert tiny["sweep_seconds"] > 0
    assert tiny["sweep_all_models_estimated"] is True
    assert tiny["sweep_seconds_all_models"] > tiny["sweep_seconds"]
    assert 0 < tiny["peak_rss_mb"] < 64 * 1024


def test_engine_rates_per_model_and_batch(tiny):
    for key in ("engine_layers_per_s", "engine_token_selections_per_s"):
        assert set(tiny[key]) == {"qwen3", "deepseek"}
        for per in tiny[key].values():
            assert set(per) == {"8", "16"}
            assert all(v > 0 and math.isfinite(v) for v in per.values())
    runs = tiny["details"]["engine_rates"]["runs"]
    for r in runs:
        # selections per second / layers per second = token selections per layer of that run
        ratio = tiny["engine_token_selections_per_s"][r["model"]][str(r["batch"])] / \
            tiny["engine_layers_per_s"][r["model"]][str(r["batch"])]
        assert ratio == pytest.approx(r["token_selections"] / r["layers"])


def test_reference_comparison_covers_every_mode_and_agrees(tiny):
    ref = tiny["details"]["engine_vs_reference"]
    modes = {(m["placement"], m["predictor"]) for m in ref["modes"]}
    assert len(modes) == 12
    assert all(m["outputs_agree"] for m in ref["modes"])
    assert tiny["engine_speedup_vs_reference"] == min(m["speedup"] for m in ref["modes"])
    assert tiny["engine_speedup_vs_reference_mode"] in {f"{p}/{q}" for p, q in modes}


def test_cache_is_smaller_than_json_for_every_model(tiny):
    ratios = tiny["cache_bytes_over_json_bytes"]
    assert set(ratios) == set(ALL_MODELS)
    assert all(0 < v < 1 for v in ratios.values())
    # uint16 ids (Kimi, 384 experts) cost twice the bytes of uint8 ids for the same JSON text per id
    assert ratios["kimi"] > ratios["deepseek"]
    for x in tiny["details"]["ingest"]["by_model"].values():
        assert x["files"] == TINY.ingest_requests and x["cache_bytes"] < x["json_bytes"]


def test_sweep_runs_and_estimate(tiny):
    sweep = tiny["details"]["sweep"]
    assert sweep["runs_by_model"] == {"llama4": 5 * 2 * 3}
    assert set(sweep["estimated_seconds_by_model"]) == {"qwen3", "deepseek", "kimi"}
    # estimate scales with MoE layers: qwen3 (94) over llama4 (24)
    assert sweep["estimated_seconds_by_model"]["qwen3"] == pytest.approx(sweep["seconds_by_model"]["llama4"] * 94 / 24)


def test_targets_and_met(tiny):
    assert set(tiny["targets"]) == set(tiny["met"])
    assert tiny["met"]["warm_start_s"] is None           # not measured
    assert tiny["met"]["cache_bytes_over_json_bytes"] is (max(tiny["cache_bytes_over_json_bytes"].values()) <= 0.05)
    assert tiny["met"]["peak_rss_mb"] is (tiny["peak_rss_mb"] < 2048)
    assert tiny["machine"]["cores"] >= 1 and tiny["machine"]["numba"]


def test_table_names_every_figure_and_target(tiny):
    text = runner.render_table(tiny)
    for words in ("engine speedup vs reference", ">= 100x", "ingest JSON->cache", "cache bytes / JSON bytes",
                  "paper sweep, one model", "paper sweep, four models (estimated)", "< 8 min", "peak RSS",
                  "warm start", "< 2 s", "tiny configuration", "not measured in the tiny configuration"):
        assert words in text, words


def test_missing_reference_model_gives_null_and_a_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(suites, "repo_root", lambda: tmp_path)
    out = suites.engine_vs_reference(TINY)
    assert out["engine_speedup_vs_reference"] is None
    assert "reference_model.py not found" in out["notes"]["engine_speedup_vs_reference"]


def test_met_rules():
    assert runner._met(150.0, ">=", 100) is True
    assert runner._met(99.0, ">=", 100) is False
    assert runner._met({"a": 0.04, "b": 0.06}, "<=", 0.05) is False   # every model must meet it
    assert runner._met(None, "<", 2) is None


def test_sizes_notes_say_what_differs_from_the_paper():
    assert "1024 distinct requests" in runner.sizes_note(QUICK) and "estimated" in runner.sizes_note(QUICK)
    assert "estimated" not in runner.sizes_note(FULL)
    assert FULL.sweep_models == ALL_MODELS and FULL.pool_requests == 16384


def test_bench_help_is_light():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "waferview", "bench", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "--quick" in done.stdout and "--config" not in done.stdout


def test_sweep_pool_figures(tiny):
    pool = tiny["details"]["sweep_pool"]
    assert pool["configurations"] == 4 * 5 and pool["rows_agree"] is True   # 1 worker, 2 workers, in-process
    assert tiny["sweep_parallel_efficiency"] == pytest.approx(pool["one_worker_s"] / pool["two_workers_s"])
    assert tiny["sweep_pool_overhead"] == pytest.approx(
        (pool["one_worker_cpu_s"] - pool["in_process_one_thread_cpu_s"]) / pool["in_process_one_thread_cpu_s"])
    assert pool["one_worker_cpu_s"] > 0 and pool["two_workers_cpu_s"] > 0
    grid = tiny["details"]["sweep_paper_grid"]
    assert grid["models_measured"] == ["llama4"] and grid["configurations_measured"] == 5 * 2 * 3
    assert tiny["sweep_paper_grid_estimated"] is True
    assert tiny["sweep_paper_grid_seconds"] == pytest.approx(grid["measured_s"] * (24 + 94 + 58 + 60) / 24)
    for key in ("sweep_parallel_efficiency", "sweep_pool_overhead", "sweep_paper_grid_seconds"):
        assert key in tiny["met"] and key in tiny["targets"]
    text = runner.render_table(tiny)
    assert "sweep pool: 2 workers' rate over 1 worker's" in text and ">= 1.8x" in text and "< 5%" in text


def test_paper_profile_figures_are_the_runs_they_name(tiny):
    pp = tiny["details"]["paper_profile"]
    base, ep = pp["runs"]
    assert (base["strategy"], ep["strategy"]) == ("base/off", "ep/off")
    assert base["events"] > 0 and base["layers"] == pp["steps"] * 24            # llama4: 24 MoE layers
    assert tiny["circuit_events_per_s"] == pytest.approx(base["events"] / base["circuit_s"])
    assert tiny["circuit_over_fluid_layer_cost"] == pytest.approx(base["circuit_s"] / base["fluid_s"])
    assert pp["compare"]["strategies"] == ["Base", "EP", "Pred Only", "Allo Only", "Allo+Pred"]
    assert pp["compare"]["requests"] == TINY.compare_requests
    assert tiny["paper_compare_vs_study"] == pytest.approx(3632.0 / tiny["paper_compare_seconds"])
    assert tiny["met"]["paper_compare_seconds"] is (tiny["paper_compare_seconds"] <= 18)
    text = runner.render_table(tiny)
    assert "circuit links: events/s, one core" in text and ">= 5 M events/s" in text
    assert "compare --profile paper, 4 Qwen requests, 5 strategies" in text
