"""`waferview fetch` and hf: sources against a pre-filled Hub cache; Hub failures mocked. No network."""

import os
import socket
from pathlib import Path

import httpx2
import huggingface_hub
import huggingface_hub.constants
import orjson
import pytest
from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled, RemoteEntryNotFoundError,
                                    RepositoryNotFoundError, RevisionNotFoundError)

from hubcache import add_file, fill, repo_folder
from tracefiles import dumps, isolated_cache, make_steps, run_cli, run_subprocess  # noqa: F401
from waferview.errors import InputError
from waferview.trace import hub as hub_module
from waferview.trace.hub import DEFAULT_REVISION, REPO_ID, fetch, parse_hf_source, select
from waferview.trace.source import load_source

QWEN = "Qwen/Qwen3-235B-A22B-FP8"
FILES = {("mmlu", "abstract_algebra"): [(5, 2, 3), (12, 1, 1), (300, 4, 0)],
         ("mmlu", "anatomy"): [(1, 1, 1)],
         ("Chinese-SimpleQA", "中华文化"): [(7, 3, 2)]}


REAL_SOCKET = [(socket.socket, "connect", socket.socket.connect),
               (socket.socket, "connect_ex", socket.socket.connect_ex),
               (socket, "getaddrinfo", socket.getaddrinfo)]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("a test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A pre-filled Hub cache, offline."""
    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    written = fill(cache, "qwen3", FILES)
    return cache, written


@pytest.fixture
def online(monkeypatch):
    """Online mode, with list_repo_tree and hf_hub_download replaced by fakes serving the pre-filled cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    calls = {"list": [], "download": []}
    state = {"list_error": None, "download_error": None}

    def list_repo_tree(self, repo_id, path_in_repo=None, **kwargs):
        calls["list"].append((repo_id, path_in_repo, kwargs))
        if state["list_error"] is not None:
            raise state["list_error"]
        snapshot = repo_folder(huggingface_hub_cache()) / "snapshots" / DEFAULT_REVISION
        base = snapshot / path_in_repo
        paths = [p.relative_to(snapshot).as_posix() for p in base.rglob("*") if p.is_file()] if base.exists() else []
        entries = [huggingface_hub.RepoFile(path=p, size=100, oid="0" * 40) for p in reversed(sorted(paths))]
        entries.append(huggingface_hub.RepoFile(path=f"{path_in_repo}/README.md", size=5, oid="1" * 40))
        entries.append(huggingface_hub.RepoFolder(path=f"{path_in_repo}/sub", oid="2" * 40))
        return iter(entries)

    def hf_hub_download(repo_id, filename, **kwargs):
        calls["download"].append((repo_id, filename, kwargs))
        if state["download_error"] is not None:
            raise state["download_error"]
        source = repo_folder(huggingface_hub_cache()) / "snapshots" / DEFAULT_REVISION / filename
        if kwargs.get("local_dir") is not None:
            target = Path(kwargs["local_dir"]) / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            return str(target)
        return str(source)

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", list_repo_tree)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(hub_module, "probe", lambda: None)   # "the Hub answers"
    return calls, state


def huggingface_hub_cache():
    return Path(os.environ["HF_HUB_CACHE"])


def http_error(cls, status, message="error"):
    response = httpx2.Response(status, request=httpx2.Request("GET", f"https://huggingface.co/api/datasets/{REPO_ID}"))
    return cls(message, response=response)


def test_the_socket_guard_works():
    with pytest.raises(RuntimeError, match="network"):
        socket.create_connection(("huggingface.co", 443), timeout=1)


# ---- offline, from the pre-filled cache ---------------------------------------------------------

def test_summary_of_an_hf_source_offline(hub, capsys):
    code, out, err = run_cli(["summary", f"hf:{QWEN}/mmlu/abstract_algebra", "--json"], capsys)
    assert code == 0, err
    facts = orjson.loads(out)
    assert (facts["model"], facts["requests"], facts["prefill_tokens"], facts["decode_tokens"]) == ("qwen3", 3, 7, 4)
    trace = load_source(f"hf:{QWEN}/mmlu/abstract_algebra")
    assert trace.request_names == ("12.json", "300.json", "5.json")
    assert trace.source == f"hf:{QWEN}/mmlu/abstract_algebra"


def test_hf_source_of_a_whole_model_and_a_non_ascii_subject(hub):
    trace = load_source(f"hf:{QWEN}")
    assert (trace.requests, trace.prefill_tokens, trace.decode_tokens) == (5, 11, 7)
    assert trace.request_names[0] == "Chinese-SimpleQA/中华文化/7.json"
    assert load_source("hf:qwen3/Chinese-SimpleQA/中华文化").requests == 1


def test_fetch_offline_prints_the_local_folder(hub, capsys):
    cache, _ = hub
    code, out, err = run_cli(["fetch", "--model", "qwen3", "--benchmark", "mmlu", "--subject", "anatomy"], capsys)
    assert code == 0, err
    expected = repo_folder(cache) / "snapshots" / DEFAULT_REVISION / QWEN / "mmlu" / "anatomy"
    assert out == f"{expected}\n"
    assert load_source(out.strip()).requests == 1


def test_fetch_offline_limit_takes_the_first_files_in_sorted_order(hub):
    result = fetch(select("qwen3", "mmlu"), limit=2)
    assert result.offline
    assert result.files == [f"{QWEN}/mmlu/abstract_algebra/12.json", f"{QWEN}/mmlu/abstract_algebra/300.json"]


def test_offline_with_nothing_cached(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = run_cli(["fetch", "--model", "deepseek", "--benchmark", "mmlu"], capsys)
    assert code == 2 and out == ""
    assert err == (f"waferview fetch: offline mode (HF_HUB_OFFLINE=1), and cognitivecomputations/DeepSeek-R1-AWQ/mmlu "
                   f"at revision 27febb7b2d24 is not in the local Hub cache ({tmp_path / 'empty-hub'})\n")


def test_offline_with_another_subject_cached(hub, capsys):
    code, _, err = run_cli(["summary", f"hf:{QWEN}/hellaswag"], capsys)
    assert code == 2
    assert err.startswith(f"waferview summary: offline mode (HF_HUB_OFFLINE=1), and no trace files under "
                          f"{QWEN}/hellaswag at revision 27febb7b2d24 are in the local Hub cache")


def test_fetch_and_summary_in_a_subprocess(hub, isolated_cache):
    cache, _ = hub
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "WAFERVIEW_CACHE_DIR": str(isolated_cache)}
    proc = run_subprocess(["fetch", "--model", QWEN, "--benchmark", "mmlu", "--limit", "1", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["files"] == 1
    proc = run_subprocess(["summary", f"hf:{QWEN}/mmlu/abstract_algebra", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["requests"] == 3
    proc = run_subprocess(["fetch", "--model", "qwen3", "--benchmark", "nope"], env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1


# ---- names checked before any network call -------------------------------------------------------

def test_unknown_model_fails_before_the_network(online, capsys):
    calls, _ = online
    code, _, err = run_cli(["fetch", "--model", "mixtral"], capsys)
    assert code == 2 and "unknown model 'mixtral': expected one of qwen3, deepseek, llama4, kimi" in err
    with pytest.raises(InputError, match=r"hf:Foo/Bar/mmlu: unknown model folder 'Foo/Bar': expected one of "
                                         r"Qwen/Qwen3-235B-A22B-FP8, "):
        load_source("hf:Foo/Bar/mmlu")
    with pytest.raises(InputError, match=r"hf:Qwen/Qwen3-235B-A22B-FP8 holds qwen3 traces, not kimi \(--model\)"):
        load_source(f"hf:{QWEN}", model="kimi")
    assert calls["list"] == [] and calls["download"] == []


def test_hf_source_names():
    assert parse_hf_source(f"hf:{QWEN}/HuggingFaceH4/aime_2024/x").prefix == f"{QWEN}/HuggingFaceH4/aime_2024/x"
    assert parse_hf_source("hf:kimi/mmlu").prefix == "moonshotai/Kimi-K2-Thinking/mmlu"
    assert parse_hf_source("hf:meta-llama/Llama-4-Maverick-17B-128E-Instruct").model.key == "llama4"
    with pytest.raises(InputError, match="expected hf:<org>/<model>"):
        parse_hf_source("hf:")
    with pytest.raises(InputError, match="--subject needs --benchmark"):
        select("qwen3", None, "anatomy")


# ---- online, with the Hub calls mocked ----------------------------------------------------------

def test_fetch_online_lists_sorts_limits_and_downloads(hub, online, capsys):
    cache, _ = hub
    calls, _ = online
    code, out, err = run_cli(["fetch", "--model", "qwen3", "--benchmark", "mmlu", "--subject", "abstract_algebra",
                              "--limit", "2", "--json"], capsys)
    assert code == 0, err
    result = orjson.loads(out)
    assert result["files"] == 2 and result["offline"] is False
    snapshot = repo_folder(cache) / "snapshots" / DEFAULT_REVISION
    assert result["path"] == str(snapshot / QWEN / "mmlu" / "abstract_algebra")
    (repo_id, prefix, kwargs), = calls["list"]
    assert (repo_id, prefix) == (REPO_ID, f"{QWEN}/mmlu/abstract_algebra")
    assert kwargs["repo_type"] == "dataset" and kwargs["revision"] == DEFAULT_REVISION and kwargs["recursive"]
    downloaded = sorted(name for _, name, _ in calls["download"])
    assert downloaded == [f"{QWEN}/mmlu/abstract_algebra/12.json", f"{QWEN}/mmlu/abstract_algebra/300.json"]
    for _, _, kw in calls["download"]:
        assert kw["repo_type"] == "dataset" and kw["revision"] == DEFAULT_REVISION and kw["token"] is None


def test_fetch_online_revision_and_out_dir(hub, online, tmp_path, capsys):
    calls, _ = online
    out_dir = tmp_path / "downloads"
    code, out, err = run_cli(["fetch", "--model", "qwen3", "--benchmark", "Chinese-SimpleQA", "--revision", "main",
                              "--out", out_dir], capsys)
    assert code == 0, err
    assert out == f"{out_dir / QWEN / 'Chinese-SimpleQA'}\n"
    assert calls["list"][0][2]["revision"] == "main"
    assert all(kw["local_dir"] == str(out_dir) for _, _, kw in calls["download"])
    assert load_source(out.strip()).request_names == ("中华文化/7.json",)


def test_hf_source_online_downloads_then_reads(hub, online):
    calls, _ = online
    trace = load_source(f"hf:{QWEN}/mmlu/anatomy")
    assert trace.requests == 1 and len(calls["download"]) == 1


@pytest.mark.parametrize("error,token,message", [
    (lambda: http_error(GatedRepoError, 401), None,
     f"{REPO_ID} is a gated dataset and no Hugging Face token was found: set HF_TOKEN or run `hf auth login`"),
    (lambda: http_error(GatedRepoError, 403), "hf_x",
     f"your token has no access to the gated dataset {REPO_ID}: accept its conditions at "
     f"https://huggingface.co/datasets/{REPO_ID} with the account of the token"),
    (lambda: http_error(RepositoryNotFoundError, 401), None,
     f"no Hugging Face token found ({REPO_ID} is gated): set HF_TOKEN or run `hf auth login`"),
    (lambda: http_error(HfHubHTTPError, 403), "hf_x",
     f"the Hub refused your token for {REPO_ID} (HTTP 403): check the token and accept the dataset's conditions at "
     f"https://huggingface.co/datasets/{REPO_ID}"),
    (lambda: http_error(RemoteEntryNotFoundError, 404), None,
     f"no trace files under {QWEN}/mmlu/nosuch in {REPO_ID} at revision 27febb7b2d24 (unknown benchmark or subject?)"),
    (lambda: http_error(RevisionNotFoundError, 404), None, f"revision '{DEFAULT_REVISION}' not found in {REPO_ID}"),
    (lambda: http_error(HfHubHTTPError, 503, "Service Unavailable\nmore"), None,
     f"the Hub answered HTTP 503 for {QWEN}/mmlu/nosuch: Service Unavailable"),
])
def test_hub_errors_are_one_line(tmp_path, monkeypatch, online, capsys, error, token, message):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: token)
    _, state = online
    state["list_error"] = error()
    code, out, err = run_cli(["fetch", "--model", "qwen3", "--benchmark", "mmlu", "--subject", "nosuch"], capsys)
    assert code == 2 and out == ""
    assert err == f"waferview fetch: {message}\n"


def test_unknown_subject_is_an_empty_listing(hub, online, capsys):
    code, _, err = run_cli(["fetch", "--model", "qwen3", "--benchmark", "mmlu", "--subject", "nosuch"], capsys)
    assert code == 2
    assert err == (f"waferview fetch: no trace files under {QWEN}/mmlu/nosuch in {REPO_ID} at revision 27febb7b2d24 "
                   f"(unknown benchmark or subject?)\n")


@pytest.mark.parametrize("error", [lambda: httpx2.ConnectError("[Errno -2] Name or service not known"),
                                   lambda: httpx2.ReadTimeout("timed out"),
                                   lambda: OfflineModeIsEnabled("offline")])
def test_unreachable_hub_uses_the_local_cache(hub, online, capsys, error):
    _, state = online
    state["list_error"] = error()
    code, out, err = run_cli(["fetch", "--model", "qwen3", "--benchmark", "mmlu", "--subject", "anatomy"], capsys)
    assert code == 0
    assert out.strip().endswith(f"{QWEN}/mmlu/anatomy")
    assert err.startswith("waferview: ") and err.endswith("; using the 1 files already in the local cache\n")


def test_unreachable_hub_with_nothing_cached(tmp_path, monkeypatch, online, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    _, state = online
    state["list_error"] = httpx2.ConnectError("[Errno -2] Name or service not known")
    code, _, err = run_cli(["summary", f"hf:{QWEN}/mmlu"], capsys)
    assert code == 2
    assert err == (f"waferview summary: cannot reach the Hub: [Errno -2] Name or service not known, and {QWEN}/mmlu "
                   f"at revision 27febb7b2d24 is not in the local Hub cache ({tmp_path / 'empty-hub'})\n")


def test_network_failure_during_download(hub, online, capsys):
    _, state = online
    state["download_error"] = httpx2.ConnectError("connection reset")
    code, _, err = run_cli(["fetch", "--model", "qwen3", "--benchmark", "mmlu"], capsys)
    assert code == 2 and err == "waferview fetch: cannot reach the Hub: connection reset\n"


def test_bad_limit(hub, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["fetch", "--model", "qwen3", "--limit", "0"], capsys)
    assert exit_info.value.code == 2
    assert "argument --limit: 0: out of range; expected a number of files from 1 to" in capsys.readouterr().err


def test_a_bad_file_in_the_hub_cache_is_skipped(hub):
    cache, _ = hub
    add_file(cache, f"{QWEN}/mmlu/anatomy/2.json", dumps(make_steps("qwen3", 1, 1))[:-40])
    trace = load_source(f"hf:{QWEN}/mmlu/anatomy")
    assert trace.requests == 1
    assert trace.skipped[0]["file"] == "2.json" and trace.skipped[0]["reason"].startswith("truncated JSON")


def test_second_fetch_of_a_commit_needs_no_network(hub, online, capsys):
    calls, state = online
    first = fetch(select("qwen3", "mmlu"), limit=2)
    assert len(calls["list"]) == 1 and len(calls["download"]) == 2
    state["list_error"] = AssertionError("listed again")
    state["download_error"] = AssertionError("downloaded again")
    again = fetch(select("qwen3", "mmlu"), limit=2)
    assert (again.local_dir, again.files) == (first.local_dir, first.files)
    assert len(calls["list"]) == 1 and len(calls["download"]) == 2
    # a branch may move: it is listed every time
    state["list_error"] = state["download_error"] = None
    fetch(select("qwen3", "mmlu"), revision="main", limit=1)
    fetch(select("qwen3", "mmlu"), revision="main", limit=1)
    assert len(calls["list"]) == 3


def test_saved_listing_with_missing_files_downloads_only(hub, online):
    cache, _ = hub
    calls, state = online
    fetch(select("qwen3", "mmlu", "anatomy"))
    assert len(calls["list"]) == 1
    state["list_error"] = AssertionError("listed again")
    fetch(select("qwen3", "mmlu", "anatomy"), out=str(cache.parent / "elsewhere"))
    assert len(calls["list"]) == 1 and calls["download"][-1][2]["local_dir"] == str(cache.parent / "elsewhere")


# ---- an unreachable Hub fails fast; --json keys; --out offline ---------------------------------------

@pytest.fixture
def silent_hub():
    """An endpoint that accepts connections and never answers (a black hole), and a closed port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", f"http://127.0.0.1:{closed_port}"
    listener.close()


@pytest.mark.parametrize("which, reason", [(0, "timed out"), (1, "Connection refused")])
def test_an_unreachable_hub_is_one_line_and_does_not_wait(tmp_path, silent_hub, which, reason):
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": silent_hub[which], "HF_HUB_CACHE": str(tmp_path / "empty")}
    proc = run_subprocess(["fetch", "--model", "qwen3", "--benchmark", "mmlu"], env_extra=env)
    assert proc.returncode == 2 and proc.stdout == ""
    line, = proc.stderr.strip().splitlines()
    assert line.startswith("waferview fetch: cannot reach the Hub: ") and reason in line
    assert line.endswith(f"and {QWEN}/mmlu at revision 27febb7b2d24 is not in the local Hub cache "
                         f"({tmp_path / 'empty'})")


def test_the_probe_gives_up_within_its_deadline(silent_hub, monkeypatch):
    """Nothing waits longer than PROBE_SECONDS (measured by the probe itself, not asserted as a speed)."""
    import importlib

    # this test needs real sockets (to the local black hole only)
    for owner, name, real in REAL_SOCKET:
        monkeypatch.setattr(owner, name, real)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", silent_hub[0])
    hub = importlib.import_module("waferview.trace.hub")
    monkeypatch.setattr(importlib.import_module("waferview.trace.hub_net"), "PROBE_SECONDS", 0.5)
    assert hub.probe() in ("timed out", f"no answer from {silent_hub[0]} within 0.5 s")


def test_an_unreachable_hub_uses_files_already_cached(hub, tmp_path, silent_hub):
    cache, _ = hub
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": silent_hub[1], "HF_HUB_CACHE": str(cache)}
    proc = run_subprocess(["fetch", "--model", "qwen3", "--benchmark", "mmlu", "--subject", "anatomy"], env_extra=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(f"{QWEN}/mmlu/anatomy")
    assert proc.stderr.startswith("waferview: cannot reach the Hub: ") and "using the 1 files" in proc.stderr


def test_fetch_json_keys_are_the_ones_help_lists(hub, capsys):
    from waferview.cli.cmd_fetch import JSON_KEYS

    code, out, _ = run_cli(["fetch", "--model", "qwen3", "--benchmark", "mmlu", "--json"], capsys)
    assert code == 0 and list(orjson.loads(out)) == list(JSON_KEYS)
    helped = run_subprocess(["fetch", "--help"]).stdout
    text = " ".join(helped.split())
    for key in JSON_KEYS:
        assert f"{key}: " in text


def test_fetch_out_offline_finds_files_in_the_hf_cache(hub, tmp_path, capsys):
    out_dir = tmp_path / "mine"
    code, out, err = run_cli(["fetch", "--model", "qwen3", "--benchmark", "mmlu", "--subject", "abstract_algebra",
                              "--limit", "2", "--out", out_dir, "--json"], capsys)
    assert code == 0, err
    result = orjson.loads(out)
    assert result["path"] == str(out_dir / QWEN / "mmlu" / "abstract_algebra") and result["files"] == 2
    assert result["offline"] is True
    assert sorted(p.name for p in (out_dir / QWEN / "mmlu" / "abstract_algebra").iterdir()) == ["12.json", "300.json"]
    assert load_source(result["path"]).requests == 2


@pytest.mark.parametrize("source", ["hf:qwen3/../../x", "hf:Qwen/Qwen3-235B-A22B-FP8/mmlu/..", "hf:qwen3/mmlu/a\\b"])
def test_a_selection_cannot_climb_out_of_the_dataset(source, capsys):
    code, _, err = run_cli(["summary", source], capsys)
    assert code == 2 and "is not a folder name of the dataset (no '.', '..' or backslashes)" in err
    with pytest.raises(InputError, match="not a folder name"):
        select("qwen3", "..", "x")
