"""synth --out: the manifest and the synthetic label everywhere, refusals, folder modes, path checks,
cleanup after an interrupt or a failure, and the up-front refusal of runs that cannot fit."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

import waferview.synth.json_dataset as json_dataset
from waferview.cli.main import main
from waferview.models import get_model
from waferview.synth.budget import estimate
from waferview.synth.generate import default_params, generate
from waferview.synth.json_dataset import render_request, write_dataset
from waferview.trace.manifest import MANIFEST_NAME, holds_synthetic, synthetic_root
from waferview.trace.source import load_source

LLAMA = get_model("llama4")
SMALL = ["--model", "llama4", "--requests", "3", "--max-decode", "3", "--seed", "4"]


def tree(root: Path) -> list[str]:
    """Every path under root (hidden ones too), relative, sorted."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def synth(out, *extra) -> int:
    return main(["synth", *SMALL, "--out", str(out), *extra])


@pytest.fixture
def synthetic_ds(tmp_path):
    out = tmp_path / "ds"
    assert synth(out) == 0
    return out


# ---- the manifest and the label ---------------------------------------------------------------

def test_manifest_describes_the_run(synthetic_ds):
    manifest = orjson.loads((synthetic_ds / MANIFEST_NAME).read_bytes())
    assert manifest["generator"] == "waferview synth"
    assert manifest["model"] == "llama4" and manifest["model_spec"]["num_experts"] == 128
    assert manifest["requests"] == 3 and manifest["seed"] == 4
    assert manifest["parameters"]["max_decode"] == 3
    assert manifest["parameters"]["hot_share"] == default_params(LLAMA).hot_share
    assert manifest["folder"] == "meta-llama/Llama-4-Maverick-17B-128E-Instruct/synthetic/synthetic"
    assert manifest["waferview_version"]
    # the hidden manifest is never read as a trace file
    assert load_source(str(synthetic_ds)).requests == 3


