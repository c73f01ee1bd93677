"""The public test vectors of the study's simulator and their input (tests/fixtures/paper_vectors/)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from waferview.models import get_model
from waferview.trace.arrays import TraceArrays

HERE = Path(__file__).resolve().parent / "fixtures" / "paper_vectors"
VECTORS = HERE / "deepseek_seed2_16steps.csv"
INPUT = HERE / "input_deepseek_seed2.npz"
ITERATIONS = 16


def load_input() -> TraceArrays:
    """The 64 DeepSeek requests of `synth_ref.py deepseek 64 OUT 2`, cut to the 15 decode steps 16
    iterations read (made by fixtures/paper_vectors/make_input.py)."""
    z = np.load(INPUT)
    model = get_model(str(z["model"]))
    offsets = [np.concatenate([[0], np.cumsum(z[name])]).astype(np.int64)
               for name in ("prefill_lengths", "decode_lengths")]
    return TraceArrays(model, z["prefill_ids"], z["decode_ids"], offsets[0], offsets[1],
                       tuple(str(n) for n in z["request_names"]), source=str(INPUT))


def vector_rows() -> list[dict]:
    """The CSV's rows as dicts of strings, the header's column names as keys."""
    with open(VECTORS, encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))
