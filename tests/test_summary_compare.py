"""`waferview summary` and `waferview compare`: fields, tables, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from simcases import random_trace
from waferview.cli.main import main
from waferview.errors import InputError
from waferview.models import get_model
from waferview.trace.cache import save_cache

SUMMARY_FIELDS = ("mesh", "batch", "batch_note", "placement", "predictor", "decode_time_ms", "prefill_time_ms",
                  "throughput_tokens_per_s", "hops", "remote_read_bytes", "local_read_bytes", "local_write_bytes",
                  "cache_hit_rate", "predictor_precision", "predictor_recall", "mean_die_utilization",
                  "die_max_over_mean", "fits_in_hbm")


@pytest.fixture(scope="module")
def qwen_cache(tmp_path_factory):
    trace = random_trace(np.random.default_rng(3), get_model("qwen3"), requests=4, max_prefill=3, max_decode=3)
    return str(save_cache(tmp_path_factory.mktemp("src") / "qwen3.wvtrace", trace))


@pytest.fixture(scope="module")
def kimi_cache(tmp_path_factory):
    trace = random_trace(np.random.default_rng(4), get_model("kimi"), requests=2, max_prefill=2, max_decode=1)
    return str(save_cache(tmp_path_factory.mktemp("src") / "kimi.wvtrace", trace))


def run_json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_summary_json_has_trace_facts_and_every_field(capsys, qwen_cache):
    s = run_json(capsys, ["summary", qwen_cache, "--json", "--placement", "base", "--predictor", "heatmap",
                          "--mesh", "3x3", "--batch", "6", "--seed", "2"])
    for key in SUMMARY_FIELDS + ("model", "requests", "moe_layers", "decode_tokens"):
        assert key in s, key
    assert (s["model"], s["mesh"], s["batch"], s["placement"], s["predictor"]) == ("qwen3", "3x3", 6, "base", "heatmap")
    assert s["batch_note"] == "batch 6 > 4 requests present: requests reused in a fixed seeded order (seed 2)"
    assert s["throughput_tokens_per_s"] == pytest.approx(s["batch_decode_tokens"] / (s["decode_time_ms"] / 1e3))
    assert s["remote_read_bytes"] == (s["weight_reads"] - round(s["cache_hit_rate"] * s["weight_reads"])) \
        * get_model("qwen3").expert_bytes
    assert s["fits_in_hbm"] is True and s["hbm_note"] is None
    assert 0 <= s["predictor_precision"] <= 1 and 0 <= s["predictor_recall"] <= 1
    # the same run again gives the same numbers
    assert run_json(capsys, ["summary", qwen_cache, "--json", "--placement", "base", "--predictor", "heatmap",
                             "--mesh", "3x3", "--batch", "6", "--seed", "2"]) == s


def test_summary_table(capsys, qwen_cache):
    assert main(["summary", qwen_cache, "--placement", "ep", "--predictor", "off"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"waferview summary: {qwen_cache}")
    assert "  placement" in out and "ep" in out and "predictor_precision      -" in out
    assert "WARNING" not in out


def test_every_summary_field_is_defined(capsys, qwen_cache):
    from waferview.report.summary import FIELD_DOCS

    fields = run_json(capsys, ["summary", qwen_cache, "--json", "--mesh", "2x2"])
    assert list(fields) == [*FIELD_DOCS, "provenance"]     # same keys, same order as --help lists them


def test_summary_help_defines_the_fields(capsys):
    with pytest.raises(SystemExit):
        main(["summary", "--help"])
    out = capsys.readouterr().out
    assert "cache_hit_rate" in out and "weight reads served by the reading die's own HBM" in out
    assert "--mesh" in out and "not modelled" in out


def test_compare_default_is_the_paper_five(capsys, qwen_cache):
    rows = run_json(capsys, ["compare", qwen_cache, "--json", "--mesh", "3x3"])["rows"]
    assert [r["strategy"] for r in rows] == ["Base", "EP", "Pred Only", "Allo Only", "Allo+Pred"]
    assert [(r["placement"], r["predictor"]) for r in rows] == [
        ("base", "off"), ("ep", "off"), ("base", "heatmap"), ("allo", "off"), ("allo", "heatmap")]
    base, ep = rows[0], rows[1]
    assert base["speedup_vs_base"] == 1.0 and base["hop_reduction_vs_base"] == 1.0
    assert ep["hops"] == 0 and ep["remote_read_bytes"] == 0 and ep["hop_reduction_vs_base"] is None
    for r in rows:
        assert r["speedup_vs_base"] == pytest.approx(r["throughput_tokens_per_s"] / base["throughput_tokens_per_s"])
        assert r["batch"] == base["batch"] and r["token_selections"] == base["token_selections"]
        for key in SUMMARY_FIELDS:
            assert key in r
    # each row equals the matching summary run
    s = run_json(capsys, ["summary", qwen_cache, "--json", "--mesh", "3x3", "--placement", "allo",
                          "--predictor", "heatmap"])
    del s["provenance"]
    assert {k: rows[4][k] for k in s} == s


def test_compare_table_and_modes(capsys, qwen_cache):
    assert main(["compare", qwen_cache, "--mesh", "3x3", "--modes", "ep/lru, allo/oracle,base/off"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"waferview compare: {qwen_cache}  model qwen3  mesh 3x3")
    assert lines[1].split()[:3] == ["strategy", "modes", "tokens/s"]
    assert lines[2].split()[:2] == ["ep/lru", "ep/lru"] and "no hops" in lines[2]
    assert lines[3].split()[:2] == ["allo/oracle", "allo/oracle"]
    assert lines[4].split()[:3] == ["Base", "base/off", lines[4].split()[2]] and "1.00x" in lines[4]
    assert "'no hops' where a run moved no weights" in out


def test_a_model_that_does_not_fit_warns_in_every_output(capsys, kimi_cache):
    assert main(["summary", kimi_cache, "--mesh", "8x3", "--batch", "2", "--placement", "base"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: kimi expert weights (2.03 TB at 2 bytes/param) do not fit the usable HBM of 8x3" in out
    assert "fits_in_hbm              no" in out
    assert main(["compare", kimi_cache, "--mesh", "5x5", "--modes", "base/off"]) == 0
    assert "WARNING: kimi expert weights" in capsys.readouterr().out
    s = run_json(capsys, ["summary", kimi_cache, "--json", "--placement", "ep", "--predictor", "off"])
    assert s["fits_in_hbm"] is False and "do not fit" in s["hbm_note"]
    # the same trace at 1 byte per parameter (FP8) fits, and says which precision it ran at
    s = run_json(capsys, ["summary", kimi_cache, "--json", "--mesh", "8x3", "--bytes-per-param", "1"])
    assert s["fits_in_hbm"] is True and s["hbm_note"] is None and s["bytes_per_param"] == 1.0
    assert s["copy_slots_per_die"] == 674 and s["eviction"] == "admit"


@pytest.mark.parametrize("argv, message", [
    (["summary", "{src}", "--placement", "nope"],
     "waferview summary: unknown placement mode 'nope': expected one of base, ep, allo"),
    (["summary", "{src}", "--predictor", "magic"],
     "waferview summary: unknown predictor mode 'magic': expected one of off, heatmap, oracle, lru"),
    (["summary", "{src}", "--mesh", "0x3"],
     "waferview summary: --mesh 0x3: width and height must be at least 1 (e.g. 5x5, 8x3)"),
    (["compare", "{src}", "--modes", "allo-heatmap"],
     "waferview compare: --modes 'allo-heatmap': expected placement/predictor, e.g. allo/heatmap"),
    (["compare", "{src}", "--modes", "allo/psychic"],
     "waferview compare: --modes 'allo/psychic': unknown predictor mode 'psychic': expected one of off, heatmap, "
     "oracle, lru"),
    (["summary", "{src}", "--mesh", "{hw}"],
     "waferview summary: {hw}: link_bytes_per_ns must be a positive number, got -1741"),
])
def test_bad_options_are_one_line_and_exit_2(capsys, qwen_cache, tmp_path, argv, message):
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps({"link_bytes_per_ns": -1741}))
    argv = [a.format(src=qwen_cache, hw=hw) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == message.format(hw=hw) + "\n"


@pytest.mark.parametrize("argv, message", [
    (["--batch", "0"], "argument --batch: 0: out of range; expected a number of requests from 1 to 1,048,576 (64x"),
    (["--block-size", "0"],
     "argument --block-size: 0: out of range; expected a number of tokens from 1 to 2,147,483,647"),
    (["--bytes-per-param", "0"], "argument --bytes-per-param: '0': expected bytes per weight, a number in (0, 8]"),
    (["--seed", "-1"], "argument --seed: -1: out of range; expected a seed from 0 to 9,223,372,036,854,775,807"),
])
def test_out_of_range_numbers_are_usage_errors(capsys, qwen_cache, argv, message):
    with pytest.raises(SystemExit) as e:
        main(["summary", qwen_cache, *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("waferview summary: error: " + message)
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["summary", "--mesh", "0x3"], ["compare", "--batch", "0"],
                                  ["summary", "--placement", "fast"]])
def test_bad_options_in_a_real_process(qwen_cache, args):
    proc = subprocess.run([sys.executable, "-m", "waferview", args[0], qwen_cache, *args[1:]],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_negative_seed_from_the_api_is_one_line():
    from waferview.sim.batch import select_batch
    from waferview.trace.source import load_source

    with pytest.raises(InputError, match=r"^--seed -1: expected an integer from 0 to 9,223,372,036,854,775,807$"):
        select_batch(load_source(None), None, -1)
