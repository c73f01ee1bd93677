"""The model table: the dataset's four models, their layouts and sizes, and model inference."""

import pytest

from tracefiles import make_steps
from waferview.errors import InputError
from waferview.models import MODELS, get_model, infer_model_from_path, infer_model_from_step

# key: (folder, MoE layers, top-k, experts, hidden, expert inter, expert MB, number of layer keys, dense keys)
TABLE = {
    "qwen3": ("Qwen/Qwen3-235B-A22B-FP8", 94, 8, 128, 4096, 1536, 37.7, 94, ()),
    "deepseek": ("cognitivecomputations/DeepSeek-R1-AWQ", 58, 8, 256, 7168, 2048, 88.1, 61, (0, 1, 2)),
    "llama4": ("meta-llama/Llama-4-Maverick-17B-128E-Instruct", 24, 1, 128, 5120, 8192, 251.7, 48,
               tuple(range(0, 48, 2))),
    "kimi": ("moonshotai/Kimi-K2-Thinking", 60, 8, 384, 7168, 2048, 88.1, 61, (0,)),
}


@pytest.mark.parametrize("key", sorted(TABLE))
def test_model_table(key):
    folder, moe, k, experts, hidden, inter, mb, nkeys, dense = TABLE[key]
    m = MODELS[key]
    assert m.folder == folder
    assert m.moe_layers == moe
    assert m.top_k == k
    assert m.num_experts == experts
    assert (m.hidden, m.expert_inter) == (hidden, inter)
    assert m.num_layer_keys == nkeys
    assert m.dense_layers == dense
    assert m.expert_bytes == 3 * hidden * inter * 2
    assert round(m.expert_bytes / 1e6, 1) == mb
    assert len(m.moe_layer_keys) == moe
    assert m.moe_layer_keys == tuple(str(i) for i in range(nkeys) if i not in dense)
    assert m.layer_keys == frozenset(str(i) for i in range(nkeys))
    assert m.id_dtype.itemsize == (1 if experts <= 256 else 2)


def test_only_kimi_may_omit_its_dense_key():
    assert [m.key for m in MODELS.values() if m.dense_may_be_absent] == ["kimi"]


@pytest.mark.parametrize("name,key", [
    ("qwen3", "qwen3"), ("Qwen3-235B-A22B-FP8", "qwen3"), ("Qwen/Qwen3-235B-A22B-FP8", "qwen3"),
    ("DeepSeek", "deepseek"), ("cognitivecomputations/DeepSeek-R1-AWQ", "deepseek"),
    ("llama4", "llama4"), ("meta-llama/Llama-4-Maverick-17B-128E-Instruct", "llama4"),
    ("kimi", "kimi"), ("moonshotai/Kimi-K2-Thinking", "kimi"),
])
def test_get_model_accepts_keys_and_folders(name, key):
    assert get_model(name).key == key


def test_unknown_model_names_the_choices():
    with pytest.raises(InputError, match=r"unknown model 'gpt5': expected one of qwen3, deepseek, llama4, kimi"):
        get_model("gpt5")


@pytest.mark.parametrize("key", sorted(TABLE))
def test_infer_from_dataset_path(key):
    folder = TABLE[key][0]
    assert infer_model_from_path(f"/data/traces/{folder}/mmlu/abstract_algebra/17.json").key == key
    assert infer_model_from_path(f"hf:{folder}/Chinese-SimpleQA/中文").key == key


def test_infer_from_short_names_and_nothing():
    assert infer_model_from_path("assets/qwen3.wvtrace").key == "qwen3"
    assert infer_model_from_path("runs/kimi/0.json").key == "kimi"
    assert infer_model_from_path("traces/mmlu/17.json") is None
    # two models named: no guess
    assert infer_model_from_path("Qwen3-235B-A22B-FP8/vs/DeepSeek-R1-AWQ/1.json") is None


