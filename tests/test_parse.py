"""parse_file on well-formed files: exact ids, shapes, dtypes, phase by position, model inference."""

import json

import numpy as np
import orjson
import pytest

from tracefiles import dataset_file, make_steps, write_trace
from waferview.errors import TraceFileError
from waferview.models import MODELS
from waferview.trace.parse import parse_bytes, parse_file


def expected_arrays(steps, model):
    keys = model.moe_layer_keys
    prefill = np.array([[steps[0][key][r] for key in keys] for r in range(len(steps[0][keys[0]]))])
    decode = np.array([[step[key][0] for key in keys] for step in steps[1:]]).reshape(-1, len(keys), model.top_k)
    return prefill, decode


@pytest.mark.parametrize("key", sorted(MODELS))
def test_ids_round_trip_for_every_model(tmp_path, key):
    m = MODELS[key]
    steps = make_steps(key, prefill_rows=5, decode_steps=3, seed=7)
    path = write_trace(dataset_file(tmp_path, key, "mmlu", "anatomy", 42), steps)
    model, prefill, decode = parse_file(path)
    assert model is m
    assert prefill.shape == (5, m.moe_layers, m.top_k)
    assert decode.shape == (3, m.moe_layers, m.top_k)
    assert prefill.dtype == m.id_dtype and decode.dtype == m.id_dtype
    want_prefill, want_decode = expected_arrays(steps, m)
    np.testing.assert_array_equal(prefill, want_prefill)
    np.testing.assert_array_equal(decode, want_decode)


def test_kimi_ids_above_255_and_absent_dense_key(tmp_path):
    steps = make_steps("kimi", 2, 2, omit_dense=True)
    steps[0]["1"][0] = [383, 300, 256, 255, 0, 1, 2, 3]
    model, prefill, _ = parse_file(write_trace(tmp_path / "k.json", steps), MODELS["kimi"])
    assert prefill.dtype == np.uint16
    assert prefill[0, 0].tolist() == [383, 300, 256, 255, 0, 1, 2, 3]   # layer "1" is the first MoE layer


def test_kimi_dense_key_may_be_absent_in_some_steps_only(tmp_path):
    steps = make_steps("kimi", 1, 2)
    del steps[1]["0"]
    model, _, decode = parse_file(write_trace(tmp_path / "k.json", steps))
    assert model.key == "kimi" and decode.shape == (2, 60, 8)


def test_phase_is_by_position_not_row_count(tmp_path):
    # a one-token prefill looks like a decode step; it is still the prefill because it is step 0
    steps = make_steps("deepseek", prefill_rows=1, decode_steps=4)
    _, prefill, decode = parse_file(write_trace(tmp_path / "a.json", steps))
    assert prefill.shape[0] == 1 and decode.shape[0] == 4


def test_file_with_only_a_prefill(tmp_path):
    _, prefill, decode = parse_file(write_trace(tmp_path / "a.json", make_steps("llama4", 6, 0)))
    assert prefill.shape == (6, 24, 1) and decode.shape == (0, 24, 1)


def test_more_than_128_decode_steps_are_accepted(tmp_path):
    _, _, decode = parse_file(write_trace(tmp_path / "long.json", make_steps("llama4", 1, 130)))
    assert decode.shape == (130, 24, 1)


def test_model_from_keys_when_the_path_says_nothing(tmp_path):
    _, _, _ = parse_file(write_trace(tmp_path / "x" / "1.json", make_steps("qwen3", 1, 1)))
    model, _, _ = parse_file(write_trace(tmp_path / "y" / "2.json", make_steps("deepseek", 1, 1)))
    assert model.key == "deepseek"


def test_explicit_model_is_used(tmp_path):
    path = write_trace(tmp_path / "1.json", make_steps("deepseek", 2, 1))
    model, prefill, _ = parse_file(path, MODELS["deepseek"])
    assert model.key == "deepseek" and prefill.shape == (2, 58, 8)


def test_file_contradicting_explicit_model_is_bad(tmp_path):
    path = write_trace(tmp_path / "1.json", make_steps("deepseek", 2, 1))
    with pytest.raises(TraceFileError) as info:
        parse_file(path, MODELS["kimi"])
    assert str(info.value) == (f"{path}: step 0 (prefill) layer 1: null, but layer 1 is a MoE layer of kimi "
                               f"(the file's layer keys are those of deepseek)")


