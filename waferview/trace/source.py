"""load_source: every kind of SOURCE the command line accepts, to one TraceArrays.

  None                    the shipped default, assets/<model>.wvtrace (deepseek unless --model)
  DIR                     a dataset-layout directory, searched recursively for *.json
  FILE.json               one trace file
  FILE.wvtrace            a waferview cache (any file starting with the cache magic)
  hf:<org>/<model>[/...]  Hub files, made local through hub.py, then read as a directory

JSON sources are parsed once into a cache (see store.py) that later runs memory-map. By
default bad files are skipped and listed in trace.skipped; strict=True stops at the first
one (TraceFileError). Request names are file paths relative to the source root.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import waferview
from waferview.errors import InputError
from waferview.files import file_kind, os_reason
from waferview.models import ModelSpec, get_model
from waferview.trace import hub, store
from waferview.trace.arrays import TraceArrays
from waferview.trace.cache import FORMAT_VERSION, SUFFIX, CacheCorrupt, is_cache_file, load_cache
from waferview.trace.ingest import ingest, raise_first_skipped
from waferview.trace.manifest import label_synthetic
from waferview.trace.scan import TraceFile, fingerprint, printable, scan_directory, single_file

DEFAULT_MODEL = "deepseek"


def assets_dir() -> Path:
    if os.environ.get("WAFERVIEW_ASSETS"):
        return Path(os.environ["WAFERVIEW_ASSETS"]).expanduser()
    return Path(waferview.__file__).resolve().parent.parent / "assets"


def load_source(source: str | None, model: str | None = None, strict: bool = False,
                use_cache: bool = True, fmt: str | None = None) -> TraceArrays:
    """`fmt` forces a serving-engine format (trace.formats); those sources may also come back as
    trace.passes.RecordedPasses (batch-major and count-only recordings)."""
    spec = get_model(model) if model else None
    foreign = _load_foreign(source, fmt, spec, strict, use_cache)
    if foreign is not None:
        return foreign
    if source is None:
        return _load_default(spec, strict)
    if not source.strip():
        raise InputError("SOURCE is an empty string: give a directory, a .json file, a cache or hf:...")
    if source.startswith("hf:"):
        return _load_hub(source, spec, strict, use_cache)
    path = Path(source)
    source = printable(source)   # how messages and reports name it (a non-UTF-8 name with \x escapes)
    try:
        st = os.stat(path)
    except OSError as e:   # a dangling link, a symlink loop, a name too long ... named as such
        raise InputError(f"{source}: {os_reason(e)}") from None
    if stat.S_ISDIR(st.st_mode):
        files = scan_directory(path)
        if not files:
            raise InputError(f"{source}: no .json trace files in this directory (searched recursively)")
        trace = _load_json(files, path, label=source, display=_joiner(source), model=spec,
                           strict=strict, use_cache=use_cache)
        return label_synthetic(trace, path, (f.path for f in files))   # written by `synth --out`?
    if not stat.S_ISREG(st.st_mode):   # only regular files are read: a FIFO or a device could block or never end
        raise InputError(f"{source}: {file_kind(st.st_mode)}, not a regular file (SOURCE is a directory, "
                         f"a .json trace file, a {SUFFIX} cache or hf:...)")
    if is_cache_file(path):
        return load_cache_source(path, spec, strict, label=source)
    if path.suffix.lower() == SUFFIX:
        raise InputError(f"{source}: not a waferview cache (bad magic)")
    if path.suffix.lower() != ".json":
        raise InputError(f"{source}: expected a directory, a .json trace file, a {SUFFIX} cache or hf:...")
    trace = _load_json(single_file(path), path, label=source, display=lambda rel: source, model=spec,
                       strict=strict, use_cache=use_cache)
    return label_synthetic(trace, path)


def _load_foreign(source, fmt, spec, strict, use_cache):
    """Serving-engine captures (vLLM, SGLang, Megatron-Core, TensorRT-LLM): see trace/formats."""
    from waferview.trace import formats

    return formats.load_foreign(source, fmt, spec, strict, use_cache)


def _joiner(root: str):
    root = root.rstrip("/\\") or "/"
    return lambda rel: f"{root}/{rel}"


def load_cache_source(path: Path, spec: ModelSpec | None, strict: bool, label: str) -> TraceArrays:
    """A .wvtrace file given directly: nothing to rebuild from, so a bad one is an error."""
    try:
        trace, _ = load_cache(path)
    except CacheCorrupt as e:
        raise InputError(f"{e} (cannot rebuild a cache given as SOURCE: point at its JSON instead)") from None
    if spec is not None and trace.model is not spec:
        raise InputError(f"{label}: the cache holds {trace.model.key} traces, not {spec.key} (--model)")
    if strict:
        raise_first_skipped(trace, lambda rel: rel)
    # keep the provenance visible wherever the source is named
    return dataclasses.replace(trace, source=f"{label} (synthetic)" if trace.synthetic else label)


def _load_default(spec: ModelSpec | None, strict: bool) -> TraceArrays:
    key = spec.key if spec else DEFAULT_MODEL
    path = assets_dir() / f"{key}{SUFFIX}"
    if not path.is_file():
        raise InputError(f"the shipped default trace {path} is missing; pass a SOURCE (a directory, a .json "
                         f"file, a {SUFFIX} cache or hf:<org>/<model>/...)")
    return load_cache_source(path, spec, strict, label=f"assets/{path.name}")


def _load_hub(source: str, spec: ModelSpec | None, strict: bool, use_cache: bool) -> TraceArrays:
    sel = hub.parse_hf_source(source)
    if spec is not None and spec is not sel.model:
        raise InputError(f"{source} holds {sel.model.key} traces, not {spec.key} (--model)")
    result = hub.fetch(sel)
    files = scan_directory(result.local_dir)
    if not files:
        raise InputError(f"{source}: no .json trace files in {result.local_dir}")
    return _load_json(files, result.local_dir, label=source, display=_joiner(source), model=sel.model,
                      strict=strict, use_cache=use_cache)


def _load_json(files: list[TraceFile], root: Path, *, label: str, display, model: ModelSpec | None,
               strict: bool, use_cache: bool) -> TraceArrays:
    model_key = model.key if model else "auto"
    cache_path = store.cache_path_for(root, model_key)
    source_key = fingerprint(files, model_key, FORMAT_VERSION)
    if use_cache:
        cached = store.read_trusted(cache_path, source_key, label)
        if cached is not None:
            if strict:
                raise_first_skipped(cached, display)
            return dataclasses.replace(cached, source=label)
    trace = ingest(files, label=label, display=display, model=model, strict=strict)
    store.write(cache_path, trace, source_key)
    return trace
