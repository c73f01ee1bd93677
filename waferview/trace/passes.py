"""Recorded batches: routing as a serving engine ran it, one forward pass after another.

Batch-major sources (SGLang's expert distribution recorder in per_token mode, Megatron-Core router
traces) give the expert ids of every token of every forward pass; count-only sources (TensorRT-LLM's
expert statistics, SGLang's recorder in stat and per_pass mode) give per-expert token counts per pass.
Both become one RecordedPasses: each pass is one step of a replay, its tokens the batch as recorded.

Readers hand their records to a PassBuilder, which is the one gate every record goes through: ids and
counts are validated there (widths, ranges, -1 where a MoE layer must route, layer counts), a bad record
is skipped and listed (or, strict, stops the run), and pieces of one pass recorded on several ranks are
merged (a rank whose piece equals another's is a tensor-parallel replica of the same tokens and is left
out, so its tokens are not counted twice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from waferview.errors import InputError
from waferview.models import ModelSpec
from waferview.trace.formats.common import BadRecord, Skips

# Without a phase flag, a pass of at most this many tokens counts as decode (Megatron-LM's own
# tools/moe_routing/analyze_routing_concentration.py --decode-only uses the same bound).
DECODE_MAX_TOKENS = 64
PHASE_BY_TOKENS_NOTE = (f"no phase flag: a pass of at most {DECODE_MAX_TOKENS} tokens counts as decode, a larger one "
                        "as prefill (the bound of Megatron-LM's tools/moe_routing/analyze_routing_concentration.py "
                        "--decode-only)")
NO_REQUESTS_NOTE = ("no request ids: token-to-token heatmaps are per position within a pass, and figures that follow "
                    "a request from one token to the next are not computed")
COUNT_ONLY_NOTE = "counts only: no per-token expert ids, so no heatmap predictor and no per-token figures"


@dataclass(frozen=True, eq=False)
class RecordedPasses:
    model: ModelSpec
    counts: np.ndarray             # (passes, L, E) int64: token selections per expert, per recorded forward pass
                                   # and MoE layer
    tokens: np.ndarray             # (passes,) int64: tokens in each pass
    prefill: np.ndarray            # (passes,) bool: True = prefill/extend pass, False = decode (`notes`: the rule)
    ids: np.ndarray | None         # (T, L, k) expert ids of every token, pass after pass, in the model's id dtype;
                                   # None for count-only sources
    pass_offsets: np.ndarray | None  # (passes + 1,) rows of pass p are ids[pass_offsets[p]:pass_offsets[p+1]]
    request_ids: np.ndarray | None   # (T,) int64 request of each token where the source records it, else None
    source: str = ""
    skipped: tuple[dict, ...] = ()  # {"file": ..., "reason": ...} for records left out
    notes: tuple[str, ...] = ()     # what the source cannot give
    count_only: bool = False

    synthetic = False               # recorded by a serving engine

    @property
    def passes(self) -> int:
        return len(self.tokens)

    @property
    def prefill_tokens(self) -> int:
        return int(self.tokens[self.prefill].sum())

    @property
    def decode_tokens(self) -> int:
        return int(self.tokens[~self.prefill].sum())

    def facts(self) -> dict:
        """The trace facts every report starts with (TraceArrays.facts()'s keys, plus the batch as recorded)."""
        m = self.model
        requests = None if self.request_ids is None else int(len(np.unique(self.request_ids)))
        return {
            "source": self.source,
            "synthetic": False,
            "model": m.key,
            "requests": requests,
            "moe_layers": m.moe_layers,
            "top_k": m.top_k,
            "num_experts": m.num_experts,
            "prefill_tokens": self.prefill_tokens,
            "decode_tokens": self.decode_tokens,
            "files_skipped": len(self.skipped),
            "skipped": [dict(s) for s in self.skipped],
            "batch": "as recorded",
            "passes": self.passes,
            "prefill_passes": int(self.prefill.sum()),
            "decode_passes": int((~self.prefill).sum()),
            "count_only": self.count_only,
            "request_ids": self.request_ids is not None,
            "notes": list(self.notes),
        }


def pass_tokens_from_counts(counts: np.ndarray, model: ModelSpec, what: str) -> int:
    """Tokens of one pass from its per-layer counts (L, E): every token picks k experts in every MoE layer."""
    if counts.ndim != 2 or counts.shape != (model.moe_layers, model.num_experts):
        raise BadRecord(f"{what}: counts of shape {list(counts.shape)}, expected [{model.moe_layers}, "
                        f"{model.num_experts}]")
    if (counts < 0).any():
        l, e = np.unravel_index(int(np.argmax(counts < 0)), counts.shape)
        raise BadRecord(f"{what} layer {model.moe_layer_ids[l]}: negative count {int(counts[l, e])} for expert {e}")
    sums = counts.sum(axis=1)
    k = model.top_k
    if (sums % k).any():
        l = int(np.argmax(sums % k != 0))
        raise BadRecord(f"{what} layer {model.moe_layer_ids[l]}: {int(sums[l])} selections, not a multiple of "
                        f"top-k = {k} (each token picks {k} experts)")
    if (sums != sums[0]).any():
        l = int(np.argmax(sums != sums[0]))
        raise BadRecord(f"{what}: layer {model.moe_layer_ids[l]} routes {int(sums[l]) // k} tokens but layer "
                        f"{model.moe_layer_ids[0]} routes {int(sums[0]) // k} (one pass routes the same tokens "
                        "through every MoE layer)")
    return int(sums[0]) // k


class PassBuilder:
    """Collects validated pieces of recorded passes, keyed by a sortable pass key and a rank."""

    def __init__(self, model: ModelSpec, strict: bool, count_only: bool = False):
        self.model = model
        self.count_only = count_only
        self.skips = Skips(strict)
        self._pieces: dict = {}

    def skip(self, file: str, where: str, reason: str) -> None:
        self.skips.skip(file, where, reason)

    def add_ids(self, key, rank: int, ids: np.ndarray, prefill: bool, request_ids: np.ndarray | None = None) -> None:
        """One rank's tokens of one pass: ids [t, L, k] already validated (formats.common.route_rows)."""
        m = self.model
        assert ids.shape[1:] == (m.moe_layers, m.top_k) and ids.dtype == m.id_dtype
        self._pieces.setdefault(key, []).append((rank, ids, bool(prefill), request_ids))

    def add_counts(self, key, rank: int, counts: np.ndarray, prefill: bool | None, file: str, where: str) -> bool:
        """One rank's per-expert counts (L, E) of one pass; False (skipped) when they are not a pass's counts.
        prefill None: decide by the token count (PHASE_BY_TOKENS_NOTE)."""
        try:
            tokens = pass_tokens_from_counts(counts, self.model, where)
        except BadRecord as e:
            self.skip(file, "", str(e))
            return False
        phase = tokens > DECODE_MAX_TOKENS if prefill is None else bool(prefill)
        self._pieces.setdefault(key, []).append((rank, counts.astype(np.int64), phase, tokens))
        return True

    def build(self, source: str, notes=()) -> RecordedPasses:
        m = self.model
        L, E = m.moe_layers, m.num_experts
        notes = [n for n in notes if n]
        replicas = empty = 0
        counts, tokens, prefill, id_parts, req_parts = [], [], [], [], []
        have_requests = True
        for key in sorted(self._pieces):
            kept, seen = [], set()
            for piece in sorted(self._pieces[key], key=lambda p: p[0]):
                digest = (piece[1].shape, piece[1].tobytes(), piece[2])
                if digest in seen:
                    replicas += 1
                    continue
                seen.add(digest)
                kept.append(piece)
            if self.count_only:
                n = sum(p[3] for p in kept)
                c = np.sum([p[1] for p in kept], axis=0)
            else:
                n = sum(len(p[1]) for p in kept)
                c = None
            if n == 0:
                empty += 1
                continue
            if not self.count_only:
                ids = np.concatenate([p[1] for p in kept]) if len(kept) > 1 else kept[0][1]
                index = (np.arange(L, dtype=np.int64) * E)[None, :, None] + ids.astype(np.int64)
                c = np.bincount(index.ravel(), minlength=L * E).reshape(L, E)
                id_parts.append(ids)
                if any(p[3] is None for p in kept):
                    have_requests = False
                else:
                    req_parts.append(np.concatenate([p[3] for p in kept]))
            counts.append(c)
            tokens.append(n)
            prefill.append(any(p[2] for p in kept))
        if not counts:
            skipped = self.skips.entries
            first = f"; first: {skipped[0]['file']}: {skipped[0]['reason']}" if skipped else ""
            raise InputError(f"{source}: no recorded pass with tokens ({len(skipped)} record(s) skipped, {empty} "
                             f"empty pass(es){first})")
        if replicas:
            notes.append(f"{replicas} rank piece(s) equal to another rank's piece of the same pass left out "
                         "(tensor-parallel replicas record the same tokens)")
        if empty:
            notes.append(f"{empty} pass(es) without tokens left out")
        if self.count_only:
            ids = offsets = request_ids = None
            notes.append(COUNT_ONLY_NOTE)
        else:
            sizes = np.array([len(p) for p in id_parts], dtype=np.int64)
            offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
            np.cumsum(sizes, out=offsets[1:])
            ids = np.concatenate(id_parts)
            request_ids = np.concatenate(req_parts).astype(np.int64) if have_requests and req_parts else None
            if request_ids is None:
                notes.append(NO_REQUESTS_NOTE)
        return RecordedPasses(m, np.stack(counts).astype(np.int64), np.array(tokens, dtype=np.int64),
                              np.array(prefill, dtype=bool), ids, offsets, request_ids, source,
                              tuple(self.skips.entries), tuple(dict.fromkeys(notes)), self.count_only)
