"""Parse the trace files of one source into one TraceArrays: skip (or, strict, stop at) bad files.

All files of a source must be one model. With an explicit model, files of another model are
bad files (skipped). Without one, each file's model comes from the dataset's own folder name in its
absolute path (the `<model>` of `<org>/<model>/...`, e.g. `Llama-4-Maverick-17B-128E-Instruct`, the
nearest one to the file), else from its layer keys; a short name in an unrelated folder
(`/home/kimi/...`) says nothing, so a source reads the same given by absolute path or as `.`. A source
whose files disagree is an error naming both models.
"""

from __future__ import annotations

from collections.abc import Callable

from waferview.errors import InputError, TraceFileError
from waferview.models import ModelSpec
from waferview.progress import progress
from waferview.trace.arrays import TraceArrays, concat_requests
from waferview.trace.parse import PATH_ORIGIN, model_from_dataset_path, parse_file
from waferview.trace.scan import TraceFile


def ingest(files: list[TraceFile], *, label: str, display: Callable[[str], str],
           model: ModelSpec | None = None, strict: bool = False) -> TraceArrays:
    """`label` names the source in messages; `display(rel)` names one file in messages."""
    per_request, names, skipped = [], [], []
    chosen: tuple[ModelSpec, str] | None = None  # the source's model and the file that set it
    bar = progress(files, f"reading {len(files)} trace files", enabled=None if len(files) > 1 else False)
    for f in bar:
        name = display(f.rel)
        file_model, origin = model, "--model"
        if file_model is None:
            file_model = model_from_dataset_path(f.path)
            origin = PATH_ORIGIN if file_model else ""
        try:
            if f.problem is not None:
                raise TraceFileError(name, f.problem)
            m, prefill, decode = parse_file(f.path, file_model, name=name, model_origin=origin)
        except TraceFileError as e:
            if strict:
                raise
            skipped.append({"file": f.rel, "reason": e.reason})
            continue
        if chosen is None:
            chosen = (m, f.rel)
        elif m is not chosen[0]:
            raise InputError(f"{label} holds traces of two models: {display(chosen[1])} is {chosen[0].key}, "
                             f"{name} is {m.key}; pass --model to read one of them (the other's files are skipped)")
        per_request.append((prefill, decode))
        names.append(f.rel)
    if chosen is None:
        first = skipped[0] if skipped else None
        detail = f"; first: {display(first['file'])}: {first['reason']}" if first else ""
        raise InputError(f"{label}: no valid trace file ({len(skipped)} of {len(files)} .json files "
                         f"skipped{detail})")
    return concat_requests(chosen[0], per_request, names, skipped, source=label, consume=True)


def raise_first_skipped(trace: TraceArrays, display: Callable[[str], str]) -> None:
    """Strict mode over a cache: the first file the cache left out fails the run, with the same
    message parsing it would give."""
    if trace.skipped:
        first = trace.skipped[0]
        raise TraceFileError(display(first["file"]), first["reason"])