@pytest.mark.parametrize("where", ["root", "subject folder", "one file"])
def test_summary_json_labels_synthetic_at_or_under_the_root(synthetic_ds, where, capsys):
    subject = synthetic_ds / LLAMA.org / LLAMA.name / "synthetic" / "synthetic"
    source = {"root": synthetic_ds, "subject folder": subject, "one file": sorted(subject.iterdir())[0]}[where]
    assert main(["summary", str(source), "--json", "--mesh", "2x2"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["synthetic"] is True and out["source"] == f"{source} (synthetic)"
    assert out["provenance"]["synthetic"] is True


def test_label_survives_the_cache_and_shows_in_the_table(synthetic_ds, capsys):
    for _ in range(2):                   # the second run reads the trace cache
        assert main(["summary", str(synthetic_ds), "--mesh", "2x2"]) == 0
        table = capsys.readouterr().out
        assert table.splitlines()[0] == f"waferview summary: {synthetic_ds} (synthetic)"
        rows = [line.split() for line in table.splitlines() if line.split()[:1] == ["synthetic"]]
        assert rows == [["synthetic", "yes"]]


def test_compare_and_insights_label_synthetic(synthetic_ds, capsys):
    assert main(["compare", str(synthetic_ds), "--json", "--mesh", "2x2", "--modes", "base/off,ep/off"]) == 0
    rows = orjson.loads(capsys.readouterr().out)["rows"]
    assert [r["synthetic"] for r in rows] == [True, True]
    assert {r["source"] for r in rows} == {f"{synthetic_ds} (synthetic)"}
    assert main(["compare", str(synthetic_ds), "--mesh", "2x2", "--modes", "ep/off"]) == 0
    assert capsys.readouterr().out.startswith(f"waferview compare: {synthetic_ds} (synthetic)  model llama4")
    assert main(["insights", str(synthetic_ds), "--json"]) == 0
    result = orjson.loads(capsys.readouterr().out)
    assert result["synthetic"] is True and result["source"] == f"{synthetic_ds} (synthetic)"
    assert main(["insights", str(synthetic_ds), "--no-layers"]) == 0
    assert capsys.readouterr().out.startswith(f"waferview insights: {synthetic_ds} (synthetic)\n")


def test_live_view_header_says_synthetic(synthetic_ds):
    from waferview.tui.app import make_app
    from waferview.wafer.hardware import load_hardware

    trace = load_source(str(synthetic_ds))
    app = make_app(trace, load_hardware("2x2"), paused=True, autostart=False)
    assert app.facts_line.endswith(" · ds (synthetic)")


def test_a_folder_holding_a_synthetic_dataset_is_synthetic(tmp_path):
    # real-looking files (no manifest) beside a synthetic dataset: the mix is reported synthetic
    real = tmp_path / "mix" / "real"
    write_dataset(generate(LLAMA, 2, seed=1, params=default_params(LLAMA)), real)
    assert load_source(str(real)).synthetic is False          # without a manifest: not labelled
    assert synth(tmp_path / "mix" / "fake") == 0
    mixed = load_source(str(tmp_path / "mix"))
    assert mixed.requests == 5 and mixed.synthetic and mixed.source.endswith("(synthetic)")
    assert synthetic_root(tmp_path / "mix" / "fake" / "meta-llama") == tmp_path / "mix" / "fake"
    assert synthetic_root(tmp_path / "mix") is None and holds_synthetic(real, []) is False


# ---- refusing to mix, --force ------------------------------------------------------------------

def test_out_holding_json_is_refused_and_left_alone(tmp_path, capsys):
    out = tmp_path / "real"
    (out / "a").mkdir(parents=True)
    (out / "a" / "7.json").write_text("[]")
    before = tree(out)
    assert synth(out) == 2
    err = capsys.readouterr().err
    assert err == (f"waferview synth: --out {out} already holds trace files ({out}/a/7.json); writing there would "
                   "mix two datasets: choose a new or empty folder, or pass --force\n")
    assert tree(out) == before


def test_force_adds_and_keeps_the_earlier_run_in_the_manifest(synthetic_ds, capsys):
    assert synth(synthetic_ds) == 2
    assert "already holds trace files" in capsys.readouterr().err
    assert main(["synth", "--model", "qwen3", "--requests", "2", "--max-decode", "2", "--seed", "9",
                 "--out", str(synthetic_ds), "--force"]) == 0
    manifest = orjson.loads((synthetic_ds / MANIFEST_NAME).read_bytes())
    assert (manifest["model"], manifest["seed"]) == ("qwen3", 9)
    assert [(r["model"], r["seed"]) for r in manifest["earlier_runs"]] == [("llama4", 4)]
    assert len(list(synthetic_ds.glob("*/*/synthetic/synthetic/*.json"))) == 5


# ---- folder names, modes, symlinks --------------------------------------------------------------

@pytest.mark.parametrize("option, value, message", [
    ("--benchmark", "../../../../escaped",
     "--benchmark '../../../../escaped': expected plain folder names ('..' would leave the dataset layout)"),
    ("--benchmark", "a/../../b", "--benchmark 'a/../../b': expected plain folder names ('..' would leave"),
    ("--subject", "/etc", "--subject '/etc': expected a plain relative folder name"),
    ("--subject", ".hidden", "--subject '.hidden': a folder name may not start with '.'"),
    ("--subject", "a\\b", "--subject 'a\\\\b': expected a plain relative folder name"),
    ("--benchmark", "", "--benchmark '': expected a folder name"),
    ("--benchmark", "x//y", "--benchmark 'x//y': expected plain folder names (an empty name"),
])
def test_folder_names_are_validated_before_anything_is_written(tmp_path, capsys, option, value, message):
    assert synth(tmp_path / "out", option, value) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"waferview synth: {message}") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []                    # not even --out was made


def test_nested_benchmark_name_like_the_dataset(tmp_path):
    assert synth(tmp_path / "out", "--benchmark", "HuggingFaceH4/aime_2024", "--subject", "中华文化") == 0
    subject = tmp_path / "out" / LLAMA.org / LLAMA.name / "HuggingFaceH4" / "aime_2024" / "中华文化"
    assert len(list(subject.glob("*.json"))) == 3


def test_a_symlink_out_of_the_dataset_is_refused(tmp_path, capsys):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / LLAMA.org).symlink_to(elsewhere)
    assert synth(out) == 2
    assert "leads outside --out" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == [] and tree(out) == [LLAMA.org]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o002, 0o775)])
