"""Write a TraceArrays as dataset files: `<out>/<org>/<model>/<benchmark>/<subject>/<index>.json`.

Each file is byte-identical to `json.dumps(steps, indent=4)` (no trailing newline): a list whose step 0
holds the prefill rows and steps 1..N one decode row each; keys "0".."num_layer_keys-1" in order, dense
layers null. The text is rendered by a numba kernel straight into a byte buffer (json.dumps would take
seconds per Qwen file); a test checks the bytes against json.dumps.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from numba import njit

from waferview.errors import InputError
from waferview.synth.output import Created
from waferview.trace.arrays import TraceArrays


@njit(nogil=True, cache=True)
def _put(buf, pos, text):
    for i in range(text.shape[0]):
        buf[pos + i] = text[i]
    return pos + text.shape[0]


@njit(nogil=True, cache=True)
def _at(buf, pos, indent, byte):
    """A new line, `indent` spaces, then one byte (a bracket); byte < 0 writes no byte."""
    buf[pos] = 10
    pos += 1
    for i in range(indent):
        buf[pos + i] = 32
    pos += indent
    if byte >= 0:
        buf[pos] = byte
        pos += 1
    return pos


@njit(nogil=True, cache=True)
def _comma_unless_last(buf, pos, last):
    if not last:
        buf[pos] = 44
        pos += 1
    return pos


@njit(nogil=True, cache=True)
def _int(buf, pos, v):
    if v == 0:
        buf[pos] = 48
        return pos + 1
    n = 0
    x = v
    while x > 0:
        n += 1
        x //= 10
    x = v
    for i in range(n - 1, -1, -1):
        buf[pos + i] = 48 + x % 10
        x //= 10
    return pos + n


@njit(nogil=True, cache=True)
def _render(buf, rows, steps_first, key_text, key_off, moe_index):
    """rows[T, L, k]: all rows of the request; step s covers rows[steps_first[s]:steps_first[s+1]]."""
    pos = 0
    buf[pos] = 91  # [
    pos += 1
    n_steps = steps_first.shape[0] - 1
    nkeys = moe_index.shape[0]
    k = rows.shape[2]
    for s in range(n_steps):
        pos = _at(buf, pos, 4, 123)  # {
        for key in range(nkeys):
            pos = _at(buf, pos, 8, -1)
            pos = _put(buf, pos, key_text[key_off[key]:key_off[key + 1]])   # "12":
            li = moe_index[key]
            if li < 0:
                buf[pos] = 110   # null
                buf[pos + 1] = 117
                buf[pos + 2] = 108
                buf[pos + 3] = 108
                pos += 4
            else:
                buf[pos] = 91
                pos += 1
                for t in range(steps_first[s], steps_first[s + 1]):
                    pos = _at(buf, pos, 12, 91)
                    for j in range(k):
                        pos = _at(buf, pos, 16, -1)
                        pos = _int(buf, pos, rows[t, li, j])
                        pos = _comma_unless_last(buf, pos, j == k - 1)
                    pos = _at(buf, pos, 12, 93)
                    pos = _comma_unless_last(buf, pos, t == steps_first[s + 1] - 1)
                pos = _at(buf, pos, 8, 93)
            pos = _comma_unless_last(buf, pos, key == nkeys - 1)
        pos = _at(buf, pos, 4, 125)  # }
        pos = _comma_unless_last(buf, pos, s == n_steps - 1)
    pos = _at(buf, pos, 0, 93)
    return pos


def _layout(model):
    keys = [f'"{i}": '.encode() for i in range(model.num_layer_keys)]
    key_off = np.zeros(len(keys) + 1, np.int64)
    np.cumsum([len(b) for b in keys], out=key_off[1:])
    key_text = np.frombuffer(b"".join(keys), np.uint8).copy()
    moe_index = np.full(model.num_layer_keys, -1, np.int64)
    for i, key in enumerate(model.moe_layer_ids):
        moe_index[key] = i
    return key_text, key_off, moe_index


def render_request(trace: TraceArrays, r: int, _layout_cache=None) -> bytes:
    """The exact JSON text of request r."""
    m = trace.model
    key_text, key_off, moe_index = _layout_cache or _layout(m)
    p0, p1 = int(trace.prefill_offsets[r]), int(trace.prefill_offsets[r + 1])
    d0, d1 = int(trace.decode_offsets[r]), int(trace.decode_offsets[r + 1])
    rows = np.concatenate([trace.prefill_ids[p0:p1], trace.decode_ids[d0:d1]]).astype(np.int64)
    steps_first = np.concatenate([[0], np.arange(p1 - p0, p1 - p0 + d1 - d0 + 1)]).astype(np.int64)
    n_rows = rows.shape[0]
    # bound: per id 16 spaces + 5 digits + ",\n"; per row/step/key a few dozen bytes
    size = (n_rows * m.moe_layers * (m.top_k * 24 + 40) + len(steps_first) * (m.num_layer_keys * 30 + 20) + 16)
    buf = np.empty(size, np.uint8)
    n = _render(buf, rows, steps_first, key_text, key_off, moe_index)
    return buf[:n].tobytes()


_INDEX_NAME = re.compile(r"^(\d+)(\.json)?$")


def _file_names(trace: TraceArrays) -> list[str]:
    names = [os.path.basename(n) for n in trace.request_names]
    if len(names) == trace.requests and all(_INDEX_NAME.match(n) for n in names) and len(set(names)) == len(names):
        return [n if n.endswith(".json") else n + ".json" for n in names]
    from waferview.synth.generate import request_indices
    return [f"{i}.json" for i in request_indices(trace.requests, 0)]


def write_dataset(trace: TraceArrays, out_dir: str | os.PathLike, benchmark: str = "synthetic",
                  subject: str = "synthetic", created: Created | None = None) -> Path:
    """Write every request as one file in the dataset layout; returns the subject folder.

    Folder names are validated (nothing lands outside `out_dir`), folders get the ordinary mode, and
    the files go into an exclusively made hidden folder beside the target that is renamed into place
    (or, when the subject folder exists, moved in file by file). Everything made is recorded in
    `created`; on an error or an interrupt it is removed again before the exception goes on."""
    from waferview.synth.output import check_component, refuse_escape

    m = trace.model
    parts = [*check_component(m.org, "model folder"), *check_component(m.name, "model folder"),
             *check_component(benchmark, "--benchmark"), *check_component(subject, "--subject")]
    out = Path(out_dir)
    target = out.joinpath(*parts)
    own = created is None
    created = created if created is not None else Created()
    from waferview.synth.generate import _progress_bar

    bar = None
    try:
        refuse_escape(target, out, f"--out {out_dir}")
        created.makedirs(target.parent)
        if os.path.lexists(target) and (target.is_symlink() or not target.is_dir()):
            raise InputError(f"{target}: exists and is not a plain folder (a file or a symbolic link)")
        tmp = created.temp_dir(target)
        bar = _progress_bar(trace.requests, f"writing {m.key} JSON")
        layout = _layout(m)
        for r, name in enumerate(_file_names(trace)):
            path = tmp / name
            with open(path, "xb") as f:     # exclusive: tmp is new, so this never follows a link
                f.write(render_request(trace, r, layout))
            if bar is not None:
                bar.update(1)
        if target.exists():
            for f in sorted(tmp.iterdir()):
                dest = target / f.name
                if not dest.exists():
                    created.files.append(dest)
                os.replace(f, dest)
            tmp.rmdir()
            created.forget(tmp)
        else:
            os.replace(tmp, target)
            created.moved(tmp, target)
    except OSError as e:
        created.undo()
        raise InputError(f"{target}: cannot write trace files ({e.strerror or e})") from None
    except BaseException:
        if own:
            created.undo()
        raise
    finally:
        if bar is not None:
            bar.close()
    return target
