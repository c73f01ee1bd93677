"""The traces of a sweep: each SOURCE (or synthetic pool) read once in the parent, named by a content
fingerprint, and backed by a .wvtrace file that the workers memory-map instead of receiving arrays.

- `--synth`: the calibrated synthetic pool of each model (waferview.synth.generate, seed 0), written once
  to $WAFERVIEW_CACHE_DIR/sweep/synth/ under a name that carries the generator's parameters and code, so
  a changed generator makes a new pool instead of reusing a stale one.
- fingerprint: sha256 over the model, request names, skipped files and the four id arrays. Hashing a
  large trace takes seconds (about 2 GB/s), so it is remembered per file (path, size, mtime, inode).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from waferview.errors import InputError

HASH_CHUNK = 64 << 20


@dataclass(frozen=True)
class TraceRef:
    """What a worker needs to open one trace: the file, what it was when the parent read it, the label."""
    path: str
    size: int
    mtime_ns: int
    label: str                  # trace.source: the `source` field of its rows
    labels: tuple = ()          # ((field, value), ...): the trace's other plain fields as the parent read
                                # them (synthetic, ...), which reading the file alone may not give back


@dataclass
class SweepTrace:
    index: int
    source: str | None          # as given (None: the shipped default of the model)
    model: str | None           # --model as given
    column: str                 # the row's sweep_source
    ref: TraceRef
    fingerprint: str
    model_key: str
    requests: int
    moe_layers: int
    top_k: int
    num_experts: int
    synthetic: bool = False


def sweep_dir() -> Path:
    from waferview.trace.store import cache_dir

    return cache_dir() / "sweep"


# sources that cannot change a row: the live view, the benchmark, trace statistics, the generator (pools are
# fingerprinted by content), and the sweep's and CLI's own plumbing around the runner
_NOT_IN_ROWS = ("tui/", "bench/", "analysis/", "synth/", "sweep/", "cli/")
_IN_ROWS = ("sweep/runner.py", "sweep/grid.py", "cli/common.py", "cli/cmd_summary.py")


def _code_digest(package: str, rows_only: bool = False) -> str:
    import waferview

    root = Path(waferview.__file__).resolve().parent / package
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if rows_only and rel.startswith(_NOT_IN_ROWS) and rel not in _IN_ROWS:
            continue
        h.update(rel.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def code_version() -> str:
    """waferview's version plus a digest of the sources a row depends on (everything but the live view, the
    benchmark, the statistics, the generator and the plumbing around the runner): rows cached by another
    engine are not reused, while an edit to a figure or the table keeps the cache."""
    from waferview import __version__

    return f"{__version__}+{_code_digest('.', rows_only=True)[:12]}"


def synth_pool_path(model: str, requests: int) -> Path:
    from waferview.models import get_model
    from waferview.synth.generate import default_params

    params = orjson.dumps(dataclasses.asdict(default_params(get_model(model))), option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(params + _code_digest("synth").encode()).hexdigest()[:10]
    return sweep_dir() / "synth" / f"{model}-{requests}-seed0-{digest}.wvtrace"


def synth_pool(model: str, requests: int) -> Path:
    """The calibrated synthetic pool of `model` (seed 0), generated on first use."""
    from waferview.synth.generate import generate_to_cache

    from waferview.trace.cache import load_cache

    path = synth_pool_path(model, requests)
    if path.is_file():
        try:
            load_cache(path)
            return path
        except InputError as e:   # damaged, or written in an older cache format: make it again
            print(f"waferview sweep: {e}; generating it again", file=sys.stderr)
    print(f"waferview sweep: generating the synthetic {model} pool ({requests:,} requests) -> {path}",
          file=sys.stderr)
    generate_to_cache(model, requests, 0, path)
    return path


def _mapped_path(arr) -> str | None:
    """The file an array is memory-mapped from: numpy's own record when it has one, else the process's map
    of the address (a cache mapped through a file descriptor has no name in numpy)."""
    name = getattr(arr, "filename", None)
    if isinstance(name, (str, os.PathLike)) and str(name):
        return os.path.realpath(name)
    if not isinstance(arr, np.memmap) or not arr.size:
        return None
    address = arr.ctypes.data
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                if lo <= address < hi:
                    path = parts[5].strip() if len(parts) == 6 else ""
                    return os.path.realpath(path) if path.startswith("/") else None
    except (OSError, ValueError):
        return None
    return None


def _backing_file(trace, source: str | None = None) -> str | None:
    """The .wvtrace a trace was read from, if the workers can map the same bytes from it."""
    from waferview.trace.cache import is_cache_file

    if source and not source.startswith("hf:") and os.path.isfile(source) and is_cache_file(source):
        return os.path.realpath(source)
    name = _mapped_path(trace.prefill_ids)
    same = all(_mapped_path(getattr(trace, a)) == name for a in ("decode_ids", "prefill_offsets", "decode_offsets"))
    return name if name and same and is_cache_file(name) else None


def _hash_trace(trace) -> str:
    from waferview.sim.pages import release_rows

    h = hashlib.sha256()
    h.update(orjson.dumps({"model": trace.model.to_dict(), "names": list(trace.request_names),
                           "skipped": list(trace.skipped)}))
    for name in ("prefill_offsets", "decode_offsets", "prefill_ids", "decode_ids"):
        arr = getattr(trace, name)
        h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
        rows = max(1, HASH_CHUNK // max(1, arr[0:1].nbytes)) if len(arr) else 1
        for i in range(0, len(arr), rows):
            h.update(memoryview(arr[i:i + rows].reshape(-1)).cast("B"))
            release_rows(arr, i, min(len(arr), i + rows))   # a large mapped trace does not stay resident
    return h.hexdigest()


def fingerprint(trace, path: str | None) -> str:
    """The content fingerprint of a trace, remembered per backing file."""
    memo = None
    if path:
        st = os.stat(path)
        ident = f"{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
        memo = sweep_dir() / "fingerprints" / hashlib.sha256(ident.encode()).hexdigest()[:32]
        try:
            text = memo.read_text().strip()
            if len(text) == 64:
                return text
        except OSError:
            pass
    digest = _hash_trace(trace)
    if memo is not None:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(digest)
            os.replace(tmp, memo)
        except OSError:
            pass
    return digest


def _ensure_file(trace, digest: str, backing: str | None) -> str:
    """A .wvtrace holding this trace: the file it was read from, else one written for the sweep."""
    from waferview.trace.cache import save_cache

    path = backing
    if path:
        return path
    target = sweep_dir() / "traces" / f"{digest[:32]}.wvtrace"
    if not target.is_file():
        try:
            save_cache(target, trace, source_key=f"sweep:{digest}")
        except OSError as e:
            raise InputError(f"{target}: cannot write the trace for the workers ({e.strerror or e})") from None
    return str(target)


def load_traces(sources: list[str], models: list[str | None], *, synth: bool, synth_requests: int,
                read_options: dict) -> list[SweepTrace]:
    """Every (source, model) of the sweep, read as `summary` reads its SOURCE (the same options through the
    same parser and cli.common.load_trace_from_args) and fingerprinted (InputError for a bad source)."""
    from waferview.cli.common import load_trace_from_args
    from waferview.sweep.grid import namespace

    items: list[tuple[str | None, str | None, str]] = []
    if synth:
        if sources:
            raise InputError("--synth generates the sources: give SOURCE arguments or --synth, not both")
        for m in models:
            if m is None:
                raise InputError("--synth needs --models (for example --models qwen3,deepseek) or --paper")
        items = [(str(synth_pool(m, synth_requests)), m, f"synth:{m}:{synth_requests}") for m in models]
    elif sources:
        items = [(s, m, s) for s in sources for m in models]
    else:
        items = [(None, m, f"default:{m or 'deepseek'}") for m in models]
    out = []
    for source, model, column in items:
        trace = load_trace_from_args(namespace({"source": source, "model": model, **read_options}))
        if not hasattr(trace, "requests"):      # trace.passes.RecordedPasses: batch-major or count-only
            raise InputError(f"{trace.source}: recorded batches ({trace.passes:,} forward passes): a sweep draws "
                             "batches of requests from per-request traces; run summary or compare on it "
                             "(--max-steps, --mesh and the modes apply)")
        backing = _backing_file(trace, source)
        digest = fingerprint(trace, backing)
        path = _ensure_file(trace, digest, backing)
        st = os.stat(path)
        m = trace.model
        labels = tuple((f.name, getattr(trace, f.name)) for f in dataclasses.fields(trace)
                       if f.name != "source" and isinstance(getattr(trace, f.name), (str, bool, int, float)))
        ref = TraceRef(path, st.st_size, st.st_mtime_ns, trace.source, labels)
        out.append(SweepTrace(len(out), source, model, column, ref,
                              digest, m.key, trace.requests, m.moe_layers, m.top_k, m.num_experts, trace.synthetic))
    return out


def open_trace(ref: TraceRef):
    """The trace a worker replays: the file memory-mapped, as the parent saw it (InputError if it changed)."""
    from waferview.trace.cache import load_cache

    try:
        st = os.stat(ref.path)
    except OSError as e:
        raise InputError(f"{ref.path}: trace file gone during the sweep ({e.strerror or e})") from None
    if (st.st_size, st.st_mtime_ns) != (ref.size, ref.mtime_ns):
        raise InputError(f"{ref.path}: trace file changed during the sweep")
    trace, _ = load_cache(ref.path)
    return dataclasses.replace(trace, source=ref.label, **dict(ref.labels))
