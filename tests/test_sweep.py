"""waferview sweep: grids checked before any work, rows equal to `summary --json`, the pool equal to an
in-process run, resuming after a kill, failed rows, whole rows in CSV/JSONL, grid files."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from waferview.cli.main import build_parser, main
from waferview.sweep import grid
from waferview.sweep.plan import SweepSpec, make_plan

TINY = ["--models", "llama4", "--batches", "6", "--meshes", "2x2,3x1"]   # the shipped llama4 trace, small runs


def _have(module: str) -> bool:
    """Installed? (without importing it: Ray changes the process that imports and starts it)"""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _sweep(capsys, *argv):
    code = main(["sweep", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _json_rows(capsys, *argv):
    code, out, err = _sweep(capsys, *argv, "--json")
    assert code == 0, err
    return orjson.loads(out)


# ---- the grid, checked before any work -----------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--top-n", "x"], "argument --top-n: 'x'"),
    (["--eviction", "admit,sometimes"], "argument --eviction: invalid choice: 'sometimes'"),
    (["--set", "nonsense=1"], "unknown axis 'nonsense'"),
    (["--set", "no-cache=true,false"], "'no-cache' is how a trace is read, not an axis: give it once"),
    (["--set", "top_n"], "--set 'top_n': expected NAME=V1,V2"),
    (["--strategies", "Fast"], "--strategies 'Fast': expected one of Base, EP, Pred Only, Allo Only, Allo+Pred"),
    (["--strategies", "allo/psychic"], "unknown predictor mode 'psychic'"),
    (["--meshes", "0x3"], "0x3"),
    (["--models", "gpt"], "gpt"),
    (["--placement", "teleport"], "--placement 'teleport': unknown placement mode"),
    (["--strategies", "Base", "--placement", "ep"], "give --strategies or --placement/--predictor axes, not both"),
    (["--block-size", "0"], "argument --block-size: 0: out of range"),
    (["--plot", "fig.gif"], "--plot fig.gif: expected a .png, .svg or .pdf file name"),
    (["--workers", "-1"], "--workers -1: expected 0 (in this process) or more"),
    (["--ray", "127.0.0.1:1"], "--ray 127.0.0.1:1: cannot reach a Ray cluster there"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_work(capsys, argv, message):
    from waferview.sweep.traces import sweep_dir

    code, out, err = _sweep(capsys, *TINY, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not sweep_dir().exists(), "nothing may be read, generated or cached before the grid is checked"


def test_profiles_and_link_models_are_axes_checked_by_summarys_own_choices(capsys):
    code, _, err = _sweep(capsys, *TINY, "--profiles", "study")
    assert code == 2 and "argument --profile: invalid choice: 'study'" in err
    code, _, err = _sweep(capsys, *TINY, "--links", "fluid,packet")
    assert code == 2 and "packet" in err and len(err.strip().splitlines()) == 1


def test_more_than_100000_configurations_need_yes(capsys):
    seeds = ",".join(str(i) for i in range(1000))
    code, _, err = _sweep(capsys, *TINY, "--set", f"seed={seeds}", "--top-n", ",".join(str(i) for i in range(1, 52)))
    assert code == 2
    assert "the grid has 102,000 configurations (more than 100,000): add --yes to run them all" in err


def test_a_configuration_is_the_namespace_summary_builds():
    config = {"source": "x.wvtrace", "model": "qwen3", "mesh": "8x3", "batch": "4096", "top_n": "13",
              "placement": "ep", "predictor": "lru", "eviction": "never", "strict": "true"}
    ours = vars(grid.namespace(config))
    theirs = vars(build_parser().parse_args(["summary", "x.wvtrace", "--model", "qwen3", "--mesh", "8x3", "--batch",
                                             "4096", "--top-n", "13", "--placement", "ep", "--predictor", "lru",
                                             "--eviction", "never", "--strict"]))
    theirs = {k: v for k, v in theirs.items() if k not in ("command", "_module")}
    assert ours == theirs
    assert grid.namespace({"batch": None}).batch is None   # "default" leaves summary's default


def test_the_paper_grid():
    plan = make_plan(SweepSpec(paper=True, synth=True))
    assert len(plan.configs) == 4 * 2 * 3 * 5
    cells = {(c.trace, c.ns.mesh, c.ns.batch, c.columns["strategy"]) for c in plan.configs}
    assert len(cells) == 120
    assert {c.columns["strategy"] for c in plan.configs} == {"Base", "EP", "Pred Only", "Allo Only", "Allo+Pred"}
    assert {c.ns.mesh for c in plan.configs} == {"5x5", "8x3"}
    assert {c.ns.batch for c in plan.configs} == {4096, 8192, 16384}
    assert [c.ns.model for c in plan.configs[::30]] == ["deepseek", "kimi", "llama4", "qwen3"]


def test_grid_file_equals_the_command_line(tmp_path, capsys):
    f = tmp_path / "grid.toml"
    f.write_text('models = ["llama4"]\nbatches = [6]\nmeshes = ["2x2", "3x1"]\nstrategies = ["Base", "Allo+Pred"]\n'
                 'strict = true\n[set]\ntop-n = [3, 5]\n')
    from_file = _json_rows(capsys, str(f), "--workers", "0")
    from_cli = _json_rows(capsys, *TINY, "--strategies", "Base,Allo+Pred", "--top-n", "3,5", "--workers", "0",
                          "--strict")
    assert from_file["rows"] == from_cli["rows"]
    assert len(from_file["rows"]) == 2 * 2 * 2
    assert from_cli["sweep"]["cached"] == 8 and from_cli["sweep"]["computed"] == 0   # the second run read the cache
    f.write_text('meshes = ["2x2"]\nwarp = [9]\n')
    code, _, err = _sweep(capsys, str(f))
    assert code == 2 and err.startswith(f"waferview sweep: {f}: unknown axis 'warp'")


# ---- rows ----------------------------------------------------------------------------------------

def test_rows_hold_the_axes_and_exactly_summary_json(capsys):
    out = _json_rows(capsys, *TINY, "--strategies", "Base,Pred Only", "--workers", "0")
    rows = out["rows"]
    assert [(r["sweep_mesh"], r["strategy"]) for r in rows] == [("2x2", "Base"), ("2x2", "Pred Only"),
                                                                ("3x1", "Base"), ("3x1", "Pred Only")]
    for r in rows:
        assert main(["summary", "--model", "llama4", "--batch", "6", "--mesh", r["sweep_mesh"], "--placement",
                     r["placement"], "--predictor", r["predictor"], "--json"]) == 0
        summary = orjson.loads(capsys.readouterr().out)
        summary.pop("provenance")   # what produced the output: the sweep's is in its own JSON, once
        assert {k: r[k] for k in summary} == summary
        assert r["status"] == "ok" and r["error"] is None and r["sweep_model"] == "llama4" and r["sweep_batch"] == 6
    for base, pred in (rows[0:2], rows[2:4]):
        assert base["speedup_vs_base"] == 1.0
        assert pred["speedup_vs_base"] == pred["throughput_tokens_per_s"] / base["throughput_tokens_per_s"]
        assert pred["hop_reduction_vs_base"] == base["hops"] / pred["hops"]
        assert pred["ceiling_tokens_per_s"] >= pred["throughput_tokens_per_s"]
    assert out["sweep"]["axes"]["strategy"] == ["Base", "Pred Only"]
    assert out["provenance"]["run_options"] == {"sweep_batch": [6], "sweep_mesh": ["2x2", "3x1"],
                                                "strategy": ["Base", "Pred Only"]}
    assert out["provenance"]["model"]["key"] == "llama4" and out["provenance"]["synthetic"] is True
    from waferview.sweep.traces import sweep_dir

    assert not (sweep_dir() / "traces").exists(), "a .wvtrace is mapped where it is, not copied for the workers"


def test_the_pool_gives_the_rows_of_an_in_process_run(capsys, tmp_path):
    argv = [*TINY, "--models", "llama4,deepseek", "--strategies", "paper", "--batches", "5,6"]
    inline = _json_rows(capsys, *argv, "--workers", "0")
    pooled = _json_rows(capsys, *argv, "--workers", "2", "--fresh", "--csv", str(tmp_path / "rows.csv"),
                        "--jsonl", str(tmp_path / "rows.jsonl"))
    assert pooled["sweep"]["computed"] == 40 and pooled["sweep"]["workers"] == 2
    assert pooled["rows"] == inline["rows"]
    lines = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert sorted((orjson.loads(x) for x in lines), key=lambda r: r["config"]) == inline["rows"]
    with open(tmp_path / "rows.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 40 and list(table[0]) == inline["sweep"]["columns"]
    by_config = {int(r["config"]): r for r in table}
    for r in inline["rows"]:
        assert float(by_config[r["config"]]["throughput_tokens_per_s"]) == r["throughput_tokens_per_s"]


def test_a_failed_configuration_is_a_row_and_the_sweep_goes_on(capsys, monkeypatch):
    from waferview.sweep import runner

    real = runner.simulate_config

    def flaky(trace, ns, workload=None):
        if ns.mesh == "3x1" and ns.predictor == "heatmap":
            raise RuntimeError("the wafer caught fire\nsecond line never shown")
        return real(trace, ns, workload)

    monkeypatch.setattr(runner, "simulate_config", flaky)
    code, out, err = _sweep(capsys, *TINY, "--strategies", "Base,Allo+Pred", "--workers", "0", "--json")
    assert code == 1
    rows = orjson.loads(out)["rows"]
    failed = [r for r in rows if r["status"] == "failed"]
    assert [(r["sweep_mesh"], r["strategy"]) for r in failed] == [("3x1", "Allo+Pred")]
    assert failed[0]["error"] == "RuntimeError: the wafer caught fire" and failed[0]["throughput_tokens_per_s"] is None
    assert sum(r["status"] == "ok" for r in rows) == 3
    assert "1 failed" in err
    monkeypatch.setattr(runner, "simulate_config", real)   # a failed row is not cached: the rerun computes it
    again = _json_rows(capsys, *TINY, "--strategies", "Base,Allo+Pred", "--workers", "0")
    assert again["sweep"]["computed"] == 1 and again["sweep"]["cached"] == 3


def test_the_table_and_the_bar_chart(capsys):
    code, out, err = _sweep(capsys, *TINY, "--strategies", "Base,EP", "--workers", "0")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["mesh", "strategy", "tokens/s", "speedup", "hop", "red.", "hit", "rate", "util"]
    assert [ln.split()[:2] for ln in lines[1:5]] == [["2x2", "Base"], ["2x2", "EP"], ["3x1", "Base"], ["3x1", "EP"]]
    assert "speedup over Base" in out and "█" in out
    assert err.startswith("waferview sweep: 4 rows (4 computed, 0 from the cache, 0 failed)")


# ---- resuming ------------------------------------------------------------------------------------

def _env(tmp_path):
    env = dict(os.environ, WAFERVIEW_NO_PROGRESS="1")
    env.pop("WAFERVIEW_DEBUG", None)
    return env


def test_killing_a_sweep_halfway_and_rerunning_recomputes_only_the_missing_rows(tmp_path):
    from waferview.sweep.traces import sweep_dir

    # rows of about 0.15 s each, so the kill lands while most are still to come
    argv = [sys.executable, "-m", "waferview", "sweep", "--models", "deepseek", "--batches", "24,32,48",
            "--meshes", "4x4,5x5,3x3", "--strategies", "paper", "--workers", "1", "--csv", str(tmp_path / "a.csv")]
    rows_dir = sweep_dir() / "rows"
    proc = subprocess.Popen(argv, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if rows_dir.is_dir() and sum(1 for _ in rows_dir.glob("*/*.json")) >= 8:
                break
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)   # the sweep and its workers, mid-run
        proc.wait()
    done = sum(1 for _ in rows_dir.glob("*/*.json"))
    assert 8 <= done < 45, "the kill must land halfway"
    with open(tmp_path / "a.csv", newline="") as f:   # whatever was written is whole rows
        table = list(csv.reader(f))
    assert all(len(r) == len(table[0]) for r in table) and len(table) - 1 <= done
    again = subprocess.run(argv[:-2] + ["--json"], env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    meta = orjson.loads(again.stdout)["sweep"]
    assert (meta["configurations"], meta["cached"], meta["computed"]) == (45, done, 45 - done)


# ---- Ray -----------------------------------------------------------------------------------------

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_local_ray_instance_gives_the_rows_of_the_pool(tmp_path, capsys):
    assert _have("ray"), "the test extra installs ray: make install"
    ray_bin = Path(sys.executable).parent / "ray"
    port = _free_port()
    import tempfile

    temp = tempfile.mkdtemp(prefix="wvray", dir="/tmp")   # Ray's socket paths must stay short
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    head = subprocess.Popen([str(ray_bin), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                             f"--port={port}",
                             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={temp}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        argv = [*TINY, "--strategies", "Base,Allo+Pred"]
        pooled = _json_rows(capsys, *argv, "--workers", "2")
        import socket

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        # the Ray driver in its own process, as a user runs it (ray.init leaves its marks on a process:
        # PYTHONBREAKPOINT, RAY_CLIENT_MODE in os.environ, a SIGTERM handler; none of them belongs in pytest's)
        done = subprocess.run([sys.executable, "-m", "waferview", "sweep", *argv, "--fresh", "--ray",
                               f"127.0.0.1:{port}", "--json"], env=dict(env, WAFERVIEW_NO_PROGRESS="1"),
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        on_ray = orjson.loads(done.stdout)
        assert on_ray["sweep"]["backend"].startswith(f"Ray at 127.0.0.1:{port}")
        assert on_ray["sweep"]["computed"] == 4
        assert on_ray["rows"] == pooled["rows"]
    finally:
        os.killpg(head.pid, signal.SIGTERM)   # the head and every Ray process it started (its session)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(1)
        try:
            os.killpg(head.pid, signal.SIGKILL)   # what did not stop on SIGTERM
        except ProcessLookupError:
            pass
        head.wait()
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


# ---- figures -------------------------------------------------------------------------------------

def _png_size(path: Path) -> tuple[int, int]:
    import struct

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_plot_draws_fig12_and_its_hops_with_the_plotted_numbers_beside(capsys, tmp_path):
    from waferview.sweep.figures import image_size

    out = _json_rows(capsys, *TINY, "--models", "llama4,deepseek", "--strategies", "paper", "--batches", "5,6",
                     "--workers", "0", "--plot", str(tmp_path / "fig.png"))
    rows = out["rows"]
    size = image_size(rows)
    assert size == (2 * 450, 2 * 300 + 125)   # two meshes across, two models down
    assert _png_size(tmp_path / "fig.png") == size and _png_size(tmp_path / "fig-hops.png") == size
    with open(tmp_path / "fig.csv", newline="") as f:
        plotted = list(csv.DictReader(f))
    expected = [(r["sweep_model"], r["sweep_mesh"], str(r["batch"]), r["strategy"], figure, r[field])
                for r in rows if r["strategy"] != "Base"
                for figure, field in (("speedup", "speedup_vs_base"), ("hop_reduction", "hop_reduction_vs_base"))]
    got = [(p["model"], p["mesh"], p["batch"], p["strategy"], p["figure"], float(p["value"]) if p["value"] else None)
           for p in plotted]
    assert got == expected
    assert len(got) == 2 * 2 * 2 * 4 * 2


def test_insights_plot_draws_both_heatmaps_and_writes_their_counts(capsys, tmp_path):
    from waferview.analysis.insights import layer_counts
    from waferview.analysis.insights_plot import DPI, SIZE_IN, panels
    from waferview.trace.source import load_source

    assert main(["insights", "--model", "llama4", "--plot", str(tmp_path / "co.png")]) == 0
    capsys.readouterr()
    assert _png_size(tmp_path / "co.png") == (round(SIZE_IN[0] * DPI), round(SIZE_IN[1] * DPI))
    tables = layer_counts(load_source(None, model="llama4"))
    layer, items = panels(tables)
    assert layer == 11   # the middle of llama4's 24 MoE layers
    with open(tmp_path / "co.csv", newline="") as f:
        cells = list(csv.DictReader(f))
    assert len(cells) == 2 * 128 * 128
    for figure, source in (("next_layer", tables["next_layer"][layer]), ("next_token", tables["next_token"][layer])):
        mine = [c for c in cells if c["figure"] == figure]
        assert sum(int(c["count"]) for c in mine) == int(source.sum())
        for c in mine[:: 997]:
            assert int(c["count"]) == source[int(c["row_expert"]), int(c["col_expert"])]
        ranks = [int(c["row_expert"]) for c in mine if c["col_rank"] == "0"]
        freq = (tables["freq_pre"] + tables["freq_dec"])[layer] if figure == "next_layer" else tables["freq_dec"][layer]
        assert list(freq[ranks]) == sorted(freq, reverse=True)   # rows ordered by frequency
    assert main(["insights", "--plot", str(tmp_path / "co.bmp")]) == 2
    assert "expected a .png, .svg or .pdf" in capsys.readouterr().err


def test_progress_shows_rate_and_eta_on_a_terminal_only():
    from waferview.sweep.output import SweepProgress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    bar = SweepProgress(10, 2, stream=Tty(), enabled=None)
    assert bar.enabled
    bar.done = 6                            # 2 from the cache, 4 computed in 60 s: 4 rows/min, 4 left: 1 minute
    assert bar.text(bar.start + 60) == "sweep: 6/10 rows (2 cached), 4.0 rows/min, ETA 1m00s, 1m00s elapsed"
    bar.draw(force=True)
    assert bar.stream.getvalue().startswith("\rsweep: 6/10 rows (2 cached)")
    piped = io.StringIO()
    quiet = SweepProgress(10, 0, stream=piped)
    quiet.advance()
    quiet.draw(force=True)
    assert not quiet.enabled and piped.getvalue() == ""


def _children(pid: int) -> list[tuple[int, str]]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                out.append((int(stat.parent.name), cmd))
        except (OSError, ValueError, IndexError):
            continue
    return out


def test_a_killed_worker_costs_only_its_rows(tmp_path):
    from waferview.sweep.traces import sweep_dir

    argv = [sys.executable, "-m", "waferview", "sweep", "--models", "llama4", "--batches", "24,32", "--meshes",
            "4x4,5x5,3x3", "--strategies", "paper", "--workers", "2", "--json"]
    rows_dir = sweep_dir() / "rows"
    proc = subprocess.Popen(argv, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    killed = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None and killed is None:
            if rows_dir.is_dir() and sum(1 for _ in rows_dir.glob("*/*.json")) >= 3:
                workers = [p for p, cmd in _children(proc.pid) if "spawn_main" in cmd]
                if workers:
                    killed = workers[0]
                    os.kill(killed, signal.SIGKILL)
            time.sleep(0.02)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert killed is not None, "the sweep finished before a worker could be killed"
    assert proc.returncode == 0, err
    assert "a worker process died; restarting the pool for the rows not finished" in err
    result = orjson.loads(out)
    assert len(result["rows"]) == 30 and all(r["status"] == "ok" for r in result["rows"])
    assert result["sweep"]["computed"] == 30


def test_a_json_dataset_source_gives_summarys_rows_on_the_first_read_and_from_its_cache(capsys, tmp_path):
    from tracefiles import write_dataset

    write_dataset(tmp_path / "ds", "llama4", {("mmlu", "algebra"): [(i, 3, 4) for i in range(6)]})
    argv = [str(tmp_path / "ds"), "--meshes", "2x2", "--strategies", "Base,EP", "--workers", "0"]
    first = _json_rows(capsys, *argv)                       # parsed from JSON (in memory)
    again = _json_rows(capsys, *argv, "--fresh")            # memory-mapped from summary's trace cache
    assert again["rows"] == first["rows"] and again["sweep"]["computed"] == 2
    assert main(["summary", str(tmp_path / "ds"), "--mesh", "2x2", "--placement", "ep", "--predictor", "off",
                 "--json"]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    summary.pop("provenance")
    assert {k: first["rows"][1][k] for k in summary} == summary
    assert first["rows"][0]["sweep_source"] == str(tmp_path / "ds") and summary["requests"] == 6


def test_profile_link_model_and_step_limit_axes_give_summarys_rows(capsys):
    out = _json_rows(capsys, *TINY, "--meshes", "2x2", "--strategies", "Base,Allo+Pred", "--profiles",
                     "waferview,paper", "--links", "fluid,circuit", "--max-steps", "2,3", "--workers", "0")
    rows = out["rows"]
    assert len(rows) == 2 * 2 * 2 * 2 and all(r["status"] == "ok" for r in rows)
    assert {(r["sweep_profile"], r["sweep_links"], r["sweep_max_steps"]) for r in rows} == {
        (p, l, m) for p in ("waferview", "paper") for l in ("fluid", "circuit") for m in (2, 3)}
    for r in rows:                               # the row names what ran, as summary does
        assert (r["profile"], r["links"]) == (r["sweep_profile"], r["sweep_links"])
    row = next(r for r in rows if (r["sweep_profile"], r["sweep_links"], r["sweep_max_steps"], r["strategy"])
               == ("paper", "circuit", 3, "Allo+Pred"))
    assert main(["summary", "--model", "llama4", "--batch", "6", "--mesh", "2x2", "--profile", "paper", "--links",
                 "circuit", "--max-steps", "3", "--placement", "allo", "--predictor", "heatmap", "--json"]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    summary.pop("provenance")
    assert {k: row[k] for k in summary} == summary
    by = {(r["sweep_profile"], r["sweep_links"], r["sweep_max_steps"], r["strategy"]): r for r in rows}
    for p in ("waferview", "paper"):
        for st in ("Base", "Allo+Pred"):            # one more step: more layers simulated
            assert by[p, "fluid", 3, st]["layers_simulated"] > by[p, "fluid", 2, st]["layers_simulated"]


def test_configurations_drawing_the_same_batch_share_one_workload(capsys, monkeypatch):
    from waferview.sim import workload as workload_module

    drawn = []
    real = workload_module.Workload.__init__

    def counting(self, trace, batch=None, seed=0, *args, **kwargs):
        drawn.append((batch, seed) + args)
        real(self, trace, batch, seed, *args, **kwargs)

    monkeypatch.setattr(workload_module.Workload, "__init__", counting)
    out = _json_rows(capsys, *TINY, "--strategies", "paper", "--profiles", "waferview,paper", "--workers", "0",
                     "--fresh")
    assert len(out["rows"]) == 2 * 5 * 2 and all(r["status"] == "ok" for r in out["rows"])
    # one drawing per profile's batch options (the wafer is not part of it): 2, not one per row
    assert sorted(d[3:] for d in drawn) == [("seeded", None, "position"), ("study", 128, "study")], drawn


def test_the_paper_report_has_one_block_per_profile_and_copy_region():
    from waferview.sweep.paper import report

    def row(strategy, speed, region, profile, paper=None):
        return {"status": "ok", "sweep_model": "qwen3", "sweep_mesh": "8x3", "sweep_batch": 4096,
                "sweep_profile": profile, "sweep_copy_region": region, "strategy": strategy,
                "throughput_tokens_per_s": speed, "paper_throughput": paper, "speedup_vs_base": speed / 100.0,
                "hop_reduction_vs_base": 2.0, "ceiling_tokens_per_s": 900.0, "cache_hit_rate": 0.5,
                "remote_read_bytes": 0 if strategy == "EP" else 1, "hops": 1, "copies_made": 0,
                "model": "qwen3", "bytes_per_param": 2.0, "eviction": "admit"}

    speeds = {"Base": 100.0, "EP": 300.0, "Pred Only": 150.0, "Allo Only": 250.0, "Allo+Pred": 400.0}
    rows = [row(s, v, 50 << 30, "paper", paper=v * 2) for s, v in speeds.items()]
    rows += [row(s, v * (2 if s == "Pred Only" else 1), None, "paper", paper=v) for s, v in speeds.items()]
    text = report(rows)
    first, second = text.split("#### ")[1:]
    assert first.startswith("copy region 50GiB, profile paper") and second.startswith("copy region None, profile paper")
    assert "| qwen3 | 8x3 | 4096 | 100 | 3.00x | 1.50x | 2.50x | 4.00x | 9.00x | 1.33x |" in first
    assert "| 3.00x | 3.00x | 2.50x | 4.00x |" in second          # Pred Only doubled in the second block only
    assert "by paper_throughput (the study's formula): mean 4.00x" in first
