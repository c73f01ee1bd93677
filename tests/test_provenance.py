"""Provenance in every JSON output: the version, the commit, the hardware and model as used, the label,
the command line; and the git commit read from .git without a subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import waferview
import waferview.report.provenance as prov
from waferview.cli.main import main
from waferview.models import get_model
from waferview.report.summary import summary_fields
from waferview.synth.generate import generate_to_cache
from waferview.trace.source import load_source
from waferview.wafer.hardware import load_hardware

SHA1 = "1" * 40
SHA2 = "2" * 40


@pytest.fixture(scope="module")
def qwen_cache(tmp_path_factory):
    from dataclasses import replace

    from waferview.synth.generate import default_params

    m = get_model("qwen3")
    path = tmp_path_factory.mktemp("prov") / "q.wvtrace"
    generate_to_cache(m, 4, 3, path, params=replace(default_params(m), max_decode=3, prefill_median=4.0))
    return str(path)


def run_json(capsys, argv):
    assert main(argv) == 0
    return orjson.loads(capsys.readouterr().out)


def test_summary_provenance_is_the_hardware_and_model_used(tmp_path, capsys, qwen_cache):
    hw_file = tmp_path / "my-wafer.json"
    hw_file.write_text(json.dumps({"width": 3, "height": 2, "hbm_gb": 64.0, "link_bytes_per_ns": 900.0,
                                   "link_efficiency": 0.8, "hbm_reserved_fraction": 0.2}))
    argv = ["summary", qwen_cache, "--mesh", str(hw_file), "--json", "--placement", "ep", "--predictor", "lru",
            "--seed", "5", "--eviction", "never"]
    out = run_json(capsys, argv)
    p = out["provenance"]
    assert p["waferview_version"] == waferview.__version__
    assert p["command_line"] == ["waferview", *argv]
    assert p["synthetic"] is True
    assert p["model"] == get_model("qwen3").to_dict()
    hw = p["hardware"]
    assert (hw["mesh"], hw["dies"], hw["name"]) == ("3x2", 6, "my-wafer")
    assert (hw["hbm_gb"], hw["link_bytes_per_ns"], hw["link_efficiency"], hw["hbm_reserved_fraction"]) == \
        (64.0, 900.0, 0.8, 0.2)
    assert hw["usable_hbm_bytes"] == 51_200_000_000
    assert hw["hbm_efficiency"] == {"default": 0.9, "llama4": 0.85}
    assert hw == prov.hardware_dict(load_hardware(str(hw_file)))
    assert p["run_options"] == {"mesh": str(hw_file), "batch": None, "seed": 5, "placement": "ep", "predictor": "lru",
                                "block_size": 50, "max_split": 5, "top_n": None, "eviction": "never",
                                "copy_slots": None, "bytes_per_param": 2.0, "profile": "waferview",
                                "links": "fluid", "route_order": "xy", "base_order": "seeded",
                                "allo_planner": "waferview", "read_from": "nearest", "heatmap_rule": "waferview",
                                "batch_order": "seeded", "prefill_rule": "position", "copy_region": None,
                                "max_steps": None, "circuit_off": []}


def test_summary_keeps_its_fields_and_adds_provenance_last(capsys, qwen_cache):
    from waferview.sim.engine import Engine

    out = run_json(capsys, ["summary", qwen_cache, "--json", "--mesh", "8x3"])
    trace = load_source(qwen_cache)
    fields = summary_fields(trace, Engine(trace, load_hardware("8x3")).run())
    assert list(out) == [*fields, "provenance"]
    assert orjson.dumps({k: out[k] for k in fields}) == orjson.dumps(fields)


def test_compare_and_insights_carry_provenance(capsys, qwen_cache):
    out = run_json(capsys, ["compare", qwen_cache, "--json", "--mesh", "5x5", "--modes", "ep/off,allo/heatmap"])
    p = out["provenance"]
    assert p["hardware"] == prov.hardware_dict(load_hardware("5x5"))
    assert p["run_options"]["strategies"] == ["ep/off", "allo/heatmap"]          # as asked (Base runs too)
    assert p["synthetic"] is True and p["model"]["key"] == "qwen3"
    out = run_json(capsys, ["insights", qwen_cache, "--json"])
    p = out["provenance"]
    assert p["hardware"] is None and p["run_options"] == {} and p["model"]["num_experts"] == 128
    assert p["command_line"] == ["waferview", "insights", qwen_cache, "--json"]


def test_a_real_source_is_not_synthetic_in_provenance(tmp_path, capsys):
    from waferview.synth.generate import generate
    from waferview.synth.json_dataset import write_dataset

    m = get_model("llama4")
    write_dataset(generate(m, 2, 0), tmp_path)      # library call: no manifest, like real files
    out = run_json(capsys, ["summary", str(tmp_path), "--json", "--mesh", "2x2"])
    assert out["synthetic"] is False and out["provenance"]["synthetic"] is False


def test_provenance_is_a_light_core_module():
    code = "import waferview.report.provenance as p; p.provenance(); import sys; print(' '.join(sys.modules))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert not {"numba", "textual", "numpy"} & loaded


# ---- the git commit ---------------------------------------------------------------------------------

def _repo(tmp_path) -> Path:
    root = tmp_path / "checkout"
    (root / ".git" / "refs" / "heads").mkdir(parents=True)
    return root


@pytest.mark.parametrize("layout", ["loose", "packed", "detached", "worktree", "garbage", "missing ref"])
def test_git_commit_from_the_checkout(tmp_path, monkeypatch, layout):
    root = _repo(tmp_path)
    git = root / ".git"
    expected = SHA1
    if layout == "loose":
        (git / "HEAD").write_text("ref: refs/heads/main\n")
        (git / "refs" / "heads" / "main").write_text(SHA1 + "\n")
    elif layout == "packed":
        (git / "HEAD").write_text("ref: refs/heads/main\n")
        (git / "packed-refs").write_text(f"# pack-refs with: peeled fully-peeled sorted\n{SHA2} refs/heads/other\n"
                                         f"{SHA1} refs/heads/main\n")
    elif layout == "detached":
        (git / "HEAD").write_text(SHA1 + "\n")
    elif layout == "worktree":
        # the main repository holds the branch; the worktree's .git is a file pointing at its own gitdir
        shutil.rmtree(git)
        main_git = tmp_path / "main" / ".git"
        wt_dir = main_git / "worktrees" / "wt"
        wt_dir.mkdir(parents=True)
        (main_git / "refs" / "heads").mkdir(parents=True)
        (main_git / "refs" / "heads" / "feature").write_text(SHA2 + "\n")
        (wt_dir / "HEAD").write_text("ref: refs/heads/feature\n")
        (wt_dir / "commondir").write_text("../..\n")
        root.mkdir(exist_ok=True)
        (root / ".git").write_text(f"gitdir: {wt_dir}\n")
        expected = SHA2
    elif layout == "garbage":
        (git / "HEAD").write_bytes(b"\xff\xfe not a ref")
        expected = None
    else:
        (git / "HEAD").write_text("ref: refs/heads/gone\n")
        expected = None
    monkeypatch.setattr(prov, "_checkout_root", lambda: root)
    assert prov.git_commit() == expected


def test_no_checkout_no_commit(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "waferview"
    package.mkdir(parents=True)
    monkeypatch.setattr(waferview, "__file__", str(package / "__init__.py"))
    assert prov._checkout_root() is None and prov.git_commit() is None


def test_git_commit_of_this_checkout_matches_git():
    if prov._checkout_root() is None or shutil.which("git") is None:
        pytest.skip("not running from a git checkout")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=prov._checkout_root(), capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("git cannot read this checkout")
    assert prov.git_commit() == head.stdout.strip()
