"""The in-memory form of a trace: small-integer expert ids in flat numpy arrays.

Layout (R requests, L MoE layers, k = top-k):
  prefill_ids[P, L, k]   rows of step 0 of every request, request after request
  decode_ids[D, L, k]    decode steps 1..N of every request (one row each), request after request
  prefill_offsets[R+1]   request r's prefill rows are prefill_ids[prefill_offsets[r]:prefill_offsets[r+1]]
  decode_offsets[R+1]    request r's decode steps are decode_ids[decode_offsets[r]:decode_offsets[r+1]]
Ids are uint8 when the model has <= 256 experts, uint16 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from waferview.models import ModelSpec


@dataclass(frozen=True, eq=False)
class TraceArrays:
    model: ModelSpec
    prefill_ids: np.ndarray
    decode_ids: np.ndarray
    prefill_offsets: np.ndarray
    decode_offsets: np.ndarray
    request_names: tuple[str, ...]
    skipped: tuple[dict, ...] = ()          # [{"file": ..., "reason": ...}] for files left out
    source: str = ""                        # what the trace was read from, for headers and reports
    synthetic: bool = False                 # made by `waferview synth`, not recorded from a model

    @property
    def requests(self) -> int:
        return len(self.prefill_offsets) - 1

    @property
    def prefill_tokens(self) -> int:
        return int(self.prefill_offsets[-1])

    @property
    def decode_tokens(self) -> int:
        return int(self.decode_offsets[-1])

    @property
    def decode_lengths(self) -> np.ndarray:
        return np.diff(self.decode_offsets)

    @property
    def prefill_lengths(self) -> np.ndarray:
        return np.diff(self.prefill_offsets)

    def facts(self) -> dict:
        """The trace facts every report starts with."""
        m = self.model
        return {
            "source": self.source,
            "synthetic": self.synthetic,
            "model": m.key,
            "requests": self.requests,
            "moe_layers": m.moe_layers,
            "top_k": m.top_k,
            "num_experts": m.num_experts,
            "prefill_tokens": self.prefill_tokens,
            "decode_tokens": self.decode_tokens,
            "files_skipped": len(self.skipped),
            "skipped": [dict(s) for s in self.skipped],
        }


def concat_requests(model: ModelSpec, per_request: list[tuple[np.ndarray, np.ndarray]],
                    names: list[str], skipped=(), source: str = "", consume: bool = False) -> TraceArrays:
    """Pack per-request (prefill[p, L, k], decode[d, L, k]) arrays into one TraceArrays.

    consume=True empties `per_request` while copying, so peak memory stays near one copy of
    the data instead of two (ingest of thousands of files)."""
    L, k, dt = model.moe_layers, model.top_k, model.id_dtype
    pre_len = np.array([p.shape[0] for p, _ in per_request], dtype=np.int64)
    dec_len = np.array([d.shape[0] for _, d in per_request], dtype=np.int64)
    pre_off = np.zeros(len(per_request) + 1, dtype=np.int64)
    dec_off = np.zeros(len(per_request) + 1, dtype=np.int64)
    np.cumsum(pre_len, out=pre_off[1:])
    np.cumsum(dec_len, out=dec_off[1:])
    prefill = np.empty((int(pre_off[-1]), L, k), dtype=dt)
    decode = np.empty((int(dec_off[-1]), L, k), dtype=dt)
    count = len(per_request)
    for r in range(count):
        p, d = per_request[r]
        if consume:
            per_request[r] = None  # drop our reference: the caller's arrays are freed as we go
        prefill[pre_off[r]:pre_off[r + 1]] = p.reshape(-1, L, k)
        decode[dec_off[r]:dec_off[r + 1]] = d.reshape(-1, L, k)
    if consume:
        per_request.clear()
    return TraceArrays(model, prefill, decode, pre_off, dec_off, tuple(names), tuple(skipped), source)
