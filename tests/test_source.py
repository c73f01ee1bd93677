"""load_source for every SOURCE kind, exact counts, request names, skipping and model mixing."""

import numpy as np
import orjson
import pytest

from tracefiles import (dataset_file, isolated_cache, make_steps, run_cli, write_dataset,  # noqa: F401
                        write_trace)
from waferview.errors import InputError, TraceFileError
from waferview.trace.cache import save_cache
from waferview.trace.source import load_source

LAYOUT = {
    ("mmlu", "abstract_algebra"): [(17, 4, 3), (3, 1, 0), (250, 2, 6)],
    ("Chinese-SimpleQA", "中华文化"): [(9, 5, 1)],
    ("HuggingFaceH4/aime_2024", "default"): [(1000, 3, 2)],
}
FACT_KEYS = ("model", "requests", "moe_layers", "top_k", "num_experts", "prefill_tokens", "decode_tokens",
             "files_skipped", "skipped")


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "ds"
    written = write_dataset(root, "deepseek", LAYOUT)
    (root / "README.md").write_text("not a trace")
    (root / "cognitivecomputations" / "notes.txt").write_text("stray")
    write_trace(root / ".hidden" / "0.json", "garbage")        # hidden folders are ignored
    write_trace(root / "cognitivecomputations" / "._1.json", "x")  # and hidden files
    return root, written


def test_directory_counts_and_names(dataset):
    root, written = dataset
    trace = load_source(str(root))
    assert trace.model.key == "deepseek"
    assert trace.requests == 5
    assert trace.prefill_tokens == sum(p for p, _ in written.values()) == 15
    assert trace.decode_tokens == sum(d for _, d in written.values()) == 12
    assert trace.skipped == ()
    assert list(trace.request_names) == sorted(written)
    assert trace.request_names[0] == "cognitivecomputations/DeepSeek-R1-AWQ/Chinese-SimpleQA/中华文化/9.json"
    # offsets follow the sorted order
    lengths = [written[name] for name in trace.request_names]
    assert trace.prefill_lengths.tolist() == [p for p, _ in lengths]
    assert trace.decode_lengths.tolist() == [d for _, d in lengths]
    assert trace.source == str(root)


def test_ids_land_at_their_request(dataset, tmp_path):
    root, _ = dataset
    trace = load_source(str(root))
    name = "cognitivecomputations/DeepSeek-R1-AWQ/mmlu/abstract_algebra/250.json"
    r = trace.request_names.index(name)
    steps = orjson.loads((root / name).read_bytes())
    keys = trace.model.moe_layer_keys
    prefill = trace.prefill_ids[trace.prefill_offsets[r]:trace.prefill_offsets[r + 1]]
    decode = trace.decode_ids[trace.decode_offsets[r]:trace.decode_offsets[r + 1]]
    np.testing.assert_array_equal(prefill[1], [steps[0][k][1] for k in keys])
    np.testing.assert_array_equal(decode[5], [steps[6][k][0] for k in keys])


def test_summary_json_exact_counts_with_a_bad_file(dataset, capsys):
    root, _ = dataset
    write_trace(dataset_file(root, "deepseek", "mmlu", "abstract_algebra", 5), "[\n    {")
    code, out, err = run_cli(["summary", root, "--json"], capsys)
    assert code == 0, err
    facts = orjson.loads(out)
    assert {k: facts[k] for k in FACT_KEYS} == {
        "model": "deepseek", "requests": 5, "moe_layers": 58, "top_k": 8, "num_experts": 256,
        "prefill_tokens": 15, "decode_tokens": 12, "files_skipped": 1,
        "skipped": [{"file": "cognitivecomputations/DeepSeek-R1-AWQ/mmlu/abstract_algebra/5.json",
                     "reason": "truncated JSON (the data ends at line 2 column 6 inside an unfinished value)"}],
    }


def test_summary_table_lists_the_skipped_file(dataset, capsys):
    root, _ = dataset
    write_trace(root / "extra.json", "[]")
    code, out, _ = run_cli(["summary", root], capsys)
    assert code == 0
    assert "skipped extra.json: no steps (the top-level list is empty)" in out


def test_strict_directory_raises_with_the_path_as_given(dataset):
    root, _ = dataset
    write_trace(root / "zzz.json", "[]")
    with pytest.raises(TraceFileError) as info:
        load_source(str(root), strict=True)
    assert str(info.value) == f"{root}/zzz.json: no steps (the top-level list is empty)"


def test_single_json_file(tmp_path):
    path = write_trace(tmp_path / "one.json", make_steps("llama4", 7, 9))
    trace = load_source(str(path))
    assert (trace.model.key, trace.requests, trace.prefill_tokens, trace.decode_tokens) == ("llama4", 1, 7, 9)
    assert trace.request_names == ("one.json",)


