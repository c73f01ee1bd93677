"""Writing small trace files in the dataset's exact format, for tests.

A file is `json.dumps(steps, indent=4)` with no trailing newline, at
`<root>/<org>/<model>/<benchmark>/<subject>/<index>.json`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from waferview.models import MODELS, ModelSpec


def make_steps(model: ModelSpec | str, prefill_rows: int = 3, decode_steps: int = 2, seed: int = 0,
               omit_dense: bool = False) -> list[dict]:
    """Deterministic routing: step 0 has `prefill_rows` rows per MoE layer, then one row per decode step."""
    m = MODELS[model] if isinstance(model, str) else model
    rng = random.Random(seed)
    dense = set(m.dense_layers)
    steps = []
    for s in range(decode_steps + 1):
        rows = prefill_rows if s == 0 else 1
        step = {}
        for layer in range(m.num_layer_keys):
            if layer in dense:
                if not omit_dense:
                    step[str(layer)] = None
            else:
                step[str(layer)] = [rng.sample(range(m.num_experts), m.top_k) for _ in range(rows)]
        steps.append(step)
    return steps


def dumps(steps) -> str:
    return json.dumps(steps, indent=4)


def write_trace(path: Path, steps) -> Path:
    """Write `steps` exactly as the dataset does (indent=4, no trailing newline)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(steps) if not isinstance(steps, str) else steps, encoding="utf-8")
    return path


def dataset_file(root: Path, model: ModelSpec | str, benchmark: str, subject: str, index: int) -> Path:
    m = MODELS[model] if isinstance(model, str) else model
    return Path(root) / m.folder / benchmark / subject / f"{index}.json"


def write_dataset(root: Path, model: str, layout: dict[tuple[str, str], list[tuple[int, int, int]]],
                  seed: int = 0) -> dict[str, tuple[int, int]]:
    """Write files for {(benchmark, subject): [(index, prefill_rows, decode_steps), ...]}.

    Returns {relative path: (prefill_rows, decode_steps)} for asserting counts."""
    written = {}
    for (benchmark, subject), files in layout.items():
        for index, p, d in files:
            path = dataset_file(root, model, benchmark, subject, index)
            write_trace(path, make_steps(model, p, d, seed=seed + index))
            written[path.relative_to(root).as_posix()] = (p, d)
    return written


# ---- fixtures and CLI helpers shared by the trace-reading tests -------------------------------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own trace cache folder (import this fixture into a test module)."""
    path = tmp_path / "wvcache"
    monkeypatch.setenv("WAFERVIEW_CACHE_DIR", str(path))
    monkeypatch.setenv("WAFERVIEW_NO_PROGRESS", "1")
    return path


def run_cli(argv, capsys):
    """waferview in-process: (exit code, stdout, stderr)."""
    from waferview.cli.main import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_subprocess(argv, env_extra=None):
    """waferview as a separate process: the real exit code and streams."""
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "waferview", *map(str, argv)], capture_output=True,
                          text=True, env=env, timeout=120)