def test_folders_get_the_ordinary_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert synth(tmp_path / "out") == 0
    finally:
        os.umask(old)
    folders = [p for p in (tmp_path / "out").rglob("*") if p.is_dir()]
    assert len(folders) == 4 and {p.stat().st_mode & 0o777 for p in folders} == {mode}
    assert (tmp_path / "out").stat().st_mode & 0o777 == mode


# ---- taking back what was written ----------------------------------------------------------------

def _fail_on_third_file(monkeypatch, error):
    calls = []
    real = json_dataset.render_request

    def render(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(json_dataset, "render_request", render)
    return calls


def _prepared_out(tmp_path) -> Path:
    """--out exists already with a note and a part of the dataset path: those must survive."""
    out = tmp_path / "out"
    (out / LLAMA.org).mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    return out


def test_ctrl_c_removes_what_synth_made_and_only_that(tmp_path, monkeypatch, capsys):
    out = _prepared_out(tmp_path)
    calls = _fail_on_third_file(monkeypatch, KeyboardInterrupt())
    assert main(["synth", "--model", "llama4", "--requests", "5", "--max-decode", "2", "--out", str(out)]) == 130
    assert len(calls) == 3
    assert capsys.readouterr().err == "waferview synth: interrupted; removed what it had written\n"
    assert tree(out) == [LLAMA.org, "notes.txt"]


def test_a_full_disk_removes_what_synth_made(tmp_path, monkeypatch, capsys):
    _fail_on_third_file(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    assert synth(tmp_path / "new" / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("waferview synth: ") and err.endswith("cannot write trace files (No space left on device)\n")
    assert list(tmp_path.iterdir()) == []                # the folders it made are gone too


def test_interrupted_cache_write_removes_its_folders(tmp_path, monkeypatch, capsys):
    import waferview.trace.cache as cache

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "save_cache", interrupted)
    assert main(["synth", *SMALL, "--cache", str(tmp_path / "a" / "b" / "x.wvtrace")]) == 130
    assert list(tmp_path.iterdir()) == []


def test_sigterm_removes_what_synth_made(tmp_path):
    out = _prepared_out(tmp_path)
    flag = tmp_path / "writing"
    code = textwrap.dedent(f"""
        import sys, time
        import waferview.synth.json_dataset as j
        real, calls = j.render_request, []
        def render(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                open({str(flag)!r}, "w").close()
                time.sleep(120)
            return real(*args, **kwargs)
        j.render_request = render
        from waferview.cli.main import main
        sys.exit(main(["synth", "--model", "llama4", "--requests", "5", "--max-decode", "2", "--out", {str(out)!r}]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):            # until the third file is being written (bounded wait, not a timing)
            if flag.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert flag.exists(), proc.stderr.read() if proc.poll() is not None else "synth never started writing"
        assert any(p.name.endswith(".tmp") for p in (out / LLAMA.org / LLAMA.name / "synthetic").iterdir())
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert err == "waferview synth: terminated; removed what it had written\n"
    assert tree(out) == [LLAMA.org, "notes.txt"]


# ---- runs that cannot fit, and how many requests ------------------------------------------------

def test_ten_to_the_eleven_requests_is_refused_up_front(tmp_path, capsys):
    for target in (["--out", str(tmp_path / "out")], ["--cache", str(tmp_path / "c" / "x.wvtrace")]):
        assert main(["synth", "--model", "qwen3", "--requests", "10^11", *target]) == 2
        err = capsys.readouterr().err
        assert err.startswith("waferview synth: --requests 100,000,000,000: qwen3 would need about ")
        assert " of memory (" in err and " of disk for the " in err and err.endswith("; ask for fewer requests\n")
        assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_run_bigger_than_the_free_disk_is_refused(tmp_path, monkeypatch, capsys):
    import waferview.synth.budget as budget

    monkeypatch.setattr(budget, "free_disk", lambda path: (10_000, tmp_path))
    assert synth(tmp_path / "out") == 2
    err = capsys.readouterr().err
    need = budget.human_bytes(estimate(LLAMA, 3, replace(default_params(LLAMA), max_decode=3)).json_bytes)
    assert f"and {need} of disk for the JSON files (10.0 kB free in {tmp_path})" in err


@pytest.mark.parametrize("model", ["qwen3", "llama4"])
def test_the_estimate_matches_what_is_written(model):
    m = get_model(model)
    params = default_params(m)
    trace = generate(m, 300, seed=2, params=params)
    need = estimate(m, 300, params)
    json_bytes = sum(len(render_request(trace, r)) for r in range(trace.requests))
    id_bytes = trace.prefill_ids.nbytes + trace.decode_ids.nbytes
    assert abs(need.json_bytes / json_bytes - 1) < 0.10
    assert abs(need.id_bytes / id_bytes - 1) < 0.10


@pytest.mark.parametrize("text, value", [("1000", 1000), ("1_000", 1000), ("1e3", 1000), ("10^3", 1000),
                                         ("10**3", 1000), ("2E2", 200)])
def test_request_counts_in_the_usual_notations(text, value):
    from waferview.cli.cmd_synth import _count

    assert _count(text) == value


@pytest.mark.parametrize("argv, message", [
    (["--requests", "1.5e3"],
     "argument --requests: '1.5e3': expected a whole number of requests (e.g. 1000, 1e5, 10^6)"),
    (["--requests", "ten"], "argument --requests: 'ten': expected a whole number of requests (e.g. 1000, 1e5, 10^6)"),
    (["--seed", "-1"], "argument --seed: -1: expected a whole number from 0 to 2^63-1"),
    (["--seed", str(10**20)], f"argument --seed: {10**20}: expected a whole number from 0 to 2^63-1"),
])
def test_bad_numbers_are_usage_errors(argv, message, capsys):
    base = {"--requests": "3", "--seed": "0"}
    base.update(dict(zip(argv[::2], argv[1::2])))
    with pytest.raises(SystemExit) as e:
        main(["synth", "--model", "llama4", "--cache", "x.wvtrace", *[x for kv in base.items() for x in kv]])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == f"waferview synth: error: {message}\n"


def test_cache_over_a_file_that_is_not_a_cache_is_refused(tmp_path, capsys):
    precious = tmp_path / "notes.wvtrace"
    precious.write_text("not a cache")
    assert main(["synth", *SMALL, "--cache", str(precious)]) == 2
    assert ("exists and is not a waferview cache; refusing to overwrite it (--force replaces it)"
            in capsys.readouterr().err)
    assert precious.read_text() == "not a cache"
    assert main(["synth", *SMALL, "--cache", str(precious), "--force"]) == 0
    assert load_source(str(precious)).synthetic


def test_leftovers_of_a_killed_run_are_removed_by_the_next(tmp_path):
    benchmark = tmp_path / "out" / LLAMA.org / LLAMA.name / "synthetic"
    benchmark.mkdir(parents=True)
    stale, fresh = benchmark / ".synthetic.0123456789ab.tmp", benchmark / ".synthetic.ba9876543210.tmp"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "3.json").write_text("[]")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    (benchmark / ".synthetic.notours.tmp").mkdir()
    assert synth(tmp_path / "out") == 0
    assert sorted(p.name for p in benchmark.iterdir()) == [".synthetic.ba9876543210.tmp", ".synthetic.notours.tmp",
                                                           "synthetic"]