def test_cache_file_source_by_suffix_and_by_magic(tmp_path):
    trace = load_source(str(write_trace(tmp_path / "one.json", make_steps("kimi", 2, 3))))
    for name in ("copy.wvtrace", "copy.bin"):
        save_cache(tmp_path / name, trace, "k")
        again = load_source(str(tmp_path / name))
        assert (again.model.key, again.requests, again.prefill_tokens, again.decode_tokens) == ("kimi", 1, 2, 3)
        np.testing.assert_array_equal(again.decode_ids, trace.decode_ids)
        assert again.source == str(tmp_path / name)
    with pytest.raises(InputError, match="holds kimi traces, not qwen3"):
        load_source(str(tmp_path / "copy.wvtrace"), model="qwen3")


def test_bad_cache_file_source(tmp_path):
    (tmp_path / "x.wvtrace").write_bytes(b"nope")
    with pytest.raises(InputError, match=r"x.wvtrace: not a waferview cache \(bad magic\)"):
        load_source(str(tmp_path / "x.wvtrace"))
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match=r"expected a directory, a .json trace file, a .wvtrace cache or hf:"):
        load_source(str(tmp_path / "x.txt"))


def test_default_source_is_the_shipped_asset(tmp_path, monkeypatch):
    monkeypatch.setenv("WAFERVIEW_ASSETS", str(tmp_path / "assets"))
    with pytest.raises(InputError, match=r"the shipped default trace .*deepseek.wvtrace is missing"):
        load_source(None)
    for key in ("deepseek", "qwen3"):
        trace = load_source(str(write_trace(tmp_path / f"{key}.json", make_steps(key, 2, 1))))
        save_cache(tmp_path / "assets" / f"{key}.wvtrace", trace)
    assert load_source(None).model.key == "deepseek"
    default_qwen = load_source(None, model="qwen3")
    assert default_qwen.model.key == "qwen3" and default_qwen.source == "assets/qwen3.wvtrace"


def test_missing_source_and_empty_directory(tmp_path):
    with pytest.raises(InputError, match="SOURCE is an empty string"):
        load_source("")
    with pytest.raises(InputError, match="nowhere: no such file or directory"):
        load_source(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("x")
    with pytest.raises(InputError, match=r"no .json trace files in this directory"):
        load_source(str(tmp_path / "empty"))


def test_two_models_in_one_directory(tmp_path):
    root = tmp_path / "mixed"
    write_trace(root / "a" / "1.json", make_steps("qwen3", 1, 1))
    write_trace(root / "b" / "2.json", make_steps("llama4", 1, 1))
    with pytest.raises(InputError) as info:
        load_source(str(root))
    assert str(info.value) == (f"{root} holds traces of two models: {root}/a/1.json is qwen3, {root}/b/2.json is "
                               f"llama4; pass --model to read one of them (the other's files are skipped)")
    only_llama = load_source(str(root), model="llama4")
    assert only_llama.requests == 1 and only_llama.request_names == ("b/2.json",)
    assert only_llama.skipped[0]["file"] == "a/1.json"
    assert "layer keys do not match llama4 (--model)" in only_llama.skipped[0]["reason"]
    assert "(the file's layer keys are those of qwen3)" in only_llama.skipped[0]["reason"]


def test_dataset_folders_of_two_models(tmp_path):
    write_dataset(tmp_path / "ds", "qwen3", {("mmlu", "x"): [(1, 1, 1)]})
    write_dataset(tmp_path / "ds", "kimi", {("mmlu", "x"): [(1, 1, 1)]})
    with pytest.raises(InputError,
                       match=r"Qwen3-235B-A22B-FP8/mmlu/x/1.json is qwen3, .*Kimi-K2-Thinking/mmlu/x/1.json is kimi; "
                             r"pass --model"):
        load_source(str(tmp_path / "ds"))
    assert load_source(str(tmp_path / "ds" / "Qwen")).model.key == "qwen3"


def test_model_option_for_a_folder_without_model_names(tmp_path):
    root = tmp_path / "plain"
    write_trace(root / "1.json", make_steps("kimi", 2, 2, omit_dense=True))
    assert load_source(str(root), model="Kimi-K2-Thinking").model.key == "kimi"
    with pytest.raises(InputError, match="unknown model 'nope'"):
        load_source(str(root), model="nope")


def test_dangling_link_and_symlinked_folders(tmp_path):
    root = tmp_path / "links"
    write_trace(tmp_path / "real" / "1.json", make_steps("qwen3", 2, 1))
    root.mkdir()
    (root / "sub").symlink_to(tmp_path / "real")       # a linked folder is read
    (root / "loop").symlink_to(root)                    # a cycle is not followed forever
    (root / "gone.json").symlink_to(tmp_path / "missing.json")
    trace = load_source(str(root))
    assert trace.request_names == ("sub/1.json",)
    assert trace.skipped[0]["file"] == "gone.json"
    assert trace.skipped[0]["reason"] == "cannot read: dangling symlink (its target does not exist)"