def test_file_contradicting_the_path_is_bad(tmp_path):
    path = write_trace(dataset_file(tmp_path, "qwen3", "mmlu", "x", 1), make_steps("llama4", 1, 0))
    with pytest.raises(TraceFileError) as info:
        parse_file(path)
    assert str(info.value) == (
        f'{path}: step 0 (prefill): layer keys do not match qwen3 (inferred from the path; pass --model to '
        f'override): missing "48", "49", "50", "51", "52" ... (46 in all) '
        f"(the file's layer keys are those of llama4)")


def test_parse_bytes_matches_orjson_exactly_on_a_larger_file():
    steps = make_steps("qwen3", prefill_rows=40, decode_steps=20, seed=3)
    raw = orjson.dumps(steps, option=orjson.OPT_INDENT_2)
    model, prefill, decode = parse_bytes(raw, "big.json")
    want_prefill, want_decode = expected_arrays(steps, model)
    np.testing.assert_array_equal(prefill, want_prefill)
    np.testing.assert_array_equal(decode, want_decode)


# ---- the fast path agrees with the exhaustive check --------------------------------------------

def _mutate(steps, model, rng):
    """One random, possibly harmless, change to a small valid trace."""
    s = rng.randrange(len(steps))
    step = steps[s]
    if not isinstance(step, dict) or not step:
        return
    keys = list(step)
    key = rng.choice(keys)
    junk = [None, True, False, 1.5, "7", -1, model.num_experts, model.num_experts - 1, 0, [], [[]], {}, [1], 2 ** 70]
    kind = rng.randrange(11)
    if kind == 0:
        del step[key]
    elif kind == 1:
        step[str(rng.choice([model.num_layer_keys, 0, 5]))] = rng.choice(junk)
    elif kind == 2:
        step[key] = rng.choice(junk)
    elif kind in (3, 4, 5, 6, 7) and not isinstance(step[key], list):
        return
    elif kind == 3 and step[key]:
        step[key].append(list(step[key][0]))
    elif kind == 4 and step[key]:
        step[key].pop()
    elif kind == 5 and step[key]:
        row = rng.choice(step[key])
        if isinstance(row, list) and row:
            row[rng.randrange(len(row))] = rng.choice(junk)
    elif kind == 6 and step[key] and isinstance(step[key][0], list):
        step[key][0].append(0)
    elif kind == 7 and step[key] and isinstance(step[key][0], list) and step[key][0]:
        step[key][0].pop()
    elif kind == 8:
        other = rng.choice(keys)
        step[key], step[other] = step[other], step[key]
    elif kind == 9:
        steps[s] = rng.choice(junk)
    else:
        step["x" + key] = step.pop(key)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_fast_path_agrees_with_the_exhaustive_check(key):
    import random

    from waferview.trace.validate import find_problem

    m = MODELS[key]
    rng = random.Random(1234)
    accepted = rejected = 0
    for trial in range(150):
        steps = make_steps(key, prefill_rows=rng.randrange(1, 4), decode_steps=rng.randrange(0, 3), seed=trial,
                           omit_dense=(key == "kimi" and trial % 2 == 0))
        for _ in range(rng.randrange(1, 3)):
            _mutate(steps, m, rng)
        raw = json.dumps(steps).encode()
        steps = orjson.loads(raw)  # (orjson reads 2**70 as a float, as it will in parse_bytes)
        problem = find_problem(steps, m, "--model", raw)
        try:
            model, prefill, decode = parse_bytes(raw, "f.json", m)
        except TraceFileError as e:
            assert problem is not None, f"fast path rejected a valid file: {e}"
            assert e.reason.startswith(problem)
            rejected += 1
            continue
        assert problem is None, f"fast path accepted a bad file: {problem}"
        want_prefill, want_decode = expected_arrays(steps, m)
        np.testing.assert_array_equal(prefill, want_prefill)
        np.testing.assert_array_equal(decode, want_decode.reshape(decode.shape))
        accepted += 1
    assert accepted >= 5 and rejected >= 50


def test_parse_throughput_report_shape():
    from waferview.bench.throughput import parse_throughput

    raws = [orjson.dumps(make_steps("deepseek", 3, 2, seed=s)) for s in range(2)]
    report = parse_throughput(raws, repeats=1)
    assert report["bytes"] == sum(map(len, raws))
    assert report["orjson_s"] > 0 and report["parse_s"] > 0
    assert report["ratio"] == pytest.approx(report["orjson_s"] / report["parse_s"])