@pytest.mark.parametrize("key", sorted(TABLE))
def test_infer_from_step_keys(key):
    assert infer_model_from_step(make_steps(key, 2, 0)[0]).key == key


def test_infer_from_step_kimi_without_dense_key():
    step = make_steps("kimi", 1, 0, omit_dense=True)[0]
    assert "0" not in step
    assert infer_model_from_step(step).key == "kimi"


def test_infer_from_step_rejects_wrong_patterns():
    step = make_steps("deepseek", 1, 0)[0]
    step["1"] = [[1] * 8]  # a dense layer that is not null
    assert infer_model_from_step(step) is None
    step = make_steps("qwen3", 1, 0)[0]
    del step["50"]
    assert infer_model_from_step(step) is None
    assert infer_model_from_step([]) is None


def test_model_descriptions_round_trip_and_are_validated(tmp_path):
    import json

    from waferview.errors import InputError
    from waferview.models import MODELS, get_model, load_model_file, model_from_dict

    for m in MODELS.values():
        assert model_from_dict(m.to_dict(), "x") is m and m.builtin
    path = tmp_path / "mixtral.json"
    path.write_text(json.dumps({"key": "mixtral", "layers": 32, "top_k": 2, "num_experts": 8, "hidden": 4096,
                                "expert_inter": 14336}))
    spec = get_model(str(path))
    assert spec == load_model_file(path) and not spec.builtin
    assert (spec.moe_layers, spec.moe_layer_ids[-1], spec.folder, spec.expert_params) == (32, 31, "custom/mixtral",
                                                                                          3 * 4096 * 14336)
    bad = {"key": "m", "layers": 4, "top_k": 9, "num_experts": 8, "hidden": 1, "expert_inter": 1}
    with pytest.raises(InputError, match=r"f.json: top_k must be an integer from 1 to 8, got 9"):
        model_from_dict(bad, "f.json")
    with pytest.raises(InputError, match="every layer is dense"):
        model_from_dict({**bad, "top_k": 1, "dense_layers": [0, 1, 2, 3]}, "f.json")
    with pytest.raises(InputError, match="built-in model with other dimensions"):
        model_from_dict({**MODELS["qwen3"].to_dict(), "top_k": 4}, "f.json")
    with pytest.raises(InputError, match="unknown model field"):
        model_from_dict({**bad, "experts": 3}, "f.json")
    with pytest.raises(InputError, match="not found"):
        get_model(str(tmp_path / "missing.json"))


def test_descriptions_may_list_the_moe_layers_instead_of_the_dense_ones():
    from waferview.errors import InputError
    from waferview.models import model_from_dict

    base = {"key": "dsv3", "layers": 61, "top_k": 8, "num_experts": 256, "hidden": 7168, "expert_inter": 2048}
    spec = model_from_dict({**base, "moe_layer_ids": list(range(3, 61))}, "d.json")
    assert spec.dense_layers == (0, 1, 2) and spec.moe_layers == 58 and spec.moe_layer_ids[0] == 3
    assert model_from_dict({**base, "dense_layers": [0, 1, 2], "moe_layer_ids": list(range(3, 61))}, "d.json") == spec
    with pytest.raises(InputError, match=r"d.json: dense_layers and moe_layer_ids disagree \(give one of them\)"):
        model_from_dict({**base, "dense_layers": [0], "moe_layer_ids": list(range(3, 61))}, "d.json")
    with pytest.raises(InputError, match=r"d.json: moe_layer_ids must be distinct layer numbers in 0..60"):
        model_from_dict({**base, "moe_layer_ids": [3, 61]}, "d.json")


@pytest.mark.parametrize("name", ["qwen3-30b-a3b.json", "mixtral-8x7b.json"])
def test_shipped_example_descriptions_load(name):
    from pathlib import Path

    from waferview.models import get_model

    spec = get_model(str(Path(__file__).resolve().parent.parent / "assets" / "models" / name))
    assert not spec.builtin and spec.moe_layers == spec.num_layer_keys
