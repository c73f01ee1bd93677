"""Every kind of bad trace file gets a one-line reason naming the file, step, layer and row."""

import copy
import json

import pytest

from tracefiles import dumps, isolated_cache, make_steps, run_cli, run_subprocess, write_trace  # noqa: F401
from waferview.errors import TraceFileError
from waferview.models import MODELS
from waferview.trace.parse import parse_file

QWEN = make_steps("qwen3", prefill_rows=3, decode_steps=4, seed=1)


def bad_file(tmp_path, steps_or_text, name="bad.json"):
    return write_trace(tmp_path / name, steps_or_text)


def reason_of(path, model=None):
    with pytest.raises(TraceFileError) as info:
        parse_file(path, MODELS[model] if model else None)
    assert info.value.file == str(path)
    assert str(info.value) == f"{path}: {info.value.reason}"
    assert "\n" not in str(info.value)
    return info.value.reason


def mutated(steps, change):
    steps = copy.deepcopy(steps)
    change(steps)
    return steps


# ---- whole-file problems ----------------------------------------------------------------------

def test_empty_file(tmp_path):
    assert reason_of(bad_file(tmp_path, "")) == "empty file"
    assert reason_of(bad_file(tmp_path, "  \n ")) == "empty file (only whitespace)"


def test_truncated_json(tmp_path):
    text = dumps(QWEN)
    reason = reason_of(bad_file(tmp_path, text[: len(text) // 2]))
    assert reason.startswith("truncated JSON (the data ends at line ")


def test_invalid_json(tmp_path):
    assert reason_of(bad_file(tmp_path, '[\n    {"0": [[1, 2,]]}\n]')) == \
        "invalid JSON at line 2 column 17: trailing comma is not allowed"
    assert reason_of(bad_file(tmp_path, "[1] [2]")).startswith("invalid JSON at line 1 column 5: unexpected content")


def test_invalid_utf8(tmp_path):
    path = tmp_path / "bin.json"
    path.write_bytes(b'["\xff\xfe"]')
    assert reason_of(path).startswith("invalid JSON at line 1 column 1: str is not valid UTF-8")


@pytest.mark.parametrize("text,kind", [('{"0": null}', "an object"), ("42", "a number"), ('"steps"', "a string"),
                                       ("null", "null")])
def test_top_level_not_a_list(tmp_path, text, kind):
    assert reason_of(bad_file(tmp_path, text)) == f"top level is {kind}, expected a list of steps"


def test_no_steps(tmp_path):
    assert reason_of(bad_file(tmp_path, "[]")) == "no steps (the top-level list is empty)"


# ---- steps and layer keys ---------------------------------------------------------------------

def test_step_not_an_object(tmp_path):
    steps = mutated(QWEN, lambda s: s.__setitem__(2, [[1, 2, 3]]))
    assert reason_of(bad_file(tmp_path, steps)) == "step 2 is a list, expected an object of layer ids"
    assert reason_of(bad_file(tmp_path, [None])) == "step 0 (prefill) is null, expected an object of layer ids"


def test_missing_layer_key(tmp_path):
    steps = mutated(QWEN, lambda s: s[1].pop("7"))
    assert reason_of(bad_file(tmp_path, steps)) == \
        'step 1: layer keys do not match qwen3 (inferred from step 0): missing "7"'
    assert reason_of(bad_file(tmp_path, steps), "qwen3") == \
        'step 1: layer keys do not match qwen3 (--model): missing "7"'


def test_extra_layer_key(tmp_path):
    steps = mutated(QWEN, lambda s: s[0].__setitem__("94", s[0]["93"]))
    assert reason_of(bad_file(tmp_path, steps)) == \
        'step 0 (prefill): layer keys match no known model (95 layer keys "0".."94", 0 null); pass --model'
    assert reason_of(bad_file(tmp_path, steps), "qwen3") == \
        'step 0 (prefill): layer keys do not match qwen3 (--model): unexpected "94"'
    steps = mutated(QWEN, lambda s: s[3].__setitem__("router", None))
    assert reason_of(bad_file(tmp_path, steps), "qwen3") == \
        'step 3: layer keys do not match qwen3 (--model): unexpected "router"'


def test_renamed_layer_key(tmp_path):
    # the right number of keys, but one of them wrong
    def rename(s):
        s[2]["router"] = s[2].pop("50")
    assert reason_of(bad_file(tmp_path, mutated(QWEN, rename))) == \
        'step 2: layer keys do not match qwen3 (inferred from step 0): missing "50"; unexpected "router"'
    steps = make_steps("kimi", 1, 2)
    steps[1]["61"] = steps[1].pop("0")  # kimi may omit "0", but not add another key
    assert reason_of(bad_file(tmp_path, steps)) == \
        'step 1: layer keys do not match kimi (inferred from step 0): unexpected "61"'


def test_dense_layer_must_be_null(tmp_path):
    steps = make_steps("deepseek", 2, 3)
    steps[3]["2"] = [[1, 2, 3, 4, 5, 6, 7, 8]]
    assert reason_of(bad_file(tmp_path, steps), "deepseek") == \
        "step 3 layer 2: expected null (a dense layer of deepseek), got a list"


def test_dense_key_absent_only_for_kimi(tmp_path):
    steps = make_steps("deepseek", 1, 1)
    del steps[1]["0"]
    assert reason_of(bad_file(tmp_path, steps), "deepseek") == \
        'step 1: layer keys do not match deepseek (--model): missing "0"'


def test_moe_layer_null(tmp_path):
    steps = mutated(QWEN, lambda s: s[1].__setitem__("5", None))
    assert reason_of(bad_file(tmp_path, steps), "qwen3") == "step 1 layer 5: null, but layer 5 is a MoE layer of qwen3"


def test_moe_layer_not_a_list(tmp_path):
    steps = mutated(QWEN, lambda s: s[1].__setitem__("5", {"a": [1] * 8}))
    assert reason_of(bad_file(tmp_path, steps)) == "step 1 layer 5: expected a list of rows, got an object"


# ---- rows and ids -----------------------------------------------------------------------------

def test_row_of_wrong_width(tmp_path):
    steps = mutated(QWEN, lambda s: s[0]["3"].__setitem__(1, [1, 2, 3]))
    assert reason_of(bad_file(tmp_path, steps)) == \
        "step 0 (prefill) layer 3 row 1: 3 expert ids, expected top-k = 8 for qwen3"
    steps = make_steps("llama4", 2, 2)
    steps[2]["45"][0] = [4, 5]
    assert reason_of(bad_file(tmp_path, steps)) == "step 2 layer 45 row 0: 2 expert ids, expected top-k = 1 for llama4"


def test_row_not_a_list(tmp_path):
    steps = mutated(QWEN, lambda s: s[2]["4"].__setitem__(0, 5))
    assert reason_of(bad_file(tmp_path, steps)) == "step 2 layer 4 row 0: expected a list of 8 expert ids, got a number"
    steps = mutated(QWEN, lambda s: s[2]["4"].__setitem__(0, "abcdefgh"))
    assert reason_of(bad_file(tmp_path, steps)) == "step 2 layer 4 row 0: expected a list of 8 expert ids, got a string"


@pytest.mark.parametrize("model,bad_id", [("qwen3", 128), ("qwen3", -1), ("deepseek", 256), ("deepseek", 1000),
                                          ("llama4", 128), ("kimi", 384), ("kimi", 70000), ("kimi", -3),
                                          # beyond 64 bits orjson reads a float: still "an integer out of range"
                                          ("qwen3", 2 ** 64), ("kimi", 2 ** 70), ("deepseek", -(2 ** 70))])
def test_expert_id_out_of_range(tmp_path, model, bad_id):
    m = MODELS[model]
    steps = make_steps(model, 2, 3)
    layer = m.moe_layer_keys[4]
    steps[2][layer][0][m.top_k - 1] = bad_id
    assert reason_of(bad_file(tmp_path, steps)) == (
        f"step 2 layer {layer} row 0: expert id {bad_id} out of range "
        f"({model} has {m.num_experts} experts: 0..{m.num_experts - 1})")


@pytest.mark.parametrize("model", ["qwen3", "kimi"])
@pytest.mark.parametrize("value,shown", [(1.5, "1.5"), ("7", '"7"'), (True, "true"), (False, "false"), (None, "null"),
                                         (1e300, "1e+300")])
def test_expert_id_not_an_integer(tmp_path, model, value, shown):
    steps = make_steps(model, 3, 2)
    layer = MODELS[model].moe_layer_keys[-1]
    steps[0][layer][2][0] = value
    assert reason_of(bad_file(tmp_path, steps)) == \
        f"step 0 (prefill) layer {layer} row 2: expert id {shown} is not an integer"


def test_expert_id_that_is_a_list(tmp_path):
    steps = mutated(QWEN, lambda s: s[0]["0"][0].__setitem__(0, [1]))
    assert reason_of(bad_file(tmp_path, steps)) == \
        "step 0 (prefill) layer 0 row 0: expert id is a list, expected an integer"


def test_decode_step_with_more_than_one_row(tmp_path):
    steps = mutated(QWEN, lambda s: s[3]["6"].append(s[3]["6"][0]))
    assert reason_of(bad_file(tmp_path, steps)) == "step 3 layer 6: 2 rows in a decode step, expected exactly 1"


def test_decode_rows_that_balance_out_are_still_caught(tmp_path):
    # layer 6 has none and layer 7 two: the total is right, the layers are not
    def change(s):
        s[3]["7"].append(s[3]["6"].pop())
    assert reason_of(bad_file(tmp_path, mutated(QWEN, change))) == \
        "step 3 layer 6: 0 rows in a decode step, expected exactly 1"


def test_prefill_with_zero_rows(tmp_path):
    steps = make_steps("qwen3", 1, 2)
    for key in MODELS["qwen3"].moe_layer_keys:
        steps[0][key] = []
    assert reason_of(bad_file(tmp_path, steps)) == \
        "step 0 (prefill) layer 0: no rows (the prefill needs at least one token)"


def test_prefill_layers_with_different_row_counts(tmp_path):
    steps = mutated(QWEN, lambda s: s[0]["9"].pop())
    assert reason_of(bad_file(tmp_path, steps)) == \
        "step 0 (prefill) layer 9: 2 rows, but layer 0 has 3 (every MoE layer of the prefill routes the same tokens)"


def test_unreadable_path(tmp_path):
    with pytest.raises(TraceFileError, match=r"cannot read: "):
        parse_file(tmp_path)  # a directory cannot be read as a file


# ---- through the command line -----------------------------------------------------------------

def one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_strict_cli_stops_at_the_bad_file(tmp_path, capsys):
    path = bad_file(tmp_path, mutated(QWEN, lambda s: s[2]["4"][0].__setitem__(7, 999)))
    code, out, err = run_cli(["summary", path, "--strict", "--json"], capsys)
    assert code == 2 and out == ""
    assert one_line(err) == (f"waferview summary: {path}: step 2 layer 4 row 0: expert id 999 out of range "
                             f"(qwen3 has 128 experts: 0..127)")


def test_directory_with_only_bad_files(tmp_path, capsys):
    root = tmp_path / "runs"
    write_trace(root / "a.json", "[")
    write_trace(root / "b" / "c.json", "{}")
    code, out, err = run_cli(["summary", root], capsys)
    assert code == 2 and out == ""
    assert one_line(err) == (f"waferview summary: {root}: no valid trace file (2 of 2 .json files skipped; first: "
                             f"{root}/a.json: truncated JSON (the data ends at line 1 column 2 "
                             "inside an unfinished value))")


def test_single_bad_file_without_strict_exits_2(tmp_path, capsys):
    path = bad_file(tmp_path, "[]")
    code, _, err = run_cli(["summary", path], capsys)
    assert code == 2
    assert "no steps (the top-level list is empty)" in one_line(err)


def test_subprocess_exit_codes_and_no_traceback(tmp_path, isolated_cache):
    env = {"WAFERVIEW_CACHE_DIR": str(isolated_cache)}
    bad = bad_file(tmp_path, mutated(QWEN, lambda s: s[4]["11"].append([1] * 8)))
    proc = run_subprocess(["summary", bad, "--strict"], env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert one_line(proc.stderr) == (f"waferview summary: {bad}: step 4 layer 11: 2 rows in a decode step, "
                                     f"expected exactly 1")
    only_bad = tmp_path / "only_bad"
    write_trace(only_bad / "x.json", json.dumps({"0": None}))
    proc = run_subprocess(["summary", only_bad, "--json"], env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "no valid trace file (1 of 1 .json files skipped; first:" in one_line(proc.stderr)
    proc = run_subprocess(["summary", tmp_path / "does-not-exist"], env)
    assert proc.returncode == 2 and "no such file or directory" in one_line(proc.stderr)


def test_a_reader_that_leaves_early_ends_quietly():
    # `waferview ... --json | head -c 10`: the reader leaves while waferview still writes a big output
    import subprocess
    import sys

    code = ("import sys\nimport waferview.cli.cmd_summary as command\nfrom waferview.cli.main import main\n"
            "command.run = lambda args: print('x' * 1_000_000)\nsys.exit(main(['summary']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(10) == b"x" * 10
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=120), err) == (0, "")
